/* Named and anonymous sections with normal pages: names, exclusive creation, permissions,
 * and a second (spawned) process that opens a section by name and checks the bytes the
 * first wrote, then writes back bytes the first checks. Large pages: check_large.c. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

static const char *u64s(uint64_t v) {
  static char bufs[4][24];
  static int next;
  char *b = bufs[next++ & 3];
  snprintf(b, sizeof(bufs[0]), "%llu", (unsigned long long)v);
  return b;
}

/* The byte a reader writes back at offset i, so the writer can tell it from its own. */
static unsigned char reply_byte(uint64_t i) { return (unsigned char)(bm_test_byte(i) ^ 0x5a); }

/* Removes NAME: POSIX sections live until removed; Windows ones die with their last handle,
 * and removing is not supported there. */
static void remove_section(const char *name) {
#ifdef _WIN32
  ck_assert_bm_err(bm_section_remove(name), BM_ENOTSUP);
#else
  ck_assert_bm_ok(bm_section_remove(name));
#endif
}

#ifndef _WIN32
static int lock_fd = -1;

/* Shared hold of the pool lock: a concurrent large-page test must not switch shmem
 * huge pages on while these tests state what page size normal sections get. */
static void core_setup(void) {
  ht_init_run();
  lock_fd = ht_lock(LOCK_SH);
}
static void core_teardown(void) {
  ht_sweep_dir("/dev/shm");
  ht_unlock(&lock_fd);
}
#else
static void core_setup(void) {}
static void core_teardown(void) {}
#endif

/* Opens NAME, checks size and pattern; writes reply bytes into [size/2, size); on Linux also
 * checks that smaps says its view has pages of EXPECT_KB. argv: NAME SIZE EXPECT_KB */
BM_TEST_CHILD(section_reader) {
  bm_source_t *src;
  bm_view_t v;
  uint64_t size, want, i;
  const unsigned char *p;
  int r;

  if (argc < 3) return 90;
  want = strtoull(argv[1], NULL, 10);
  if ((r = bm_section_open(&src, argv[0], BM_ACCESS_READ | BM_ACCESS_WRITE)) != 0) {
    fprintf(stderr, "child: open %s: %s\n", argv[0], bm_err_name(r));
    return 10;
  }
  if (bm_source_size(src, &size) != 0 || size != want) return 11;
  if (bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_READ | BM_ACCESS_WRITE) != 0) return 12;
  p = v.data;
  for (i = 0; i < size / 2; i++)
    if (p[i] != bm_test_byte(i)) {
      fprintf(stderr, "child: byte %llu differs\n", (unsigned long long)i);
      return 13;
    }
#ifdef __linux__
  {
    long long kb = ht_smaps_kb(v.data, "KernelPageSize");
    if (kb != strtoll(argv[2], NULL, 10)) {
      fprintf(stderr, "child: smaps KernelPageSize %lld kB, expected %s\n", kb, argv[2]);
      return 14;
    }
  }
#endif
  for (i = size / 2; i < size; i++) ((unsigned char *)v.data)[i] = reply_byte(i);
  bm_view_unmap(&v);
  bm_source_close(src);
  return 0;
}

START_TEST(names) {
  char long_name[BM_NAME_MAX + 2];
  const char *good[] = {"a", "MemoryMapTest", "x.y_z-1", "...", ".hidden", "a..b", "-", "_"};
  const char *bad[] = {"", ".", "..", "a/b", "/a", "a b", "a\\b", "caf\xc3\xa9", "a:b", "a\nb",
                       "Local\\", "*"};
  size_t i;
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    ck_assert_msg(bm_name_check(good[i]) == 0, "'%s' refused", good[i]);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(bm_name_check(bad[i]) == BM_ENAME, "'%s' accepted", bad[i]);
  ck_assert_bm_err(bm_name_check(NULL), BM_ENAME);
  memset(long_name, 'n', sizeof(long_name));
  long_name[BM_NAME_MAX] = '\0';
  ck_assert_bm_ok(bm_name_check(long_name)); /* 200 characters */
  long_name[BM_NAME_MAX] = 'n';
  long_name[BM_NAME_MAX + 1] = '\0';
  ck_assert_bm_err(bm_name_check(long_name), BM_ENAME); /* 201 */
  /* Every entry point checks the name first. */
  {
    bm_source_t *src = (bm_source_t *)1;
    bm_section_opts_t o;
    memset(&o, 0, sizeof(o));
    o.size = 4096;
    ck_assert_bm_err(bm_section_create(&src, "a/b", &o, NULL), BM_ENAME);
    ck_assert_ptr_null(src);
    ck_assert_bm_err(bm_section_open(&src, "..", BM_ACCESS_READ), BM_ENAME);
    ck_assert_bm_err(bm_section_remove(""), BM_ENAME);
    ck_assert_bm_err(bm_section_remove(long_name), BM_ENAME);
  }
}
END_TEST

