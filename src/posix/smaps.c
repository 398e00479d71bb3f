/* POSIX backend: reads /proc/self/smaps for the mapping that holds an address, so that a
 * large-page outcome is what the kernel did, never what a flag asked for; and the probe
 * that maps a section's first page(s) and asks it. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "../os.h"
#include "posix.h"
#include "smaps.h"

#ifdef __linux__
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#endif

/* Parses "Name:   1234 kB" into bytes when the line starts with key. */
static int smaps_field(const char *line, const char *key, uint64_t *bytes) {
  size_t n = strlen(key);
  unsigned long long kb;
  if (strncmp(line, key, n) != 0 || line[n] != ':') return 0;
  if (sscanf(line + n + 1, "%llu kB", &kb) != 1) return 0;
  *bytes = (uint64_t)kb << 10;
  return 1;
}

int bm__posix_smaps(const void *addr, bm__smaps_t *out) {
  FILE *f = bm__sys_fopen("/proc/self/smaps", "re");
  char line[512];
  uintptr_t a = (uintptr_t)addr, lo, hi;
  int in = 0, found = 0, bol = 1;
  uint64_t v;

  memset(out, 0, sizeof(*out));
  if (f == NULL) return errno == ENOENT ? (bm__set_os_error(errno), BM_ENOTSUP)
                                        : bm__posix_error(errno);
  while (fgets(line, sizeof(line), f) != NULL) {
    /* A long path on a header line arrives in pieces; only a line's start is parsed. */
    int start = bol;
    bol = strchr(line, '\n') != NULL;
    if (!start) continue;
    /* Header lines are "lo-hi perms ..."; field lines ("AnonHugePages:") never parse as
     * two hex numbers joined by '-'. */
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2) {
      if (found) break;
      in = a >= lo && a < hi;
      found = in;
      continue;
    }
    if (!in) continue;
    if (smaps_field(line, "KernelPageSize", &v)) out->kernel_page_size = (size_t)v;
    else if (smaps_field(line, "AnonHugePages", &v)) out->anon_huge = v;
    else if (smaps_field(line, "ShmemPmdMapped", &v)) out->shmem_pmd = v;
    else if (smaps_field(line, "FilePmdMapped", &v)) out->file_pmd = v;
    else if (smaps_field(line, "Rss", &v)) out->rss = v;
  }
  fclose(f);
  if (!found) return bm__set_os_error(0), BM_ENOENT;
  return 0;
}

size_t bm__posix_pmd_size(void) {
  static size_t cached;
  FILE *f;
  unsigned long long v;
  if (cached != 0) return cached;
  v = 2u << 20;
  f = bm__sys_fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
  if (f != NULL) {
    if (fscanf(f, "%llu", &v) != 1 || v == 0) v = 2u << 20;
    fclose(f);
  }
  cached = (size_t)v;
  return cached;
}

/* Maps [0, len) of fd at an address aligned to `align` (a PMD or a huge page can only be
 * mapped whole at an aligned address), faults it in and reads what smaps says of it. */
int bm__posix_probe(int fd, size_t len, size_t align, int writable, int thp, bm__smaps_t *sm) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0), err = 0;
  unsigned char *res, *p;
  uintptr_t a;

  bm__set_os_error(0);
  if (len + align < len) return BM_EOVERFLOW;
  res = bm__sys_mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (res == MAP_FAILED) return bm__posix_error(errno);
  a = ((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1);
  p = bm__sys_mmap((void *)a, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    err = bm__posix_error(errno);
    bm__sys_munmap(res, len + align);
    return err;
  }
  /* Give back the parts of the reservation around the probe. */
  if (p > res) bm__sys_munmap(res, (size_t)(p - res));
  if (res + len + align > p + len) bm__sys_munmap(p + len, (size_t)(res + len + align - (p + len)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (thp) bm__sys_madvise(p, len, MADV_HUGEPAGE);
#else
  (void)thp;
#endif
#ifdef __linux__
  while (bm__sys_madvise(p, len, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0) {
    if (errno == EINTR || errno == EAGAIN) continue;
    if (errno == EINVAL) {
      /* Before Linux 5.14: the pages were reserved or allocated already (fallocate or
       * mmap's hugetlb reservation), so a plain touch cannot fault. */
      volatile unsigned char *q = p;
      size_t i;
      for (i = 0; i < len; i += 4096) (void)q[i];
      break;
    }
    err = bm__posix_error(errno);
    break;
  }
#endif
  if (err == 0) err = bm__posix_smaps(p, sm);
  bm__sys_munmap(p, len);
  return err;
}

/* The page size a probe saw: the hugetlb page size, the PMD size when transparent huge
 * pages are mapped, or the base page. */
size_t bm__posix_probe_page_size(const bm__smaps_t *sm, int *transparent) {
  size_t base = bm__os_config()->page_size;
  *transparent = 0;
  if (sm->kernel_page_size > base) return sm->kernel_page_size;
  if (sm->shmem_pmd > 0 || sm->file_pmd > 0 || sm->anon_huge > 0) {
    *transparent = 1;
    return bm__posix_pmd_size();
  }
  return sm->kernel_page_size != 0 ? sm->kernel_page_size : base;
}
