/* bulkmap_uv: the window pipeline. The loop thread owns all bookkeeping; pool threads map
 * (or, for a stream, read), fault in, run the callbacks and unmap. Slot k % inflight carries
 * window k. The window arithmetic is the core's (bm_window_plan), not a copy of it. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bulkmap_uv.h"
#include "wake.h"

enum { SLOT_FREE = 0, SLOT_READING, SLOT_PARALLEL, SLOT_READY, SLOT_ORDERED };

#define PIPE_DEFAULT_WINDOW (64u << 20)

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

/* A mapped window is unmapped; a stream's buffer stays with its slot until the end. */
static void pipe_unmap(bm_uv_window_t *w) {
  size_t len = bm_view_mapped(&w->view);
  if (w->view.data == NULL) return; /* never mapped, or unmapped (bm_view_unmap zeroes it) */
  bm_view_unmap(&w->view);
  pipe_account(w->pipe, -(int64_t)len);
}

/* Pool thread: map the window and fault it in (a stream's was read already), then run the
 * parallel callback. */
static void pipe_parallel_work(uv_work_t *req) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  int err = 0;

  w->os_error = 0;
  if (p->fd < 0) {
    uint64_t off, len;
    bm_window_plan_span(&p->plan, w->index, &off, &len);
    err = bm_view_map(&w->view, p->src, off, len, p->o.access);
    /* The range was checked at start: a range error now means the source shrank. */
    if (err == BM_ERANGE) err = BM_ETRUNCATED;
    if (err == 0) {
      pipe_account(p, (int64_t)bm_view_mapped(&w->view));
      w->data = w->view.data;
      w->length = w->view.length;
      w->overlap = (size_t)(p->start + w->index * p->plan.step - off);
      w->offset = off;
      if (p->o.prefault) err = bm_view_prefetch(&w->view);
    }
    if (err != 0) w->os_error = bm_last_os_error();
  }
  if (err == 0 && p->o.parallel != NULL) err = bm_guard_call(pipe_call_parallel, w);
  if (err != 0 || p->o.ordered == NULL) pipe_unmap(w);
  w->status = err;
}

/* Pool thread: the ordered callback, then unmap. */
static void pipe_ordered_work(uv_work_t *req) {
  bm_uv_window_t *w = req->data;
  w->os_error = 0;
  w->status = bm_guard_call(pipe_call_ordered, w);
  pipe_unmap(w);
}

/* Pool thread, a stream: reads up to want bytes (fewer only at the end of the stream). A
 * cancel wakes a read that waits for data. */
static int pipe_read_fill(bm_uv_pipeline_t *p, unsigned char *dst, size_t want, size_t *got,
                          int *os) {
  *got = 0;
  while (*got < want) {
    uv_fs_t req;
    uv_buf_t buf;
    ssize_t n;
    size_t chunk = want - *got > (1u << 30) ? (1u << 30) : want - *got;
    int err = bm__uv_wake_wait(p->wake, p->fd, os);
    if (err != 0) return err; /* cancelled (BM_EBUSY), or the wait failed */
    buf = uv_buf_init((char *)dst + *got, (unsigned)chunk);
    n = uv_fs_read(NULL, &req, p->fd, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (n == UV_EINTR || n == UV_EAGAIN) continue;
    if (n < 0) {
      *os = (int)-n;
      return BM_EIO;
    }
    if (n == 0) break;
    *got += (size_t)n;
  }
  return 0;
}

/* Pool thread, a stream, one read job at a time and in order: the overlap kept from the
 * previous window, then up to a window of new bytes. */
static void pipe_read_work(uv_work_t *req) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  size_t need = (size_t)(p->plan.overlap + p->plan.step), got, ovl, want, keep;
  int err = 0, os = 0;

  w->os_error = 0;
  if (w->buf == NULL) {
    if ((w->buf = malloc(need)) == NULL) err = BM_ENOMEM;
    else {
      w->bufsize = need;
      pipe_account(p, (int64_t)need);
    }
  }
  /* The bytes before the offset are read and dropped. */
  while (err == 0 && p->read_pos < p->start) {
    uint64_t skip = p->start - p->read_pos;
    err = pipe_read_fill(p, w->buf, skip < need ? (size_t)skip : need, &got, &os);
    if (err == 0 && got == 0) err = BM_ERANGE;
    p->read_pos += got;
  }
  if (err == 0) {
    ovl = p->tail_len;
    if (ovl > 0) memcpy(w->buf, p->tail, ovl);
    want = (size_t)p->plan.step;
    if (p->end != UINT64_MAX && p->end - p->read_pos < want) want = (size_t)(p->end - p->read_pos);
    err = pipe_read_fill(p, w->buf + ovl, want, &got, &os);
    if (err == 0) {
      p->read_pos += got;
      if (got < want) {
        if (p->end != UINT64_MAX) err = BM_ERANGE; /* ended before the range did */
        p->eof = 1;
      } else if (p->read_pos == p->end) {
        p->eof = 1;
      }
      w->data = w->buf;
      w->length = ovl + got;
      w->overlap = ovl;
      w->offset = p->read_pos - got - ovl;
      keep = w->length < p->plan.overlap ? w->length : (size_t)p->plan.overlap;
      if (keep > 0) memcpy(p->tail, w->buf + w->length - keep, keep);
      p->tail_len = keep;
    }
  }
  w->status = err;
  w->os_error = os;
}

