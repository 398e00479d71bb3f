/* The window cursor: every byte delivered once as new data, overlap equal to the previous
 * tail, seek, the mapping bound, truncation under a live cursor, and a 16 GiB sparse file
 * walked by a child whose address space is capped at 512 MiB. */
#include <string.h>
#include "testutil.h"
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#else
#include <windows.h>
#endif

/* Walks path with the options and checks every byte against the pattern. */
static void walk_and_check(const char *path, uint64_t size, const bm_window_opts_t *o) {
  bm_source_t *src;
  bm_window_t w;
  uint64_t expect = o->start, i;
  uint64_t end = o->length == BM_TO_END ? size : o->start + o->length;
  int r, first = 1, windows = 0;

  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_window_init(&w, src, o));
  while ((r = bm_window_next(&w)) == 1) {
    windows++;
    ck_assert_uint_eq(w.offset + w.overlap, expect);
    if (first) ck_assert_uint_eq(w.overlap, 0);
    else ck_assert_uint_eq(w.overlap, o->overlap < expect - o->start ? o->overlap : expect - o->start);
    for (i = 0; i < w.length; i++)
      if (w.data[i] != bm_test_byte(w.offset + i))
        ck_abort_msg("byte at %llu differs", (unsigned long long)(w.offset + i));
    ck_assert_uint_le(w.length - w.overlap, bm_window_size(&w));
    expect = w.offset + w.length;
    first = 0;
    if (o->max_mapped) ck_assert_uint_le(w.peak_mapped, o->max_mapped);
  }
  ck_assert_int_eq(r, 0);
  ck_assert_uint_eq(expect, end);
  if (end == o->start) ck_assert_int_eq(windows, 1); /* one empty window */
  ck_assert_int_eq(bm_window_next(&w), 0);           /* stays at the end */
  bm_window_close(&w);
  bm_window_close(&w);
  bm_source_close(src);
}

START_TEST(walks_every_byte) {
  const uint64_t g = bm_granularity();
  const uint64_t sizes[] = {0, 1, g - 1, g, g + 1, 5 * g + 7, 1 << 20};
  const char *path = bm_test_path("walk");
  size_t s;
  int ra, pf;
  for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    bm_test_write_pattern(path, sizes[s]);
    for (ra = 0; ra < 2; ra++)
      for (pf = 0; pf < 2; pf++) {
        bm_window_opts_t o = {0};
        o.length = BM_TO_END;
        o.window = g;
        o.readahead = ra;
        o.prefault = pf;
        walk_and_check(path, sizes[s], &o);
        o.window = 3 * g - 1; /* rounded up */
        o.overlap = g / 2 + 3;
        walk_and_check(path, sizes[s], &o);
        if (sizes[s] > 10) {
          o.start = 3;
          o.length = sizes[s] - 10;
          walk_and_check(path, sizes[s], &o);
        }
      }
  }
}
END_TEST

START_TEST(overlap_straddles) {
  const uint64_t g = bm_granularity(), size = 8 * g;
  const char *path = bm_test_path("straddle");
  static const char lit[] = "STRADDLE";
  bm_window_opts_t o = {0};
  bm_source_t *src;
  bm_window_t w;
  int seen = 0, r;
  bm_test_write_pattern(path, size);
  bm_test_pwrite(path, 2 * g - 3, lit, 8); /* across the edge of windows 1 and 2 */
  o.window = g;
  o.overlap = 7;
  o.length = BM_TO_END;
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_window_init(&w, src, &o));
  while ((r = bm_window_next(&w)) == 1) {
    const unsigned char *p = w.data;
    size_t n = w.length;
    while (n >= 8 && (p = memchr(p, 'S', n - 7)) != NULL) {
      if (memcmp(p, lit, 8) == 0) {
        seen++;
        ck_assert_uint_eq(w.offset + (uint64_t)(p - w.data), 2 * g - 3);
      }
      p++;
      n = w.length - (size_t)(p - w.data);
    }
  }
  ck_assert_int_eq(r, 0);
  ck_assert_int_eq(seen, 1); /* seen whole exactly once */
  bm_window_close(&w);
  bm_source_close(src);
}
END_TEST

