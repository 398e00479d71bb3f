/* Lifecycle (docs/design.md section 7) through the real OS: a reader process opening a name
 * thousands of times while it is replaced ten times (never ENOENT, each open one whole
 * generation, an old reader's bytes unchanged), a replace across places (/dev/shm and a
 * hugetlbfs mount of the test's own), a replace by another user refused, waiting for a
 * producer that publishes, one that is killed and a deadline, reclaiming beside a live
 * writer, maps counted, a dataset bound to a process that is killed. Expected values come
 * from the test: its own pattern and its own XXH3. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#ifdef __linux__
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <errno.h>
#include <signal.h>
#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

#define GENS 10
#define READS_MIN 3000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Generation g's payload: its size, and byte i; the first 8 bytes hold g. */
static uint64_t gen_size(int g) { return (64u << 10) + (uint64_t)g * 4099u; }
static unsigned char gen_byte(int g, uint64_t i) {
  if (i < 8) return (unsigned char)(i == 0 ? g : 0);
  return bm_test_byte(i + (uint64_t)g * 7919u);
}
static uint64_t gen_hash(int g) {
  uint64_t n = gen_size(g), i;
  unsigned char *p = malloc(n);
  uint64_t h;
  for (i = 0; i < n; i++) p[i] = gen_byte(g, i);
  h = XXH3_64bits(p, n);
  free(p);
  return h;
}

/* Makes generation g of NAME (replace: over what is there); large/mount as for create. */
static int make_gen(const char *name, int g, int replace, int large, const char *mount,
                    unsigned mode, bm_dataset_t **keep) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_view_t v;
  uint64_t i, n = gen_size(g);
  int err;
  memset(&o, 0, sizeof(o));
  o.size = n;
  o.large = large;
  o.mount = mount;
  o.mode = mode;
  o.replace = replace;
  o.source = "generation";
  if ((err = bm_dataset_create(&ds, name, &o, NULL)) != 0) return err;
  if ((err = bm_view_map(&v, bm_dataset_source(ds), 0, n, BM_ACCESS_WRITE)) != 0) {
    bm_dataset_close(ds);
    return err;
  }
  for (i = 0; i < n; i++) ((unsigned char *)v.data)[i] = gen_byte(g, i);
  bm_view_unmap(&v);
  err = bm_dataset_publish(ds, NULL);
  if (keep != NULL && err == 0) *keep = ds;
  else bm_dataset_close(ds);
  return err;
}

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);          \
      _exit(1);                                                                    \
    }                                                                              \
  } while (0)

/* The reader: opens NAME again and again until the parent closes `done` and at least
 * READS_MIN opens were made. Every open must succeed, be one whole generation (its size,
 * its hash from the trailer equal to the test's, its first byte its number, verified),
 * and generations only move forward. The first one opened stays mapped: its bytes must not
 * change. Exits 0, or 1 with why. */
static void reader(const char *name, int done_fd, int ngens) {
  uint64_t hashes[GENS + 1];
  bm_dataset_t *first = NULL;
  bm_view_t fv;
  int g, last = -1, reads = 0, seen = 0, done = 0, first_gen = -1;
  for (g = 0; g <= ngens; g++) hashes[g] = gen_hash(g);
  while (!done || reads < READS_MIN) {
    bm_dataset_t *ds;
    bm_dataset_info_t info;
    bm_view_t v;
    unsigned flags = (reads % 50 == 0) ? BM_OPEN_VERIFY : 0;
    int err = bm_dataset_open(&ds, name, flags, &info);
    if (err != 0) {
      fprintf(stderr, "reader: open %d gave %s (state %d)\n", reads, bm_err_name(err), info.state);
      _exit(1);
    }
    CHECK(bm_dataset_view(ds, &v) == 0);
    g = ((const unsigned char *)v.data)[0];
    CHECK(g >= 0 && g <= ngens);
    CHECK(info.bytes == gen_size(g) && info.xxh3 == hashes[g]);
    CHECK(((const unsigned char *)v.data)[v.length - 1] == gen_byte(g, v.length - 1));
    CHECK(g >= last);
    if (g != last) seen++;
    last = g;
    bm_view_unmap(&v);
    if (first == NULL) {
      first = ds;
      first_gen = g;
      CHECK(bm_dataset_view(first, &fv) == 0);
    } else {
      bm_dataset_close(ds);
    }
    reads++;
    if (!done) {
      struct timeval tv = {0, 0};
      fd_set rs;
      FD_ZERO(&rs);
      FD_SET(done_fd, &rs);
      if (select(done_fd + 1, &rs, NULL, NULL, &tv) == 1) done = 1;
    }
  }
  /* The old reader's bytes, whole, as they were. */
  CHECK(XXH3_64bits(fv.data, fv.length) == hashes[first_gen]);
  fprintf(stderr, "reader: %d opens, %d generations seen, last %d\n", reads, seen, last);
  CHECK(last == ngens);
  _exit(0);
}

static int lock_fd = -1;
static char mnt[64];
static long long nr_saved = -1;
static const char *huge_skip;

