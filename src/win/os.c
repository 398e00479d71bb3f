/* Windows backend: configuration, the Win32-error translation, files (CreateFileW with
 * UTF-8 paths) and their identity, one file-mapping object per source, views
 * (MapViewOfFile), flush, advice (PrefetchVirtualMemory where it exists), processes and time. */
#include <string.h>
#include "../os.h"
#include "win.h"

static bm__os_config_t win_config;
static const char *const win_name_prefixes[] = {"Local\\", "Global\\", NULL};
static INIT_ONCE win_config_once = INIT_ONCE_STATIC_INIT;

/* Windows 8+: PrefetchVirtualMemory; looked up so that the library loads on Windows 7
 * (and on a Wine that lacks it) and falls back to no read-ahead. */
typedef BOOL(WINAPI *win_prefetch_fn)(HANDLE, ULONG_PTR, PWIN32_MEMORY_RANGE_ENTRY, ULONG);
static win_prefetch_fn win_prefetch;

static BOOL CALLBACK win_config_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  SYSTEM_INFO si;
  HMODULE k32;
  (void)once, (void)param, (void)ctx;
  GetSystemInfo(&si);
  win_config.page_size = si.dwPageSize ? si.dwPageSize : 4096;
  /* View offsets must be multiples of the allocation granularity (64 KiB), not of the
   * page size: MapViewOfFile fails with ERROR_MAPPED_ALIGNMENT otherwise. */
  win_config.granularity = si.dwAllocationGranularity ? si.dwAllocationGranularity : 65536;
  win_config.names_persist = 0; /* a section dies with its last handle */
  /* "Local\" and "Global\" pick the kernel namespace of the object (CreateFileMappingW). */
  win_config.name_prefixes = win_name_prefixes;
  /* The writer token's name is random and recorded in the trailer (src/win/section.c). */
  win_config.token_in_meta = 1;
  /* Windows has no call that faults a file range in and reports failure: populate is a
   * guarded touch (bm__os_populate answers BM_ENOTSUP). */
  win_config.has_populate = 0;
  win_config.map_offset_limit = UINT64_MAX; /* MapViewOfFile takes a 64-bit offset */
  k32 = GetModuleHandleW(L"kernel32.dll");
  if (k32 != NULL)
    win_prefetch = (win_prefetch_fn)(void (*)(void))GetProcAddress(k32, "PrefetchVirtualMemory");
  return TRUE;
}

const bm__os_config_t *bm__os_config(void) {
  InitOnceExecuteOnce(&win_config_once, win_config_init, NULL, NULL);
  return &win_config;
}

