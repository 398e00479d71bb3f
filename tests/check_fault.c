/* Fault injection (builds with BULKMAP_FAULT_INJECTION; the fault lane of tools/dev.sh):
 * each public operation runs once with every OS call counted (src/posix/syscall.c), then
 * again once for each call it made, that call failing with an errno the OS could give.
 * Every run must end in the BM_E* code that errno stands for (with the errno kept as the
 * raw OS error), or in a success the test checks as if nothing had failed; and after it
 * the process holds no more descriptors or mappings than before, and /dev/shm and every
 * hugetlbfs mount list what they listed before. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "hugetest.h"

#if defined(BULKMAP_FAULT_INJECTION) && defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "posix/posix.h"

/* ---- What the process holds, read by the test itself. */
typedef struct {
  int fds;
  int maps;
  unsigned long long names; /* hash of the names in /dev/shm and the hugetlbfs mounts */
  int nnames;
} held_t;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  ck_assert_ptr_nonnull(d);
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Mappings, but for the malloc heap: glibc makes and trims [heap] as it pleases. The
 * first MAX_RANGES are kept in *r (starts and ends). */
#define MAX_RANGES 1024
typedef struct {
  int n;
  unsigned long long lo[MAX_RANGES], hi[MAX_RANGES];
} ranges_t;

static int count_maps(ranges_t *r) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  unsigned long long lo, hi;
  int n = 0, bol = 1;
  ck_assert_ptr_nonnull(f);
  if (r != NULL) r->n = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (bol && strstr(line, "[heap]") == NULL) {
      n++;
      if (r != NULL && r->n < MAX_RANGES && sscanf(line, "%llx-%llx", &lo, &hi) == 2) {
        r->lo[r->n] = lo;
        r->hi[r->n++] = hi;
      }
    }
    bol = strchr(line, '\n') != NULL;
  }
  fclose(f);
  return n;
}

/* Unmaps what is mapped now and was not in *before: what a munmap made to fail left. */
static void unmap_new(const ranges_t *before) {
  static ranges_t now;
  int i, k, old;
  count_maps(&now);
  for (i = 0; i < now.n; i++) {
    for (old = 0, k = 0; k < before->n && !old; k++)
      old = before->lo[k] <= now.lo[i] && now.hi[i] <= before->hi[k];
    if (!old) munmap((void *)(uintptr_t)now.lo[i], (size_t)(now.hi[i] - now.lo[i]));
  }
}

static void hash_dir(const char *dir, held_t *h) {
  DIR *d = opendir(dir);
  struct dirent *e;
  const char *c;
  char mine[64];
  /* Only this run's names (NAME, bulkmap#NAME, its keep links): other programs may make
   * and remove their own meanwhile, and a test never depends on nothing else running. */
  snprintf(mine, sizeof(mine), "bmtest-%ld-", ht_runner_pid);
  if (d == NULL) return;
  while ((e = readdir(d)) != NULL) {
    unsigned long long x = 1469598103934665603ull;
    if (e->d_name[0] == '.' || strstr(e->d_name, mine) == NULL) continue;
    for (c = dir; *c; c++) x = (x ^ (unsigned char)*c) * 1099511628211ull;
    for (c = e->d_name; *c; c++) x = (x ^ (unsigned char)*c) * 1099511628211ull;
    h->names += x; /* order independent */
    h->nnames++;
  }
  closedir(d);
}

static void held(held_t *h) {
  FILE *f = fopen("/proc/mounts", "r");
  char line[1024], dev[256], dir[512], type[64];
  memset(h, 0, sizeof(*h));
  hash_dir("/dev/shm", h);
  if (f != NULL) {
    while (fgets(line, sizeof(line), f))
      if (sscanf(line, "%255s %511s %63s", dev, dir, type) == 3 && strcmp(type, "hugetlbfs") == 0)
        hash_dir(dir, h);
    fclose(f);
  }
  h->fds = count_fds();
  h->maps = count_maps(NULL);
}

/* ---- The errnos each call fails with, and the BM_E* code each stands for (the test's own
 * table, from the contract in include/bulkmap.h). */
static const struct {
  const char *call;
  int errs[2];
} call_errs[] = {
    {"open", {EACCES, EMFILE}},      {"openat", {EACCES, EMFILE}},
    {"fstat", {EIO, ENOMEM}},        {"fstatat", {EIO, ENOMEM}},
    {"lstat", {EIO, ENOMEM}},        {"fstatfs", {EIO, ENOMEM}},
    {"ftruncate", {EIO, ENOSPC}},    {"fallocate", {ENOSPC, EIO}},
    {"fchmod", {EPERM, EIO}},        {"mmap", {ENOMEM, EACCES}},
    {"munmap", {ENOMEM, EINVAL}},    {"msync", {EIO, ENOMEM}},
    {"fsync", {EIO, ENOSPC}},        {"madvise", {ENOMEM, EIO}},
    {"posix_madvise", {ENOMEM, EINVAL}}, {"shm_open", {EACCES, ENOSPC}},
    {"shm_unlink", {EACCES, EBUSY}}, {"memfd_create", {EMFILE, ENOMEM}},
    {"unlink", {EACCES, EBUSY}},     {"unlinkat", {EACCES, EBUSY}},   {"fopen", {EACCES, ENOMEM}},
    {"sigaction", {EINVAL, EFAULT}}, {"stat", {EIO, ENOMEM}},
    {"flock", {ENOLCK, EIO}},        {"fchown", {EPERM, EIO}},
    {"pwrite", {EIO, ENOSPC}},       {"pthread_create", {EAGAIN, ENOMEM}},
};

