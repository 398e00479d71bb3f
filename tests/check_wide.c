/* Offsets and sizes past 32 bits, in every build: views and windows past 4 GiB, sections
 * larger than a 32-bit address space, lengths that do not fit in a 32-bit size_t. In the
 * linux32 build (size_t and pointers of 32 bits) these are the real case; in the 64-bit
 * builds the same tests pin that nothing is cut to 32 bits on the way. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif
#include "internal.h"
#include "testutil.h"
#include "hugetest.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* Marker bytes: their value depends on all 64 bits of the offset, so a view or window that
 * lost the high bits (offset 4 GiB + x read as x) shows other bytes. */
static unsigned char wide_byte(uint64_t off) {
  return (unsigned char)(bm_test_byte(off) ^ (off >> 32) * 0x3bu ^ 0xa5u);
}

/* Writes n marker bytes at off into the file. */
static void put_markers(const char *path, uint64_t off, size_t n) {
  unsigned char *b = malloc(n);
  size_t i;
  ck_assert_ptr_nonnull(b);
  for (i = 0; i < n; i++) b[i] = wide_byte(off + i);
  bm_test_pwrite(path, off, b, n);
  free(b);
}

static void check_markers(const unsigned char *p, uint64_t off, size_t n, const char *what) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != wide_byte(off + i))
      ck_abort_msg("%s: byte at %llu is %u, the file has %u", what,
                   (unsigned long long)(off + i), p[i], wide_byte(off + i));
}

/* A 9 GiB sparse file with markers straddling 4 GiB and 8 GiB, at 4 GiB + 1 (whose low 32
 * bits are those of offset 1) and at the end. */
static const struct {
  uint64_t off;
  size_t n;
} wide_spots[] = {
    {4 * GiB - 4096, 8192}, {4 * GiB + 1, 100}, {6 * GiB + 12345, 5000},
    {8 * GiB - 70000, 140000}, {9 * GiB - 3000, 3000},
};
#define WIDE_SIZE (9 * GiB)

static const char *make_wide_file(void) {
  const char *path = bm_test_path("wide9g");
  size_t i;
  bm_test_make_sparse(path, WIDE_SIZE);
  put_markers(path, 1, 100); /* what a view of 4 GiB + 1 cut to 32 bits would show */
  for (i = 0; i < sizeof(wide_spots) / sizeof(wide_spots[0]); i++)
    put_markers(path, wide_spots[i].off, wide_spots[i].n);
  return path;
}

/* Views at offsets past 4 GiB give the file's bytes, read-only and writable. */
START_TEST(views_past_4g) {
  const char *path = make_wide_file();
  bm_source_t *src;
  bm_view_t v;
  uint64_t size;
  size_t i;
  unsigned char buf[64];

  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, WIDE_SIZE);
  for (i = 0; i < sizeof(wide_spots) / sizeof(wide_spots[0]); i++) {
    ck_assert_bm_ok(bm_view_map(&v, src, wide_spots[i].off, wide_spots[i].n, BM_ACCESS_READ));
    ck_assert_uint_eq(v.offset, wide_spots[i].off);
    ck_assert_uint_eq(v.length, wide_spots[i].n);
    check_markers(v.data, wide_spots[i].off, wide_spots[i].n, "view");
    ck_assert_bm_ok(bm_view_unmap(&v));
  }
  /* The last byte, and an empty view at the very end. */
  ck_assert_bm_ok(bm_view_map(&v, src, WIDE_SIZE - 1, BM_TO_END, BM_ACCESS_READ));
  ck_assert_uint_eq(v.length, 1);
  check_markers(v.data, WIDE_SIZE - 1, 1, "last byte");
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_map(&v, src, WIDE_SIZE, BM_TO_END, BM_ACCESS_READ));
  ck_assert_uint_eq(v.length, 0);
  bm_view_unmap(&v);
  ck_assert_bm_err(bm_view_map(&v, src, WIDE_SIZE - 10, 11, BM_ACCESS_READ), BM_ERANGE);
  ck_assert_bm_err(bm_view_map(&v, src, WIDE_SIZE + 1, 0, BM_ACCESS_READ), BM_ERANGE);
  bm_source_close(src);

  /* Written through a view at 5 GiB + 3, read back with pread (not through the library). */
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_WRITE));
  ck_assert_bm_ok(bm_view_map(&v, src, 5 * GiB + 3, sizeof(buf), BM_ACCESS_WRITE));
  for (i = 0; i < sizeof(buf); i++) ((unsigned char *)v.data)[i] = wide_byte(5 * GiB + 3 + i);
  ck_assert_bm_ok(bm_view_flush(&v));
  bm_view_unmap(&v);
  bm_source_close(src);
  memset(buf, 0, sizeof(buf));
  ck_assert_uint_eq(bm_test_pread(path, 5 * GiB + 3, buf, sizeof(buf)), sizeof(buf));
  check_markers(buf, 5 * GiB + 3, sizeof(buf), "written past 4 GiB");
  ck_assert_uint_eq(bm_test_pread(path, 3, buf, sizeof(buf)), sizeof(buf));
  for (i = 0; i < sizeof(buf); i++)
    ck_assert_msg(buf[i] == wide_byte(3 + i), "the write past 4 GiB landed at offset %zu", i + 3);
}
END_TEST

