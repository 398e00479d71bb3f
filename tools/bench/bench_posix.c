/* The bench's OS layer on POSIX (see bench_os.h): private anonymous regions of each page
 * kind with mmap/madvise, and on Linux the kernel's account of them (smaps) and the dTLB-miss
 * counter (perf_event_open); elsewhere the counter's reason says why there is none. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bulkmap.h"
#include "bench_os.h"

#define BENCH_MIB ((size_t)1 << 20)
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
double bench_os_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/* The default large page size and how many of them are free, for the reasons. */
static void large_pool(size_t *size, long long *free_pages) {
  bm_sysinfo_t si;
  bm_large_size_t ls;
  int i;
  *size = 0;
  *free_pages = -1;
  if (bm_sysinfo_get(&si) != 0) return;
  *size = si.default_large_size;
  for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++)
    if (ls.size == si.default_large_size && ls.free != UINT64_MAX)
      *free_pages = (long long)ls.free;
}


static int read_line(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  size_t len;
  if (f == NULL) return -1;
  if (fgets(buf, (int)n, f) == NULL) buf[0] = '\0';
  fclose(f);
  len = strlen(buf);
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) buf[--len] = '\0';
  return 0;
}

size_t bench_os_thp_size(void) {
  char buf[64];
  if (read_line(THP_DIR "/hpage_pmd_size", buf, sizeof(buf)) != 0) return 0;
  return (size_t)strtoull(buf, NULL, 10);
}

void bench_os_thp_mode(int shared, char *buf, size_t n) {
  char line[256], *a, *b;
  buf[0] = '\0';
  if (read_line(shared ? THP_DIR "/shmem_enabled" : THP_DIR "/enabled", line, sizeof(line)) != 0)
    return;
  /* "always [madvise] never": the bracketed word is the mode. */
  if ((a = strchr(line, '[')) != NULL && (b = strchr(a, ']')) != NULL) {
    *b = '\0';
    snprintf(buf, n, "%s", a + 1);
  }
}

