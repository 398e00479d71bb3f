/* The page cache of a file source (docs/design.md section 6, one copy in RAM). Windows cannot say
 * which pages of a file are in its standby list, nor drop one file's pages without
 * administrator rights (the whole standby list only): nothing is done, and the load
 * reports what is cached as unknown. */
#include "../os.h"

int bm__os_cache_resident(bm_source_t *src, uint64_t offset, size_t length, unsigned char *vec) {
  (void)src, (void)offset, (void)length, (void)vec;
  return BM_ENOTSUP;
}

int bm__os_cache_drop(bm_source_t *src, uint64_t offset, uint64_t length) {
  (void)src, (void)offset, (void)length;
  return BM_ENOTSUP;
}

int bm__os_cache_count(bm_source_t *src, uint64_t *pages) {
  (void)src;
  (void)pages;
  return BM_ENOTSUP;
}