START_TEST(second_process_reads_by_name) {
  const char *name = ht_name("share");
  const uint64_t asked = (1u << 20) + 100;
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src;
  bm_view_t v;
  uint64_t size, i;
  unsigned char *p;
  int rc;

  memset(&o, 0, sizeof(o));
  o.size = asked;
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.requested, BM_LARGE_OFF);
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.reason, BM_REASON_NOT_REQUESTED);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  /* Sizes round up to the page size used. */
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, (asked + bm_page_size() - 1) / bm_page_size() * bm_page_size());
  ck_assert_uint_eq(bm_source_granularity(src), bm_granularity());
#ifndef _WIN32
  {
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600); /* owner only by default */
    ck_assert_uint_eq((uint64_t)st.st_size, size);
  }
#endif
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
  p = v.data;
  for (i = 0; i < size; i++) p[i] = bm_test_byte(i);
#ifdef __linux__
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), (long long)(bm_page_size() >> 10));
#endif
  {
    const char *args[] = {name, u64s(size), u64s(bm_page_size() >> 10), NULL};
    rc = bm_test_spawn("section_reader", args);
  }
  ck_assert_msg(rc == 0, "reader child exited %d", rc);
  for (i = size / 2; i < size; i++)
    if (p[i] != reply_byte(i)) ck_abort_msg("reply byte %llu differs", (unsigned long long)i);
#ifndef _WIN32
  /* A program that knows nothing of bulkmap reads the same bytes from /dev/shm/NAME. */
  {
    char path[512];
    unsigned char buf[4096];
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    ck_assert_uint_eq(bm_test_pread(path, 12345, buf, sizeof(buf)), sizeof(buf));
    for (i = 0; i < sizeof(buf); i++) ck_assert_uint_eq(buf[i], bm_test_byte(12345 + i));
  }
#endif
  ck_assert_bm_ok(bm_view_unmap(&v));
  bm_source_close(src);
  remove_section(name);
  ck_assert_bm_err(bm_section_open(&src, name, BM_ACCESS_READ), BM_ENOENT);
}
END_TEST

