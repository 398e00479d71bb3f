/* What the bench module needs from the OS beyond the library: private anonymous regions of
 * each page kind (what a program's heap gets), the kernel's own account of a mapping
 * (Linux smaps), the CPU's data-TLB miss counter (perf_event_open) and a clock. Everything
 * platform-specific of the bench lives in bench_posix.c or bench_win.c (CMake picks one).
 * Functions that can fail return 0 or -1 with why in reason (a sentence, never empty). */
#ifndef BULKMAP_BENCH_OS_H
#define BULKMAP_BENCH_OS_H

#include <stddef.h>
#include <stdint.h>

enum { BENCH_4K, BENCH_THP, BENCH_LARGE, BENCH_NKINDS };

typedef struct bench_mem_s {
  void *base;       /* the region: size bytes, aligned to the page size asked for */
  size_t size;
  void *map_base;   /* what was mapped (alignment slack included) */
  size_t map_size;
  int kind;
} bench_mem_t;

/* Maps a private anonymous region of size bytes (a multiple of the large page size) for
 * kind: BENCH_4K normal pages (huge pages refused with MADV_NOHUGEPAGE), BENCH_THP
 * transparent huge pages asked with MADV_HUGEPAGE, BENCH_LARGE hugetlb pages from the pool
 * (Windows: VirtualAlloc with MEM_LARGE_PAGES). Nothing is populated yet, except on Windows
 * where large pages are allocated and locked at once. */
int bench_mem_map(bench_mem_t *m, int kind, size_t size, char *reason, size_t n);
/* Faults every page of the region in for writing (MADV_POPULATE_WRITE, or a touch). */
int bench_mem_populate(bench_mem_t *m, char *reason, size_t n);
/* Unmaps; an unmapped (zeroed) one is fine. */
void bench_mem_unmap(bench_mem_t *m);

/* The kernel's account of the mappings overlapping [addr, addr+len): bytes present, bytes
 * of them mapped by huge entries (THP PMDs of anonymous, shared or file memory, and hugetlb
 * pages), and the kernel page size of the first mapping. -1 where it cannot be read (not
 * Linux, no /proc); reason says why. */
typedef struct bench_smaps_s {
  uint64_t mapped_bytes;
  uint64_t huge_bytes;
  size_t kernel_page_size;
} bench_smaps_t;
int bench_os_smaps(const void *addr, size_t len, bench_smaps_t *out);

/* The transparent huge page size (the PMD size), 0 when the kernel has none. */
size_t bench_os_thp_size(void);
/* The selected mode of the THP knob, for anonymous memory (shared 0: "enabled") or shared
 * memory (1: "shmem_enabled"), e.g. "madvise"; "" when the knob does not exist. */
void bench_os_thp_mode(int shared, char *buf, size_t n);

/* Data-TLB read misses of this thread, user space only. */
typedef struct bench_tlb_s {
  intptr_t fd;
} bench_tlb_t;
/* Opens the counter (disabled). -1 with the reason when it cannot be had: no PMU (a VM),
 * perf_event_paranoid, no such event, not Linux. */
int bench_tlb_open(bench_tlb_t *t, char *reason, size_t n);
void bench_tlb_start(bench_tlb_t *t);
/* Stops the counter; *misses gets the count since start, scaled if it was multiplexed.
 * -1 when it was never scheduled. */
int bench_tlb_stop(bench_tlb_t *t, double *misses);
void bench_tlb_close(bench_tlb_t *t);
/* Where there is no counter interface at all: why (bench_tlb_none.c's reason). */
const char *bench_os_no_counters(void);

/* Seconds from a monotonic clock. */
double bench_os_now(void);

#endif