static const int *errs_of(const char *call) {
  size_t i;
  for (i = 0; i < sizeof(call_errs) / sizeof(call_errs[0]); i++)
    if (strcmp(call_errs[i].call, call) == 0) return call_errs[i].errs;
  ck_abort_msg("no errnos listed for call %s", call);
  return NULL;
}

static int expected(const char *call, int e) {
  if (strcmp(call, "sigaction") == 0) return BM_EOS; /* the guard cannot be had */
  switch (e) {
  case EACCES: return BM_EACCES;
  case EPERM: return BM_EPERM;
  case EMFILE: return BM_EMFILE;
  case EIO: return BM_EIO;
  case ENOMEM: return BM_ENOMEM;
  case ENOSPC: return BM_ENOSPC;
  case EINVAL: return BM_EINVAL;
  case EBUSY: return BM_EBUSY;
  case EAGAIN: return BM_EAGAIN; /* no thread could be started */
  }
  return BM_EOS;
}

/* ---- Operations. setup and teardown run outside the counted region; run is the public
 * call(s) under test; check runs after run returned 0 and checks what it made. */
typedef struct {
  const char *name;
  void (*setup)(void);
  int (*run)(void);
  void (*check)(void);
  void (*teardown)(void);
  int also_ok; /* one more acceptable error (0: none), e.g. BM_ENOLARGE for a strict request */
  int clean;   /* what the run gives without faults: 0, or BM_ENOLARGE without huge pages */
} fault_op_t;

static char ctx[256]; /* which injection is running, for failure messages */

static struct {
  char a[512], b[512]; /* a pattern file; a path made by the operation */
  uint64_t a_size;
  bm_source_t *src;
  bm_view_t v;
  int window_ok;
  char name[128];
  bm_large_t large;
  int large_mode;
  int anon;
} st;

static void src_close(void) {
  bm_source_close(st.src);
  st.src = NULL;
}

static void setup_files(void) {
  if (st.a[0] == '\0') {
    snprintf(st.a, sizeof(st.a), "%s", bm_test_path("a"));
    snprintf(st.b, sizeof(st.b), "%s", bm_test_path("b"));
    st.a_size = 5 * bm_page_size() + 123;
    bm_test_write_pattern(st.a, st.a_size);
  }
  unlink(st.b);
}
static void teardown_files(void) {
  src_close();
  unlink(st.b);
}

static int pattern_ok(const void *p, uint64_t off, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != bm_test_byte(off + i)) return 0;
  return 1;
}

/* bm_file_open, each flag set. */
static int run_open_read(void) { return bm_file_open(&st.src, st.a, BM_FILE_READ); }
static int run_open_cow(void) { return bm_file_open(&st.src, st.a, BM_FILE_COW); }
static int run_open_write(void) { return bm_file_open(&st.src, st.a, BM_FILE_WRITE); }
static void check_open_a(void) {
  uint64_t size;
  ck_assert_ptr_nonnull(st.src);
  ck_assert_bm_ok(bm_source_size(st.src, &size));
  ck_assert_msg(size == st.a_size, "%s: size %llu", ctx, (unsigned long long)size);
}
static int run_open_create(void) {
  return bm_file_open(&st.src, st.b, BM_FILE_WRITE | BM_FILE_CREATE);
}
static int run_open_excl(void) {
  return bm_file_open(&st.src, st.b, BM_FILE_WRITE | BM_FILE_CREATE | BM_FILE_EXCL);
}
static void setup_trunc(void) {
  setup_files();
  bm_test_write_pattern(st.b, 1000);
}
static int run_open_trunc(void) {
  return bm_file_open(&st.src, st.b, BM_FILE_WRITE | BM_FILE_TRUNC);
}
static void check_open_b(void) {
  struct stat s;
  ck_assert_ptr_nonnull(st.src);
  ck_assert_msg(stat(st.b, &s) == 0 && s.st_size == 0, "%s: %s not made empty", ctx, st.b);
}
/* An exclusive create that failed must not leave the file behind: the caller's retry
 * would meet BM_EEXIST. */
