/* The places a name can live in, however many: more hugetlbfs mounts than the four the
 * system facts once held (issue 26), mounted by the test in a private mount namespace with
 * a private /dev/shm. A dataset and a plain section on the last of them are listed (with
 * who maps them), waited for, opened, and block a second creation; the mounts the library
 * reports are the ones /proc/mounts lists, read by the test itself. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#ifdef __linux__
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>

#define NMOUNTS 6 /* more than the old BM_MAX_MOUNTS (4), and the last one past the fifth */
#define PAGE2M (2u << 20)

static int lock_fd = -1;
static char base[64];
static long long nr_saved = -1;
static const char *skip;

/* In the runner (unchecked): the pool lock, a directory for the mounts, 4 free 2 MiB pages. */
static void many_setup(void) {
  long long nr, fr;
  ht_init_run();
  skip = NULL;
  base[0] = '\0';
  if (geteuid() != 0) {
    skip = "not root: cannot mount hugetlbfs, make a mount namespace or reserve huge pages";
    return;
  }
  if ((lock_fd = ht_lock(LOCK_EX)) < 0) {
    skip = "could not take " HT_LOCK_PATH;
    return;
  }
  snprintf(base, sizeof(base), "/tmp/bmplaces-XXXXXX");
  if (mkdtemp(base) == NULL) {
    skip = "cannot make a directory in /tmp";
    base[0] = '\0';
    return;
  }
  nr = nr_saved = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (nr < 0 || fr < 0 || ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + 4) != 0 ||
      ht_read_ll(ht_pool(2048, "free_hugepages")) < 4)
    skip = "could not reserve 4 free 2 MiB pages (/proc/sys/vm/nr_hugepages)";
}

/* The mounts lived in the test process's namespace and died with it: only the directory
 * and the pool are left to put back. */
static void many_teardown(void) {
  if (base[0] != '\0') rmdir(base);
  base[0] = '\0';
  if (nr_saved >= 0) ht_write_ll(ht_pool(2048, "nr_hugepages"), nr_saved);
  nr_saved = -1;
  ht_unlock(&lock_fd);
}

static unsigned char pattern(uint64_t i) { return bm_test_byte(i * 31u + 7u); }

