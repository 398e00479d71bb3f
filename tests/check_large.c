/* Large pages on Linux, against the real kernel: the tests reserve huge pages themselves
 * (nr_hugepages), mount hugetlbfs in a temporary directory, check every page size with
 * their own reading of /proc/self/smaps, and give everything back in unchecked fixtures
 * (which run in the runner process, so even a failed test cannot skip them). Without root
 * or hugetlb support they skip and say why. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "internal.h" /* bm__view_priv: where the OS mapped a view */
#include "hugetest.h"

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>

#define MiB (1ull << 20)
#define HUGE_KB 2048 /* the 2 MiB size these tests reserve */

/* System state the fixtures change and restore (the runner process owns it). */
static struct {
  int lock;
  char skip[256];
  long long nr_2m, nr_1g; /* saved nr_hugepages */
  int have_1g;            /* a 1 GiB page was reserved */
  char shmem[32];         /* saved shmem_enabled */
  char mnt[64];           /* our hugetlbfs mount, or "" */
} fx = {-1, "", -1, -1, 0, "", ""};

static int fx_skip_if_needed(void) {
  if (geteuid() != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "not root: cannot reserve huge pages or mount hugetlbfs");
    return 1;
  }
  if (access(HT_HUGE_DIR "/hugepages-2048kB", F_OK) != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "kernel has no 2 MiB hugetlb pages");
    return 1;
  }
  if ((fx.lock = ht_lock(LOCK_EX)) < 0) {
    snprintf(fx.skip, sizeof(fx.skip), "could not take %s", HT_LOCK_PATH);
    return 1;
  }
  return 0;
}

static void fx_save(void) {
  fx.nr_2m = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fx.nr_1g = ht_read_ll(ht_pool(1048576, "nr_hugepages"));
  if (ht_read_knob(HT_SHMEM_ENABLED, fx.shmem, sizeof(fx.shmem)) != 0) fx.shmem[0] = '\0';
}

static void fx_mount(void) {
  /* In a private mount namespace (this test's process and its children): the mount, root's
   * and mode 0700, is a trusted one, which a `--large-pages auto` load of any other test or
   * program running as root meanwhile would take, with the pages reserved here. */
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "no private mount namespace: %s", strerror(errno));
    fx.mnt[0] = '\0';
    return;
  }
  snprintf(fx.mnt, sizeof(fx.mnt), "/tmp/bmhuge-XXXXXX");
  if (mkdtemp(fx.mnt) == NULL) {
    snprintf(fx.skip, sizeof(fx.skip), "mkdtemp: %s", strerror(errno));
    fx.mnt[0] = '\0';
    return;
  }
  if (mount("bulkmap-test", fx.mnt, "hugetlbfs", 0, "pagesize=2M,mode=0700") != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "mount hugetlbfs: %s", strerror(errno));
    rmdir(fx.mnt);
    fx.mnt[0] = '\0';
  }
}

/* Sets the number of free 2 MiB pages to `free_pages` by moving nr_hugepages; 0 when the
 * kernel gave what was asked. */
static int fx_pool(long long free_pages) {
  long long nr = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  long long fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (nr < 0 || fr < 0) return -1;
  if (ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + free_pages) != 0) return -1;
  return ht_read_ll(ht_pool(2048, "free_hugepages")) == free_pages ? 0 : -1;
}

static void fx_restore(void) {
  if (fx.mnt[0] != '\0') {
    ht_sweep_dir(fx.mnt);
    if (umount(fx.mnt) != 0) umount2(fx.mnt, MNT_DETACH);
    rmdir(fx.mnt);
    fx.mnt[0] = '\0';
  }
  ht_sweep_dir("/dev/shm");
  if (fx.nr_2m >= 0) ht_write_ll(ht_pool(2048, "nr_hugepages"), fx.nr_2m);
  if (fx.nr_1g >= 0) ht_write_ll(ht_pool(1048576, "nr_hugepages"), fx.nr_1g);
  if (fx.shmem[0] != '\0') ht_write_str(HT_SHMEM_ENABLED, fx.shmem);
  fx.nr_2m = fx.nr_1g = -1;
  fx.shmem[0] = '\0';
  fx.have_1g = 0;
  ht_unlock(&fx.lock);
}

