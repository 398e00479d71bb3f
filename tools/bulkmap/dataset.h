/* Opening a dataset section and reading its trailer, shared by cat and stat. */
#ifndef BULKMAP_DATASET_H
#define BULKMAP_DATASET_H

#include "cli.h"

typedef struct {
  bm_source_t *src;
  uint64_t size;   /* section bytes */
  bm_trailer_t t;
  int decode;      /* bm_trailer_decode's result */
} dataset_t;

/* Opens section `name` for reading and decodes its trailer into d->t (d->decode says how
 * that went). Prints and returns an exit status on failure to open; 0 on success. */
int dataset_open(const char *cmd, const char *name, dataset_t *d);
void dataset_close(dataset_t *d);
/* Runs a read of the bytes through a window cursor, calling fn on each window's new bytes
 * under bm_guard_call (a section shrunk by another process becomes BM_ETRUNCATED). */
int dataset_walk(dataset_t *d, uint64_t length, int (*fn)(const unsigned char *p, size_t n,
                                                          void *arg), void *arg);

#endif
