/* Threads (CreateThread), a mutex with its condition variable (SRWLOCK and
 * CONDITION_VARIABLE), the clock and reads at an offset, for the scan engine's and the
 * load's workers (src/pool.c). */
#include <stdlib.h>
#include <string.h>
#include "../os.h"
#include "win.h"

struct bm__os_thread_s {
  HANDLE h;
  void (*fn)(void *arg);
  void *arg;
};

static DWORD WINAPI win_thread_main(LPVOID arg) {
  bm__os_thread_t *t = arg;
  t->fn(t->arg);
  return 0;
}

int bm__os_thread_start(bm__os_thread_t **out, void (*fn)(void *arg), void *arg) {
  bm__os_thread_t *t = malloc(sizeof(*t));
  if (t == NULL) return BM_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  if ((t->h = CreateThread(NULL, 0, win_thread_main, t, 0, NULL)) == NULL) {
    bm__win_last_error();
    free(t);
    return BM_EAGAIN;
  }
  *out = t;
  return 0;
}

void bm__os_thread_join(bm__os_thread_t *t) {
  WaitForSingleObject(t->h, INFINITE);
  CloseHandle(t->h);
  free(t);
}

struct bm__os_lock_s {
  SRWLOCK mu;
  CONDITION_VARIABLE cv;
};

int bm__os_lock_new(bm__os_lock_t **out) {
  bm__os_lock_t *l = malloc(sizeof(*l));
  if (l == NULL) return BM_ENOMEM;
  InitializeSRWLock(&l->mu);
  InitializeConditionVariable(&l->cv);
  *out = l;
  return 0;
}

void bm__os_lock_free(bm__os_lock_t *l) { free(l); }
void bm__os_lock(bm__os_lock_t *l) { AcquireSRWLockExclusive(&l->mu); }
void bm__os_unlock(bm__os_lock_t *l) { ReleaseSRWLockExclusive(&l->mu); }
void bm__os_lock_broadcast(bm__os_lock_t *l) { WakeAllConditionVariable(&l->cv); }
void bm__os_lock_wait_ms(bm__os_lock_t *l, unsigned ms) {
  SleepConditionVariableSRW(&l->cv, &l->mu, ms, 0);
}

unsigned bm__os_cpu_count(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwNumberOfProcessors < 1 ? 1
         : si.dwNumberOfProcessors > BM_SCAN_MAX_THREADS ? BM_SCAN_MAX_THREADS
                                                         : (unsigned)si.dwNumberOfProcessors;
}

double bm__os_now(void) {
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;
  if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (double)now.QuadPart / (double)freq.QuadPart;
}

/* Windows has no per-process address-space limit of the ulimit -v kind. */
uint64_t bm__os_as_limit(void) { return 0; }

/* A section (a paging-file mapping) has no file to write to: copies go through views. */
int bm__os_write_at(bm_source_t *dst, uint64_t offset, const void *buf, size_t n) {
  (void)dst, (void)offset, (void)buf, (void)n;
  return BM_ENOTSUP;
}

int bm__os_read_at(bm_source_t *src, uint64_t offset, void *buf, size_t n, size_t *got) {
  OVERLAPPED ov;
  DWORD r = 0;
  memset(&ov, 0, sizeof(ov));
  ov.Offset = (DWORD)offset;
  ov.OffsetHigh = (DWORD)(offset >> 32);
  /* A read at the end of the file fails with ERROR_HANDLE_EOF: 0 bytes, as pread says. */
  if (!ReadFile((HANDLE)src->fd, buf, (DWORD)n, &r, &ov)) {
    DWORD e = GetLastError();
    if (e == ERROR_HANDLE_EOF) {
      *got = 0;
      return 0;
    }
    bm__win_error(e);
    /* A page of the section could not be committed (the paging file is full). */
    return e == ERROR_NOACCESS || e == ERROR_COMMITMENT_LIMIT ? BM_ENOSPC : BM_EIO;
  }
  *got = r;
  return 0;
}
