/* libFuzzer: the scan's parts against a whole-buffer count. A literal, a buffer and cut
 * points come from the input; each piece is scanned with BM_SCAN_PART (its matches running
 * to the buffer's end), saved, loaded and folded in order; the folded counts must be the
 * naive greedy count of the whole buffer, and each piece's its own. The raw input is also
 * given to bm_scan_part_load (untrusted bytes): what loads must count, save and fold.
 *
 * Input: [L-1 (mod 20)] [flags] [ncuts (mod 9)] [2 bytes a cut]... [literal, L bytes] [buffer]
 * flags: 1 periodic literal (its first 1-3 bytes repeated), 2 buffer bytes mapped onto the
 * literal's bytes (many partial matches), 4 a second literal (a prefix of the first), 8 a
 * third (the literal with its last byte changed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bulkmap.h"

#define MAXL 20

/* Matches begin in [from, to), may end by n; the search starts at `from` and skips a match's
 * length after each one. Obviously right: memcmp at every position. */
static uint64_t naive(const unsigned char *d, size_t n, size_t from, size_t to,
                      const unsigned char *lit, size_t L) {
  uint64_t c = 0;
  size_t i = from;
  while (i < to && i + L <= n) {
    if (memcmp(d + i, lit, L) == 0) c++, i += L;
    else i++;
  }
  return c;
}

static bm_scan_part_t *roundtrip(bm_scan_part_t *p) {
  size_t need = 0, need2 = 0;
  unsigned char *b;
  bm_scan_part_t *q = NULL;
  if (bm_scan_part_save(p, NULL, 0, &need) != 0) abort();
  if ((b = malloc(need)) == NULL) abort();
  if (bm_scan_part_save(p, b, need, &need2) != 0 || need2 != need) abort();
  if (bm_scan_part_load(&q, b, need) != 0) abort();
  free(b);
  bm_scan_part_free(p);
  return q;
}

/* Bytes that load: they count, save to the same bytes, and fold with themselves moved to
 * follow (the offset field rewritten), giving a part that loads again. */
