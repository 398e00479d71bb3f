/* What src/dataset.c gives the files above it (src/load.c, src/lifecycle.c): the watch on
 * a load's source, hashing from the section, and the dataset's store. dataset.c itself
 * calls only what is below it (src/section.c, src/trailer.c, the backend). */
#ifndef BULKMAP_DATASET_H
#define BULKMAP_DATASET_H

#include "os.h"
#include "pool.h"

/* A file watched from the moment it is opened (bm_dataset_load: before its header is read
 * and the dataset made): its identity and, where one can be had, a read lease. */
typedef struct bm__watch_s {
  bm_source_t *file;
  bm__identity_t id_fd, id_path;
  bm__os_lease_t *lease;
  char unstable_why[160];
} bm__watch_t;
int bm__watch_begin(bm_source_t *file, bm__watch_t *w);
void bm__watch_end(bm__watch_t *w); /* what the dataset did not take */
/* bm_dataset_watch with what bm__watch_begin took (the lease goes to the dataset). */
int bm__dataset_watch_from(bm_dataset_t *ds, bm__watch_t *w);
/* Hashes the payload's bytes [offset, offset+length) as they are in the section (read
 * through a small buffer where it can be), next in payload order. */
int bm__dataset_hash_from(bm_dataset_t *ds, uint64_t offset, uint64_t length);
/* Hashes p[0, n), the bytes written (or about to be) at payload offset `offset`, guarded,
 * next in order: from a buffer of the caller's own (load: so they are the section's
 * whatever the source does), or the publisher's memory. BM_EINVAL out of order. */
int bm__dataset_hash_written(bm_dataset_t *ds, uint64_t offset, const void *p, size_t n);

/* src/fill.c. 1 when the dataset's section takes writes (pwrite): tmpfs, not hugetlbfs nor
 * Windows. */
int bm__fill_takes_writes(bm_dataset_t *ds);
/* The section (one that takes writes) filled through small buffers of the pool's stream,
 * each written with pwrite and hashed from itself, in order. take(ctx, off, buf, n) puts
 * the payload's bytes [off, off+n) into buf (one call at a time, in order). p comes with
 * the caller's threads (0: the CPU count; at most two are used), progress, progress_arg
 * and cancel set and the rest zero; its os_error says the failure's OS error. */
int bm__fill(bm__pool_t *p, bm_dataset_t *ds, uint64_t size,
             int (*take)(void *ctx, uint64_t off, unsigned char *buf, size_t n), void *ctx);
/* The payload made of parts[0..parts) in order (publish: an npy header, then the caller's
 * bytes), written from where it lies and hashed there beside the writes. A caller that
 * changes its bytes meanwhile races with itself: what is written may then differ from
 * what was hashed, and bm_dataset_verify says so. */
int bm__fill_memory(bm_dataset_t *ds, const void *const *part, const size_t *len, int parts,
                    int *os_error);
/* Why the watched source's stability is not checked (NULL: it is, a lease held). */
const char *bm__dataset_unstable_why(bm_dataset_t *ds);
/* The dataset's store (NULL: its metadata is in its trailer). */
struct bm__store_s *bm__dataset_store(bm_dataset_t *ds);

#endif
