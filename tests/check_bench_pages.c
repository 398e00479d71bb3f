/* The page kinds `bulkmap bench` compares, on anonymous sections: normal pages, transparent
 * huge pages (opts.transparent) and hugetlb pages. Every page size the library reports is
 * checked against the test's own reading of /proc/self/smaps for a view it faulted in.
 * The fixture (run in the runner process, under the huge page lock) reserves a few 2 MiB
 * pages and sets shmem_enabled, and puts both back. Without root it skips and says why. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#define MiB (1ull << 20)

static void opts_init(bm_section_opts_t *o, uint64_t size, int large, int transparent) {
  memset(o, 0, sizeof(*o));
  o->size = size;
  o->large = large;
  o->transparent = transparent;
  o->round = 1;
}

#ifdef __linux__

static struct {
  int lock;
  char skip[256];
  long long nr_2m;
  char shmem[32];
} fx = {-1, "", -1, ""};

/* 4 free 2 MiB hugetlb pages (so that a transparent request that wrongly went to hugetlb
 * would get them and be caught) and shmem_enabled=advise. */
static void pages_setup(void) {
  long long nr, fr;
  ht_init_run();
  fx.skip[0] = '\0';
  if (geteuid() != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "not root: cannot reserve huge pages or set shmem_enabled");
    return;
  }
  if (access(HT_HUGE_DIR "/hugepages-2048kB", F_OK) != 0 || access(HT_SHMEM_ENABLED, F_OK) != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "kernel has no 2 MiB hugetlb pages or no shmem THP");
    return;
  }
  if ((fx.lock = ht_lock(LOCK_EX)) < 0) {
    snprintf(fx.skip, sizeof(fx.skip), "could not take %s", HT_LOCK_PATH);
    return;
  }
  fx.nr_2m = nr = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (ht_read_knob(HT_SHMEM_ENABLED, fx.shmem, sizeof(fx.shmem)) != 0) fx.shmem[0] = '\0';
  if (nr < 0 || fr < 0 || ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + 4) != 0 ||
      ht_read_ll(ht_pool(2048, "free_hugepages")) < 4) {
    snprintf(fx.skip, sizeof(fx.skip), "could not reserve 4 huge pages of 2 MiB");
    return;
  }
  if (fx.shmem[0] == '\0' || ht_write_str(HT_SHMEM_ENABLED, "advise") != 0)
    snprintf(fx.skip, sizeof(fx.skip), "cannot set %s", HT_SHMEM_ENABLED);
}

static void pages_teardown(void) {
  if (fx.nr_2m >= 0) ht_write_ll(ht_pool(2048, "nr_hugepages"), fx.nr_2m);
  if (fx.shmem[0] != '\0') ht_write_str(HT_SHMEM_ENABLED, fx.shmem);
  fx.nr_2m = -1;
  fx.shmem[0] = '\0';
  ht_unlock(&fx.lock);
}

#define SKIP_UNLESS_READY()                                \
  do {                                                     \
    if (fx.skip[0] != '\0') BM_TEST_SKIP("%s", fx.skip);   \
  } while (0)

/* Maps the whole section, faults it in by writing, and returns the view. */
static void map_and_touch(bm_source_t *src, bm_view_t *v) {
  size_t i;
  ck_assert_bm_ok(bm_view_map(v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
  ck_assert_bm_ok(bm_view_prefetch(v));
  for (i = 0; i < v->length; i += 4096) ((volatile unsigned char *)v->data)[i] = (unsigned char)i;
}

START_TEST(normal_pages) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  SKIP_UNLESS_READY();
  opts_init(&o, 8 * MiB, BM_LARGE_OFF, 0);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  map_and_touch(src, &v);
  /* shmem_enabled=advise: no MADV_HUGEPAGE asked, so no PMD may be mapped. */
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), (long long)(bm_page_size() / 1024));
  ck_assert_int_eq(ht_smaps_kb(v.data, "ShmemPmdMapped"), 0);
  ck_assert_int_eq(ht_smaps_kb(v.data, "Rss"), 8 * 1024);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

