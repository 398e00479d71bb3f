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
/* The bench module's OS layer (tools/bench, linked as bulkmap_bench: private anonymous
 * regions of each kind, smaps, the dTLB counter), so that what it maps is checked against
 * the test's own smaps reading. */
#include "bench_os.h"

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

/* bench's private anonymous kinds: what bench_os maps is what smaps says, and its own
 * reading of smaps agrees with the test's. */
START_TEST(private_kinds) {
  bench_mem_t m;
  bench_smaps_t sm;
  char why[256], mode[64];
  SKIP_UNLESS_READY();
  /* 4k: normal pages, no huge entries (MADV_NOHUGEPAGE, even were THP "always"). */
  ck_assert_int_eq(bench_mem_map(&m, BENCH_4K, 8 * MiB, why, sizeof(why)), 0);
  ck_assert_int_eq(bench_mem_populate(&m, why, sizeof(why)), 0);
  ck_assert_int_eq(ht_smaps_kb(m.base, "Rss"), 8 * 1024);
  ck_assert_int_eq(ht_smaps_kb(m.base, "AnonHugePages"), 0);
  ck_assert_int_eq(bench_os_smaps(m.base, m.size, &sm), 0);
  ck_assert_uint_eq(sm.mapped_bytes, 8 * MiB);
  ck_assert_uint_eq(sm.huge_bytes, 0);
  ck_assert_uint_eq(sm.kernel_page_size, bm_page_size());
  bench_mem_unmap(&m);
  ck_assert_ptr_null(m.base);
  /* thp: MADV_HUGEPAGE on a PMD-aligned region; with enabled=madvise or always the kernel
   * maps it with huge entries (free memory permitting: at least some of it). */
  bench_os_thp_mode(0, mode, sizeof(mode));
  if (strcmp(mode, "never") == 0) {
    ck_assert_int_eq(bench_mem_map(&m, BENCH_THP, 8 * MiB, why, sizeof(why)), -1);
    ck_assert_ptr_nonnull(strstr(why, "never"));
  } else {
    ck_assert_int_eq(bench_mem_map(&m, BENCH_THP, 8 * MiB, why, sizeof(why)), 0);
    ck_assert_uint_eq((uintptr_t)m.base % bench_os_thp_size(), 0);
    ck_assert_int_eq(bench_mem_populate(&m, why, sizeof(why)), 0);
    ck_assert_int_gt(ht_smaps_kb(m.base, "AnonHugePages"), 0);
    ck_assert_int_eq(bench_os_smaps(m.base, m.size, &sm), 0);
    ck_assert_uint_eq(sm.huge_bytes, (uint64_t)ht_smaps_kb(m.base, "AnonHugePages") * 1024);
    bench_mem_unmap(&m);
  }
  /* large: hugetlb pages from the pool the fixture filled (4 free pages of 2 MiB). */
  ck_assert_int_eq(bench_mem_map(&m, BENCH_LARGE, 4 * MiB, why, sizeof(why)), 0);
  ck_assert_int_eq(bench_mem_populate(&m, why, sizeof(why)), 0);
  ck_assert_int_eq(ht_smaps_kb(m.base, "KernelPageSize"), 2048);
  ck_assert_int_eq(bench_os_smaps(m.base, m.size, &sm), 0);
  ck_assert_uint_eq(sm.huge_bytes, 4 * MiB);
  ck_assert_uint_eq(sm.mapped_bytes, 4 * MiB);
  ck_assert_uint_eq(sm.kernel_page_size, 2 * MiB);
  bench_mem_unmap(&m);
}
END_TEST

/* More hugetlb pages than the pool holds: refused at map time with "pool empty" and the
 * count, never a SIGBUS on first touch. */
START_TEST(private_pool_empty) {
  bench_mem_t m;
  char why[256];
  SKIP_UNLESS_READY();
  ck_assert_int_eq(bench_mem_map(&m, BENCH_LARGE, 64 * MiB, why, sizeof(why)), -1);
  ck_assert_msg(strncmp(why, "pool empty: ", 12) == 0, "reason: %s", why);
  ck_assert_ptr_nonnull(strstr(why, "32 needed"));
  ck_assert_ptr_null(m.base);
}
END_TEST

/* The dTLB counter: counts, or says why not (the reason names the cause). */
START_TEST(tlb_counter) {
  bench_tlb_t t;
  char why[256] = "";
  double misses = -1;
  if (bench_tlb_open(&t, why, sizeof(why)) != 0) {
    ck_assert_int_gt((int)strlen(why), 10);
    if (access("/sys/bus/event_source/devices/cpu", F_OK) != 0 &&
        access("/sys/bus/event_source/devices/cpu_core", F_OK) != 0)
      ck_assert_ptr_nonnull(strstr(why, "no hardware PMU"));
    BM_TEST_SKIP("no dTLB counter here: %s", why);
  }
  bench_tlb_start(&t);
  {
    static volatile unsigned char buf[16 << 20];
    size_t i;
    for (i = 0; i < sizeof(buf); i += 4096) buf[i]++;
  }
  if (bench_tlb_stop(&t, &misses) == 0) ck_assert(misses >= 0);
  bench_tlb_close(&t);
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
  tcase_add_test(tc, private_kinds);
  tcase_add_test(tc, private_pool_empty);
  suite_add_tcase(s, tc);
  /* Its own case: where the VM has no PMU it skips, and that hides no pass. */
  tc = tcase_create("counters");
  tcase_add_test(tc, tlb_counter);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

/* Windows has no transparent huge pages: a strict request fails with the reason, AUTO
 * falls back to normal pages and says why. Elsewhere: skip. */
/* bench's private kinds on Windows: VirtualAlloc pages; no THP (unsupported, said so);
 * large pages had, or refused with the reason (privilege, unsupported, memory). */
START_TEST(private_kinds_win) {
#ifdef _WIN32
  bench_mem_t m;
  char why[256] = "";
  bench_tlb_t t;
  ck_assert_int_eq(bench_mem_map(&m, BENCH_4K, 8 * MiB, why, sizeof(why)), 0);
  ck_assert_int_eq(bench_mem_populate(&m, why, sizeof(why)), 0);
  ((volatile unsigned char *)m.base)[8 * MiB - 1] = 1;
  bench_mem_unmap(&m);
  ck_assert_int_eq(bench_mem_map(&m, BENCH_THP, 8 * MiB, why, sizeof(why)), -1);
  ck_assert_ptr_nonnull(strstr(why, "unsupported"));
  why[0] = '\0';
  if (bench_mem_map(&m, BENCH_LARGE, 4 * MiB, why, sizeof(why)) == 0)
    bench_mem_unmap(&m);
  else
    ck_assert_int_gt((int)strlen(why), 10);
  ck_assert_int_eq(bench_tlb_open(&t, why, sizeof(why)), -1);
  ck_assert_int_gt((int)strlen(why), 10);
#else
  BM_TEST_SKIP("the page kind tests drive Linux (hugetlb, THP, smaps) and Windows");
#endif
}
END_TEST

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
  tcase_add_test(tc, private_kinds_win);
  suite_add_tcase(s, tc);
  return s;
}
#endif
