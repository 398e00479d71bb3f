/* Hostile shared memory and racing processes (POSIX: the hostile side works on
 * /dev/shm/NAME with plain open/pwrite/ftruncate). A reader that opens, decodes, verifies
 * and reads a dataset section through the public API while a spawned child scribbles over
 * its trailer or cuts the section short must end every attempt in a clean error or a fully
 * verified success, never in a signal and never reading past what it mapped; writers that
 * race to create one name: exactly one wins, the others get BM_EEXIST. Another user
 * (nobody) holding every lock it can take (the /dev/shm directory's, an abandoned
 * section's through a read-only descriptor) blocks and spoofs nobody; objects planted under
 * a name (FIFO, symlink, directory, socket) are listed, named and removable. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#ifndef _WIN32
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PAYLOAD ((3u << 20) + 12345u) /* not a multiple of any page */
#define HOSTILE_SECONDS 3

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t spawn_child(const char *name, const char *const *args) {
  long pid = bm_test_start(name, args);
  ck_assert_int_gt(pid, 0);
  return (pid_t)pid;
}
#define wait_child(pid) bm_test_wait(pid)

/* Makes dataset NAME holding the pattern through the library's writer calls, ready;
 * returns the payload's XXH3 computed here, by xxHash, over the bytes this test wrote, and
 * checks the library published that very checksum. */
static uint64_t make_dataset(const char *name) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  bm_view_t v;
  uint64_t i, h;
  unsigned char *p;

  memset(&o, 0, sizeof(o));
  o.size = PAYLOAD;
  o.large = BM_LARGE_OFF;
  o.source = "hostile";
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_view_map(&v, bm_dataset_source(ds), 0, PAYLOAD, BM_ACCESS_WRITE));
  p = v.data;
  for (i = 0; i < PAYLOAD; i++) p[i] = bm_test_byte(i);
  h = XXH3_64bits(p, PAYLOAD);
  ck_assert_bm_ok(bm_view_unmap(&v));
  ck_assert_bm_ok(bm_dataset_publish(ds, &info));
  ck_assert_uint_eq(info.xxh3, h);
  bm_dataset_close(ds);
  return h;
}

/* The hostile writer: works on /dev/shm/NAME with plain calls for SECONDS seconds.
 * MODE scribble: random bytes over random parts of the trailer, the good trailer put back
 * now and then; truncate: the file cut to a random smaller (or larger) size, then put back
 * whole. argv: NAME MODE SECONDS SEED */
BM_TEST_CHILD(hostile_writer) {
  char path[512];
  unsigned char *good, junk[256];
  struct stat s;
  double end;
  unsigned seed;
  size_t size;
  int fd, scribble, k;

  if (argc < 4) return 90;
  snprintf(path, sizeof(path), "/dev/shm/%s", argv[0]);
  scribble = strcmp(argv[1], "scribble") == 0;
  end = now_s() + atof(argv[2]);
  seed = (unsigned)strtoul(argv[3], NULL, 10);
  if ((fd = open(path, O_RDWR)) < 0 || fstat(fd, &s) != 0) return 91;
  size = (size_t)s.st_size;
  if ((good = malloc(size)) == NULL || pread(fd, good, size, 0) != (ssize_t)size) return 92;
  while (now_s() < end) {
    if (scribble) {
      size_t n = 1 + rand_r(&seed) % sizeof(junk);
      size_t at = size - BM_TRAILER_SIZE + rand_r(&seed) % BM_TRAILER_SIZE;
      if (at + n > size) n = size - at;
      for (k = 0; k < (int)n; k++) junk[k] = (unsigned char)rand_r(&seed);
      if (pwrite(fd, junk, n, (off_t)at) != (ssize_t)n) return 93;
      usleep(rand_r(&seed) % 500);
      if (rand_r(&seed) % 3 == 0) {
        if (pwrite(fd, good + size - BM_TRAILER_SIZE, BM_TRAILER_SIZE,
                   (off_t)(size - BM_TRAILER_SIZE)) != BM_TRAILER_SIZE)
          return 94;
        usleep(rand_r(&seed) % 3000);
      }
    } else {
      static const int cuts[] = {0, 1, 4096, 65536, 1 << 20, -4096, -1, 8192 /* grow */};
      int c = cuts[rand_r(&seed) % (sizeof(cuts) / sizeof(cuts[0]))];
      off_t to = c == 8192 ? (off_t)(size + 8192) : c < 0 ? (off_t)size + c : (off_t)c;
      if (ftruncate(fd, to) != 0) return 95;
      usleep(rand_r(&seed) % 2000);
      if (ftruncate(fd, (off_t)size) != 0 || pwrite(fd, good, size, 0) != (ssize_t)size)
        return 96;
      usleep(rand_r(&seed) % 3000);
    }
  }
  /* Leave it whole, so that the parent's last look may succeed. */
  if (ftruncate(fd, (off_t)size) != 0 || pwrite(fd, good, size, 0) != (ssize_t)size) return 97;
  close(fd);
  free(good);
  return 0;
}