/* The one translation from Win32 errors (libuv's src/win/error.c does the same). */
int bm__win_error(DWORD e) {
  bm__set_os_error((int)e);
  switch (e) {
  case ERROR_SUCCESS: return 0;
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
  case ERROR_INVALID_DRIVE:
  case ERROR_BAD_NETPATH:
  case ERROR_BAD_NET_NAME:
  case ERROR_INVALID_NAME:
  case ERROR_DIRECTORY:
  case ERROR_MOD_NOT_FOUND: return BM_ENOENT;
  case ERROR_FILE_EXISTS:
  case ERROR_ALREADY_EXISTS: return BM_EEXIST;
  case ERROR_ACCESS_DENIED:
  case ERROR_INVALID_ACCESS:
  case ERROR_NETWORK_ACCESS_DENIED: return BM_EACCES;
  case ERROR_SHARING_VIOLATION:
  case ERROR_LOCK_VIOLATION:
  case ERROR_BUSY:
  case ERROR_USER_MAPPED_FILE: return BM_EBUSY; /* a mapped file cannot be cut short */
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_COMMITMENT_LIMIT:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_NOT_ENOUGH_QUOTA: return BM_ENOMEM;
  case ERROR_DISK_FULL:
  case ERROR_HANDLE_DISK_FULL: return BM_ENOSPC;
  case ERROR_INVALID_PARAMETER:
  case ERROR_INVALID_HANDLE:
  case ERROR_INVALID_ADDRESS:
  case ERROR_NO_UNICODE_TRANSLATION: return BM_EINVAL;
  case ERROR_MAPPED_ALIGNMENT: return BM_EALIGN;
  /* CreateFileMapping of an empty file: the portable code never maps 0 bytes, so this
   * means the file became empty in between. */
  case ERROR_FILE_INVALID: return BM_ERANGE;
  case ERROR_ARITHMETIC_OVERFLOW: return BM_EOVERFLOW;
  case ERROR_FILE_TOO_LARGE: return BM_EFBIG;
  case ERROR_TOO_MANY_OPEN_FILES: return BM_EMFILE;
  case ERROR_WRITE_PROTECT: return BM_EREADONLY;
  case ERROR_CRC:
  case ERROR_IO_DEVICE:
  case ERROR_READ_FAULT:
  case ERROR_WRITE_FAULT:
  case ERROR_GEN_FAILURE:
  case ERROR_SWAPERROR:
  case ERROR_NOT_READY:
  case ERROR_DEVICE_NOT_CONNECTED: return BM_EIO;
  case ERROR_PRIVILEGE_NOT_HELD:
  case ERROR_NOT_ALL_ASSIGNED: return BM_EPRIVILEGE;
  case ERROR_FILENAME_EXCED_RANGE:
  case ERROR_BUFFER_OVERFLOW: return BM_ENAME;
  case ERROR_NOT_SUPPORTED:
  case ERROR_CALL_NOT_IMPLEMENTED:
  case ERROR_INVALID_FUNCTION: return BM_ENOTSUP;
  }
  return BM_EOS;
}

int bm__win_last_error(void) { return bm__win_error(GetLastError()); }

int bm__win_utf8_to_wide(const char *s, WCHAR *buf, int cap) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, buf, cap);
  if (n > 0) return 0;
  if (GetLastError() == ERROR_INSUFFICIENT_BUFFER) return bm__set_os_error(ERROR_INSUFFICIENT_BUFFER), BM_ENAME;
  return bm__win_last_error();
}

/* ---------------------------------------------------------------------------------------
 * Files. */

/* Guards each file source's mapping object, which a remap replaces while other threads
 * may be mapping views of the same source (a pipeline mapping from worker threads):
 * views are mapped under the shared lock, the object is replaced under the exclusive
 * one. One lock for all sources: replacing is rare (the file grew). */
static SRWLOCK win_remap_lock = SRWLOCK_INIT;

/* (Re)creates the source's file-mapping object over the file's current size. A mapping
 * object's maximum size is fixed when it is made (size 0 means "the file's size now"), so
 * a file grown since needs a new one; views of the old one stay valid (the object lives
 * until its last view is unmapped). An empty file cannot be mapped at all
 * (ERROR_FILE_INVALID): it keeps no mapping object and gives empty views. */
static int win_file_remap(bm_source_t *src) {
  LARGE_INTEGER li;
  DWORD prot;
  HANDLE m;

  if (!GetFileSizeEx(src->fd, &li)) return bm__win_last_error();
  if (src->mapping != BM_OS_INVALID_HANDLE) {
    CloseHandle(src->mapping);
    src->mapping = BM_OS_INVALID_HANDLE;
  }
  src->size = (uint64_t)li.QuadPart;
  if (li.QuadPart == 0) return 0;
  /* PAGE_READONLY allows read and copy-on-write views; PAGE_READWRITE also shared writes;
   * PAGE_WRITECOPY (a COW source) is PAGE_READONLY's equal for files. */
  if (src->flags & BM_FILE_WRITE) prot = PAGE_READWRITE;
  else if (src->flags & BM_FILE_COW) prot = PAGE_WRITECOPY;
  else prot = PAGE_READONLY;
  m = CreateFileMappingW(src->fd, NULL, prot, 0, 0, NULL);
  if (m == NULL) return bm__win_last_error();
  src->mapping = m;
  return 0;
}

