/* The tool's libuv loop: one uv_loop_t drives the pipeline, a uv_timer the progress bar,
 * and a uv_async woken by cli.c's signal handler turns a signal into a clean cancel.
 * libuv aborts the process when it cannot get what its loop and thread pool need (a pipe,
 * a thread), so that is checked first and reported as an error. */
#include <errno.h>
#include <stdatomic.h>
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

/* cli_run_jobs: jobs queued a few at a time, so that a signal stops the rest at once. */
typedef struct {
  uv_work_t req;
  size_t i;
} run_job_t;

static struct {
  void (*fn)(size_t i, void *ctx);
  void *ctx;
  size_t n, next, active, window;
  atomic_int stop; /* a signal: jobs not yet run do nothing */
  int full;        /* a job could not be queued: no more are */
  int signum;
  run_job_t *jobs;
} run_jobs;

static void run_on_async(uv_async_t *h) {
  int sig = cli_signal_caught();
  if (sig == 0) return;
  if (run_current != NULL && !run_current->interrupted) {
    run_current->interrupted = 1;
    run_current->signum = sig;
    bm_uv_pipeline_cancel(&run_current->pipe, BM_EBUSY);
  }
  if (run_waiting) uv_stop(h->loop);
  if (run_jobs.jobs != NULL && !atomic_load(&run_jobs.stop)) {
    run_jobs.signum = sig;
    atomic_store(&run_jobs.stop, 1);
  }
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
  progress_draw(&r->progress, r->pipe.bytes_done);
}

static void run_on_done(bm_uv_pipeline_t *p, int status, void *data) {
  cli_run_t *r = data;
  (void)p;
  r->status = status;
  uv_timer_stop(&r->timer);
  progress_clear(&r->progress);
}

static void run_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (h != (uv_handle_t *)&run_async && !uv_is_closing(h)) uv_close(h, NULL);
}

static void run_close_loop(uv_loop_t *loop) {
  uv_walk(loop, run_close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static int run_go(cli_run_t *r, bm_source_t *src, uv_file fd, bm_uv_pipeline_opts_t *o,
                  int progress) {
  int err, os, was;
  void *ctx = r->ctx;
  memset(r, 0, sizeof(*r));
  r->ctx = ctx;
  if ((err = run_get_loop(&os)) != 0 || (err = run_check_pool(&os)) != 0) {
    r->pipe.os_error = os;
    return err;
  }
  r->loop = run_loop;
  o->done = run_on_done;
  o->data = r;
  if ((err = uv_timer_init(r->loop, &r->timer)) != 0) {
    err = run_uv_error(err, &os);
    r->pipe.os_error = os;
    return err;
  }
  r->timer.data = r;
  cli_signals_ensure(); /* ours again, should a command have put its own in */
  was = cli_signals_defer(1);
  run_current = r;
  err = src != NULL ? bm_uv_pipeline_start(&r->pipe, r->loop, src, o)
                    : bm_uv_pipeline_start_fd(&r->pipe, r->loop, fd, o);
  if (err == 0) {
    /* A signal that came before the pipeline existed cancels it now. */
    if (cli_signal_caught() != 0) run_on_async(&run_async);
    progress_init(&r->progress, progress, r->pipe.total);
    if (r->progress.on) uv_timer_start(&r->timer, run_on_timer, 100, 200);
    uv_run(r->loop, UV_RUN_DEFAULT);
    err = r->status;
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

int cli_run(cli_run_t *r, bm_source_t *src, bm_uv_pipeline_opts_t *o, int progress) {
  return run_go(r, src, -1, o, progress);
}

int cli_run_fd(cli_run_t *r, uv_file fd, bm_uv_pipeline_opts_t *o, int progress) {
  return run_go(r, NULL, fd, o, progress);
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

static void run_jobs_fill(void);

static void run_job_work(uv_work_t *req) {
  run_job_t *j = req->data;
  if (!atomic_load(&run_jobs.stop)) run_jobs.fn(j->i, run_jobs.ctx);
}

static void run_job_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  run_jobs.active--;
  run_jobs_fill();
}

static void run_jobs_fill(void) {
  while (!atomic_load(&run_jobs.stop) && !run_jobs.full && run_jobs.next < run_jobs.n &&
         run_jobs.active < run_jobs.window) {
    run_job_t *j = &run_jobs.jobs[run_jobs.next]; /* jobs end in any order: one each */
    j->i = run_jobs.next;
    j->req.data = j;
    if (uv_queue_work(run_loop, &j->req, run_job_work, run_job_after) != 0) {
      run_jobs.full = 1; /* the caller does what is left itself */
      return;
    }
    run_jobs.next++;
    run_jobs.active++;
  }
}

int cli_run_jobs(size_t n, void (*fn)(size_t i, void *ctx), void *ctx, size_t *done, int *signum) {
  const char *env = getenv("UV_THREADPOOL_SIZE");
  int err, os, was;
  *done = 0;
  *signum = 0;
  if ((err = run_get_loop(&os)) != 0 || (err = run_check_pool(&os)) != 0) return err;
  memset(&run_jobs, 0, sizeof(run_jobs));
  run_jobs.fn = fn;
  run_jobs.ctx = ctx;
  run_jobs.n = n;
  run_jobs.window = 4 * (env != NULL && atoi(env) > 0 ? (size_t)atoi(env) : 4);
  if ((run_jobs.jobs = calloc(n ? n : 1, sizeof(run_job_t))) == NULL) return BM_ENOMEM;
  cli_signals_ensure();
  was = cli_signals_defer(1);
  if (cli_signal_caught() != 0) run_on_async(&run_async);
  run_jobs_fill();
  uv_run(run_loop, UV_RUN_DEFAULT);
  cli_signals_defer(was);
  if (run_jobs.signum == 0 && cli_signal_caught() != 0) run_jobs.signum = cli_signal_caught();
  *signum = run_jobs.signum;
  /* Jobs run in order of i; those not run (a signal, a failed queue) are left to the caller. */
  *done = run_jobs.signum != 0 ? 0 : run_jobs.next;
  free(run_jobs.jobs);
  run_jobs.jobs = NULL;
  return 0;
}
