/* The window cursor: walks a range of a source in bounded windows with overlap and
 * read-ahead, never holding more than two windows mapped. */
#include <string.h>
#include "os.h"

int bm_window_init(bm_window_t *w, bm_source_t *src, const bm_window_opts_t *opts) {
  bm_window_opts_t o;
  bm__window_plan_t plan;
  uint64_t size;
  int err;
  bm__window_priv_t *p;

  if (w == NULL) return BM_EINVAL;
  memset(w, 0, sizeof(*w));
  p = bm__window_priv(w);
  if (src == NULL) return BM_EINVAL;
  if (opts != NULL) o = *opts;
  else {
    memset(&o, 0, sizeof(o));
    o.length = BM_TO_END;
  }
  if (o.access == 0) o.access = BM_ACCESS_READ;
  if (o.access != BM_ACCESS_READ && o.access != BM_ACCESS_COPY) return BM_EINVAL;
  if ((err = bm__os_source_size(src, &size)) != 0) return err;
  if ((err = bm__window_plan(size, src->granularity, &o, &plan)) != 0) return err;
  p->src = src;
  p->start = plan.start;
  p->end = plan.end;
  p->pos = plan.start;
  p->step = plan.step;
  p->ovl = plan.overlap;
  p->readahead = plan.readahead;
  p->prefault = o.prefault;
  p->access = o.access;
  p->next_pos = UINT64_MAX;
  p->fresh = 1;
  return 0;
}

uint64_t bm_window_size(const bm_window_t *w) { return bm__window_cpriv(w)->step; }

/* Maps the window whose new bytes begin at pos into v. */
static int bm__window_map(bm__window_priv_t *p, uint64_t pos, int fresh, bm_view_t *v) {
  bm__window_plan_t plan;
  uint64_t size, off, len;
  int err;

  plan.start = p->start;
  plan.end = p->end;
  plan.step = p->step;
  plan.overlap = p->ovl;
  plan.readahead = p->readahead;
  bm__window_span(&plan, pos, fresh, &off, &len);
  /* The source must still hold the whole range being walked: a file cut short under the
   * cursor is reported here, before any byte past its end could be touched. */
  if ((err = bm__os_source_size(p->src, &size)) != 0) return err;
  if (size < off + len) return BM_ETRUNCATED;
  return bm_view_map(v, p->src, off, len, p->access);
}

static void bm__window_account(bm_window_t *w) {
  bm__window_priv_t *p = bm__window_priv(w);
  p->mapped = (uint64_t)bm_view_mapped(&p->cur) + bm_view_mapped(&p->next);
  if (p->mapped > w->peak_mapped) w->peak_mapped = p->mapped;
}

int bm_window_next(bm_window_t *w) {
  int err;
  uint64_t newpos;
  bm__window_priv_t *p;

  if (w == NULL) return BM_EINVAL;
  p = bm__window_priv(w);
  if (p->src == NULL) return BM_EINVAL;
  if (bm__view_priv(&p->cur)->src != NULL) {
    bm_view_unmap(&p->cur);
    bm__window_account(w);
  }
  if (p->pos >= p->end) {
    /* An empty range gives one empty window, then the end. */
    if (!(p->fresh && p->pos == p->start && p->end == p->start && !p->done_empty)) return 0;
    p->done_empty = 1;
    w->data = (const unsigned char *)"";
    w->length = 0;
    w->overlap = 0;
    w->offset = p->pos;
    return 1;
  }

  if (bm__view_priv(&p->next)->src != NULL && p->next_pos == p->pos) {
    /* Mapped ahead of time: the source may have shrunk since, so check again. */
    uint64_t size;
    p->cur = p->next;
    memset(&p->next, 0, sizeof(p->next));
    err = bm__os_source_size(p->src, &size);
    if (err == 0 && size < p->cur.offset + p->cur.length) err = BM_ETRUNCATED;
    if (err != 0) {
      bm_view_unmap(&p->cur);
      bm__window_account(w);
      return err;
    }
  } else {
    if (bm__view_priv(&p->next)->src != NULL) bm_view_unmap(&p->next);
    if ((err = bm__window_map(p, p->pos, p->fresh, &p->cur)) != 0) return err;
  }
  p->next_pos = UINT64_MAX;
  newpos = p->cur.offset + p->cur.length;

  if (p->readahead && newpos < p->end) {
    /* Map the next window now and let the OS read it in while this one is used. */
    if (bm__window_map(p, newpos, 0, &p->next) == 0) {
      p->next_pos = newpos;
      bm_view_advise(&p->next, BM_ADVICE_WILLNEED);
    }
  }
  bm__window_account(w);

  if (p->prefault && (err = bm_view_prefetch(&p->cur)) != 0) {
    bm_view_unmap(&p->cur);
    bm_view_unmap(&p->next);
    bm__window_account(w);
    return err;
  }
  w->data = p->cur.data;
  w->length = p->cur.length;
  w->overlap = (size_t)(p->pos - p->cur.offset);
  w->offset = p->cur.offset;
  p->pos = newpos;
  p->fresh = 0;
  return 1;
}