/* The reader's side: the steps a program reading a dataset takes with the public API. */
typedef struct {
  XXH3_state_t *x;
  const unsigned char *p;
  size_t n;
} hash_t;

static int hash_fn(void *arg) {
  hash_t *h = arg;
  XXH3_64bits_update(h->x, h->p, h->n);
  return 0;
}

typedef struct {
  unsigned long tries, ok, refused[64], mismatch;
} tally_t;

/* One attempt: 0 verified success, a BM_E* code, 1 for a checksum that did not match, or
 * 2 for a read that verified but is not the dataset (never allowed). No ck_assert here:
 * spawned children call it too. */
static int read_once(const char *name, uint64_t want_xxh3) {
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t t;
  bm_source_t *src;
  bm_window_opts_t o;
  bm_window_t w;
  hash_t h;
  uint64_t got;
  int r;

  if ((r = bm_dataset_open(&ds, name, 0, &t)) != 0) return r;
  src = bm_dataset_source(ds);
  memset(&o, 0, sizeof(o));
  o.length = t.bytes;
  o.window = 256u << 10;
  o.prefault = 1;
  o.readahead = 1;
  if ((r = bm_window_init(&w, src, &o)) != 0) goto out;
  if ((h.x = XXH3_createState()) == NULL) {
    bm_window_close(&w);
    r = BM_ENOMEM;
    goto out;
  }
  XXH3_64bits_reset(h.x);
  while ((r = bm_window_next(&w)) == 1) {
    h.p = w.data + w.overlap;
    h.n = w.length - w.overlap;
    if ((r = bm_guard_call(hash_fn, &h)) != 0) break;
  }
  bm_window_close(&w);
  got = XXH3_64bits_digest(h.x);
  XXH3_freeState(h.x);
  if (r != 0) goto out;
  if (got != t.xxh3) {
    r = 1;
    goto out;
  }
  /* Verified against the trailer: then it must be what was written, every byte. */
  if (t.bytes != PAYLOAD || got != want_xxh3) {
    fprintf(stderr, "a verified read gave %llu bytes hashing to %016llx, not the dataset\n",
            (unsigned long long)t.bytes, (unsigned long long)got);
    r = 2;
  }
out:
  bm_dataset_close(ds);
  return r;
}

static void tally_add(tally_t *t, int r) {
  t->tries++;
  ck_assert_msg(r != 2, "a verified read was not the dataset");
  if (r == 0) t->ok++;
  else if (r == 1) t->mismatch++;
  else {
    ck_assert_msg(r < 0 && r > BM__ERR_MIN, "attempt returned %d, no BM_E* code", r);
    t->refused[-r]++;
  }
}

static void tally_print(const char *what, const tally_t *t) {
  char b[512] = "";
  int i;
  for (i = 1; i < 64; i++)
    if (t->refused[i] != 0)
      snprintf(b + strlen(b), sizeof(b) - strlen(b), " %s %lu", bm_err_name(-i), t->refused[i]);
  fprintf(stderr, "hostile: %s: %lu attempts: %lu verified, %lu checksum refusals,%s\n", what,
          t->tries, t->ok, t->mismatch, b[0] ? b : " no other refusal");
}

