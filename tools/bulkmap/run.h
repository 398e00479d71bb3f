/* Running a window pipeline on the tool's one libuv loop, with the progress timer and the
 * signals of cli.h acted on as a clean cancel. */
#ifndef BULKMAP_RUN_H
#define BULKMAP_RUN_H

#include "bulkmap_uv.h"
#include "cli.h"

typedef struct cli_run_s {
  uv_loop_t *loop;
  uv_timer_t timer;
  bm_uv_pipeline_t pipe;
  cli_progress_t progress;
  int interrupted; /* a terminating signal arrived (signum says which) */
  int signum;      /* that signal, 0 when none: exit with cli_signal_status(signum) */
  int status;      /* the pipeline's status */
  void *ctx;       /* the command's own state, for its pipeline callbacks (data is this) */
} cli_run_t;

/* Streams src through the pipeline described by o (o->done is set here). Returns the
 * pipeline status (BM_E*), or the start error; r->interrupted and r->signum tell of a
 * signal (the pipeline was cancelled). When the loop or the thread pool cannot be had
 * (ulimit -n, -u, -v) it returns BM_EMFILE, BM_EAGAIN, BM_ENOMEM or BM_EOS with the OS
 * error in r->pipe.os_error, and nothing was started. Signals are deferred while it runs
 * (cli_signals_defer), and stay so after it when they were before. */
int cli_run(cli_run_t *r, bm_source_t *src, bm_uv_pipeline_opts_t *o, int progress);
/* The same over a stream (a pipe, standard input): bm_uv_pipeline_start_fd. */
int cli_run_fd(cli_run_t *r, uv_file fd, bm_uv_pipeline_opts_t *o, int progress);
/* Runs fn(i, ctx) for i in [0, n) on the thread pool, several at once (any order, fn must
 * be thread-safe), signals deferred meanwhile. Returns 0, or when the loop or the pool
 * cannot be had a BM_E* code (nothing ran: the caller may do the work itself). *done: the
 * jobs 0..*done-1 ran (the rest, after a failure to queue one, did not); *signum: a
 * terminating signal that stopped them (0: none). */
int cli_run_jobs(size_t n, void (*fn)(size_t i, void *ctx), void *ctx, size_t *done, int *signum);
/* cli_wait_for_signal (run.c's) is declared in cli.h. */

#endif
