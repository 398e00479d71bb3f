/* The tool's libuv loop: one uv_loop_t drives the pipeline, a uv_timer the progress bar and
 * uv_signal handles turn SIGINT/SIGTERM into a clean cancel. */
#include <string.h>
#include "run.h"

static void run_on_signal(uv_signal_t *h, int signum) {
  cli_run_t *r = h->data;
  (void)signum;
  r->interrupted = 1;
  bm_uv_pipeline_cancel(&r->pipe, BM_EBUSY);
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
  uv_signal_stop(&r->sigint);
  uv_signal_stop(&r->sigterm);
  progress_clear(&r->progress);
}

static void run_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void run_close_loop(uv_loop_t *loop) {
  uv_walk(loop, run_close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

int cli_run(cli_run_t *r, bm_source_t *src, bm_uv_pipeline_opts_t *o, int progress) {
  int err;
  r->loop = uv_default_loop();
  r->interrupted = 0;
  r->status = 0;
  o->done = run_on_done;
  o->data = r;
  uv_signal_init(r->loop, &r->sigint);
  uv_signal_init(r->loop, &r->sigterm);
  uv_timer_init(r->loop, &r->timer);
  r->sigint.data = r->sigterm.data = r->timer.data = r;
  uv_signal_start(&r->sigint, run_on_signal, SIGINT);
  uv_signal_start(&r->sigterm, run_on_signal, SIGTERM);
  err = bm_uv_pipeline_start(&r->pipe, r->loop, src, o);
  if (err != 0) {
    run_close_loop(r->loop);
    return err;
  }
  progress_init(&r->progress, progress, r->pipe.total);
  if (r->progress.on) uv_timer_start(&r->timer, run_on_timer, 100, 200);
  uv_run(r->loop, UV_RUN_DEFAULT);
  run_close_loop(r->loop);
  return r->status;
}

static void wait_on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  uv_signal_stop(h);
  uv_stop(h->loop);
}

void cli_wait_for_signal(void) {
  uv_loop_t *loop = uv_default_loop();
  uv_signal_t a, b;
  uv_signal_init(loop, &a);
  uv_signal_init(loop, &b);
  uv_signal_start(&a, wait_on_signal, SIGINT);
  uv_signal_start(&b, wait_on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  run_close_loop(loop);
}
