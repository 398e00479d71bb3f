/* Helpers shared by the files of the Windows backend: the one Win32-error translation,
 * UTF-8 to UTF-16 conversion, and the large-page facts (GetLargePageMinimum and the
 * SeLockMemoryPrivilege state). Only src/win/ includes this. */
#ifndef BULKMAP_WIN_INTERNAL_H
#define BULKMAP_WIN_INTERNAL_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00 /* names up to Windows 10; newer calls are looked up at run time */
#endif
#include <windows.h>
#include <stdint.h>

/* Records the Win32 error e (GetLastError()) and returns the BM_E* code it maps to (the
 * one switch of the backend, as libuv's src/win/error.c). */
int bm__win_error(DWORD e);
/* bm__win_error(GetLastError()). */
int bm__win_last_error(void);

/* "Global\" + BM_NAME_MAX + NUL, with room to spare; longer names were refused before. */
#define WIN_NAME_CAP 256

/* Converts UTF-8 to a UTF-16 string in buf (cap wide chars, NUL included).
 * Errors: BM_EINVAL (not valid UTF-8), BM_ENAME (does not fit). */
int bm__win_utf8_to_wide(const char *s, WCHAR *buf, int cap);

/* GetLargePageMinimum(), read once; 0 when the system has no large pages. */
size_t bm__win_large_page_size(void);
/* Enables SeLockMemoryPrivilege in the process token, once for the process (later calls
 * return the first answer). 0 when enabled; BM_EPRIVILEGE when the account does not hold
 * it (AdjustTokenPrivileges answers ERROR_NOT_ALL_ASSIGNED); another BM_E* when the token
 * could not be adjusted at all. The raw error is recorded each time. */
int bm__win_enable_lock_memory(void);
/* Whether the token holds SeLockMemoryPrivilege (enabled or not): 1, 0, or -1 unknown. */
int bm__win_has_lock_memory(void);

#endif