static int count_fds(void) {
  char p[64];
  int i, n = 0;
  for (i = 0; i < 1024; i++) {
    snprintf(p, sizeof(p), "/proc/self/fd/%d", i);
    n += access(p, F_OK) == 0;
  }
  return n;
}

static void hostile(const char *mode) {
  const char *name = ht_name(mode);
  char secs[16];
  const char *args[5];
  uint64_t want = make_dataset(name);
  tally_t t;
  pid_t pid;
  int rc, fds = count_fds(), refused = 0, i;

  memset(&t, 0, sizeof(t));
  tally_add(&t, read_once(name, want)); /* untouched: must succeed */
  ck_assert_msg(t.ok == 1, "reading the untouched dataset failed");
  snprintf(secs, sizeof(secs), "%d", HOSTILE_SECONDS);
  args[0] = name;
  args[1] = mode;
  args[2] = secs;
  args[3] = "12345";
  args[4] = NULL;
  pid = spawn_child("hostile_writer", args);
  while (waitpid(pid, &rc, WNOHANG) == 0) tally_add(&t, read_once(name, want));
  ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "hostile writer: status 0x%x", rc);
  tally_add(&t, read_once(name, want)); /* left whole: must succeed again */
  ck_assert_msg(read_once(name, want) == 0, "reading the restored dataset failed");
  tally_print(mode, &t);
  for (i = 1; i < 64; i++) refused += t.refused[i] != 0;
  ck_assert_msg(t.mismatch + refused > 0, "the hostile writer never got in the way");
  ck_assert_int_eq(count_fds(), fds);
  ck_assert_bm_ok(bm_section_remove(name));
}

static int lock_fd = -1;
static void shm_setup(void) {
  ht_init_run();
  lock_fd = ht_lock(LOCK_SH);
}
static void shm_teardown(void) {
  ht_sweep_dir("/dev/shm");
  ht_unlock(&lock_fd);
}

START_TEST(scribbled_trailer) { hostile("scribble"); }
END_TEST

START_TEST(truncated_section) { hostile("truncate"); }
END_TEST

/* Racing creators: argv NAME GO_FILE. Waits until GO_FILE exists, then creates NAME and
 * fills it; exits 0 when it made the section, 17 on BM_EEXIST, 1 otherwise. */
BM_TEST_CHILD(racing_creator) {
  bm_section_opts_t o;
  bm_source_t *src;
  int r;
  if (argc < 2) return 90;
  while (access(argv[1], F_OK) != 0) usleep(100);
  memset(&o, 0, sizeof(o));
  o.size = 1u << 20;
  r = bm_section_create(&src, argv[0], &o, NULL);
  if (r == BM_EEXIST) return 17;
  if (r != 0) {
    fprintf(stderr, "racing creator: %s\n", bm_err_name(r));
    return 1;
  }
  bm_source_close(src);
  return 0;
}

START_TEST(racing_creators) {
  enum { N = 6, ROUNDS = 20 };
  const char *go = bm_test_path("go");
  int round, i, won, lost;
  for (round = 0; round < ROUNDS; round++) {
    char nm[96];
    const char *args[3];
    pid_t pids[N];
    snprintf(nm, sizeof(nm), "%s-%d", ht_name("race"), round);
    args[0] = nm;
    args[1] = go;
    args[2] = NULL;
    unlink(go);
    for (i = 0; i < N; i++) pids[i] = spawn_child("racing_creator", args);
    usleep(20000);
    bm_test_truncate(go, 0); /* go */
    for (won = lost = i = 0; i < N; i++) {
      int rc = wait_child(pids[i]);
      ck_assert_msg(rc == 0 || rc == 17, "round %d: a creator exited %d", round, rc);
      won += rc == 0;
      lost += rc == 17;
    }
    ck_assert_msg(won == 1 && lost == N - 1, "round %d: %d won, %d got EEXIST", round, won, lost);
    ck_assert_bm_ok(bm_section_remove(nm));
  }
  fprintf(stderr, "hostile: racing creators: %d rounds of %d, one winner each\n", ROUNDS, N);
}
END_TEST