START_TEST(seek_and_bound) {
  const uint64_t g = bm_granularity(), size = 64 * g + 100;
  const char *path = bm_test_path("seek");
  bm_window_opts_t o = {0};
  bm_source_t *src;
  bm_window_t w;
  bm_test_write_pattern(path, size);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  o.window = 16 * g;
  o.overlap = 100;
  o.length = BM_TO_END;
  o.readahead = 1;
  o.max_mapped = 8 * g; /* forces the window down */
  ck_assert_bm_ok(bm_window_init(&w, src, &o));
  ck_assert_uint_lt(bm_window_size(&w), 16 * g);
  ck_assert_uint_eq(bm_window_size(&w) % g, 0);
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_uint_eq(w.overlap, 100);
  ck_assert_bm_ok(bm_window_seek(&w, 40 * g + 1));
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_uint_eq(w.offset, 40 * g + 1);
  ck_assert_uint_eq(w.overlap, 0);
  ck_assert_uint_eq(w.data[0], bm_test_byte(40 * g + 1));
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_uint_eq(w.overlap, 100);
  ck_assert_uint_le(w.peak_mapped, 8 * g);
  ck_assert_bm_err(bm_window_seek(&w, size + 1), BM_ERANGE);
  ck_assert_bm_ok(bm_window_seek(&w, size));
  ck_assert_int_eq(bm_window_next(&w), 0);
  bm_window_close(&w);
  bm_source_close(src);
}
END_TEST

START_TEST(window_errors) {
  const uint64_t g = bm_granularity();
  const char *path = bm_test_path("werr");
  bm_window_opts_t o = {0};
  bm_source_t *src;
  bm_window_t w;
  bm_test_write_pattern(path, 10 * g);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  o.length = BM_TO_END;
  o.window = g;
  o.overlap = g;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_EINVAL);
  o.overlap = 0;
  o.start = 10 * g + 1;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_ERANGE);
  o.start = 5;
  o.length = UINT64_MAX - 2;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_EOVERFLOW);
  o.length = 10 * g;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_ERANGE);
  o.start = 0;
  o.length = BM_TO_END;
  o.max_mapped = g;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_EINVAL);
  o.max_mapped = 0;
  o.access = BM_ACCESS_WRITE;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_EINVAL);
  o.access = 0;
  o.window = UINT64_MAX - 1;
  ck_assert_bm_err(bm_window_init(&w, src, &o), BM_EOVERFLOW);
  ck_assert_bm_err(bm_window_init(&w, NULL, NULL), BM_EINVAL);
  ck_assert_bm_ok(bm_window_init(&w, src, NULL)); /* defaults: whole source */
  ck_assert_int_eq(bm_window_next(&w), 1);
  ck_assert_uint_eq(w.length, 10 * g);
  bm_window_close(&w);
  bm_source_close(src);
}
END_TEST

START_TEST(truncated_under_cursor) {
  const uint64_t g = bm_granularity(), size = 32 * g;
  const char *path = bm_test_path("shrink");
  int pf;
  for (pf = 0; pf < 2; pf++) {
    bm_window_opts_t o = {0};
    bm_source_t *src;
    bm_window_t w;
    int r;
    bm_test_write_pattern(path, size);
    ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
    o.window = 4 * g;
    o.length = BM_TO_END;
    o.prefault = pf;
    o.readahead = 1;
    ck_assert_bm_ok(bm_window_init(&w, src, &o));
    ck_assert_int_eq(bm_window_next(&w), 1);
    ck_assert_int_eq(bm_window_next(&w), 1);
#ifdef _WIN32
    /* Windows refuses to cut a file short while a view of it is mapped
     * (ERROR_USER_MAPPED_FILE): the cursor cannot lose its bytes, and walks on. */
    ck_assert_uint_eq(bm_test_try_truncate(path, 10 * g), ERROR_USER_MAPPED_FILE);
    while ((r = bm_window_next(&w)) == 1) {
      size_t i;
      for (i = 0; i < w.length; i++)
        if (w.data[i] != bm_test_byte(w.offset + i)) ck_abort_msg("byte at %llu differs", (unsigned long long)(w.offset + i));
    }
    ck_assert_int_eq(r, 0);
#else
    bm_test_truncate(path, 10 * g); /* in the middle of the third window */
    r = bm_window_next(&w);
    ck_assert_msg(r == BM_ETRUNCATED, "next after shrink gave %s", bm_err_name(r));
#endif
    bm_window_close(&w);
    bm_source_close(src);
  }
}
END_TEST

START_TEST(prefetch_reports_truncation) {
  const uint64_t g = bm_granularity();
  const char *path = bm_test_path("shrink2");
  bm_source_t *src;
  bm_view_t v;
  int r;
  bm_test_write_pattern(path, 16 * g);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(&v, src, 3, 16 * g - 3, BM_ACCESS_READ));
#ifdef _WIN32
  /* The shrink is refused under the view (ERROR_USER_MAPPED_FILE), so the prefetch has
   * every page to read (check_guard pins EXCEPTION_IN_PAGE_ERROR itself). */
  ck_assert_uint_eq(bm_test_try_truncate(path, 2 * g), ERROR_USER_MAPPED_FILE);
  r = bm_view_prefetch(&v);
  ck_assert_msg(r == 0, "prefetch gave %s", bm_err_name(r));
