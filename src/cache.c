/* One copy in RAM (docs/design.md section 6): before a load reads its file, which of the file's
 * pages are in the page cache is noted (bm__os_cache_resident, in bounded windows, one bit
 * a page); after, the pages the load brought in are dropped again and what is left cached
 * is counted. Pages resident before stay: someone else is using them. */
#include <stdlib.h>
#include <string.h>
#include "os.h"

#define CACHE_WINDOW (64u << 20) /* bytes looked at a call: bounded address space */

/* Calls fn on each window's residency vector. */
static int cache_walk(bm_source_t *f, uint64_t size, unsigned char *vec,
                      void (*fn)(void *arg, uint64_t first, const unsigned char *vec, size_t n),
                      void *arg) {
  uint64_t page = bm_page_size(), off;
  int err;
  for (off = 0; off < size; off += CACHE_WINDOW) {
    size_t len = (size_t)(size - off < CACHE_WINDOW ? size - off : CACHE_WINDOW);
    if ((err = bm__os_cache_resident(f, off, len, vec)) != 0) return err;
    fn(arg, off / page, vec, (size_t)((len + page - 1) / page));
  }
  return 0;
}

static void cache_note(void *arg, uint64_t first, const unsigned char *vec, size_t n) {
  bm__cache_t *c = arg;
  size_t i;
  for (i = 0; i < n; i++)
    if (vec[i] & 1) {
      c->bits[(first + i) >> 3] |= (unsigned char)(1u << ((first + i) & 7));
      c->before++;
    }
}

static void cache_count(void *arg, uint64_t first, const unsigned char *vec, size_t n) {
  uint64_t *count = arg;
  size_t i;
  (void)first;
  for (i = 0; i < n; i++) *count += vec[i] & 1;
}

static uint64_t cache_bytes(uint64_t pages, uint64_t size) {
  uint64_t b = pages * bm_page_size();
  return b > size ? size : b;
}

/* Pages of f cached now: one count where the OS has it, else a walk of every window. */
static int cache_pages(bm_source_t *f, uint64_t size, unsigned char *vec, uint64_t *count) {
  *count = 0;
  if (bm__os_cache_count(f, count) == 0) return 0;
  return cache_walk(f, size, vec, cache_count, count);
}

int bm__cache_snapshot(bm_source_t *f, uint64_t size, bm__cache_t *c) {
  uint64_t pages = (size + bm_page_size() - 1) / bm_page_size(), n;
  int err;
  memset(c, 0, sizeof(*c));
  c->size = size;
  if (size == 0) return 0;
  if (pages / 8 + 1 > SIZE_MAX) return BM_EOVERFLOW;
  /* The common cases, a file all in the cache (read just before) or none of it (cold), are
   * told by one count and need no page bits. */
  if (bm__os_cache_count(f, &n) == 0 && (n >= pages || n == 0)) {
    c->ok = 1;
    c->all = n >= pages;
    c->none = n == 0;
    c->before = c->all ? size : 0;
    return 0;
  }
  if ((c->vec = malloc(CACHE_WINDOW / bm_page_size())) == NULL ||
      (c->bits = calloc((size_t)(pages / 8 + 1), 1)) == NULL) {
    bm__cache_free(c);
    return BM_ENOMEM;
  }
  if ((err = cache_walk(f, size, c->vec, cache_note, c)) != 0) {
    bm__cache_free(c);
    return err;
  }
  c->ok = 1;
  c->before = cache_bytes(c->before, size);
  return 0;
}

int bm__cache_restore(bm_source_t *f, bm__cache_t *c, uint64_t *after) {
  uint64_t pages, page = bm_page_size(), i = 0, count = 0;
  int err;
  *after = 0;
  if (c->size == 0) return 0;
  if (!c->ok) return BM_ENOTSUP;
  pages = (c->size + page - 1) / page;
  if (c->none && (err = bm__os_cache_drop(f, 0, c->size)) != 0) return err;
  while (!c->all && !c->none && i < pages) {
    uint64_t j;
    if (c->bits[i >> 3] & (1u << (i & 7))) {
      i++;
      continue;
    }
    for (j = i; j < pages && !(c->bits[j >> 3] & (1u << (j & 7))); j++) {}
    /* Runs of pages that were not resident: what the load brought in. */
    if ((err = bm__os_cache_drop(f, i * page, (j - i) * page)) != 0) return err;
    i = j;
  }
  if (c->vec == NULL && (c->vec = malloc(CACHE_WINDOW / bm_page_size())) == NULL) return BM_ENOMEM;
  if ((err = cache_pages(f, c->size, c->vec, &count)) != 0) return err;
  *after = cache_bytes(count, c->size);
  return 0;
}

void bm__cache_free(bm__cache_t *c) {
  free(c->bits);
  free(c->vec);
  c->bits = c->vec = NULL;
}