START_TEST(transparent_obtained) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  SKIP_UNLESS_READY();
  opts_init(&o, 8 * MiB, BM_LARGE_ON, 1);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_int_eq(out.transparent, 1);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_int_eq(out.reason, BM_REASON_NONE);
  map_and_touch(src, &v);
  /* Transparent, not hugetlb (free hugetlb pages were there to be taken): the kernel page
   * size stays the base page, and PMDs map the shmem. */
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), (long long)(bm_page_size() / 1024));
  ck_assert_int_ge(ht_smaps_kb(v.data, "ShmemPmdMapped"), 2048);
  ck_assert_int_eq(ht_read_ll(ht_pool(2048, "free_hugepages")) >= 4, 1);
  /* Asked again, the kernel says the same. */
  ck_assert_bm_ok(bm_section_large(src, &out));
  ck_assert_int_eq(out.transparent, 1);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

START_TEST(transparent_refused) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  SKIP_UNLESS_READY();
  /* Not a whole number of PMDs: rounded up when allowed (as for hugetlb), else refused. */
  opts_init(&o, 1 * MiB, BM_LARGE_ON, 1);
  o.round = 0;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_EALIGN);
  ck_assert_ptr_null(src);
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.reason, BM_REASON_SIZE_NOT_MULTIPLE);
  o.round = 1;
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.transparent, 1);
  {
    uint64_t size = 0;
    ck_assert_bm_ok(bm_source_size(src, &size));
    ck_assert_uint_eq(size, 2 * MiB);
  }
  bm_source_close(src);
  src = NULL;
  /* Turned off for shared memory: strict fails, AUTO falls back and says why. */
  ck_assert_int_eq(ht_write_str(HT_SHMEM_ENABLED, "never"), 0);
  opts_init(&o, 8 * MiB, BM_LARGE_ON, 1);
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_UNSUPPORTED);
  opts_init(&o, 8 * MiB, BM_LARGE_AUTO, 1);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.transparent, 0);
  ck_assert_int_eq(out.reason, BM_REASON_UNSUPPORTED);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  map_and_touch(src, &v);
  ck_assert_int_eq(ht_smaps_kb(v.data, "ShmemPmdMapped"), 0);
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), (long long)(bm_page_size() / 1024));
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_int_eq(ht_write_str(HT_SHMEM_ENABLED, "advise"), 0);
}
END_TEST

START_TEST(hugetlb_pages) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  SKIP_UNLESS_READY();
  opts_init(&o, 4 * MiB, BM_LARGE_ON, 0);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_int_eq(out.transparent, 0);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  map_and_touch(src, &v);
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), 2048);
  ck_assert_int_eq(ht_smaps_kb(v.data, "ShmemPmdMapped"), 0);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

Suite *bench_pages_suite(void) {
  Suite *s = suite_create("bench_pages");
  TCase *tc = tcase_create("page_kinds");
  tcase_add_unchecked_fixture(tc, pages_setup, pages_teardown);
  tcase_add_test(tc, normal_pages);
  tcase_add_test(tc, transparent_obtained);
  tcase_add_test(tc, transparent_refused);
  tcase_add_test(tc, hugetlb_pages);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

/* Windows has no transparent huge pages: a strict request fails with the reason, AUTO
 * falls back to normal pages and says why. Elsewhere: skip. */
START_TEST(transparent_unsupported) {
#ifdef _WIN32
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  opts_init(&o, 4 * MiB, BM_LARGE_ON, 1);
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_UNSUPPORTED);
  opts_init(&o, 4 * MiB, BM_LARGE_AUTO, 1);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.reason, BM_REASON_UNSUPPORTED);
  bm_source_close(src);
#else
  BM_TEST_SKIP("the page kind tests drive Linux (hugetlb, shmem THP, smaps) and Windows");
#endif
}
END_TEST

Suite *bench_pages_suite(void) {
  Suite *s = suite_create("bench_pages");
  TCase *tc = tcase_create("page_kinds");
  tcase_add_test(tc, transparent_unsupported);
  suite_add_tcase(s, tc);
  return s;
}
#endif
