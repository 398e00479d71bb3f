/* bulkmap stat: shows a dataset section's trailer. */
#include <string.h>
#include "dataset.h"

int cmd_stat(int argc, char **argv) {
  const char *o_json = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--json", 0, &o_json}};
  dataset_t d;
  bm_large_t large;
  const char *state;
  int npos, rc;
  cli_out_t out;

  rc = cli_parse("stat", argc, argv, opts, 1, pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("stat", "missing NAME");
  if ((rc = dataset_open("stat", pos[0], &d)) != 0) return rc;
  if (d.decode != 0) {
    cli_error(pos[0], "%s", bm_strerror(d.decode));
    dataset_close(&d);
    return EXIT_FAILED;
  }
  memset(&large, 0, sizeof(large));
  bm_section_large(d.src, &large);
  /* A loading section whose writer is gone is shown as abandoned. */
  state = bm_trailer_check_state(&d.t) == BM_EABANDONED ? "abandoned" : bm_state_name((int)d.t.state);
  out_begin(&out, o_json != NULL);
  out_str(&out, "name", pos[0]);
  out_u64(&out, "bytes", d.t.payload_size);
  out_hex64(&out, "xxh3", d.t.xxh3);
  out_str(&out, "state", state);
  out_u64(&out, "page_size", d.t.page_size);
  out_large(&out, &large);
  out_i64(&out, "writer_pid", d.t.writer_pid);
  out_i64(&out, "created", d.t.created);
  out_str(&out, "source", d.t.source);
  out_u64(&out, "section_bytes", d.size);
  out_end(&out);
  dataset_close(&d);
  return EXIT_DONE;
}