static void shm_setup(void) {
  ht_init_run();
  lock_fd = ht_lock(LOCK_SH);
}
static void shm_teardown(void) {
  ht_sweep_dir("/dev/shm");
  ht_unlock(&lock_fd);
}
static void huge_setup(void) {
  long long nr, fr;
  ht_init_run();
  huge_skip = NULL;
  mnt[0] = '\0';
  if (geteuid() != 0) {
    huge_skip = "not root: cannot mount hugetlbfs or reserve huge pages";
    return;
  }
  if ((lock_fd = ht_lock(LOCK_EX)) < 0) {
    huge_skip = "could not take " HT_LOCK_PATH;
    return;
  }
  snprintf(mnt, sizeof(mnt), "/tmp/bmlife-XXXXXX");
  if (mkdtemp(mnt) == NULL || mount("bulkmap-test", mnt, "hugetlbfs", 0, "pagesize=2M,mode=1777") != 0) {
    huge_skip = "cannot mount hugetlbfs";
    if (mnt[0]) rmdir(mnt);
    mnt[0] = '\0';
    return;
  }
  nr = nr_saved = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (nr < 0 || fr < 0 || ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + 16) != 0 ||
      ht_read_ll(ht_pool(2048, "free_hugepages")) < 16)
    huge_skip = "could not reserve 16 free 2 MiB pages (/proc/sys/vm/nr_hugepages)";
}
static void huge_teardown(void) {
  if (mnt[0] != '\0') {
    ht_sweep_dir(mnt);
    if (umount(mnt) != 0) umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    mnt[0] = '\0';
  }
  ht_sweep_dir("/dev/shm");
  if (nr_saved >= 0) ht_write_ll(ht_pool(2048, "nr_hugepages"), nr_saved);
  nr_saved = -1;
  ht_unlock(&lock_fd);
}

/* Replaces NAME `GENS` times while a reader process opens it; place(g) picks each
 * generation's pages (0: /dev/shm, 1: the test's hugetlbfs mount). */
static void replace_under_reader(const char *name, int (*large_of)(int g)) {
  int p[2], g, st;
  pid_t pid;
  ck_assert_bm_ok(make_gen(name, 0, 0, large_of(0) ? BM_LARGE_ON : BM_LARGE_OFF,
                           large_of(0) ? mnt : NULL, 0600, NULL));
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(p[1]);
    reader(name, p[0], GENS);
  }
  close(p[0]);
  for (g = 1; g <= GENS; g++) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the reader opens a few hundred times a generation */
    ck_assert_bm_ok(make_gen(name, g, 1, large_of(g) ? BM_LARGE_ON : BM_LARGE_OFF,
                             large_of(g) ? mnt : NULL, 0600, NULL));
  }
  close(p[1]);
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader failed (status %d)", st);
  /* Nothing is left but NAME: no hidden generation, no old one. */
  {
    bm_section_info_t *v;
    size_t n, i, k = 0;
    ck_assert_bm_ok(bm_section_list(name, BM_LIST_ALL, &v, &n));
    for (i = 0; i < n; i++) k += strcmp(v[i].name, name) == 0;
    bm_section_list_free(v);
    ck_assert_uint_eq(k, 1);
  }
  ck_assert_bm_ok(bm_section_remove(name));
}

static int shm_only(int g) { (void)g; return 0; }

START_TEST(replace_under_readers) {
  replace_under_reader(ht_name("replace"), shm_only);
}
END_TEST

/* Large pages only on a mount the user trusts: the test's mount is another user's
 * (nobody's) and world-writable, so `auto` with no mount named never puts a dataset on it;
 * named (BULKMAP_HUGETLBFS), it is used. */
START_TEST(untrusted_mount_not_used) {
  const char *name = ht_name("trust");
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  size_t ml = strlen(mnt);
  char saved[512] = "";
  const char *env = getenv("BULKMAP_HUGETLBFS"); /* ctest names no mount (CMakeLists.txt) */
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot give the mount to another user");
  if (env != NULL) snprintf(saved, sizeof(saved), "%s", env);
  unsetenv("BULKMAP_HUGETLBFS"); /* the trust rule itself, with no mount named */
  ck_assert_int_eq(chown(mnt, 65534, 65534), 0);
  ck_assert_int_eq(chmod(mnt, 01777), 0);
  memset(&o, 0, sizeof(o));
  o.size = 3u << 20;
  o.large = BM_LARGE_AUTO;
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_dataset_publish(ds, &info));
  bm_dataset_close(ds);
  ck_assert_msg(strncmp(info.path, mnt, ml) != 0, "auto used another user's world-writable mount: %s", info.path);
  ck_assert_bm_ok(bm_section_remove(name));
  setenv("BULKMAP_HUGETLBFS", mnt, 1);
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_dataset_publish(ds, &info));
  bm_dataset_close(ds);
  if (saved[0] != '\0') setenv("BULKMAP_HUGETLBFS", saved, 1);
  else unsetenv("BULKMAP_HUGETLBFS");
  ck_assert_msg(strncmp(info.path, mnt, ml) == 0 && info.page_size == (2u << 20),
                "the mount BULKMAP_HUGETLBFS names was not used: %s", info.path);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert_int_eq(chown(mnt, 0, 0), 0);
}
END_TEST

