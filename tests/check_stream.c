/* Scanning what is read, not mapped (bm_scan_fd), and many files at once (bm_scan_files).
 * A writer thread feeds a pipe in chunks of its own sizes (so the reader gets short reads);
 * the results must equal what the test counts itself (greedy left-to-right literal counts,
 * '\n' bytes, XXH3 of the whole buffer) and what bm_scan gives for the same bytes as a
 * file, at the edges that matter: nothing, exactly one buffer, a literal across a buffer's
 * edge. Also: a cancel while the read waits on a silent writer (no signal), progress, an
 * fd that cannot be read, and files of every kind through bm_scan_files. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

#define KiB 1024u
#define MiB (1024u * 1024u)

static uint64_t rs;
static uint64_t rnd(void) {
  uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void sleep_ms(unsigned ms) {
#ifdef _WIN32
  Sleep(ms);
#else
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
#endif
}

/* ---------------------------------------------------------------------------------------
 * A pipe fed by a writer thread: n bytes of data in chunks of 1..max_chunk bytes (random),
 * then, unless hold is set, the write end closed. With hold, it waits for release first. */
typedef struct {
  bm_os_handle_t rd, wr;
  const unsigned char *data;
  size_t n, max_chunk;
  uint64_t seed;
  volatile int hold, release;
  int write_failed;
  const char *fifo_path; /* POSIX: a FIFO the writer opens itself */
#ifdef _WIN32
  HANDLE thread;
#else
  pthread_t thread;
#endif
} feeder_t;