/* tcase large_pages: 16 free 2 MiB pages, a 1 GiB page if the kernel can find one, a
 * hugetlbfs mount. */
static void reserved_setup(void) {
  ht_init_run();
  fx.skip[0] = '\0';
  if (fx_skip_if_needed()) return;
  fx_save();
  if (fx_pool(16) != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "could not reserve 16 huge pages of 2 MiB");
    return;
  }
  if (fx.nr_1g >= 0 && ht_write_ll(ht_pool(1048576, "nr_hugepages"), fx.nr_1g + 1) == 0)
    fx.have_1g = ht_read_ll(ht_pool(1048576, "free_hugepages")) >= 1;
  fx_mount();
}

/* tcase pool_empty: no free 2 MiB page, a hugetlbfs mount, no shmem huge pages. */
static void empty_setup(void) {
  ht_init_run();
  fx.skip[0] = '\0';
  if (fx_skip_if_needed()) return;
  fx_save();
  if (fx_pool(0) != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "could not empty the 2 MiB pool");
    return;
  }
  if (fx.shmem[0] != '\0' && ht_write_str(HT_SHMEM_ENABLED, "never") != 0) {
    snprintf(fx.skip, sizeof(fx.skip), "cannot write %s", HT_SHMEM_ENABLED);
    return;
  }
  fx_mount();
}

/* tcase no_mount: the pool has pages, but there is no hugetlbfs mount at all. */
static void nomount_setup(void) {
  ht_init_run();
  fx.skip[0] = '\0';
  if (fx_skip_if_needed()) return;
  fx_save();
  if (ht_hugetlbfs_mounts() > 0) {
    snprintf(fx.skip, sizeof(fx.skip), "a hugetlbfs mount exists on this system");
    return;
  }
  if (fx_pool(4) != 0) snprintf(fx.skip, sizeof(fx.skip), "could not reserve 4 huge pages");
}

#define SKIP_UNLESS_READY()                       \
  do {                                            \
    if (fx.skip[0] != '\0') BM_TEST_SKIP("%s", fx.skip); \
  } while (0)

static long long free_2m(void) { return ht_read_ll(ht_pool(2048, "free_hugepages")); }

static const char *u64s(uint64_t v) {
  static char bufs[4][24];
  static int next;
  char *b = bufs[next++ & 3];
  snprintf(b, sizeof(bufs[0]), "%llu", (unsigned long long)v);
  return b;
}

static void fill(void *p, uint64_t off, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) ((unsigned char *)p)[i] = bm_test_byte(off + i);
}

static int check(const void *p, uint64_t off, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != bm_test_byte(off + i)) return 0;
  return 1;
}

/* Opens NAME in a second process, checks its size, granularity and pattern, and checks
 * with the child's own smaps that its view has KIND pages ("hugetlb" KB, or "thp").
 * argv: NAME SIZE KIND KB */
BM_TEST_CHILD(large_reader) {
  bm_source_t *src;
  bm_large_t out;
  bm_view_t v;
  uint64_t size;
  long long kb = strtoll(argv[3], NULL, 10), got;
  int r;

  if (argc < 4) return 90;
  if ((r = bm_section_open(&src, argv[0], BM_ACCESS_READ)) != 0) {
    fprintf(stderr, "child: open %s: %s\n", argv[0], bm_err_name(r));
    return 10;
  }
  if (bm_source_size(src, &size) != 0 || size != strtoull(argv[1], NULL, 10)) return 11;
  if (bm_source_granularity(src) != (size_t)kb << 10) {
    fprintf(stderr, "child: granularity %zu\n", bm_source_granularity(src));
    return 12;
  }
  if (bm_section_large(src, &out) != 0 || !out.obtained || out.page_size != (size_t)kb << 10 ||
      out.transparent != (strcmp(argv[2], "thp") == 0))
    return 13;
  if (bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_READ) != 0) return 14;
  if (!check(v.data, 0, (size_t)size)) return 15;
  got = strcmp(argv[2], "thp") == 0 ? ht_smaps_kb(v.data, "ShmemPmdMapped")
                                    : ht_smaps_kb(v.data, "KernelPageSize");
  if (strcmp(argv[2], "thp") == 0 ? got < kb : got != kb) {
    fprintf(stderr, "child: smaps says %lld kB for %s\n", got, argv[2]);
    return 16;
  }
  bm_view_unmap(&v);
  bm_source_close(src);
  return 0;
}