START_TEST(exclusive_and_modes) {
  const char *name = ht_name("excl");
  bm_section_opts_t o;
  bm_source_t *src, *again, *ro;
  bm_view_t v;
  bm_large_t out;

  memset(&o, 0, sizeof(o));
  o.size = 8192;
  o.mode = 0640;
#ifndef _WIN32
  {
    mode_t old = umask(077); /* the mode asked for wins over the umask */
    ck_assert_bm_ok(bm_section_create(&src, name, &o, NULL));
    umask(old);
  }
#else
  ck_assert_bm_ok(bm_section_create(&src, name, &o, NULL));
#endif
  /* No silent overwrite, whatever the options. */
  ck_assert_bm_err(bm_section_create(&again, name, &o, NULL), BM_EEXIST);
  ck_assert_ptr_null(again);
  o.large = BM_LARGE_AUTO;
  ck_assert_bm_err(bm_section_create(&again, name, &o, NULL), BM_EEXIST);
#ifndef _WIN32
  {
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/%s", name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
  }
#endif
  ck_assert_bm_ok(bm_section_open(&ro, name, BM_ACCESS_READ));
  ck_assert_bm_err(bm_view_map(&v, ro, 0, 1, BM_ACCESS_WRITE), BM_EREADONLY);
  ck_assert_bm_ok(bm_view_map(&v, ro, 4095, 2, BM_ACCESS_READ));
  ck_assert_uint_eq(((unsigned char *)v.data)[0], 0); /* a fresh section is zero */
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_section_large(ro, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  ck_assert_bm_err(bm_file_extend(src, 1 << 20), BM_ENOTSUP); /* size fixed at creation */
  bm_source_close(ro);
  bm_source_close(src);
  remove_section(name);
#ifndef _WIN32
  ck_assert_bm_err(bm_section_remove(name), BM_ENOENT);
#endif
  ck_assert_bm_err(bm_section_open(&ro, name, BM_ACCESS_READ), BM_ENOENT);
  ck_assert_ptr_null(ro);
}
END_TEST

START_TEST(anonymous) {
  bm_section_opts_t o;
  bm_source_t *src;
  bm_large_t out;
  bm_view_t v;
  uint64_t size, i;
  unsigned char *p;

  memset(&o, 0, sizeof(o));
  o.size = 3 * bm_page_size() + 1;
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.reason, BM_REASON_NOT_REQUESTED);
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 4 * bm_page_size());
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
  p = v.data;
  for (i = 0; i < size; i++) p[i] = bm_test_byte(i);
  bm_view_unmap(&v);
  /* A second view of the same section sees the bytes (shared, not private copies). */
  ck_assert_bm_ok(bm_view_map(&v, src, bm_page_size() + 7, 100, BM_ACCESS_READ));
  for (i = 0; i < 100; i++)
    ck_assert_uint_eq(((unsigned char *)v.data)[i], bm_test_byte(bm_page_size() + 7 + i));
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_section_large(src, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  bm_source_close(src);
}
END_TEST

START_TEST(errors) {
  bm_section_opts_t o;
  bm_source_t *src;
  bm_large_t out;

  memset(&o, 0, sizeof(o));
  o.size = 4096;
  ck_assert_bm_err(bm_section_create(NULL, NULL, &o, NULL), BM_EINVAL);
  ck_assert_bm_err(bm_section_create(&src, NULL, NULL, &out), BM_EINVAL);
  o.size = 0;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, NULL), BM_EINVAL);
  o.size = 4096;
  o.large = 7;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, NULL), BM_EINVAL);
  o.large = BM_LARGE_OFF;
  o.mode = 01777;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, NULL), BM_EINVAL);
  o.mode = 0;
  o.large = BM_LARGE_AUTO;
  o.large_page_size = 3 << 20;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_EINVAL);
  ck_assert_int_eq(out.requested, BM_LARGE_AUTO);
  ck_assert_bm_err(bm_section_open(NULL, "x", BM_ACCESS_READ), BM_EINVAL);
  ck_assert_bm_err(bm_section_open(&src, "x", 0), BM_EINVAL);
  ck_assert_bm_err(bm_section_open(&src, "x", BM_ACCESS_COPY), BM_EINVAL);
  ck_assert_bm_err(bm_section_open(&src, ht_name("missing"), BM_ACCESS_READ), BM_ENOENT);
  ck_assert_bm_err(bm_section_large(NULL, &out), BM_EINVAL);
  /* A file is no section. */
  {
    const char *path = bm_test_path("file");
    bm_test_write_pattern(path, 4096);
    ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
    ck_assert_bm_err(bm_section_large(src, &out), BM_EINVAL);
    bm_source_close(src);
  }
}
END_TEST

Suite *section_suite(void) {
  Suite *s = suite_create("section");
  TCase *tc = tcase_create("core");
  tcase_add_unchecked_fixture(tc, core_setup, core_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, second_process_reads_by_name);
  tcase_add_test(tc, exclusive_and_modes);
  tcase_add_test(tc, anonymous);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_unchecked_fixture(tc, core_setup, core_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, names);
  tcase_add_test(tc, errors);
  suite_add_tcase(s, tc);
  return s;
}