/* A view longer than a 32-bit size_t: BM_EOVERFLOW in a 32-bit process, never a view of
 * the length cut to 32 bits; a 64-bit process maps it. */
START_TEST(views_longer_than_size_t) {
  const char *path = make_wide_file();
  const uint64_t len = 4 * GiB + 8192; /* (size_t)len would be 8192 */
  bm_source_t *src;
  bm_view_t v;

  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  if (sizeof(size_t) == 4) {
    ck_assert_bm_err(bm_view_map(&v, src, 100, len, BM_ACCESS_READ), BM_EOVERFLOW);
    ck_assert_bm_err(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_READ), BM_EOVERFLOW);
    ck_assert_ptr_null(v.data);
  } else {
    ck_assert_bm_ok(bm_view_map(&v, src, 4 * GiB - 4096, len, BM_ACCESS_READ));
    ck_assert_uint_eq(v.length, len);
    check_markers(v.data, 4 * GiB - 4096, 8192, "long view, start");
    check_markers((const unsigned char *)v.data + (8 * GiB - 70000 - (4 * GiB - 4096)),
                  8 * GiB - 70000, 70000 + 4096,
                  "long view, 8 GiB");
    bm_view_unmap(&v);
  }
  bm_source_close(src);
}
END_TEST

/* The view and window arithmetic around 2^32 (the plans are OS-free). */
START_TEST(plans_around_2_32) {
  bm__view_plan_t vp;
  bm__window_plan_t wp;
  bm_window_opts_t o;
  uint64_t off, len;

  ck_assert_bm_ok(bm__view_plan(16 * GiB, 4096, 0, 4 * GiB + 5, 10, &vp));
  ck_assert_uint_eq(vp.start, 4 * GiB);
  ck_assert_uint_eq(vp.span, 15);
  ck_assert_bm_ok(bm__view_plan(16 * GiB, 65536, 0, 4 * GiB - 3, 6, &vp));
  ck_assert_uint_eq(vp.start, 4 * GiB - 65536);
  ck_assert_uint_eq(vp.span, 65536 + 3);
  /* A span that fits in 64 bits but not in a 32-bit size_t. */
  ck_assert_int_eq(bm__view_plan(16 * GiB, 4096, 0, 1, 4 * GiB, &vp),
                   sizeof(size_t) == 4 ? BM_EOVERFLOW : 0);
  /* Whole large pages near 2^32 stay within the source. */
  ck_assert_bm_ok(bm__view_plan(6 * GiB, 2 * MiB, 1, 4 * GiB + 1, 1, &vp));
  ck_assert_uint_eq(vp.start, 4 * GiB);
  ck_assert_uint_eq(vp.span, 2 * MiB);

  memset(&o, 0, sizeof(o));
  o.start = 4 * GiB - 100;
  o.length = 2 * MiB;
  o.window = MiB;
  o.overlap = 7;
  ck_assert_bm_ok(bm__window_plan(16 * GiB, 4096, &o, &wp));
  ck_assert_uint_eq(wp.start, 4 * GiB - 100);
  ck_assert_uint_eq(wp.end, 4 * GiB - 100 + 2 * MiB);
  bm__window_span(&wp, wp.start + MiB, 0, &off, &len);
  ck_assert_uint_eq(off, 4 * GiB - 100 + MiB - 7);
  ck_assert_uint_eq(len, MiB + 7);
  /* A window of 2 GiB: a 32-bit process cannot hold it twice; a 64-bit one can. */
  o.window = 2 * GiB;
  o.overlap = 0;
  ck_assert_int_eq(bm__window_plan(16 * GiB, 4096, &o, &wp),
                   sizeof(size_t) == 4 ? BM_EOVERFLOW : 0);
}
END_TEST

