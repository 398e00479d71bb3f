/* bulkmap rm: removes named sections, each found as cat and stat find it (your own object
 * first). A dataset still being loaded by a live writer is removed only with --force. */
#include <stdlib.h>
#include "datasets.h"

int cmd_rm(int argc, char **argv) {
  const char *o_force = NULL, **pos;
  const cli_opt_t opts[] = {{"--force", 0, &o_force}};
  int npos, rc, err, i, status = EXIT_DONE;
  /* As many names as the command line holds (`bulkmap rm $(...)`): no limit of its own. */
  if ((pos = malloc((size_t)argc * sizeof(*pos))) == NULL) {
    cli_error("rm", "out of memory");
    return EXIT_FAILED;
  }
  rc = cli_parse("rm", argc, argv, opts, 1, pos, argc, &npos);
  if (rc == 0 && npos < 1) rc = cli_usage("rm", "missing NAME");
  for (i = 0; rc == 0 && i < npos; i++)
    if (bm_name_check(pos[i]) != 0)
      rc = cli_usage("rm", "'%s': a name is 1-200 characters of A-Z a-z 0-9 . _ -", pos[i]);
  if (rc != 0) {
    free(pos);
    return rc < 0 ? EXIT_DONE : rc;
  }
  for (i = 0; i < npos; i++) {
    err = o_force ? bm_section_remove_force(pos[i]) : bm_section_remove(pos[i]);
    if (err == 0) continue;
    if (err == BM_ENOENT && o_force) continue; /* as rm -f: gone is what was wanted */
    if (err == BM_EBUSY)
      cli_error(pos[i], "its writer is still loading it (--force removes it anyway)");
    else if (err == BM_ENOTSUP)
      cli_error(pos[i], "sections cannot be removed here: one lives until its last handle closes");
    else
      ds_report(pos[i], err, NULL);
    status = EXIT_FAILED;
  }
  free(pos);
  return status;
}