/* On hugetlbfs the file is exactly the payload's size (fallocate; bulkmap never maps it
 * writable at mmap time, which would grow it): a plain reader reads exactly the bytes. A
 * third party that maps it writable grows it to whole pages: stat says so (padded_bytes)
 * and the dataset still verifies. */
START_TEST(exact_size_on_hugetlbfs) {
  const char *name = ht_name("exact");
  char path[600];
  struct stat sb;
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  bm_view_t v;
  void *p;
  int fd;
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  ck_assert_bm_ok(make_gen(name, 3, 0, BM_LARGE_ON, mnt, 0600, NULL));
  snprintf(path, sizeof(path), "%s/%s", mnt, name);
  ck_assert_int_eq(stat(path, &sb), 0);
  ck_assert_uint_eq((uint64_t)sb.st_size, gen_size(3));
  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.page_size, 2u << 20);
  ck_assert_uint_eq(info.padded_bytes, 0);
  ck_assert_bm_ok(bm_dataset_view(rd, &v));
  ck_assert_int_eq(((const unsigned char *)v.data)[gen_size(3) - 1], gen_byte(3, gen_size(3) - 1));
  bm_view_unmap(&v);
  bm_dataset_close(rd);
  ck_assert_int_eq(stat(path, &sb), 0);
  ck_assert_uint_eq((uint64_t)sb.st_size, gen_size(3)); /* bulkmap's own views grew nothing */
  /* A third party's writable mapping. */
  ck_assert_int_ge(fd = open(path, O_RDWR), 0);
  p = mmap(NULL, 2u << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  munmap(p, 2u << 20);
  close(fd);
  ck_assert_int_eq(stat(path, &sb), 0);
  ck_assert_uint_eq((uint64_t)sb.st_size, 2u << 20);
  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.bytes, gen_size(3));
  ck_assert_uint_eq(info.padded_bytes, (2u << 20) - gen_size(3));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(name));
}
END_TEST

/* A replace keeps the dataset's place (docs/datasets.md): under readers on the hugetlbfs
 * mount, every generation stays there; one that asks for the other page kind is refused
 * (BM_EPLACE), and the old one stays as it was, in both directions. */
static int huge_only(int g) { (void)g; return 1; }

START_TEST(replace_keeps_place) {
  const char *h = ht_name("keepplace"), *n = ht_name("keepshm");
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  fprintf(stderr, "replace on %s under a reader\n", mnt);
  replace_under_reader(h, huge_only);
  ck_assert_bm_ok(make_gen(h, 0, 0, BM_LARGE_ON, mnt, 0600, NULL));
  ck_assert_bm_err(make_gen(h, 1, 1, BM_LARGE_OFF, NULL, 0600, NULL), BM_EPLACE);
  ck_assert_bm_ok(bm_dataset_open(&rd, h, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.xxh3, gen_hash(0));
  ck_assert_uint_eq(info.page_size, 2u << 20);
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(h));
  ck_assert_bm_ok(make_gen(n, 0, 0, BM_LARGE_OFF, NULL, 0600, NULL));
  ck_assert_bm_err(make_gen(n, 1, 1, BM_LARGE_ON, mnt, 0600, NULL), BM_EPLACE);
  ck_assert_bm_ok(bm_dataset_open(&rd, n, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.xxh3, gen_hash(0));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(n));
}
END_TEST