static void pipe_check_finished(bm_uv_pipeline_t *p) {
  unsigned i;
  if (p->finished || p->active != 0) return;
  if (p->status == 0 && p->next_ordered < p->nwin) return;
  /* Windows that were mapped but never reached the ordered stage (after an error). */
  for (i = 0; i < p->o.inflight; i++) {
    pipe_unmap(&p->slots[i]);
    if (p->slots[i].buf != NULL) pipe_account(p, -(int64_t)p->slots[i].bufsize);
    free(p->slots[i].buf);
  }
  p->peak_mapped = atomic_load(&((pipe_counters_t *)p->mapped)->peak);
  bm__uv_wake_close(p->wake);
  free(p->slots);
  free(p->mapped);
  free(p->scratch);
  free(p->tail);
  p->slots = NULL;
  p->mapped = NULL;
  p->scratch = NULL;
  p->tail = NULL;
  p->finished = 1;
  p->o.done(p, p->status, p->o.data);
}

static void pipe_fail(bm_uv_pipeline_t *p, bm_uv_window_t *w) {
  /* The lowest window's error wins: it is what a sequential walk would have met. */
  if (p->status == 0) {
    p->status = w->status;
    p->os_error = w->os_error;
  }
}

/* Loop thread: window w has been through the ordered stage. */
static void pipe_window_finished(bm_uv_pipeline_t *p, bm_uv_window_t *w) {
  p->bytes_done += w->length - w->overlap;
  w->data = NULL;
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
  if (w->status != 0) pipe_fail(p, w);
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
    pipe_fail(p, w);
    pipe_unmap(w);
    w->state = SLOT_FREE;
  } else {
    w->state = SLOT_READY;
  }
  pipe_try_ordered(p);
  pipe_schedule(p);
  pipe_check_finished(p);
}

static void pipe_read_done(uv_work_t *req, int uvstatus) {
  bm_uv_window_t *w = req->data;
  bm_uv_pipeline_t *p = w->pipe;
  p->active--;
  p->reading = 0;
  if (uvstatus != 0 && w->status == 0) w->status = BM_EOS;
  if (w->status != 0) pipe_fail(p, w);
  if (w->status == 0 && p->eof) {
    p->nwin = w->index + 1;
    p->total = p->read_pos - p->start;
    w->last = 1;
  }
  if (w->status != 0 || p->status != 0) {
    w->state = SLOT_FREE;
  } else if (p->o.parallel == NULL) {
    w->state = SLOT_READY;
  } else {
    w->state = SLOT_PARALLEL;
    if (uv_queue_work(p->loop, &w->req, pipe_parallel_work, pipe_parallel_done) != 0) {
      w->state = SLOT_FREE;
      p->status = BM_EOS;
    } else {
      p->active++;
    }
  }
  pipe_schedule(p);
  pipe_try_ordered(p);
  pipe_check_finished(p);
}

static void pipe_schedule(bm_uv_pipeline_t *p) {
  while (p->status == 0 && p->next_map < p->nwin && !p->reading) {
    bm_uv_window_t *w = &p->slots[p->next_map % p->o.inflight];
    int stream = p->fd >= 0, err;
    if (w->state != SLOT_FREE) return;
    memset(&w->view, 0, sizeof(w->view));
    w->pipe = p;
    w->index = p->next_map;
    w->last = w->index + 1 == p->nwin;
    w->status = 0;
    w->os_error = 0;
    w->data = NULL;
    if (w->user != NULL) memset(w->user, 0, p->o.user_size);
    w->req.data = w;
    w->state = stream ? SLOT_READING : SLOT_PARALLEL;
    err = stream ? uv_queue_work(p->loop, &w->req, pipe_read_work, pipe_read_done)
                 : uv_queue_work(p->loop, &w->req, pipe_parallel_work, pipe_parallel_done);
    if (err != 0) {
      w->state = SLOT_FREE;
      p->status = BM_EOS;
      return;
    }
    p->active++;
    p->next_map++;
    if (stream) p->reading = 1; /* a stream is read one window at a time, in order */
  }
}

/* Checks and copies the options shared by both kinds of start. */
static int pipe_init(bm_uv_pipeline_t *p, uv_loop_t *loop, const bm_uv_pipeline_opts_t *opts) {
  if (p == NULL || loop == NULL || opts == NULL || opts->done == NULL) return BM_EINVAL;
  memset(p, 0, sizeof(*p));
  p->o = *opts;
  p->fd = -1;
  p->wake[0] = p->wake[1] = -1;
  if (p->o.inflight == 0) p->o.inflight = 4;
  if (p->o.inflight > BM_UV_MAX_INFLIGHT) return BM_EINVAL;
  if (p->o.access == 0) p->o.access = BM_ACCESS_READ;
  p->loop = loop;
  return 0;
}

