/* Runs the Check suites: all of them, or those named on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

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

int main(int argc, char **argv) {
  SRunner *sr = NULL;
  size_t i;
  int k, failed, found;

  if (bm_test_child_main(argc, argv)) return 0; /* never returns when it is a child */
  for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
    found = argc < 2;
    for (k = 1; k < argc; k++) found |= strcmp(argv[k], suites[i].name) == 0;
    if (!found) continue;
    if (sr == NULL) sr = srunner_create(suites[i].make());
    else srunner_add_suite(sr, suites[i].make());
  }
  if (sr == NULL) {
    fprintf(stderr, "check_bulkmap: no suite named %s\n", argc > 1 ? argv[1] : "(none)");
    return 2;
  }
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
