/* Datasets through the public calls, against the real kernel: the lifecycle and its
 * permissions, nothing removed that is not yours (a name removed and made again by someone
 * else meanwhile), a source that changes during a load, writer liveness across PID
 * namespaces (unshare), a second user (nobody) and another user's object under the same
 * name, creators racing in both places, what is short in the pool, and the limits checked
 * before a section is made (a small /dev/shm, a hugetlbfs mount's size= and nr_inodes=, a
 * memory cgroup). Expected values come
 * from the test: its own pattern, its own XXH3, its own stat(). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#ifdef __linux__
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <signal.h>
#include <spawn.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
extern char **environ;

#define MiB (1ull << 20)
#define PAYLOAD ((5u << 20) + 777u)

static pid_t spawn_child(const char *const *argv) {
  long pid = bm_test_start_argv(argv);
  ck_assert_int_gt(pid, 0);
  return (pid_t)pid;
}
#define wait_child(pid) bm_test_wait(pid)

/* Creates dataset NAME of `size` pattern bytes; publishes unless `publish` is 0. Returns the
 * handle (open) and the test's own XXH3 of the payload in *h. */
static bm_dataset_t *make(const char *name, uint64_t size, unsigned mode, int large,
                          const char *mount, int publish, uint64_t *h) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_view_t v;
  uint64_t i;
  unsigned char *p;
  memset(&o, 0, sizeof(o));
  o.size = size;
  o.mode = mode;
  o.large = large;
  o.mount = mount;
  o.source = "pattern";
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_view_map(&v, bm_dataset_source(ds), 0, size, BM_ACCESS_WRITE));
  p = v.data;
  for (i = 0; i < size; i++) p[i] = bm_test_byte(i);
  if (h != NULL) *h = XXH3_64bits(p, size);
  ck_assert_bm_ok(bm_view_unmap(&v));
  if (publish) ck_assert_bm_ok(bm_dataset_publish(ds, NULL));
  return ds;
}

static int lock_fd = -1;
static char mnt[64];   /* a hugetlbfs mount of the test's own, or "" */
static long long nr_saved = -1;

static void shm_setup(void) {
  ht_init_run();
  lock_fd = ht_lock(LOCK_SH);
}
static void shm_teardown(void) {
  ht_sweep_dir("/dev/shm");
  ht_unlock(&lock_fd);
}

/* Exclusive: a world-writable hugetlbfs mount of our own (so another user can plant names
 * on it) and `pages` free 2 MiB pages; everything given back in huge_teardown. */
static const char *huge_skip;
static void huge_setup_pages(long long pages) {
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
  snprintf(mnt, sizeof(mnt), "/tmp/bmds-XXXXXX");
  if (mkdtemp(mnt) == NULL ||
      mount("bulkmap-test", mnt, "hugetlbfs", 0, "pagesize=2M,mode=1777") != 0) {
    huge_skip = "cannot mount hugetlbfs";
    if (mnt[0]) rmdir(mnt);
    mnt[0] = '\0';
    return;
  }
  nr = nr_saved = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (nr < 0 || fr < 0 || ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + pages) != 0 ||
      ht_read_ll(ht_pool(2048, "free_hugepages")) != pages)
    huge_skip = "could not set the number of free 2 MiB pages";
}
static void huge_setup_8(void) { huge_setup_pages(8); }
static void huge_setup_2(void) { huge_setup_pages(2); }
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

