/* Counting kernels of the scan engine: bytes equal to c (newlines) and literal search. AVX2
 * where the CPU has it (picked at run time), SSE2 on any x86-64, a portable loop elsewhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stddef.h>
#include <string.h>
#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2"))) static uint64_t count_byte_avx2(const unsigned char *p,
                                                                 size_t n, unsigned char c) {
  const __m256i needle = _mm256_set1_epi8((char)c), zero = _mm256_setzero_si256();
  uint64_t total = 0;
  size_t i = 0;
  /* Equal bytes are -1: subtract them into byte counters (4 a round, so 63 rounds at most
   * before one could pass 255), then fold the counters with SAD. */
  while (n - i >= 128) {
    __m256i acc = zero, sad;
    size_t rounds = (n - i) / 128, r;
    uint64_t t[4];
    if (rounds > 63) rounds = 63;
    for (r = 0; r < rounds; r++, i += 128) {
      acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i)), needle));
      acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i + 32)), needle));
      acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i + 64)), needle));
      acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i + 96)), needle));
    }
    sad = _mm256_sad_epu8(acc, zero);
    _mm256_storeu_si256((void *)t, sad);
    total += t[0] + t[1] + t[2] + t[3];
  }
  for (; i < n; i++) total += p[i] == c;
  return total;
}
#endif

int bm__cpu_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  /* A load from libgcc's CPU model, filled before main: cheap enough to ask every time, and
   * no cached flag for pool threads to race on. */
  return __builtin_cpu_supports("avx2") != 0;
#else
  return 0;
#endif
}

static uint64_t count_byte_plain(const unsigned char *p, size_t n, unsigned char c) {
  uint64_t total = 0;
  const unsigned char *q, *end = p + n;
  while (p < end && (q = memchr(p, c, (size_t)(end - p))) != NULL) {
    total++;
    p = q + 1;
  }
  return total;
}

uint64_t bm__count_byte(const unsigned char *p, size_t n, unsigned char c) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (bm__cpu_avx2()) return count_byte_avx2(p, n, c);
#endif
  return count_byte_plain(p, n, c);
}

/* The start of the maximal suffix of x[0, m) under the byte order (greater: reversed), as
 * the index before it (-1: all of x), and that suffix's period. */
static ptrdiff_t max_suffix(const unsigned char *x, ptrdiff_t m, int greater, ptrdiff_t *period) {
  ptrdiff_t ms = -1, j = 0, k = 1, p = 1;
  while (j + k < m) {
    unsigned char a = x[j + k], b = x[ms + k];
    if (a == b) {
      if (k == p) j += p, k = 1;
      else k++;
    } else if (greater ? a > b : a < b) {
      j += k, k = 1, p = j - ms;
    } else {
      ms = j++, k = p = 1;
    }
  }
  *period = p;
  return ms;
}

/* Two-Way string matching (M. Crochemore and D. Perrin, "Two-way string-matching", J. ACM
 * 38(3), 1991): the first match of lit in p[0, n) in time linear in n + len whatever the
 * bytes, and constant memory. The literal is cut at its critical factorization; the right
 * part is compared left to right, then the left part right to left; a periodic literal
 * remembers how much of its left part the last shift kept. */
static const unsigned char *find_literal_twoway(const unsigned char *p, size_t n,
                                               const unsigned char *lit, size_t len) {
  const ptrdiff_t m = (ptrdiff_t)len, last = (ptrdiff_t)n - m;
  ptrdiff_t ell, per, q, a, b, i, j = 0, memory = -1;
  if (len > n) return NULL;
  a = max_suffix(lit, m, 0, &per);
  b = max_suffix(lit, m, 1, &q);
  if (a > b) ell = a;
  else ell = b, per = q;
  if (memcmp(lit, lit + per, (size_t)(ell + 1)) == 0) {
    while (j <= last) {
      for (i = (ell > memory ? ell : memory) + 1; i < m && lit[i] == p[i + j]; i++) {}
      if (i < m) {
        j += i - ell, memory = -1;
        continue;
      }
      for (i = ell; i > memory && lit[i] == p[i + j]; i--) {}
      if (i <= memory) return p + j;
      j += per, memory = m - per - 1;
    }
  } else {
    per = (ell + 1 > m - ell - 1 ? ell + 1 : m - ell - 1) + 1;
    while (j <= last) {
      for (i = ell + 1; i < m && lit[i] == p[i + j]; i++) {}
      if (i < m) {
        j += i - ell;
        continue;
      }
      for (i = ell; i >= 0 && lit[i] == p[i + j]; i--) {}
      if (i < 0) return p + j;
      j += per;
    }
  }
  return NULL;
}

static const unsigned char *find_literal_plain(const unsigned char *p, size_t n,
                                              const unsigned char *lit, size_t len) {
#if defined(__GLIBC__)
  return memmem(p, n, lit, len); /* Two-Way too, with a table of shifts */
#else
  return find_literal_twoway(p, n, lit, len);
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The "packed pair" search (W. Mula's SIMD-friendly substring search, as in ripgrep's
 * memchr crate): 32 candidate positions at a time must match the literal's first and last
 * bytes before the middle is compared. Each compare may read the whole literal: bytes
 * built to pass the pair test everywhere (a run of "a" a little shorter than a long
 * literal of "a") would make that len bytes a position, so once the compares have cost
 * more than a few times the bytes passed, the rest is searched by Two-Way, linear. */
__attribute__((target("avx2"))) static const unsigned char *
find_literal_avx2(const unsigned char *p, size_t n, const unsigned char *lit, size_t len) {
  const __m256i first = _mm256_set1_epi8((char)lit[0]), last = _mm256_set1_epi8((char)lit[len - 1]);
  size_t i = 0, spent = 0;
  for (; n >= len - 1 + 32 && i <= n - (len - 1) - 32; i += 32) {
    __m256i a = _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i)), first);
    __m256i b = _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i + len - 1)), last);
    unsigned mask = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(a, b));
    while (mask != 0) {
      unsigned bit = (unsigned)__builtin_ctz(mask);
      if (memcmp(p + i + bit + 1, lit + 1, len - 2) == 0) return p + i + bit;
      mask &= mask - 1;
      spent += len;
    }
    if (spent > 4 * (i + len)) return find_literal_twoway(p + i, n - i, lit, len);
  }
  return find_literal_plain(p + i, n - i, lit, len);
}
#endif

const unsigned char *bm__find_literal(const unsigned char *p, size_t n, const unsigned char *lit,
                                  size_t len) {
  if (len == 1) return memchr(p, lit[0], n);
#if defined(__x86_64__) && defined(__GNUC__)
  if (bm__cpu_avx2()) return find_literal_avx2(p, n, lit, len);
#endif
  return find_literal_plain(p, n, lit, len);
}
