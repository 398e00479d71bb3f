/* bulkmap_uv's own Check suite (its own runner: the core's suites never link libuv). The
 * pipeline against the core's window cursor (the same windows), bytes seen against the
 * pattern the test wrote, max_mapped, callback OS errors, streams read from a pipe; the
 * scan (bm_uv_scan_start) over files, a pipe and many small files against the pattern's
 * own hash and newlines, its errors, and a cancel. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "bulkmap_uv.h"

#define MiB (1u << 20)

static unsigned char pat(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

static char path[512];
static bm_uv_scan_t scan_handle;

/* A file of n pattern bytes, written through libuv (no bulkmap involved). */
static void make_file(uint64_t n) {
  uv_fs_t req;
  uv_file fd;
  unsigned char *buf = malloc(MiB);
  uint64_t done = 0;
  static int serial;
  /* A name a test: on Windows a file still mapped by a failed test cannot be truncated. */
  snprintf(path, sizeof(path), "%s/bmuv-%d-%d.bin", getenv("TMPDIR") ? getenv("TMPDIR") : ".",
           (int)uv_os_getpid(), serial++);
  fd = uv_fs_open(NULL, &req, path, UV_FS_O_CREAT | UV_FS_O_TRUNC | UV_FS_O_WRONLY, 0600, NULL);
  uv_fs_req_cleanup(&req);
  ck_assert_int_ge(fd, 0);
  while (done < n) {
    size_t k = n - done < MiB ? (size_t)(n - done) : MiB, i;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)k);
    for (i = 0; i < k; i++) buf[i] = pat(done + i);
    ck_assert_int_eq(uv_fs_write(NULL, &req, fd, &b, 1, (int64_t)done, NULL), (int)k);
    uv_fs_req_cleanup(&req);
    done += k;
  }
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  free(buf);
}

static void remove_file(void) {
  uv_fs_t req;
  uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
}

/* What the callbacks saw. */
typedef struct {
  uint64_t start;             /* first byte of the range */
  uint64_t next;              /* next new byte expected by the ordered stage */
  uint64_t overlap;
  int bad, seen, merged, done, status, fail_at, fail_os;
  uint64_t offs[4096], lens[4096];
} seen_t;

static int cb_parallel(bm_uv_window_t *w, void *data) {
  seen_t *s = data;
  size_t i;
  if ((int)w->index == s->fail_at) return bm_uv_window_fail(w, BM_EIO, s->fail_os);
  for (i = 0; i < w->length; i++)
    if (w->data[i] != pat(w->offset + i)) return BM_ECORRUPT;
  return 0;
}

static int cb_ordered(bm_uv_window_t *w, void *data) {
  seen_t *s = data;
  size_t i;
  /* In order, each window's new bytes follow the last; the overlap repeats what came
   * before, up to `overlap` bytes. */
  if (w->offset + w->overlap != s->next) s->bad++;
  if (w->index > 0 && w->overlap != (s->next - s->start < s->overlap ? s->next - s->start : s->overlap)) s->bad++;
  if (w->index == 0 && w->overlap != 0) s->bad++;
  for (i = 0; i < w->length; i++)
    if (w->data[i] != pat(w->offset + i)) s->bad++;
  if (w->index < 4096) {
    s->offs[w->index] = w->offset;
    s->lens[w->index] = w->length;
  }
  s->next = w->offset + w->length;
  s->seen++;
  return 0;
}

static void cb_merged(bm_uv_window_t *w, void *data) {
  seen_t *s = data;
  if (w->data == NULL) s->merged++;
}

static void cb_done(bm_uv_pipeline_t *p, int status, void *data) {
  seen_t *s = data;
  (void)p;
  s->done++;
  s->status = status;
}

static void opts_init(bm_uv_pipeline_opts_t *o, seen_t *s, uint64_t offset, uint64_t length,
                      uint64_t window, uint64_t overlap) {
  memset(o, 0, sizeof(*o));
  memset(s, 0, sizeof(*s));
  o->offset = offset;
  o->length = length;
  o->window = window;
  o->overlap = overlap;
  o->prefault = 1;
  o->parallel = cb_parallel;
  o->ordered = cb_ordered;
  o->merged = cb_merged;
  o->done = cb_done;
  o->data = s;
  s->start = s->next = offset;
  s->overlap = overlap;
  s->fail_at = -1;
}

static int run(bm_uv_pipeline_t *p, bm_source_t *src, bm_uv_pipeline_opts_t *o) {
  uv_loop_t loop;
  int err;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  err = bm_uv_pipeline_start(p, &loop, src, o);
  if (err == 0) uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  return err;
}

