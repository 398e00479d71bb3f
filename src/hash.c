/* XXH3-64, the dataset checksum (equal to xxhsum -H3): xxHash header-only, with the AVX2
 * kernels compiled beside the baseline (SSE2) ones and picked at run time, as xxhsum does
 * (xxh_x86dispatch.c). The hash is the one sequential stage of a scan or a load, so its
 * speed is theirs. */
#define XXH_INLINE_ALL
#define XXH_STATIC_LINKING_ONLY
#if defined(__x86_64__) && defined(__GNUC__)
#define BM__XXH_AVX2 1
#define XXH_DISPATCH_AVX2 1
/* The AVX2 kernel loads the accumulators with aligned 32-byte loads, and XXH3_update works
 * on a stack copy aligned to XXH_ACC_ALIGN, which the SSE2 baseline would set to 16. 64 is
 * what xxHash's own dispatcher (XXH_X86DISPATCH) uses. */
#define XXH_ACC_ALIGN 64
#define XXH_TARGET_AVX2 __attribute__((__target__("avx2")))
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <xxhash.h>
#include "internal.h"

struct bm_xxh3_s {
  XXH3_state_t *st;
};

#ifdef BM__XXH_AVX2
__attribute__((__target__("avx2"))) static void bm__xxh3_update_avx2(XXH3_state_t *st,
                                                                     const void *p, size_t n) {
  XXH3_update(st, (const xxh_u8 *)p, n, XXH3_accumulate_512_avx2, XXH3_scrambleAcc_avx2);
}
#endif

bm_xxh3_t *bm_xxh3_new(void) {
  bm_xxh3_t *h = malloc(sizeof(*h));
  if (h == NULL) return NULL;
  if ((h->st = XXH3_createState()) == NULL || XXH3_64bits_reset(h->st) != XXH_OK) {
    XXH3_freeState(h->st);
    free(h);
    return NULL;
  }
  return h;
}

void bm_xxh3_update(bm_xxh3_t *h, const void *p, size_t n) {
#ifdef BM__XXH_AVX2
  /* A load from libgcc's CPU model, filled before main: cheap, and no cached flag for
   * threads to race on. */
  if (__builtin_cpu_supports("avx2")) {
    bm__xxh3_update_avx2(h->st, p, n);
    return;
  }
#endif
  XXH3_64bits_update(h->st, p, n);
}

uint64_t bm_xxh3_digest(const bm_xxh3_t *h) { return XXH3_64bits_digest(h->st); }

void bm_xxh3_free(bm_xxh3_t *h) {
  if (h == NULL) return;
  XXH3_freeState(h->st);
  free(h);
}

uint64_t bm__xxh3_64(const void *p, size_t n) { return XXH3_64bits(p, n); }
