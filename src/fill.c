/* Filling a new dataset's section where it takes writes (tmpfs) the way cp writes a file,
 * with the hash beside it. No page of the section is touched through a mapping: on a
 * virtual machine each first touch of a mapped page traps, several times slower than the
 * kernel's own copy (perf/RESULTS.md).
 * - From a file (load, bm__fill): the bytes taken in order into a few small buffers of the
 *   pool's stream (they stay in the CPU's cache), each written with pwrite and hashed from
 *   that same buffer, in order, while the next is read on another thread. The hashed bytes
 *   are the written bytes, whatever the file does meanwhile.
 * - From memory (publish, bm__fill_memory): the caller's bytes written with pwrite straight
 *   from where they lie, on the calling thread, and hashed there on another thread at the
 *   same time (one start, one join: nothing handed between them). No copy of ours: it cost
 *   a third of the write again, and handing each piece between threads more. */
#include <string.h>
#include "os.h"
#include "pool.h"
#include "dataset.h"

#define FILL_BUFFER (512u << 10)

typedef struct {
  bm_dataset_t *ds;
  uint64_t size;
  int (*take)(void *ctx, uint64_t off, unsigned char *buf, size_t n);
  void *ctx;
  const volatile sig_atomic_t *cancel;
  uint64_t next; /* the next byte to take (takes are one at a time, in order) */
} fill_run_t;

static int fill_take(void *ctx, bm__pool_win_t *w) {
  fill_run_t *r = ctx;
  size_t want = r->size - r->next > FILL_BUFFER ? FILL_BUFFER : (size_t)(r->size - r->next);
  int err;
  if (r->cancel != NULL && *r->cancel) return BM_ECANCELED;
  if ((err = r->take(r->ctx, r->next, w->buf, want)) != 0) {
    w->os_error = bm_last_os_error();
    return err;
  }
  w->offset = r->next;
  w->length = w->avail = want;
  w->overlap = 0;
  w->final = r->next + want == r->size;
  r->next += want;
  return 0;
}

/* Written and hashed in order, one piece at a time: writes into one file take its inode's
 * lock, and two writers at once spin on it (13% of a publish's time, two threads). */
static int fill_write_hash(void *ctx, bm__pool_win_t *w) {
  fill_run_t *r = ctx;
  int err = bm__os_write_at(bm_dataset_source(r->ds), w->offset, w->buf, w->length);
  if (err != 0) {
    w->os_error = bm_last_os_error();
    return err;
  }
  return bm__dataset_hash_written(r->ds, w->offset, w->buf, w->length);
}

int bm__fill_takes_writes(bm_dataset_t *ds) {
  return bm__os_write_at(bm_dataset_source(ds), 0, "", 0) == 0;
}

int bm__fill(bm__pool_t *p, bm_dataset_t *ds, uint64_t size,
             int (*take)(void *ctx, uint64_t off, unsigned char *buf, size_t n), void *ctx) {
  fill_run_t r;
  r.ds = ds;
  r.size = size;
  r.take = take;
  r.ctx = ctx;
  r.cancel = p->cancel;
  r.next = 0;
  /* Two stages, each one piece at a time: the take of the next piece, and the write and
   * hash of the one before; more threads would only wait. */
  p->threads = p->threads == 1 || bm__os_cpu_count() == 1 ? 1 : 2;
  p->inflight = p->threads + 2;
  p->plan.count = (size + FILL_BUFFER - 1) / FILL_BUFFER;
  p->read = fill_take;
  p->bufsize = FILL_BUFFER;
  p->total = size;
  p->ordered = fill_write_hash;
  p->ctx = &r;
  return bm__pool_run(p);
}

/* A piece hashed, then written from the CPU's cache (measured: 256 KiB to 2 MiB alike). */
#define FILL_PIECE (256u << 10)
#define FILL_THREAD_FROM (4u << 20)

static uint64_t fill_bytes(const size_t *len, int parts) {
  uint64_t n = 0;
  int i;
  for (i = 0; i < parts; i++) n += len[i];
  return n;
}

typedef struct {
  bm_dataset_t *ds;
  const void *const *part;
  const size_t *len;
  int parts;
  int hash, write;   /* which of the two this pass does */
  int *stop;         /* set by the pass that fails first (relaxed: only an early end) */
  int err, os_error;
} fill_pass_t;

static void fill_pass(void *arg) {
  fill_pass_t *f = arg;
  uint64_t off = 0;
  int i, err = 0;
  for (i = 0; i < f->parts && err == 0; i++) {
    const unsigned char *p = f->part[i];
    size_t at;
    for (at = 0; at < f->len[i] && err == 0; at += FILL_PIECE) {
      size_t k = f->len[i] - at < FILL_PIECE ? f->len[i] - at : FILL_PIECE;
      if (__atomic_load_n(f->stop, __ATOMIC_RELAXED)) return;
      /* The hash is guarded: a fault there is the caller's buffer's, its backing file cut
       * short (BM_ETRUNCATED); pwrite says the same with EFAULT. */
      if (f->hash) err = bm__dataset_hash_written(f->ds, off, p + at, k);
      if (err == 0 && f->write) err = bm__os_write_at(bm_dataset_source(f->ds), off, p + at, k);
      off += k;
    }
  }
  if (err != 0) {
    f->err = err;
    f->os_error = bm_last_os_error();
    __atomic_store_n(f->stop, 1, __ATOMIC_RELAXED);
  }
}

int bm__fill_memory(bm_dataset_t *ds, const void *const *part, const size_t *len, int parts,
                    int *os_error) {
  int stop = 0;
  fill_pass_t w, h;
  bm__os_thread_t *t = NULL;
  memset(&w, 0, sizeof(w));
  w.ds = ds;
  w.part = part;
  w.len = len;
  w.parts = parts;
  w.stop = &stop;
  h = w;
  w.write = 1;
  h.hash = 1;
  /* The hash on a thread of its own beside the writes, from a few MiB on (a thread's start
   * costs more than the hash of less); else each piece hashed, then written. */
  if (fill_bytes(len, parts) < FILL_THREAD_FROM || bm__os_cpu_count() == 1 ||
      bm__os_thread_start(&t, fill_pass, &h) != 0) {
    w.hash = 1;
    t = NULL;
  }
  fill_pass(&w);
  if (t != NULL) bm__os_thread_join(t);
  if (w.err == 0 && h.err != 0) w = h;
  if (w.err != 0) {
    bm__set_os_error(w.os_error); /* the failing pass's, on the calling thread */
    if (os_error != NULL) *os_error = w.os_error;
  }
  return w.err;
}