static void teardown_excl(void) {
  struct stat s;
  int had = st.src != NULL;
  int exists = stat(st.b, &s) == 0;
  teardown_files();
  ck_assert_msg(had || !exists, "%s: failed exclusive create left %s behind", ctx, st.b);
}

/* bm_file_extend, bm_source_size. */
static void setup_extend(void) {
  setup_files();
  ck_assert_bm_ok(bm_file_open(&st.src, st.b, BM_FILE_WRITE | BM_FILE_CREATE));
}
static int run_extend(void) { return bm_file_extend(st.src, 3 * bm_page_size() + 7); }
static void check_extend(void) {
  struct stat s;
  ck_assert_msg(stat(st.b, &s) == 0 && (uint64_t)s.st_size == 3 * bm_page_size() + 7,
                "%s: size after extend", ctx);
}
static void setup_a(void) {
  setup_files();
  ck_assert_bm_ok(bm_file_open(&st.src, st.a, BM_FILE_READ));
}
static int run_size(void) {
  uint64_t size = 0;
  int r = bm_source_size(st.src, &size);
  if (r == 0 && size != st.a_size) return 99;
  return r;
}
static void check_nothing(void) {}

/* Views. */
static int run_map_read(void) { return bm_view_map(&st.v, st.src, 5000, 9000, BM_ACCESS_READ); }
static void check_view_a(void) {
  ck_assert_msg(st.v.length == 9000 && pattern_ok(st.v.data, 5000, 9000), "%s: view bytes", ctx);
}
static void teardown_view(void) {
  bm_view_unmap(&st.v);
  teardown_files();
}
static void setup_b_view(void) {
  setup_files();
  bm_test_write_pattern(st.b, 4 * bm_page_size());
  ck_assert_bm_ok(bm_file_open(&st.src, st.b, BM_FILE_WRITE));
}
static int run_map_write(void) {
  return bm_view_map(&st.v, st.src, 100, 3 * bm_page_size(), BM_ACCESS_WRITE);
}
static void check_view_b(void) {
  ck_assert_msg(pattern_ok(st.v.data, 100, st.v.length), "%s: view bytes", ctx);
  memset(st.v.data, 0xab, 10);
}
static void setup_a_view(void) {
  setup_a();
  ck_assert_bm_ok(bm_view_map(&st.v, st.src, 5000, 9000, BM_ACCESS_READ));
}
static void setup_flush(void) {
  setup_b_view();
  ck_assert_bm_ok(bm_view_map(&st.v, st.src, 0, 2 * bm_page_size(), BM_ACCESS_WRITE));
  memset(st.v.data, 0x5c, 64);
}
static int run_flush(void) { return bm_view_flush(&st.v); }
static void check_flush(void) {
  unsigned char b[64];
  ck_assert_uint_eq(bm_test_pread(st.b, 0, b, 64), 64);
  ck_assert_msg(b[0] == 0x5c && b[63] == 0x5c, "%s: flushed bytes", ctx);
}
static int run_advise(void) {
  int r = bm_view_advise(&st.v, BM_ADVICE_WILLNEED);
  if (r == 0) r = bm_view_advise(&st.v, BM_ADVICE_SEQUENTIAL);
  if (r == 0) r = bm_view_advise(&st.v, BM_ADVICE_DONTNEED);
  return r;
}
static int run_prefetch(void) { return bm_view_prefetch(&st.v); }
static int run_unmap(void) { return bm_view_unmap(&st.v); }
/* Unmapped and zeroed even when the OS refused (bm_view_unmap's contract). */
static void check_unmapped(void) {
  ck_assert_ptr_null(st.v.data);
  ck_assert_uint_eq(bm_view_mapped(&st.v), 0);
}

/* The window cursor with read-ahead and prefault: every window's bytes are checked. */
static int run_window(void) {
  bm_window_opts_t o;
  bm_window_t w;
  uint64_t expect = 0;
  int r;
  memset(&o, 0, sizeof(o));
  o.window = bm_page_size();
  o.overlap = 100;
  o.length = BM_TO_END;
  o.readahead = 1;
  o.prefault = 1;
  st.window_ok = 1;
  if ((r = bm_window_init(&w, st.src, &o)) != 0) return r;
  while ((r = bm_window_next(&w)) == 1) {
    if (w.offset + w.overlap != expect || !pattern_ok(w.data, w.offset, w.length))
      st.window_ok = 0;
    expect = w.offset + w.length;
  }
  bm_window_close(&w);
  if (r == 0 && expect != st.a_size) st.window_ok = 0;
  return r;
}
static void check_window(void) { ck_assert_msg(st.window_ok, "%s: window bytes", ctx); }

/* bm_guard_call. */
static int guarded(void *arg) { return *(int *)arg; }
static int run_guard(void) {
  int zero = 0;
  return bm_guard_call(guarded, &zero);
}
/* After a restore of the previous handler failed, the next guarded call puts it back. */
static void teardown_guard(void) {
  int zero = 0;
  ck_assert_int_eq(bm_guard_call(guarded, &zero), 0);
  teardown_files();
}