int bm_window_seek(bm_window_t *w, uint64_t offset) {
  bm__window_priv_t *p;
  if (w == NULL) return BM_EINVAL;
  p = bm__window_priv(w);
  if (p->src == NULL) return BM_EINVAL;
  if (offset < p->start || offset > p->end) return BM_ERANGE;
  /* A mapped read-ahead window carries overlap, and a seek asks for none: drop it. */
  bm_view_unmap(&p->next);
  p->next_pos = UINT64_MAX;
  p->pos = offset;
  p->fresh = 1;
  p->done_empty = 1;
  return 0;
}

void bm_window_close(bm_window_t *w) {
  bm__window_priv_t *p;
  if (w == NULL) return;
  p = bm__window_priv(w);
  bm_view_unmap(&p->cur);
  bm_view_unmap(&p->next);
  p->src = NULL;
  w->data = NULL;
  w->length = 0;
}

typedef struct {
  int (*fn)(const unsigned char *p, size_t n, uint64_t offset, void *arg);
  void *arg;
  const unsigned char *p;
  size_t n;
  uint64_t offset;
} bm__walk_call_t;

static int bm__walk_call(void *arg) {
  bm__walk_call_t *c = arg;
  return c->fn(c->p, c->n, c->offset, c->arg);
}

int bm_window_walk(bm_source_t *src, uint64_t start, uint64_t length,
                   int (*fn)(const unsigned char *p, size_t n, uint64_t offset, void *arg),
                   void *arg) {
  bm_window_opts_t o;
  bm_window_t w;
  bm__walk_call_t c;
  int r, err = 0;

  if (src == NULL || fn == NULL) return BM_EINVAL;
  memset(&o, 0, sizeof(o));
  o.start = start;
  o.length = length;
  o.window = BM__DEFAULT_WINDOW;
  o.prefault = 1;
  o.readahead = 1;
  if ((err = bm_window_init(&w, src, &o)) != 0) return err == BM_ERANGE ? BM_ETRUNCATED : err;
  c.fn = fn;
  c.arg = arg;
  while ((r = bm_window_next(&w)) == 1) {
    c.p = w.data + w.overlap;
    c.n = w.length - w.overlap;
    c.offset = w.offset + w.overlap;
    if (c.n == 0) continue;
    if ((err = bm_guard_call(bm__walk_call, &c)) != 0) break;
  }
  if (r < 0) err = r;
  bm_window_close(&w);
  return err;
}

int bm_window_plan(bm_source_t *src, const bm_window_opts_t *opts, unsigned windows,
                   bm_window_plan_t *out) {
  bm_window_opts_t o;
  bm__window_plan_t plan;
  uint64_t size, len;
  int err;

  if (src == NULL || opts == NULL || out == NULL || windows == 0) return BM_EINVAL;
  o = *opts;
  /* The windows share the bound; each is planned as a cursor without read-ahead. */
  o.readahead = 0;
  o.max_mapped = opts->max_mapped / windows;
  if (opts->max_mapped != 0 && o.max_mapped == 0) return BM_EINVAL;
  if ((err = bm__os_source_size(src, &size)) != 0) return err;
  if ((err = bm__window_plan(size, src->granularity, &o, &plan)) != 0) return err;
  memset(out, 0, sizeof(*out));
  out->start = plan.start;
  out->end = plan.end;
  out->step = plan.step;
  out->overlap = plan.overlap;
  len = plan.end - plan.start;
  out->count = len == 0 ? 1 : (len - 1) / plan.step + 1;
  return 0;
}

void bm_window_plan_span(const bm_window_plan_t *p, uint64_t k, uint64_t *offset,
                         uint64_t *length) {
  bm__window_plan_t plan;
  plan.start = p->start;
  plan.end = p->end;
  plan.step = p->step;
  plan.overlap = p->overlap;
  plan.readahead = 0;
  bm__window_span(&plan, p->start + k * p->step, k == 0, offset, length);
}

void bm_window_opts_init(bm_window_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  o->length = BM_TO_END;
  o->access = BM_ACCESS_READ;
}