/* The pipeline walks the windows a bm_window_t cursor walks, and every byte is right. */
START_TEST(test_same_windows_as_cursor) {
  static const struct { uint64_t off, len, win, ovl; } cases[] = {
    {0, BM_TO_END, 64 * 1024, 0}, {1, BM_TO_END, 4096, 3}, {12345, 1000000, 65536, 100},
    {0, 0, 4096, 0}, {5 * MiB - 1, 1, 4096, 0}, {0, BM_TO_END, 1, 0}, {7, 3 * MiB, 200000, 4095},
  };
  bm_source_t *src;
  size_t c;
  make_file(5 * MiB);
  ck_assert_int_eq(bm_file_open(&src, path, BM_FILE_READ), 0);
  for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    bm_uv_pipeline_t p;
    bm_uv_pipeline_opts_t o;
    bm_window_opts_t wo;
    bm_window_t w;
    seen_t s;
    uint64_t k = 0;
    opts_init(&o, &s, cases[c].off, cases[c].len, cases[c].win, cases[c].ovl);
    o.inflight = 3;
    ck_assert_int_eq(run(&p, src, &o), 0);
    ck_assert_int_eq(s.done, 1);
    ck_assert_int_eq(s.status, 0);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_int_eq(s.merged, s.seen);
    memset(&wo, 0, sizeof(wo));
    wo.window = cases[c].win;
    wo.overlap = cases[c].ovl;
    wo.start = cases[c].off;
    wo.length = cases[c].len;
    ck_assert_int_eq(bm_window_init(&w, src, &wo), 0);
    while (bm_window_next(&w) == 1) {
      ck_assert_uint_eq(s.offs[k], w.offset);
      ck_assert_uint_eq(s.lens[k], w.length);
      k++;
    }
    bm_window_close(&w);
    ck_assert_uint_eq(k, (uint64_t)s.seen);
    ck_assert_uint_eq(p.bytes_done, p.total);
  }
  bm_source_close(src);
  remove_file();
}
END_TEST

/* max_mapped bounds the bytes mapped at once, whatever inflight asks for. */
START_TEST(test_max_mapped) {
  bm_source_t *src;
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  uint64_t g;
  make_file(8 * MiB);
  ck_assert_int_eq(bm_file_open(&src, path, BM_FILE_READ), 0);
  g = bm_source_granularity(src);
  opts_init(&o, &s, 0, BM_TO_END, 4 * MiB, 100);
  o.inflight = 8;
  o.max_mapped = 16 * g;
  ck_assert_int_eq(run(&p, src, &o), 0);
  ck_assert_int_eq(s.status, 0);
  ck_assert_int_eq(s.bad, 0);
  ck_assert_uint_le(p.peak_mapped, o.max_mapped);
  ck_assert_uint_gt(p.peak_mapped, 0);
  ck_assert_uint_lt(p.window, 4 * MiB);
  /* Too small for even one window of a granule: refused. */
  opts_init(&o, &s, 0, BM_TO_END, 4 * MiB, 0);
  o.max_mapped = g;
  ck_assert_int_eq(run(&p, src, &o), BM_EINVAL);
  bm_source_close(src);
  remove_file();
}
END_TEST

/* A callback's failure stops the walk and its OS error reaches the caller. */
START_TEST(test_callback_os_error) {
  bm_source_t *src;
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  make_file(2 * MiB);
  ck_assert_int_eq(bm_file_open(&src, path, BM_FILE_READ), 0);
  opts_init(&o, &s, 0, BM_TO_END, 65536, 0);
  s.fail_at = 5;
  s.fail_os = 5; /* EIO on POSIX, ERROR_ACCESS_DENIED on Windows: any number will do */
  ck_assert_int_eq(run(&p, src, &o), 0);
  ck_assert_int_eq(s.done, 1);
  ck_assert_int_eq(s.status, BM_EIO);
  ck_assert_int_eq(p.os_error, 5);
  ck_assert_int_le(s.seen, 5);
  bm_source_close(src);
  remove_file();
}
END_TEST

