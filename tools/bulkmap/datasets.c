/* The dataset commands' shared wording: errors about sections and the trailer's fields. */
#include <stdlib.h>
#include <string.h>
#include "datasets.h"

int ds_report(const char *name, int err, const bm_dataset_info_t *info) {
  switch (err) {
  case BM_ENOENT:
    cli_error(name, "no such section");
    return EXIT_FAILED;
  case BM_ENAME:
    cli_error(name, "a name is 1-200 characters of A-Z a-z 0-9 . _ -");
    return EXIT_USAGE;
  case BM_EAMBIGUOUS: {
    bm_section_info_t *v = NULL;
    size_t n = 0, i;
    cli_error(name, "the name is held in several places, none of them yours alone:");
    if (bm_section_list(name, BM_LIST_ALL, &v, &n) == 0)
      for (i = 0; i < n; i++) {
        fputs("  ", stderr);
        cli_put_escaped(stderr, v[i].place);
        fputc('/', stderr);
        cli_put_escaped(stderr, v[i].name);
        fprintf(stderr, " (owner %s, %s)\n", v[i].owner, bm_state_name(v[i].state));
      }
    bm_section_list_free(v);
    fprintf(stderr, "  (bulkmap rm NAME removes the one you may remove)\n");
    return EXIT_FAILED;
  }
  case BM_ENOTDATASET:
    cli_error(name, "not a bulkmap dataset (cat --raw writes its bytes as they are)");
    return EXIT_FAILED;
  case BM_EINCOMPLETE:
  case BM_EABANDONED:
    if (info != NULL && info->state == BM_STATE_LOADING)
      cli_error(name, "not ready: still loading (writer pid %lld)", (long long)info->writer_pid);
    else if (info != NULL && info->state == BM_STATE_FAILED)
      cli_error(name, "not ready: the load failed");
    else if (err == BM_EABANDONED)
      cli_error(name, "not ready: abandoned by its writer while loading (bulkmap rm %s removes it)",
                name);
    else
      cli_lib_error(name, err);
    return EXIT_FAILED;
  case BM_ECORRUPT:
    cli_error(name, "the dataset's trailer is corrupt");
    return EXIT_FAILED;
  case BM_ECHECKSUM:
    if (info != NULL && info->has_xxh3)
      cli_error(name, "checksum mismatch: the payload does not hash to the trailer's %016llx",
                (unsigned long long)info->xxh3);
    else
      cli_lib_error(name, err);
    return EXIT_FAILED;
  case BM_ETRUNCATED:
    cli_error(name, "the section changed size while it was read");
    return EXIT_FAILED;
  }
  cli_lib_error(name, err);
  return cli_exit_for(err);
}

int ds_parse_mode(const char *cmd, const char *text, unsigned *mode) {
  char *end;
  unsigned long v;
  if (text[0] < '0' || text[0] > '7') goto bad;
  v = strtoul(text, &end, 8);
  if (*end != '\0' || v > 0777 || strlen(text) > 4) goto bad;
  /* A dataset its owner cannot read could not be cat, stat'ed or verified by anyone but
   * root: --mode 0 or 0044 is a mistake, not a wish (the owner may always remove it). */
  if ((v & 0400) == 0)
    return cli_usage(cmd, "--mode %s: the owner must be able to read the section (0400); "
                     "e.g. 0600 (the default), 0640 or 0644", text);
  *mode = (unsigned)v;
  return 0;
bad:
  return cli_usage(cmd, "--mode '%s': expected octal permission bits, 0400 to 0777 (e.g. 0640)",
                   text);
}

void ds_out_info(cli_out_t *out, const bm_dataset_info_t *info) {
  out_str(out, "name", info->name);
  out_u64(out, "bytes", info->bytes);
  if (info->has_xxh3) out_hex64(out, "xxh3", info->xxh3);
  else out_str(out, "xxh3", NULL);
  out_str(out, "state", bm_state_name(info->state));
  out_u64(out, "page_size", info->page_size);
  out_large(out, &info->large);
}
