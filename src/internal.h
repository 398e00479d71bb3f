/* bulkmap internals shared by the portable code and both backends: the source object and
 * small arithmetic helpers. Nothing here includes an OS header. */
#ifndef BULKMAP_INTERNAL_H
#define BULKMAP_INTERNAL_H

#include "bulkmap.h"

enum { BM__SRC_FILE = 1, BM__SRC_SECTION = 2, BM__SRC_ANON = 3 };

struct bm_source_s {
  bm_os_handle_t fd;      /* file descriptor, or the file HANDLE on Windows */
  bm_os_handle_t mapping; /* Windows: the file-mapping object; POSIX: unused */
  uint64_t size;          /* bytes (a section's size is fixed at creation) */
  size_t granularity;     /* view offsets align to this */
  size_t page_size;       /* page size of the mappings (large page size when large) */
  unsigned flags;         /* BM_FILE_* the source was opened with */
  int kind;               /* BM__SRC_* */
  int hugetlb;            /* POSIX: backed by hugetlbfs / MFD_HUGETLB */
  int thp;                /* POSIX: views get MADV_HUGEPAGE */
  bm_large_t large;       /* outcome of the large-page request at creation / open */
  char path[BM_PATH_MAX]; /* file path, or where the section lives */
};

/* Records the raw OS error of the calling thread's last failure. */
void bm__set_os_error(int oserr);

static inline uint64_t bm__align_down(uint64_t v, uint64_t a) { return v - v % a; }
/* Rounds v up to a multiple of a; returns 0 when that wraps. */
static inline uint64_t bm__align_up(uint64_t v, uint64_t a) {
  uint64_t r = v % a;
  if (r == 0) return v;
  return (v + (a - r) < v) ? 0 : v + (a - r);
}

#endif
