/* bulkmap scan: hash, count lines and count a literal over files of any size, streaming
 * their windows through the bulkmap_uv pipeline (counts in parallel, the hash in order).
 * A pipe, a FIFO or `-` (standard input) is read into buffers that go through the same
 * pipeline and the same callbacks. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "run.h"

/* The library's scan stages on the pipeline: a window is counted on any pool thread into
 * a work taken from a small pool (at most `inflight` windows are between the two stages),
 * and merged in order. */
typedef struct {
  const bm_scan_opts_t *opts;
  bm_scan_t *scan;
  bm_scan_work_t *works[BM_UV_MAX_INFLIGHT + 1];
  atomic_int busy[BM_UV_MAX_INFLIGHT + 1];
} scan_t;

static bm_scan_chunk_t scan_chunk(const bm_uv_window_t *w) {
  bm_scan_chunk_t c;
  c.data = w->data;
  c.length = w->length;
  c.overlap = w->overlap;
  c.avail = w->length;
  c.offset = w->offset;
  c.final = w->last;
  return c;
}

static int scan_window_parallel(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  bm_scan_chunk_t c = scan_chunk(w);
  int i;
  for (i = 0; i < BM_UV_MAX_INFLIGHT; i++) {
    int expect = 0;
    if (atomic_compare_exchange_strong(&s->busy[i], &expect, 1)) break;
  }
  *(int *)w->user = i;
  return bm_scan_work_run(s->scan, s->works[i], &c);
}

static int scan_window_ordered(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  bm_scan_chunk_t c = scan_chunk(w);
    int i = *(int *)w->user, err;
  err = bm_scan_merge(s->scan, s->works[i], &c);
  if (i < BM_UV_MAX_INFLIGHT) atomic_store(&s->busy[i], 0);
  return err;
}

/* Without a parallel stage (the hash alone) the spare work, empty, is merged. */
static int scan_hash_only(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  bm_scan_chunk_t c = scan_chunk(w);
  return bm_scan_merge(s->scan, s->works[BM_UV_MAX_INFLIGHT], &c);
}

static void scan_free(scan_t *s) {
  int i;
  for (i = 0; i <= BM_UV_MAX_INFLIGHT; i++) {
    bm_scan_work_free(s->works[i]);
    s->works[i] = NULL;
  }
  bm_scan_free(s->scan);
  s->scan = NULL;
}

static int scan_new(scan_t *s, const bm_scan_opts_t *o) {
  int i, err;
  memset(s, 0, sizeof(*s));
  s->opts = o;
  if ((err = bm_scan_begin(&s->scan, o)) != 0) return err;
  for (i = 0; i <= BM_UV_MAX_INFLIGHT; i++) {
    atomic_init(&s->busy[i], 0);
    if ((err = bm_scan_work_new(s->scan, &s->works[i])) != 0) {
      scan_free(s);
      return err;
    }
  }
  return 0;
}

typedef struct {
  uint64_t offset, length, window;
  int have_length, progress, window_given;
  unsigned threads;
} scan_args_t;

typedef struct {
  uint64_t offset, length, bytes, xxh3, lines, window, peak;
  uint64_t counts[BM_SCAN_MAX_LITERALS]; /* one a --count, in the order given */
  double seconds;
} scan_result_t;

/* A small regular file is read on this thread into one buffer and scanned there
 * (bm_scan_buffer): for many small files the hops to the thread pool and back, and
 * mapping, cost more than the work (10,000 files of 4 KiB: see perf/RESULTS.md). Returns
 * 1 when done, 0 when the file is not one for this path (the pipeline then takes it,
 * and reports whatever is wrong with it). */
#define SCAN_SMALL (256u << 10)