/* Sections. */
static int in_dir(const char *dir, const char *name) { return ht_exists(dir, name); }

/* Where the section named st.name lives now: 0 nowhere, 1 /dev/shm, 2 a hugetlbfs mount. */
static int section_where(void) {
  FILE *f = fopen("/proc/mounts", "r");
  char line[1024], dev[256], dir[512], type[64];
  int where = in_dir("/dev/shm", st.name) ? 1 : 0;
  if (f == NULL) return where;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%255s %511s %63s", dev, dir, type) == 3 &&
        strcmp(type, "hugetlbfs") == 0 && in_dir(dir, st.name))
      where = 2;
  fclose(f);
  return where;
}

/* NAME in a place, its metadata bulkmap#NAME and its keep links bulkmap#NAME#... */
static void remove_in(const char *dir) {
  char comp[300], p[1100];
  DIR *d;
  struct dirent *e;
  size_t cl;
  snprintf(comp, sizeof(comp), "bulkmap#%s", st.name);
  cl = strlen(comp);
  if ((d = opendir(dir)) == NULL) return;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, st.name) == 0 ||
        (strncmp(e->d_name, comp, cl) == 0 && (e->d_name[cl] == '\0' || e->d_name[cl] == '#'))) {
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      unlink(p);
    }
  closedir(d);
}

static void remove_by_hand(void) {
  FILE *f;
  char line[1024], dev[256], dir[512], type[64];
  if (st.name[0] == '\0') return;
  remove_in("/dev/shm");
  if ((f = fopen("/proc/mounts", "r")) == NULL) return;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%255s %511s %63s", dev, dir, type) == 3 && strcmp(type, "hugetlbfs") == 0)
      remove_in(dir);
  fclose(f);
}

static const char *fx_mount(void);

static void setup_create(void) {
  st.src = NULL;
  snprintf(st.name, sizeof(st.name), "%s", st.anon ? "" : ht_name("fault"));
  remove_by_hand();
}
static int run_create(void) {
  bm_section_opts_t o;
  memset(&o, 0, sizeof(o));
  o.size = 4u << 20;
  o.large = st.large_mode;
  o.round = 1;
  o.mount = fx_mount(); /* ours, never a system mount */
  memset(&st.large, 0, sizeof(st.large));
  return bm_section_create(&st.src, st.anon ? NULL : st.name, &o, &st.large);
}

/* A whole load through the dataset calls: create, fill a view, publish, close. On any
 * failure the dataset is closed unpublished, which fails it and removes what it made. */