/* A window cursor over a range that crosses 4 GiB and 8 GiB, with overlap, and a seek to
 * just before the end: offsets, lengths and bytes as written. */
START_TEST(windows_past_4g) {
  const char *path = make_wide_file();
  bm_source_t *src;
  bm_window_t w;
  bm_window_opts_t o;
  uint64_t expect_pos, newbytes = 0;
  int r, n = 0;

  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  memset(&o, 0, sizeof(o));
  o.start = 4 * GiB - 4096;
  o.length = 4 * GiB + 70000; /* to 8 GiB - 4096 + 70000 */
  o.window = 256 * MiB;
  o.overlap = 4095;
  o.readahead = 1;
  o.prefault = 1;
  o.max_mapped = 512 * MiB + 64 * 1024;
  ck_assert_bm_ok(bm_window_init(&w, src, &o));
  expect_pos = o.start;
  while ((r = bm_window_next(&w)) == 1) {
    size_t i;
    ck_assert_uint_eq(w.offset + w.overlap, expect_pos);
    ck_assert_uint_eq(w.overlap, n == 0 ? 0 : o.overlap);
    for (i = 0; i < sizeof(wide_spots) / sizeof(wide_spots[0]); i++) {
      uint64_t a = wide_spots[i].off, b = a + wide_spots[i].n;
      if (a < w.offset) a = w.offset;
      if (b > w.offset + w.length) b = w.offset + w.length;
      if (a < b) check_markers(w.data + (a - w.offset), a, (size_t)(b - a), "window");
    }
    newbytes += w.length - w.overlap;
    expect_pos = w.offset + w.length;
    n++;
  }
  ck_assert_int_eq(r, 0);
  ck_assert_uint_eq(newbytes, o.length);
  ck_assert_uint_eq(expect_pos, o.start + o.length);
  ck_assert_uint_le(w.peak_mapped, o.max_mapped);
  bm_window_close(&w);

  o.start = 0;
  o.length = BM_TO_END;
  o.max_mapped = 0;
  ck_assert_bm_ok(bm_window_init(&w, src, &o));
  ck_assert_bm_ok(bm_window_seek(&w, 9 * GiB - 3000));
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_uint_eq(w.offset, 9 * GiB - 3000);
  ck_assert_uint_eq(w.length, 3000);
  check_markers(w.data, w.offset, w.length, "after seek");
  ck_assert_int_eq(bm_window_next(&w), 0);
  bm_window_close(&w);
  bm_source_close(src);
}
END_TEST

#ifndef _WIN32
static const char *u64s(uint64_t v) {
  static char bufs[4][24];
  static int next;
  char *b = bufs[next++ & 3];
  snprintf(b, sizeof(bufs[0]), "%llu", (unsigned long long)v);
  return b;
}

/* Opens section NAME (argv: NAME SIZE) in a second process and checks its size and the
 * markers at the spots past 4 GiB. */
BM_TEST_CHILD(wide_section_reader) {
  bm_source_t *src;
  bm_view_t v;
  uint64_t size;
  size_t i, k;
  if (argc < 2) return 90;
  if (bm_section_open(&src, argv[0], BM_ACCESS_READ) != 0) return 91;
  if (bm_source_size(src, &size) != 0 || size != strtoull(argv[1], NULL, 10)) return 92;
  for (i = 0; i < sizeof(wide_spots) / sizeof(wide_spots[0]); i++) {
    if (wide_spots[i].off + wide_spots[i].n > size) continue;
    if (bm_view_map(&v, src, wide_spots[i].off, wide_spots[i].n, BM_ACCESS_READ) != 0) return 93;
    for (k = 0; k < wide_spots[i].n; k++)
      if (((const unsigned char *)v.data)[k] != wide_byte(wide_spots[i].off + k)) return 94;
    bm_view_unmap(&v);
  }
  bm_source_close(src);
  return 0;
}

/* A named section of 9 GiB (more than a 32-bit process can map), written through views at
 * the spots past 4 GiB, read by a second process and through /dev/shm/NAME with pread.
 * tmpfs is sparse: only the touched pages take memory. */
