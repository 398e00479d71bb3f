/* bulkmap setup --large-pages SIZE: Linux (root) grows the huge page pool to at least SIZE
 * (never shrinks it) and mounts hugetlbfs where none is, writable by root and an optional
 * group only; Windows says how to grant "Lock pages in memory". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"
#include "plat.h"

/* The pool of the default huge page size, as the library reads it (-1 when unknown). */
static int setup_pool(const bm_sysinfo_t *si, uint64_t *total, uint64_t *free_pages) {
  bm_large_size_t ls;
  int i;
  for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++)
    if (ls.size == si->default_large_size && ls.total != UINT64_MAX) {
      *total = ls.total;
      *free_pages = ls.free;
      return 0;
    }
  return -1;
}

int cmd_setup(int argc, char **argv) {
  const char *o_large = NULL, *o_group = NULL, *o_json = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--large-pages", 1, &o_large}, {"--group", 1, &o_group},
                            {"--json", 0, &o_json}};
  uint64_t bytes;
  bm_sysinfo_t si;
  int npos, rc;

  rc = cli_parse("setup", argc, argv, opts, 3, pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (o_large == NULL) return cli_usage("setup", "missing --large-pages SIZE");
  if ((rc = cli_size("setup", "--large-pages", o_large, &bytes)) != 0) return rc;
  if (o_group != NULL && o_group[0] == '\0') return cli_usage("setup", "--group is an empty string");
  if ((rc = bm_sysinfo_get(&si)) != 0) {
    cli_lib_error("setup", rc);
    return EXIT_FAILED;
  }
  if (strcmp(si.os, "windows") == 0) {
    cli_out_t out;
    out_begin(&out, o_json != NULL);
    out_str(&out, "os", "windows");
    out_bool(&out, "privilege", si.privilege == 1);
    out_str(&out, "how",
            "grant \"Lock pages in memory\" (SeLockMemoryPrivilege) to your account: secpol.msc > "
            "Local Policies > User Rights Assignment > Lock pages in memory, add the user, then "
            "sign out and in again; large pages also need contiguous free memory, so set them "
            "up early after boot");
    out_end(&out);
    return si.privilege == 1 ? EXIT_DONE : EXIT_FAILED;
  }
  {
    char path[256];
    const char *mnt = NULL;
    bm_mount_t m0;
    uint64_t want, before = 0, after = 0, free_pages = 0;
    size_t hp = si.default_large_size;
    unsigned long gid = 0;
    int mounted = 0, e;
    uv_fs_t req;
    cli_out_t out;
    FILE *f;

    if (hp == 0) {
      cli_error_code("ENOTSUP");
      cli_error("setup", "this kernel offers no huge pages");
      return EXIT_FAILED;
    }
    if (o_group != NULL && plat_group_id(o_group, &gid) != 0)
      return cli_usage("setup", "--group '%s': no such group", o_group);
    if (!plat_is_root()) {
      cli_error_code("EPRIVILEGE");
      cli_error("setup", "reserving huge pages needs root (writes /proc/sys/vm/nr_hugepages)");
      return EXIT_FAILED;
    }
    want = bytes / hp + (bytes % hp != 0);
    snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/nr_hugepages",
             (unsigned long)(hp >> 10));
    if (setup_pool(&si, &before, &free_pages) != 0) {
      cli_error("setup", "cannot read the pool of %llu-byte pages (%s)", (unsigned long long)hp, path);
      return EXIT_FAILED;
    }
    after = before;
    if (want > before) { /* never shrink: other programs may use the pages */
      f = fopen(path, "w");
      if (f == NULL || fprintf(f, "%llu\n", (unsigned long long)want) < 0 || fclose(f) != 0) {
        cli_error("setup", "cannot write %s: %s", path, strerror(errno));
        return EXIT_FAILED;
      }
      if (bm_sysinfo_get(&si) != 0 || setup_pool(&si, &after, &free_pages) != 0) after = 0;
    }
    if (si.n_mounts == 0 || bm_sysinfo_mount(0, &m0) != 0) {
      char opt[64];
      mnt = "/dev/hugepages";
      e = uv_fs_mkdir(NULL, &req, mnt, 0755, NULL);
      uv_fs_req_cleanup(&req);
      if (e != 0 && e != UV_EEXIST) {
        cli_error("setup", "cannot make %s: %s", mnt, uv_strerror(e));
        return EXIT_FAILED;
      }
      /* Root's, plus the group's when asked (sticky: members remove only their own). */
      if (o_group != NULL) snprintf(opt, sizeof(opt), "mode=1770,gid=%lu", (unsigned long)gid);
      else snprintf(opt, sizeof(opt), "mode=0755");
      if ((e = plat_mount_hugetlbfs(mnt, opt)) != 0) {
        cli_error("setup", "cannot mount hugetlbfs on %s: %s", mnt, strerror(e));
        return EXIT_FAILED;
      }
      mounted = 1;
    } else {
      mnt = m0.path;
      if (uv_fs_stat(NULL, &req, mnt, NULL) == 0 && (req.statbuf.st_mode & 0002))
        cli_note("setup", "note: %s is writable by every user (mode %04o): any user can create "
                  "a name there; bulkmap prefers your own object of a name", mnt,
                  (unsigned)(req.statbuf.st_mode & 07777));
      uv_fs_req_cleanup(&req);
    }
    out_begin(&out, o_json != NULL);
    out_u64(&out, "page_size", hp);
    out_u64(&out, "requested_pages", want);
    out_u64(&out, "pool_before", before);
    out_u64(&out, "pool_after", after);
    out_u64(&out, "free_pages", free_pages);
    out_str(&out, "hugetlbfs", mnt);
    out_bool(&out, "mounted_now", mounted);
    rc = EXIT_DONE;
    if (after < want) {
      cli_error_code("ENOMEM");
      cli_error("setup", "the kernel reserved %llu of %llu pages (memory too fragmented?)",
                (unsigned long long)after, (unsigned long long)want);
      rc = EXIT_FAILED;
    }
    out_error(&out, rc); /* with --json the object holds the error too */
    out_end(&out);
    return rc;
  }
}