static void untrusted(const uint8_t *data, size_t n) {
  bm_scan_part_t *p = NULL, *q = NULL, *r = NULL;
  uint64_t counts[BM_SCAN_MAX_LITERALS], off, len, lines;
  unsigned nl = 0;
  size_t need = 0;
  unsigned char *b;
  if (bm_scan_part_load(&p, data, n) != 0) {
    if (p != NULL) abort();
    return;
  }
  if (bm_scan_part_counts(p, counts, &nl) != 0 || nl > BM_SCAN_MAX_LITERALS) abort();
  bm_scan_part_range(p, &off, &len, &lines);
  if (bm_scan_part_save(p, NULL, 0, &need) != 0 || need != n) abort();
  if ((b = malloc(n)) == NULL) abort();
  if (bm_scan_part_save(p, b, n, &need) != 0 || memcmp(b, data, n) != 0) abort();
  if (off + len >= off && off + 2 * len >= off + len) {
    uint64_t at = off + len;
    int i;
    for (i = 0; i < 8; i++) b[8 + i] = (unsigned char)(at >> (8 * i));
    if (bm_scan_part_load(&q, b, n) == 0) {
      if (bm_scan_part_fold(p, q) != 0) abort(); /* adjacent, the same literals */
      if (bm_scan_part_counts(p, counts, NULL) != 0) abort();
      if (bm_scan_part_save(p, NULL, 0, &need) != 0) abort();
      free(b);
      if ((b = malloc(need)) == NULL) abort();
      if (bm_scan_part_save(p, b, need, &need) != 0) abort();
      if (bm_scan_part_load(&r, b, need) != 0) abort(); /* a fold stays a valid part */
    }
  }
  free(b);
  bm_scan_part_free(p);
  bm_scan_part_free(q);
  bm_scan_part_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  unsigned char lit[3][MAXL], *buf;
  bm_literal_t lits[3];
  size_t L, ncuts, cuts[10], bn, i, k;
  unsigned flags, nl = 1;
  bm_scan_part_t *acc = NULL;
  uint64_t counts[BM_SCAN_MAX_LITERALS];
  const uint8_t *p;

  untrusted(data, n);
  if (n < 3) return 0;
  L = 1 + data[0] % MAXL;
  flags = data[1];
  ncuts = data[2] % 9;
  p = data + 3;
  if ((size_t)(data + n - p) < 2 * ncuts + L) return 0;
  p += 2 * ncuts;
  memcpy(lit[0], p, L);
  p += L;
  if (flags & 1) {
    size_t per = 1 + data[1] / 16 % 3;
    for (i = per; i < L; i++) lit[0][i] = lit[0][i - per];
  }
  bn = (size_t)(data + n - p);
  if ((buf = malloc(bn ? bn : 1)) == NULL) abort();
  memcpy(buf, p, bn);
  if (flags & 2)
    for (i = 0; i < bn; i++) buf[i] = lit[0][buf[i] % L];
  lits[0].bytes = lit[0], lits[0].length = L;
  if (flags & 4) {
    memcpy(lit[1], lit[0], L);
    lits[nl].bytes = lit[1], lits[nl].length = 1 + L / 2, nl++;
  }
  if (flags & 8) {
    memcpy(lit[2], lit[0], L);
    lit[2][L - 1] ^= 1;
    lits[nl].bytes = lit[2], lits[nl].length = L, nl++;
  }
  /* cut points, sorted, in [0, bn] */
  for (i = 0; i < ncuts; i++) cuts[i] = ((size_t)data[3 + 2 * i] | (size_t)data[4 + 2 * i] << 8) % (bn + 1);
  for (i = 1; i < ncuts; i++)
    for (k = i; k > 0 && cuts[k - 1] > cuts[k]; k--) {
      size_t t = cuts[k];
      cuts[k] = cuts[k - 1], cuts[k - 1] = t;
    }
  for (i = 0; i <= ncuts; i++) {
    size_t from = i == 0 ? 0 : cuts[i - 1], to = i == ncuts ? bn : cuts[i];
    bm_scan_opts_t o;
    bm_scan_result_t r;
    memset(&o, 0, sizeof(o));
    o.flags = BM_SCAN_PART | BM_SCAN_LINES;
    o.literals = lits;
    o.n_literals = nl;
    o.offset = from;
    o.length = to - from;
    o.match_end = BM_TO_END;
    if (bm_scan_buffer(buf, bn, &o, &r) != 0 || r.part == NULL) abort();
    for (k = 0; k < nl; k++)
      if (r.counts[k] != naive(buf, bn, from, to, lits[k].bytes, lits[k].length)) abort();
    r.part = roundtrip(r.part);
    if (acc == NULL) {
      acc = r.part;
    } else {
      if (bm_scan_part_fold(acc, r.part) != 0) abort();
      bm_scan_part_free(r.part);
    }
  }
  acc = roundtrip(acc);
  if (bm_scan_part_counts(acc, counts, &nl) != 0) abort();
  for (k = 0; k < nl; k++)
    if (counts[k] != naive(buf, bn, 0, bn, lits[k].bytes, lits[k].length)) abort();
  {
    uint64_t off, len, lines, want = 0;
    bm_scan_part_range(acc, &off, &len, &lines);
    for (i = 0; i < bn; i++) want += buf[i] == '\n';
    if (off != 0 || len != bn || lines != want) abort();
  }
  /* the whole buffer at once says the same */
  {
    bm_scan_opts_t o;
    bm_scan_result_t r;
    memset(&o, 0, sizeof(o));
    o.literals = lits;
    o.n_literals = nl;
    o.length = BM_TO_END;
    if (bm_scan_buffer(buf, bn, &o, &r) != 0) abort();
    for (k = 0; k < nl; k++)
      if (r.counts[k] != counts[k]) abort();
  }
  bm_scan_part_free(acc);
  free(buf);
  return 0;
}
