#include <stdarg.h>
/* Test helpers: temporary files written with plain I/O, and spawned child processes. */
#define _GNU_SOURCE
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <io.h>
#include <process.h>
#include <windows.h>
#define open _open
#define close _close
#define O_BINARY_ _O_BINARY
#else
#include <dirent.h>
#include <spawn.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif
#include <sys/wait.h>
#include <unistd.h>
#define O_BINARY_ 0
extern char **environ;
#endif

static char tmpdir[512];

const char *bm_test_tmpdir(void) {
  if (tmpdir[0] != '\0') return tmpdir;
#ifdef _WIN32
  {
    char base[MAX_PATH];
    static unsigned serial;
    unsigned n = GetTempPathA(sizeof(base), base);
    BOOL made;
    ck_assert(n > 0 && n < sizeof(base));
    /* Check runs every test in this one process (no fork on Windows): a serial keeps the
     * names apart even when a failed test left its directory behind. */
    do {
      snprintf(tmpdir, sizeof(tmpdir), "%sbmtest-%lu-%lu-%u", base, (unsigned long)GetCurrentProcessId(),
               (unsigned long)GetTickCount(), serial++);
      made = CreateDirectoryA(tmpdir, NULL);
    } while (!made && GetLastError() == ERROR_ALREADY_EXISTS);
    ck_assert_msg(made, "cannot create %s: %lu", tmpdir, (unsigned long)GetLastError());
  }
#else
  {
    const char *base = getenv("BM_TEST_TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/bmtest-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  }
#endif
  return tmpdir;
}

void bm_test_tmp_cleanup(void) {
  if (tmpdir[0] == '\0') return;
#ifdef _WIN32
  {
    WIN32_FIND_DATAA fd;
    char pat[600], p[600];
    HANDLE h;
    snprintf(pat, sizeof(pat), "%s\\*", tmpdir);
    h = FindFirstFileA(pat, &fd);
    if (h != INVALID_HANDLE_VALUE) {
      do {
        if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s\\%s", tmpdir, fd.cFileName);
        DeleteFileA(p);
      } while (FindNextFileA(h, &fd));
      FindClose(h);
    }
    RemoveDirectoryA(tmpdir);
  }
#else
  {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[1024];
    if (d != NULL) {
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        unlink(p);
      }
      closedir(d);
    }
    rmdir(tmpdir);
  }
#endif
  tmpdir[0] = '\0';
}

const char *bm_test_path(const char *name) {
  static char bufs[4][768];
  static int next;
  char *b = bufs[next++ & 3];
#ifdef _WIN32
  snprintf(b, sizeof(bufs[0]), "%s\\%s", bm_test_tmpdir(), name);
#else
  snprintf(b, sizeof(bufs[0]), "%s/%s", bm_test_tmpdir(), name);
#endif
  return b;
}

void bm_test_write_pattern(const char *path, uint64_t size) {
  FILE *f = fopen(path, "wb");
  unsigned char buf[65536];
  uint64_t off = 0;
  ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
  while (off < size) {
    size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf), i;
    for (i = 0; i < n; i++) buf[i] = bm_test_byte(off + i);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    off += n;
  }
  ck_assert_int_eq(fclose(f), 0);
}

void bm_test_truncate(const char *path, uint64_t size) {
#ifdef _WIN32
  HANDLE h = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  LARGE_INTEGER li;
  ck_assert(h != INVALID_HANDLE_VALUE);
  li.QuadPart = (LONGLONG)size;
  ck_assert(SetFilePointerEx(h, li, NULL, FILE_BEGIN));
  ck_assert(SetEndOfFile(h));
  CloseHandle(h);
#else
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
  close(fd);
#endif
}

