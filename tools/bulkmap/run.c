/* The tool's libuv loop: one uv_loop_t drives bulkmap_uv's scan, a uv_timer the progress
 * bar, and a uv_async woken by cli.c's signal handler turns a signal into a clean cancel.
 * libuv aborts the process when it cannot get what its loop and thread pool need (a pipe,
 * a thread), so that is checked first and reported as an error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "plat.h"
#include "run.h"

static uv_loop_t *run_loop;
static uv_async_t run_async;
static cli_run_t *run_current; /* the run a signal cancels */
static int run_waiting;        /* cli_wait_for_signal is blocked on the loop */
static unsigned run_pool_ok;   /* threads the pool was checked to start */

/* A libuv error as a BM_E* code, with the OS error. */
static int run_uv_error(int e, int *os) {
  *os = -e;
  if (e == UV_EMFILE || e == UV_ENFILE) return BM_EMFILE;
  if (e == UV_ENOMEM) return BM_ENOMEM;
  if (e == UV_EAGAIN) return BM_EAGAIN;
  return BM_EOS;
}

static void run_wake(void) { uv_async_send(&run_async); }

static void run_on_async(uv_async_t *h) {
  int sig = cli_signal_caught();
  if (sig == 0) return;
  if (run_current != NULL && !run_current->interrupted) {
    run_current->interrupted = 1;
    run_current->signum = sig;
    bm_uv_scan_cancel(&run_current->scan, BM_EBUSY);
  }
  if (run_waiting) uv_stop(h->loop);
}

/* The loop, made once. Before libuv makes it, the descriptors it needs (the pipe of its
 * global signal lock, the epoll descriptor, the loop's signal pipe, an eventfd: 6) are
 * checked to be available: libuv aborts when the lock's pipe cannot be made. */
static int run_get_loop(int *os) {
  int err;
  *os = 0;
  if (run_loop != NULL) return 0;
  if ((err = plat_fds_available(6)) != 0) return *os = err, BM_EMFILE;
  errno = 0;
  if ((run_loop = uv_default_loop()) == NULL) {
    *os = errno;
    return errno == EMFILE || errno == ENFILE ? BM_EMFILE : BM_ENOMEM;
  }
  if ((err = uv_async_init(run_loop, &run_async, run_on_async)) != 0) {
    run_loop = NULL;
    return run_uv_error(err, os);
  }
  uv_unref((uv_handle_t *)&run_async);
  cli_signal_wake = run_wake;
  return 0;
}

/* libuv's pool aborts the process when a thread cannot be started (ulimit -u, -v): start
 * as many as it will, all at once, and let them go, before it does. */
static void run_pool_thread(void *arg) { uv_sem_wait(arg); }

static int run_check_pool(int *os) {
  const char *env = getenv("UV_THREADPOOL_SIZE");
  unsigned n = env != NULL && atoi(env) > 0 ? (unsigned)atoi(env) : 4, k, i;
  uv_thread_t *t;
  uv_sem_t sem;
  int err = 0;
  if (n > 1024) n = 1024;
  if (run_pool_ok >= n) return 0;
  if ((t = malloc(n * sizeof(*t))) == NULL) return *os = 0, BM_ENOMEM;
  if ((err = uv_sem_init(&sem, 0)) != 0) {
    free(t);
    return run_uv_error(err, os);
  }
  for (k = 0; k < n; k++)
    if ((err = uv_thread_create(&t[k], run_pool_thread, &sem)) != 0) break;
  for (i = 0; i < k; i++) uv_sem_post(&sem);
  for (i = 0; i < k; i++) uv_thread_join(&t[i]);
  uv_sem_destroy(&sem);
  free(t);
  if (err != 0) return run_uv_error(err, os);
  run_pool_ok = n;
  return 0;
}

static void run_on_timer(uv_timer_t *t) {
  cli_run_t *r = t->data;
  if (r->walking) progress_draw(&r->progress, r->done);
}

/* An item's walk begins (done 0: the bar starts over), or went on. */
static void run_on_progress(bm_uv_scan_t *s, size_t item, uint64_t done, uint64_t total,
                            void *data) {
  cli_run_t *r = data;
  (void)s;
  (void)item;
  if (!r->walking) {
    progress_init(&r->progress, 1, total);
    r->walking = 1;
  }
  r->done = done;
}

static void run_on_item(bm_uv_scan_t *s, size_t item, void *data) {
  cli_run_t *r = data;
  (void)s;
  if (r->walking) progress_clear(&r->progress);
  r->walking = 0;
  if (r->item_done != NULL) r->item_done(r, item);
}

static void run_on_done(bm_uv_scan_t *s, int status, void *data) {
  cli_run_t *r = data;
  (void)s;
  r->status = status;
  uv_timer_stop(&r->timer);
  progress_clear(&r->progress);
  r->walking = 0;
}

static void run_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (h != (uv_handle_t *)&run_async && !uv_is_closing(h)) uv_close(h, NULL);
}

static void run_close_loop(uv_loop_t *loop) {
  uv_walk(loop, run_close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

int cli_run_scan(cli_run_t *r, bm_uv_scan_item_t *items, size_t n, bm_uv_scan_opts_t *o,
                 int progress) {
  int err, os, was;
  r->walking = r->interrupted = r->signum = r->status = r->os_error = 0;
  r->done = 0;
  if ((err = run_get_loop(&os)) != 0 || (err = run_check_pool(&os)) != 0) {
    r->os_error = os;
    return err;
  }
  r->loop = run_loop;
  progress_init(&r->progress, progress, 0); /* on: a terminal, and not --no-progress */
  o->progress = r->progress.on ? run_on_progress : NULL;
  o->item_done = run_on_item;
  o->done = run_on_done;
  o->data = r;
  if ((err = uv_timer_init(r->loop, &r->timer)) != 0) {
    err = run_uv_error(err, &os);
    r->os_error = os;
    return err;
  }
  r->timer.data = r;
  cli_signals_ensure(); /* ours again, should a command have put its own in */
  was = cli_signals_defer(1);
  run_current = r;
  err = bm_uv_scan_start(&r->scan, r->loop, items, n, o);
  if (err == 0) {
    /* A signal that came before the scan existed cancels it now. */
    if (cli_signal_caught() != 0) run_on_async(&run_async);
    if (r->progress.on) uv_timer_start(&r->timer, run_on_timer, 100, 200);
    uv_run(r->loop, UV_RUN_DEFAULT);
  }
  run_current = NULL;
  run_close_loop(r->loop);
  cli_signals_defer(was);
  if (!r->interrupted && cli_signal_caught() != 0) {
    r->interrupted = 1;
    r->signum = cli_signal_caught();
  }
  return err;
}

int cli_wait_for_signal(void) {
  int os, err, was;
  if ((err = run_get_loop(&os)) != 0) {
    cli_lib_error_os(cli_command, err, os);
    return 0;
  }
  cli_signals_ensure();
  was = cli_signals_defer(1);
  if (cli_signal_caught() == 0) {
    run_waiting = 1;
    uv_ref((uv_handle_t *)&run_async);
    uv_run(run_loop, UV_RUN_DEFAULT);
    uv_unref((uv_handle_t *)&run_async);
    run_waiting = 0;
  }
  cli_signals_defer(was);
  return cli_signal_caught();
}
