/* The page cache of a file source (docs/design.md section 6, one copy in RAM): which of its pages
 * are resident (mincore on a mapping that is never touched) and dropping those a load
 * brought in (posix_fadvise POSIX_FADV_DONTNEED: clean pages go, dirty ones stay). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
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