static void opts_init(bm_section_opts_t *o, uint64_t size, int large) {
  memset(o, 0, sizeof(*o));
  o->size = size;
  o->large = large;
  /* Our own mount, named: where systemd has mounted /dev/hugepages too, a section must
   * never land there (it would pin pages the test does not give back). */
  o->mount = fx.mnt[0] != '\0' ? fx.mnt : NULL;
}

START_TEST(named_hugetlbfs) {
  const char *name = ht_name("named");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src;
  bm_view_t v;
  long long before;
  int rc;
  SKIP_UNLESS_READY();

  before = free_2m();
  opts_init(&o, 4 * MiB, BM_LARGE_ON);
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.requested, BM_LARGE_ON);
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_int_eq(out.transparent, 0);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_int_eq(out.reason, BM_REASON_NONE);
  ck_assert_uint_eq(bm_source_granularity(src), 2 * MiB);
  /* The pages were taken from the pool at creation, not at first touch. */
  ck_assert_int_eq(free_2m(), before - 2);
  /* It lives on our mount, owner-only, and not in /dev/shm. */
  ck_assert(ht_exists(fx.mnt, name));
  ck_assert(!ht_exists("/dev/shm", name));
  {
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", fx.mnt, name);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq((uint64_t)st.st_size, 4 * MiB);
  }
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
  fill(v.data, 0, v.length);
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), HUGE_KB);
  ck_assert_int_eq(ht_smaps_kb(v.data, "Private_Hugetlb") + ht_smaps_kb(v.data, "Shared_Hugetlb"),
                   4096); /* all 4 MiB of it mapped with huge pages */
  {
    const char *args[] = {name, u64s(4 * MiB), "hugetlb", "2048", NULL};
    rc = bm_test_spawn("large_reader", args);
  }
  ck_assert_msg(rc == 0, "reader child exited %d", rc);
  ck_assert_bm_ok(bm_section_large(src, &out));
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_bm_ok(bm_view_unmap(&v));
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert(!ht_exists(fx.mnt, name));
  ck_assert_int_eq(free_2m(), before); /* given back */
}
END_TEST

START_TEST(anonymous_memfd_hugetlb) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src;
  bm_view_t v;
  uint64_t size;
  long long before;
  SKIP_UNLESS_READY();

  before = free_2m();
  opts_init(&o, 3 * MiB, BM_LARGE_ON);
  o.round = 1; /* 3 MiB is no multiple of 2 MiB: rounding was allowed, so 4 MiB */
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_int_eq(out.transparent, 0);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 4 * MiB);
  ck_assert_int_eq(free_2m(), before - 2);
  /* A view at any offset: the mapping starts on a huge page boundary. */
  ck_assert_bm_ok(bm_view_map(&v, src, 2 * MiB + 5, 100, BM_ACCESS_WRITE));
  ck_assert_uint_eq((uintptr_t)bm__view_priv(&v)->base % (2 * MiB), 0);
  ck_assert_ptr_eq(v.data, (unsigned char *)bm__view_priv(&v)->base + 5);
  ck_assert_uint_eq(bm_view_mapped(&v) % (2 * MiB), 0);
  fill(v.data, 2 * MiB + 5, 100);
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), HUGE_KB);
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_READ));
  ck_assert(check((unsigned char *)v.data + 2 * MiB + 5, 2 * MiB + 5, 100));
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_int_eq(free_2m(), before);
}
END_TEST