#else
  bm_test_truncate(path, 2 * g);
  r = bm_view_prefetch(&v);
  ck_assert_msg(r == BM_ETRUNCATED, "prefetch gave %s", bm_err_name(r));
#endif
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

/* In a child capped at 512 MiB of address space, walks a 16 GiB sparse file in 64 MiB
 * windows with overlap, checking markers on both sides of every 1 GiB edge and the last
 * byte. Exit 0 when all markers are seen where written. */
static int sparse_child(const char *path, uint64_t size) {
  bm_window_opts_t o = {0};
  bm_source_t *src;
  bm_window_t w;
  uint64_t seen = 0, gib = 1ull << 30;
  int r;
#ifndef _WIN32
  struct rlimit rl = {512ull << 20, 512ull << 20};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 10;
#endif
  if (bm_file_open(&src, path, BM_FILE_READ) != 0) return 11;
#ifndef _WIN32
  /* The cap is real: a 1 GiB mapping must now fail. */
  {
    bm_view_t big;
    if (bm_view_map(&big, src, 0, gib, BM_ACCESS_READ) != BM_ENOMEM) return 12;
  }
#endif
  o.window = 64ull << 20;
  o.overlap = 4096;
  o.length = BM_TO_END;
  o.readahead = 1;
  o.max_mapped = 256ull << 20;
  if (bm_window_init(&w, src, &o) != 0) return 13;
  while ((r = bm_window_next(&w)) == 1) {
    uint64_t k, first = (w.offset + gib - 1) / gib, last = (w.offset + w.length) / gib;
    for (k = first ? first : 1; k <= last && k * gib < size; k++) {
      uint64_t at = k * gib;
      if (at - 1 >= w.offset && at - 1 < w.offset + w.length && w.data[at - 1 - w.offset] != 'A')
        return 20;
      if (at >= w.offset && at < w.offset + w.length) {
        if (w.data[at - w.offset] != 'B') return 21;
        if (at >= w.offset + w.overlap) seen++; /* count each edge once, as new data */
      }
    }
    if (w.offset + w.length == size && w.data[w.length - 1] != 'Z') return 22;
  }
  if (r != 0) return 23;
  if (w.peak_mapped > o.max_mapped) return 24;
  if (seen != size / gib - 1) return 25;
  bm_window_close(&w);
  bm_source_close(src);
  return 0;
}

#ifdef _WIN32
/* Windows has no address-space cap like RLIMIT_AS (a job's memory limit counts commit,
 * which file views do not use): the same walk runs in this process, and the bound it
 * must keep is the cursor's own (peak_mapped <= max_mapped, checked in sparse_child). */
START_TEST(sparse_16g_bounded) {
  const uint64_t size = 16ull << 30, gib = 1ull << 30;
  const char *path = bm_test_path("sparse16g");
  uint64_t k;
  int rc;
  bm_test_make_sparse(path, size);
  for (k = 1; k < 16; k++) {
    bm_test_pwrite(path, k * gib - 1, "A", 1);
    bm_test_pwrite(path, k * gib, "B", 1);
  }
  bm_test_pwrite(path, size - 1, "Z", 1);
  rc = sparse_child(path, size);
  ck_assert_msg(rc == 0, "walk failed with %d", rc);
}
END_TEST
#else
START_TEST(sparse_16g_capped) {
  const uint64_t size = 16ull << 30, gib = 1ull << 30;
  const char *path = bm_test_path("sparse16g");
  uint64_t k;
  pid_t pid;
  int st;
#if defined(__SANITIZE_ADDRESS__)
  BM_TEST_SKIP("AddressSanitizer reserves terabytes of shadow, so RLIMIT_AS cannot be capped");
#endif
  bm_test_make_sparse(path, size);
  for (k = 1; k < 16; k++) {
    bm_test_pwrite(path, k * gib - 1, "A", 1);
    bm_test_pwrite(path, k * gib, "B", 1);
  }
  bm_test_pwrite(path, size - 1, "Z", 1);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) _exit(sparse_child(path, size));
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
  ck_assert_msg(WEXITSTATUS(st) == 0, "child failed with %d", WEXITSTATUS(st));
}
END_TEST
#endif

Suite *window_suite(void) {
  Suite *s = suite_create("window");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, walks_every_byte);
  tcase_add_test(tc, overlap_straddles);
  tcase_add_test(tc, seek_and_bound);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, window_errors);
  tcase_add_test(tc, truncated_under_cursor);
  tcase_add_test(tc, prefetch_reports_truncation);
  suite_add_tcase(s, tc);
  tc = tcase_create("limits");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
#ifdef _WIN32
  tcase_add_test(tc, sparse_16g_bounded);
#else
  tcase_add_test(tc, sparse_16g_capped);
#endif
  suite_add_tcase(s, tc);
  return s;
}
