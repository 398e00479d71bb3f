#define _POSIX_C_SOURCE 200809L
/* Runs the Check suites: all of them, or those named on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#ifdef _WIN32
#include <process.h>
static long ht_runner_id(void) { return (long)_getpid(); }
static void bm_test_setenv(const char *k, const char *v) { _putenv_s(k, v); }
#else
#include <unistd.h>
static long ht_runner_id(void) { return (long)getpid(); }
static void bm_test_setenv(const char *k, const char *v) { setenv(k, v, 1); }
#endif

#define BM_SUITE(area) Suite *area##_suite(void);
#include "suites.h"
#undef BM_SUITE

static const struct {
  const char *name;
  Suite *(*make)(void);
} suites[] = {
#define BM_SUITE(area) {#area, area##_suite},
#include "suites.h"
#undef BM_SUITE
};

/* Exit status of a run that skipped something and failed nothing (ctest SKIP_RETURN_CODE). */
#define BM_EXIT_SKIPPED 77

/* check_bulkmap [AREA [TCASE]]: every suite, one suite, or one test case of it. */
int main(int argc, char **argv) {
  SRunner *sr = NULL;
  const char *tcase = argc > 2 ? argv[2] : NULL;
  char skipfile[256];
  size_t i;
  int failed, run, skipped = 0;
  FILE *f;

  if (bm_test_child_main(argc, argv)) return 0; /* never returns when it is a child */
  for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
    if (argc >= 2 && strcmp(argv[1], suites[i].name) != 0) continue;
    if (sr == NULL) sr = srunner_create(suites[i].make());
    else srunner_add_suite(sr, suites[i].make());
  }
  if (sr == NULL) {
    fprintf(stderr, "check_bulkmap: no suite named %s\n", argc > 1 ? argv[1] : "(none)");
    return 2;
  }
  /* Skips are noted in a file of this run's (forked test processes cannot tell us). */
#ifdef _WIN32
  snprintf(skipfile, sizeof(skipfile), "%s\\bulkmap-skips-%ld",
           getenv("TEMP") != NULL ? getenv("TEMP") : ".", ht_runner_id());
#else
  snprintf(skipfile, sizeof(skipfile), "%s/bulkmap-skips-%ld",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", ht_runner_id());
#endif
  remove(skipfile);
  bm_test_setenv("BM_SKIP_FILE", skipfile);
  srunner_run(sr, NULL, tcase, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  run = srunner_ntests_run(sr);
  srunner_free(sr);
  if ((f = fopen(skipfile, "r")) != NULL) {
    char line[600];
    while (fgets(line, sizeof(line), f) != NULL) skipped++;
    fclose(f);
    remove(skipfile);
  }
  if (failed != 0) return EXIT_FAILURE;
  if (run == 0) {
    fprintf(stderr, "SKIP: no test case %s in suite %s on this system\n", tcase ? tcase : "",
            argc > 1 ? argv[1] : "");
    return BM_EXIT_SKIPPED;
  }
  if (skipped > 0) {
    fprintf(stderr, "%d of %d tests skipped (reasons above): reported as skipped\n", skipped, run);
    return BM_EXIT_SKIPPED;
  }
  return EXIT_SUCCESS;
}