/* Readers of one section while a writer makes another: argv NAME SECONDS; reads NAME over
 * and over; exits 0 when every read was verified. */
BM_TEST_CHILD(steady_reader) {
  double end;
  uint64_t want;
  int n = 0, r;
  if (argc < 3) return 90;
  end = now_s() + atof(argv[1]);
  want = strtoull(argv[2], NULL, 16);
  do {
    if ((r = read_once(argv[0], want)) != 0) {
      fprintf(stderr, "steady reader: read %d: %s\n", n, r > 0 ? "checksum" : bm_err_name(r));
      return 1;
    }
    n++;
  } while (now_s() < end);
  return 0;
}

START_TEST(readers_while_a_writer_loads) {
  enum { READERS = 3 };
  const char *a = ht_name("steady"), *b = ht_name("loading");
  char hex[32];
  const char *args[4];
  pid_t pids[READERS];
  uint64_t want = make_dataset(a);
  int i, made = 0;
  double end;
  snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)want);
  args[0] = a;
  args[1] = "2";
  args[2] = hex;
  args[3] = NULL;
  for (i = 0; i < READERS; i++) pids[i] = spawn_child("steady_reader", args);
  end = now_s() + 2;
  while (now_s() < end) { /* the writer: make, check, remove the other section */
    ck_assert_uint_eq(make_dataset(b), want);
    ck_assert_int_eq(read_once(b, want), 0);
    ck_assert_bm_ok(bm_section_remove(b));
    made++;
  }
  for (i = 0; i < READERS; i++)
    ck_assert_msg(wait_child(pids[i]) == 0, "reader %d failed", i);
  ck_assert_bm_ok(bm_section_remove(a));
  fprintf(stderr, "hostile: %d readers stayed verified while %d sections were loaded\n", READERS,
          made);
}
END_TEST

/* ---- Other users: nobody (65534) in a forked child holds every lock it can take, and the
 * library's calls go on for everyone else. */

/* A forked child as user nobody that runs fn(arg), says so through a pipe (0 done, or its
 * error), then holds what it took until the parent closes its end. */
typedef struct {
  pid_t pid;
  int go_rd; /* the parent reads the child's word here */
  int hold_wr; /* the parent closes this to let the child go */
} nobody_t;

static int nobody_start(nobody_t *n, int (*fn)(const char *arg), const char *arg) {
  int go[2], hold[2], r;
  char c;
  ck_assert_int_eq(pipe(go), 0);
  ck_assert_int_eq(pipe(hold), 0);
  n->pid = fork();
  ck_assert_int_ge(n->pid, 0);
  if (n->pid == 0) {
    close(go[0]);
    close(hold[1]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
    c = (char)fn(arg);
    if (write(go[1], &c, 1) != 1) _exit(98);
    if (read(hold[0], &c, 1) < 0) _exit(97); /* EOF: the parent is done */
    _exit(0);
  }
  close(go[1]);
  close(hold[0]);
  n->go_rd = go[0];
  n->hold_wr = hold[1];
  c = 100;
  r = (int)read(n->go_rd, &c, 1);
  return r == 1 ? c : 100;
}

static int nobody_end(nobody_t *n) {
  close(n->hold_wr);
  close(n->go_rd);
  return wait_child(n->pid);
}

/* nobody takes the lock that creators once took (flock on /dev/shm) and the same on every
 * hugetlbfs mount it can open. */
static int hold_dir_locks(const char *unused) {
  bm_mount_t m;
  int fd, i;
  (void)unused;
  if ((fd = open("/dev/shm", O_RDONLY | O_DIRECTORY)) < 0) return 1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return 2;
  for (i = 0; bm_sysinfo_mount(i, &m) == 0; i++)
    if ((fd = open(m.path, O_RDONLY | O_DIRECTORY)) >= 0) flock(fd, LOCK_EX | LOCK_NB);
  return 0; /* the descriptors stay open: the locks are held until the child exits */
}

START_TEST(nobody_holds_the_directory_lock) {
  const char *name = ht_name("dirlock");
  nobody_t n;
  double t0;
  int rc;
  bm_dataset_t *rd;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot become another user (nobody)");
  ck_assert_int_eq(nobody_start(&n, hold_dir_locks, NULL), 0);
  /* Everyone else's create, publish, open and remove go on at once (they waited 10 s, then
   * failed with BM_EBUSY, while the directory lock was the creators' lock). */
  t0 = now_s();
  make_dataset(name);
  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, NULL));
  bm_dataset_close(rd);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert_msg(now_s() - t0 < 2.0, "took %.1f s while nobody held the lock", now_s() - t0);
  rc = nobody_end(&n);
  ck_assert_int_eq(rc, 0);
  fprintf(stderr, "hostile: nobody's flock on /dev/shm held: create, open, remove in %.3f s\n",
          now_s() - t0);
}
END_TEST