int bm__os_file_open(bm_source_t *src, const char *path, unsigned flags) {
  WCHAR wpath[BM_PATH_MAX];
  DWORD access = GENERIC_READ, disp = OPEN_EXISTING, e;
  HANDLE h;
  int err;

  if ((err = bm__win_utf8_to_wide(path, wpath, BM_PATH_MAX)) != 0) return err;
  if (flags & BM_FILE_WRITE) {
    access |= GENERIC_WRITE;
    if ((flags & BM_FILE_CREATE) && (flags & BM_FILE_EXCL)) disp = CREATE_NEW;
    else if ((flags & BM_FILE_CREATE) && (flags & BM_FILE_TRUNC)) disp = CREATE_ALWAYS;
    else if (flags & BM_FILE_CREATE) disp = OPEN_ALWAYS;
    else if (flags & BM_FILE_TRUNC) disp = TRUNCATE_EXISTING;
  }
  /* Share everything, as a POSIX open does: other processes may read, write, rename or
   * delete the file while it is mapped here. */
  h = CreateFileW(wpath, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  disp, FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    e = GetLastError();
    /* CreateFileW refuses a directory (without FILE_FLAG_BACKUP_SEMANTICS) with
     * ERROR_ACCESS_DENIED; say what it is. */
    if (e == ERROR_ACCESS_DENIED) {
      DWORD attr = GetFileAttributesW(wpath);
      if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY))
        return bm__set_os_error((int)e), BM_EISDIR;
    }
    return bm__win_error(e);
  }
  /* Only disk files can be mapped: NUL, CON, pipes and sockets cannot. */
  if (GetFileType(h) != FILE_TYPE_DISK) {
    CloseHandle(h);
    return bm__set_os_error(0), BM_ENOTREG;
  }
  src->fd = h;
  src->mapping = BM_OS_INVALID_HANDLE;
  if ((err = win_file_remap(src)) != 0) {
    CloseHandle(h);
    src->fd = BM_OS_INVALID_HANDLE;
    return err;
  }
  return 0;
}