START_TEST(test_errors) {
  bm_source_t *src;
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  uv_loop_t loop;
  make_file(4096);
  ck_assert_int_eq(bm_file_open(&src, path, BM_FILE_READ), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  /* overlap >= window (rounded up to the granularity: 64 KiB on Windows) */
  opts_init(&o, &s, 0, BM_TO_END, 4096, 1u << 20);
  ck_assert_int_eq(bm_uv_pipeline_start(&p, &loop, src, &o), BM_EINVAL);
  opts_init(&o, &s, 4097, BM_TO_END, 4096, 0);
  ck_assert_int_eq(bm_uv_pipeline_start(&p, &loop, src, &o), BM_ERANGE);
  opts_init(&o, &s, 10, UINT64_MAX - 5, 4096, 0);
  ck_assert_int_eq(bm_uv_pipeline_start(&p, &loop, src, &o), BM_EOVERFLOW);
  opts_init(&o, &s, 0, BM_TO_END, 4096, 0);
  o.inflight = BM_UV_MAX_INFLIGHT + 1;
  ck_assert_int_eq(bm_uv_pipeline_start(&p, &loop, src, &o), BM_EINVAL);
  o.inflight = 0;
  o.done = NULL;
  ck_assert_int_eq(bm_uv_pipeline_start(&p, &loop, src, &o), BM_EINVAL);
  ck_assert_int_eq(bm_uv_pipeline_start_fd(&p, &loop, -1, &o), BM_EINVAL);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  bm_source_close(src);
  remove_file();
}
END_TEST

/* Streams: a writer thread feeds a pipe in odd-sized pieces. */
typedef struct {
  uv_file fd;
  uint64_t n;
} writer_t;

static void writer(void *arg) {
  writer_t *w = arg;
  unsigned char buf[7777];
  uint64_t done = 0;
  while (done < w->n) {
    size_t k = w->n - done < sizeof(buf) ? (size_t)(w->n - done) : sizeof(buf), i;
    uv_fs_t req;
    uv_buf_t b;
    int r;
    for (i = 0; i < k; i++) buf[i] = pat(done + i);
    b = uv_buf_init((char *)buf, (unsigned)k);
    r = uv_fs_write(NULL, &req, w->fd, &b, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (r <= 0) break;
    done += (uint64_t)r;
  }
  {
    uv_fs_t req;
    uv_fs_close(NULL, &req, w->fd, NULL);
    uv_fs_req_cleanup(&req);
  }
}

static int run_stream(uint64_t n, bm_uv_pipeline_opts_t *o, bm_uv_pipeline_t *p) {
  uv_file fds[2];
  uv_thread_t t;
  writer_t w;
  uv_loop_t loop;
  uv_fs_t req;
  int err;
  ck_assert_int_eq(uv_pipe(fds, 0, 0), 0);
  w.fd = fds[1];
  w.n = n;
  ck_assert_int_eq(uv_thread_create(&t, writer, &w), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  err = bm_uv_pipeline_start_fd(p, &loop, fds[0], o);
  if (err == 0) uv_run(&loop, UV_RUN_DEFAULT);
  /* Closing the read end first lets a writer blocked on a full pipe go. */
  uv_fs_close(NULL, &req, fds[0], NULL);
  uv_fs_req_cleanup(&req);
  uv_thread_join(&t);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  return err;
}

START_TEST(test_stream) {
  static const struct { uint64_t n, off, len, win, ovl; } cases[] = {
    {1000000, 0, BM_TO_END, 4096, 0}, {1000000, 0, BM_TO_END, 65536, 5},
    {1000000, 12345, BM_TO_END, 10000, 9999}, {1000000, 3, 50000, 7, 6},
    {0, 0, BM_TO_END, 4096, 0}, {65536, 0, BM_TO_END, 4096, 3}, {100, 100, 0, 4096, 0},
  };
  size_t c;
  for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    bm_uv_pipeline_t p;
    bm_uv_pipeline_opts_t o;
    seen_t s;
    uint64_t want = cases[c].len != BM_TO_END ? cases[c].len : cases[c].n - cases[c].off;
    opts_init(&o, &s, cases[c].off, cases[c].len, cases[c].win, cases[c].ovl);
    o.inflight = 3;
    ck_assert_int_eq(run_stream(cases[c].n, &o, &p), 0);
    ck_assert_msg(s.status == 0, "case %d: status %d", (int)c, s.status);
    ck_assert_int_eq(s.bad, 0);
    ck_assert_uint_eq(s.next, cases[c].off + want);
    ck_assert_uint_eq(p.bytes_done, want);
    ck_assert_uint_le(p.peak_mapped, 3 * (cases[c].win + cases[c].ovl));
  }
}
END_TEST

/* A stream that ends before the range: BM_ERANGE. */
START_TEST(test_stream_short) {
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  opts_init(&o, &s, 0, 5000, 4096, 0);
  ck_assert_int_eq(run_stream(4000, &o, &p), 0);
  ck_assert_int_eq(s.status, BM_ERANGE);
  opts_init(&o, &s, 5000, BM_TO_END, 4096, 0);
  ck_assert_int_eq(run_stream(4000, &o, &p), 0);
  ck_assert_int_eq(s.status, BM_ERANGE);
}
END_TEST

/* A callback failing on a stream passes its OS error on too. */
START_TEST(test_stream_os_error) {
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  opts_init(&o, &s, 0, BM_TO_END, 4096, 0);
  s.fail_at = 2;
  s.fail_os = 28;
  ck_assert_int_eq(run_stream(100000, &o, &p), 0);
  ck_assert_int_eq(s.status, BM_EIO);
  ck_assert_int_eq(p.os_error, 28);
}
END_TEST

#ifndef _WIN32
/* A cancel wakes a read that waits on a pipe nobody writes to. */
static void on_cancel_timer(uv_timer_t *t) {
  bm_uv_pipeline_cancel(t->data, BM_EBUSY);
  uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_stream_cancel) {
  uv_file fds[2];
  uv_loop_t loop;
  uv_timer_t t;
  uv_fs_t req;
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o;
  seen_t s;
  uint64_t t0;
  ck_assert_int_eq(uv_pipe(fds, 0, 0), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  opts_init(&o, &s, 0, BM_TO_END, 4096, 0);
  ck_assert_int_eq(bm_uv_pipeline_start_fd(&p, &loop, fds[0], &o), 0);
  uv_timer_init(&loop, &t);
  t.data = &p;
  uv_timer_start(&t, on_cancel_timer, 100, 0);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(s.done, 1);
  ck_assert_int_eq(s.status, BM_EBUSY);
  ck_assert_uint_lt(uv_hrtime() - t0, 5000000000ull);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  uv_fs_close(NULL, &req, fds[0], NULL);
  uv_fs_req_cleanup(&req);
  uv_fs_close(NULL, &req, fds[1], NULL);
  uv_fs_req_cleanup(&req);
}
END_TEST
#endif

/* ---------------------------------------------------------------------------------------
 * The scan. Expected: the pattern's XXH3-64 (hashed here, in one piece) and its newlines
 * (counted here). */
static void pattern_expect(uint64_t off, uint64_t n, uint64_t *xxh3, uint64_t *lines) {
  bm_xxh3_t *h = bm_xxh3_new();
  unsigned char *buf = malloc(n ? (size_t)n : 1);
  uint64_t i;
  ck_assert_ptr_nonnull(h);
  *lines = 0;
  for (i = 0; i < n; i++) *lines += (buf[i] = pat(off + i)) == '\n';
  bm_xxh3_update(h, buf, (size_t)n);
  *xxh3 = bm_xxh3_digest(h);
  bm_xxh3_free(h);
  free(buf);
}

typedef struct {
  size_t reported[512];
  size_t nreported;
  int done, status;
  uint64_t progress_done;
} scan_seen_t;

static void scan_item_done(bm_uv_scan_t *s, size_t item, void *data) {
  scan_seen_t *v = data;
  (void)s;
  v->reported[v->nreported++] = item;
}

static void scan_progress(bm_uv_scan_t *s, size_t item, uint64_t done, uint64_t total, void *data) {
  scan_seen_t *v = data;
  (void)s;
  (void)item;
  (void)total;
  v->progress_done = done;
}

static void scan_done(bm_uv_scan_t *s, int status, void *data) {
  scan_seen_t *v = data;
  (void)s;
  v->done++;
  v->status = status;
}

static void scan_opts(bm_uv_scan_opts_t *o, scan_seen_t *v, uint64_t window) {
  memset(o, 0, sizeof(*o));
  memset(v, 0, sizeof(*v));
  o->scan.flags = BM_SCAN_HASH | BM_SCAN_LINES;
  o->scan.length = BM_TO_END;
  o->scan.window = window;
  o->scan.threads = 2;
  o->item_done = scan_item_done;
  o->progress = scan_progress;
  o->done = scan_done;
  o->data = v;
}

/* Files small (read whole) and large (walked, many windows), a missing one, a pipe, and
 * many small files: each its own result, reported once, in order. */
START_TEST(test_scan_items) {
  static const uint64_t sizes[] = {100, 300 << 10, 5 * MiB + 17, 1};
  char paths[4][512];
  bm_uv_scan_item_t items[6];
  bm_uv_scan_opts_t o;
  scan_seen_t v;
  uv_file fds[2];
  uv_thread_t t;
  writer_t w;
  uv_loop_t loop;
  uv_fs_t req;
  uint64_t x, l;
  size_t i;

  for (i = 0; i < 4; i++) {
    make_file(sizes[i]);
    memcpy(paths[i], path, sizeof(path));
  }
  memset(items, 0, sizeof(items));
  for (i = 0; i < 4; i++) items[i].path = paths[i];
  items[4].path = "no/such/file";
  ck_assert_int_eq(uv_pipe(fds, 0, 0), 0);
  items[5].fd = fds[0];
  w.fd = fds[1];
  w.n = 3 * MiB + 5;
  ck_assert_int_eq(uv_thread_create(&t, writer, &w), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  scan_opts(&o, &v, 1 * MiB);
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, &loop, items, 6, &o), 0);
  ck_assert_int_eq(v.nreported, 0); /* nothing before the loop runs */
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_thread_join(&t);
  uv_fs_close(NULL, &req, fds[0], NULL);
  uv_fs_req_cleanup(&req);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert_int_eq(v.done, 1);
  ck_assert_int_eq(v.status, 0);
  ck_assert_uint_eq(v.nreported, 6);
  for (i = 0; i < 6; i++) ck_assert_uint_eq(v.reported[i], i);
  for (i = 0; i < 4; i++) {
    pattern_expect(0, sizes[i], &x, &l);
    ck_assert_msg(items[i].status == 0, "item %d: status %d", (int)i, items[i].status);
    ck_assert_uint_eq(items[i].result.bytes, sizes[i]);
    ck_assert_uint_eq(items[i].result.xxh3, x);
    ck_assert_uint_eq(items[i].result.lines, l);
    ck_assert_int_eq(items[i].stream, 0);
  }
  ck_assert_uint_eq(items[0].result.peak_mapped, 0);  /* read whole */
  ck_assert_uint_gt(items[2].result.peak_mapped, 0);  /* walked */
  ck_assert_uint_eq(items[2].result.window, 1 * MiB);
  ck_assert_int_eq(items[4].status, BM_ENOENT);
  ck_assert_int_eq(items[4].failed_at, BM_UV_SCAN_AT_FILE);
  pattern_expect(0, w.n, &x, &l);
  ck_assert_int_eq(items[5].status, 0);
  ck_assert_int_eq(items[5].stream, 1);
  ck_assert_uint_eq(items[5].result.bytes, w.n);
  ck_assert_uint_eq(items[5].result.length, w.n);
  ck_assert_uint_eq(items[5].result.xxh3, x);
  ck_assert_uint_eq(items[5].result.lines, l);
  ck_assert_uint_eq(v.progress_done, w.n); /* the last window of the last walk */

  /* A range: offset past the end of one file (BM_ERANGE at the file), within the other. */
  {
    bm_uv_scan_item_t two[2];
    memset(two, 0, sizeof(two));
    two[0].path = paths[0];
    two[1].path = paths[2];
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    scan_opts(&o, &v, 0);
    o.scan.offset = 1000;
    o.scan.length = 4 * MiB;
    ck_assert_int_eq(bm_uv_scan_start(&scan_handle, &loop, two, 2, &o), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(two[0].status, BM_ERANGE);
    ck_assert_int_eq(two[0].failed_at, BM_UV_SCAN_AT_RANGE);
    ck_assert_uint_eq(two[0].size, 100);
    pattern_expect(1000, 4 * MiB, &x, &l);
    ck_assert_int_eq(two[1].status, 0);
    ck_assert_uint_eq(two[1].result.xxh3, x);
    ck_assert_uint_eq(two[1].result.window, 64 * MiB); /* the default for a file */
  }
  for (i = 0; i < 4; i++) {
    memcpy(path, paths[i], sizeof(path));
    remove_file();
  }
}
END_TEST

/* Many small files, more than one batch of them on the pool: one result each. */
START_TEST(test_scan_many_small) {
  enum { N = 300 };
  static char paths[N][512];
  static bm_uv_scan_item_t items[N];
  bm_uv_scan_opts_t o;
  scan_seen_t v;
  uv_loop_t loop;
  uint64_t x, l;
  size_t i;
  for (i = 0; i < N; i++) {
    make_file(1 + i * 37);
    memcpy(paths[i], path, sizeof(path));
  }
  memset(items, 0, sizeof(items));
  for (i = 0; i < N; i++) items[i].path = paths[i];
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  scan_opts(&o, &v, 0);
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, &loop, items, N, &o), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert_int_eq(v.status, 0);
  ck_assert_uint_eq(v.nreported, N);
  for (i = 0; i < N; i++) {
    pattern_expect(0, 1 + i * 37, &x, &l);
    ck_assert_uint_eq(v.reported[i], i);
    ck_assert_int_eq(items[i].status, 0);
    ck_assert_uint_eq(items[i].result.xxh3, x);
    ck_assert_uint_eq(items[i].result.lines, l);
    memcpy(path, paths[i], sizeof(path));
    remove_file();
  }
}
END_TEST

#ifndef _WIN32
/* A cancel wakes the walk of a pipe nobody writes to; the items after it are not reported
 * and carry the cancel's status. */
static void on_scan_cancel_timer(uv_timer_t *t) {
  bm_uv_scan_cancel(t->data, BM_EBUSY);
  uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_scan_cancel) {
  uv_file fds[2];
  uv_loop_t loop;
  uv_timer_t t;
  uv_fs_t req;
  bm_uv_scan_item_t items[3];
  bm_uv_scan_opts_t o;
  scan_seen_t v;
  uint64_t t0;
  make_file(1000);
  memset(items, 0, sizeof(items));
  items[0].path = path;
  ck_assert_int_eq(uv_pipe(fds, 0, 0), 0);
  items[1].fd = fds[0];
  items[2].path = path;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  scan_opts(&o, &v, 0);
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, &loop, items, 3, &o), 0);
  uv_timer_init(&loop, &t);
  t.data = &scan_handle;
  uv_timer_start(&t, on_scan_cancel_timer, 100, 0);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(v.done, 1);
  ck_assert_int_eq(v.status, BM_EBUSY);
  ck_assert_uint_eq(v.nreported, 1);
  ck_assert_int_eq(items[0].status, 0);
  ck_assert_int_eq(items[1].status, BM_EBUSY);
  ck_assert_int_eq(items[2].status, BM_EBUSY);
  ck_assert_uint_lt(uv_hrtime() - t0, 5000000000ull);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  uv_fs_close(NULL, &req, fds[0], NULL);
  uv_fs_req_cleanup(&req);
  uv_fs_close(NULL, &req, fds[1], NULL);
  uv_fs_req_cleanup(&req);
  remove_file();
}
END_TEST
#endif