/* Another user may not replace root's dataset; root may replace another user's. */
START_TEST(replace_by_another_user) {
  bm_test_private_shm();
  const char *x = ht_name("notyours");
  uint64_t h0 = gen_hash(0);
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  pid_t pid;
  int st;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot become another user");
  ck_assert_bm_ok(make_gen(x, 0, 0, BM_LARGE_OFF, NULL, 0644, NULL));
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int err;
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(76);
    err = make_gen(x, 1, 1, BM_LARGE_OFF, NULL, 0644, NULL);
    if (err != BM_EPERM) fprintf(stderr, "replace as nobody gave %s\n", bm_err_name(err));
    _exit(err == BM_EPERM ? 0 : 1);
  }
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nobody's replace was not refused");
  ck_assert_bm_ok(bm_dataset_open(&rd, x, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.xxh3, h0); /* as it was */
  bm_dataset_close(rd);
  /* Nothing hidden left behind by the refused one. */
  {
    bm_reclaimed_t *v;
    size_t n;
    ck_assert_bm_ok(bm_dataset_reclaim(&v, &n, NULL));
    bm_reclaimed_free(v);
  }
  ck_assert_bm_ok(make_gen(x, 1, 1, BM_LARGE_OFF, NULL, 0644, NULL)); /* root: allowed */
  ck_assert_bm_ok(bm_dataset_open(&rd, x, 0, &info));
  ck_assert_uint_eq(info.xxh3, gen_hash(1));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

/* A failed replace (the source changes: BM_ECHANGED) leaves the old as it was. */
START_TEST(replace_that_fails) {
  bm_test_private_shm();
  const char *x = ht_name("failrep");
  const char *path = bm_test_path("src");
  bm_load_opts_t lo;
  bm_load_result_t r;
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  ck_assert_bm_ok(make_gen(x, 0, 0, BM_LARGE_OFF, NULL, 0600, NULL));
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  o.replace = 1;
  ck_assert_bm_ok(bm_dataset_create(&ds, x, &o, NULL));
  ck_assert_bm_ok(bm_dataset_open(&rd, x, BM_OPEN_VERIFY, &info)); /* meanwhile: the old */
  ck_assert_uint_eq(info.xxh3, gen_hash(0));
  bm_dataset_close(rd);
  bm_dataset_close(ds); /* never published: the hidden generation goes, the old stays */
  ck_assert_bm_ok(bm_dataset_open(&rd, x, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.xxh3, gen_hash(0));
  bm_dataset_close(rd);
  bm_test_write_pattern(path, 1 << 20);
  memset(&lo, 0, sizeof(lo));
  lo.dataset.replace = 1;
  lo.dataset.large = BM_LARGE_OFF;
  ck_assert_bm_ok(bm_dataset_load(NULL, x, path, &lo, &r));
  ck_assert_bm_ok(bm_dataset_open(&rd, x, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.bytes, 1 << 20);
  bm_dataset_close(rd);
  {
    bm_reclaimed_t *v;
    size_t n;
    ck_assert_bm_ok(bm_dataset_reclaim(&v, &n, NULL));
    ck_assert_uint_eq(n, 0); /* no generation was left hidden */
    bm_reclaimed_free(v);
  }
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

/* ---- Waiting. */

START_TEST(wait_for_producer) {
  const char *x = ht_name("waitprod");
  bm_dataset_opts_t o;
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  bm_view_t v;
  uint64_t i, n = gen_size(3);
  double t0, t1, tp;
  int p[2], st;
  pid_t pid;
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* The producer: nothing for 300 ms, then loading for 300 ms, then ready. */
    struct timespec ts = {0, 300 * 1000 * 1000};
    double tpub;
    close(p[0]);
    nanosleep(&ts, NULL);
    memset(&o, 0, sizeof(o));
    o.size = n;
    if (bm_dataset_create(&ds, x, &o, NULL) != 0) _exit(1);
    nanosleep(&ts, NULL);
    if (bm_view_map(&v, bm_dataset_source(ds), 0, n, BM_ACCESS_WRITE) != 0) _exit(1);
    for (i = 0; i < n; i++) ((unsigned char *)v.data)[i] = gen_byte(3, i);
    bm_view_unmap(&v);
    tpub = now_s();
    if (bm_dataset_publish(ds, NULL) != 0) _exit(1);
    if (write(p[1], &tpub, sizeof(tpub)) != sizeof(tpub)) _exit(1);
    bm_dataset_close(ds);
    _exit(0);
  }
  close(p[1]);
  t0 = now_s();
  ck_assert_bm_ok(bm_dataset_wait_open(&rd, x, BM_OPEN_VERIFY, 10, &info));
  t1 = now_s();
  ck_assert_uint_eq(info.xxh3, gen_hash(3));
  ck_assert_int_eq(read(p[0], &tp, sizeof(tp)), (ssize_t)sizeof(tp));
  fprintf(stderr, "wait: ready %.1f ms after the publish (%.0f ms waited)\n", (t1 - tp) * 1e3,
          (t1 - t0) * 1e3);
  ck_assert_msg(t1 - tp < 0.5, "woke %.3f s after the publish", t1 - tp);
  bm_dataset_close(rd);
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

START_TEST(wait_for_killed_producer) {
  const char *x = ht_name("waitkill");
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  double t0, t1;
  int p[2], st;
  char c;
  pid_t pid;
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    bm_dataset_opts_t o;
    bm_dataset_t *ds;
    memset(&o, 0, sizeof(o));
    o.size = 1 << 20;
    if (bm_dataset_create(&ds, x, &o, NULL) != 0) _exit(1);
    if (write(p[1], "x", 1) != 1) _exit(1);
    for (;;) pause(); /* loading forever, until killed */
  }
  ck_assert_int_eq(read(p[0], &c, 1), 1);
  /* The writer is killed 300 ms into the wait. */
  if (fork() == 0) {
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    _exit(0);
  }
  t0 = now_s();
  ck_assert_bm_err(bm_dataset_wait_open(&rd, x, 0, 10, &info), BM_EABANDONED);
  t1 = now_s();
  fprintf(stderr, "wait: abandoned seen %.0f ms into the wait\n", (t1 - t0) * 1e3);
  /* Woken by the writer's death (the name's events, then looks 10 ms apart), not found by
   * the quiet-name re-check every 2 s (the soak caught that: seen at 2.3 s, the close of the
   * named descriptor came before the one the lock was on). */
  ck_assert_msg(t1 - t0 < 1.9, "took %.3f s: found by the 2 s re-check, not woken", t1 - t0);
  ck_assert_int_eq(info.state, BM_STATE_ABANDONED);
  waitpid(pid, &st, 0);
  while (wait(&st) > 0) {
  }
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

/* A fork of a writer is not its writer: a child that lives on never keeps a dead writer's
 * dataset `loading` (its writer descriptors are closed at the fork), unless the role was
 * handed to it (bm_dataset_handoff): then the child publishes, and the parent's handle
 * only closes. And a NaN deadline is refused, not waited on forever. */
START_TEST(fork_is_not_the_writer) {
  const char *a = ht_name("forka"), *b = ht_name("forkb");
  bm_dataset_opts_t o;
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  int p[2], st;
  char c;
  pid_t writer, child;
  ck_assert_int_eq(pipe(p), 0);
  writer = fork();
  ck_assert_int_ge(writer, 0);
  if (writer == 0) {
    /* The writer forks a child that sleeps long, then dies without publishing. */
    memset(&o, 0, sizeof(o));
    o.size = 1 << 16;
    if (bm_dataset_create(&ds, a, &o, NULL) != 0) _exit(1);
    child = fork();
    if (child == 0) {
      close(p[0]);
      if (write(p[1], "c", 1) != 1) _exit(1);
      sleep(30);
      _exit(0);
    }
    raise(SIGKILL);
  }
  close(p[1]);
  ck_assert_int_eq(read(p[0], &c, 1), 1); /* the child lives */
  close(p[0]);
  ck_assert_int_eq(waitpid(writer, &st, 0), writer);
  ck_assert_bm_err(bm_dataset_wait_open(&rd, a, 0, 5, &info), BM_EABANDONED);
  ck_assert_bm_ok(bm_section_remove(a));
  /* Handed on: the child publishes what the parent created. */
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  ck_assert_bm_ok(bm_dataset_create(&ds, b, &o, NULL));
  ck_assert_bm_ok(bm_dataset_handoff(ds));
  child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) _exit(bm_dataset_publish(ds, NULL) == 0 ? 0 : 1);
  bm_dataset_close(ds); /* the parent's: nothing failed or removed */
  ck_assert_int_eq(waitpid(child, &st, 0), child);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child could not publish (%d)", st);
  ck_assert_bm_ok(bm_dataset_open(&rd, b, BM_OPEN_VERIFY, &info));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(b));
  ck_assert_bm_err(bm_dataset_wait_open(&rd, b, 0, NAN, &info), BM_EINVAL);
}
END_TEST

START_TEST(wait_deadline) {
  const char *x = ht_name("waitnone");
  bm_dataset_t *rd;
  bm_dataset_info_t info;
  double t0 = now_s(), t;
  ck_assert_bm_err(bm_dataset_wait_open(&rd, x, 0, 0.6, &info), BM_ETIMEDOUT);
  t = now_s() - t0;
  ck_assert_msg(t >= 0.6 && t < 1.5, "deadline after %.3f s", t);
  ck_assert_int_eq(info.state, 0);
  ck_assert_str_eq(bm_strerror(BM_ETIMEDOUT), "timed out");
  ck_assert_bm_err(bm_dataset_wait_open(&rd, x, BM_OPEN_ANY_STATE, 1, &info), BM_EINVAL);
  /* A dataset that exists and is ready: at once. */
  ck_assert_bm_ok(make_gen(x, 0, 0, BM_LARGE_OFF, NULL, 0600, NULL));
  ck_assert_bm_ok(bm_dataset_wait_open(&rd, x, 0, 0, &info));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

/* ---- Reclaim, maps, the process-bound dataset. */

/* A child that creates NAME (replace: a hidden generation of it) and stays loading until
 * killed; returns its pid once the section exists. */
static pid_t loading_child(const char *name, int replace) {
  int p[2];
  char c;
  pid_t pid;
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    bm_dataset_opts_t o;
    bm_dataset_t *ds;
    memset(&o, 0, sizeof(o));
    o.size = 3 << 20;
    o.replace = replace;
    if (bm_dataset_create(&ds, name, &o, NULL) != 0) _exit(1);
    if (write(p[1], "x", 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(p[1]);
  ck_assert_int_eq(read(p[0], &c, 1), 1);
  close(p[0]);
  return pid;
}

START_TEST(reclaim_beside_live_writer) {
  bm_test_private_shm();
  const char *dead = ht_name("dead"), *live = ht_name("live"), *rep = ht_name("rep");
  bm_reclaimed_t *v;
  size_t n, i;
  uint64_t freed = 0, want = 0;
  pid_t a, b, c;
  int st, got_dead = 0, got_gen = 0;
  char path[300];
  struct stat sb;
  a = loading_child(dead, 0);
  b = loading_child(live, 0);
  ck_assert_bm_ok(make_gen(rep, 0, 0, BM_LARGE_OFF, NULL, 0600, NULL));
  c = loading_child(rep, 1); /* a replacer that will die before it publishes */
  /* A loading dataset's bytes are anonymous (freed with their dead writer): what is left to
   * reclaim is the claim, its metadata. */
  snprintf(path, sizeof(path), "/dev/shm/bulkmap#%s", dead);
  ck_assert_int_eq(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "/dev/shm/%s", dead);
  ck_assert_int_ne(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "/dev/shm/bulkmap#%s", dead);
  want = 3u << 20;
  kill(a, SIGKILL);
  kill(c, SIGKILL);
  waitpid(a, &st, 0);
  waitpid(c, &st, 0);
  ck_assert_bm_ok(bm_dataset_reclaim(&v, &n, &freed));
  for (i = 0; i < n; i++) {
    fprintf(stderr, "reclaimed %s/%s %s %llu\n", v[i].place, v[i].name, bm_state_name(v[i].state),
            (unsigned long long)v[i].bytes);
    ck_assert_str_ne(v[i].name, live);
    ck_assert_str_ne(v[i].name, rep);
    if (strcmp(v[i].name, dead) == 0) {
      got_dead = 1;
      ck_assert_int_eq(v[i].state, BM_STATE_ABANDONED);
      ck_assert_uint_eq(v[i].bytes, want);
      ck_assert_int_eq(v[i].writer_pid, (int64_t)a);
    }
  }
  bm_reclaimed_free(v);
  ck_assert_int_eq(got_dead, 1);
  (void)got_gen; /* a replacer that died before publishing left nothing: its bytes were anonymous */
  ck_assert_int_ne(stat(path, &sb), 0);
  snprintf(path, sizeof(path), "/dev/shm/bulkmap#%s", live);
  ck_assert_int_eq(stat(path, &sb), 0); /* its writer lives: left */
  {
    bm_dataset_t *rd;
    bm_dataset_info_t info;
    ck_assert_bm_ok(bm_dataset_open(&rd, rep, BM_OPEN_VERIFY, &info)); /* the old one, whole */
    ck_assert_uint_eq(info.xxh3, gen_hash(0));
    bm_dataset_close(rd);
  }
  kill(b, SIGKILL);
  waitpid(b, &st, 0);
  ck_assert_bm_ok(bm_section_remove(live));
  ck_assert_bm_ok(bm_section_remove(rep));
}
END_TEST

static uint64_t retired_of(const char *name) {
  bm_section_info_t *v;
  size_t n;
  uint64_t r = UINT64_MAX;
  ck_assert_bm_ok(bm_section_list(name, 0, &v, &n));
  if (n == 1) r = v[0].retired_bytes;
  bm_section_list_free(v);
  return r;
}

static int64_t maps_of(const char *name) {
  bm_section_info_t *v;
  size_t n;
  int64_t m = -2;
  ck_assert_bm_ok(bm_section_list(name, 0, &v, &n));
  if (n == 1) m = v[0].maps;
  bm_section_list_free(v);
  return m;
}

START_TEST(maps_counted) {
  const char *x = ht_name("maps");
  pid_t kids[3];
  int p[2], q[2], i, st;
  char c;
  ck_assert_bm_ok(make_gen(x, 0, 0, BM_LARGE_OFF, NULL, 0600, NULL));
  ck_assert_int_eq(maps_of(x), 0);
  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(pipe(q), 0);
  for (i = 0; i < 3; i++) {
    kids[i] = fork();
    ck_assert_int_ge(kids[i], 0);
    if (kids[i] == 0) {
      bm_dataset_t *rd;
      bm_view_t v, w;
      close(p[1]);
      if (bm_dataset_open(&rd, x, 0, NULL) != 0 || bm_dataset_view(rd, &v) != 0 ||
          bm_dataset_view(rd, &w) != 0) /* two views: still one process */
        _exit(1);
      if (write(q[1], "x", 1) != 1) _exit(1);
      if (read(p[0], &c, 1) < 0) _exit(1);
      _exit(0);
    }
  }
  close(p[0]);
  for (i = 0; i < 3; i++) ck_assert_int_eq(read(q[0], &c, 1), 1);
  ck_assert_int_eq(maps_of(x), 3);
  ck_assert_uint_eq(retired_of(x), 0);
  /* Replaced under them: the new generation is mapped by nobody, the old one's memory is
   * still held by the three, and ls says how much. */
  ck_assert_bm_ok(make_gen(x, 1, 1, BM_LARGE_OFF, NULL, 0600, NULL));
  ck_assert_int_eq(maps_of(x), 0);
  ck_assert_uint_ge(retired_of(x), gen_size(0));
  close(p[1]);
  for (i = 0; i < 3; i++) waitpid(kids[i], &st, 0);
  ck_assert_int_eq(maps_of(x), 0);
  ck_assert_uint_eq(retired_of(x), 0); /* freed at their last unmap */
  ck_assert_bm_ok(bm_section_remove(x));
}
END_TEST

START_TEST(remove_on_exit) {
  const char *x = ht_name("bound"), *y = ht_name("bound-replaced");
  char path[300];
  struct stat sb;
  pid_t pid;
  int st, i;
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    bm_dataset_t *ds, *dy;
    if (make_gen(x, 0, 0, BM_LARGE_OFF, NULL, 0600, &ds) != 0) _exit(1);
    if (bm_dataset_remove_on_exit(ds) != 0) _exit(2);
    bm_dataset_close(ds); /* the binding outlives the handle */
    if (make_gen(y, 0, 0, BM_LARGE_OFF, NULL, 0600, &dy) != 0) _exit(1);
    if (bm_dataset_remove_on_exit(dy) != 0) _exit(2);
    bm_dataset_close(dy);
    if (make_gen(y, 1, 1, BM_LARGE_OFF, NULL, 0600, NULL) != 0) _exit(3); /* y replaced */
    raise(SIGKILL);
    _exit(4);
  }
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
  snprintf(path, sizeof(path), "/dev/shm/%s", x);
  for (i = 0; i < 200 && stat(path, &sb) == 0; i++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  ck_assert_msg(stat(path, &sb) != 0, "%s is still there 2 s after its process was killed", path);
  /* y was replaced since it was bound: the new one is not the bound object, so it stays. */
  {
    bm_dataset_t *rd;
    bm_dataset_info_t info;
    ck_assert_bm_ok(bm_dataset_open(&rd, y, 0, &info));
    ck_assert_uint_eq(info.xxh3, gen_hash(1));
    bm_dataset_close(rd);
  }
  ck_assert_bm_ok(bm_section_remove(y));
}
END_TEST


/* ---- Crash-atomicity (docs/datasets.md): writers killed at many points. A child makes
 * generation after generation of NAME (the first a plain load, then replaces), each filled,
 * published and closed; it is killed with SIGKILL after a random delay, hundreds of times,
 * a third of them with every kernel fallback forced (no O_TMPFILE, no /proc link, no
 * RENAME_NOREPLACE). After each kill: NAME is nothing, or judged `abandoned` or `failed`
 * (never `loading`: its writer is dead), or `ready` and then whole (it verifies) and the
 * same bytes as the plain path /dev/shm/NAME; after a reclaim nothing of it is left but a
 * ready dataset's three names. */
static void crash_writer(const char *name, int fallback) {
  int g;
  if (fallback) setenv("BULKMAP_TEST_FALLBACK", "tmpfile,proclink,renameat2", 1);
  for (g = 0;; g++)
    if (make_gen(name, g % 50, g > 0, BM_LARGE_OFF, NULL, 0600, NULL) != 0 && g == 0) _exit(1);
}

/* The objects in /dev/shm that belong to NAME: 1 for NAME, 2 for bulkmap#NAME, and how
 * many others (keep links, temporaries) into *others. */
static int crash_objects(const char *name, int *others) {
  DIR *d = opendir("/dev/shm");
  struct dirent *e;
  char comp[300], keep[300];
  int seen = 0;
  size_t kl;
  *others = 0;
  snprintf(comp, sizeof(comp), "bulkmap#%s", name);
  snprintf(keep, sizeof(keep), "bulkmap#%s#", name);
  kl = strlen(keep);
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, name) == 0) seen |= 1;
    else if (strcmp(e->d_name, comp) == 0) seen |= 2;
    else if (strncmp(e->d_name, keep, kl) == 0 || strncmp(e->d_name, "bulkmap#tmp#", 12) == 0 ||
             strncmp(e->d_name, "bulkmap#rm#", 11) == 0)
      (*others)++;
  }
  closedir(d);
  return seen;
}

static uint64_t crash_file_hash(const char *name) {
  char p[300];
  unsigned char *buf;
  FILE *f;
  long n;
  uint64_t h;
  snprintf(p, sizeof(p), "/dev/shm/%s", name);
  if ((f = fopen(p, "rb")) == NULL) return 0;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  h = XXH3_64bits(buf, (size_t)n);
  free(buf);
  return h;
}

START_TEST(writers_killed_anywhere) {
  const char *name = ht_name("crash");
  int round, rounds = 300, counts[8] = {0}, left_ready = 0;
  unsigned seed = (unsigned)getpid();
  bm_test_private_shm();
  for (round = 0; round < rounds; round++) {
    bm_dataset_t *ds = NULL;
    bm_dataset_info_t info;
    bm_reclaimed_t *v;
    size_t n;
    struct timespec ts;
    pid_t pid;
    int st, err, seen, others, fallback = round % 3 == 2;
    long delay_us = (long)(rand_r(&seed) % 6000u);
    /* The child goes straight to its work, before any ck_assert: each one writes a record
     * into Check's message file, which the child shares, and a SIGKILL that lands while
     * such a write crosses a page boundary leaves half a record there (the kernel stops a
     * write between pages for a fatal signal): the runner then failed with "Bad message
     * type arg 34" once, in a soak round, after the test itself had passed. */
    pid = fork();
    if (pid == 0) crash_writer(name, fallback);
    ck_assert_int_ge(pid, 0);
    ts.tv_sec = 0;
    ts.tv_nsec = delay_us * 1000;
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st), "round %d: the writer ended by itself (status %d)", round, st);
    err = bm_dataset_open(&ds, name, BM_OPEN_VERIFY, &info);
    if (err == 0) {
      /* Whole and verified, and what a plain reader of the path reads. */
      counts[BM_STATE_READY]++;
      ck_assert_uint_eq(crash_file_hash(name), info.xxh3);
      bm_dataset_close(ds);
    } else if (err == BM_ENOENT) {
      counts[0]++;
    } else {
      ck_assert_msg(err == BM_EABANDONED || (err == BM_EINCOMPLETE && info.state == BM_STATE_FAILED),
                    "round %d (%ld us, fallback %d): %s, state %s", round, delay_us, fallback,
                    bm_err_name(err), bm_state_name(info.state));
      counts[info.state]++;
    }
    ck_assert_bm_ok(bm_dataset_reclaim(&v, &n, NULL));
    bm_reclaimed_free(v);
    seen = crash_objects(name, &others);
    if (err == 0) {
      /* A ready dataset stays: NAME, its metadata and one keep link. */
      ck_assert_msg(seen == 3 && others == 1, "round %d: ready, then %d %d left", round, seen, others);
      left_ready++;
      ck_assert_bm_ok(bm_section_remove(name));
      seen = crash_objects(name, &others);
    }
    ck_assert_msg(seen == 0 && others == 0, "round %d (%ld us, fallback %d, %s): left %d and %d others",
                  round, delay_us, fallback, bm_err_name(err), seen, others);
  }
  fprintf(stderr, "crash: %d kills: %d nothing, %d ready, %d abandoned, %d failed; none left unjudged\n",
          rounds, counts[0], counts[BM_STATE_READY], counts[BM_STATE_ABANDONED], counts[BM_STATE_FAILED]);
  ck_assert_int_eq(counts[BM_STATE_LOADING], 0);
  (void)left_ready;
}
END_TEST

