/* What the dataset commands (load, cat, stat, rm, ls) share: the wording of the library's
 * dataset errors for people, and the escaping of names in human output. */
#ifndef BULKMAP_DATASETS_H
#define BULKMAP_DATASETS_H

#include "cli.h"

/* Reports err about section NAME on stderr in the words a user needs (an ambiguous name
 * lists every path that holds it; a dataset that is not ready says its state) and
 * returns the exit status. info may be NULL. */
int ds_report(const char *name, int err, const bm_dataset_info_t *info);
/* "--mode 0640": octal permission bits 0-0777 that include the owner's read bit (0400) into
 * *mode; EXIT_USAGE after printing why. */
int ds_parse_mode(const char *cmd, const char *text, unsigned *mode);
/* Prints the fields load and stat share (DESIGN section 3), in that order. */
void ds_out_info(cli_out_t *out, const bm_dataset_info_t *info);

#endif
