/* perf probe: how much it costs to map a warm file, which depends on the page cache's folio
 * sizes (4 KiB folios right after the file was written, large folios after it was read back
 * from disk). Maps FILE, times MADV_POPULATE_READ over all of it, and prints what
 * /proc/self/smaps says of the mapping (FilePmdMapped: bytes mapped by 2 MiB entries).
 * usage: bm_probe_populate FILE */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Value in kB of `field` for the smaps entry holding addr; -1 when missing. */
static long long smaps_kb(const void *addr, const char *field) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[1024];
  unsigned long long lo, hi, kb;
  long long r = -1;
  int in = 0;
  size_t n = strlen(field);
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      if (in) break;
      in = (unsigned long long)(uintptr_t)addr >= lo && (unsigned long long)(uintptr_t)addr < hi;
      continue;
    }
    if (in && strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%llu", &kb) == 1)
      r = (long long)kb;
  }
  fclose(f);
  return r;
}

int main(int argc, char **argv) {
  struct stat st;
  void *p;
  double t0, t1;
  int fd;
  if (argc != 2) {
    fprintf(stderr, "usage: bm_probe_populate FILE\n");
    return 2;
  }
  if ((fd = open(argv[1], O_RDONLY)) < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
    fprintf(stderr, "bm_probe_populate: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "bm_probe_populate: mmap: %s\n", strerror(errno));
    return 1;
  }
  t0 = now();
  if (madvise(p, (size_t)st.st_size, MADV_POPULATE_READ) != 0) {
    fprintf(stderr, "bm_probe_populate: MADV_POPULATE_READ: %s\n", strerror(errno));
    return 1;
  }
  t1 = now();
  printf("bytes: %lld\n", (long long)st.st_size);
  printf("populate_seconds: %.6f\n", t1 - t0);
  printf("populate_bytes_per_second: %.0f\n", (double)st.st_size / (t1 - t0));
  printf("rss_kb: %lld\n", smaps_kb(p, "Rss"));
  printf("file_pmd_mapped_kb: %lld\n", smaps_kb(p, "FilePmdMapped"));
  munmap(p, (size_t)st.st_size);
  close(fd);
  return 0;
}
