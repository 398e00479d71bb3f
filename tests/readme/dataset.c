/* dataset FILE NAME: loads FILE into the dataset NAME, opens it by name as any reader
 * would, prints its size and XXH3 (as xxhsum -H3 prints the file's), then removes it. */
#include <stdio.h>
#include <string.h>
#include <bulkmap.h>

int main(int argc, char **argv) {
  bm_load_opts_t lo;
  bm_load_result_t res;
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  bm_view_t v;
  char why[BM_DESCRIBE_MAX];
  int err;

  if (argc != 3) {
    fprintf(stderr, "usage: dataset FILE NAME\n");
    return 2;
  }
  bm_load_opts_init(&lo); /* large pages when they can be had (else it says why), all CPUs */
  /* Read on every CPU into the new section, hashed, published `ready`; on any failure
   * (the file changed meanwhile: BM_ECHANGED) nothing is left under the name. */
  if ((err = bm_dataset_load(NULL, argv[2], argv[1], &lo, &res)) != 0) {
    /* "weights: exists already, a load that failed: bulkmap rm weights removes it" */
    fprintf(stderr, "%s: %s\n", bm_errsubject(err), bm_errmsg(err));
    return 1;
  }
  fprintf(stderr, "large pages: %s\n", res.large.obtained ? "yes"
                                        : bm_large_describe(&res.large, why, sizeof(why)));
  /* Any process of this user can now map it by name, checksum verified on the way in. */
  if ((err = bm_dataset_open(&ds, argv[2], BM_OPEN_VERIFY, &info)) != 0) {
    fprintf(stderr, "%s: %s\n", argv[2], bm_errmsg(err));
    bm_section_remove(argv[2]);
    return 1;
  }
  if ((err = bm_dataset_view(ds, &v)) != 0) {
    fprintf(stderr, "%s: %s\n", argv[2], bm_strerror(err));
    bm_dataset_close(ds);
    bm_section_remove(argv[2]);
    return 1;
  }
  printf("%zu %016llx\n", v.length, (unsigned long long)info.xxh3); /* v.data: the bytes */
  bm_view_unmap(&v);
  bm_dataset_close(ds);
  bm_section_remove(argv[2]); /* a loader for others would leave it: `bulkmap rm NAME` */
  return 0;
}