/* A writer that dies while loading: forked, makes NAME (mode 0644, loading), says so and is
 * killed. Returns its pid. */
static pid_t abandon(const char *name, unsigned mode) {
  int p[2];
  pid_t pid;
  char c = 1;
  ck_assert_int_eq(pipe(p), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    bm_dataset_opts_t o;
    bm_dataset_t *ds;
    memset(&o, 0, sizeof(o));
    o.size = 100000;
    o.mode = mode;
    o.large = BM_LARGE_OFF;
    c = bm_dataset_create(&ds, name, &o, NULL) == 0 ? 0 : 1;
    if (write(p[1], &c, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(p[1]);
  ck_assert_int_eq(read(p[0], &c, 1), 1);
  close(p[0]);
  ck_assert_int_eq(c, 0);
  kill(pid, SIGKILL);
  wait_child(pid);
  return pid;
}

/* nobody, who may read the abandoned 0644 section, takes every lock a read-only descriptor
 * can: flock (which the writer lock once was) and an OFD read lock on the writer's byte;
 * the write lock must be refused. */
static int hold_section_locks(const char *name) {
  char p[512];
  struct flock fl;
  int fd;
  /* The writer's lock is on the dataset's metadata, bulkmap#NAME (docs/datasets.md). */
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#%s", name);
  if ((fd = open(p, O_RDONLY | O_NONBLOCK)) < 0) return 1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return 2;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno != EBADF) return 3;
  fl.l_type = F_RDLCK;
  fl.l_len = 0; /* the whole file */
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return 4;
  return 0;
}

/* Names in shared directories (docs/datasets.md): only NAME and bulkmap#NAME are taken first
 * come; what bulkmap makes besides is anonymous or random. User nobody plants, in
 * /dev/shm, every name the previous layout used predictably (bulkmap#rm#PID#N,
 * bulkmap#gen#NAME#PID#N, bulkmap#exit#PID) for the pids the next processes will get, as
 * files, FIFOs and symlinks to a file of root's, and names like the new ones' temporaries:
 * root's load, replace, wait, rm and reclaim of NAME all go through, and the symlink's
 * target is never written. Printed: the fs.protected_* settings it ran with. */
static const char *planted_name;
static int plant_names(const char *victim) {
  char p[600];
  pid_t me = getpid();
  int k, i;
  for (k = 1; k <= 64; k++) {
    long pid = (long)me + k;
    for (i = 1; i <= 3; i++) {
      snprintf(p, sizeof(p), "/dev/shm/bulkmap#rm#%ld#%d", pid, i);
      close(open(p, O_CREAT | O_EXCL | O_WRONLY, 0600));
      snprintf(p, sizeof(p), "/dev/shm/bulkmap#gen#%s#%ld#%d", planted_name, pid, i);
      if (symlink(victim, p) != 0) return 1;
    }
    snprintf(p, sizeof(p), "/dev/shm/bulkmap#exit#%ld", pid);
    if (mkfifo(p, 0666) != 0) return 2;
  }
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#tmp#%032d", 0);
  if (symlink(victim, p) != 0) return 3;
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#%s#%032d", planted_name, 0);
  if (symlink(victim, p) != 0) return 4;
  return 0;
}

static void unplant_names(pid_t base) {
  char p[600];
  int k, i;
  for (k = 1; k <= 64; k++) {
    long pid = (long)base + k;
    for (i = 1; i <= 3; i++) {
      snprintf(p, sizeof(p), "/dev/shm/bulkmap#rm#%ld#%d", pid, i);
      unlink(p);
      snprintf(p, sizeof(p), "/dev/shm/bulkmap#gen#%s#%ld#%d", planted_name, pid, i);
      unlink(p);
    }
    snprintf(p, sizeof(p), "/dev/shm/bulkmap#exit#%ld", pid);
    unlink(p);
  }
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#tmp#%032d", 0);
  unlink(p);
  snprintf(p, sizeof(p), "/dev/shm/bulkmap#%s#%032d", planted_name, 0);
  unlink(p);
}

/* fs.protected_{regular,fifos,symlinks} (k 0..2) set to v; the old value back (-1: none). */
static int set_protected(int k, int v) {
  static const char *const knobs[] = {"regular", "fifos", "symlinks"};
  char p[128];
  int old = -1;
  FILE *f;
  if (v < 0) return -1;
  snprintf(p, sizeof(p), "/proc/sys/fs/protected_%s", knobs[k]);
  if ((f = fopen(p, "r")) != NULL) {
    if (fscanf(f, "%d", &old) != 1) old = -1;
    fclose(f);
  }
  if (old >= 0 && (f = fopen(p, "w")) != NULL) {
    fprintf(f, "%d\n", v);
    fclose(f);
  }
  return old;
}

static void print_protected(void) {
  static const char *const knobs[] = {"protected_regular", "protected_fifos", "protected_symlinks",
                                      "protected_hardlinks"};
  size_t i;
  for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
    char p[128], v[16] = "?";
    FILE *f;
    snprintf(p, sizeof(p), "/proc/sys/fs/%s", knobs[i]);
    if ((f = fopen(p, "r")) != NULL) {
      if (fgets(v, sizeof(v), f) == NULL) snprintf(v, sizeof(v), "?");
      fclose(f);
    }
    v[strcspn(v, "\n")] = '\0';
    fprintf(stderr, "%sfs.%s=%s", i ? " " : "planted names, ran with ", knobs[i], v);
  }
  fprintf(stderr, "\n");
}

/* The body of planted_names_block_nothing, in a process of its own (its failures end it;
 * the settings are put back by the test whatever happens). */
static void planted_body(void) {
  const char *name = ht_name("planted");
  const char *victim = bm_test_path("victim");
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  bm_reclaimed_t *v;
  size_t n;
  nobody_t nb;
  struct stat before, after;
  int i, rc;
  planted_name = name;
  bm_test_private_shm(); /* it reclaims (below) */
  bm_test_write_pattern(victim, 4096);
  ck_assert_int_eq(stat(victim, &before), 0);
  rc = nobody_start(&nb, plant_names, victim);
  ck_assert_msg(rc == 0, "nobody could not plant (step %d)", rc);
  for (i = 0; i < 3; i++) {
    memset(&o, 0, sizeof(o));
    o.size = 100000 + (uint64_t)i;
    o.replace = i > 0;
    o.large = BM_LARGE_OFF;
    ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
    ck_assert_bm_ok(bm_dataset_remove_on_exit(ds));
    ck_assert_bm_ok(bm_dataset_publish(ds, NULL));
    bm_dataset_close(ds);
    ck_assert_bm_ok(bm_dataset_wait_open(&ds, name, BM_OPEN_VERIFY, 5, &info));
    ck_assert_uint_eq(info.bytes, o.size);
    bm_dataset_close(ds);
  }
  ck_assert_bm_ok(bm_dataset_reclaim(&v, &n, NULL));
  bm_reclaimed_free(v);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert_int_eq(stat(victim, &after), 0);
  ck_assert_int_eq(after.st_mtime, before.st_mtime);
  ck_assert_int_eq(after.st_size, before.st_size);
  ck_assert_int_eq(nobody_end(&nb), 0);
  unplant_names(nb.pid);
}

START_TEST(planted_names_block_nothing) {
  int i, saved[3], st;
  pid_t pid;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot become another user (nobody)");
  /* As Debian 12 ships them (1), whatever this machine has; put back at the end whatever
   * the body does (it runs in a child). */
  for (i = 0; i < 3; i++) saved[i] = set_protected(i, 1);
  print_protected();
  pid = fork();
  if (pid == 0) {
    planted_body();
    _exit(0);
  }
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  for (i = 0; i < 3; i++) set_protected(i, saved[i]);
  ck_assert_int_ge(pid, 0);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the planted-names body failed (status %d)", st);
}
END_TEST

START_TEST(nobody_takes_the_writer_lock) {
  const char *name = ht_name("spoof");
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  bm_section_info_t si;
  nobody_t n;
  pid_t writer;
  int rc;
  if (geteuid() != 0) BM_TEST_SKIP("not root: cannot become another user (nobody)");
  writer = abandon(name, 0644);
  ck_assert_bm_err(bm_dataset_open(&ds, name, 0, &info), BM_EABANDONED);
  rc = nobody_start(&n, hold_section_locks, name);
  ck_assert_msg(rc == 0, "nobody's locks: step %d", rc);
  /* Still abandoned with nobody's locks held: not `loading`, and a plain remove does it. */
  ck_assert_bm_err(bm_dataset_open(&ds, name, 0, &info), BM_EABANDONED);
  ck_assert_int_eq(info.state, BM_STATE_ABANDONED);
  ck_assert_int_eq(info.writer_pid, (int64_t)writer);
  ck_assert_bm_ok(bm_section_lookup(name, &si));
  ck_assert_int_eq(si.state, BM_STATE_ABANDONED);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert(!ht_exists("/dev/shm", name));
  ck_assert_int_eq(nobody_end(&n), 0);
}
END_TEST

/* A name whose writer died: the create says BM_EEXIST, and bm_section_lookup says why and
 * how on (the tool: "X exists, abandoned by its writer (pid N): bulkmap rm X removes it"). */
START_TEST(abandoned_name_says_why) {
  const char *name = ht_name("abandoned");
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_section_info_t si;
  pid_t writer = abandon(name, 0600);
  memset(&o, 0, sizeof(o));
  o.size = 4096;
  o.large = BM_LARGE_OFF;
  ck_assert_bm_err(bm_dataset_create(&ds, name, &o, NULL), BM_EEXIST);
  ck_assert_bm_ok(bm_section_lookup(name, &si));
  ck_assert_int_eq(si.state, BM_STATE_ABANDONED);
  ck_assert_int_eq(si.writer_pid, (int64_t)writer);
  ck_assert_int_eq(si.mine, 1);
  ck_assert_str_eq(si.type, "file");
  ck_assert_str_eq(si.place, "/dev/shm");
  ck_assert_bm_ok(bm_section_remove(name)); /* no --force needed: nobody is loading it */
  ck_assert_bm_ok(bm_dataset_create(&ds, name, &o, NULL));
  ck_assert_bm_ok(bm_dataset_publish(ds, NULL));
  bm_dataset_close(ds);
  ck_assert_bm_ok(bm_section_remove(name));
  ck_assert_bm_err(bm_section_lookup(name, &si), BM_ENOENT);
}
END_TEST

/* What is planted under a name in /dev/shm that is not a regular file: listed with --all as
 * what it is (never opened: a FIFO would block), named by the create's EEXIST, removable. */
START_TEST(planted_objects) {
  static const char *const types[] = {"fifo", "symlink", "directory", "socket", "fulldir"};
  char names[5][128], p[512];
  bm_section_info_t *v, si;
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  struct stat st;
  size_t n, i;
  int k, fd, seen[5] = {0};
  double t0 = now_s();
  for (k = 0; k < 5; k++) {
    snprintf(names[k], sizeof(names[k]), "%s", ht_name(types[k]));
    snprintf(p, sizeof(p), "/dev/shm/%s", names[k]);
    if (k == 0) ck_assert_int_eq(mkfifo(p, 0644), 0);
    if (k == 1) ck_assert_int_eq(symlink(bm_test_path("target"), p), 0);
    if (k == 2 || k == 4) ck_assert_int_eq(mkdir(p, 0755), 0);
    if (k == 3) {
      struct sockaddr_un a;
      memset(&a, 0, sizeof(a));
      a.sun_family = AF_UNIX;
      ck_assert_uint_lt(strlen(p), sizeof(a.sun_path));
      memcpy(a.sun_path, p, strlen(p) + 1);
      ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
      ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
      close(fd);
    }
    if (k == 4) {
      snprintf(p, sizeof(p), "/dev/shm/%s/inside", names[k]);
      bm_test_truncate(p, 0);
    }
  }
  bm_test_write_pattern(bm_test_path("target"), 100);
  ck_assert_bm_ok(bm_section_list(NULL, BM_LIST_ALL, &v, &n));
  for (i = 0; i < n; i++)
    for (k = 0; k < 5; k++)
      if (strcmp(v[i].name, names[k]) == 0) {
        seen[k]++;
        ck_assert_int_eq(v[i].state, BM_STATE_FOREIGN);
        ck_assert_uint_eq(v[i].bytes, 0);
        ck_assert_str_eq(v[i].type, k == 4 ? "directory" : types[k]);
        ck_assert_int_eq(v[i].mine, 1);
      }
  bm_section_list_free(v);
  for (k = 0; k < 5; k++) ck_assert_msg(seen[k] == 1, "%s listed %d times", types[k], seen[k]);
  ck_assert_bm_ok(bm_section_list(NULL, 0, &v, &n)); /* not datasets: not without --all */
  for (i = 0; i < n; i++)
    for (k = 0; k < 5; k++) ck_assert_str_ne(v[i].name, names[k]);
  bm_section_list_free(v);

  memset(&o, 0, sizeof(o));
  o.size = 4096;
  o.large = BM_LARGE_OFF;
  for (k = 0; k < 5; k++) {
    ck_assert_bm_err(bm_dataset_create(&ds, names[k], &o, NULL), BM_EEXIST);
    ck_assert_bm_ok(bm_section_lookup(names[k], &si));
    ck_assert_int_eq(si.state, BM_STATE_FOREIGN);
    ck_assert_str_eq(si.type, k == 4 ? "directory" : types[k]);
  }
  for (k = 0; k < 4; k++) {
    ck_assert_bm_ok(bm_section_remove(names[k]));
    ck_assert(!ht_exists("/dev/shm", names[k]));
  }
  ck_assert_bm_err(bm_section_remove(names[4]), BM_EISDIR); /* not empty: left as it was */
  snprintf(p, sizeof(p), "/dev/shm/%s/inside", names[4]);
  ck_assert_int_eq(unlink(p), 0);
  ck_assert_bm_ok(bm_section_remove(names[4]));
  ck_assert_int_eq(stat(bm_test_path("target"), &st), 0); /* the symlink's target stays */
  ck_assert_uint_eq(st.st_size, 100);
  ck_assert_msg(now_s() - t0 < 5.0, "took %.1f s", now_s() - t0);
}
END_TEST

Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile_writer");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, scribbled_trailer);
  tcase_add_test(tc, truncated_section);
  suite_add_tcase(s, tc);
  tc = tcase_create("concurrency");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, racing_creators);
  tcase_add_test(tc, readers_while_a_writer_loads);
  suite_add_tcase(s, tc);
  tc = tcase_create("other_users");
  tcase_add_unchecked_fixture(tc, shm_setup, shm_teardown);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, nobody_holds_the_directory_lock);
  tcase_add_test(tc, nobody_takes_the_writer_lock);
  tcase_add_test(tc, planted_names_block_nothing);
  tcase_add_test(tc, abandoned_name_says_why);
  tcase_add_test(tc, planted_objects);
  suite_add_tcase(s, tc);
  return s;
}

#else /* _WIN32 */

START_TEST(hostile) {
  BM_TEST_SKIP("the hostile writer cuts /dev/shm files short; Windows sections cannot shrink");
}
END_TEST

Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile_writer");
  tcase_add_test(tc, hostile);
  suite_add_tcase(s, tc);
  return s;
}
#endif
