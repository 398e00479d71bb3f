/* Lifecycle (docs/design.md section 7), the portable half, above src/dataset.c: waiting for a
 * dataset to be ready, reclaiming what dead writers left, binding a dataset to its process,
 * and the RemoveIPC check. A replace's hidden generation is made in src/section.c. Where
 * names live and how they change atomically is the backend's (src/os.h). */
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "words.h"
#include "dataset.h"

/* ---- Waiting. */

/* Whether an open that failed so may still succeed later. */
static int life_wait_more(const char *name, int err, const bm_dataset_info_t *info) {
  if (err == BM_ENOENT) return 1;
  if (err == BM_EINCOMPLETE && info->state == BM_STATE_LOADING) return 1;
  if (err == BM_EACCES || err == BM_ENOTDATASET || err == BM_ECORRUPT) {
    /* A creator's object has no permission bits (so others cannot open it) and no writer
     * lock for the first microseconds: judged again, it is a dataset being made. */
    bm_section_info_t si;
    return bm_section_lookup(name, &si) == 0 &&
           (si.mode == 0 || si.state == BM_STATE_LOADING || si.state == BM_STATE_READY);
  }
  return 0;
}

static int wait_open(bm_dataset_t **out, const char *name, unsigned flags, double seconds,
                     bm_dataset_info_t *info) {
  bm_dataset_info_t scratch;
  bm__os_waiter_t *w = NULL;
  double end, delay = 0.01;
  int err;

  if (info == NULL) info = &scratch;
  memset(info, 0, sizeof(*info));
  if (out == NULL || (flags & ~(unsigned)BM_OPEN_VERIFY)) return BM_EINVAL;
  *out = NULL;
  if ((err = bm_name_check(name)) != 0) return err;
  if (seconds != seconds) return BM_EINVAL; /* NaN: no deadline can be made of it */
  end = seconds < 0 ? 1e300 : bm__os_now() + seconds;
  /* Watching starts before the first look: nothing that happens after it is missed. */
  if ((err = bm__os_wait_begin(&w, name)) != 0) return err;
  for (;;) {
    double left, t0, step;
    err = bm_dataset_open(out, name, flags, info);
    if (err == 0 || !life_wait_more(name, err, info)) break;
    left = end - bm__os_now();
    if (left <= 0) {
      bm__set_os_error(0);
      err = BM_ETIMEDOUT;
      break;
    }
    /* An event may come before what it announces is visible: a dying writer's descriptor
     * of the name closes (the event) a moment before the one its lock is on. So after an
     * event the next looks come soon (10 ms, doubling), and only a quiet name is looked at
     * seldom (the waiter's own cap). */
    step = delay < left ? delay : left;
    t0 = bm__os_now();
    bm__os_wait(w, step);
    if (bm__os_now() - t0 < step * 0.9) delay = 0.01; /* woken by an event */
    else if ((delay *= 2) > 2.0) delay = 2.0;
  }
  bm__os_wait_end(w);
  return err;
}

/* ---- Reclaim. */

typedef struct {
  const void *at;
  uint64_t size;
  bm__trailer_t *t;
} life_tcall_t;

static int life_tcall(void *arg) {
  life_tcall_t *c = arg;
  return bm__trailer_decode(c->at, c->size, c->t);
}

/* The trailer of a section of `size` bytes, read guarded (a section cut short faults). */
static int life_trailer(bm_source_t *src, uint64_t size, bm__trailer_t *t) {
  life_tcall_t c;
  bm_view_t v;
  int err;
  if (size < BM_TRAILER_SIZE) return BM_ENOTDATASET;
  if ((err = bm_view_map(&v, src, size - BM_TRAILER_SIZE, BM_TRAILER_SIZE, BM_ACCESS_READ)) != 0)
    return err;
  c.at = v.data;
  c.size = size;
  c.t = t;
  err = bm_guard_call(life_tcall, &c);
  bm_view_unmap(&v);
  return err;
}

typedef struct {
  bm_reclaimed_t *v;
  size_t n, cap;
  uint64_t freed;
  int err;
  int state;          /* of the entry judged last */
  int64_t writer_pid;
} life_reclaim_t;

