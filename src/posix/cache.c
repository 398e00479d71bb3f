/* The page cache of a file source (docs/design.md section 6, one copy in RAM): which of its pages
 * are resident (mincore on a mapping that is never touched) and dropping those a load
 * brought in (posix_fadvise POSIX_FADV_DONTNEED: clean pages go, dirty ones stay). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

int bm__os_cache_resident(bm_source_t *src, uint64_t offset, size_t length, unsigned char *vec) {
  void *p;
  int err = 0;
  if (src->kind != BM__SRC_FILE) return BM_ENOTSUP;
  if (offset > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  /* Mapping does not read: mincore only looks the pages up in the file's cache. */
  p = bm__sys_mmap(NULL, length, PROT_READ, MAP_SHARED, src->fd, (off_t)offset);
  if (p == MAP_FAILED) return bm__posix_error(errno);
  if (mincore(p, length, vec) != 0) err = bm__posix_error(errno);
  bm__sys_munmap(p, length);
  return err;
}

int bm__os_cache_drop(bm_source_t *src, uint64_t offset, uint64_t length) {
  int e;
  if (src->kind != BM__SRC_FILE) return BM_ENOTSUP;
  if (offset > (uint64_t)INT64_MAX || length > (uint64_t)INT64_MAX - offset) return BM_EOVERFLOW;
  e = posix_fadvise(src->fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
  return e == 0 ? 0 : bm__posix_error(e);
}

/* cachestat(2), Linux 6.5: one walk of the file's cache, where mincore over 1 GiB costs
 * about five times as much (it maps the file and looks each page up). Older kernels say
 * ENOSYS. The number is the same on every architecture (new system calls share one). */
#if defined(__linux__)
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
struct posix_cachestat_range {
  uint64_t off, len;
};
struct posix_cachestat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
#endif

int bm__os_cache_count(bm_source_t *src, uint64_t *pages) {
#if defined(__linux__)
  struct posix_cachestat_range r = {0, 0}; /* len 0: to the end of the file */
  struct posix_cachestat cs;
  if (src->kind != BM__SRC_FILE) return BM_ENOTSUP;
  if (syscall(SYS_cachestat, src->fd, &r, &cs, 0) != 0) return BM_ENOTSUP;
  *pages = cs.nr_cache;
  return 0;
#else
  (void)src;
  (void)pages;
  return BM_ENOTSUP;
#endif
}
