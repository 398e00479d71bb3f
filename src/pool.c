/* The core's window scheduler (pool.h) on the backend's threads (src/os.h): mapped
 * windows, a stream's read windows, and jobs. */
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "pool.h"

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_READY, SLOT_ORDERED };

typedef struct {
  bm__pool_t *p;
  bm__os_lock_t *lock;
  bm__pool_win_t *slots;
  int *state;
  uint64_t next_map, next_ordered, mapped;
  int ordering, status;
  int reading; /* a stream's window is being read (one at a time, in order) */
  unsigned exited;
} run_t;

int bm__pool_cancelled(const bm__pool_t *p) { return p->cancel != NULL && *p->cancel != 0; }

int bm__pool_stopped(bm__pool_t *p) {
  run_t *r = p->run;
  int status;
  if (bm__pool_cancelled(p)) return 1;
  if (r == NULL) return 0;
  bm__os_lock(r->lock);
  status = r->status;
  bm__os_unlock(r->lock);
  return status != 0;
}

static void run_account(run_t *r, uint64_t add, uint64_t sub) {
  r->mapped += add;
  r->mapped -= sub;
  if (r->mapped > r->p->peak_mapped) r->p->peak_mapped = r->mapped;
}

typedef struct {
  bm__pool_t *p;
  bm__pool_win_t *w;
} call_t;

static int call_parallel(void *arg) {
  call_t *c = arg;
  return c->p->parallel(c->p->ctx, c->w);
}

static int call_ordered(void *arg) {
  call_t *c = arg;
  return c->p->ordered(c->p->ctx, c->w);
}

/* Maps window w->index and runs the parallel stage on it (outside the lock). */
static int run_map(run_t *r, bm__pool_win_t *w) {
  bm__pool_t *p = r->p;
  uint64_t off, len, start, size, extra = 0;
  call_t c;
  int err;
  if (p->src == NULL) {
    /* A job: the parallel stage is all there is (it sets length for the progress). */
    w->offset = w->length = w->overlap = w->avail = 0;
    w->data = NULL;
    w->final = w->index + 1 == p->plan.count;
    w->os_error = 0;
    return p->parallel != NULL ? p->parallel(p->ctx, w) : 0;
  }
  bm_window_plan_span(&p->plan, w->index, &off, &len);
  start = p->plan.start + w->index * p->plan.step;
  w->offset = off;
  w->length = (size_t)len;
  w->overlap = (size_t)(start - off);
  w->final = w->index + 1 == p->plan.count;
  w->os_error = 0;
  if (w->final && p->tail > 0 && bm_source_size(p->src, &size) == 0 && size > off + len)
    extra = size - (off + len) < p->tail ? size - (off + len) : p->tail;
  w->avail = (size_t)(len + extra);
  memset(&w->view, 0, sizeof(w->view));
  err = bm_view_map(&w->view, p->src, off, len + extra, p->access);
  if (err == BM_ERANGE) err = BM_ETRUNCATED; /* the range was checked: the source shrank */
  if (err != 0) {
    w->os_error = bm_last_os_error();
    memset(&w->view, 0, sizeof(w->view));
    return err;
  }
  w->data = w->view.data;
  bm__os_lock(r->lock);
  run_account(r, bm_view_mapped(&w->view), 0);
  bm__os_unlock(r->lock);
  if (p->prefault && w->view.length > 0) err = bm_view_prefetch(&w->view);
  /* The stages touch mapped bytes: a source cut short since the prefetch would raise
   * SIGBUS there, so they run guarded. */
  c.p = p;
  c.w = w;
  if (err == 0 && p->parallel != NULL) err = bm_guard_call(call_parallel, &c);
  if (err != 0 && w->os_error == 0) w->os_error = bm_last_os_error();
  return err;
}

/* Reads a stream's window w->index into the slot's buffer (r->reading is set: no other
 * thread reads meanwhile), then runs the parallel stage on it (another window may be read
 * meanwhile). */
static int run_read(run_t *r, bm__pool_win_t *w) {
  bm__pool_t *p = r->p;
  int err = 0;
  w->offset = w->length = w->overlap = w->avail = 0;
  w->final = 0;
  w->os_error = 0;
  if (w->buf == NULL) {
    if ((w->buf = malloc(p->bufsize)) == NULL) err = BM_ENOMEM;
    else {
      bm__os_lock(r->lock);
      run_account(r, p->bufsize, 0);
      bm__os_unlock(r->lock);
    }
  }
  if (err == 0) err = p->read(p->ctx, w);
  w->data = w->buf;
  bm__os_lock(r->lock);
  r->reading = 0;
  if (err == 0 && w->final) p->plan.count = w->index + 1;
  bm__os_lock_broadcast(r->lock);
  bm__os_unlock(r->lock);
  if (err == 0 && p->parallel != NULL) {
    err = p->parallel(p->ctx, w);
    if (err != 0 && w->os_error == 0) w->os_error = bm_last_os_error();
  }
  return err;
}

static void run_unmap(run_t *r, bm__pool_win_t *w) {
  size_t len = bm_view_mapped(&w->view);
  if (bm__view_priv(&w->view)->src == NULL) return;
  bm_view_unmap(&w->view);
  bm__os_lock(r->lock);
  run_account(r, 0, len);
  bm__os_unlock(r->lock);
}

static void run_fail(run_t *r, int err, int os) {
  if (r->status == 0) {
    r->status = err;
    r->p->os_error = os;
  }
}