static int life_judge(void *arg, const bm__os_entry_t *e) {
  life_reclaim_t *r = arg;
  bm__trailer_t t;
  memset(&t, 0, sizeof(t));
  /* Never one whose writer lives, whatever its trailer says. */
  if (bm__os_writer_alive(e->src, NULL) != 0) return 0;
  r->writer_pid = 0;
  if (life_trailer(e->src, e->size, &t) == 0) {
    r->writer_pid = t.writer_pid;
    if (t.state == BM_STATE_FAILED) return r->state = BM_STATE_FAILED, 1;
    if (t.state == BM_STATE_LOADING) return r->state = BM_STATE_ABANDONED, 1;
  }
  /* A replace's generation whose writer died before it was made NAME, in any state. */
  if (e->hidden) return r->state = BM_STATE_ABANDONED, 1;
  return 0;
}

static void life_done(void *arg, const bm__os_entry_t *e, int err) {
  life_reclaim_t *r = arg;
  bm_reclaimed_t *x;
  if (err != 0) return; /* gone or changed meanwhile, or not ours after all: left */
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    bm_reclaimed_t *v = realloc(r->v, cap * sizeof(*v));
    if (v == NULL) {
      r->err = BM_ENOMEM;
      return;
    }
    r->v = v, r->cap = cap;
  }
  x = &r->v[r->n++];
  memset(x, 0, sizeof(*x));
  strncpy(x->name, e->name, sizeof(x->name) - 1);
  strncpy(x->place, e->place, sizeof(x->place) - 1);
  x->state = r->state;
  x->bytes = e->size;
  x->uid = e->uid;
  x->writer_pid = r->writer_pid;
  r->freed += e->size;
}

/* What the store reclaimed (datasets whose metadata is beside their bytes). */
static void life_store_done(void *arg, const bm_section_info_t *si, uint64_t bytes) {
  life_reclaim_t *r = arg;
  bm__os_entry_t e;
  memset(&e, 0, sizeof(e));
  e.name = si->name;
  e.place = si->place;
  e.size = bytes;
  e.uid = si->uid;
  r->state = si->state;
  r->writer_pid = si->writer_pid;
  life_done(r, &e, 0);
}

int bm_dataset_reclaim(bm_reclaimed_t **out, size_t *n, uint64_t *freed) {
  life_reclaim_t r;
  int err;
  if (out != NULL) *out = NULL;
  if (n != NULL) *n = 0;
  if (freed != NULL) *freed = 0;
  memset(&r, 0, sizeof(r));
  err = bm__store_reclaim(life_store_done, &r);
  if (err == 0) err = r.err;
  /* Datasets of the previous layout (the trailer in the section). */
  if (err == 0) err = bm__os_section_reclaim(life_judge, life_done, &r);
  if (err == 0) err = r.err;
  if (freed != NULL) *freed = r.freed;
  if (n != NULL) *n = r.n;
  if (out != NULL) *out = r.v;
  else free(r.v);
  return err;
}

void bm_reclaimed_free(bm_reclaimed_t *list) { free(list); }

/* ---- Process-bound datasets. */

int bm_dataset_remove_on_exit(bm_dataset_t *ds) {
  bm_dataset_info_t info;
  bm_source_t *src = bm_dataset_source(ds);
  if (src == NULL || bm_dataset_info(ds, &info) != 0) return BM_EINVAL;
  if (bm__dataset_store(ds) != NULL) return bm__store_remove_on_exit(bm__dataset_store(ds));
  return bm__os_remove_on_exit(src, info.name);
}

/* ---- RemoveIPC. */

int bm_removeipc_check(bm_removeipc_t *out) {
  if (out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  return bm__os_removeipc(out);
}

int bm_dataset_wait_open(bm_dataset_t **out, const char *name, unsigned flags, double seconds,
                         bm_dataset_info_t *info) {
  bm_dataset_info_t scratch;
  int err = wait_open(out, name, flags, seconds, info != NULL ? info : &scratch);
  return err == 0 ? 0 : bm__words_wait(err, name, seconds, info != NULL ? info : &scratch);
}