static int feeder_write(feeder_t *f, const unsigned char *p, size_t n) {
#ifdef _WIN32
  DWORD w;
  while (n > 0) {
    if (!WriteFile(f->wr, p, (DWORD)n, &w, NULL)) return -1;
    p += w, n -= w;
  }
#else
  while (n > 0) {
    ssize_t w = write(f->wr, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w, n -= (size_t)w;
  }
#endif
  return 0;
}

static void feeder_close_write(feeder_t *f) {
#ifdef _WIN32
  if (f->wr != NULL) CloseHandle(f->wr);
  f->wr = NULL;
#else
  if (f->wr >= 0) close(f->wr);
  f->wr = -1;
#endif
}

static void feeder_body(feeder_t *f) {
  uint64_t z = f->seed;
  size_t off = 0;
  while (off < f->n) {
    size_t c;
    z = z * 6364136223846793005ull + 1442695040888963407ull;
    c = 1 + (size_t)((z >> 33) % f->max_chunk);
    if (c > f->n - off) c = f->n - off;
    if (feeder_write(f, f->data + off, c) != 0) {
      f->write_failed = 1;
      break;
    }
    off += c;
  }
  while (f->hold && !f->release) sleep_ms(5);
  feeder_close_write(f);
}

#ifdef _WIN32
static DWORD WINAPI feeder_main(LPVOID arg) {
  feeder_body(arg);
  return 0;
}
#else
static void *feeder_main(void *arg) {
  feeder_body(arg);
  return NULL;
}
#endif

static void feeder_start(feeder_t *f, const unsigned char *data, size_t n, size_t max_chunk, int hold) {
  memset(f, 0, sizeof(*f));
  f->data = data;
  f->n = n;
  f->max_chunk = max_chunk ? max_chunk : 1;
  f->seed = rnd();
  f->hold = hold;
#ifdef _WIN32
  ck_assert(CreatePipe(&f->rd, &f->wr, NULL, 0));
  f->thread = CreateThread(NULL, 0, feeder_main, f, 0, NULL);
  ck_assert_ptr_nonnull(f->thread);
#else
  /* A reader that stops early (a length) closes its end: the writer gets EPIPE, and no
   * SIGPIPE ends the test. */
  signal(SIGPIPE, SIG_IGN);
  {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    f->rd = fds[0], f->wr = fds[1];
  }
  ck_assert_int_eq(pthread_create(&f->thread, NULL, feeder_main, f), 0);
#endif
}

/* Releases a holding writer, waits for it, closes the read end. */
static void feeder_end(feeder_t *f) {
  f->release = 1;
#ifdef _WIN32
  /* A writer blocked on a full pipe ends when the read end goes. */
  CloseHandle(f->rd);
  WaitForSingleObject(f->thread, INFINITE);
  CloseHandle(f->thread);
#else
  close(f->rd);
  pthread_join(f->thread, NULL);
#endif
}

/* ---------------------------------------------------------------------------------------
 * The test's own answers. */
static uint64_t count_greedy(const unsigned char *d, size_t n, const void *lit, size_t L) {
  uint64_t c = 0;
  size_t i = 0;
  while (L <= n && i + L <= n) {
    if (memcmp(d + i, lit, L) == 0) c++, i += L;
    else i++;
  }
  return c;
}

/* The greedy count over d[0, n) of the matches that begin at or after `from`. */
static uint64_t count_greedy_from(const unsigned char *d, size_t n, const void *lit, size_t L, size_t from) {
  uint64_t c = 0;
  size_t i = 0;
  while (i + L <= n) {
    if (memcmp(d + i, lit, L) == 0) c += i >= from, i += L;
    else i++;
  }
  return c;
}

static uint64_t count_lines(const unsigned char *d, size_t n) {
  uint64_t c = 0;
  size_t i;
  for (i = 0; i < n; i++) c += d[i] == '\n';
  return c;
}

static uint64_t hash_of(const unsigned char *d, size_t n) {
  bm_xxh3_t *h = bm_xxh3_new();
  uint64_t v;
  ck_assert_ptr_nonnull(h);
  bm_xxh3_update(h, d, n);
  v = bm_xxh3_digest(h);
  bm_xxh3_free(h);
  return v;
}

static void write_file(const char *path, const unsigned char *d, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  if (n > 0) ck_assert_uint_eq(fwrite(d, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

static const char *const lits_text[] = {"ab", "aa", "\n\n", "needle", "q", "abab"};
#define NLITS 6

static void opts_init(bm_scan_opts_t *o, bm_literal_t *lits) {
  unsigned i;
  memset(o, 0, sizeof(*o));
  for (i = 0; i < NLITS; i++) lits[i].bytes = lits_text[i], lits[i].length = strlen(lits_text[i]);
  o->flags = BM_SCAN_HASH | BM_SCAN_LINES;
  o->literals = lits;
  o->n_literals = NLITS;
  o->length = BM_TO_END;
}

/* Bytes made of few letters so that the literals occur often, with "needle" put across
 * every multiple of `edge` (the buffer edges of a scan with window `edge`). */
static unsigned char *make_data(size_t n, size_t edge) {
  unsigned char *d = malloc(n ? n : 1);
  size_t i;
  ck_assert_ptr_nonnull(d);
  for (i = 0; i < n; i++) {
    uint64_t r = rnd() % 16;
    d[i] = r < 6 ? 'a' : r < 10 ? 'b' : r < 12 ? '\n' : r < 13 ? 'q' : (unsigned char)('c' + r);
  }
  for (i = edge; edge > 3 && i + 3 <= n; i += edge)
    if (i >= 3) memcpy(d + i - 3, "needle", 6);
  return d;
}

/* BM_SCAN_PART's match_end for compare_one (0: the range's end). */
static uint64_t match_end_opt;

/* Scans data[0, n) fed through a pipe and, as a file, with bm_scan; both must equal the
 * test's own counts over [offset, offset+length) (matches that begin there, running up to
 * match_end with BM_SCAN_PART). */
static void compare_one(const unsigned char *d, size_t n, size_t window, size_t max_chunk,
                        unsigned threads, uint64_t offset, uint64_t length, unsigned flags) {
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_result_t rf, rs_;
  bm_source_t *src;
  feeder_t f;
  char path[768];
  uint64_t len = length == BM_TO_END ? n - offset : length;
  unsigned i;
  int err;

  snprintf(path, sizeof(path), "%s", bm_test_path("same"));
  write_file(path, d, n);
  opts_init(&o, lits);
  o.flags |= flags;
  o.window = window;
  o.threads = threads;
  o.offset = offset;
  o.length = length;
  o.match_end = flags & BM_SCAN_PART ? match_end_opt : 0;

  feeder_start(&f, d, n, max_chunk, 0);
  err = bm_scan_fd(f.rd, &o, &rs_);
  feeder_end(&f);
  ck_assert_msg(err == 0, "bm_scan_fd of %zu bytes (window %zu, chunks <= %zu, offset %llu) gave %s, os error %d",
                n, window, max_chunk, (unsigned long long)offset, bm_err_name(err), rs_.os_error);
  if (length == BM_TO_END) ck_assert(!f.write_failed);

  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_scan(src, &o, &rf));
  bm_source_close(src);

  ck_assert_uint_eq(rs_.offset, offset);
  ck_assert_uint_eq(rs_.length, len);
  ck_assert_uint_eq(rs_.bytes, len);
  ck_assert_uint_eq(rs_.length, rf.length);
  ck_assert_msg(rs_.xxh3 == hash_of(d + offset, (size_t)len), "xxh3 of %zu bytes (window %zu): %016llx",
                n, window, (unsigned long long)rs_.xxh3);
  ck_assert_uint_eq(rs_.xxh3, rf.xxh3);
  ck_assert_uint_eq(rs_.lines, count_lines(d + offset, (size_t)len));
  ck_assert_uint_eq(rs_.lines, rf.lines);
  for (i = 0; i < NLITS; i++) {
    size_t L = strlen(lits_text[i]), reach = (size_t)len;
    uint64_t want;
    /* a match beginning in the range may end up to L - 1 bytes past it, up to match_end */
    if (o.match_end != 0) {
      uint64_t mend = o.match_end == BM_TO_END ? n : o.match_end;
      reach = (size_t)(mend - offset < len + L - 1 ? mend - offset : len + L - 1);
      if (reach < len) reach = (size_t)len;
    }
    want = count_greedy(d + offset, reach, lits_text[i], L);
    if (reach > len) /* matches beginning past the range's end are not the range's */
      want -= count_greedy_from(d + offset, reach, lits_text[i], L, (size_t)len);
    ck_assert_msg(rs_.counts[i] == want && rf.counts[i] == want,
                  "'%s' over %zu bytes (window %zu): stream %llu, file %llu, expected %llu",
                  lits_text[i], n, window, (unsigned long long)rs_.counts[i],
                  (unsigned long long)rf.counts[i], (unsigned long long)want);
  }
  if (flags & BM_SCAN_PART) {
    /* The parts say the same: equal bytes once saved. */
    size_t na, nb;
    unsigned char *a, *b;
    ck_assert_ptr_nonnull(rs_.part);
    ck_assert_ptr_nonnull(rf.part);
    ck_assert_bm_ok(bm_scan_part_save(rs_.part, NULL, 0, &na));
    ck_assert_bm_ok(bm_scan_part_save(rf.part, NULL, 0, &nb));
    ck_assert_uint_eq(na, nb);
    a = malloc(na), b = malloc(nb);
    ck_assert_bm_ok(bm_scan_part_save(rs_.part, a, na, &na));
    ck_assert_bm_ok(bm_scan_part_save(rf.part, b, nb, &nb));
    ck_assert(memcmp(a, b, na) == 0);
    free(a), free(b);
    bm_scan_part_free(rs_.part);
    bm_scan_part_free(rf.part);
  }
  ck_assert_uint_le(rs_.peak_mapped, (uint64_t)(rs_.window + 2 * 5) * (rs_.threads + 2));
}

START_TEST(edges) {
  const size_t W = 64 * KiB;
  static const size_t sizes[] = {0, 1, 5, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 128 * KiB,
                                 128 * KiB + 3, 300 * KiB + 17};
  size_t i;
  rs = 0x5eed0001;
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    unsigned char *d = make_data(sizes[i], W);
    /* "needle" across every edge: the literal crosses each buffer boundary */
    compare_one(d, sizes[i], W, 16 * KiB, 2, 0, BM_TO_END, 0);
    compare_one(d, sizes[i], W, 16 * KiB, 1, 0, BM_TO_END, BM_SCAN_PART);
    free(d);
  }
}
END_TEST

/* Short reads: chunks of 1..7 bytes, then of up to 3000; windows not a power of two. */
START_TEST(short_reads) {
  unsigned char *d;
  rs = 0x5eed0002;
  d = make_data(40 * KiB + 11, 1000);
  compare_one(d, 40 * KiB + 11, 1000, 7, 2, 0, BM_TO_END, 0);
  compare_one(d, 40 * KiB + 11, 4099, 3000, 3, 0, BM_TO_END, 0);
  free(d);
  d = make_data(2 * MiB + 5, 256 * KiB);
  compare_one(d, 2 * MiB + 5, 256 * KiB, 100 * KiB, 2, 0, BM_TO_END, BM_SCAN_PART);
  compare_one(d, 2 * MiB + 5, 0, 64 * KiB, 0, 0, BM_TO_END, 0); /* the defaults */
  free(d);
}
END_TEST

/* offset (read and dropped) and length (exactly that many; the rest left unread). */
START_TEST(ranges) {
  unsigned char *d;
  rs = 0x5eed0003;
  d = make_data(200 * KiB, 8 * KiB);
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 12345, BM_TO_END, 0);
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 8 * KiB - 3, 64 * KiB, 0);
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 0, 8 * KiB, BM_SCAN_PART);
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 200 * KiB, BM_TO_END, 0); /* nothing left */
  /* matches that run past the range's end, up to match_end (read from the stream) */
  match_end_opt = BM_TO_END;
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 5, 16 * KiB - 4, BM_SCAN_PART);
  match_end_opt = 16 * KiB + 5;
  compare_one(d, 200 * KiB, 8 * KiB, 5000, 2, 5, 16 * KiB - 4, BM_SCAN_PART);
  match_end_opt = 0;
  free(d);
}
END_TEST

