/* bulkmap info: the machine's facts, and whether large pages can be had now. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *thp_name(int thp) {
  switch (thp) {
  case BM_THP_NEVER: return "never";
  case BM_THP_MADVISE: return "madvise";
  case BM_THP_ALWAYS: return "always";
  }
  return "unsupported";
}

/* Every large page size the OS offers with its pool, however many, read once (so that the
 * sizes and the pools printed agree): *out malloc'd (NULL when none), *n of them. */
static int info_large_sizes(bm_large_size_t **out, int *n) {
  bm_large_size_t *v = NULL, *w;
  int cap = 0, rc;
  *out = NULL;
  *n = 0;
  for (;;) {
    if (*n == cap) {
      if ((w = realloc(v, (size_t)(cap = cap ? cap * 2 : 8) * sizeof(*v))) == NULL) {
        free(v);
        return BM_ENOMEM;
      }
      v = w;
    }
    if ((rc = bm_sysinfo_large_size(*n, &v[*n])) != 0) break;
    (*n)++;
  }
  if (rc != BM_ENOENT) {
    free(v);
    *n = 0;
    return rc;
  }
  *out = v;
  return 0;
}

int cmd_info(int argc, char **argv) {
  const char *o_json = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--json", 0, &o_json}};
  bm_sysinfo_t si;
  bm_mount_t m;
  bm_large_size_t *ls;
  uint64_t *sizes, free_bytes = 0;
  int npos, rc, i, n, dflt = -1, available, reason = BM_REASON_NONE;
  cli_out_t out;

  rc = cli_parse("info", argc, argv, opts, 1, pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if ((rc = bm_sysinfo_get(&si)) != 0 || (rc = info_large_sizes(&ls, &n)) != 0) {
    cli_lib_error("info", rc);
    return EXIT_FAILED;
  }
  if ((sizes = malloc((size_t)(n > 0 ? n : 1) * sizeof(*sizes))) == NULL) {
    free(ls);
    cli_lib_error("info", BM_ENOMEM);
    return EXIT_FAILED;
  }
  for (i = 0; i < n; i++) {
    sizes[i] = ls[i].size;
    if (ls[i].size == si.default_large_size) dflt = i;
  }
  if (dflt < 0 && n > 0) dflt = 0;
  if (dflt >= 0 && ls[dflt].free != UINT64_MAX)
    free_bytes = ls[dflt].free * ls[dflt].size;
  /* "available": a large-page section of the default size could be created now. */
  if (n == 0) reason = BM_REASON_UNSUPPORTED;
  else if (si.privilege == 0) reason = BM_REASON_NO_PRIVILEGE;
  else if (free_bytes == 0 && strcmp(si.os, "windows") != 0) reason = BM_REASON_POOL_EMPTY;
  available = reason == BM_REASON_NONE;

  out_begin(&out, o_json != NULL);
  out_str(&out, "os", si.os);
  out_u64(&out, "page_size", si.page_size);
  out_u64(&out, "allocation_granularity", si.granularity);
  out_arr_u64(&out, "large_page_sizes", sizes, n);
  out_obj_begin(&out, "large_pages");
  if (!out.json) printf("  ");
  out_bool(&out, "available", available);
  if (!out.json) printf("  ");
  out_u64(&out, "free_bytes", free_bytes);
  if (!out.json) printf("  ");
  out_str(&out, "hugetlbfs", bm_sysinfo_mount(0, &m) == 0 ? m.path : NULL);
  if (!out.json) printf("  ");
  out_str(&out, "thp", thp_name(si.thp));
  if (!out.json) printf("  ");
  out_bool(&out, "privilege", si.privilege == 1);
  if (!out.json) printf("  ");
  out_str(&out, "reason", available ? NULL : bm_large_reason_str(reason));
  if (!out.json) printf("  ");
  out_str(&out, "shmem_enabled", si.shmem_enabled[0] != '\0' ? si.shmem_enabled : NULL);
  /* Every pool (free/total pages per page size) and every hugetlbfs mount. */
  if (out.json) {
    printf(",\"pools\":[");
    for (i = 0; i < n; i++)
      printf("%s{\"page_size\":%llu,\"free\":%lld,\"total\":%lld}", i ? "," : "",
             (unsigned long long)ls[i].size,
             ls[i].free == UINT64_MAX ? -1LL : (long long)ls[i].free,
             ls[i].total == UINT64_MAX ? -1LL : (long long)ls[i].total);
    printf("],\"mounts\":[");
    for (i = 0; bm_sysinfo_mount(i, &m) == 0; i++) {
      printf("%s{\"path\":", i ? "," : "");
      cli_json_string(m.path);
      printf(",\"page_size\":%llu}", (unsigned long long)m.page_size);
    }
    printf("]");
  } else {
    for (i = 0; i < n; i++)
      printf("  pool_%zuk: %lld free of %lld\n", ls[i].size >> 10,
             ls[i].free == UINT64_MAX ? -1LL : (long long)ls[i].free,
             ls[i].total == UINT64_MAX ? -1LL : (long long)ls[i].total);
    for (i = 0; bm_sysinfo_mount(i, &m) == 0; i++)
      printf("  mount: %s (page size %zu)\n", m.path, m.page_size);
  }
  out_obj_end(&out);
  free(sizes);
  free(ls);
  {
    /* systemd-logind with RemoveIPC=yes (its default) removes a non-system user's shared
     * memory, datasets included, when the user's last session ends (docs/design.md section 7). */
    bm_removeipc_t ri;
    char warn[1024];
    memset(&ri, 0, sizeof(ri));
    bm_removeipc_check(&ri);
    snprintf(warn, sizeof(warn),
             "systemd-logind removes your datasets in /dev/shm when your last session ends "
             "(RemoveIPC=yes%s%s, uid %lu > SYS_UID_MAX %lu): set RemoveIPC=no in "
             "/etc/systemd/logind.conf, or load as a system user",
             ri.source[0] ? " in " : ", the default", ri.source[0] ? ri.source : "",
             (unsigned long)ri.uid, (unsigned long)ri.sys_uid_max);
    out_obj_begin(&out, "remove_ipc");
    if (!out.json) printf("  ");
    out_bool(&out, "applies", ri.applies);
    if (!out.json) printf("  ");
    out_bool(&out, "logind", ri.logind);
    if (!out.json) printf("  ");
    out_bool(&out, "setting", ri.remove_ipc);
    if (!out.json) printf("  ");
    out_str(&out, "source", ri.source[0] ? ri.source : NULL);
    out_obj_end(&out);
    if (out.json || ri.applies) out_str(&out, "warning", ri.applies ? warn : NULL);
  }
  out_end(&out);
  return EXIT_DONE;
}
