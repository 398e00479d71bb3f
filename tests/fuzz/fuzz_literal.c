/* libFuzzer: the scan engine's literal search (src/kernels.c: SIMD packed pair, memchr,
 * memmem, Two-Way) against a naive byte-by-byte search, on any haystack and literal. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static const unsigned char *naive(const unsigned char *p, size_t n, const unsigned char *l,
                                  size_t len) {
  size_t i;
  for (i = 0; i + len <= n; i++)
    if (memcmp(p + i, l, len) == 0) return p + i;
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  size_t len;
  if (n < 2) return 0;
  len = 1 + data[0] % 64; /* long enough for the packed pair to give way to Two-Way */
  if (n - 1 < len) return 0;
  {
    const unsigned char *lit = data + 1, *hay = data + 1 + len;
    size_t hn = n - 1 - len, off = 0;
    /* Every match, left to right, as scan --count walks them. */
    while (off <= hn) {
      const unsigned char *a = bm__find_literal(hay + off, hn - off, lit, len);
      const unsigned char *b = naive(hay + off, hn - off, lit, len);
      if (a != b) abort();
      if (a == NULL) break;
      off = (size_t)(a - hay) + 1;
    }
  }
  return 0;
}
