/* Guarded calls: a SIGBUS raised in a thread inside bm_guard_call unwinds to it and becomes
 * BM_ETRUNCATED. The handler is installed while any guarded call runs (reference counted
 * under a mutex) and the previous one restored after the last; faults outside a guarded
 * call are passed on to that previous handler. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include "../os.h"
#include "posix.h"

static pthread_mutex_t posix_guard_lock = PTHREAD_MUTEX_INITIALIZER;
static int posix_guard_users;
/* Our handler is installed. Kept apart from the count: when restoring the previous handler
 * fails, ours stays in place, and the next guarded call must not save it as "previous"
 * (a fault outside any guarded call would then be passed to ourselves, for ever). */
static int posix_guard_installed;
static struct sigaction posix_guard_prev;
static _Thread_local sigjmp_buf *posix_guard_jmp;

static void posix_guard_handler(int sig, siginfo_t *info, void *uctx) {
  sigjmp_buf *jb = posix_guard_jmp;
  if (jb != NULL) siglongjmp(*jb, 1);
  /* Not ours. Returning re-runs the faulting instruction, so with the default action the
   * process dies of SIGBUS as it would have without us. */
  if (posix_guard_prev.sa_flags & SA_SIGINFO) {
    posix_guard_prev.sa_sigaction(sig, info, uctx);
  } else if (posix_guard_prev.sa_handler != SIG_DFL && posix_guard_prev.sa_handler != SIG_IGN) {
    posix_guard_prev.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
  }
}

static int posix_guard_enter(void) {
  struct sigaction sa;
  int err = 0;
  pthread_mutex_lock(&posix_guard_lock);
  if (!posix_guard_installed) {
    sa.sa_sigaction = posix_guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (bm__sys_sigaction(SIGBUS, &sa, &posix_guard_prev) != 0)
      bm__set_os_error(errno), err = BM_EOS;
    else
      posix_guard_installed = 1;
  }
  if (err == 0) posix_guard_users++;
  pthread_mutex_unlock(&posix_guard_lock);
  return err;
}

static void posix_guard_leave(void) {
  pthread_mutex_lock(&posix_guard_lock);
  if (--posix_guard_users == 0 && bm__sys_sigaction(SIGBUS, &posix_guard_prev, NULL) == 0)
    posix_guard_installed = 0;
  pthread_mutex_unlock(&posix_guard_lock);
}

int bm__os_guard(int (*fn)(void *arg), void *arg) {
  sigjmp_buf jb;
  sigjmp_buf *volatile outer = posix_guard_jmp;
  volatile int rc;

  if ((rc = posix_guard_enter()) != 0) return rc;
  /* savemask=1: the handler runs with SIGBUS blocked unless SA_NODEFER; restore the mask
   * either way so that a second fault is caught too. */
  if (sigsetjmp(jb, 1) == 0) {
    posix_guard_jmp = &jb;
    rc = fn(arg);
  } else {
    bm__set_os_error(0);
    rc = BM_ETRUNCATED;
  }
  posix_guard_jmp = outer;
  posix_guard_leave();
  return rc;
}
