/* POSIX backend: reads /proc/self/smaps for the mapping that holds an address, so that a
 * large-page outcome is what the kernel did, never what a flag asked for. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "../os.h"
#include "posix.h"
#include "smaps.h"

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