START_TEST(lifecycle_and_mode) {
  const char *name = ht_name("life"), *other = ht_name("foreign");
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  bm_section_info_t *v;
  bm_view_t view;
  struct stat st;
  char path[256];
  size_t n, i, k;
  uint64_t h;
  int fd, found = 0;

  ds = make(name, PAYLOAD, 0640, BM_LARGE_OFF, NULL, 1, &h);
  ck_assert_bm_ok(bm_dataset_info(ds, &info));
  ck_assert_int_eq(info.state, BM_STATE_READY);
  ck_assert_uint_eq(info.xxh3, h);
  bm_dataset_close(ds); /* published: closing keeps it */
  snprintf(path, sizeof(path), "/dev/shm/%s", name);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0640); /* exactly, whatever the umask */

  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.bytes, PAYLOAD);
  ck_assert_int_eq(info.has_xxh3, 1);
  ck_assert_uint_eq(info.xxh3, h);
  ck_assert_int_eq(info.large.requested, BM_LARGE_OFF);
  ck_assert_str_eq(info.source, "pattern");
  ck_assert_str_eq(info.path, path);
  ck_assert_bm_ok(bm_dataset_view(rd, &view));
  ck_assert_uint_eq(view.length, PAYLOAD);
  for (i = 0; i < PAYLOAD; i += 4093) ck_assert_uint_eq(((unsigned char *)view.data)[i], bm_test_byte(i));
  bm_view_unmap(&view);
  ck_assert_bm_ok(bm_dataset_verify(rd));
  bm_dataset_close(rd);

  /* Listing: the dataset always; an object that is not one only with BM_LIST_ALL. */
  snprintf(path, sizeof(path), "/dev/shm/%s", other);
  ck_assert_int_ge(fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600), 0);
  ck_assert_int_eq(write(fd, "not a dataset", 13), 13);
  close(fd);
  for (k = 0; k < 2; k++) {
    int saw_other = 0;
    ck_assert_bm_ok(bm_section_list(NULL, k ? BM_LIST_ALL : 0, &v, &n));
    for (i = 0; i < n; i++) {
      if (strcmp(v[i].name, name) == 0) {
        found++;
        ck_assert_int_eq(v[i].state, BM_STATE_READY);
        ck_assert_uint_eq(v[i].bytes, PAYLOAD);
        ck_assert_uint_eq(v[i].mode, 0640);
        ck_assert_int_eq(v[i].mine, 1);
        ck_assert_str_eq(v[i].place, "/dev/shm");
        ck_assert_int_eq(v[i].writer_pid, (int64_t)getpid());
      }
      if (strcmp(v[i].name, other) == 0) {
        saw_other = 1;
        ck_assert_int_eq(v[i].state, BM_STATE_FOREIGN);
      }
    }
    ck_assert_int_eq(saw_other, (int)k);
    bm_section_list_free(v);
  }
  ck_assert_int_eq(found, 2);
  ck_assert_bm_err(bm_dataset_open(&rd, other, 0, &info), BM_ENOTDATASET);
  ck_assert_bm_ok(bm_section_remove(other));
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert_bm_err(bm_dataset_open(&rd, name, 0, &info), BM_ENOENT);
}
END_TEST

START_TEST(nothing_removed_that_is_not_yours) {
  const char *x = ht_name("reused"), *y = ht_name("reused-loading");
  bm_dataset_t *a, *b, *c, *d, *rd;
  uint64_t hb;

  /* A holder (published), its name removed and made again by another: the holder's end
   * leaves the new one alone. */
  a = make(x, 4096, 0, BM_LARGE_OFF, NULL, 1, NULL);
  ck_assert_bm_ok(bm_section_remove(x));
  b = make(x, 8192, 0, BM_LARGE_OFF, NULL, 1, &hb);
  ck_assert_bm_err(bm_dataset_remove(a), BM_EREPLACED);
  bm_dataset_close(a);
  ck_assert_bm_ok(bm_dataset_open(&rd, x, BM_OPEN_VERIFY, NULL));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_dataset_remove(b)); /* b's own: removed */
  ck_assert_bm_err(bm_dataset_remove(b), BM_ENOENT);
  bm_dataset_close(b);

  /* A failed or interrupted load likewise; and a live loader's section is not removed by a
   * plain remove. */
  c = make(y, 4096, 0, BM_LARGE_OFF, NULL, 0, NULL);
  ck_assert_bm_err(bm_section_remove(y), BM_EBUSY);
  ck_assert_bm_ok(bm_section_remove_force(y));
  d = make(y, 4096, 0, BM_LARGE_OFF, NULL, 0, NULL);
  ck_assert_bm_err(bm_dataset_fail(c), BM_EREPLACED);
  bm_dataset_close(c);
  ck_assert_bm_err(bm_dataset_open(&rd, y, 0, NULL), BM_EINCOMPLETE); /* d's, loading */
  bm_dataset_close(d); /* unpublished: failed and removed, being its own */
  ck_assert_bm_err(bm_dataset_open(&rd, y, 0, NULL), BM_ENOENT);
}
END_TEST

/* A load from a file that changes: in place, by rename, in size. */
static int load_with(const char *name, const char *file, void (*change)(const char *file)) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_source_t *f;
  bm_view_t dst, srcv;
  uint64_t size;
  int err;
  ck_assert_bm_ok(bm_file_open(&f, file, BM_FILE_READ));
  ck_assert_bm_ok(bm_source_size(f, &size));
  memset(&o, 0, sizeof(o));
  o.size = size;
  o.large = BM_LARGE_OFF;
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_dataset_watch(ds, f));
  ck_assert_bm_ok(bm_view_map(&dst, bm_dataset_source(ds), 0, size, BM_ACCESS_WRITE));
  ck_assert_bm_ok(bm_view_map(&srcv, f, 0, size, BM_ACCESS_READ));
  memcpy(dst.data, srcv.data, size);
  bm_view_unmap(&srcv);
  bm_view_unmap(&dst);
  if (change != NULL) change(file);
  err = bm_dataset_publish(ds, NULL);
  if (err != 0) ck_assert_bm_ok(bm_dataset_fail(ds));
  bm_dataset_close(ds);
  bm_source_close(f);
  return err;
}