static int run_dataset_load(void) {
  bm_dataset_opts_t o;
  bm_dataset_t *ds = NULL;
  bm_view_t v;
  int err;
  memset(&o, 0, sizeof(o));
  o.size = (3u << 20) + 5;
  o.large = st.large_mode;
  o.mount = fx_mount();
  if ((err = bm_dataset_create(&ds, st.name, &o, &st.large)) != 0) return err;
  if ((err = bm_view_map(&v, bm_dataset_source(ds), 0, o.size, BM_ACCESS_WRITE)) == 0) {
    memset(v.data, 0x5a, (size_t)o.size);
    bm_view_unmap(&v);
    err = bm_dataset_publish(ds, NULL);
  }
  bm_dataset_close(ds);
  return err;
}
static void check_dataset_loaded(void) {
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  ck_assert_bm_ok(bm_dataset_open(&ds, st.name, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.bytes, (3u << 20) + 5);
  bm_dataset_close(ds);
}
/* A publish from memory (bm_dataset_publish_buffer): 5 MiB and 3 bytes, so that onto tmpfs
 * the bytes are written with pwrite by this thread and hashed by one of its own (a thread
 * that cannot be started leaves the hash to this one: tolerated); onto large pages
 * through views. */
#define PUB_BYTES ((5u << 20) + 3)
static unsigned char *pub_bytes(void) {
  static unsigned char *b;
  size_t i;
  if (b == NULL) {
    b = malloc(PUB_BYTES);
    ck_assert_ptr_nonnull(b);
    for (i = 0; i < PUB_BYTES; i++) b[i] = (unsigned char)(i * 2654435761u >> 13);
  }
  return b;
}
static int run_publish_buffer(void) {
  bm_publish_opts_t o;
  bm_load_result_t r;
  bm_publish_opts_init(&o);
  o.format = BM_FORMAT_RAW;
  o.dataset.large = st.large_mode;
  o.dataset.mount = fx_mount();
  return bm_dataset_publish_buffer(NULL, st.name, pub_bytes(), PUB_BYTES, &o, &r);
}
static void check_published(void) {
  bm_dataset_t *ds;
  bm_dataset_info_t info;
  bm_view_t v;
  ck_assert_bm_ok(bm_dataset_open(&ds, st.name, BM_OPEN_VERIFY, &info));
  ck_assert_uint_eq(info.bytes, PUB_BYTES);
  ck_assert_bm_ok(bm_view_map(&v, bm_dataset_source(ds), 0, PUB_BYTES, BM_ACCESS_READ));
  ck_assert_msg(memcmp(v.data, pub_bytes(), PUB_BYTES) == 0, "%s: the bytes differ", ctx);
  bm_view_unmap(&v);
  bm_dataset_close(ds);
}
static void setup_dataset(void) {
  setup_create();
  ck_assert_bm_ok(run_dataset_load());
}
static int run_dataset_open(void) {
  bm_dataset_t *ds = NULL;
  int err = bm_dataset_open(&ds, st.name, BM_OPEN_VERIFY, NULL);
  bm_dataset_close(ds);
  return err;
}
static void check_section_usable(void) {
  bm_view_t v;
  uint64_t size;
  ck_assert_ptr_nonnull(st.src);
  ck_assert_bm_ok(bm_source_size(st.src, &size));
  ck_assert_msg(size >= (4u << 20), "%s: section of %llu bytes", ctx, (unsigned long long)size);
  ck_assert_bm_ok(bm_view_map(&v, st.src, 0, BM_TO_END, BM_ACCESS_READ | BM_ACCESS_WRITE));
  ((unsigned char *)v.data)[size - 1] = 0x42;
  ck_assert_int_eq(((unsigned char *)v.data)[size - 1], 0x42);
  ck_assert_bm_ok(bm_view_unmap(&v));
}
static void check_create(void) {
  check_section_usable();
  if (!st.anon)
    ck_assert_msg(section_where() == (st.large.obtained && !st.large.transparent ? 2 : 1),
                  "%s: section in the wrong place (%d)", ctx, section_where());
  if (st.large_mode == BM_LARGE_ON)
    ck_assert_msg(st.large.obtained && !st.large.transparent, "%s: strict request", ctx);
}
static void teardown_create(void) {
  src_close();
  remove_by_hand();
}
static void check_create_failed_cleanly(int r) {
  /* A strict request refused for want of large pages says why. */
  if (r == BM_ENOLARGE)
    ck_assert_msg(st.large.reason != BM_REASON_NONE, "%s: no reason given", ctx);
  ck_assert_ptr_null(st.src);
}

static void setup_existing(void) {
  int mode = st.large_mode;
  setup_create();
  st.large_mode = mode;
  ck_assert_bm_ok(run_create());
  src_close();
}
static int run_section_open(void) { return bm_section_open(&st.src, st.name, BM_ACCESS_READ); }
static void check_section_open(void) {
  uint64_t size;
  ck_assert_ptr_nonnull(st.src);
  ck_assert_bm_ok(bm_source_size(st.src, &size));
  ck_assert_msg(size >= (4u << 20), "%s: size", ctx);
}
static int run_section_remove(void) { return bm_section_remove(st.name); }
static void check_removed(void) { ck_assert_msg(section_where() == 0, "%s: still there", ctx); }
static void setup_existing_open(void) {
  setup_existing();
  ck_assert_bm_ok(bm_section_open(&st.src, st.name, BM_ACCESS_READ));
}
static int run_section_large(void) {
  bm_large_t l;
  return bm_section_large(st.src, &l);
}

static int fx_have_pool(void);
static void print_total(const char *what);

/* ---- The driver. */
static unsigned long total_paths, total_errors, total_tolerated;

static void run_clean(const fault_op_t *op) {
  int r;
  op->setup();
  r = op->run();
  ck_assert_msg(r == op->clean, "%s without faults: %s", op->name, bm_err_name(r));
  if (r == 0) op->check();
  op->teardown();
}

static void drive(const fault_op_t *op) {
  static ranges_t before_ranges;
  unsigned long counts[BM__SYS_COUNT], total = 0, n, nth;
  unsigned long paths = 0, errors = 0, tolerated = 0;
  held_t before, after;
  char summary[512] = "";
  int i, k, r;

  snprintf(ctx, sizeof(ctx), "%s", op->name);
  run_clean(op); /* warm-up: one-time caches and the allocator's first mappings */
  held(&before);
  op->setup();
  bm__fault_reset();
  r = op->run();
  for (i = 0; i < BM__SYS_COUNT; i++) {
    counts[i] = bm__fault_count(bm__fault_name(i));
    total += counts[i];
    if (counts[i] != 0)
      snprintf(summary + strlen(summary), sizeof(summary) - strlen(summary), " %s %lu",
               bm__fault_name(i), counts[i]);
  }
  bm__fault_reset();
  ck_assert_msg(r == op->clean, "%s without faults: %s", op->name, bm_err_name(r));
  if (r == 0) op->check();
  op->teardown();
  held(&after);
  ck_assert_msg(after.fds == before.fds && after.maps == before.maps &&
                    after.names == before.names,
                "%s without faults: %d/%d descriptors, %d/%d mappings, %d/%d names before/after",
                op->name, before.fds, after.fds, before.maps, after.maps, before.nnames,
                after.nnames);
  ck_assert_msg(total > 0, "%s made no OS call at all", op->name);

  for (i = 0; i < BM__SYS_COUNT; i++) {
    const char *call = bm__fault_name(i);
    if ((n = counts[i]) == 0) continue;
    for (k = 0; k < 2; k++) {
      int e = errs_of(call)[k];
      for (nth = 1; nth <= n; nth++) {
        snprintf(ctx, sizeof(ctx), "%s, %s #%lu failing with %s", op->name, call, nth,
                 strerror(e));
        if (strcmp(call, "munmap") == 0) count_maps(&before_ranges);
        op->setup();
        ck_assert_int_eq(bm__fault_set(call, nth, e), 0);
        r = op->run();
        ck_assert_msg(bm__fault_fired() == 1, "%s: the call was not reached", ctx);
        bm__fault_reset();
        if (r == 0) {
          tolerated++;
          op->check();
        } else {
          int want = expected(call, e);
          /* Publishing through views makes the section's pages first (MADV_POPULATE_WRITE,
           * src/posix/os.c): a page that cannot be had, ENOMEM there, is no room. */
          if (op->run == run_publish_buffer && strcmp(call, "madvise") == 0 && e == ENOMEM)
            want = BM_ENOSPC;
          errors++;
          /* Left as it is: the mount list comes from bm_sysinfo_get, which makes do with
           * what it can read; a hugetlbfs section on a mount it could not list is missing. */
          int unlisted = strcmp(call, "fopen") == 0 && r == BM_ENOENT && st.large_mode != 0;
          ck_assert_msg((r == want && bm_last_os_error() == e) || unlisted ||
                            (op->also_ok != 0 && r == op->also_ok),
                        "%s: returned %s (os error %d), expected %s (os error %d)", ctx,
                        bm_err_name(r), bm_last_os_error(), bm_err_name(want), e);
          if (op->run == run_create) check_create_failed_cleanly(r);
        }
        op->teardown();
        /* A failed munmap leaves mapped what it did not unmap (huge pages among it, which
         * the next run would miss): give it back by hand. */
        if (strcmp(call, "munmap") == 0) unmap_new(&before_ranges);
        held(&after);
        ck_assert_msg(after.fds == before.fds, "%s: %d descriptors before, %d after", ctx,
                      before.fds, after.fds);
        ck_assert_msg(after.maps == before.maps, "%s: %d mappings before, %d after", ctx,
                      before.maps, after.maps);
        ck_assert_msg(after.names == before.names && after.nnames == before.nnames,
                      "%s: /dev/shm or a hugetlbfs mount changed (%d names before, %d after)",
                      ctx, before.nnames, after.nnames);
        paths++;
      }
    }
  }
  total_paths += paths;
  total_errors += errors;
  total_tolerated += tolerated;
  fprintf(stderr, "fault: %-28s %3lu calls (%s), %lu paths: %lu errors, %lu tolerated\n",
          op->name, total, summary + 1, paths, errors, tolerated);
}

static void drive_all(const fault_op_t *ops, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) drive(&ops[i]);
}