static int pipe_alloc_and_go(bm_uv_pipeline_t *p) {
  unsigned i;
  p->slots = calloc(p->o.inflight, sizeof(*p->slots));
  p->mapped = calloc(1, sizeof(pipe_counters_t));
  if (p->o.user_size) p->scratch = calloc(p->o.inflight, p->o.user_size);
  if (p->fd >= 0 && p->plan.overlap > 0) p->tail = malloc((size_t)p->plan.overlap);
  if (p->slots == NULL || p->mapped == NULL || (p->o.user_size && p->scratch == NULL) ||
      (p->fd >= 0 && p->plan.overlap > 0 && p->tail == NULL)) {
    free(p->slots);
    free(p->mapped);
    free(p->scratch);
    free(p->tail);
    p->slots = NULL;
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

int bm_uv_pipeline_start(bm_uv_pipeline_t *p, uv_loop_t *loop, bm_source_t *src,
                         const bm_uv_pipeline_opts_t *opts) {
  bm_window_opts_t wo;
  int err;

  if (src == NULL) return BM_EINVAL;
  if ((err = pipe_init(p, loop, opts)) != 0) return err;
  bm_window_opts_init(&wo);
  wo.window = p->o.window;
  wo.overlap = p->o.overlap;
  wo.start = p->o.offset;
  wo.length = p->o.length;
  wo.max_mapped = p->o.max_mapped;
  /* max_mapped is shared by the windows in flight: the window shrinks first; when even a
   * granule a window cannot fit, fewer windows are kept in flight. */
  while ((err = bm_window_plan(src, &wo, p->o.inflight, &p->plan)) == BM_EINVAL &&
         wo.max_mapped != 0 && p->o.inflight > 1 && wo.overlap < (wo.window ? wo.window : 1))
    p->o.inflight--;
  if (err != 0) return err;
  {
    /* The windows in flight share the address space: keep them within a quarter of it
     * (1 GiB in a 32-bit process, where 16 windows of 256 MiB cannot all be mapped),
     * whatever inflight asked. A window maps its overlap and up to a granule of alignment
     * slack besides its new bytes. */
    uint64_t per = p->plan.step + p->plan.overlap + bm_source_granularity(src);
    uint64_t fit = ((uint64_t)SIZE_MAX / 4 + 1) / per;
    if (p->plan.step > (uint64_t)SIZE_MAX / 4) return BM_EOVERFLOW;
    if (p->o.inflight > fit) p->o.inflight = fit > 0 ? (unsigned)fit : 1;
  }
  p->src = src;
  p->window = p->plan.step;
  p->start = p->plan.start;
  p->end = p->plan.end;
  p->total = p->end - p->start;
  p->nwin = p->plan.count;
  return pipe_alloc_and_go(p);
}

int bm_uv_pipeline_start_fd(bm_uv_pipeline_t *p, uv_loop_t *loop, uv_file fd,
                            const bm_uv_pipeline_opts_t *opts) {
  uint64_t win;
  int err;

  if (fd < 0) return BM_EINVAL;
  if ((err = pipe_init(p, loop, opts)) != 0) return err;
  if (p->o.access != BM_ACCESS_READ) return BM_EINVAL;
  win = p->o.window == 0 ? PIPE_DEFAULT_WINDOW : p->o.window;
  if (p->o.overlap >= win) return BM_EINVAL;
  if (win > (uint64_t)SIZE_MAX / 4) return BM_EOVERFLOW;
  if (p->o.max_mapped != 0) {
    /* Buffers are the stream's mapped bytes: the window shrinks, then the count. */
    for (;;) {
      uint64_t per = p->o.max_mapped / p->o.inflight;
      if (per > 2 * p->o.overlap && per - p->o.overlap >= 1) {
        if (per - p->o.overlap < win) win = per - p->o.overlap;
        break;
      }
      if (p->o.inflight == 1) return BM_EINVAL;
      p->o.inflight--;
    }
  }
  if (p->o.length != BM_TO_END && p->o.offset + p->o.length < p->o.offset) return BM_EOVERFLOW;
  p->fd = fd;
  p->plan.step = win;
  p->plan.overlap = p->o.overlap;
  p->window = win;
  p->start = p->o.offset;
  p->end = p->o.length == BM_TO_END ? UINT64_MAX : p->o.offset + p->o.length;
  p->total = p->o.length == BM_TO_END ? 0 : p->o.length;
  p->nwin = UINT64_MAX; /* known when the stream ends */
  if (bm__uv_wake_open(p->wake) != 0) return BM_EOS;
  if ((err = pipe_alloc_and_go(p)) != 0) bm__uv_wake_close(p->wake);
  return err;
}

void bm_uv_pipeline_cancel(bm_uv_pipeline_t *p, int status) {
  if (p == NULL || p->finished) return;
  if (p->status == 0) p->status = status < 0 ? status : BM_EBUSY;
  bm__uv_wake_signal(p->wake);
  pipe_check_finished(p);
}

uint64_t bm_uv_pipeline_peak_mapped(const bm_uv_pipeline_t *p) {
  return p->mapped ? atomic_load(&((pipe_counters_t *)p->mapped)->peak) : p->peak_mapped;
}