static void rewrite_in_place(const char *file) {
  usleep(30000); /* past the file system's timestamp tick */
  bm_test_pwrite(file, 100, "X", 1);
}
static void replace_by_rename(const char *file) {
  char tmp[512];
  snprintf(tmp, sizeof(tmp), "%s.new", file);
  bm_test_write_pattern(tmp, 1 << 20);
  ck_assert_int_eq(rename(tmp, file), 0);
}
static void grow(const char *file) { bm_test_truncate(file, (1 << 20) + 1); }

START_TEST(source_changed_during_load) {
  const char *name = ht_name("changed");
  const char *file = bm_test_path("src");
  bm_dataset_t *rd;
  bm_test_write_pattern(file, 1 << 20);
  ck_assert_bm_ok(load_with(name, file, NULL));
  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, NULL));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(name));

  ck_assert_bm_err(load_with(name, file, rewrite_in_place), BM_ECHANGED);
  ck_assert_bm_err(bm_dataset_open(&rd, name, 0, NULL), BM_ENOENT); /* nothing left */
  ck_assert_bm_err(load_with(name, file, replace_by_rename), BM_ECHANGED);
  ck_assert_bm_err(bm_dataset_open(&rd, name, 0, NULL), BM_ENOENT);
  bm_test_write_pattern(file, 1 << 20);
  ck_assert_bm_err(load_with(name, file, grow), BM_ECHANGED);
  ck_assert_bm_err(bm_dataset_open(&rd, name, 0, NULL), BM_ENOENT);
}
END_TEST

/* A writer that never publishes: argv NAME. Creates the dataset, says so on stdout (a line),
 * then waits to be killed. */
BM_TEST_CHILD(loading_writer) {
  bm_dataset_t *ds;
  bm_dataset_opts_t o;
  if (argc < 1) return 90;
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  o.large = BM_LARGE_OFF;
  if (bm_dataset_create(&ds, argv[0], &o, NULL) != 0) return 91;
  for (;;) pause();
}

/* A reader: argv NAME; exits with the bm_dataset_open result negated (0 ready, 17 for
 * BM_EINCOMPLETE with state loading, 19 for BM_EABANDONED). */
BM_TEST_CHILD(dataset_reader) {
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  int r;
  if (argc < 1) return 90;
  r = bm_dataset_open(&ds, argv[0], 0, &info);
  bm_dataset_close(ds);
  if (r == BM_EINCOMPLETE && info.state != BM_STATE_LOADING) return 80;
  return -r;
}

static int wait_for_loading(const char *name) {
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  int i, r = BM_ENOENT;
  for (i = 0; i < 500; i++) {
    r = bm_dataset_open(&ds, name, 0, &info);
    if (r == BM_EINCOMPLETE && info.state == BM_STATE_LOADING) return 0;
    usleep(10000);
  }
  return r;
}

START_TEST(pid_namespaces) {
  const char *name = ht_name("pidns"), *name2 = ht_name("pidns2");
  const char *w[] = {"/usr/bin/unshare", "--pid", "--fork", "--kill-child", bm_test_self(),
                     "--child", "loading_writer", name, NULL};
  const char *r[] = {"/usr/bin/unshare", "--pid", "--fork", bm_test_self(), "--child",
                     "dataset_reader", name2, NULL};
  bm_dataset_t *ds, *mine;
  bm_dataset_info_t info;
  bm_dataset_opts_t o;
  pid_t pid;
  int rc;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot make PID namespaces with unshare");
  if (access(w[0], X_OK) != 0) BM_TEST_SKIP("no %s", w[0]);

  /* A writer in its own PID namespace (its pid there means nothing here) is alive while it
   * lives, and abandoned once killed: the lock, not the pid, decides. */
  pid = spawn_child(w);
  ck_assert_bm_ok(wait_for_loading(name));
  ck_assert_bm_err(bm_dataset_open(&ds, name, 0, &info), BM_EINCOMPLETE);
  ck_assert_int_eq(info.state, BM_STATE_LOADING);
  kill(pid, SIGKILL); /* --kill-child: the writer dies with unshare */
  wait_child(pid);
  {
    int i;
    for (i = 0; i < 200 && bm_dataset_open(&ds, name, 0, &info) != BM_EABANDONED; i++)
      usleep(10000);
  }
  ck_assert_bm_err(bm_dataset_open(&ds, name, 0, &info), BM_EABANDONED);
  ck_assert_bm_ok(bm_section_remove(name)); /* no live writer: a plain remove does it */

  /* A reader in another PID namespace sees this live writer as loading, not abandoned. */
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  o.large = BM_LARGE_OFF;
  ck_assert_bm_ok(bm_dataset_create(&mine, name2, &o, NULL));
  rc = wait_child(spawn_child(r));
  ck_assert_msg(rc == -BM_EINCOMPLETE, "reader in a PID namespace: %d", rc);
  ck_assert_bm_ok(bm_dataset_publish(mine, NULL));
  rc = wait_child(spawn_child(r));
  ck_assert_msg(rc == 0, "reader in a PID namespace after publish: %d", rc);
  bm_dataset_close(mine);
  ck_assert_bm_ok(bm_section_remove(name2));
}
END_TEST

