/* bulkmap setup --large-pages SIZE: Linux (root) reserves huge pages and mounts hugetlbfs;
 * Windows says how to grant "Lock pages in memory". */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#ifndef _WIN32
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

int cmd_setup(int argc, char **argv) {
  const char *o_large = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--large-pages", 1, &o_large}};
  uint64_t bytes;
  bm_sysinfo_t si;
  int npos, rc;

  rc = cli_parse("setup", argc, argv, opts, 1, pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (o_large == NULL) return cli_usage("setup", "missing --large-pages SIZE");
  if ((rc = cli_size("setup", "--large-pages", o_large, &bytes)) != 0) return rc;
  if ((rc = bm_sysinfo_get(&si)) != 0) {
    cli_lib_error("setup", rc);
    return EXIT_FAILED;
  }
#ifdef _WIN32
  printf("os: windows\n");
  printf("privilege: %s\n", si.privilege == 1 ? "held" : "not held");
  printf("how: grant \"Lock pages in memory\" (SeLockMemoryPrivilege) to your account:\n"
         "  secpol.msc > Local Policies > User Rights Assignment > Lock pages in memory,\n"
         "  add the user, then sign out and in again. Large pages also need enough\n"
         "  contiguous free memory: set them up early after boot.\n");
  (void)bytes;
  return si.privilege == 1 ? EXIT_DONE : EXIT_FAILED;
#else
  {
    char path[256];
    uint64_t pages, got = 0;
    size_t hp = si.default_large_size;
    FILE *f;
    if (hp == 0) {
      cli_error("setup", "this kernel offers no huge pages");
      return EXIT_FAILED;
    }
    if (geteuid() != 0) {
      cli_error("setup", "reserving huge pages needs root (writes /proc/sys/vm/nr_hugepages)");
      return EXIT_FAILED;
    }
    pages = (bytes + hp - 1) / hp;
    snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/nr_hugepages",
             (unsigned long)(hp >> 10));
    f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%llu\n", (unsigned long long)pages) < 0 || fclose(f) != 0) {
      cli_error("setup", "cannot write %s: %s", path, strerror(errno));
      return EXIT_FAILED;
    }
    f = fopen(path, "r");
    if (f == NULL || fscanf(f, "%llu", (unsigned long long *)&got) != 1) got = 0;
    if (f) fclose(f);
    printf("page_size: %zu\n", hp);
    printf("requested_pages: %llu\n", (unsigned long long)pages);
    printf("reserved_pages: %llu\n", (unsigned long long)got);
    if (si.n_mounts == 0) {
      const char *dir = "/dev/hugepages";
      mkdir(dir, 0755);
      if (mount("none", dir, "hugetlbfs", 0, "mode=1777") != 0) {
        cli_error("setup", "cannot mount hugetlbfs on %s: %s", dir, strerror(errno));
        return EXIT_FAILED;
      }
      printf("hugetlbfs: %s (mounted now)\n", dir);
    } else {
      printf("hugetlbfs: %s\n", si.mounts[0].path);
    }
    if (got < pages) {
      cli_error("setup", "the kernel reserved %llu of %llu pages (memory too fragmented?)",
                (unsigned long long)got, (unsigned long long)pages);
      return EXIT_FAILED;
    }
    return EXIT_DONE;
  }
#endif
}