static void run_worker(void *arg) {
  run_t *r = arg;
  bm__pool_t *p = r->p;
  int err;
  bm__os_lock(r->lock);
  for (;;) {
    bm__pool_win_t *w;
    unsigned i;
    if (r->status == 0 && bm__pool_cancelled(p)) r->status = BM_ECANCELED;
    if (r->status != 0 || r->next_ordered == p->plan.count) break;
    /* The ordered stage first: it is the one sequential stage (the hash). */
    i = (unsigned)(r->next_ordered % p->inflight);
    w = &r->slots[i];
    if (!r->ordering && r->state[i] == SLOT_READY && w->index == r->next_ordered) {
      call_t c;
      r->state[i] = SLOT_ORDERED;
      r->ordering = 1;
      bm__os_unlock(r->lock);
      c.p = p;
      c.w = w;
      err = p->ordered ? bm_guard_call(call_ordered, &c) : 0;
      if (err != 0 && w->os_error == 0) w->os_error = bm_last_os_error();
      run_unmap(r, w);
      bm__os_lock(r->lock);
      r->ordering = 0;
      r->state[i] = SLOT_FREE;
      if (err != 0) run_fail(r, err, w->os_error);
      else {
        r->next_ordered++;
        p->done += w->length - w->overlap;
      }
      bm__os_lock_broadcast(r->lock);
      continue;
    }
    i = (unsigned)(r->next_map % p->inflight);
    w = &r->slots[i];
    if (r->next_map < p->plan.count && r->state[i] == SLOT_FREE && !r->reading) {
      w->index = r->next_map++;
      r->state[i] = SLOT_BUSY;
      if (p->read != NULL) r->reading = 1;
      bm__os_unlock(r->lock);
      err = p->read != NULL ? run_read(r, w) : run_map(r, w);
      if (err != 0) run_unmap(r, w);
      bm__os_lock(r->lock);
      r->state[i] = err == 0 ? SLOT_READY : SLOT_FREE;
      if (err != 0) run_fail(r, err, w->os_error);
      bm__os_lock_broadcast(r->lock);
      continue;
    }
    bm__os_lock_wait_ms(r->lock, 50);
  }
  r->exited++;
  bm__os_lock_broadcast(r->lock);
  bm__os_unlock(r->lock);
}

int bm__pool_run(bm__pool_t *p) {
  run_t r;
  bm__os_thread_t **tid;
  unsigned i, started = 0, nthreads = p->threads ? p->threads : 1;
  uint64_t total = p->read != NULL || p->src == NULL ? p->total : p->plan.end - p->plan.start;
  int err = 0, stop = 0;

  p->done = p->peak_mapped = 0;
  p->os_error = 0;
  p->threads_used = 0;
  memset(&r, 0, sizeof(r));
  r.p = p;
  if (p->inflight == 0) return BM_EINVAL;
  if (nthreads > p->plan.count) nthreads = (unsigned)p->plan.count;
  if (nthreads == 0) nthreads = 1;
  r.slots = calloc(p->inflight, sizeof(*r.slots));
  r.state = calloc(p->inflight, sizeof(*r.state));
  tid = calloc(nthreads, sizeof(*tid));
  if (r.slots == NULL || r.state == NULL || tid == NULL || bm__os_lock_new(&r.lock) != 0) {
    free(r.slots);
    free(r.state);
    free(tid);
    return BM_ENOMEM;
  }
  for (i = 0; i < p->inflight; i++) r.slots[i].user = p->user ? p->user[i] : NULL;
  p->run = &r;
  for (i = 0; i < nthreads; i++) {
    if ((err = bm__os_thread_start(&tid[i], run_worker, &r)) != 0) break;
    started++;
  }
  p->threads_used = started;
  bm__os_lock(r.lock);
  if (started == 0) r.status = err;
  /* Workers wake us often (every window); report on a clock, not on quiet. */
  {
    double next = bm__os_now() + 0.02;
    while (r.exited < started) {
      bm__os_lock_wait_ms(r.lock, 20);
      if (r.status == 0 && bm__pool_cancelled(p)) {
        r.status = BM_ECANCELED;
        bm__os_lock_broadcast(r.lock);
      }
      if (r.exited < started && p->progress != NULL && !stop && bm__os_now() >= next) {
        uint64_t done = p->done;
        next = bm__os_now() + 0.02;
        bm__os_unlock(r.lock);
        stop = p->progress(done, total, p->progress_arg);
        bm__os_lock(r.lock);
        if (stop && r.status == 0) {
          r.status = BM_ECANCELED;
          bm__os_lock_broadcast(r.lock);
        }
      }
    }
  }
  bm__os_unlock(r.lock);
  for (i = 0; i < started; i++) bm__os_thread_join(tid[i]);
  for (i = 0; i < p->inflight; i++) {
    run_unmap(&r, &r.slots[i]);
    free(r.slots[i].buf);
  }
  p->run = NULL;
  /* A stream's total is known once it ended. */
  if (p->read != NULL && total == 0 && r.status == 0) total = p->done;
  /* The last report: a cancel there still wins (the caller asked to stop). */
  if (r.status == 0 && p->progress != NULL && !stop && p->progress(p->done, total, p->progress_arg))
    r.status = BM_ECANCELED;
  /* A cancel asked for while the last workers ended (in a progress call, or by a signal
   * handler) is seen too: the loop above may have ended before it looked again. */
  if (r.status == 0 && bm__pool_cancelled(p)) r.status = BM_ECANCELED;
  bm__os_lock_free(r.lock);
  free(r.slots);
  free(r.state);
  free(tid);
  /* The caller's thread reads the failure where it reads any other (bm_last_os_error,
   * bm_errmsg): a worker's OS error is its OS error. */
  if (r.status != 0 && p->os_error != 0) bm__set_os_error(p->os_error);
  return r.status;
}