START_TEST(section_past_address_space) {
  const char *name = ht_name("wide");
  bm_section_opts_t o;
  bm_large_t got;
  bm_source_t *src;
  bm_view_t v;
  uint64_t size;
  size_t i, k;
  char path[512];
  unsigned char buf[100];
  int rc;

  memset(&o, 0, sizeof(o));
  o.size = WIDE_SIZE;
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &got));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, WIDE_SIZE);
  for (i = 0; i < sizeof(wide_spots) / sizeof(wide_spots[0]); i++) {
    ck_assert_bm_ok(bm_view_map(&v, src, wide_spots[i].off, wide_spots[i].n, BM_ACCESS_WRITE));
    for (k = 0; k < wide_spots[i].n; k++) ((unsigned char *)v.data)[k] = wide_byte(wide_spots[i].off + k);
    bm_view_unmap(&v);
  }
  rc = bm_test_spawn("wide_section_reader", (const char *const[]){name, u64s(WIDE_SIZE), NULL});
  ck_assert_msg(rc == 0, "reader child exited %d", rc);
  snprintf(path, sizeof(path), "/dev/shm/%s", name);
  ck_assert_uint_eq(bm_test_pread(path, 4 * GiB + 1, buf, sizeof(buf)), sizeof(buf));
  check_markers(buf, 4 * GiB + 1, sizeof(buf), "/dev/shm past 4 GiB");
  ck_assert_uint_eq(bm_test_pread(path, 1, buf, sizeof(buf)), sizeof(buf));
  for (k = 0; k < sizeof(buf); k++) ck_assert_uint_eq(buf[k], 0); /* nothing landed at 1 */
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
}
END_TEST

/* A large-page section larger than a 32-bit size_t: BM_LARGE_AUTO gets huge pages or falls
 * back to normal ones with the reason, BM_LARGE_ON says why not; never BM_EOVERFLOW (the
 * 32-bit build refused any hugetlb section past SIZE_MAX, even in AUTO). */
START_TEST(large_section_past_size_t) {
  bm_sysinfo_t si;
  bm_section_opts_t o;
  bm_large_t got;
  bm_source_t *src;
  bm_view_t v;
  long long free_pages, over;
  int lock = -1, r;
  size_t H;
  uint64_t size;

  ck_assert_bm_ok(bm_sysinfo_get(&si));
  H = si.default_large_size;
  if (H == 0) BM_TEST_SKIP("no huge pages on this system");
  /* The attempt takes pool pages until the pool runs dry, then gives them back: alone. */
  if ((lock = ht_lock(LOCK_EX)) < 0) BM_TEST_SKIP("the huge page pool lock was not had in 60 s");
  free_pages = ht_read_ll(ht_pool((long)(H >> 10), "free_hugepages"));
  over = ht_read_ll(ht_pool((long)(H >> 10), "nr_overcommit_hugepages"));
  if (free_pages < 0 || over < 0 || (uint64_t)(free_pages + over) * H > 4 * GiB) {
    ht_unlock(&lock);
    BM_TEST_SKIP("the pool could hold 4 GiB of huge pages (%lld free, %lld overcommit): "
                 "not filling it for a test", free_pages, over);
  }
  memset(&o, 0, sizeof(o));
  o.size = 4 * GiB + H;
  o.round = 1;
  o.large = BM_LARGE_ON;
  r = bm_section_create(&src, NULL, &o, &got);
  ck_assert_msg(r == BM_ENOLARGE, "ON: %s, expected BM_ENOLARGE", bm_err_name(r));
  ck_assert_int_eq(got.obtained, 0);
  ck_assert_int_ne(got.reason, BM_REASON_NONE);
  o.large = BM_LARGE_AUTO;
  r = bm_section_create(&src, NULL, &o, &got);
  ht_unlock(&lock);
  ck_assert_msg(r == 0, "AUTO: %s, expected normal pages", bm_err_name(r));
  ck_assert_int_eq(got.obtained && !got.transparent, 0);
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_ge(size, 4 * GiB + H);
  ck_assert_bm_ok(bm_view_map(&v, src, 4 * GiB + 7, 1, BM_ACCESS_WRITE));
  *(unsigned char *)v.data = 0x7e;
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_map(&v, src, 4 * GiB, 4096, BM_ACCESS_READ));
  ck_assert_uint_eq(((const unsigned char *)v.data)[7], 0x7e);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

#ifdef __linux__
/* A 17 TiB sparse file on tmpfs (/dev/shm): views below 16 TiB map in every build; bytes at
 * 16 TiB and past are BM_EOVERFLOW in a 32-bit process (mmap2 takes the offset in 4096-byte
 * units in an unsigned long), not EINVAL; a 64-bit process maps them. */