/* Runs fn(arg) as user nobody (65534) in a forked child; returns its exit status. */
static int as_nobody(int (*fn)(const char *), const char *arg) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
    _exit(fn(arg));
  }
  return wait_child(pid);
}

static int nobody_open(const char *name) {
  bm_dataset_t *ds;
  int r = bm_dataset_open(&ds, name, BM_OPEN_VERIFY, NULL);
  bm_dataset_close(ds);
  return -r;
}

static int nobody_plant(const char *name) {
  char p[256];
  int fd;
  snprintf(p, sizeof(p), "%s/%s", mnt, name);
  if ((fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0644)) < 0) return 70;
  close(fd);
  return 0;
}

START_TEST(another_user) {
  const char *shared = ht_name("shared"), *priv = ht_name("private");
  bm_dataset_t *a, *b, *rd;
  bm_dataset_info_t info;
  uint64_t h;
  char p[256];
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);

  /* Readers need only read permission: 0644 serves another user, 0600 does not. */
  a = make(shared, 100000, 0644, BM_LARGE_OFF, NULL, 1, NULL);
  b = make(priv, 100000, 0, BM_LARGE_OFF, NULL, 1, &h);
  ck_assert_int_eq(as_nobody(nobody_open, shared), 0);
  ck_assert_int_eq(as_nobody(nobody_open, priv), -BM_EACCES);

  /* Another user plants the same name on a world-writable hugetlbfs mount: your own
   * section stays yours to read, stat and remove. */
  ck_assert_int_eq(as_nobody(nobody_plant, priv), 0);
  ck_assert_bm_ok(bm_dataset_open(&rd, priv, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.xxh3, h);
  snprintf(p, sizeof(p), "/dev/shm/%s", priv);
  ck_assert_str_eq(info.path, p);
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(priv)); /* ours, in /dev/shm */
  ck_assert(!ht_exists("/dev/shm", priv));
  ck_assert(ht_exists(mnt, priv)); /* theirs stays */
  bm_dataset_close(a);
  bm_dataset_close(b);
  ck_assert_bm_ok(bm_section_remove(shared));
}
END_TEST

/* Racing creators in both places: argv NAME GO LARGE MOUNT; exits 0 made, 17 EEXIST. */
BM_TEST_CHILD(both_places_creator) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  int r;
  if (argc < 4) return 90;
  memset(&o, 0, sizeof(o));
  o.size = 100000;
  o.large = atoi(argv[2]);
  o.mount = argv[3];
  while (access(argv[1], F_OK) != 0) usleep(200);
  r = bm_dataset_create(&ds, argv[0], &o, NULL);
  if (r == BM_EEXIST) return 17;
  if (r != 0) return 1;
  r = bm_dataset_publish(ds, NULL);
  bm_dataset_close(ds);
  return r == 0 ? 0 : 2;
}

START_TEST(racing_in_both_places) {
  enum { N = 6, ROUNDS = 8 };
  const char *go = bm_test_path("go");
  int round, i, won, lost, huge_won = 0;
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  for (round = 0; round < ROUNDS; round++) {
    char nm[96];
    pid_t pids[N];
    snprintf(nm, sizeof(nm), "%s-%d", ht_name("both"), round);
    unlink(go);
    for (i = 0; i < N; i++) {
      const char *args[] = {nm, go, i % 2 ? "2" : "0", mnt, NULL};
      pids[i] = (pid_t)bm_test_start("both_places_creator", args);
    }
    usleep(20000);
    bm_test_truncate(go, 0);
    for (won = lost = i = 0; i < N; i++) {
      int rc = wait_child(pids[i]);
      ck_assert_msg(rc == 0 || rc == 17, "round %d: a creator exited %d", round, rc);
      won += rc == 0;
      lost += rc == 17;
    }
    ck_assert_msg(won == 1 && lost == N - 1, "round %d: %d won, %d got EEXIST", round, won, lost);
    ck_assert_msg(ht_exists(mnt, nm) != ht_exists("/dev/shm", nm), "round %d: in both places", round);
    huge_won += ht_exists(mnt, nm);
    ck_assert_bm_ok(bm_section_remove(nm));
  }
  fprintf(stderr, "dataset: racing in both places: %d rounds of %d, one winner each (%d on "
          "hugetlbfs)\n", ROUNDS, N, huge_won);
}
END_TEST