Suite *lifecycle_suite(void) {
  Suite *s = suite_create("lifecycle");
  TCase *tc = tcase_create("replace");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, replace_under_readers);
  tcase_add_test(tc, replace_by_another_user);
  tcase_add_test(tc, replace_that_fails);
  suite_add_tcase(s, tc);
  tc = tcase_create("places");
  tcase_add_unchecked_fixture(tc, huge_setup, huge_teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, replace_keeps_place);
  tcase_add_test(tc, exact_size_on_hugetlbfs);
  tcase_add_test(tc, untrusted_mount_not_used);
  suite_add_tcase(s, tc);
  tc = tcase_create("wait");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, wait_for_producer);
  tcase_add_test(tc, wait_for_killed_producer);
  tcase_add_test(tc, wait_deadline);
  tcase_add_test(tc, fork_is_not_the_writer);
  suite_add_tcase(s, tc);
  tc = tcase_create("reclaim");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, reclaim_beside_live_writer);
  tcase_add_test(tc, maps_counted);
  tcase_add_test(tc, remove_on_exit);
  suite_add_tcase(s, tc);
  tc = tcase_create("crash");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, writers_killed_anywhere);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

/* Windows: a section cannot be renamed, so a replace of a name that exists is refused and
 * the old one stays; one of a name that does not exist is a plain creation. */