START_TEST(views_past_16t) {
  const uint64_t t16 = 16ull << 40, size = 17ull << 40;
  const int narrow = sizeof(unsigned long) == 4;
  char path[256];
  bm_source_t *src;
  bm_view_t v;
  bm_window_t w;
  bm_window_opts_t o;
  uint64_t reached = 0;
  int fd, r;

  snprintf(path, sizeof(path), "/dev/shm/%s", ht_name("t17"));
  fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  if (ftruncate(fd, (off_t)size) != 0) {
    int e = errno;
    close(fd);
    unlink(path);
    BM_TEST_SKIP("/dev/shm cannot hold a sparse file of 17 TiB: %s", strerror(e));
  }
  close(fd);
  put_markers(path, t16 - 4096, 8192);
  put_markers(path, size - 100, 100);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(&v, src, t16 - 4096, 4096, BM_ACCESS_READ));
  check_markers(v.data, t16 - 4096, 4096, "below 16 TiB");
  bm_view_unmap(&v);
  r = bm_view_map(&v, src, t16 - 10, 20, BM_ACCESS_READ);
  ck_assert_msg(r == (narrow ? BM_EOVERFLOW : 0), "view across 16 TiB: %s", bm_err_name(r));
  if (r == 0) check_markers(v.data, t16 - 10, 20, "across 16 TiB");
  bm_view_unmap(&v);
  r = bm_view_map(&v, src, size - 100, 100, BM_ACCESS_READ);
  ck_assert_msg(r == (narrow ? BM_EOVERFLOW : 0), "view at 17 TiB - 100: %s", bm_err_name(r));
  if (r == 0) check_markers(v.data, size - 100, 100, "at 17 TiB - 100");
  bm_view_unmap(&v);
  /* A cursor walks up to 16 TiB and stops there with the error. */
  memset(&o, 0, sizeof(o));
  o.start = t16 - 8192;
  o.length = 16384;
  o.window = 4096;
  o.prefault = 1;
  ck_assert_bm_ok(bm_window_init(&w, src, &o));
  while ((r = bm_window_next(&w)) == 1) {
    uint64_t a = w.offset > t16 - 4096 ? w.offset : t16 - 4096;
    uint64_t b = w.offset + w.length < t16 + 4096 ? w.offset + w.length : t16 + 4096;
    if (a < b) check_markers((const unsigned char *)w.data + (a - w.offset), a, (size_t)(b - a), "window near 16 TiB");
    reached = w.offset + w.length;
  }
  ck_assert_msg(r == (narrow ? BM_EOVERFLOW : 0), "cursor across 16 TiB: %s", bm_err_name(r));
  ck_assert_uint_eq(reached, narrow ? t16 : t16 + 8192);
  bm_window_close(&w);
  bm_source_close(src);
  unlink(path);
}
END_TEST
#endif

static void wide_setup(void) { ht_init_run(); }
static void wide_teardown(void) { ht_sweep_dir("/dev/shm"); }
#else
START_TEST(sections_past_4g) {
  /* Windows sections are pagefile-backed and committed whole (SEC_COMMIT): 9 GiB of commit
   * charge for a test. The file views above cover offsets past 4 GiB there. */
  BM_TEST_SKIP("a 9 GiB pagefile-backed section would commit 9 GiB on Windows");
}
END_TEST
#endif

Suite *wide_suite(void) {
  Suite *s = suite_create("wide");
  TCase *tc = tcase_create("views");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, views_past_4g);
  tcase_add_test(tc, views_longer_than_size_t);
  tcase_add_test(tc, plans_around_2_32);
  tcase_add_test(tc, windows_past_4g);
  suite_add_tcase(s, tc);
  /* Each case that may skip has a test case of its own, so its skip hides no pass. */
  tc = tcase_create("sections");
  tcase_set_timeout(tc, 120);
#ifndef _WIN32
  tcase_add_unchecked_fixture(tc, wide_setup, wide_teardown);
  tcase_add_test(tc, section_past_address_space);
#else
  tcase_add_test(tc, sections_past_4g);
#endif
  suite_add_tcase(s, tc);
#ifndef _WIN32
  tc = tcase_create("large_pages");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, wide_setup, wide_teardown);
  tcase_add_test(tc, large_section_past_size_t);
  suite_add_tcase(s, tc);
#endif
#ifdef __linux__
  tc = tcase_create("past_16t");
  tcase_add_unchecked_fixture(tc, wide_setup, wide_teardown);
  tcase_add_test(tc, views_past_16t);
  suite_add_tcase(s, tc);
#endif
  return s;
}