START_TEST(pool_too_small) {
  const char *name = ht_name("short"), *fallback = ht_name("fallback");
  bm_dataset_opts_t o;
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  bm_large_t large;
  char why[96];
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  memset(&o, 0, sizeof(o));
  o.size = 5 * MiB; /* + trailer: 3 pages of 2 MiB; the pool has 2 free */
  o.large = BM_LARGE_ON;
  o.mount = mnt;
  ck_assert_bm_err(bm_dataset_create(&ds, name, &o, &large), BM_ENOLARGE);
  ck_assert_int_eq(large.reason, BM_REASON_POOL_TOO_SMALL);
  ck_assert_uint_eq(large.pages_needed, 3);
  ck_assert_uint_eq(large.pages_free, 2);
  ck_assert_str_eq(bm_large_describe(&large, why, sizeof(why)),
                   "pool too small: 2 of 3 pages free");
  ck_assert(!ht_exists(mnt, name) && !ht_exists("/dev/shm", name));
  ck_assert_int_eq(ht_read_ll(ht_pool(2048, "free_hugepages")), 2); /* all given back */

  /* auto falls back, and the trailer says what was asked and why not, as load said. */
  o.large = BM_LARGE_AUTO;
  ck_assert_bm_ok(bm_dataset_create(&ds, fallback, &o, &large));
  ck_assert_int_eq(large.obtained, 0);
  ck_assert_bm_ok(bm_dataset_publish(ds, NULL));
  bm_dataset_close(ds);
  ck_assert_bm_ok(bm_dataset_open(&rd, fallback, 0, &info));
  ck_assert_int_eq(info.large.requested, BM_LARGE_AUTO);
  ck_assert_int_eq(info.large.reason, large.reason);
  ck_assert_int_eq(info.large.obtained, 0);
  ck_assert_uint_eq(info.large.pages_needed, large.pages_needed);
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(fallback));
}
END_TEST

/* ---- Limits, through the real OS: a private mount namespace with a small tmpfs on
 * /dev/shm or a hugetlbfs mount with size= / nr_inodes= (every other hugetlbfs mount
 * detached there, so a system /dev/hugepages makes no difference), and a memory cgroup.
 * Each runs in a forked child (its namespace and cgroup die with it) that returns 0 or
 * prints what failed and returns 1. */
#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);          \
      return 1;                                                                    \
    }                                                                              \
  } while (0)
#define CHECK_ERR(expr, want)                                                      \
  do {                                                                             \
    int r_ = (expr);                                                               \
    if (r_ != (want)) {                                                            \
      fprintf(stderr, "%s:%d: %s gave %s, not %s\n", __FILE__, __LINE__, #expr,    \
              bm_err_name(r_), bm_err_name(want));                                 \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

static int in_child(int (*fn)(const char *), const char *arg, int private_mounts) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (private_mounts) {
      FILE *f;
      char line[1024], dev[256], dir[512], type[64];
      if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        _exit(76);
      /* Only the test's own hugetlbfs mounts from here on. */
      if ((f = fopen("/proc/mounts", "r")) != NULL) {
        while (fgets(line, sizeof(line), f))
          if (sscanf(line, "%255s %511s %63s", dev, dir, type) == 3 &&
              strcmp(type, "hugetlbfs") == 0)
            umount2(dir, MNT_DETACH);
        fclose(f);
      }
    }
    _exit(fn(arg));
  }
  return wait_child(pid);
}

static int small_shm_child(const char *unused) {
  bm_dataset_opts_t o;
  bm_preflight_t pf, pf2;
  bm_large_t large;
  bm_dataset_t *ds;
  char why[BM_DESCRIBE_MAX * 2];
  (void)unused;
  CHECK(mount("bmtest", "/dev/shm", "tmpfs", 0, "size=8M,mode=1777") == 0);
  memset(&o, 0, sizeof(o));
  o.size = 16 * MiB;
  o.large = BM_LARGE_OFF;
  o.preflight = &pf;
  CHECK_ERR(bm_dataset_create(&ds, "bmtest-room", &o, NULL), BM_ENOROOM);
  CHECK(pf.limit == BM_LIMIT_SHM);
  CHECK(pf.total == 8 * MiB && pf.free <= 8 * MiB && pf.shm_total == 8 * MiB);
  CHECK(pf.needed >= 16 * MiB);
  CHECK(strcmp(pf.where, "/dev/shm") == 0);
  CHECK(!ht_exists("/dev/shm", "bmtest-room")); /* nothing made */
  bm_preflight_describe(&pf, why, sizeof(why));
  fprintf(stderr, "dataset: small /dev/shm: %s\n", why);
  CHECK(strncmp(why, "needs 16.0 MiB, /dev/shm has 8.0 MiB free of 8.0 MiB (", 54) == 0);
  o.preflight = NULL;
  CHECK_ERR(bm_dataset_preflight(&o, &pf2), BM_ENOROOM);
  CHECK(pf2.limit == BM_LIMIT_SHM && pf2.needed == pf.needed);
  /* auto with no hugetlbfs mount: the fallback is short as well, and says why. */
  o.large = BM_LARGE_AUTO;
  CHECK_ERR(bm_dataset_create(&ds, "bmtest-room", &o, &large), BM_ENOROOM);
  CHECK(large.reason == BM_REASON_NO_MOUNT);
  /* What fits is made. */
  o.large = BM_LARGE_OFF;
  o.size = 2 * MiB;
  o.preflight = &pf;
  CHECK_ERR(bm_dataset_create(&ds, "bmtest-room", &o, NULL), 0);
  CHECK(pf.limit == BM_LIMIT_NONE && pf.shm_total == 8 * MiB);
  CHECK_ERR(bm_dataset_publish(ds, NULL), 0);
  bm_dataset_close(ds);
  CHECK_ERR(bm_section_remove("bmtest-room"), 0);
  return 0;
}

