/* What the dataset commands (load, cat, stat, rm, ls) share: the wording of the library's
 * dataset errors for people, and the escaping of names in human output. */
#ifndef BULKMAP_DATASETS_H
#define BULKMAP_DATASETS_H

#include "cli.h"

/* Reports err about section NAME on stderr in the library's words (bm_errmsg: an
 * ambiguous name lists every path that holds it; a dataset that is not ready says its
 * state) and returns the exit status. */
int ds_report(const char *name, int err);
/* "--mode 0640": octal permission bits 0-0777 that include the owner's read bit (0400) into
 * *mode; EXIT_USAGE after printing why. */
int ds_parse_mode(const char *cmd, const char *text, unsigned *mode);
/* Prints the fields load and stat share (docs/design.md section 3), in that order. */
void ds_out_info(cli_out_t *out, const bm_dataset_info_t *info);
/* "--format auto|raw|npy|safetensors" (NULL: auto) into *format; EXIT_USAGE after why. */
int ds_parse_format(const char *cmd, const char *text, bm_format_t *format);
/* What the payload is (docs/design.md section 6): `format`, and for one array human `dtype`,
 * `shape`, `order`, `data_offset`, JSON `layout{dtype shape order data_offset data_length
 * descr}` (null without one). */
void ds_out_format(cli_out_t *out, const bm_dataset_info_t *info);
/* The same for an ls entry. */
void ds_out_section_format(cli_out_t *out, const bm_section_info_t *si);
/* ls's one-word column: "raw", "safetensors", "npy:F32:3x4" ("-": not a dataset). */
const char *ds_section_kind(const bm_section_info_t *si, char *buf, size_t n);
/* A ready safetensors dataset's tensors: JSON `tensors[]` of {name dtype shape offset
 * length}, human one line a tensor. Nothing for other formats; a library error else. */
int ds_out_tensors(cli_out_t *out, bm_dataset_t *ds, const bm_dataset_info_t *info);
/* Standard input, whole, into a malloc'd buffer (grown by doubling: the size is not known
 * beforehand): 0, or the errno (ENOMEM: it does not fit in memory). */
int ds_read_stdin(unsigned char **buf, size_t *n);
/* --wait SECONDS of cat and stat (tools/bulkmap/cmd_cat.c): waits for NAME to be ready
 * (bm_dataset_wait_open with flags). Returns an exit status to end with (a bad SECONDS:
 * usage; the deadline: "timed out after N s", 1), or -1 to go on with *err: 0 with *ds
 * open, else the open's error and *info. */
int ds_wait(const char *cmd, const char *name, const char *text, unsigned flags,
            bm_dataset_t **ds, bm_dataset_info_t *info, int *err);

#endif