START_TEST(replace_refused_on_windows) {
  const char *x = ht_name("winrep"), *y = ht_name("winnew");
  bm_dataset_opts_t o;
  bm_dataset_t *a, *b, *c, *rd;
  bm_dataset_info_t info;
  bm_reclaimed_t *v;
  size_t n;
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  ck_assert_bm_ok(bm_dataset_create(&a, x, &o, NULL));
  ck_assert_bm_ok(bm_dataset_publish(a, NULL));
  o.replace = 1;
  ck_assert_bm_err(bm_dataset_create(&b, x, &o, NULL), BM_ENOTSUP);
  ck_assert_bm_ok(bm_dataset_open(&rd, x, 0, &info));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_dataset_create(&c, y, &o, NULL));
  ck_assert_bm_ok(bm_dataset_publish(c, NULL));
  ck_assert_bm_ok(bm_dataset_wait_open(&rd, y, 0, 1, &info));
  bm_dataset_close(rd);
  ck_assert_bm_err(bm_dataset_wait_open(&rd, ht_name("winnone"), 0, 0.2, &info), BM_ETIMEDOUT);
  ck_assert_bm_err(bm_dataset_reclaim(&v, &n, NULL), BM_ENOTSUP);
  ck_assert_bm_ok(bm_dataset_remove_on_exit(c)); /* nothing to do: it dies with its handles */
  bm_dataset_close(c);
  bm_dataset_close(a);
}
END_TEST

Suite *lifecycle_suite(void) {
  Suite *s = suite_create("lifecycle");
  TCase *tc = tcase_create("replace");
  tcase_add_test(tc, replace_refused_on_windows);
  suite_add_tcase(s, tc);
  return s;
}
#endif
