/* bulkmap ls: the sections in /dev/shm and on every hugetlbfs mount (bm_section_list):
 * datasets, and with --all the objects that are not. */
#include <string.h>
#include "datasets.h"

static void ls_json(const bm_section_info_t *v, size_t n) {
  cli_out_t out;
  size_t i;
  char mode[8];
  cli_json_started();
  printf("{\"sections\":[");
  for (i = 0; i < n; i++) {
    int dataset = v[i].state != BM_STATE_FOREIGN && v[i].state != BM_STATE_UNREADABLE;
    if (i > 0) printf(",");
    out_begin(&out, 1);
    out_str(&out, "name", v[i].name);
    out_str(&out, "place", v[i].place);
    out_u64(&out, "bytes", v[i].bytes);
    out_str(&out, "state", bm_state_name(v[i].state));
    out_u64(&out, "page_size", v[i].page_size);
    out_str(&out, "owner", v[i].owner);
    snprintf(mode, sizeof(mode), "%04o", v[i].mode);
    out_str(&out, "mode", mode);
    if (dataset) out_i64(&out, "writer_pid", v[i].writer_pid);
    else out_str(&out, "writer_pid", NULL);
    if (dataset) out_i64(&out, "created", v[i].created);
    else out_str(&out, "created", NULL);
    /* Processes mapping it; null where /proc does not let us see (docs/design.md section 7). */
    if (v[i].maps >= 0) out_i64(&out, "maps", v[i].maps);
    else out_str(&out, "maps", NULL);
    /* Generations a replace or remove retired that processes still map (their memory). */
    if (dataset) out_u64(&out, "retired_bytes", v[i].retired_bytes);
    ds_out_section_format(&out, &v[i]); /* format, layout (docs/design.md section 6) */
    printf("}");
  }
  printf("]}\n");
}

static void ls_table(const bm_section_info_t *v, size_t n) {
  size_t i;
  uint64_t retired = 0;
  printf("%-24s %-16s %14s %-10s %10s %-10s %-5s %8s %5s %-20s %s\n", "NAME", "PLACE", "BYTES", "STATE",
         "PAGE", "OWNER", "MODE", "PID", "MAPS", "FORMAT", "CREATED");
  for (i = 0; i < n; i++) {
    char when[32] = "-", pid[24] = "-", maps[24] = "-";
    if (v[i].maps >= 0) snprintf(maps, sizeof(maps), "%lld", (long long)v[i].maps);
    if (v[i].created != 0) cli_format_time(when, sizeof(when), v[i].created);
    if (v[i].writer_pid > 0) snprintf(pid, sizeof(pid), "%lld", (long long)v[i].writer_pid);
    char kind[BM_MAX_DIMS * 22 + 32];
    printf("%-24s %-16s %14llu %-10s %10llu %-10s %04o %8s %5s %-20s %s\n", v[i].name, v[i].place,
           (unsigned long long)v[i].bytes, bm_state_name(v[i].state),
           (unsigned long long)v[i].page_size, v[i].owner, v[i].mode, pid, maps,
           ds_section_kind(&v[i], kind, sizeof(kind)), when);
    if (v[i].retired_bytes != 0) {
      char sz[32];
      bm_size_format(v[i].retired_bytes, sz, sizeof(sz));
      printf("%-24s   retired generations still mapped: %s\n", "", sz);
    }
    retired += v[i].retired_bytes;
  }
  (void)retired;
}

int cmd_ls(int argc, char **argv) {
  const char *o_json = NULL, *o_all = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--json", 0, &o_json}, {"--all", 0, &o_all}};
  bm_section_info_t *v = NULL;
  size_t n = 0;
  int npos, rc, err;

  rc = cli_parse("ls", argc, argv, opts, 2, pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  err = bm_section_list(NULL, o_all ? BM_LIST_ALL : 0, &v, &n);
  if (err == BM_ENOTSUP) {
    cli_error("ls", "the kernel's namespace of named sections cannot be listed here");
    return EXIT_FAILED;
  }
  if (err != 0) {
    cli_lib_error("ls", err);
    return EXIT_FAILED;
  }
  if (o_json) ls_json(v, n);
  else ls_table(v, n);
  bm_section_list_free(v);
  return EXIT_DONE;
}
