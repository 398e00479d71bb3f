/* The error model: a call returns its code; bm_errmsg and bm_errsubject give the words of
 * the calling thread's last failure (what, about which file or name, why, the remedy), the
 * same words the tool and the Python module print. Driven through real loads, opens, waits
 * and removes; the expected subject is what the test passed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#ifdef _WIN32
#include <process.h>
#define test_pid() ((long)_getpid())
#else
#include <pthread.h>
#include <unistd.h>
#define test_pid() ((long)getpid())
#endif

static char name_a[64], name_b[64];

static void names(void) {
  snprintf(name_a, sizeof(name_a), "bmtest-errors-%ld-a", test_pid());
  snprintf(name_b, sizeof(name_b), "bmtest-errors-%ld-b", test_pid());
}

static void cleanup(void) {
  (void)bm_section_remove_force(name_a);
  (void)bm_section_remove_force(name_b);
  bm_test_tmp_cleanup();
}

#define ck_words(err, subject, part)                                                     \
  do {                                                                                   \
    ck_assert_str_eq(bm_errsubject(err), (subject));                                     \
    ck_assert_msg(strstr(bm_errmsg(err), (part)) != NULL, "bm_errmsg(%s) = '%s', wanted '%s'", \
                  bm_err_name(err), bm_errmsg(err), (part));                             \
  } while (0)

START_TEST(codes_and_version) {
  char v[32];
  ck_assert_int_eq(BM_OK, 0);
  ck_assert_str_eq(bm_strerror(BM_OK), "success");
  ck_assert_str_eq(bm_err_name(BM_OK), "OK");
  ck_assert_str_eq(bm_strerror(12345), "unknown error");
  ck_assert_int_eq(bm_version_number(), BM_VERSION_NUMBER);
  snprintf(v, sizeof(v), "%d.%d.%d", bm_version_number() / 10000, bm_version_number() / 100 % 100,
           bm_version_number() % 100);
  ck_assert_str_eq(v, bm_version());
}
END_TEST

START_TEST(words_of_the_last_failure) {
  const char *src = bm_test_path("src.bin"), *missing = bm_test_path("missing.bin");
  bm_load_opts_t lo;
  bm_load_result_t r;
  bm_dataset_t *ds = NULL, *held = NULL;
  bm_dataset_info_t info;
  int err;
  names();
  bm_test_write_pattern(src, 100000);
  memset(&lo, 0, sizeof(lo));
  lo.dataset.large = BM_LARGE_OFF;

  /* A name against the rule: the name is the subject, the rule the words. */
  ck_assert_int_eq(bm_name_check("no/slash"), BM_ENAME);
  ck_words(BM_ENAME, "no/slash", "1-200 characters");
  /* A file that is not there: its path is the subject, the OS's reason in the words. */
  err = bm_dataset_load(NULL, name_a, missing, &lo, &r);
  ck_assert_int_eq(err, BM_ENOENT);
  ck_assert_int_eq(r.failed_at, BM_LOAD_AT_FILE);
  ck_words(err, missing, "no such file or directory (ENOENT");
#ifndef _WIN32
  ck_assert_int_eq(bm_last_os_error(), ENOENT); /* the words keep the failure's OS error */
#endif
  /* Loaded (and held: on Windows a name lives while a handle does), then loaded again: the
   * name is the subject, the remedy named. */
  ck_assert_bm_ok(bm_dataset_load(&held, name_a, src, &lo, &r));
  err = bm_dataset_load(NULL, name_a, src, &lo, &r);
  ck_assert_int_eq(err, BM_EEXIST);
  ck_words(err, name_a, "exists already");
  ck_words(err, name_a, "bulkmap rm");
  /* The words belong to the code they were recorded for: any other code gets the generic
   * words, with no subject (the caller knows what it passed). */
  ck_assert_str_eq(bm_errsubject(BM_EACCES), "");
  ck_assert_msg(strncmp(bm_errmsg(BM_EACCES), "permission denied (EACCES", 25) == 0, "%s",
                bm_errmsg(BM_EACCES));
  /* Readers. */
  err = bm_dataset_open(&ds, name_b, 0, &info);
  ck_assert_int_eq(err, BM_ENOENT);
  ck_words(err, name_b, "no such section");
  err = bm_dataset_wait_open(&ds, name_b, 0, 0.05, &info);
  ck_assert_int_eq(err, BM_ETIMEDOUT);
  ck_words(err, name_b, "timed out after 0.05 s: no such section");
  /* A later failure replaces the words; a success leaves no stale subject for its code. */
  err = bm_section_remove(name_b);
  if (bm_section_names_persist()) {
    ck_assert_int_eq(err, BM_ENOENT);
    ck_words(err, name_b, "no such section");
  } else {
    ck_assert_int_eq(err, BM_ENOTSUP);
    ck_words(err, name_b, "cannot be removed here");
  }
  /* (On Windows a name cannot be removed: it goes with its last handle.) */
  if (bm_section_names_persist()) ck_assert_bm_ok(bm_section_remove(name_a));
  bm_dataset_close(held);
  err = bm_dataset_open(&ds, name_a, 0, &info);
  ck_assert_int_eq(err, BM_ENOENT);
  ck_words(err, name_a, "no such section");
  cleanup();
}
END_TEST

#ifndef _WIN32
static void *other_thread(void *arg) {
  (void)arg;
  return (void *)(intptr_t)(bm_errsubject(BM_ENAME)[0] == '\0' &&
                            bm_name_check("x/y") == BM_ENAME &&
                            strcmp(bm_errsubject(BM_ENAME), "x/y") == 0);
}

/* Thread-local: another thread's failure neither shows here nor overwrites these words. */
START_TEST(per_thread) {
  pthread_t t;
  void *ok = NULL;
  ck_assert_int_eq(bm_name_check("a b"), BM_ENAME);
  ck_assert_int_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
  ck_assert_int_eq(pthread_join(t, &ok), 0);
  ck_assert_msg(ok != NULL, "the other thread saw this thread's words, or recorded none");
  ck_assert_str_eq(bm_errsubject(BM_ENAME), "a b");
}
END_TEST
#endif

Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, codes_and_version);
  tcase_add_test(tc, words_of_the_last_failure);
#ifndef _WIN32
  tcase_add_test(tc, per_thread);
#endif
  suite_add_tcase(s, tc);
  return s;
}