int bm__os_file_extend(bm_source_t *src, uint64_t size) {
  FILE_END_OF_FILE_INFO eof;
  if (size > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  eof.EndOfFile.QuadPart = (LONGLONG)size;
  int err;
  if (!SetFileInformationByHandle(src->fd, FileEndOfFileInfo, &eof, sizeof(eof)))
    return bm__win_last_error();
  AcquireSRWLockExclusive(&win_remap_lock);
  err = win_file_remap(src);
  ReleaseSRWLockExclusive(&win_remap_lock);
  return err;
}

int bm__os_source_size(bm_source_t *src, uint64_t *size) {
  LARGE_INTEGER li;
  if (src->kind != BM__SRC_FILE) {
    *size = src->size; /* a section's size is fixed at creation */
    return 0;
  }
  if (!GetFileSizeEx(src->fd, &li)) return bm__win_last_error();
  *size = (uint64_t)li.QuadPart;
  return 0;
}

void bm__os_source_close(bm_source_t *src) {
  /* Views stay valid: a mapping object lives until its last view is unmapped. */
  if (src->mapping != BM_OS_INVALID_HANDLE && src->mapping != NULL) CloseHandle(src->mapping);
  if (src->fd != BM_OS_INVALID_HANDLE && src->fd != NULL) CloseHandle(src->fd);
  src->mapping = BM_OS_INVALID_HANDLE;
  src->fd = BM_OS_INVALID_HANDLE;
  /* A writer that closes without publishing is gone for readers, as if it had died. */
  bm__os_writer_release(src);
}

/* FILETIME ticks (100 ns since 1601) as nanoseconds since 1970, saturated: only compared. */
static int64_t win_time_ns(LONGLONG t) {
  const int64_t epoch = INT64_C(116444736000000000);
  if (t < INT64_MIN + epoch) return INT64_MIN;
  t -= epoch;
  if (t > INT64_MAX / 100) return INT64_MAX;
  if (t < INT64_MIN / 100) return INT64_MIN;
  return (int64_t)t * 100;
}

/* dev: the volume serial number; ino: the file index (unique on its volume while the file
 * exists); mtime: LastWriteTime; ctime: ChangeTime (data or metadata, as st_ctime). */
static int win_identity(HANDLE h, bm__identity_t *id) {
  BY_HANDLE_FILE_INFORMATION fi;
  FILE_BASIC_INFO bi;
  if (!GetFileInformationByHandle(h, &fi)) return bm__win_last_error();
  if (!GetFileInformationByHandleEx(h, FileBasicInfo, &bi, sizeof(bi))) return bm__win_last_error();
  id->dev = fi.dwVolumeSerialNumber;
  id->ino = ((uint64_t)fi.nFileIndexHigh << 32) | fi.nFileIndexLow;
  id->size = ((uint64_t)fi.nFileSizeHigh << 32) | fi.nFileSizeLow;
  id->mtime_ns = win_time_ns(bi.LastWriteTime.QuadPart);
  id->ctime_ns = win_time_ns(bi.ChangeTime.QuadPart);
  return 0;
}

int bm__os_identity(bm_source_t *src, const char *path, bm__identity_t *id) {
  WCHAR wpath[BM_PATH_MAX];
  HANDLE h;
  int err;

  if (path == NULL) {
    if (src == NULL || src->kind != BM__SRC_FILE || src->fd == BM_OS_INVALID_HANDLE)
      return bm__set_os_error(0), BM_EINVAL;
    return win_identity(src->fd, id);
  }
  if ((err = bm__win_utf8_to_wide(path, wpath, BM_PATH_MAX)) != 0) return err;
  /* Attributes only, sharing everything, so that the look never disturbs a writer;
   * FILE_FLAG_BACKUP_SEMANTICS lets a directory be named (and then compared) too. */
  h = CreateFileW(wpath, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                  NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) return bm__win_last_error();
  err = win_identity(h, id);
  CloseHandle(h);
  return err;
}

/* ---------------------------------------------------------------------------------------
 * Views. */

static int win_map_view(bm_source_t *src, uint64_t offset, size_t length, unsigned access,
                        void **base);

int bm__os_map(bm_source_t *src, uint64_t offset, size_t length, unsigned access, void **base) {
  int err;

  if (offset > (uint64_t)INT64_MAX || offset + length < offset) return BM_EOVERFLOW;
  if (src->kind != BM__SRC_FILE) return win_map_view(src, offset, length, access, base);
  AcquireSRWLockShared(&win_remap_lock);
  if (src->mapping != BM_OS_INVALID_HANDLE && offset + length <= src->size) {
    err = win_map_view(src, offset, length, access, base);
    ReleaseSRWLockShared(&win_remap_lock);
    return err;
  }
  ReleaseSRWLockShared(&win_remap_lock);
  /* The file grew (here or in another process) past what the mapping object covers. */
  AcquireSRWLockExclusive(&win_remap_lock);
  err = 0;
  if (src->mapping == BM_OS_INVALID_HANDLE || offset + length > src->size) {
    if ((err = win_file_remap(src)) == 0 &&
        (src->mapping == BM_OS_INVALID_HANDLE || offset + length > src->size))
      err = (bm__set_os_error(0), BM_ERANGE);
  }
  if (err == 0) err = win_map_view(src, offset, length, access, base);
  ReleaseSRWLockExclusive(&win_remap_lock);
  return err;
}

static int win_map_view(bm_source_t *src, uint64_t offset, size_t length, unsigned access,
                        void **base) {
  DWORD want;
  void *p;

  if (access & BM_ACCESS_COPY) want = FILE_MAP_COPY;
  else if (access & BM_ACCESS_WRITE) want = FILE_MAP_WRITE;
  else want = FILE_MAP_READ;
  if (src->large.obtained) want |= FILE_MAP_LARGE_PAGES;
  p = MapViewOfFile(src->mapping, want, (DWORD)(offset >> 32), (DWORD)offset, length);
  if (p == NULL && (want & FILE_MAP_LARGE_PAGES) && GetLastError() == ERROR_INVALID_PARAMETER) {
    /* FILE_MAP_LARGE_PAGES is known from Windows 10 1703 on; before it a view of a
     * SEC_LARGE_PAGES section uses large pages without being asked. */
    p = MapViewOfFile(src->mapping, want & ~(DWORD)FILE_MAP_LARGE_PAGES, (DWORD)(offset >> 32),
                      (DWORD)offset, length);
  }
  if (p == NULL) return bm__win_last_error();
  *base = p;
  return 0;
}

int bm__os_unmap(void *base, size_t length) {
  (void)length; /* UnmapViewOfFile takes the whole view by its base */
  if (!UnmapViewOfFile(base)) return bm__win_last_error();
  return 0;
}

int bm__os_flush(bm_source_t *src, void *base, size_t length) {
  /* FlushViewOfFile starts writing the dirty pages; FlushFileBuffers waits until they
   * and the file's metadata are on stable storage. A pagefile-backed section has no
   * file to flush. */
  if (!FlushViewOfFile(base, length)) return bm__win_last_error();
  if (src->kind == BM__SRC_FILE && src->fd != BM_OS_INVALID_HANDLE && !FlushFileBuffers(src->fd))
    return bm__win_last_error();
  return 0;
}

int bm__os_advise(void *base, size_t length, int advice) {
  switch (advice) {
  case BM_ADVICE_WILLNEED:
    bm__os_config();
    if (win_prefetch != NULL) {
      WIN32_MEMORY_RANGE_ENTRY r;
      r.VirtualAddress = base;
      r.NumberOfBytes = length;
      /* A hint: the pages are read in asynchronously; failure is not the caller's. */
      if (!win_prefetch(GetCurrentProcess(), 1, &r, 0)) bm__set_os_error((int)GetLastError());
    }
    return 0;
  case BM_ADVICE_DONTNEED:
    /* VirtualUnlock on pages that are not locked removes them from the working set
     * (and answers ERROR_NOT_LOCKED): the nearest Windows has to MADV_DONTNEED for a
     * file view. Nothing is lost: the pages come back from the file or the section. */
    if (!VirtualUnlock(base, length) && GetLastError() != ERROR_NOT_LOCKED)
      bm__set_os_error((int)GetLastError());
    return 0;
  default:
    /* Sequential and random access hints exist only for cached file I/O
     * (FILE_FLAG_SEQUENTIAL_SCAN), not for views: accepted and ignored. */
    return 0;
  }
}

/* Committed on first write by the memory manager; nothing to do ahead of it here. */
int bm__os_populate_write(void *base, size_t length) {
  (void)base, (void)length;
  return BM_ENOTSUP;
}

int bm__os_populate(void *base, size_t length) {
  (void)base, (void)length;
  return BM_ENOTSUP; /* the caller touches every page under bm__os_guard */
}

/* ---------------------------------------------------------------------------------------
 * Processes and time. */

int64_t bm__os_pid(void) { return (int64_t)GetCurrentProcessId(); }

int64_t bm__os_time(void) {
  FILETIME ft;
  uint64_t t;
  GetSystemTimeAsFileTime(&ft);
  t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
  /* 100 ns ticks since 1601-01-01 to seconds since 1970-01-01. */
  return (int64_t)(t / 10000000u) - INT64_C(11644473600);
}
