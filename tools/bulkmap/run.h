/* Running a bulkmap_uv scan on the tool's one libuv loop, with the progress timer and the
 * signals of cli.h acted on as a clean cancel. */
#ifndef BULKMAP_RUN_H
#define BULKMAP_RUN_H

#include "bulkmap_uv.h"
#include "cli.h"

typedef struct cli_run_s {
  uv_loop_t *loop;
  uv_timer_t timer;
  bm_uv_scan_t scan;
  cli_progress_t progress;
  int walking;     /* an item's walk is on the progress bar */
  uint64_t done;   /* its bytes scanned so far */
  int interrupted; /* a terminating signal arrived (signum says which) */
  int signum;      /* that signal, 0 when none: exit with cli_signal_status(signum) */
  int status;      /* the scan's status (0, or the cancel's) */
  int os_error;    /* the OS error behind a failure to start */
  /* The command's: item's result is final (loop thread, in item order). */
  void (*item_done)(struct cli_run_s *r, size_t item);
  void *ctx;       /* the command's own state */
} cli_run_t;

/* Scans items[0, n) as o describes (o->progress, item_done, done and data are set here;
 * r->item_done and r->ctx are the command's, kept). Returns 0 when the scan ran (each item
 * has its status; r->interrupted and r->signum tell of a signal, which cancelled it), or
 * the start error: when the loop or the thread pool cannot be had (ulimit -n, -u, -v)
 * BM_EMFILE, BM_EAGAIN, BM_ENOMEM or BM_EOS with the OS error in r->os_error, and nothing
 * was started. Signals are deferred while it runs (cli_signals_defer), and stay so after
 * it when they were before. */
int cli_run_scan(cli_run_t *r, bm_uv_scan_item_t *items, size_t n, bm_uv_scan_opts_t *o,
                 int progress);
/* cli_wait_for_signal (run.c's) is declared in cli.h. */

#endif
