/* libFuzzer: the view and window arithmetic (src/plan.c) with sizes, offsets, lengths,
 * granularities and overlaps anywhere in 64 bits. Checks the invariants a mapping relies on. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static uint64_t take(const uint8_t **p, size_t *n) {
  uint64_t v = 0;
  size_t k = *n < 8 ? *n : 8;
  memcpy(&v, *p, k);
  *p += k;
  *n -= k;
  return v;
}

/* Biases values to the edges: near 0, near a granule, near UINT64_MAX. */
static uint64_t edge(uint64_t v, uint64_t gran) {
  switch (v & 3) {
  case 0: return v >> 2;
  case 1: return (v >> 8) % (8 * gran + 1);
  case 2: return UINT64_MAX - ((v >> 2) & 0xffff);
  default: return (v >> 2) * gran + ((v >> 60) & 3) - 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  uint64_t gran = 1ull << (12 + take(&data, &n) % 19); /* 4 KiB .. 1 GiB */
  uint64_t size = edge(take(&data, &n), gran), off = edge(take(&data, &n), gran);
  uint64_t len = edge(take(&data, &n), gran);
  int whole = (int)(take(&data, &n) & 1);
  bm__view_plan_t v;
  bm_window_opts_t o;
  bm__window_plan_t w;

  if (take(&data, &n) & 1) len = BM_TO_END;
  if (bm__view_plan(size, gran, whole, off, len, &v) == 0) {
    uint64_t want = len == BM_TO_END ? size - off : len;
    if (v.length != want || off + v.length > size) abort();
    if (v.length > 0) {
      if (v.start % gran || v.start > off) abort();
      if (v.span < off - v.start + v.length || v.span > (uint64_t)SIZE_MAX) abort();
      if (v.start + v.span < v.start || (v.start + v.span > size && v.start + v.span > off + v.length)) abort();
    }
  } else if (off <= size && (len == BM_TO_END || (off + len >= off && off + len <= size)) &&
             (off - off % gran) + (off % gran) + (len == BM_TO_END ? size - off : len) <= (uint64_t)SIZE_MAX) {
    abort(); /* a valid request refused */
  }

  memset(&o, 0, sizeof(o));
  o.start = off;
  o.length = len;
  o.window = edge(take(&data, &n), gran);
  o.overlap = edge(take(&data, &n), gran);
  o.max_mapped = take(&data, &n) & 1 ? 0 : edge(take(&data, &n), gran);
  o.readahead = (int)(take(&data, &n) & 1);
  if (bm__window_plan(size, gran, &o, &w) == 0) {
    uint64_t pos = w.start, k, mo, ml, prev_end = w.start;
    if (w.step % gran || w.step == 0 || w.overlap >= w.step) abort();
    if (w.end > size || w.start > w.end) abort();
    if (o.max_mapped && (w.readahead ? 2 : 1) * (w.step + w.overlap + gran) > o.max_mapped) abort();
    /* The first few windows, and the last: contiguous new bytes, overlap behind them. */
    for (k = 0; k < 64 && pos < w.end; k++) {
      bm__window_span(&w, pos, k == 0, &mo, &ml);
      if (mo + ml < mo || mo + ml > w.end || mo < w.start) abort();
      if (mo + ml <= pos || mo > pos || pos - mo > w.overlap) abort();
      if (k > 0 && mo + (pos - mo) != prev_end) abort();
      prev_end = mo + ml;
      pos = mo + ml;
    }
    if (w.end > w.start && w.end - w.start > w.step) {
      pos = w.start + ((w.end - w.start - 1) / w.step) * w.step;
      bm__window_span(&w, pos, 0, &mo, &ml);
      if (mo + ml != w.end) abort();
    }
  }
  return 0;
}
