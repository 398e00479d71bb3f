/* bulkmap rm: removes named sections, each found as cat and stat find it (your own object
 * first). A dataset still being loaded by a live writer is removed only with --force.
 * rm --abandoned reclaims what dead or failed loads left (bm_dataset_reclaim). */
#include <stdlib.h>
#include "datasets.h"


static int rm_abandoned(int json) {
  bm_reclaimed_t *v = NULL;
  size_t n = 0, i;
  uint64_t freed = 0;
  char h[32];
  cli_out_t out;
  int err = bm_dataset_reclaim(&v, &n, &freed);
  if (err == BM_ENOTSUP) {
    cli_error_code("ENOTSUP");
    cli_error("rm", "--abandoned: nothing to reclaim here (a section lives until its last handle "
              "closes)");
    return EXIT_FAILED;
  }
  if (err != 0 && n == 0) {
    cli_lib_error("rm", err);
    return EXIT_FAILED;
  }
  out_begin(&out, json);
  if (json) {
    out_arr_begin(&out, "removed");
    for (i = 0; i < n; i++) {
      out_elem_begin(&out);
      out_str(&out, "name", v[i].name);
      out_str(&out, "place", v[i].place);
      out_u64(&out, "bytes", v[i].bytes);
      out_str(&out, "state", bm_state_name(v[i].state));
      if (v[i].writer_pid > 0) out_i64(&out, "writer_pid", v[i].writer_pid);
      else out_str(&out, "writer_pid", NULL);
      out_elem_end(&out);
    }
    out_arr_end(&out);
    out_u64(&out, "freed_bytes", freed);
  } else {
    for (i = 0; i < n; i++) {
      bm_size_format(v[i].bytes, h, sizeof(h));
      fputs("removed: ", stdout);
      cli_put_escaped(stdout, v[i].place);
      fputc('/', stdout);
      cli_put_escaped(stdout, v[i].name);
      printf(" (%s, %s, %llu bytes)\n", bm_state_name(v[i].state), h, (unsigned long long)v[i].bytes);
    }
    bm_size_format(freed, h, sizeof(h));
    printf("freed: %llu bytes (%s) in %zu section%s\n", (unsigned long long)freed, h, n,
           n == 1 ? "" : "s");
  }
  if (err != 0) cli_lib_error("rm", err); /* some were removed: the object holds the error */
  out_error(&out, err != 0 ? EXIT_FAILED : EXIT_DONE);
  out_end(&out);
  bm_reclaimed_free(v);
  return err != 0 ? EXIT_FAILED : EXIT_DONE;
}

int cmd_rm(int argc, char **argv) {
  const char *o_force = NULL, *o_abandoned = NULL, *o_json = NULL, **pos;
  const cli_opt_t opts[] = {{"--force", 0, &o_force}, {"--abandoned", 0, &o_abandoned},
                            {"--json", 0, &o_json}};
  int npos, rc, err, i, status = EXIT_DONE;
  /* As many names as the command line holds (`bulkmap rm $(...)`): no limit of its own. */
  if ((pos = malloc((size_t)argc * sizeof(*pos))) == NULL) {
    cli_error_code("ENOMEM");
    cli_error("rm", "out of memory");
    return EXIT_FAILED;
  }
  rc = cli_parse("rm", argc, argv, opts, 3, pos, argc, &npos);
  if (rc == 0 && o_abandoned != NULL && (npos > 0 || o_force != NULL))
    rc = cli_usage("rm", "--abandoned takes no NAME and no --force");
  if (rc == 0 && o_abandoned == NULL && o_json != NULL)
    rc = cli_usage("rm", "--json goes with --abandoned");
  if (rc == 0 && o_abandoned == NULL && npos < 1) rc = cli_usage("rm", "missing NAME");
  for (i = 0; rc == 0 && i < npos; i++)
    if (bm_name_check(pos[i]) != 0)
      rc = cli_usage("rm", "'%s': %s", pos[i], bm_errmsg(BM_ENAME));
  if (rc != 0) {
    free(pos);
    return rc < 0 ? EXIT_DONE : rc;
  }
  if (o_abandoned != NULL) {
    free(pos);
    status = rm_abandoned(o_json != NULL);
    if (status == EXIT_DONE && cli_out_failed() != 0) status = EXIT_FAILED;
    return status;
  }
  for (i = 0; i < npos; i++) {
    err = o_force ? bm_section_remove_force(pos[i]) : bm_section_remove(pos[i]);
    if (err == 0) continue;
    if (err == BM_ENOENT && o_force) continue; /* as rm -f: gone is what was wanted */
    cli_lib_error(pos[i], err); /* the library's words: whose it is, what removes it */
    status = EXIT_FAILED;
  }
  free(pos);
  return status;
}