START_TEST(small_shm) {
  int rc;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot make a mount namespace with a small /dev/shm");
  rc = in_child(small_shm_child, NULL, 1);
  if (rc == 76) BM_TEST_SKIP("cannot make a private mount namespace (unshare CLONE_NEWNS)");
  ck_assert_msg(rc == 0, "small /dev/shm: child exited %d", rc);
}
END_TEST

static int mount_limits_child(const char *dir) {
  bm_dataset_opts_t o;
  bm_preflight_t pf;
  bm_large_t large;
  bm_dataset_t *ds, *rd;
  bm_dataset_info_t info;
  char why[BM_DESCRIBE_MAX], want[BM_DESCRIBE_MAX], p[600];
  const char *name = "bmtest-mountlimit";
  int fd;

  /* size=4M: 2 pages under the mount's limit, while the pool has 8 free. */
  CHECK(mount("bmtest", dir, "hugetlbfs", 0, "pagesize=2M,size=4M,mode=1777") == 0);
  memset(&o, 0, sizeof(o));
  o.size = 5 * MiB; /* + trailer: 3 pages */
  o.large = BM_LARGE_ON;
  o.mount = dir;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), BM_ENOLARGE);
  CHECK(large.reason == BM_REASON_MOUNT_LIMIT);
  CHECK(large.pages_needed == 3 && large.pages_free == 2 && large.mount_limit == 2);
  CHECK(strcmp(large.mount, dir) == 0);
  snprintf(want, sizeof(want), "hugetlbfs mount size limit: 2 of 3 pages free on %s (size= 2 pages)",
           dir);
  bm_large_describe(&large, why, sizeof(why));
  fprintf(stderr, "dataset: %s\n", why);
  CHECK(strcmp(why, want) == 0);
  CHECK(!ht_exists(dir, name) && !ht_exists("/dev/shm", name));
  CHECK(ht_read_ll(ht_pool(2048, "free_hugepages")) == 8); /* nothing taken */
  CHECK_ERR(bm_dataset_preflight(&o, &pf), BM_ENOLARGE);
  CHECK(pf.large.reason == BM_REASON_MOUNT_LIMIT && pf.large.pages_free == 2);

  /* auto falls back to /dev/shm and the trailer keeps the reason and the mount. */
  o.large = BM_LARGE_AUTO;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), 0);
  CHECK(!large.obtained && large.reason == BM_REASON_MOUNT_LIMIT);
  CHECK_ERR(bm_dataset_publish(ds, NULL), 0);
  bm_dataset_close(ds);
  CHECK(ht_exists("/dev/shm", name));
  CHECK_ERR(bm_dataset_open(&rd, name, 0, &info), 0);
  CHECK(info.large.reason == BM_REASON_MOUNT_LIMIT && info.large.pages_free == 2 &&
        info.large.pages_needed == 3 && info.large.mount_limit == 2);
  CHECK(strcmp(info.large.mount, dir) == 0);
  bm_dataset_close(rd);
  CHECK_ERR(bm_section_remove(name), 0);

  /* What fits the limit is had there. */
  o.size = 3 * MiB; /* 2 pages */
  o.large = BM_LARGE_ON;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), 0);
  CHECK(large.obtained && large.page_size == 2 * MiB && !ht_exists(dir, name)); /* anonymous until published */
  bm_dataset_close(ds); /* unpublished: removed */
  CHECK(!ht_exists(dir, name));
  /* Published: exactly the payload's size on the mount; removed, nothing of it is left
   * mapped or open (the mount can be taken away at once). */
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), 0);
  CHECK_ERR(bm_dataset_publish(ds, NULL), 0);
  bm_dataset_close(ds);
  {
    struct stat hs;
    char hp[600];
    snprintf(hp, sizeof(hp), "%s/%s", dir, name);
    CHECK(stat(hp, &hs) == 0 && (uint64_t)hs.st_size == 3 * MiB);
  }
  CHECK_ERR(bm_section_remove(name), 0);
  CHECK(!ht_exists(dir, name));
  CHECK(umount(dir) == 0);

  /* nr_inodes=2: the root directory and one file; with that one taken, none is free. */
  CHECK(mount("bmtest", dir, "hugetlbfs", 0, "pagesize=2M,nr_inodes=2,mode=1777") == 0);
  snprintf(p, sizeof(p), "%s/filler", dir);
  CHECK((fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600)) >= 0);
  close(fd);
  o.size = 1 * MiB;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), BM_ENOLARGE);
  CHECK(large.reason == BM_REASON_MOUNT_INODES && large.mount_limit == 2);
  snprintf(want, sizeof(want), "hugetlbfs mount inode limit: no inode free of 2 on %s (nr_inodes=)",
           dir);
  bm_large_describe(&large, why, sizeof(why));
  fprintf(stderr, "dataset: %s\n", why);
  CHECK(strcmp(why, want) == 0);
  o.large = BM_LARGE_AUTO;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, &large), 0);
  CHECK(large.reason == BM_REASON_MOUNT_INODES);
  bm_dataset_close(ds);
  CHECK(unlink(p) == 0);
  CHECK(umount(dir) == 0);
  return 0;
}

