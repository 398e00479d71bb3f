/* bulkmap_uv: the window pipeline. The loop thread owns all bookkeeping; pool threads map,
 * fault in, run the callbacks and unmap. Slot k % inflight carries window k. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bulkmap_uv.h"

enum { SLOT_FREE = 0, SLOT_PARALLEL, SLOT_READY, SLOT_ORDERED };

typedef struct {
  _Atomic uint64_t mapped, peak;
} pipe_counters_t;

static void pipe_schedule(bm_uv_pipeline_t *p);
static void pipe_try_ordered(bm_uv_pipeline_t *p);

static void pipe_account(bm_uv_pipeline_t *p, int64_t delta) {
  pipe_counters_t *c = p->mapped;
  uint64_t now = atomic_fetch_add(&c->mapped, (uint64_t)delta) + (uint64_t)delta;
  uint64_t peak = atomic_load(&c->peak);
  while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now)) {
  }
}

/* The callbacks touch mapped bytes: a source cut short by another process after the
 * window was faulted in would raise SIGBUS there, so they run guarded. */
static int pipe_call_parallel(void *arg) {
  bm_uv_window_t *w = arg;
  return w->pipe->o.parallel(w, w->pipe->o.data);
}

static int pipe_call_ordered(void *arg) {
  bm_uv_window_t *w = arg;
  return w->pipe->o.ordered(w, w->pipe->o.data);
}

static void pipe_unmap(bm_uv_window_t *w) {
  size_t len = w->view.map_length;
  if (w->view.src == NULL) return;
  bm_view_unmap(&w->view);
  pipe_account(w->pipe, -(int64_t)len);
  w->data = NULL;
}

/* Pool thread: map the window, fault it in, run the parallel callback. */
static void pipe_parallel_work(uv_work_t *req) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  uint64_t newstart = p->start + w->index * p->window, newend, ovl;
  int err;

  newend = p->end - newstart < p->window ? p->end : newstart + p->window;
  ovl = w->index == 0 ? 0 : (newstart - p->start < p->o.overlap ? newstart - p->start : p->o.overlap);
  err = bm_view_map(&w->view, p->src, newstart - ovl, newend - newstart + ovl, p->o.access);
  /* The range was checked at start: a range error now means the source shrank. */
  if (err == BM_ERANGE) err = BM_ETRUNCATED;
  if (err == 0) {
    pipe_account(p, (int64_t)w->view.map_length);
    w->data = w->view.data;
    w->length = w->view.length;
    w->overlap = (size_t)ovl;
    w->offset = newstart - ovl;
    if (p->o.prefault) err = bm_view_prefetch(&w->view);
    if (err == 0 && p->o.parallel != NULL) err = bm_guard_call(pipe_call_parallel, w);
    if (err != 0 || p->o.ordered == NULL) pipe_unmap(w);
  }
  w->status = err;
  w->os_error = err != 0 ? bm_last_os_error() : 0;
}

/* Pool thread: the ordered callback, then unmap. */
static void pipe_ordered_work(uv_work_t *req) {
  bm_uv_window_t *w = req->data;
  w->status = bm_guard_call(pipe_call_ordered, w);
  w->os_error = w->status != 0 ? bm_last_os_error() : 0;
  pipe_unmap(w);
}

static void pipe_check_finished(bm_uv_pipeline_t *p) {
  unsigned i;
  if (p->finished || p->active != 0) return;
  if (p->status == 0 && p->next_ordered < p->nwin) return;
  /* Windows that were mapped but never reached the ordered stage (after an error). */
  for (i = 0; i < p->o.inflight; i++) pipe_unmap(&p->slots[i]);
  p->peak_mapped = atomic_load(&((pipe_counters_t *)p->mapped)->peak);
  free(p->slots);
  free(p->mapped);
  free(p->scratch);
  p->slots = NULL;
  p->mapped = NULL;
  p->scratch = NULL;
  p->finished = 1;
  p->o.done(p, p->status, p->o.data);
}

/* Loop thread: window w has been through the ordered stage. */
static void pipe_window_finished(bm_uv_pipeline_t *p, bm_uv_window_t *w) {
  uint64_t newstart = p->start + w->index * p->window;
  p->bytes_done += (p->end - newstart < p->window ? p->end - newstart : p->window);
  if (p->o.merged != NULL) p->o.merged(w, p->o.data);
  w->state = SLOT_FREE;
  p->next_ordered++;
}

static void pipe_ordered_done(uv_work_t *req, int uvstatus) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  p->active--;
  p->ordering = 0;
  if (uvstatus != 0 && w->status == 0) w->status = BM_EOS;
  if (w->status != 0 && p->status == 0) {
    p->status = w->status;
    p->os_error = w->os_error;
  }
  if (w->status == 0) pipe_window_finished(p, w);
  else w->state = SLOT_FREE;
  pipe_schedule(p);
  pipe_try_ordered(p);
  pipe_check_finished(p);
}

static void pipe_try_ordered(bm_uv_pipeline_t *p) {
  bm_uv_window_t *w;
  while (!p->ordering && p->status == 0 && p->next_ordered < p->nwin) {
    w = &p->slots[p->next_ordered % p->o.inflight];
    if (w->state != SLOT_READY || w->index != p->next_ordered) return;
    if (p->o.ordered == NULL) {
      pipe_window_finished(p, w); /* already unmapped by the parallel job */
      pipe_schedule(p);
      continue;
    }
    w->state = SLOT_ORDERED;
    w->req.data = w;
    if (uv_queue_work(p->loop, &w->req, pipe_ordered_work, pipe_ordered_done) != 0) {
      p->status = BM_EOS;
      w->state = SLOT_READY;
      return;
    }
    p->ordering = 1;
    p->active++;
  }
}

