/* Counting kernels of the scan engine: bytes equal to c (newlines) and literal search. AVX2
 * where the CPU has it (picked at run time), SSE2 on any x86-64, a portable loop elsewhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
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

static const unsigned char *find_literal_plain(const unsigned char *p, size_t n,
                                              const unsigned char *lit, size_t len) {
#if defined(__GLIBC__)
  return memmem(p, n, lit, len);
#else
  const unsigned char *end, *q;
  if (len > n) return NULL;
  end = p + (n - len + 1);
  while (p < end && (q = memchr(p, lit[0], (size_t)(end - p))) != NULL) {
    if (memcmp(q, lit, len) == 0) return q;
    p = q + 1;
  }
  return NULL;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The "packed pair" search (W. Mula's SIMD-friendly substring search, as in ripgrep's
 * memchr crate): 32 candidate positions at a time must match the literal's first and last
 * bytes before the middle is compared. */
__attribute__((target("avx2"))) static const unsigned char *
find_literal_avx2(const unsigned char *p, size_t n, const unsigned char *lit, size_t len) {
  const __m256i first = _mm256_set1_epi8((char)lit[0]), last = _mm256_set1_epi8((char)lit[len - 1]);
  size_t i = 0;
  for (; n >= len - 1 + 32 && i <= n - (len - 1) - 32; i += 32) {
    __m256i a = _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i)), first);
    __m256i b = _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + i + len - 1)), last);
    unsigned mask = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(a, b));
    while (mask != 0) {
      unsigned bit = (unsigned)__builtin_ctz(mask);
      if (memcmp(p + i + bit + 1, lit + 1, len - 2) == 0) return p + i + bit;
      mask &= mask - 1;
    }
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
