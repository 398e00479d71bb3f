/* wordcount FILE WORD [WINDOW]: lines of FILE and occurrences of WORD in it, in one pass
 * on every CPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bulkmap.h>

int main(int argc, char **argv) {
  bm_source_t *src;
  bm_literal_t word;
  bm_scan_opts_t o;
  bm_scan_result_t r;
  char why[256];
  int err;

  if (argc < 3) {
    fprintf(stderr, "usage: wordcount FILE WORD [WINDOW]\n");
    return 2;
  }
  bm_scan_opts_init(&o);    /* the defaults: the whole file, 64 MiB windows, a thread a CPU */
  word.bytes = argv[2];
  word.length = strlen(argv[2]);
  o.flags = BM_SCAN_LINES;   /* newlines, and each literal: "aa" twice in "aaaa" */
  o.literals = &word;
  o.n_literals = 1;
  o.window = argc > 3 ? strtoull(argv[3], NULL, 10) : 0; /* 0: 64 MiB a window */
  if ((err = bm_scan_check_why(&o, why, sizeof(why))) != 0) { /* an empty WORD ... */
    fprintf(stderr, "wordcount: %s\n", why);
    return 2;
  }
  if ((err = bm_file_open(&src, argv[1], BM_FILE_READ)) != 0) {
    fprintf(stderr, "%s: %s\n", argv[1], bm_errmsg(err)); /* "no such file ... (ENOENT; OS error 2 ...)" */
    return 1;
  }
  /* Windows mapped, counted on the library's threads (one a CPU) and merged in order;
   * a file cut short meanwhile gives BM_ETRUNCATED, never SIGBUS. */
  err = bm_scan(src, &o, &r);
  bm_source_close(src);
  if (err != 0) {
    fprintf(stderr, "%s: %s\n", argv[1], bm_errmsg(err)); /* the words of this thread's last failure */
    return 1;
  }
  printf("%llu %llu\n", (unsigned long long)r.lines, (unsigned long long)r.counts[0]);
  return 0;
}