static void pipe_parallel_done(uv_work_t *req, int uvstatus) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  p->active--;
  if (uvstatus != 0 && w->status == 0) w->status = BM_EOS;
  if (w->status != 0) {
    /* The lowest window's error wins: it is what a sequential walk would have met. */
    if (p->status == 0) {
      p->status = w->status;
      p->os_error = w->os_error;
    }
    pipe_unmap(w);
    w->state = SLOT_FREE;
  } else {
    w->state = SLOT_READY;
  }
  pipe_try_ordered(p);
  pipe_schedule(p);
  pipe_check_finished(p);
}

static void pipe_schedule(bm_uv_pipeline_t *p) {
  while (p->status == 0 && p->next_map < p->nwin) {
    bm_uv_window_t *w = &p->slots[p->next_map % p->o.inflight];
    if (w->state != SLOT_FREE) return;
    memset(&w->view, 0, sizeof(w->view));
    w->pipe = p;
    w->index = p->next_map;
    w->last = w->index + 1 == p->nwin;
    w->status = 0;
    w->data = NULL;
    if (w->user != NULL) memset(w->user, 0, p->o.user_size);
    w->req.data = w;
    w->state = SLOT_PARALLEL;
    if (uv_queue_work(p->loop, &w->req, pipe_parallel_work, pipe_parallel_done) != 0) {
      w->state = SLOT_FREE;
      p->status = BM_EOS;
      return;
    }
    p->active++;
    p->next_map++;
  }
}

int bm_uv_pipeline_start(bm_uv_pipeline_t *p, uv_loop_t *loop, bm_source_t *src,
                         const bm_uv_pipeline_opts_t *opts) {
  uint64_t size, gran, win;
  unsigned i;
  int err;

  if (p == NULL || loop == NULL || src == NULL || opts == NULL || opts->done == NULL)
    return BM_EINVAL;
  memset(p, 0, sizeof(*p));
  p->o = *opts;
  if (p->o.inflight == 0) p->o.inflight = 4;
  if (p->o.inflight > BM_UV_MAX_INFLIGHT) return BM_EINVAL;
  if (p->o.access == 0) p->o.access = BM_ACCESS_READ;
  if ((err = bm_source_size(src, &size)) != 0) return err;
  if (p->o.offset > size) return BM_ERANGE;
  if (p->o.length == BM_TO_END) p->o.length = size - p->o.offset;
  if (p->o.offset + p->o.length < p->o.offset) return BM_EOVERFLOW;
  if (p->o.offset + p->o.length > size) return BM_ERANGE;
  gran = bm_source_granularity(src);
  win = p->o.window == 0 ? (64u << 20) : p->o.window;
  win = win % gran ? win + (gran - win % gran) : win;
  if (win < p->o.window || win > (uint64_t)SIZE_MAX / 4) return BM_EOVERFLOW;
  if (p->o.overlap >= win) return BM_EINVAL;
  {
    /* The windows in flight share the address space: keep them within a quarter of it
     * (1 GiB in a 32-bit process, where 16 windows of 256 MiB cannot all be mapped),
     * whatever inflight asked. A window maps its overlap and up to a granule of
     * alignment slack besides its new bytes. */
    uint64_t per = win + p->o.overlap + gran, fit = ((uint64_t)SIZE_MAX / 4 + 1) / per;
    if (p->o.inflight > fit) p->o.inflight = fit > 0 ? (unsigned)fit : 1;
  }

  p->loop = loop;
  p->src = src;
  p->window = win;
  p->start = p->o.offset;
  p->end = p->o.offset + p->o.length;
  p->total = p->o.length;
  /* An empty range still gives one (empty) window, so that e.g. a hash is computed. */
  p->nwin = p->total == 0 ? 1 : (p->total - 1) / win + 1;
  p->slots = calloc(p->o.inflight, sizeof(*p->slots));
  p->mapped = calloc(1, sizeof(pipe_counters_t));
  if (p->o.user_size) p->scratch = calloc(p->o.inflight, p->o.user_size);
  if (p->slots == NULL || p->mapped == NULL || (p->o.user_size && p->scratch == NULL)) {
    free(p->slots);
    free(p->mapped);
    free(p->scratch);
    return BM_ENOMEM;
  }
  for (i = 0; i < p->o.inflight; i++) {
    p->slots[i].pipe = p;
    if (p->scratch) p->slots[i].user = p->scratch + (size_t)i * p->o.user_size;
  }
  pipe_schedule(p);
  if (p->active == 0) {
    /* Nothing could be queued: report through done as every other failure does. */
    pipe_check_finished(p);
  }
  return 0;
}

void bm_uv_pipeline_cancel(bm_uv_pipeline_t *p, int status) {
  if (p == NULL || p->finished) return;
  if (p->status == 0) p->status = status < 0 ? status : BM_EBUSY;
  pipe_check_finished(p);
}

uint64_t bm_uv_pipeline_peak_mapped(const bm_uv_pipeline_t *p) {
  return p->mapped ? atomic_load(&((pipe_counters_t *)p->mapped)->peak) : p->peak_mapped;
}
