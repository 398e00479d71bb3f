/* The view and window arithmetic, kept free of OS calls so that it can be tested and
 * fuzzed on its own (offsets near UINT64_MAX, any granularity, any overlap). */
#include <string.h>
#include "internal.h"

int bm__view_plan(uint64_t size, uint64_t gran, int whole_pages, uint64_t offset,
                  uint64_t length, bm__view_plan_t *out) {
  uint64_t start, span, end;
  if (gran == 0) return BM_EINVAL;
  if (offset > size) return BM_ERANGE;
  if (length == BM_TO_END) length = size - offset;
  if (offset + length < offset) return BM_EOVERFLOW;
  if (offset + length > size) return BM_ERANGE;
  memset(out, 0, sizeof(*out));
  out->length = length;
  if (length == 0) return 0;
  start = bm__align_down(offset, gran);
  span = offset - start + length;
  if (span < length || span > (uint64_t)SIZE_MAX) return BM_EOVERFLOW;
  /* Large pages are mapped whole (munmap and mprotect of hugetlbfs need it, and Windows maps
   * large-page views in whole pages). 1: within the source (a size that is a multiple of
   * the page); 2: past its end too (a hugetlbfs file of a dataset's exact size: its last
   * page is there whole, and the bytes past the end are never handed out). */
  if (whole_pages) {
    end = bm__align_up(start + span, gran);
    if (end != 0 && (end <= size || whole_pages == 2) && end - start <= (uint64_t)SIZE_MAX)
      span = end - start;
  }
  out->start = start;
  out->span = span;
  return 0;
}

int bm__window_plan(uint64_t size, uint64_t gran, const bm_window_opts_t *o,
                    bm__window_plan_t *out) {
  uint64_t length = o->length, win, per;
  int readahead = o->readahead != 0;

  if (gran == 0) return BM_EINVAL;
  if (o->start > size) return BM_ERANGE;
  if (length == BM_TO_END) length = size - o->start;
  if (o->start + length < o->start) return BM_EOVERFLOW;
  if (o->start + length > size) return BM_ERANGE;
  win = o->window == 0 ? BM__DEFAULT_WINDOW : o->window;
  win = bm__align_up(win, gran);
  if (win == 0 || win > (uint64_t)SIZE_MAX / 4) return BM_EOVERFLOW;
  if (o->overlap >= win) return BM_EINVAL;

  /* A window maps at most overlap + window bytes plus up to a granule of alignment slack;
   * read-ahead keeps a second window mapped. Shrink the window to honour max_mapped,
   * giving up read-ahead before giving up. */
  if (o->max_mapped != 0) {
    for (;;) {
      per = o->max_mapped / (readahead ? 2 : 1);
      if (per >= o->overlap && per - o->overlap >= 2 * gran) {
        uint64_t fit = bm__align_down(per - o->overlap - gran, gran);
        if (fit > o->overlap && fit >= gran) {
          if (fit < win) win = fit;
          break;
        }
      }
      if (!readahead) return BM_EINVAL;
      readahead = 0;
    }
  }
  out->start = o->start;
  out->end = o->start + length;
  out->step = win;
  out->overlap = o->overlap;
  out->readahead = readahead;
  return 0;
}

void bm__window_span(const bm__window_plan_t *p, uint64_t pos, int fresh, uint64_t *offset,
                     uint64_t *length) {
  uint64_t newlen = p->end - pos < p->step ? p->end - pos : p->step;
  uint64_t ovl = fresh ? 0 : (pos - p->start < p->overlap ? pos - p->start : p->overlap);
  *offset = pos - ovl;
  *length = ovl + newlen;
}