START_TEST(files_and_views) {
  static const fault_op_t ops[] = {
      {"bm_file_open READ", setup_files, run_open_read, check_open_a, teardown_files, 0, 0},
      {"bm_file_open COW", setup_files, run_open_cow, check_open_a, teardown_files, 0, 0},
      {"bm_file_open WRITE", setup_files, run_open_write, check_open_a, teardown_files, 0, 0},
      {"bm_file_open WRITE|CREATE", setup_files, run_open_create, check_open_b,
       teardown_files, 0, 0},
      {"bm_file_open WRITE|CREATE|EXCL", setup_files, run_open_excl, check_open_b,
       teardown_excl, 0, 0},
      {"bm_file_open WRITE|TRUNC", setup_trunc, run_open_trunc, check_open_b,
       teardown_files, 0, 0},
      {"bm_file_extend", setup_extend, run_extend, check_extend, teardown_files, 0, 0},
      {"bm_source_size", setup_a, run_size, check_nothing, teardown_files, 0, 0},
      {"bm_view_map READ", setup_a, run_map_read, check_view_a, teardown_view, 0, 0},
      {"bm_view_map WRITE", setup_b_view, run_map_write, check_view_b, teardown_view, 0, 0},
      {"bm_view_flush", setup_flush, run_flush, check_flush, teardown_view, 0, 0},
      {"bm_view_advise", setup_a_view, run_advise, check_view_a, teardown_view, 0, 0},
      {"bm_view_prefetch", setup_a_view, run_prefetch, check_view_a, teardown_view, 0, 0},
      {"bm_view_unmap", setup_a_view, run_unmap, check_unmapped, teardown_view, 0, 0},
      {"bm_window_init/next", setup_a, run_window, check_window, teardown_files, 0, 0},
      {"bm_guard_call", setup_files, run_guard, check_nothing, teardown_guard, 0, 0},
  };
  drive_all(ops, sizeof(ops) / sizeof(ops[0]));
  print_total("files, views, windows and the guard");
}
END_TEST

