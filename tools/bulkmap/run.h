/* Running a window pipeline on the tool's one libuv loop, with the progress timer and the
 * SIGINT/SIGTERM handlers. */
#ifndef BULKMAP_RUN_H
#define BULKMAP_RUN_H

#include "bulkmap_uv.h"
#include "cli.h"

typedef struct cli_run_s {
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_signal_t sigint, sigterm;
  bm_uv_pipeline_t pipe;
  cli_progress_t progress;
  int interrupted; /* a signal arrived */
  int status;      /* the pipeline's status */
  void *ctx;       /* the command's own state, for its pipeline callbacks (data is this) */
} cli_run_t;

/* Streams src through the pipeline described by o (o->done is set here). Returns the
 * pipeline status (BM_E*), or the start error; r->interrupted tells of a signal. */
int cli_run(cli_run_t *r, bm_source_t *src, bm_uv_pipeline_opts_t *o, int progress);
/* Blocks on the loop until SIGINT or SIGTERM (Ctrl-C on Windows). */
void cli_wait_for_signal(void);

#endif
