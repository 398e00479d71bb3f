/* bulkmap rm: removes a named section. */
#include "cli.h"

int cmd_rm(int argc, char **argv) {
  const char *pos[1];
  int npos, rc, err;
  rc = cli_parse("rm", argc, argv, NULL, 0, pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("rm", "missing NAME");
  if (bm_name_check(pos[0]) != 0)
    return cli_usage("rm", "'%s': a name is 1-200 characters of A-Z a-z 0-9 . _ -", pos[0]);
  err = bm_section_remove(pos[0]);
  if (err == BM_ENOENT) {
    cli_error(pos[0], "no such section");
    return EXIT_FAILED;
  }
  if (err == BM_ENOTSUP) {
    cli_error(pos[0], "sections cannot be removed here: one lives until its last handle closes");
    return EXIT_FAILED;
  }
  if (err != 0) {
    cli_lib_error(pos[0], err);
    return EXIT_FAILED;
  }
  return EXIT_DONE;
}