START_TEST(many_mounts) {
  const char *ds_name = ht_name("fifth"), *sec_name = ht_name("fifthsec");
  char mnt[NMOUNTS][96];
  bm_dataset_opts_t o;
  bm_section_opts_t so;
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  bm_section_info_t *v, si;
  bm_sysinfo_t sys;
  bm_mount_t m;
  bm_source_t *sec, *again;
  bm_view_t view;
  uint64_t i, want;
  unsigned char *buf;
  size_t n, k;
  int p[2], st, seen, found_ds, found_sec;
  char c;
  pid_t pid;

  if (skip != NULL) BM_TEST_SKIP("%s", skip);
  /* Everything below is this test process's own: its mounts, its /dev/shm. */
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    BM_TEST_SKIP("no private mount namespace: %s", strerror(errno));
  ck_assert_int_eq(mount("bmtest", "/dev/shm", "tmpfs", 0, "mode=1777"), 0);
  ck_assert_int_eq(mount("bmtest", base, "tmpfs", 0, "mode=0755"), 0);
  for (k = 0; k < NMOUNTS; k++) {
    snprintf(mnt[k], sizeof(mnt[k]), "%s/m%zu", base, k);
    ck_assert_int_eq(mkdir(mnt[k], 0755), 0);
    ck_assert_msg(mount("bulkmap-test", mnt[k], "hugetlbfs", 0, "pagesize=2M,mode=0755") == 0,
                  "mount hugetlbfs on %s: %s", mnt[k], strerror(errno));
  }
  fprintf(stderr, "places: %d hugetlbfs mounts in /proc/mounts, the test's under %s\n",
          ht_hugetlbfs_mounts(), base);

  /* The system facts: every mount /proc/mounts lists, ours last. */
  ck_assert_bm_ok(bm_sysinfo_get(&sys));
  ck_assert_int_eq(sys.n_mounts, ht_hugetlbfs_mounts());
  ck_assert_int_ge(sys.n_mounts, NMOUNTS);
  for (seen = 0; bm_sysinfo_mount(seen, &m) == 0; seen++) {
  }
  ck_assert_int_eq(seen, sys.n_mounts);
  ck_assert_bm_ok(bm_sysinfo_mount(seen - 1, &m));
  ck_assert_str_eq(m.path, mnt[NMOUNTS - 1]);
  ck_assert_uint_eq(m.page_size, PAGE2M);
  ck_assert_bm_err(bm_sysinfo_mount(seen, &m), BM_ENOENT);
  ck_assert_bm_err(bm_sysinfo_mount(-1, &m), BM_EINVAL);

  /* A producer makes a dataset on the last mount and publishes it 300 ms later; the wait
   * begins before it exists. */
  want = PAGE2M + 12345;
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct timespec ts = {0, 300 * 1000 * 1000};
    close(p[0]);
    memset(&o, 0, sizeof(o));
    o.size = want;
    o.large = BM_LARGE_ON;
    o.mount = mnt[NMOUNTS - 1];
    if (bm_dataset_create(&ds, ds_name, &o, NULL) != 0) _exit(1);
    if (write(p[1], "c", 1) != 1) _exit(2);
    if (bm_view_map(&view, bm_dataset_source(ds), 0, want, BM_ACCESS_WRITE) != 0) _exit(3);
    for (i = 0; i < want; i++) ((unsigned char *)view.data)[i] = pattern(i);
    bm_view_unmap(&view);
    nanosleep(&ts, NULL);
    if (bm_dataset_publish(ds, NULL) != 0) _exit(4);
    bm_dataset_close(ds);
    _exit(0);
  }
  close(p[1]);
  ck_assert_bm_ok(bm_dataset_wait_open(&rd, ds_name, BM_OPEN_VERIFY, 20, &info));
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer failed (status %d)", st);
  ck_assert_int_eq(read(p[0], &c, 1), 1); /* it did create, not fail */
  close(p[0]);
  ck_assert_int_eq(info.state, BM_STATE_READY);
  ck_assert_uint_eq(info.page_size, PAGE2M);
  ck_assert_msg(strncmp(info.path, mnt[NMOUNTS - 1], strlen(mnt[NMOUNTS - 1])) == 0,
                "the dataset is at %s, not on %s", info.path, mnt[NMOUNTS - 1]);
  buf = malloc(want);
  ck_assert_ptr_nonnull(buf);
  for (i = 0; i < want; i++) buf[i] = pattern(i);
  ck_assert_uint_eq(info.xxh3, XXH3_64bits(buf, want));
  free(buf);

  /* ls: listed on that mount, mapped by this process (its view) and no other. */
  ck_assert_bm_ok(bm_dataset_view(rd, &view));
  ck_assert_bm_ok(bm_section_list(NULL, 0, &v, &n));
  for (k = 0, found_ds = 0; k < n; k++)
    if (strcmp(v[k].name, ds_name) == 0) {
      found_ds++;
      ck_assert_str_eq(v[k].place, mnt[NMOUNTS - 1]);
      ck_assert_int_eq(v[k].state, BM_STATE_READY);
      ck_assert_int_eq(v[k].maps, 1);
    }
  bm_section_list_free(v);
  ck_assert_int_eq(found_ds, 1);
  bm_view_unmap(&view);
  bm_dataset_close(rd);

  /* A second creation of the name is refused, with normal pages and on the same mount. */
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  ck_assert_bm_err(bm_dataset_create(&ds, ds_name, &o, NULL), BM_EEXIST);
  o.size = PAGE2M;
  o.large = BM_LARGE_ON;
  o.mount = mnt[NMOUNTS - 1];
  ck_assert_bm_err(bm_dataset_create(&ds, ds_name, &o, NULL), BM_EEXIST);

  /* A plain named section on that mount: listed there with this process mapping it, found
   * by open and lookup, and its name refused to a creator in /dev/shm and on the mount. */
  memset(&so, 0, sizeof(so));
  so.size = PAGE2M;
  so.large = BM_LARGE_ON;
  so.mount = mnt[NMOUNTS - 1];
  ck_assert_bm_ok(bm_section_create(&sec, sec_name, &so, NULL));
  ck_assert_bm_ok(bm_view_map(&view, sec, 0, PAGE2M, BM_ACCESS_WRITE));
  ((unsigned char *)view.data)[0] = 42;
  ck_assert_bm_ok(bm_section_list(NULL, BM_LIST_ALL, &v, &n));
  for (k = 0, found_sec = 0; k < n; k++)
    if (strcmp(v[k].name, sec_name) == 0) {
      found_sec++;
      ck_assert_str_eq(v[k].place, mnt[NMOUNTS - 1]);
      ck_assert_uint_eq(v[k].page_size, PAGE2M);
      ck_assert_int_eq(v[k].maps, 1);
    }
  bm_section_list_free(v);
  ck_assert_int_eq(found_sec, 1);
  ck_assert_bm_ok(bm_section_lookup(sec_name, &si));
  ck_assert_str_eq(si.place, mnt[NMOUNTS - 1]);
  bm_view_unmap(&view);
  ck_assert_bm_ok(bm_section_open(&again, sec_name, BM_ACCESS_READ));
  ck_assert_uint_eq(bm_source_granularity(again), PAGE2M);
  ck_assert_bm_ok(bm_view_map(&view, again, 0, 1, BM_ACCESS_READ));
  ck_assert_int_eq(((unsigned char *)view.data)[0], 42);
  bm_view_unmap(&view);
  bm_source_close(again);
  memset(&so, 0, sizeof(so));
  so.size = 4096;
  ck_assert_bm_err(bm_section_create(&again, sec_name, &so, NULL), BM_EEXIST);
  so.size = PAGE2M;
  so.large = BM_LARGE_ON;
  so.mount = mnt[0];
  ck_assert_bm_err(bm_section_create(&again, sec_name, &so, NULL), BM_EEXIST);
  bm_source_close(sec);

  ck_assert_bm_ok(bm_section_remove(sec_name));
  ck_assert_bm_ok(bm_section_remove(ds_name));
  ck_assert_bm_err(bm_section_lookup(ds_name, &si), BM_ENOENT);
  for (k = 0; k < NMOUNTS; k++) ck_assert_int_eq(umount(mnt[k]), 0);
  ck_assert_int_eq(umount(base), 0);
  ck_assert_int_eq(umount("/dev/shm"), 0);
}
END_TEST

Suite *places_suite(void) {
  Suite *s = suite_create("places");
  TCase *tc = tcase_create("many_mounts");
  tcase_add_unchecked_fixture(tc, many_setup, many_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, many_mounts);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

/* Windows has no hugetlbfs: no mount to list, whatever the index. */
START_TEST(no_mounts) {
  bm_sysinfo_t sys;
  bm_mount_t m;
  ck_assert_bm_ok(bm_sysinfo_get(&sys));
  ck_assert_int_eq(sys.n_mounts, 0);
  ck_assert_bm_err(bm_sysinfo_mount(0, &m), BM_ENOENT);
  ck_assert_bm_err(bm_sysinfo_mount(0, NULL), BM_EINVAL);
}
END_TEST

Suite *places_suite(void) {
  Suite *s = suite_create("places");
  TCase *tc = tcase_create("many_mounts");
  tcase_add_test(tc, no_mounts);
  suite_add_tcase(s, tc);
  return s;
}
#endif