/* Arguments refused before anything starts. */
START_TEST(test_scan_errors) {
  bm_uv_scan_item_t it;
  bm_uv_scan_opts_t o;
  scan_seen_t v;
  memset(&it, 0, sizeof(it));
  it.fd = -1;
  scan_opts(&o, &v, 0);
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, uv_default_loop(), &it, 1, &o), BM_EINVAL);
  it.path = "x";
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, uv_default_loop(), &it, 0, &o), BM_EINVAL);
  o.done = NULL;
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, uv_default_loop(), &it, 1, &o), BM_EINVAL);
  scan_opts(&o, &v, 0);
  o.scan.threads = BM_SCAN_MAX_THREADS + 1;
  ck_assert_int_eq(bm_uv_scan_start(&scan_handle, uv_default_loop(), &it, 1, &o), BM_EINVAL);
  ck_assert_int_eq(v.done, 0);
}
END_TEST

static Suite *uv_suite(void) {
  Suite *s = suite_create("uv");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_same_windows_as_cursor);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("limits");
  tcase_add_test(tc, test_max_mapped);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, test_callback_os_error);
  tcase_add_test(tc, test_stream_os_error);
  tcase_add_test(tc, test_stream_short);
  suite_add_tcase(s, tc);
  tc = tcase_create("stream");
  tcase_add_test(tc, test_stream);
#ifndef _WIN32
  tcase_add_test(tc, test_stream_cancel);
#else
  printf("SKIP stream_cancel: a read blocked on a Windows pipe cannot be woken\n");
#endif
  suite_add_tcase(s, tc);
  tc = tcase_create("scan");
  tcase_add_test(tc, test_scan_items);
  tcase_add_test(tc, test_scan_many_small);
  tcase_add_test(tc, test_scan_errors);
#ifndef _WIN32
  tcase_add_test(tc, test_scan_cancel);
#else
  printf("SKIP scan_cancel: a read blocked on a Windows pipe cannot be woken\n");
#endif
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(uv_suite());
  int failed;
#ifndef _WIN32
  signal(SIGPIPE, SIG_IGN); /* a writer whose reader stopped early (a range) gets EPIPE */
#endif
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
