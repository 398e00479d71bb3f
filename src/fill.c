/* Filling a new dataset's section where it takes writes (tmpfs) the way cp writes a file,
 * with the hash beside it: the bytes taken in order into a few small buffers of the pool's
 * stream (they stay in the CPU's cache), each written into the section with pwrite and
 * hashed from that same buffer, in order, while the next is taken on another thread. No page of
 * the section is touched through a mapping: on a virtual machine each first touch of a
 * mapped page traps, several times slower than the kernel's own copy (perf/RESULTS.md).
 * The hashed bytes are the written bytes, whatever the source does meanwhile. The load
 * takes its bytes from a file (pread), publish from the caller's memory (a guarded copy). */
#include <string.h>
#include "os.h"
#include "pool.h"
#include "dataset.h"

#define FILL_BUFFER (512u << 10)

typedef struct {
  const bm__fill_t *f;
  uint64_t next; /* the next byte to take (takes are one at a time, in order) */
} fill_run_t;

static int fill_take(void *ctx, bm__pool_win_t *w) {
  fill_run_t *r = ctx;
  size_t want = r->f->size - r->next > FILL_BUFFER ? FILL_BUFFER : (size_t)(r->f->size - r->next);
  int err;
  if (r->f->cancel != NULL && *r->f->cancel) return BM_ECANCELED;
  if ((err = r->f->take(r->f->ctx, r->next, w->buf, want)) != 0) {
    w->os_error = bm_last_os_error();
    return err;
  }
  w->offset = r->next;
  w->length = w->avail = want;
  w->overlap = 0;
  w->final = r->next + want == r->f->size;
  r->next += want;
  return 0;
}

/* Written and hashed in order, one piece at a time: writes into one file take its inode's
 * lock, and two writers at once spin on it (13% of a publish's time, two threads). */
static int fill_write_hash(void *ctx, bm__pool_win_t *w) {
  fill_run_t *r = ctx;
  int err = bm__os_write_at(bm_dataset_source(r->f->ds), w->offset, w->buf, w->length);
  if (err != 0) {
    w->os_error = bm_last_os_error();
    return err;
  }
  return bm__dataset_hash_written(r->f->ds, w->offset, w->buf, w->length);
}

int bm__fill_takes_writes(bm_dataset_t *ds) {
  return bm__os_write_at(bm_dataset_source(ds), 0, "", 0) == 0;
}

int bm__fill(const bm__fill_t *f) {
  bm__pool_t p;
  fill_run_t r;
  int err;
  memset(&p, 0, sizeof(p));
  r.f = f;
  r.next = 0;
  /* Two stages, each one piece at a time: the take of the next piece, and the write and
   * hash of the one before; more threads would only wait. */
  p.threads = f->threads == 1 || bm__os_cpu_count() == 1 ? 1 : 2;
  p.inflight = p.threads + 2;
  p.plan.count = (f->size + FILL_BUFFER - 1) / FILL_BUFFER;
  p.read = fill_take;
  p.bufsize = FILL_BUFFER;
  p.total = f->size;
  p.ordered = fill_write_hash;
  p.ctx = &r;
  p.progress = f->progress;
  p.progress_arg = f->progress_arg;
  p.cancel = f->cancel;
  err = bm__pool_run(&p);
  if (f->os_error != NULL) *f->os_error = p.os_error;
  return err;
}