int bench_mem_map(bench_mem_t *m, int kind, size_t size, char *reason, size_t n) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  size_t align = 0, len = size;
  char *p;
  memset(m, 0, sizeof(*m));
  m->kind = kind;
  if (kind == BENCH_THP) {
    char mode[64];
    bench_os_thp_mode(0, mode, sizeof(mode));
    if ((align = bench_os_thp_size()) == 0 || mode[0] == '\0') {
      snprintf(reason, n, "unsupported: this kernel has no transparent huge pages");
      return -1;
    }
    if (strcmp(mode, "never") == 0) {
      snprintf(reason, n, "unsupported: " THP_DIR "/enabled is never");
      return -1;
    }
    len = size + align; /* room to align the start to a PMD */
  }
  if (kind == BENCH_LARGE) {
#ifdef MAP_HUGETLB
    flags |= MAP_HUGETLB;
#else
    snprintf(reason, n, "unsupported: no MAP_HUGETLB on this system");
    return -1;
#endif
  }
  p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    if (kind == BENCH_LARGE) {
      size_t hs;
      long long fr;
      large_pool(&hs, &fr);
      if (hs == 0)
        snprintf(reason, n, "unsupported: the kernel offers no huge page size");
      else if (e == ENOMEM)
        snprintf(reason, n, "pool empty: %lld free %zu MiB pages, %zu needed "
                 "(bulkmap setup --large-pages SIZE)", fr, hs / BENCH_MIB, (size + hs - 1) / hs);
      else
        snprintf(reason, n, "mmap MAP_HUGETLB: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    } else {
      snprintf(reason, n, "mmap: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    }
    return -1;
  }
  m->map_base = p;
  m->map_size = len;
  m->size = size;
  m->base = p;
  if (kind == BENCH_THP) {
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    m->base = (void *)a;
#ifdef MADV_HUGEPAGE
    if (madvise(m->base, size, MADV_HUGEPAGE) != 0) {
      int e = errno;
      snprintf(reason, n, "madvise MADV_HUGEPAGE: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
      bench_mem_unmap(m);
      return -1;
    }
#endif
  }
#ifdef MADV_NOHUGEPAGE
  /* Normal pages even where THP is "always": the row says 4 KiB, so it must be. */
  if (kind == BENCH_4K) (void)madvise(p, len, MADV_NOHUGEPAGE);
#endif
  return 0;
}

int bench_mem_populate(bench_mem_t *m, char *reason, size_t n) {
  size_t i;
  if (madvise(m->base, m->size, MADV_POPULATE_WRITE) == 0) return 0;
  if (errno != EINVAL) {
    int e = errno;
    /* ENOMEM, EFAULT: a touch would fault the same way, so say it rather than die. */
    snprintf(reason, n, "populate: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    return -1;
  }
  /* A kernel older than 5.14: write a byte of each base page. */
  for (i = 0; i < m->size; i += 4096) ((volatile unsigned char *)m->base)[i] = 1;
  return 0;
}

void bench_mem_unmap(bench_mem_t *m) {
  if (m->map_base != NULL) munmap(m->map_base, m->map_size);
  memset(m, 0, sizeof(*m));
}

int bench_os_smaps(const void *addr, size_t len, bench_smaps_t *out) {
  FILE *f;
  char line[512];
  uintptr_t lo, hi, a = (uintptr_t)addr, b = (uintptr_t)addr + len;
  unsigned long long kb;
  int in = 0, seen = 0;
  memset(out, 0, sizeof(*out));
  if ((f = fopen("/proc/self/smaps", "r")) == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    char field[64];
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = lo < b && hi > a;
      if (in && !seen) seen = 1, out->kernel_page_size = 0;
      continue;
    }
    if (!in || sscanf(line, "%63[^:]: %llu kB", field, &kb) != 2) continue;
    /* hugetlb memory is not in Rss: it has its own lines. */
    if (strcmp(field, "Rss") == 0 || strcmp(field, "Shared_Hugetlb") == 0 ||
        strcmp(field, "Private_Hugetlb") == 0)
      out->mapped_bytes += kb * 1024;
    if (strcmp(field, "AnonHugePages") == 0 || strcmp(field, "ShmemPmdMapped") == 0 ||
        strcmp(field, "FilePmdMapped") == 0 || strcmp(field, "Shared_Hugetlb") == 0 ||
        strcmp(field, "Private_Hugetlb") == 0)
      out->huge_bytes += kb * 1024;
    if (strcmp(field, "KernelPageSize") == 0 && out->kernel_page_size == 0)
      out->kernel_page_size = (size_t)kb * 1024;
  }
  fclose(f);
  return seen ? 0 : -1;
}

#ifdef __linux__
int bench_tlb_open(bench_tlb_t *t, char *reason, size_t n) {
  struct perf_event_attr a;
  long fd;
  memset(&a, 0, sizeof(a));
  a.type = PERF_TYPE_HW_CACHE;
  a.size = sizeof(a);
  a.config = PERF_COUNT_HW_CACHE_DTLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
             (PERF_COUNT_HW_CACHE_RESULT_MISS << 16);
  a.disabled = 1;
  a.exclude_kernel = 1; /* all perf_event_paranoid <= 2 allows for our own process */
  a.exclude_hv = 1;
  a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  t->fd = -1;
  fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
  if (fd < 0) {
    int e = errno;
    char par[32] = "?";
    (void)read_line("/proc/sys/kernel/perf_event_paranoid", par, sizeof(par));
    if (e == ENOENT || e == EOPNOTSUPP || e == ENODEV) {
      if (access("/sys/bus/event_source/devices/cpu", F_OK) != 0 &&
          access("/sys/bus/event_source/devices/cpu_core", F_OK) != 0)
        snprintf(reason, n, "no hardware PMU: the kernel has no CPU counters "
                 "(/sys/bus/event_source/devices/cpu is missing; usual in a VM)");
      else
        snprintf(reason, n, "this CPU's PMU has no dTLB read-miss event (errno %d (0x%x))", e,
                 (unsigned)e);
    } else if (e == EACCES || e == EPERM) {
      snprintf(reason, n, "perf_event_paranoid is %s: counters refused (errno %d (0x%x))", par, e,
               (unsigned)e);
    } else if (e == ENOSYS) {
      snprintf(reason, n, "no perf_event_open in this kernel");
    } else {
      snprintf(reason, n, "perf_event_open: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    }
    return -1;
  }
  t->fd = fd;
  return 0;
}

void bench_tlb_start(bench_tlb_t *t) {
  if (t->fd < 0) return;
  ioctl((int)t->fd, PERF_EVENT_IOC_RESET, 0);
  ioctl((int)t->fd, PERF_EVENT_IOC_ENABLE, 0);
}

int bench_tlb_stop(bench_tlb_t *t, double *misses) {
  uint64_t v[3];
  *misses = 0;
  if (t->fd < 0) return -1;
  ioctl((int)t->fd, PERF_EVENT_IOC_DISABLE, 0);
  if (read((int)t->fd, v, sizeof(v)) != (ssize_t)sizeof(v) || v[2] == 0) return -1;
  *misses = (double)v[0] * ((double)v[1] / (double)v[2]);
  return 0;
}

void bench_tlb_close(bench_tlb_t *t) {
  if (t->fd >= 0) close((int)t->fd);
  t->fd = -1;
}
#else
/* The counter's stubs are bench_tlb_none.c's (CMake adds it off Linux). */
const char *bench_os_no_counters(void) { return "no perf_event_open on this system"; }
#endif