START_TEST(gigantic_1g) {
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src;
  bm_view_t v;
  SKIP_UNLESS_READY();
  if (!fx.have_1g) BM_TEST_SKIP("the kernel could not reserve a 1 GiB huge page");

  opts_init(&o, 1ull << 30, BM_LARGE_ON);
  o.large_page_size = 1ull << 30;
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_uint_eq(out.page_size, 1ull << 30);
  ck_assert_uint_eq(bm_source_granularity(src), 1ull << 30);
  ck_assert_bm_ok(bm_view_map(&v, src, 12345, 4096, BM_ACCESS_WRITE));
  ck_assert_uint_eq((uintptr_t)bm__view_priv(&v)->base % (1ull << 30), 0);
  fill(v.data, 12345, 4096);
  ck_assert(check(v.data, 12345, 4096));
  ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), 1048576);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

START_TEST(size_rules) {
  const char *name = ht_name("sizes");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  uint64_t size;
  long long before;
  SKIP_UNLESS_READY();

  before = free_2m();
  /* Strict, not a multiple, no rounding: refused, and says so. */
  opts_init(&o, 3 * MiB, BM_LARGE_ON);
  ck_assert_bm_err(bm_section_create(&src, name, &o, &out), BM_EALIGN);
  ck_assert_ptr_null(src);
  ck_assert_int_eq(out.reason, BM_REASON_SIZE_NOT_MULTIPLE);
  ck_assert_int_eq(out.obtained, 0);
  ck_assert(!ht_exists(fx.mnt, name));
  ck_assert(!ht_exists("/dev/shm", name));
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_EALIGN);
  ck_assert_int_eq(free_2m(), before);
  /* Auto, not a multiple, no rounding: normal pages, and says why. */
  o.large = BM_LARGE_AUTO;
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.reason, BM_REASON_SIZE_NOT_MULTIPLE);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  ck_assert(ht_exists("/dev/shm", name));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 3 * MiB);
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
  /* Rounding allowed: the size grows to whole huge pages. */
  o.large = BM_LARGE_ON;
  o.round = 1;
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 4 * MiB);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
  /* A page size the system does not have. */
  opts_init(&o, 4 * MiB, BM_LARGE_ON);
  o.large_page_size = 64 * 1024;
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_UNSUPPORTED);
  ck_assert_bm_err(bm_section_create(&src, name, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_NO_MOUNT); /* no mount of that page size */
  ck_assert(!ht_exists("/dev/shm", name));
}
END_TEST

/* What is planted under a section's name (a symlink, a FIFO, a directory) is refused,
 * and nothing outside /dev/shm or the mount is ever opened or removed. */
static void planted(const char *dir, const char *name, const char *target) {
  char p[512];
  bm_section_opts_t o;
  bm_source_t *src = NULL;
  unsigned char buf[4];
  int r;

  snprintf(p, sizeof(p), "%s/%s", dir, name);
  opts_init(&o, 2 * MiB, BM_LARGE_ON);
  /* A symlink (hugetlbfs refuses to hold one: EINVAL on recent kernels). */
  if (symlink(target, p) == 0) {
    ck_assert_bm_err(bm_section_create(&src, name, &o, NULL), BM_EEXIST);
    ck_assert_int_ne(bm_section_open(&src, name, BM_ACCESS_WRITE), 0);
    ck_assert_int_eq(bm_last_os_error(), ELOOP);
    ck_assert_ptr_null(src);
    ck_assert_bm_ok(bm_section_remove(name)); /* the link goes, not its target */
    ck_assert(!ht_exists(dir, name));
    ck_assert_uint_eq(bm_test_pread(target, 0, buf, 4), 4);
    ck_assert(check(buf, 0, 4));
  } else {
    ck_assert_int_eq(errno, EINVAL);
  }
  /* A FIFO: refused at once (never waited on), not mappable. */
  ck_assert_int_eq(mkfifo(p, 0600), 0);
  ck_assert_bm_err(bm_section_create(&src, name, &o, NULL), BM_EEXIST);
  ck_assert_bm_err(bm_section_open(&src, name, BM_ACCESS_READ), BM_ENOTREG);
  ck_assert_int_eq(unlink(p), 0);
  /* A directory. */
  ck_assert_int_eq(mkdir(p, 0700), 0);
  r = bm_section_open(&src, name, BM_ACCESS_READ);
  ck_assert_msg(r == BM_EISDIR || r == BM_ENOTREG, "open of a directory: %s", bm_err_name(r));
  ck_assert_ptr_null(src);
  ck_assert_int_eq(rmdir(p), 0);
}

