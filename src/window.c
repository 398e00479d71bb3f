/* The window cursor: walks a range of a source in bounded windows with overlap and
 * read-ahead, never holding more than two windows mapped. */
#include <string.h>
#include "os.h"

#define BM__DEFAULT_WINDOW (64u << 20)

int bm_window_init(bm_window_t *w, bm_source_t *src, const bm_window_opts_t *opts) {
  bm_window_opts_t o;
  uint64_t size, gran, win, per;
  int err, nwin;

  if (w == NULL) return BM_EINVAL;
  memset(w, 0, sizeof(*w));
  if (src == NULL) return BM_EINVAL;
  if (opts != NULL) o = *opts;
  else {
    memset(&o, 0, sizeof(o));
    o.length = BM_TO_END;
  }
  if (o.access == 0) o.access = BM_ACCESS_READ;
  if (o.access != BM_ACCESS_READ && o.access != BM_ACCESS_COPY) return BM_EINVAL;
  if ((err = bm__os_source_size(src, &size)) != 0) return err;
  if (o.start > size) return BM_ERANGE;
  if (o.length == BM_TO_END) o.length = size - o.start;
  if (o.start + o.length < o.start) return BM_EOVERFLOW;
  if (o.start + o.length > size) return BM_ERANGE;

  gran = src->granularity;
  win = o.window == 0 ? BM__DEFAULT_WINDOW : o.window;
  win = bm__align_up(win, gran);
  if (win == 0 || win > (uint64_t)SIZE_MAX / 4) return BM_EOVERFLOW;
  if (o.overlap >= win) return BM_EINVAL;

  /* A window maps at most overlap + window bytes plus up to a granule of alignment slack;
   * read-ahead keeps a second window mapped. Shrink the window to honour max_mapped. */
  nwin = o.readahead ? 2 : 1;
  if (o.max_mapped != 0) {
    for (;;) {
      per = o.max_mapped / (uint64_t)nwin;
      if (per >= o.overlap + 2 * gran) {
        uint64_t fit = bm__align_down(per - o.overlap - gran, gran);
        if (fit > o.overlap && fit >= gran) {
          if (fit < win) win = fit;
          break;
        }
      }
      if (nwin == 1) return BM_EINVAL;
      nwin = 1; /* give up read-ahead before giving up */
      o.readahead = 0;
    }
  }

  w->src = src;
  w->start = o.start;
  w->end = o.start + o.length;
  w->pos = o.start;
  w->step = win;
  w->ovl = o.overlap;
  w->readahead = o.readahead;
  w->prefault = o.prefault;
  w->access = o.access;
  w->next_pos = UINT64_MAX;
  w->fresh = 1;
  return 0;
}

uint64_t bm_window_size(const bm_window_t *w) { return w->step; }

/* Maps the window whose new bytes begin at pos into v. */
static int bm__window_map(bm_window_t *w, uint64_t pos, int fresh, bm_view_t *v) {
  uint64_t size, newlen, ovl;
  int err;

  newlen = w->end - pos < w->step ? w->end - pos : w->step;
  ovl = fresh ? 0 : (pos - w->start < w->ovl ? pos - w->start : w->ovl);
  /* The source must still hold the whole range being walked: a file cut short under the
   * cursor is reported here, before any byte past its end could be touched. */
  if ((err = bm__os_source_size(w->src, &size)) != 0) return err;
  if (size < pos + newlen) return BM_ETRUNCATED;
  return bm_view_map(v, w->src, pos - ovl, ovl + newlen, w->access);
}

static void bm__window_account(bm_window_t *w) {
  w->mapped = (uint64_t)w->cur.map_length + w->next.map_length;
  if (w->mapped > w->peak_mapped) w->peak_mapped = w->mapped;
}

int bm_window_next(bm_window_t *w) {
  int err;
  uint64_t newpos;

  if (w == NULL || w->src == NULL) return BM_EINVAL;
  if (w->cur.src != NULL) {
    bm_view_unmap(&w->cur);
    bm__window_account(w);
  }
  if (w->pos >= w->end) {
    /* An empty range gives one empty window, then the end. */
    if (!(w->fresh && w->pos == w->start && w->end == w->start && !w->done_empty)) return 0;
    w->done_empty = 1;
    w->data = (const unsigned char *)"";
    w->length = 0;
    w->overlap = 0;
    w->offset = w->pos;
    return 1;
  }

  if (w->next.src != NULL && w->next_pos == w->pos) {
    /* Mapped ahead of time: the source may have shrunk since, so check again. */
    uint64_t size;
    w->cur = w->next;
    memset(&w->next, 0, sizeof(w->next));
    err = bm__os_source_size(w->src, &size);
    if (err == 0 && size < w->cur.offset + w->cur.length) err = BM_ETRUNCATED;
    if (err != 0) {
      bm_view_unmap(&w->cur);
      bm__window_account(w);
      return err;
    }
  } else {
    if (w->next.src != NULL) bm_view_unmap(&w->next);
    if ((err = bm__window_map(w, w->pos, w->fresh, &w->cur)) != 0) return err;
  }
  w->next_pos = UINT64_MAX;
  newpos = w->cur.offset + w->cur.length;

  if (w->readahead && newpos < w->end) {
    /* Map the next window now and let the OS read it in while this one is used. */
    if (bm__window_map(w, newpos, 0, &w->next) == 0) {
      w->next_pos = newpos;
      bm_view_advise(&w->next, BM_ADVICE_WILLNEED);
    }
  }
  bm__window_account(w);

  if (w->prefault && (err = bm_view_prefetch(&w->cur)) != 0) {
    bm_view_unmap(&w->cur);
    bm_view_unmap(&w->next);
    bm__window_account(w);
    return err;
  }
  w->data = w->cur.data;
  w->length = w->cur.length;
  w->overlap = (size_t)(w->pos - w->cur.offset);
  w->offset = w->cur.offset;
  w->pos = newpos;
  w->fresh = 0;
  return 1;
}

int bm_window_seek(bm_window_t *w, uint64_t offset) {
  if (w == NULL || w->src == NULL) return BM_EINVAL;
  if (offset < w->start || offset > w->end) return BM_ERANGE;
  /* A mapped read-ahead window carries overlap, and a seek asks for none: drop it. */
  bm_view_unmap(&w->next);
  w->next_pos = UINT64_MAX;
  w->pos = offset;
  w->fresh = 1;
  w->done_empty = 1;
  return 0;
}

void bm_window_close(bm_window_t *w) {
  if (w == NULL) return;
  bm_view_unmap(&w->cur);
  bm_view_unmap(&w->next);
  w->src = NULL;
  w->data = NULL;
  w->length = 0;
}
