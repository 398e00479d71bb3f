/* What the kernel says of one mapping (/proc/self/smaps): the only trusted source for the
 * page size a section really got. Shared by the files of the POSIX backend. */
#ifndef BULKMAP_POSIX_SMAPS_H
#define BULKMAP_POSIX_SMAPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bm__smaps_s {
  size_t kernel_page_size; /* KernelPageSize: the hugetlb page size, or the base page */
  uint64_t anon_huge;      /* AnonHugePages, bytes */
  uint64_t shmem_pmd;      /* ShmemPmdMapped, bytes */
  uint64_t file_pmd;       /* FilePmdMapped, bytes */
  uint64_t rss;            /* Rss, bytes */
} bm__smaps_t;

/* Fills *out from the /proc/self/smaps entry of the mapping that holds addr.
 * Errors: BM_ENOTSUP (no smaps on this system), BM_ENOENT (no mapping holds addr). */
int bm__posix_smaps(const void *addr, bm__smaps_t *out);

/* The size of a PMD (transparent huge page), from the kernel (2 MiB when it says none). */
size_t bm__posix_pmd_size(void);
/* Maps [0, len) of fd at an address aligned to `align`, faults it in (writable: for
 * writing; thp: with MADV_HUGEPAGE) and reads what smaps says of it. */
int bm__posix_probe(int fd, size_t len, size_t align, int writable, int thp, bm__smaps_t *sm);
/* The page size a probe saw; *transparent 1 when it is transparent huge pages. */
size_t bm__posix_probe_page_size(const bm__smaps_t *sm, int *transparent);

#endif
