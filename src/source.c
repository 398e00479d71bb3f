/* Sources (files) and views at any offset: the portable arithmetic and checks; the OS
 * calls are the backend's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "os.h"

/* Where an empty view points, so that callers may pass data to memchr and friends. */
static unsigned char bm__empty_view[1];

bm_source_t *bm__source_new(int kind, unsigned flags) {
  bm_source_t *src = calloc(1, sizeof(*src));
  if (src == NULL) return NULL;
  src->fd = BM_OS_INVALID_HANDLE;
  src->mapping = BM_OS_INVALID_HANDLE;
  src->lock = BM_OS_INVALID_HANDLE;
  src->place_fd = -1;
  src->kind = kind;
  src->flags = flags;
  src->granularity = bm__os_config()->granularity;
  src->page_size = bm__os_config()->page_size;
  src->large.requested = BM_LARGE_OFF;
  src->large.page_size = src->page_size;
  src->large.reason = BM_REASON_NOT_REQUESTED;
  return src;
}

int bm_file_open(bm_source_t **out, const char *path, unsigned flags) {
  bm_source_t *src;
  unsigned mode = flags & (BM_FILE_READ | BM_FILE_WRITE | BM_FILE_COW);
  int err;

  if (out == NULL || path == NULL || *path == '\0') return BM_EINVAL;
  *out = NULL;
  /* Exactly one access mode; CREATE, EXCL and TRUNC only make sense when writing. */
  if (mode != BM_FILE_READ && mode != BM_FILE_WRITE && mode != BM_FILE_COW) return BM_EINVAL;
  if ((flags & (BM_FILE_CREATE | BM_FILE_EXCL | BM_FILE_TRUNC)) && mode != BM_FILE_WRITE)
    return BM_EINVAL;
  if ((flags & BM_FILE_EXCL) && !(flags & BM_FILE_CREATE)) return BM_EINVAL;
  if (flags & ~(unsigned)(BM_FILE_READ | BM_FILE_WRITE | BM_FILE_CREATE | BM_FILE_EXCL |
                          BM_FILE_TRUNC | BM_FILE_COW))
    return BM_EINVAL;

  if ((src = bm__source_new(BM__SRC_FILE, flags)) == NULL) return BM_ENOMEM;
  /* Kept for messages only (truncated when long); the OS gets the caller's path. */
  snprintf(src->path, sizeof(src->path), "%s", path);
  if ((src->full_path = malloc(strlen(path) + 1)) == NULL) {
    free(src);
    return BM_ENOMEM;
  }
  strcpy(src->full_path, path);
  err = bm__os_file_open(src, path, flags);
  if (err != 0) {
    free(src->full_path);
    free(src);
    return err;
  }
  *out = src;
  return 0;
}

int bm_file_extend(bm_source_t *src, uint64_t size) {
  uint64_t cur;
  int err;

  if (src == NULL) return BM_EINVAL;
  if (src->kind != BM__SRC_FILE) return BM_ENOTSUP;
  if (!(src->flags & BM_FILE_WRITE)) return BM_EREADONLY;
  if ((err = bm__os_source_size(src, &cur)) != 0) return err;
  if (size < cur) return BM_EINVAL;
  if (size == cur) return 0;
  return bm__os_file_extend(src, size);
}

int bm_source_size(bm_source_t *src, uint64_t *size) {
  if (src == NULL || size == NULL) return BM_EINVAL;
  return bm__os_source_size(src, size);
}

size_t bm_source_granularity(const bm_source_t *src) {
  return src != NULL ? src->granularity : bm__os_config()->granularity;
}

void bm_source_close(bm_source_t *src) {
  if (src == NULL) return;
  bm__os_source_close(src);
  free(src->full_path);
  free(src);
}