START_TEST(never_outside_the_mount) {
  const char *both = ht_name("both");
  const char *target = bm_test_path("target");
  char p[512];
  bm_section_opts_t o;
  bm_source_t *src = NULL;
  int fd;
  SKIP_UNLESS_READY();

  bm_test_write_pattern(target, 4);
  planted(fx.mnt, ht_name("planted"), target);
  planted("/dev/shm", ht_name("planted"), target);

  /* A name both in /dev/shm and on a mount is refused, never guessed. */
  opts_init(&o, 2 * MiB, BM_LARGE_OFF);
  ck_assert_bm_ok(bm_section_create(&src, both, &o, NULL));
  bm_source_close(src);
  o.large = BM_LARGE_ON; /* creating it on the mount as well is refused */
  ck_assert_bm_err(bm_section_create(&src, both, &o, NULL), BM_EEXIST);
  ck_assert(!ht_exists(fx.mnt, both));
  snprintf(p, sizeof(p), "%s/%s", fx.mnt, both);
  fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_bm_err(bm_section_open(&src, both, BM_ACCESS_READ), BM_EAMBIGUOUS);
  ck_assert_bm_err(bm_section_remove(both), BM_EAMBIGUOUS);
  o.large = BM_LARGE_OFF; /* and the other way round */
  ck_assert_int_eq(unlink(p), 0);
  ck_assert_bm_ok(bm_section_remove(both));
  fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_bm_err(bm_section_create(&src, both, &o, NULL), BM_EEXIST);
  ck_assert(!ht_exists("/dev/shm", both));
  ck_assert_int_eq(unlink(p), 0);
}
END_TEST

START_TEST(file_on_hugetlbfs) {
  /* A plain file on a hugetlbfs mount maps at any offset through the library, which aligns
   * views to the huge page (the kernel refuses base-page offsets there). */
  char p[512];
  bm_source_t *src = NULL;
  bm_view_t v;
  uint64_t i;
  SKIP_UNLESS_READY();
  snprintf(p, sizeof(p), "%s/%s", fx.mnt, ht_name("file"));
  ck_assert_bm_ok(bm_file_open(&src, p, BM_FILE_WRITE | BM_FILE_CREATE | BM_FILE_EXCL));
  ck_assert_uint_eq(bm_source_granularity(src), 2 * MiB);
  ck_assert_bm_ok(bm_file_extend(src, 4 * MiB));
  ck_assert_bm_ok(bm_view_map(&v, src, 0, 4 * MiB, BM_ACCESS_WRITE));
  for (i = 0; i < 4 * MiB; i++) ((unsigned char *)v.data)[i] = bm_test_byte(i);
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_map(&v, src, 5000, 10, BM_ACCESS_READ));
  ck_assert_uint_eq((uintptr_t)bm__view_priv(&v)->base % (2 * MiB), 0);
  for (i = 0; i < 10; i++) ck_assert_uint_eq(((unsigned char *)v.data)[i], bm_test_byte(5000 + i));
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_map(&v, src, 2 * MiB + 1, BM_TO_END, BM_ACCESS_READ));
  ck_assert_uint_eq(((unsigned char *)v.data)[0], bm_test_byte(2 * MiB + 1));
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_int_eq(unlink(p), 0);
}
END_TEST

