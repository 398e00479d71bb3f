/* The API's conventions: every options struct's _init call gives the defaults the header
 * promises (the whole source, large pages auto), checked through real scans and walks of
 * a file the test wrote (its own byte count and newline count are the expected values). */
#include <string.h>
#include "testutil.h"

START_TEST(options_init_are_the_defaults) {
  const char *path = bm_test_path("defaults.bin");
  const uint64_t size = (3u << 20) + 12345;
  uint64_t i, lines = 0, walked = 0;
  unsigned char buf[4096];
  bm_scan_opts_t so;
  bm_scan_result_t r;
  bm_window_opts_t wo;
  bm_window_t w;
  bm_dataset_opts_t dso;
  bm_load_opts_t lo;
  bm_publish_opts_t po;
  bm_source_t *f;
  int rc;

  bm_test_write_pattern(path, size);
  for (i = 0; i < size; i += sizeof(buf)) {
    size_t n = bm_test_pread(path, i, buf, sizeof(buf)), k;
    for (k = 0; k < n; k++) lines += buf[k] == '\n';
  }
  ck_assert_bm_ok(bm_file_open(&f, path, BM_FILE_READ));
  /* bm_scan_opts_init: the whole file, hashed and its lines counted. */
  bm_scan_opts_init(&so);
  ck_assert_bm_ok(bm_scan(f, &so, &r));
  ck_assert_uint_eq(r.bytes, size);
  ck_assert_uint_eq(r.lines, lines);
  /* bm_window_opts_init: a walk of the whole file. */
  bm_window_opts_init(&wo);
  wo.window = 1 << 20;
  ck_assert_bm_ok(bm_window_init(&w, f, &wo));
  while ((rc = bm_window_next(&w)) == 1) walked += w.length - w.overlap;
  ck_assert_int_eq(rc, 0);
  bm_window_close(&w);
  ck_assert_uint_eq(walked, size);
  bm_source_close(f);
  /* The dataset options: large pages auto (a zeroed struct is off), format auto. */
  bm_dataset_opts_init(&dso);
  ck_assert_int_eq(dso.large, BM_LARGE_AUTO);
  ck_assert_uint_eq(dso.mode, 0);
  bm_load_opts_init(&lo);
  ck_assert_int_eq(lo.dataset.large, BM_LARGE_AUTO);
  ck_assert_int_eq(lo.format, BM_FORMAT_AUTO);
  bm_publish_opts_init(&po);
  ck_assert_int_eq(po.dataset.large, BM_LARGE_AUTO);
  ck_assert_ptr_null(po.layout);
  bm_test_tmp_cleanup();
}
END_TEST

Suite *api_suite(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("defaults");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, options_init_are_the_defaults);
  suite_add_tcase(s, tc);
  return s;
}