/* glibc keeps the stacks of joined threads for the next ones (two mappings each): two
 * threads started and joined first, so that a publish's hashing thread, first started on a
 * failure path (large auto falling back to tmpfs), takes a kept stack and is not counted
 * as two mappings left behind. */
static void *idle_thread(void *arg) { return arg; }
static void keep_thread_stacks(void) {
  pthread_t t[2];
  int i;
  for (i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, idle_thread, NULL), 0);
  for (i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

static void sections(int large_mode, const char *what) {
  fault_op_t ops[] = {
      {"bm_section_create named", setup_create, run_create, check_create, teardown_create, 0, 0},
      {"bm_section_create anonymous", setup_create, run_create, check_create,
       teardown_create, 0, 0},
      {"bm_section_open", setup_existing, run_section_open, check_section_open,
       teardown_create, 0, 0},
      {"bm_section_large", setup_existing_open, run_section_large, check_nothing,
       teardown_create, 0, 0},
      {"bm_section_remove", setup_existing, run_section_remove, check_removed,
       teardown_create, 0, 0},
      {"bm_dataset create, fill, publish", setup_create, run_dataset_load,
       check_dataset_loaded, teardown_create, 0, 0},
      {"bm_dataset_open verified", setup_dataset, run_dataset_open, check_nothing,
       teardown_create, 0, 0},
      {"bm_dataset_publish_buffer", setup_create, run_publish_buffer, check_published,
       teardown_create, 0, 0},
  };
  char names[8][96];
  size_t i;
  for (i = 0; i < 8; i++) {
    snprintf(names[i], sizeof(names[i]), "%s %s", ops[i].name, what);
    ops[i].name = names[i];
    if (large_mode == BM_LARGE_ON && (ops[i].run == run_create || ops[i].run == run_dataset_load ||
                                      ops[i].run == run_publish_buffer)) {
      ops[i].also_ok = BM_ENOLARGE;
      if (!fx_have_pool()) ops[i].clean = BM_ENOLARGE;
    }
  }
  st.large_mode = large_mode;
  keep_thread_stacks();
  st.anon = 0;
  drive(&ops[0]);
  st.anon = 1;
  drive(&ops[1]);
  st.anon = 0;
  /* Opening, probing and removing: of a section made the same way. */
  if (large_mode != BM_LARGE_ON || fx_have_pool()) {
    drive(&ops[2]);
    drive(&ops[3]);
    drive(&ops[4]);
  }
  drive(&ops[5]);
  if (large_mode != BM_LARGE_ON || fx_have_pool()) drive(&ops[6]);
  drive(&ops[7]);
}

static void print_total(const char *what) {
  fprintf(stderr, "fault: %lu paths injected into %s (%lu errors, %lu tolerated)\n",
          total_paths, what, total_errors, total_tolerated);
}

/* ---- Huge pages for the large cases: 4 free 2 MiB pages and a hugetlbfs mount of our own,
 * under the pool lock of tests/hugetest.h; without them the large cases still run and
 * reach every call made before the request fails. */
static struct {
  int lock;
  long long nr_2m;
  char mnt[64];
  char why[160];
} fx = {-1, -1, "", ""};

static int fx_have_pool(void) { return fx.mnt[0] != '\0'; }
static const char *fx_mount(void) { return fx.mnt[0] != '\0' ? fx.mnt : NULL; }

static void normal_setup(void) {
  ht_init_run();
  fx.lock = ht_lock(LOCK_SH);
}
static void normal_teardown(void) {
  ht_sweep_dir("/dev/shm");
  ht_unlock(&fx.lock);
}

static void large_setup(void) {
  long long nr, fr;
  ht_init_run();
  fx.why[0] = fx.mnt[0] = '\0';
  if (geteuid() != 0 || access(HT_HUGE_DIR "/hugepages-2048kB", F_OK) != 0) {
    snprintf(fx.why, sizeof(fx.why), "not root, or no 2 MiB hugetlb pages");
    return;
  }
  if ((fx.lock = ht_lock(LOCK_EX)) < 0) {
    snprintf(fx.why, sizeof(fx.why), "could not take %s", HT_LOCK_PATH);
    return;
  }
  nr = fx.nr_2m = ht_read_ll(ht_pool(2048, "nr_hugepages"));
  fr = ht_read_ll(ht_pool(2048, "free_hugepages"));
  if (nr < 0 || fr < 0 || ht_write_ll(ht_pool(2048, "nr_hugepages"), nr - fr + 4) != 0 ||
      ht_read_ll(ht_pool(2048, "free_hugepages")) != 4) {
    snprintf(fx.why, sizeof(fx.why), "could not reserve 4 huge pages of 2 MiB");
    return;
  }
  snprintf(fx.mnt, sizeof(fx.mnt), "/tmp/bmfault-XXXXXX");
  if (mkdtemp(fx.mnt) == NULL) {
    snprintf(fx.why, sizeof(fx.why), "mkdtemp: %s", strerror(errno));
    fx.mnt[0] = '\0';
  } else if (mount("bulkmap-test", fx.mnt, "hugetlbfs", 0, "pagesize=2M,mode=0700") != 0) {
    snprintf(fx.why, sizeof(fx.why), "mount hugetlbfs: %s", strerror(errno));
    rmdir(fx.mnt);
    fx.mnt[0] = '\0';
  }
}

static void large_teardown(void) {
  if (fx.mnt[0] != '\0') {
    ht_sweep_dir(fx.mnt);
    if (umount(fx.mnt) != 0) umount2(fx.mnt, MNT_DETACH);
    rmdir(fx.mnt);
    fx.mnt[0] = '\0';
  }
  ht_sweep_dir("/dev/shm");
  if (fx.nr_2m >= 0) ht_write_ll(ht_pool(2048, "nr_hugepages"), fx.nr_2m);
  fx.nr_2m = -1;
  ht_unlock(&fx.lock);
}

START_TEST(sections_normal_pages) {
  sections(BM_LARGE_OFF, "(normal pages)");
  print_total("sections of normal pages");
}
END_TEST

START_TEST(sections_large_pages) {
  if (!fx_have_pool())
    fprintf(stderr, "note: %s: large requests fail after their first calls (%s)\n", __func__,
            fx.why);
  sections(BM_LARGE_ON, fx_have_pool() ? "(large, hugetlbfs)" : "(large, none to be had)");
  sections(BM_LARGE_AUTO, "(large auto)");
  print_total("large-page sections");
}
END_TEST

/* Found by injecting a failure into the sigaction that restores the previous SIGBUS
 * handler: the next guarded call saved the guard's own handler as "previous", and a
 * SIGBUS outside any guarded call was then passed to that handler by itself, again and
 * again, until the stack ran out. It must kill the process with SIGBUS, as it would
 * without the library. */
static int touch_one(void *arg) { return *(volatile unsigned char *)arg; }

START_TEST(guard_restore_fails) {
  const char *path = bm_test_path("bus");
  unsigned char *p;
  int fd, status, zero = 0;
  pid_t pid;

  ck_assert_int_eq(bm__fault_set("sigaction", 2, EINVAL), 0);
  ck_assert_int_eq(bm_guard_call(guarded, &zero), 0);
  ck_assert_uint_eq(bm__fault_fired(), 1);
  bm__fault_reset();
  ck_assert_int_eq(bm_guard_call(guarded, &zero), 0);

  bm_test_write_pattern(path, 2 * bm_page_size());
  fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  p = mmap(NULL, 2 * bm_page_size(), PROT_READ, MAP_SHARED, fd, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  ck_assert_int_eq(ftruncate(fd, 0), 0);
  /* Inside a guarded call the fault is still caught... */
  ck_assert_bm_err(bm_guard_call(touch_one, p + bm_page_size()), BM_ETRUNCATED);
  /* ...and outside it kills, as the default action does. */
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    volatile unsigned char c = p[bm_page_size()];
    (void)c;
    _exit(0);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
                "a fault outside a guarded call: status 0x%x, expected death by SIGBUS",
                status);
  munmap(p, 2 * bm_page_size());
  close(fd);
}
END_TEST

Suite *fault_suite(void) {
  Suite *s = suite_create("fault");
  TCase *tc = tcase_create("files_and_views");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, files_and_views);
  tcase_add_test(tc, guard_restore_fails);
  suite_add_tcase(s, tc);
  tc = tcase_create("sections");
  tcase_add_unchecked_fixture(tc, normal_setup, normal_teardown);
  tcase_add_test(tc, sections_normal_pages);
  suite_add_tcase(s, tc);
  tc = tcase_create("large_sections");
  tcase_add_unchecked_fixture(tc, large_setup, large_teardown);
  tcase_add_test(tc, sections_large_pages);
  suite_add_tcase(s, tc);
  return s;
}

#else /* no fault injection in this build */

START_TEST(fault_injection) {
  BM_TEST_SKIP("built without BULKMAP_FAULT_INJECTION (the fault lane of tools/dev.sh "
               "configures build/fault with it)");
}
END_TEST

Suite *fault_suite(void) {
  Suite *s = suite_create("fault");
  TCase *tc = tcase_create("fault_injection");
  tcase_add_test(tc, fault_injection);
  suite_add_tcase(s, tc);
  return s;
}
#endif
