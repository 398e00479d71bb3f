/* What src/dataset.c calls of src/lifecycle.c: a replace's generation made under its hidden
 * name (as bm_section_create makes a name), and made NAME once published. */
#ifndef BULKMAP_LIFECYCLE_H
#define BULKMAP_LIFECYCLE_H

#include "internal.h"

/* As bm_section_create for NAME with opts, but the section is made under a hidden name
 * (see bulkmap.h, Replace) after checking that the caller may replace NAME (BM_EPERM). */
int bm__life_section_create(bm_source_t **out, const char *name, const bm_section_opts_t *opts,
                            bm_large_t *outcome);
/* Makes src's hidden generation NAME (0 at once when it has none). Errors: BM_EPERM,
 * BM_EEXIST (made by someone else meanwhile), BM_EREPLACED, BM_EBUSY, BM_EOS. */
int bm__life_commit(bm_source_t *src, const char *name);

/* The dataset's store (NULL: its metadata is in its trailer). */
struct bm__store_s *bm__dataset_store(bm_dataset_t *ds);

#endif