int bm_view_map(bm_view_t *view, bm_source_t *src, uint64_t offset, uint64_t length,
                unsigned access) {
  bm__view_plan_t plan;
  uint64_t size, lim;
  void *base;
  int err, whole;
  bm__view_priv_t *pv;

  if (view == NULL) return BM_EINVAL;
  memset(view, 0, sizeof(*view));
  pv = bm__view_priv(view);
  if (src == NULL) return BM_EINVAL;
  if (access == 0) access = BM_ACCESS_READ;
  if (access & ~(unsigned)(BM_ACCESS_READ | BM_ACCESS_WRITE | BM_ACCESS_COPY)) return BM_EINVAL;
  if ((access & BM_ACCESS_WRITE) && (access & BM_ACCESS_COPY)) return BM_EINVAL;
  if ((access & BM_ACCESS_WRITE) && !(src->flags & BM_FILE_WRITE)) return BM_EREADONLY;
  /* A copy-on-write source hands out private copies, even when asked only to read. */
  if (src->flags & BM_FILE_COW) access = BM_ACCESS_COPY;

  if ((err = bm__os_source_size(src, &size)) != 0) return err;
  whole = src->hugetlb ? 2 : src->granularity > bm__os_config()->granularity;
  if ((err = bm__view_plan(size, src->granularity, whole, offset, length, &plan)) != 0)
    return err;
  /* Bytes past what the OS can map (16 TiB in a 32-bit Linux process): a named error, not
   * the EINVAL mmap gives. */
  lim = bm__os_config()->map_offset_limit;
  if (plan.length != 0 && (plan.start >= lim || plan.span > lim - plan.start)) return BM_EOVERFLOW;
  view->offset = offset;
  pv->src = src;
  pv->access = access;
  if (plan.length == 0) {
    view->data = bm__empty_view;
    return 0;
  }
  if ((err = bm__os_map(src, plan.start, (size_t)plan.span, access, &base)) != 0) return err;
  pv->base = base;
  pv->map_length = (size_t)plan.span;
  view->data = (unsigned char *)base + (offset - plan.start);
  view->length = (size_t)plan.length;
  return 0;
}

int bm_view_flush(bm_view_t *view) {
  bm__view_priv_t *pv;
  if (view == NULL) return BM_EINVAL;
  pv = bm__view_priv(view);
  if (pv->base == NULL || !(pv->access & BM_ACCESS_WRITE)) return 0;
  return bm__os_flush(pv->src, pv->base, pv->map_length);
}

int bm_view_advise(bm_view_t *view, int advice) {
  bm__view_priv_t *pv;
  if (view == NULL || advice < BM_ADVICE_NORMAL || advice > BM_ADVICE_DONTNEED) return BM_EINVAL;
  pv = bm__view_priv(view);
  if (pv->base == NULL) return 0;
  return bm__os_advise(pv->base, pv->map_length, advice);
}

typedef struct {
  const volatile unsigned char *p;
  size_t n, step;
} bm__touch_t;

static int bm__touch(void *arg) {
  bm__touch_t *t = arg;
  size_t i;
  unsigned char sink = 0;
  for (i = 0; i < t->n; i += t->step) sink ^= t->p[i];
  if (t->n > 0) sink ^= t->p[t->n - 1];
  (void)sink;
  return 0;
}

int bm_view_prefetch(bm_view_t *view) {
  bm__touch_t t;
  uint64_t size;
  int err;
  bm__view_priv_t *pv;

  if (view == NULL) return BM_EINVAL;
  pv = bm__view_priv(view);
  if (pv->base == NULL) return 0;
  err = bm__os_populate(pv->base, pv->map_length);
  if (err == BM_ENOTSUP) {
    t.p = pv->base;
    t.n = pv->map_length;
    t.step = bm__os_config()->page_size;
    err = bm__os_guard(bm__touch, &t);
  }
  if (err == BM_ETRUNCATED || err == BM_EIO) {
    /* Say "truncated" only when the source really is shorter than the view now. */
    if (bm__os_source_size(pv->src, &size) == 0)
      err = size < view->offset + view->length ? BM_ETRUNCATED : BM_EIO;
  }
  return err;
}

int bm_view_unmap(bm_view_t *view) {
  int err = 0;
  bm__view_priv_t *pv;
  if (view == NULL) return BM_EINVAL;
  pv = bm__view_priv(view);
  if (pv->base != NULL) err = bm__os_unmap(pv->base, pv->map_length);
  memset(view, 0, sizeof(*view));
  return err;
}

size_t bm_view_mapped(const bm_view_t *view) {
  return view != NULL ? bm__view_cpriv(view)->map_length : 0;
}

int bm_guard_call(int (*fn)(void *arg), void *arg) {
  if (fn == NULL) return BM_EINVAL;
  return bm__os_guard(fn, arg);
}