START_TEST(strict_with_empty_pool) {
  const char *name = ht_name("strict");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  SKIP_UNLESS_READY();

  ck_assert_int_eq(free_2m(), 0);
  opts_init(&o, 4 * MiB, BM_LARGE_ON);
  ck_assert_bm_err(bm_section_create(&src, name, &o, &out), BM_ENOLARGE);
  ck_assert_ptr_null(src);
  ck_assert_int_eq(out.requested, BM_LARGE_ON);
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_int_eq(out.reason, BM_REASON_POOL_EMPTY);
  /* Nothing left behind, anywhere. */
  ck_assert(!ht_exists(fx.mnt, name));
  ck_assert(!ht_exists("/dev/shm", name));
  ck_assert_bm_err(bm_section_open(&src, name, BM_ACCESS_READ), BM_ENOENT);
  ck_assert_bm_err(bm_section_create(&src, NULL, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_POOL_EMPTY);
  ck_assert_str_eq(bm_large_reason_str(out.reason), "pool empty");
}
END_TEST

START_TEST(auto_with_empty_pool) {
  const char *name = ht_name("auto");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  int k;
  SKIP_UNLESS_READY();

  opts_init(&o, 4 * MiB, BM_LARGE_AUTO);
  for (k = 0; k < 2; k++) {
    ck_assert_bm_ok(bm_section_create(&src, k == 0 ? name : NULL, &o, &out));
    ck_assert_int_eq(out.requested, BM_LARGE_AUTO);
    ck_assert_int_eq(out.obtained, 0);
    ck_assert_int_eq(out.transparent, 0);
    ck_assert_uint_eq(out.page_size, bm_page_size());
    ck_assert_int_eq(out.reason, BM_REASON_POOL_EMPTY);
    ck_assert_uint_eq(bm_source_granularity(src), bm_granularity());
    ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
    fill(v.data, 0, v.length);
    ck_assert_int_eq(ht_smaps_kb(v.data, "KernelPageSize"), (long long)(bm_page_size() >> 10));
    ck_assert_int_eq(ht_smaps_kb(v.data, "ShmemPmdMapped"), 0);
    bm_view_unmap(&v);
    bm_source_close(src);
  }
  ck_assert(ht_exists("/dev/shm", name));
  ck_assert(!ht_exists(fx.mnt, name));
  ck_assert_bm_ok(bm_section_remove(name));
}
END_TEST

/* Transparent huge pages as the fallback, only where shmem gives them: a memfd follows
 * shmem_enabled=advise; a /dev/shm file only follows it when forced (its tmpfs mount has no
 * huge= option). The fixture restores shmem_enabled. */
START_TEST(auto_falls_back_to_transparent) {
  const char *name = ht_name("thp");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  bm_view_t v;
  int rc;
  SKIP_UNLESS_READY();
  if (fx.shmem[0] == '\0') BM_TEST_SKIP("no %s", HT_SHMEM_ENABLED);

  opts_init(&o, 4 * MiB, BM_LARGE_AUTO);
  /* never: a named section and an anonymous one get normal pages. */
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.transparent, 0);
  ck_assert_int_eq(out.reason, BM_REASON_POOL_EMPTY);
  bm_source_close(src);

  ck_assert_int_eq(ht_write_str(HT_SHMEM_ENABLED, "advise"), 0);
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_int_eq(out.obtained, 1);
  ck_assert_int_eq(out.transparent, 1);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_int_eq(out.reason, BM_REASON_TRANSPARENT_ONLY);
  ck_assert_uint_eq(bm_source_granularity(src), 2 * MiB);
  ck_assert_bm_ok(bm_view_map(&v, src, 2 * MiB, 2 * MiB, BM_ACCESS_WRITE));
  fill(v.data, 2 * MiB, v.length);
  ck_assert_int_ge(ht_smaps_kb(v.data, "ShmemPmdMapped"), HUGE_KB);
  bm_view_unmap(&v);
  bm_source_close(src);
  /* advise does not reach /dev/shm: a named section says it got normal pages. */
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.obtained, 0);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));

  ck_assert_int_eq(ht_write_str(HT_SHMEM_ENABLED, "force"), 0);
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.transparent, 1);
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE));
  fill(v.data, 0, v.length);
  ck_assert_int_ge(ht_smaps_kb(v.data, "ShmemPmdMapped"), HUGE_KB);
  {
    const char *args[] = {name, u64s(4 * MiB), "thp", "2048", NULL};
    rc = bm_test_spawn("large_reader", args);
  }
  ck_assert_msg(rc == 0, "reader child exited %d", rc);
  ck_assert_int_eq(ht_write_str(HT_SHMEM_ENABLED, fx.shmem), 0);
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
}
END_TEST

