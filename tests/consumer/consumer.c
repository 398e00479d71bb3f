/* Maps its own executable at an unaligned offset through an installed bulkmap. */
#include <stdio.h>
#include <string.h>
#include <bulkmap.h>

int main(int argc, char **argv) {
  bm_source_t *src;
  bm_view_t v;
  int err;
  (void)argc;
  if ((err = bm_file_open(&src, argv[0], BM_FILE_READ)) != 0 ||
      (err = bm_view_map(&v, src, 1, 3, BM_ACCESS_READ)) != 0) {
    fprintf(stderr, "consumer: %s\n", bm_strerror(err));
    return 1;
  }
  /* An ELF file starts with "\177ELF". */
  if (memcmp(v.data, "ELF", 3) != 0) return 1;
  bm_view_unmap(&v);
  bm_source_close(src);
  printf("consumer: bulkmap %s ok\n", bm_version());
  return 0;
}