START_TEST(mount_limits) {
  char dir[64];
  int rc;
  if (huge_skip != NULL) BM_TEST_SKIP("%s", huge_skip);
  snprintf(dir, sizeof(dir), "/tmp/bmlim-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  rc = in_child(mount_limits_child, dir, 1);
  rmdir(dir);
  if (rc == 76) BM_TEST_SKIP("cannot make a private mount namespace (unshare CLONE_NEWNS)");
  ck_assert_msg(rc == 0, "hugetlbfs limits: child exited %d", rc);
}
END_TEST

/* The test's own finding of the caller's memory cgroup directory: v1's memory controller
 * when mounted, else v2 with memory among its controllers. *v1 says which. */
static int find_memcg(char *dir, size_t n, int *v1) {
  FILE *f = fopen("/proc/mounts", "r");
  char line[1024], dev[256], mdir[512], type[64], opts[512], m1[512] = "", m2[512] = "";
  char p1[512] = "", p2[512] = "";
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%255s %511s %63s %511s", dev, mdir, type, opts) == 4) {
      if (strcmp(type, "cgroup2") == 0 && !m2[0]) snprintf(m2, sizeof(m2), "%s", mdir);
      if (strcmp(type, "cgroup") == 0 && strstr(opts, "memory") != NULL && !m1[0])
        snprintf(m1, sizeof(m1), "%s", mdir);
    }
  fclose(f);
  if ((f = fopen("/proc/self/cgroup", "r")) == NULL) return -1;
  while (fgets(line, sizeof(line), f)) {
    char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    if (b == NULL) continue;
    b[strcspn(b, "\n")] = '\0';
    if (strncmp(line, "0::", 3) == 0) snprintf(p2, sizeof(p2), "%s", b + 1);
    else if (strstr(a, "memory") != NULL && strstr(a, "memory") < b) snprintf(p1, sizeof(p1), "%s", b + 1);
  }
  fclose(f);
  if (m1[0] && p1[0]) {
    *v1 = 1;
    snprintf(dir, n, "%s%s", m1, strcmp(p1, "/") == 0 ? "" : p1);
    return 0;
  }
  if (m2[0] && p2[0]) {
    *v1 = 0;
    snprintf(dir, n, "%s%s", m2, strcmp(p2, "/") == 0 ? "" : p2);
    return 0;
  }
  return -1;
}

static const char *memcg_dir;
static int memcg_child(const char *go) {
  bm_dataset_opts_t o;
  bm_preflight_t pf;
  bm_dataset_t *ds;
  char why[BM_DESCRIBE_MAX * 2];
  const char *name = ht_name("memcg");
  while (access(go, F_OK) != 0) usleep(1000); /* moved into the cgroup by now */
  memset(&o, 0, sizeof(o));
  o.size = 64 * MiB;
  o.large = BM_LARGE_OFF;
  o.preflight = &pf;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, NULL), BM_ENOROOM);
  CHECK(pf.limit == BM_LIMIT_CGROUP);
  CHECK(pf.total == 32 * MiB && pf.free <= 32 * MiB && pf.cgroup_limit == 32 * MiB);
  CHECK(strcmp(pf.where, memcg_dir) == 0);
  CHECK(!ht_exists("/dev/shm", name));
  bm_preflight_describe(&pf, why, sizeof(why));
  fprintf(stderr, "dataset: memory cgroup: %s\n", why);
  CHECK(strstr(why, "needs 64.0 MiB, memory cgroup ") == why);
  o.size = 4 * MiB;
  CHECK_ERR(bm_dataset_create(&ds, name, &o, NULL), 0);
  CHECK(pf.limit == BM_LIMIT_NONE && pf.cgroup_limit == 32 * MiB);
  CHECK_ERR(bm_dataset_publish(ds, NULL), 0);
  bm_dataset_close(ds);
  CHECK_ERR(bm_section_remove(name), 0);
  return 0;
}

