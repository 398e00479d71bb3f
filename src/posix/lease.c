/* POSIX backend: the source's stability during a load (docs/datasets.md). A change that
 * the file's size and times do not show (another process writing through a shared mapping
 * whose pages are dirty already) is caught where the kernel can tell: a read lease
 * (F_SETLEASE F_RDLCK) can only be had while nobody has the file open for writing, and is
 * broken when someone opens it so. The lease needs the file's owner or CAP_LEASE.
 *
 * A lease break is a signal. So that it never kills the loader (SIGIO's default) nor waits
 * for the lease-break time (another process's open for writing blocks until the lease is
 * released), it is sent (F_SETSIG, F_SETOWN_EX F_OWNER_TID) to a thread of ours that has
 * the signal blocked and takes it with sigtimedwait: it releases the lease at once and
 * notes the break. Other threads never see it (a signal for a thread stays that thread's). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

struct bm__os_lease_s {
  int fd;
  pthread_t thread;
  int sig;
  volatile int broken, stop, ready;
  pid_t tid;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

/* SIGRTMAX - 2: not one of glibc's own (SIGRTMIN's first ones), rarely any program's. */
static int lease_signal(void) { return SIGRTMAX - 2; }

static void *lease_main(void *arg) {
  bm__os_lease_t *l = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, l->sig);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_mutex_lock(&l->mu);
  l->tid = (pid_t)syscall(SYS_gettid);
  l->ready = 1;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
  while (!l->stop) {
    siginfo_t si;
    struct timespec ts = {0, 20 * 1000 * 1000};
    if (sigtimedwait(&set, &si, &ts) == l->sig) {
      /* Broken: released now, so the opener waits milliseconds, not the break time. */
      l->broken = 1;
      fcntl(l->fd, F_SETLEASE, F_UNLCK);
    }
  }
  return NULL;
}

int bm__os_lease_take(bm_source_t *src, bm__os_lease_t **out, char *why, size_t why_n) {
#if defined(F_SETLEASE) && defined(F_SETSIG) && defined(F_SETOWN_EX)
  bm__os_lease_t *l;
  struct f_owner_ex own;
  int e;
  *out = NULL;
  if ((l = calloc(1, sizeof(*l))) == NULL) return BM_ENOMEM;
  l->fd = src->fd;
  l->sig = lease_signal();
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
    snprintf(why, why_n, "no thread to take a lease's break");
    free(l);
    return BM_EAGAIN;
  }
  pthread_mutex_lock(&l->mu);
  while (!l->ready) pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  own.type = F_OWNER_TID;
  own.pid = l->tid;
  if (fcntl(src->fd, F_SETSIG, l->sig) != 0 || fcntl(src->fd, F_SETOWN_EX, &own) != 0 ||
      fcntl(src->fd, F_SETLEASE, F_RDLCK) != 0) {
    e = errno;
    if (e == EAGAIN)
      snprintf(why, why_n, "the file is open for writing in another process (no read lease)");
    else if (e == EACCES || e == EPERM)
      snprintf(why, why_n, "not the file's owner and no CAP_LEASE (no read lease)");
    else if (e == EINVAL)
      snprintf(why, why_n, "the file system gives no leases");
    else
      snprintf(why, why_n, "no read lease: %s", strerror(e));
    bm__os_lease_end(l);
    return bm__set_os_error(e), BM_ENOTSUP;
  }
  *out = l;
  return 0;
#else
  (void)src;
  *out = NULL;
  snprintf(why, why_n, "this system gives no file leases");
  return BM_ENOTSUP;
#endif
}

int bm__os_lease_broken(bm__os_lease_t *l) {
  if (l == NULL) return 0;
#ifdef F_GETLEASE
  /* A break not taken yet shows as a lease being taken down. */
  if (!l->broken && fcntl(l->fd, F_GETLEASE) != F_RDLCK) l->broken = 1;
#endif
  return l->broken;
}

void bm__os_lease_end(bm__os_lease_t *l) {
  if (l == NULL) return;
#ifdef F_SETLEASE
  fcntl(l->fd, F_SETLEASE, F_UNLCK);
#endif
  l->stop = 1;
  pthread_join(l->thread, NULL);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l);
}