#ifdef _WIN32
unsigned long bm_test_try_truncate(const char *path, uint64_t size) {
  WCHAR w[600];
  HANDLE h;
  LARGE_INTEGER li;
  DWORD e = 0;
  ck_assert(MultiByteToWideChar(CP_UTF8, 0, path, -1, w, 600) > 0);
  h = CreateFileW(w, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  ck_assert(h != INVALID_HANDLE_VALUE);
  li.QuadPart = (LONGLONG)size;
  ck_assert(SetFilePointerEx(h, li, NULL, FILE_BEGIN));
  if (!SetEndOfFile(h)) e = GetLastError();
  CloseHandle(h);
  return e;
}
#endif

void bm_test_make_sparse(const char *path, uint64_t size) {
#ifdef _WIN32
  HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD got;
  ck_assert(h != INVALID_HANDLE_VALUE);
  DeviceIoControl(h, FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &got, NULL);
  CloseHandle(h);
#endif
  bm_test_truncate(path, size);
}

#ifdef _WIN32
void bm_test_pwrite(const char *path, uint64_t offset, const void *buf, size_t n) {
  HANDLE h = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  OVERLAPPED ov;
  DWORD done;
  ck_assert(h != INVALID_HANDLE_VALUE);
  memset(&ov, 0, sizeof(ov));
  ov.Offset = (DWORD)offset;
  ov.OffsetHigh = (DWORD)(offset >> 32);
  ck_assert(WriteFile(h, buf, (DWORD)n, &done, &ov) && done == n);
  CloseHandle(h);
}

size_t bm_test_pread(const char *path, uint64_t offset, void *buf, size_t n) {
  HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  size_t got = 0;
  ck_assert(h != INVALID_HANDLE_VALUE);
  /* One ReadFile reads at most about 2 GiB (Wine's limit): as many as it takes. */
  while (got < n) {
    OVERLAPPED ov;
    DWORD done = 0, want = (DWORD)(n - got < (1u << 30) ? n - got : (1u << 30));
    uint64_t at = offset + got;
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)at;
    ov.OffsetHigh = (DWORD)(at >> 32);
    if (!ReadFile(h, (char *)buf + got, want, &done, &ov) || done == 0) break;
    got += done;
  }
  CloseHandle(h);
  return got;
}
#else
void bm_test_pwrite(const char *path, uint64_t offset, const void *buf, size_t n) {
  int fd = open(path, O_WRONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(pwrite(fd, buf, n, (off_t)offset), (ssize_t)n);
  close(fd);
}

size_t bm_test_pread(const char *path, uint64_t offset, void *buf, size_t n) {
  int fd = open(path, O_RDONLY);
  size_t got = 0;
  ck_assert_int_ge(fd, 0);
  /* One pread reads at most 0x7ffff000 bytes on Linux: as many as it takes. */
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(offset + got));
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  return got;
}
#endif

/* Child processes. */
#define MAX_CHILDREN 32
static struct {
  const char *name;
  bm_test_child_fn fn;
} children[MAX_CHILDREN];
static int nchildren;
static char self_path[1024];

void bm_test_register_child(const char *name, bm_test_child_fn fn) {
  if (nchildren < MAX_CHILDREN) {
    children[nchildren].name = name;
    children[nchildren].fn = fn;
    nchildren++;
  }
}

const char *bm_test_self(void) { return self_path; }

int bm_test_child_main(int argc, char **argv) {
  int i;
#ifdef _WIN32
  GetModuleFileNameA(NULL, self_path, sizeof(self_path));
#else
  ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
  if (n > 0) self_path[n] = '\0';
  else snprintf(self_path, sizeof(self_path), "%s", argv[0]);
#endif
  if (argc < 3 || strcmp(argv[1], "--child") != 0) return 0;
  for (i = 0; i < nchildren; i++)
    if (strcmp(children[i].name, argv[2]) == 0) exit(children[i].fn(argc - 3, argv + 3));
  fprintf(stderr, "check_bulkmap: no child named %s\n", argv[2]);
  exit(99);
}

/* argv of the runner re-executed as child NAME with args (at most 28 of them). */
static void child_argv(const char *argv[32], const char *name, const char *const *args) {
  int n = 0;
  argv[n++] = self_path;
  argv[n++] = "--child";
  argv[n++] = name;
  while (args != NULL && *args != NULL && n < 31) argv[n++] = *args++;
  argv[n] = NULL;
}

#ifndef _WIN32
long bm_test_start_argv(const char *const *argv) {
  pid_t pid;
  if (posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0) return -1;
  return (long)pid;
}

long bm_test_start(const char *name, const char *const *args) {
  const char *argv[32];
  child_argv(argv, name, args);
  return bm_test_start_argv(argv);
}

int bm_test_wait(long pid) {
  int st;
  if (pid < 0) return -1;
  while (waitpid((pid_t)pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WEXITSTATUS(st);
}
#endif

int bm_test_spawn(const char *name, const char *const *args) {
#ifdef _WIN32
  const char *argv[32];
  child_argv(argv, name, args);
  {
    intptr_t rc = _spawnv(_P_WAIT, self_path, argv);
    return rc < 0 ? -1 : (int)rc;
  }
#else
  return bm_test_wait(bm_test_start(name, args));
#endif
}

void bm_test_note_skip(const char *test, const char *fmt, ...) {
  const char *path = getenv("BM_SKIP_FILE");
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "SKIP %s: %s\n", test, msg);
  if (path != NULL && path[0] != '\0') {
    FILE *f = fopen(path, "a");
    if (f != NULL) {
      fprintf(f, "%s: %s\n", test, msg);
      fclose(f);
    }
  }
}

void bm_test_private_shm(void) {
#ifdef __linux__
  if (geteuid() != 0) return;
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("bmtest", "/dev/shm", "tmpfs", 0, "mode=1777") != 0)
    fprintf(stderr, "note: no private /dev/shm (%s): reclaiming in the shared one\n", strerror(errno));
#endif
}