START_TEST(named_without_mount) {
  const char *name = ht_name("nomount");
  bm_section_opts_t o;
  bm_large_t out;
  bm_source_t *src = NULL;
  SKIP_UNLESS_READY();

  opts_init(&o, 4 * MiB, BM_LARGE_ON);
  ck_assert_bm_err(bm_section_create(&src, name, &o, &out), BM_ENOLARGE);
  ck_assert_int_eq(out.reason, BM_REASON_NO_MOUNT);
  ck_assert(!ht_exists("/dev/shm", name));
  o.large = BM_LARGE_AUTO;
  ck_assert_bm_ok(bm_section_create(&src, name, &o, &out));
  ck_assert_int_eq(out.reason, BM_REASON_NO_MOUNT);
  ck_assert_uint_eq(out.page_size, bm_page_size());
  bm_source_close(src);
  ck_assert_bm_ok(bm_section_remove(name));
  /* The anonymous kind needs no mount. */
  o.large = BM_LARGE_ON;
  ck_assert_bm_ok(bm_section_create(&src, NULL, &o, &out));
  ck_assert_uint_eq(out.page_size, 2 * MiB);
  bm_source_close(src);
}
END_TEST

Suite *large_suite(void) {
  Suite *s = suite_create("large");
  TCase *tc = tcase_create("large_pages");
  tcase_add_unchecked_fixture(tc, reserved_setup, fx_restore);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, named_hugetlbfs);
  tcase_add_test(tc, anonymous_memfd_hugetlb);
  tcase_add_test(tc, size_rules);
  tcase_add_test(tc, never_outside_the_mount);
  tcase_add_test(tc, file_on_hugetlbfs);
  suite_add_tcase(s, tc);
  /* Its own case: where the kernel cannot find a 1 GiB page it skips, and that must not
   * hide the 2 MiB cases passing. */
  tc = tcase_create("gigantic");
  tcase_add_unchecked_fixture(tc, reserved_setup, fx_restore);
  tcase_add_test(tc, gigantic_1g);
  suite_add_tcase(s, tc);
  tc = tcase_create("pool_empty");
  tcase_add_unchecked_fixture(tc, empty_setup, fx_restore);
  tcase_add_test(tc, strict_with_empty_pool);
  tcase_add_test(tc, auto_with_empty_pool);
  tcase_add_test(tc, auto_falls_back_to_transparent);
  suite_add_tcase(s, tc);
  tc = tcase_create("no_mount");
  tcase_add_unchecked_fixture(tc, nomount_setup, fx_restore);
  tcase_add_test(tc, named_without_mount);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

START_TEST(large_pages) {
  BM_TEST_SKIP("the large-page tests drive Linux (hugetlbfs, smaps); none for this system");
}
END_TEST

Suite *large_suite(void) {
  Suite *s = suite_create("large");
  TCase *tc = tcase_create("large_pages");
  tcase_add_test(tc, large_pages);
  suite_add_tcase(s, tc);
  return s;
}
#endif