START_TEST(memory_cgroup) {
  char base[600], dir[700], path[800], pidbuf[32];
  const char *go = bm_test_path("go");
  int v1, rc;
  pid_t pid;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot make a memory cgroup");
  if (find_memcg(base, sizeof(base), &v1) != 0) BM_TEST_SKIP("no memory cgroup controller here");
  snprintf(dir, sizeof(dir), "%s/bmtest-%ld", base, (long)getpid());
  if (mkdir(dir, 0755) != 0) BM_TEST_SKIP("cannot make a cgroup under %s: %s", base, strerror(errno));
  snprintf(path, sizeof(path), "%s/%s", dir, v1 ? "memory.limit_in_bytes" : "memory.max");
  if (ht_write_ll(path, (long long)(32 * MiB)) != 0) {
    rmdir(dir);
    BM_TEST_SKIP("cannot set %s (no memory controller for children?)", path);
  }
  memcg_dir = dir;
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) _exit(memcg_child(go));
  snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
  snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)pid);
  rc = ht_write_str(path, pidbuf);
  bm_test_truncate(go, 0);
  if (rc != 0) kill(pid, SIGKILL);
  rc = rc != 0 ? -1 : wait_child(pid);
  if (rc == -1) wait_child(pid);
  rmdir(dir);
  ck_assert_msg(rc == 0, "memory cgroup: child exited %d", rc);
}
END_TEST

/* publish of a buffer whose backing file is cut short under it: the guarded copy into the
 * fill's buffer (src/fill.c, on a worker thread) catches the SIGBUS, the error is the
 * caller's buffer's (BM_ETRUNCATED, not a full /dev/shm), and nothing is left under the
 * name. */
START_TEST(publish_from_a_cut_mapping) {
  const char *name = ht_name("cutbuf");
  const char *path = bm_test_path("cut");
  /* 4 MiB: hashed on a thread of its own beside the writes; 64 KiB: on the caller's */
  const size_t n = _i == 0 ? 4u << 20 : 64u << 10;
  bm_publish_opts_t o;
  bm_load_result_t r;
  unsigned char *m;
  char p[300];
  struct stat sb;
  int fd;
  bm_test_write_pattern(path, n);
  fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
  ck_assert_ptr_ne(m, MAP_FAILED);
  ck_assert_int_eq(ftruncate(fd, (off_t)(n / 2)), 0);
  bm_publish_opts_init(&o);
  o.format = BM_FORMAT_RAW;
  o.dataset.large = BM_LARGE_OFF;
  ck_assert_bm_err(bm_dataset_publish_buffer(NULL, name, m, n, &o, &r), BM_ETRUNCATED);
  ck_assert_int_eq(r.failed_at, BM_LOAD_AT_FILL);
  snprintf(p, sizeof(p), "/dev/shm/%s", name);
  ck_assert_msg(stat(p, &sb) != 0, "%s left", p);
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#%s", name);
  ck_assert_msg(stat(p, &sb) != 0, "%s left", p);
  munmap(m, n);
  close(fd);
}
END_TEST

Suite *dataset_suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("lifecycle");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, lifecycle_and_mode);
  tcase_add_test(tc, nothing_removed_that_is_not_yours);
  tcase_add_test(tc, source_changed_during_load);
  tcase_add_loop_test(tc, publish_from_a_cut_mapping, 0, 2);
  tcase_add_test(tc, pid_namespaces);
  suite_add_tcase(s, tc);
  tc = tcase_create("users_and_places");
  tcase_add_unchecked_fixture(tc, huge_setup_8, huge_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, another_user);
  tcase_add_test(tc, racing_in_both_places);
  suite_add_tcase(s, tc);
  tc = tcase_create("pool");
  tcase_add_unchecked_fixture(tc, huge_setup_2, huge_teardown);
  tcase_add_test(tc, pool_too_small);
  suite_add_tcase(s, tc);
  tc = tcase_create("limits");
  tcase_add_unchecked_fixture(tc, huge_setup_8, huge_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, small_shm);
  tcase_add_test(tc, mount_limits);
  tcase_add_test(tc, memory_cgroup);
  suite_add_tcase(s, tc);
  return s;
}

#else /* !__linux__ */

START_TEST(dataset) {
  BM_TEST_SKIP("these cases drive Linux (flock, PID namespaces, hugetlbfs); Windows has its "
               "own in check_win");
}
END_TEST

Suite *dataset_suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("lifecycle");
  tcase_add_test(tc, dataset);
  suite_add_tcase(s, tc);
  return s;
}
#endif