/* A stream that ends before the range: BM_ERANGE, before or inside it. */
START_TEST(short_stream) {
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  feeder_t f;
  unsigned char *d;
  rs = 0x5eed0004;
  d = make_data(10 * KiB, 0);
  opts_init(&o, lits);
  o.window = 4 * KiB;
  o.offset = 10 * KiB + 1;
  feeder_start(&f, d, 10 * KiB, 999, 0);
  ck_assert_bm_err(bm_scan_fd(f.rd, &o, &r), BM_ERANGE);
  feeder_end(&f);
  o.offset = 100;
  o.length = 10 * KiB;
  feeder_start(&f, d, 10 * KiB, 999, 0);
  ck_assert_bm_err(bm_scan_fd(f.rd, &o, &r), BM_ERANGE);
  ck_assert_ptr_null(r.part);
  feeder_end(&f);
  free(d);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Cancel and progress. */
typedef struct {
  volatile sig_atomic_t *flag;
  unsigned after_ms;
#ifdef _WIN32
  HANDLE thread;
#else
  pthread_t thread;
#endif
} canceller_t;

#ifdef _WIN32
static DWORD WINAPI canceller_main(LPVOID arg) {
#else
static void *canceller_main(void *arg) {
#endif
  canceller_t *c = arg;
  sleep_ms(c->after_ms);
  *c->flag = 1;
#ifdef _WIN32
  return 0;
#else
  return NULL;
#endif
}

static void canceller_start(canceller_t *c, volatile sig_atomic_t *flag, unsigned ms) {
  c->flag = flag;
  c->after_ms = ms;
#ifdef _WIN32
  c->thread = CreateThread(NULL, 0, canceller_main, c, 0, NULL);
  ck_assert_ptr_nonnull(c->thread);
#else
  ck_assert_int_eq(pthread_create(&c->thread, NULL, canceller_main, c), 0);
#endif
}

static void canceller_join(canceller_t *c) {
#ifdef _WIN32
  WaitForSingleObject(c->thread, INFINITE);
  CloseHandle(c->thread);
#else
  pthread_join(c->thread, NULL);
#endif
}

typedef struct {
  int calls, ret;
  uint64_t last_done, last_total;
  int total_nonzero_before_last;
} prog_t;

static int progress(uint64_t done, uint64_t total, void *arg) {
  prog_t *p = arg;
  if (p->calls > 0 && p->last_total != 0) p->total_nonzero_before_last = 1;
  ck_assert_uint_ge(done, p->last_done);
  p->calls++;
  p->last_done = done, p->last_total = total;
  return p->ret;
}

/* The writer sends a little and then nothing, its end open: the read waits. A cancel from
 * another thread (as a signal handler would set it, but no signal is sent: nothing gets
 * EINTR) ends the call; so does progress returning non-zero. A call that missed the
 * cancel would wait forever: the test's timeout fails it. */
START_TEST(cancel_while_blocked) {
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  volatile sig_atomic_t flag = 0;
  canceller_t c;
  feeder_t f;
  prog_t pg;
  unsigned char *d;
  rs = 0x5eed0005;
  d = make_data(3000, 0);
  opts_init(&o, lits);
  o.flags |= BM_SCAN_PART;
  o.window = 64 * KiB;
  o.cancel = &flag;
  feeder_start(&f, d, 3000, 1000, 1);
  canceller_start(&c, &flag, 150);
  ck_assert_bm_err(bm_scan_fd(f.rd, &o, &r), BM_ECANCELED);
  ck_assert_ptr_null(r.part);
  canceller_join(&c);
  feeder_end(&f);

  /* progress asks to stop: it is called while the read waits */
  memset(&pg, 0, sizeof(pg));
  pg.ret = 1;
  flag = 0;
  o.progress = progress;
  o.progress_arg = &pg;
  feeder_start(&f, d, 3000, 1000, 1);
  ck_assert_bm_err(bm_scan_fd(f.rd, &o, &r), BM_ECANCELED);
  ck_assert_int_eq(pg.calls, 1);
  feeder_end(&f);

  /* set before: nothing is read */
  flag = 1;
  o.progress = NULL;
  feeder_start(&f, d, 3000, 1000, 1);
  ck_assert_bm_err(bm_scan_fd(f.rd, &o, &r), BM_ECANCELED);
  feeder_end(&f);
  free(d);
}
END_TEST

/* progress: total 0 while the length is not known, then done == total == the bytes; with
 * a length, total is that length from the first call. */
START_TEST(progress_totals) {
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  feeder_t f;
  prog_t pg;
  unsigned char *d;
  const size_t n = 3 * MiB + 7;
  rs = 0x5eed0006;
  d = make_data(n, 0);
  opts_init(&o, lits);
  o.window = 128 * KiB;
  o.progress = progress;
  o.progress_arg = &pg;
  memset(&pg, 0, sizeof(pg));
  feeder_start(&f, d, n, 64 * KiB, 0);
  ck_assert_bm_ok(bm_scan_fd(f.rd, &o, &r));
  feeder_end(&f);
  ck_assert_int_ge(pg.calls, 1);
  ck_assert_int_eq(pg.total_nonzero_before_last, 0);
  ck_assert_uint_eq(pg.last_done, n);
  ck_assert_uint_eq(pg.last_total, n);
  memset(&pg, 0, sizeof(pg));
  o.length = n - 5;
  feeder_start(&f, d, n, 64 * KiB, 0);
  ck_assert_bm_ok(bm_scan_fd(f.rd, &o, &r));
  feeder_end(&f);
  ck_assert_uint_eq(pg.last_done, n - 5);
  ck_assert_uint_eq(pg.last_total, n - 5);
  ck_assert_uint_eq(r.length, n - 5);
  free(d);
}
END_TEST

/* An fd that cannot be read: a clear BM_EINVAL with the OS's own word for it. */
START_TEST(bad_fd) {
  bm_scan_opts_t o;
  bm_scan_result_t r;
  memset(&o, 0, sizeof(o));
  o.length = BM_TO_END;
  ck_assert_bm_err(bm_scan_fd(BM_OS_INVALID_HANDLE, &o, &r), BM_EINVAL);
#ifdef _WIN32
  ck_assert_int_eq(r.os_error, ERROR_INVALID_HANDLE);
  ck_assert_int_eq(bm_last_os_error(), ERROR_INVALID_HANDLE);
#else
  ck_assert_int_eq(r.os_error, EBADF);
  ck_assert_int_eq(bm_last_os_error(), EBADF);
  {
    int fds[2], dir;
    ck_assert_int_eq(pipe(fds), 0);
    close(fds[0]);
    /* closed */
    ck_assert_bm_err(bm_scan_fd(fds[0], &o, &r), BM_EINVAL);
    ck_assert_int_eq(r.os_error, EBADF);
    /* open for writing only: never readable, refused at once (not waited on) */
    ck_assert_bm_err(bm_scan_fd(fds[1], &o, &r), BM_EINVAL);
    ck_assert_int_eq(r.os_error, EBADF);
    close(fds[1]);
    dir = open(bm_test_tmpdir(), O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dir, 0);
    ck_assert_bm_err(bm_scan_fd(dir, &o, &r), BM_EISDIR);
    close(dir);
  }
#endif
  /* the options are checked as bm_scan checks them */
  ck_assert_bm_err(bm_scan_fd(BM_OS_INVALID_HANDLE, NULL, &r), BM_EINVAL);
  ck_assert_bm_err(bm_scan_fd(BM_OS_INVALID_HANDLE, &o, NULL), BM_EINVAL);
  o.flags = 1u << 20;
  ck_assert_bm_err(bm_scan_fd(BM_OS_INVALID_HANDLE, &o, &r), BM_EINVAL);
}
END_TEST

/* A regular file given as a descriptor is read too (standard input redirected from one). */
#ifndef _WIN32
START_TEST(regular_fd) {
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  char path[768];
  unsigned char *d;
  int fd;
  const size_t n = 5 * MiB + 3;
  rs = 0x5eed0007;
  d = make_data(n, 1 * MiB);
  snprintf(path, sizeof(path), "%s", bm_test_path("reg"));
  write_file(path, d, n);
  opts_init(&o, lits);
  o.window = 1 * MiB;
  fd = open(path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_bm_ok(bm_scan_fd(fd, &o, &r));
  close(fd);
  ck_assert_uint_eq(r.bytes, n);
  ck_assert_uint_eq(r.xxh3, hash_of(d, n));
  ck_assert_uint_eq(r.counts[3], count_greedy(d, n, "needle", 6));
  free(d);
}
END_TEST
#endif

/* ---------------------------------------------------------------------------------------
 * Many files. */
START_TEST(many_files) {
  enum { NF = 150 };
  bm_literal_t lits[NLITS];
  bm_scan_opts_t o;
  bm_scan_file_t *files = calloc(NF + 3, sizeof(*files));
  char (*paths)[768] = calloc(NF + 3, sizeof(*paths));
  size_t sizes[NF], i, nf = NF;
  unsigned char *data[NF];
  prog_t pg;
  uint64_t total = 0;
  int err;
  rs = 0x5eed0008;
  ck_assert_ptr_nonnull(files);
  ck_assert_ptr_nonnull(paths);
  for (i = 0; i < NF; i++) {
    char name[32];
    /* mostly small (read whole), some empty, some past 256 KiB (bm_scan) */
    sizes[i] = i % 37 == 5 ? 300 * KiB + (size_t)(rnd() % 5000) : i % 29 == 3 ? 0 : (size_t)(rnd() % (16 * KiB));
    if (i == 7) sizes[i] = 256 * KiB;
    if (i == 8) sizes[i] = 256 * KiB + 1;
    data[i] = make_data(sizes[i], 4 * KiB);
    snprintf(name, sizeof(name), "f%03zu", i);
    snprintf(paths[i], sizeof(paths[i]), "%s", bm_test_path(name));
    write_file(paths[i], data[i], sizes[i]);
    files[i].path = paths[i];
    total += sizes[i];
  }
  opts_init(&o, lits);
  o.progress = progress;
  o.progress_arg = &pg;
  memset(&pg, 0, sizeof(pg));
  ck_assert_bm_ok(bm_scan_files(files, nf, &o));
  ck_assert_uint_eq(pg.last_done, total);
  ck_assert_uint_eq(pg.last_total, total);
  o.progress = NULL;
  for (i = 0; i < NF; i++) {
    bm_scan_result_t rf;
    bm_source_t *src;
    unsigned k;
    ck_assert_int_eq(files[i].status, 0);
    ck_assert_uint_eq(files[i].result.bytes, sizes[i]);
    ck_assert_uint_eq(files[i].result.xxh3, hash_of(data[i], sizes[i]));
    ck_assert_uint_eq(files[i].result.lines, count_lines(data[i], sizes[i]));
    for (k = 0; k < NLITS; k++)
      ck_assert_uint_eq(files[i].result.counts[k],
                        count_greedy(data[i], sizes[i], lits_text[k], strlen(lits_text[k])));
    /* as bm_scan of the file, the range rules included */
    ck_assert_bm_ok(bm_file_open(&src, paths[i], BM_FILE_READ));
    ck_assert_bm_ok(bm_scan(src, &o, &rf));
    bm_source_close(src);
    ck_assert_uint_eq(files[i].result.xxh3, rf.xxh3);
    ck_assert_uint_eq(files[i].result.offset, rf.offset);
    ck_assert_uint_eq(files[i].result.length, rf.length);
  }

  /* a range: offset 100 of each file; too short a file is its own BM_ERANGE */
  o.offset = 100;
  o.length = 1000;
  err = bm_scan_files(files, nf, &o);
  for (i = 0; i < NF; i++) {
    if (sizes[i] < 1100) {
      ck_assert_int_eq(files[i].status, BM_ERANGE);
      continue;
    }
    ck_assert_int_eq(files[i].status, 0);
    ck_assert_uint_eq(files[i].result.xxh3, hash_of(data[i] + 100, 1000));
  }
  ck_assert_int_eq(err, BM_ERANGE); /* the first failure's */

  /* what cannot be scanned does not stop the others */
  o.offset = 0;
  o.length = BM_TO_END;
  snprintf(paths[NF], sizeof(paths[NF]), "%s", bm_test_path("missing"));
  files[NF].path = paths[NF];
  files[NF + 1].path = "";
  nf = NF + 2;
  err = bm_scan_files(files, nf, &o);
  ck_assert_int_eq(err, BM_ENOENT);
  ck_assert_int_eq(files[NF].status, BM_ENOENT);
  ck_assert_int_ne(files[NF].result.os_error, 0);
  ck_assert_int_eq(files[NF + 1].status, BM_EINVAL);
  for (i = 0; i < NF; i++) ck_assert_int_eq(files[i].status, 0);

  /* canceled: every file says so, none is left "scanned" */
  {
    volatile sig_atomic_t flag = 1;
    o.cancel = &flag;
    ck_assert_bm_err(bm_scan_files(files, NF, &o), BM_ECANCELED);
    for (i = 0; i < NF; i++) ck_assert_int_eq(files[i].status, BM_ECANCELED);
    o.cancel = NULL;
  }
  ck_assert_bm_err(bm_scan_files(NULL, 1, &o), BM_EINVAL);
  ck_assert_bm_ok(bm_scan_files(NULL, 0, &o));
  for (i = 0; i < NF; i++) free(data[i]);
  free(files);
  free(paths);
}
END_TEST

#ifndef _WIN32
/* Opens the FIFO for writing (waiting there for its reader), then feeds it. */
static void *fifo_writer_main(void *arg) {
  feeder_t *f = arg;
  do f->wr = open(f->fifo_path, O_WRONLY | O_CLOEXEC);
  while (f->wr < 0 && errno == EINTR);
  if (f->wr < 0) {
    f->write_failed = 1;
    return NULL;
  }
  feeder_body(f);
  return NULL;
}

/* A FIFO among the files: read as a stream, its writer a thread; and a /proc file. */
START_TEST(files_fifo) {
  bm_scan_opts_t o;
  bm_literal_t lits[NLITS];
  bm_scan_file_t files[3];
  char fifo[768], reg[768];
  unsigned char *d;
  pthread_t t;
  feeder_t f;
  const size_t n = 700 * KiB + 1;
  rs = 0x5eed0009;
  d = make_data(n, 64 * KiB);
  snprintf(fifo, sizeof(fifo), "%s", bm_test_path("fifo"));
  snprintf(reg, sizeof(reg), "%s", bm_test_path("reg"));
  write_file(reg, d, 1000);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  /* A reader that closed the FIFO once its writer had opened it would end that writer:
   * EPIPE, failing the test with a message rather than SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  /* The writer opens the FIFO (it waits there for the reader), then writes and closes. */
  memset(&f, 0, sizeof(f));
  f.data = d;
  f.n = n;
  f.max_chunk = 50 * KiB;
  f.seed = 7;
  f.rd = -1;
  f.fifo_path = fifo;
  ck_assert_int_eq(pthread_create(&t, NULL, fifo_writer_main, &f), 0);
  memset(files, 0, sizeof(files));
  files[0].path = reg;
  files[1].path = fifo;
  /* a /proc file claims to be empty: it is read as a stream (it cannot be mapped) */
  files[2].path = "/proc/self/status";
  opts_init(&o, lits);
  ck_assert_bm_ok(bm_scan_files(files, access(files[2].path, R_OK) == 0 ? 3 : 2, &o));
  pthread_join(t, NULL);
  ck_assert(!f.write_failed);
  ck_assert_int_eq(files[1].status, 0);
  ck_assert_uint_eq(files[1].result.bytes, n);
  ck_assert_uint_eq(files[1].result.xxh3, hash_of(d, n));
  ck_assert_uint_eq(files[1].result.counts[3], count_greedy(d, n, "needle", 6));
  ck_assert_uint_eq(files[0].result.xxh3, hash_of(d, 1000));
  if (access(files[2].path, R_OK) == 0) {
    ck_assert_int_eq(files[2].status, 0);
    ck_assert_uint_gt(files[2].result.bytes, 0);
    ck_assert_uint_gt(files[2].result.lines, 0);
  }
  unlink(fifo);
  free(d);
}
END_TEST
#endif

Suite *stream_suite(void) {
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("pipe");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, edges);
  tcase_add_test(tc, short_reads);
  tcase_add_test(tc, ranges);
  tcase_add_test(tc, short_stream);
#ifndef _WIN32
  tcase_add_test(tc, regular_fd);
#endif
  suite_add_tcase(s, tc);
  tc = tcase_create("cancel");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, cancel_while_blocked);
  tcase_add_test(tc, progress_totals);
  tcase_add_test(tc, bad_fd);
  suite_add_tcase(s, tc);
  tc = tcase_create("files");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, many_files);
#ifndef _WIN32
  tcase_add_test(tc, files_fifo);
#endif
  suite_add_tcase(s, tc);
  return s;
}
