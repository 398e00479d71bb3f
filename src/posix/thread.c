/* Threads, a mutex with its condition variable, the clock and reads at an offset, for the
 * scan engine's and the load's workers (src/pool.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

struct bm__os_thread_s {
  pthread_t tid;
  void (*fn)(void *arg);
  void *arg;
};

static void *posix_thread_main(void *arg) {
  bm__os_thread_t *t = arg;
  t->fn(t->arg);
  return NULL;
}

int bm__os_thread_start(bm__os_thread_t **out, void (*fn)(void *arg), void *arg) {
  bm__os_thread_t *t = malloc(sizeof(*t));
  int e;
  if (t == NULL) return BM_ENOMEM;
  t->fn = fn;
  t->arg = arg;
  if ((e = bm__sys_pthread_create(&t->tid, NULL, posix_thread_main, t)) != 0) {
    free(t);
    bm__set_os_error(e);
    return e == ENOMEM ? BM_ENOMEM : BM_EAGAIN;
  }
  *out = t;
  return 0;
}

void bm__os_thread_join(bm__os_thread_t *t) {
  pthread_join(t->tid, NULL);
  free(t);
}

struct bm__os_lock_s {
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

int bm__os_lock_new(bm__os_lock_t **out) {
  bm__os_lock_t *l = malloc(sizeof(*l));
  pthread_condattr_t ca;
  if (l == NULL) return BM_ENOMEM;
  pthread_mutex_init(&l->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&l->cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = l;
  return 0;
}

void bm__os_lock_free(bm__os_lock_t *l) {
  if (l == NULL) return;
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

void bm__os_lock(bm__os_lock_t *l) { pthread_mutex_lock(&l->mu); }
void bm__os_unlock(bm__os_lock_t *l) { pthread_mutex_unlock(&l->mu); }
void bm__os_lock_broadcast(bm__os_lock_t *l) { pthread_cond_broadcast(&l->cv); }

void bm__os_lock_wait_ms(bm__os_lock_t *l, unsigned ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  pthread_cond_timedwait(&l->cv, &l->mu, &ts);
}

unsigned bm__os_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > BM_SCAN_MAX_THREADS ? BM_SCAN_MAX_THREADS : (unsigned)n;
}

double bm__os_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bm__os_as_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) return (uint64_t)rl.rlim_cur;
  return 0;
}

int bm__os_write_at(bm_source_t *dst, uint64_t offset, const void *buf, size_t n) {
  size_t put = 0;
  /* hugetlbfs has no write(2): the caller copies through a mapping there. */
  if (dst->hugetlb) return BM_ENOTSUP;
  while (put < n) {
    ssize_t r = bm__sys_pwrite(dst->fd, (const char *)buf + put, n - put, (off_t)(offset + put));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      bm__set_os_error(e);
      if (e == EINVAL || e == EBADF) return BM_ENOTSUP;
      /* EFAULT: a page of the buffer could not be read (its backing file shrank). */
      if (e == EFAULT) return BM_ETRUNCATED;
      if (e == ENOSPC || e == ENOMEM || e == EFBIG) return BM_ENOSPC;
      return BM_EIO;
    }
    put += (size_t)r;
  }
  return 0;
}

int bm__os_read_at(bm_source_t *src, uint64_t offset, void *buf, size_t n, size_t *got) {
  ssize_t r;
  do r = pread(src->fd, buf, n, (off_t)offset);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    bm__set_os_error(e);
    /* EFAULT: the kernel could not get a page of the buffer (a section's shared memory is
     * full); the read itself was fine. */
    return e == EFAULT ? BM_ENOSPC : BM_EIO;
  }
  *got = (size_t)r;
  return 0;
}
