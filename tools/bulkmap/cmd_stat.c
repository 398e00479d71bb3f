/* bulkmap stat: shows a dataset's trailer, judged (a client of bm_dataset_open). Exits 0
 * only for a ready dataset; the others are still shown. */
#include <string.h>
#include "datasets.h"

int cmd_stat(int argc, char **argv) {
  const char *o_json = NULL, *o_wait = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--json", 0, &o_json}, {"--wait", 1, &o_wait}};
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  int npos, rc, err;
  cli_out_t out;

  rc = cli_parse("stat", argc, argv, opts, 2, pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("stat", "missing NAME");
  if (bm_name_check(pos[0]) != 0)
    return cli_usage("stat", "'%s': %s", pos[0], bm_errmsg(BM_ENAME));
  /* --wait: until ready (then shown as below), or a failed or abandoned one shown now. */
  if (o_wait != NULL && (rc = ds_wait("stat", pos[0], o_wait, 0, &ds, &info, &err)) >= 0) return rc;
  if (o_wait != NULL && err != 0 && err != BM_EINCOMPLETE && err != BM_EABANDONED)
    return ds_report(pos[0], err);
  bm_dataset_close(ds);
  err = bm_dataset_open(&ds, pos[0], BM_OPEN_ANY_STATE, &info);
  if (err != 0) return ds_report(pos[0], err);
  if (info.state == BM_STATE_CORRUPT) {
    bm_dataset_close(ds);
    return ds_report(pos[0], BM_ECORRUPT);
  }

  out_begin(&out, o_json != NULL);
  ds_out_info(&out, &info);
  out_i64(&out, "writer_pid", info.writer_pid);
  out_time(&out, "created", info.created);
  out_str(&out, "source", info.source);
  out_str(&out, "path", info.path);
  out_u64(&out, "section_bytes", info.section_bytes);
  if (info.padded_bytes != 0) out_u64(&out, "padded_bytes", info.padded_bytes);
  if (info.source_stable >= 0) out_bool(&out, "source_stable", info.source_stable);
  else out_str(&out, "source_stable", NULL);
  /* The tensors are read from the header in the payload, checked again against the trailer. */
  err = ds_out_tensors(&out, ds, &info);
  bm_dataset_close(ds);
  rc = EXIT_DONE;
  /* Said before the object ends: with --json it holds the error too (docs/json.md). */
  if (err != 0) {
    cli_error_code(bm_err_name(err));
    cli_error(pos[0], "the safetensors header no longer agrees with the trailer: %s", bm_strerror(err));
    rc = EXIT_FAILED;
  } else if (info.state != BM_STATE_READY) {
    cli_error_code(info.state == BM_STATE_ABANDONED ? "EABANDONED" : "EINCOMPLETE");
    cli_error(pos[0], "not ready (state: %s)", bm_state_name(info.state));
    rc = EXIT_FAILED;
  }
  out_error(&out, rc);
  out_end(&out);
  return rc;
}
