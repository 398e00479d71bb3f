/* Streams read, not mapped (src/os.h): an anonymous or named pipe, a console or a file the
 * caller holds open (a HANDLE). A pipe cannot be waited on with a timeout (anonymous pipes
 * take no overlapped reads), so it is polled with PeekNamedPipe: a read blocked on a
 * silent writer still sees a cancel. What cannot be peeked is read as it comes. */
#include "../os.h"
#include "win.h"

int bm__os_stream_check(HANDLE h) {
  DWORD type;
  if (h == NULL || h == INVALID_HANDLE_VALUE) return bm__win_error(ERROR_INVALID_HANDLE);
  SetLastError(NO_ERROR);
  type = GetFileType(h);
  if (type == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) return bm__win_last_error();
  if (type == FILE_TYPE_DISK) {
    BY_HANDLE_FILE_INFORMATION fi;
    if (GetFileInformationByHandle(h, &fi) && (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
      return bm__set_os_error(0), BM_EISDIR;
  }
  return 0;
}

/* The end of a pipe: its writer closed. */
static int win_stream_ended(DWORD e) {
  return e == ERROR_BROKEN_PIPE || e == ERROR_HANDLE_EOF || e == ERROR_PIPE_NOT_CONNECTED;
}

int bm__os_stream_read(HANDLE h, void *buf, size_t n, unsigned ms, size_t *got) {
  DWORD r = 0, want = n > (1u << 30) ? (1u << 30) : (DWORD)n;
  *got = 0;
  if (GetFileType(h) == FILE_TYPE_PIPE) {
    ULONGLONG until = GetTickCount64() + ms;
    DWORD avail = 0;
    for (;;) {
      if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL)) {
        DWORD e = GetLastError();
        if (win_stream_ended(e)) return 0;
        if (e == ERROR_INVALID_HANDLE) return bm__win_error(e);
        /* A pipe that cannot be peeked (Wine's pipe from the host, ERROR_NOT_SUPPORTED):
         * read as it comes. */
        avail = want;
        break;
      }
      if (avail > 0) break;
      if (GetTickCount64() >= until) return BM_ETIMEDOUT;
      Sleep(1);
    }
    if (want > avail) want = avail;
  }
  if (!ReadFile(h, buf, want, &r, NULL)) {
    DWORD e = GetLastError();
    if (win_stream_ended(e)) return 0;
    if (e == ERROR_INVALID_HANDLE || e == ERROR_ACCESS_DENIED) return bm__win_error(e);
    bm__win_error(e);
    return BM_EIO;
  }
  *got = r;
  return 0;
}

int bm__os_stream_open(const char *path, HANDLE *out, uint64_t *size) {
  WCHAR w[BM_PATH_MAX];
  LARGE_INTEGER sz;
  HANDLE h;
  int err;
  if ((err = bm__win_utf8_to_wide(path, w, BM_PATH_MAX)) != 0) return err;
  h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) return bm__win_last_error();
  if ((err = bm__os_stream_check(h)) != 0) {
    CloseHandle(h);
    return err;
  }
  *size = GetFileType(h) == FILE_TYPE_DISK && GetFileSizeEx(h, &sz) ? (uint64_t)sz.QuadPart : UINT64_MAX;
  *out = h;
  return 0;
}

void bm__os_stream_close(HANDLE h) {
  if (h != NULL && h != INVALID_HANDLE_VALUE) CloseHandle(h);
}