static int scan_small(const char *file, const scan_args_t *a, const bm_scan_opts_t *base,
                      scan_result_t *res, uv_file *fifo) {
  unsigned char *buf = NULL;
  uv_fs_t req;
  uv_file fd;
  uv_buf_t b;
  uint64_t size, length;
  ssize_t n;
  double t0 = cli_now();
  int done = 0;

  *fifo = -1;
  /* O_NONBLOCK: a FIFO opens at once, writer or not (and is then read through poll). */
  fd = uv_fs_open(NULL, &req, file, UV_FS_O_RDONLY | UV_FS_O_NONBLOCK, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return 0;
  if (uv_fs_fstat(NULL, &req, fd, NULL) != 0) {
    uv_fs_req_cleanup(&req);
    goto out;
  }
#ifdef S_IFIFO
  if ((req.statbuf.st_mode & S_IFMT) == S_IFIFO) {
    /* Kept open: closing a FIFO its writer has just opened would end that writer (EPIPE). */
    uv_fs_req_cleanup(&req);
    *fifo = fd;
    return 0;
  }
#endif
  if ((req.statbuf.st_mode & S_IFMT) != S_IFREG || req.statbuf.st_size == 0 ||
      req.statbuf.st_size > SCAN_SMALL) {
    /* Empty files too: procfs and sysfs files claim to be, and the pipeline refuses them. */
    uv_fs_req_cleanup(&req);
    goto out;
  }
  size = req.statbuf.st_size;
  uv_fs_req_cleanup(&req);
  if (a->offset > size || (a->have_length && a->offset + a->length > size)) goto out;
  length = a->have_length ? a->length : size - a->offset;
  if ((buf = malloc((size_t)size + 1)) == NULL) goto out;
  /* One byte more than the size, to see a file that grew; a short read, one that shrank:
   * both are left to the pipeline. */
  b = uv_buf_init((char *)buf, (unsigned)size + 1);
  do n = uv_fs_read(NULL, &req, fd, &b, 1, 0, NULL);
  while (n == UV_EINTR);
  uv_fs_req_cleanup(&req);
  if (n < 0 || (uint64_t)n != size) goto out;

  {
    bm_scan_opts_t o = *base;
    bm_scan_result_t r;
    o.offset = a->offset;
    o.length = length;
    if (bm_scan_buffer(buf, (size_t)size, &o, &r) != 0) goto out;
    res->offset = a->offset;
    res->length = res->bytes = length;
    res->xxh3 = r.xxh3;
    res->lines = r.lines;
    memcpy(res->counts, r.counts, sizeof(res->counts));
    res->window = a->window;
    res->peak = 0; /* nothing mapped: read */
  }
  res->seconds = cli_now() - t0;
  done = 1;
out:
  free(buf);
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  return done;
}

/* Many FILEs: the small ones are read and scanned on the thread pool, several at once
 * (each job with its own hash and counts); the rest are left to scan_one, in order. */
typedef struct {
  const char **files;
  size_t n;
  const scan_args_t *a;
  const bm_scan_opts_t *base;
  scan_result_t *res;
  unsigned char *state; /* SMALL_* */
  uv_file *fifo;
} scan_batch_t;

enum { SMALL_UNTRIED = 0, SMALL_DONE, SMALL_NOT };

/* Files a job: a hop to the pool and back costs more than a small file's scan. */
#define SCAN_BATCH 64

static void scan_batch_job(size_t k, void *arg) {
  scan_batch_t *b = arg;
  size_t i;
  for (i = k * SCAN_BATCH; i < (k + 1) * SCAN_BATCH && i < b->n; i++) {
    if (strcmp(b->files[i], "-") == 0) {
      b->state[i] = SMALL_NOT;
      continue;
    }
    b->state[i] = scan_small(b->files[i], b->a, b->base, &b->res[i], &b->fifo[i]) ? SMALL_DONE : SMALL_NOT;
  }
}

/* Scans one FILE into res. Returns EXIT_DONE, EXIT_FAILED or EXIT_USAGE after saying why,
 * or 128+N when a signal N arrived. */
static int scan_one(const char *file, const scan_args_t *a, const bm_scan_opts_t *base,
                    scan_result_t *res, int try_small, uv_file fifo) {
  uint64_t size = 0, length = a->length;
  bm_source_t *src = NULL;
  bm_uv_pipeline_opts_t po;
  cli_run_t run;
  scan_t s;
  bm_scan_opts_t o;
  bm_scan_result_t r;
  uv_file fd = fifo;
  int err, rc, stream = 0, own_fd = 0;
  double t0;

  memset(res, 0, sizeof(*res));
  if (try_small && strcmp(file, "-") != 0 && scan_small(file, a, base, res, &fd)) return EXIT_DONE;
  if (fd >= 0) {
    stream = own_fd = 1; /* a FIFO, or a pipe as /dev/fd/N */
  } else if (strcmp(file, "-") == 0) {
    /* libuv reads the descriptor's handle itself: no text-mode translation on Windows. */
    stream = 1;
    fd = 0;
  } else if ((err = bm_file_open(&src, file, BM_FILE_READ)) != 0) {
    cli_lib_error(file, err);
    return EXIT_FAILED;
  } else if ((err = bm_source_size(src, &size)) != 0) {
    cli_lib_error(file, err);
    bm_source_close(src);
    return EXIT_FAILED;
  }
  if (!stream) {
    if (a->offset > size) {
      bm_source_close(src);
      return cli_usage("scan", "--offset %llu is past the end of %s (%llu bytes)",
                       (unsigned long long)a->offset, file, (unsigned long long)size);
    }
    if (a->have_length && a->offset + length > size) {
      bm_source_close(src);
      return cli_usage("scan", "--offset %llu --length %llu runs past the end of %s (%llu bytes)",
                       (unsigned long long)a->offset, (unsigned long long)length, file,
                       (unsigned long long)size);
    }
    if (!a->have_length) length = size - a->offset;
  }
  o = *base;
  o.offset = a->offset;
  o.length = stream && !a->have_length ? BM_TO_END : length;
  if ((err = scan_new(&s, &o)) != 0) {
    cli_lib_error("scan", err);
    bm_source_close(src);
    return EXIT_FAILED;
  }
  run.ctx = &s;

  memset(&po, 0, sizeof(po));
  po.offset = a->offset;
  po.length = stream && !a->have_length ? BM_TO_END : length;
  /* A stream is read into buffers: the default window is smaller there (they are
   * allocated, not mapped views of the page cache). */
  po.window = stream && !a->window_given ? (8u << 20) : a->window;
  po.overlap = bm_scan_overlap(s.scan);
  /* One window a thread being worked on, one being mapped ahead, one in the ordered stage. */
  po.inflight = a->threads + 2 > BM_UV_MAX_INFLIGHT ? BM_UV_MAX_INFLIGHT : a->threads + 2;
  po.prefault = 1;
  /* Under an address-space limit (ulimit -v) the windows in flight keep to a quarter of
   * it, leaving the rest to the threads' stacks, the heap and the program. */
  po.max_mapped = bm_address_space_limit() / 4;
  po.user_size = sizeof(int);
  po.parallel = (o.flags & BM_SCAN_LINES) || o.n_literals ? scan_window_parallel : NULL;
  po.ordered = po.parallel ? scan_window_ordered : scan_hash_only;
  t0 = cli_now();
  err = stream ? cli_run_fd(&run, fd, &po, a->progress) : cli_run(&run, src, &po, a->progress);
  res->seconds = cli_now() - t0;
  if (run.interrupted) {
    cli_error("scan", "interrupted by %s", cli_signal_name(run.signum));
    rc = cli_signal_status(run.signum);
  } else if (err == BM_ETRUNCATED && !stream) {
    uint64_t now = 0;
    bm_source_size(src, &now);
    cli_error_code("ETRUNCATED");
    cli_error(file, "the file shrank while it was scanned (%llu bytes now, %llu expected)",
              (unsigned long long)now, (unsigned long long)(a->offset + length));
    rc = EXIT_FAILED;
  } else if (err == BM_ERANGE && stream) {
    rc = cli_usage("scan", "--offset %llu%s runs past the end of %s (%llu bytes)",
                   (unsigned long long)a->offset, a->have_length ? " plus --length" : "", file,
                   (unsigned long long)run.pipe.bytes_done + a->offset);
  } else if (err != 0) {
    cli_lib_error_os(file, err, run.pipe.os_error);
    rc = EXIT_FAILED;
  } else if ((err = bm_scan_finish(s.scan, &r)) != 0) {
    cli_lib_error(file, err);
    rc = EXIT_FAILED;
  } else {
    res->offset = a->offset;
    res->length = stream ? run.pipe.bytes_done : length;
    res->bytes = run.pipe.bytes_done;
    res->xxh3 = r.xxh3;
    res->lines = r.lines;
    memcpy(res->counts, r.counts, sizeof(res->counts));
    res->window = run.pipe.window;
    res->peak = run.pipe.peak_mapped;
    rc = EXIT_DONE;
  }
  scan_free(&s);
  if (own_fd) {
    uv_fs_t req;
    uv_fs_close(NULL, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  bm_source_close(src);
  return rc;
}

/* The counts: `count` for one literal (as before); for several an object `counts` keyed
 * by the literal, in the order given. `indent`: the human form's, inside an object. */
static void scan_print_counts(cli_out_t *out, const bm_scan_opts_t *o, const uint64_t *counts,
                              const char *indent) {
  unsigned i;
  if (o->n_literals == 1) {
    out_u64(out, "count", counts[0]);
    return;
  }
  out_obj_begin(out, "counts");
  for (i = 0; i < o->n_literals; i++) {
    if (!out->json) printf("%s  ", indent);
    out_u64_named(out, o->literals[i].bytes, counts[i]);
  }
  out_obj_end(out);
}

static void scan_print(cli_out_t *out, const char *file, const bm_scan_opts_t *o,
                       const scan_result_t *r, unsigned threads) {
  out_str(out, "file", file);
  out_u64(out, "offset", r->offset);
  out_u64(out, "length", r->length);
  out_u64(out, "bytes", r->bytes);
  if (o->flags & BM_SCAN_HASH) out_hex64(out, "xxh3", r->xxh3);
  if (o->flags & BM_SCAN_LINES) out_u64(out, "lines", r->lines);
  if (o->n_literals) scan_print_counts(out, o, r->counts, "");
  out_f(out, "seconds", r->seconds, 6);
  out_f(out, "bytes_per_second", r->seconds > 0 ? (double)r->bytes / r->seconds : 0, 0);
  out_u64(out, "window", r->window);
  out_u64(out, "threads", threads);
  out_u64(out, "peak_mapped_bytes", r->peak);
}

int cmd_scan(int argc, char **argv) {
  const char *o_hash = NULL, *o_lines = NULL, *o_counts[BM_SCAN_MAX_LITERALS + 1] = {NULL}, *o_offset = NULL,
             *o_length = NULL, *o_window = NULL, *o_threads = NULL, *o_json = NULL,
             *o_noprog = NULL, **pos;
  const cli_opt_t opts[] = {
    {"--hash", 0, &o_hash}, {"--lines", 0, &o_lines}, {"--count", BM_SCAN_MAX_LITERALS, o_counts},
    {"--offset", 1, &o_offset}, {"--length", 1, &o_length}, {"--window", 1, &o_window},
    {"--threads", 1, &o_threads}, {"--json", 0, &o_json}, {"--no-progress", 0, &o_noprog},
  };
  uint64_t window = 64u << 20, tbytes = 0, tlines = 0, tcounts[BM_SCAN_MAX_LITERALS] = {0};
  scan_args_t a;
  bm_scan_opts_t base;
  bm_literal_t lits[BM_SCAN_MAX_LITERALS];
  unsigned nlit = 0, j;
  char why[160];
  int err;
  scan_result_t *res = NULL;
  unsigned char *ok = NULL, *state = NULL;
  uv_file *fifo = NULL;
  int npos, rc, i, worst = EXIT_DONE, multi, stdin_seen = 0;
  cli_out_t out;

  if ((pos = malloc(sizeof(*pos) * (size_t)(argc > 0 ? argc : 1))) == NULL) {
    cli_error_code("ENOMEM");
    cli_error("scan", "out of memory");
    return EXIT_FAILED;
  }
  memset(&a, 0, sizeof(a));
  rc = cli_parse("scan", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, argc, &npos);
  if (rc != 0) goto out_pos;
  rc = EXIT_USAGE;
  if (npos < 1) {
    rc = cli_usage("scan", "missing FILE (- for standard input)");
    goto out_pos;
  }
  for (i = 0; i < npos; i++) {
    if (pos[i][0] == '\0') {
      rc = cli_usage("scan", "FILE is an empty string");
      goto out_pos;
    }
    if (strcmp(pos[i], "-") == 0 && stdin_seen++) {
      rc = cli_usage("scan", "- (standard input) given twice");
      goto out_pos;
    }
  }
  if (o_offset && (rc = cli_size("scan", "--offset", o_offset, &a.offset))) goto out_pos;
  if (o_length && (rc = cli_size("scan", "--length", o_length, &a.length))) goto out_pos;
  if (o_window && (rc = cli_size("scan", "--window", o_window, &window))) goto out_pos;
  rc = EXIT_USAGE;
  if (window == 0) {
    rc = cli_usage("scan", "--window 0: a window must hold at least one byte");
    goto out_pos;
  }
  /* (BM_TO_END is 2^64-1: a --length that large is caught here, as the overflow it is) */
  if (o_length != NULL && a.offset + a.length < a.offset) {
    rc = cli_usage("scan", "--offset plus --length overflows 64 bits");
    goto out_pos;
  }
  if ((rc = cli_threads("scan", o_threads, &a.threads)) != 0) goto out_pos;
  a.window = window;
  a.window_given = o_window != NULL;
  a.have_length = o_length != NULL;
  a.progress = o_noprog == NULL;

  /* What to compute, and the rules for it: the library's, checked once. */
  memset(&base, 0, sizeof(base));
  base.flags = (o_hash ? BM_SCAN_HASH : 0) | (o_lines ? BM_SCAN_LINES : 0);
  /* Every --count is counted in the same pass (the library takes up to 16 literals). */
  while (nlit < BM_SCAN_MAX_LITERALS && o_counts[nlit] != NULL) {
    for (j = 0; j < nlit; j++)
      if (strcmp(o_counts[j], o_counts[nlit]) == 0) {
        rc = cli_usage("scan", "--count '%s' given twice", o_counts[nlit]);
        goto out_pos;
      }
    lits[nlit].bytes = o_counts[nlit];
    lits[nlit].length = strlen(o_counts[nlit]);
    nlit++;
  }
  if (nlit > 0) {
    base.literals = lits;
    base.n_literals = nlit;
  } else if (base.flags == 0) {
    base.flags = BM_SCAN_HASH | BM_SCAN_LINES;
  }
  base.offset = a.offset;
  base.length = o_length ? a.length : BM_TO_END;
  base.window = window;
  base.threads = a.threads;
  if ((err = bm_scan_check_why(&base, why, sizeof(why))) != 0) {
    rc = cli_usage("scan", "%s", why);
    goto out_pos;
  }

  multi = npos > 1;
  /* Results are printed once every FILE was scanned: an interrupted scan prints none. */
  if ((res = calloc((size_t)npos, sizeof(*res))) == NULL || (ok = calloc((size_t)npos, 1)) == NULL) {
    cli_error_code("ENOMEM");
    cli_error("scan", "out of memory");
    rc = EXIT_FAILED;
    goto out_res;
  }
  if (multi) {
    /* The small files first, on both cores; an interrupted batch prints nothing. */
    scan_batch_t b;
    size_t done;
    int sig;
    if ((state = calloc((size_t)npos, 1)) == NULL || (fifo = malloc(sizeof(*fifo) * (size_t)npos)) == NULL) {
      cli_error_code("ENOMEM");
      cli_error("scan", "out of memory");
      rc = EXIT_FAILED;
      goto out_res;
    }
    for (i = 0; i < npos; i++) fifo[i] = -1;
    b.files = pos;
    b.n = (size_t)npos;
    b.a = &a;
    b.base = &base;
    b.res = res;
    b.state = state;
    b.fifo = fifo;
    if (cli_run_jobs(((size_t)npos + SCAN_BATCH - 1) / SCAN_BATCH, scan_batch_job, &b, &done, &sig) == 0 &&
        sig != 0) {
      cli_error("scan", "interrupted by %s", cli_signal_name(sig));
      rc = cli_signal_status(sig);
      goto out_res;
    }
  }
  for (i = 0; i < npos; i++) {
    if (state != NULL && state[i] == SMALL_DONE) {
      rc = EXIT_DONE;
      res[i].window = a.window;
    } else {
      rc = scan_one(pos[i], &a, &base, &res[i], state == NULL || state[i] == SMALL_UNTRIED,
                    fifo != NULL ? fifo[i] : -1);
      if (fifo != NULL) fifo[i] = -1; /* closed by scan_one */
    }
    if (rc > EXIT_USAGE) { /* a signal: stop here */
      worst = rc;
      break;
    }
    if (rc != EXIT_DONE) {
      if (rc > worst) worst = rc;
      continue;
    }
    ok[i] = 1;
    tbytes += res[i].bytes;
    tlines += res[i].lines;
    for (j = 0; j < nlit; j++) tcounts[j] += res[i].counts[j];
  }
  if (worst > EXIT_USAGE || (!multi && worst != EXIT_DONE)) {
    rc = worst;
    goto out_res;
  }
  out_begin(&out, o_json != NULL);
  if (multi && out.json) {
    printf("\"files\":[");
    out.fields = 0;
  }
  for (i = 0; i < npos; i++) {
    if (!ok[i]) continue;
    if (!multi) {
      scan_print(&out, pos[i], &base, &res[i], a.threads);
    } else if (out.json) {
      cli_out_t one;
      if (out.fields++) putchar(',');
      out_begin(&one, 1);
      scan_print(&one, pos[i], &base, &res[i], a.threads);
      putchar('}');
    } else {
      scan_print(&out, pos[i], &base, &res[i], a.threads);
      putchar('\n');
    }
  }
  if (multi) {
    if (out.json) {
      putchar(']');
      out.fields = 1;
    }
    out_obj_begin(&out, "total");
    if (!out.json) printf("  ");
    out_u64(&out, "bytes", tbytes);
    if (base.flags & BM_SCAN_LINES) {
      if (!out.json) printf("  ");
      out_u64(&out, "lines", tlines);
    }
    if (base.n_literals) {
      if (!out.json) printf("  ");
      scan_print_counts(&out, &base, tcounts, "  ");
    }
    out_obj_end(&out);
  }
  out_error(&out, worst); /* a FILE that failed: JSON holds the first error */
  out_end(&out);
  rc = worst;
out_res:
  if (fifo != NULL)
    for (i = 0; i < npos; i++)
      if (fifo[i] >= 0) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, fifo[i], NULL);
        uv_fs_req_cleanup(&req);
      }
  free(fifo);
  free(state);
  free(res);
  free(ok);
out_pos:
  free(pos);
  return rc < 0 ? EXIT_DONE : rc;
}
