/* bulkmap scan: hash, count lines and count a literal over a file of any size, streaming
 * its windows through the bulkmap_uv pipeline (counts in parallel, the hash in order). */
#include <stdlib.h>
#include <string.h>
#include "run.h"

#define LIT_KEEP 64 /* match positions a window keeps for re-synchronising the count */

typedef struct {
  uint64_t lines, count, last_end;
  uint64_t pos[LIT_KEEP];
} scan_win_t;

typedef struct {
  int hash, lines, count;
  const unsigned char *lit;
  size_t litlen;
  cli_hash_t *xxh;
  uint64_t lines_total, count_total;
  uint64_t carry; /* the next offset at which a literal match may start */
} scan_t;

static int scan_window_parallel(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  scan_win_t *u = w->user;
  if (s->lines) u->lines = count_byte(w->data + w->overlap, w->length - w->overlap, '\n');
  if (s->count) {
    /* Greedy, left to right, from the window's first byte: the overlap holds the last
     * litlen-1 bytes of the previous window, so a match straddling the edge is seen here
     * whole, and only here (it could not fit in the previous window). */
    const unsigned char *p = w->data, *end = w->data + w->length, *q;
    while ((q = find_literal(p, (size_t)(end - p), s->lit, s->litlen)) != NULL) {
      if (u->count < LIT_KEEP) u->pos[u->count] = w->offset + (uint64_t)(q - w->data);
      u->count++;
      p = q + s->litlen;
      u->last_end = w->offset + (uint64_t)(p - w->data);
    }
  }
  return 0;
}

/* In order: the hash, and the literal count made exact across window edges. */
static int scan_window_ordered(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  scan_win_t *u = w->user;
  if (s->hash) hash_update(s->xxh, w->data + w->overlap, w->length - w->overlap);
  if (s->count) {
    if (s->carry <= w->offset) {
      s->count_total += u->count;
      if (u->count) s->carry = u->last_end;
    } else {
      /* The previous window's last match reaches into this one: count again from where
       * it ended until the matches meet those found from the window's start (from then
       * on a greedy scan gives the same matches). */
      const unsigned char *p = w->data + (s->carry - w->offset), *end = w->data + w->length, *q;
      uint64_t n = 0, j = 0, kept = u->count < LIT_KEEP ? u->count : LIT_KEEP, m;
      while ((q = find_literal(p, (size_t)(end - p), s->lit, s->litlen)) != NULL) {
        m = w->offset + (uint64_t)(q - w->data);
        while (j < kept && u->pos[j] < m) j++;
        if (j < kept && u->pos[j] == m) {
          s->count_total += n + (u->count - j);
          s->carry = u->last_end;
          return 0;
        }
        n++;
        p = q + s->litlen;
        s->carry = m + s->litlen;
      }
      s->count_total += n;
    }
  }
  return 0;
}

/* Loop thread, in order: counts that need no bytes are merged here. */
static void scan_window_merged(bm_uv_window_t *w, void *data) {
  scan_t *s = ((cli_run_t *)data)->ctx;
  s->lines_total += ((scan_win_t *)w->user)->lines;
}

int cmd_scan(int argc, char **argv) {
  const char *o_hash = NULL, *o_lines = NULL, *o_count = NULL, *o_offset = NULL,
             *o_length = NULL, *o_window = NULL, *o_threads = NULL, *o_json = NULL,
             *o_noprog = NULL, *pos[1];
  const cli_opt_t opts[] = {
    {"--hash", 0, &o_hash}, {"--lines", 0, &o_lines}, {"--count", 1, &o_count},
    {"--offset", 1, &o_offset}, {"--length", 1, &o_length}, {"--window", 1, &o_window},
    {"--threads", 1, &o_threads}, {"--json", 0, &o_json}, {"--no-progress", 0, &o_noprog},
  };
  uint64_t offset = 0, length = BM_TO_END, window = 64u << 20, size;
  unsigned threads;
  int npos, rc, err;
  bm_source_t *src;
  bm_uv_pipeline_opts_t po;
  cli_run_t run;
  scan_t s;
  double t0, secs;
  cli_out_t out;

  rc = cli_parse("scan", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("scan", "missing FILE");
  if (pos[0][0] == '\0') return cli_usage("scan", "FILE is an empty string");
  if (o_offset && (rc = cli_size("scan", "--offset", o_offset, &offset))) return rc;
  if (o_length && (rc = cli_size("scan", "--length", o_length, &length))) return rc;
  if (o_window && (rc = cli_size("scan", "--window", o_window, &window))) return rc;
  if (window == 0) return cli_usage("scan", "--window 0: a window must hold at least one byte");
  if (window > (sizeof(size_t) > 4 ? (4ull << 30) : (256u << 20)))
    return cli_usage("scan", "--window %s: at most %s", o_window,
                     sizeof(size_t) > 4 ? "4G" : "256M");
  if (o_count && o_count[0] == '\0') return cli_usage("scan", "--count: the literal is empty");
  if (o_count && strlen(o_count) >= window)
    return cli_usage("scan", "--count: the literal must be shorter than the window");
  if ((rc = cli_threads("scan", o_threads, &threads)) != 0) return rc;

  memset(&s, 0, sizeof(s));
  s.hash = o_hash != NULL;
  s.lines = o_lines != NULL;
  s.count = o_count != NULL;
  if (!s.hash && !s.lines && !s.count) s.hash = s.lines = 1;
  s.lit = (const unsigned char *)o_count;
  s.litlen = o_count ? strlen(o_count) : 0;

  if ((err = bm_file_open(&src, pos[0], BM_FILE_READ)) != 0) {
    cli_lib_error(pos[0], err);
    return EXIT_FAILED;
  }
  if ((err = bm_source_size(src, &size)) != 0) {
    cli_lib_error(pos[0], err);
    bm_source_close(src);
    return EXIT_FAILED;
  }
  if (offset > size) {
    bm_source_close(src);
    return cli_usage("scan", "--offset %llu is past the end of %s (%llu bytes)",
                     (unsigned long long)offset, pos[0], (unsigned long long)size);
  }
  if (o_length != NULL && offset + length < offset) {
    bm_source_close(src);
    return cli_usage("scan", "--offset plus --length overflows 64 bits");
  }
  if (o_length != NULL && offset + length > size) {
    bm_source_close(src);
    return cli_usage("scan", "--offset %llu --length %llu runs past the end of %s (%llu bytes)",
                     (unsigned long long)offset, (unsigned long long)length, pos[0],
                     (unsigned long long)size);
  }
  if (o_length == NULL) length = size - offset;
  s.carry = offset;
  if (s.hash && (s.xxh = hash_new()) == NULL) {
    cli_error("scan", "out of memory");
    bm_source_close(src);
    return EXIT_FAILED;
  }
  run.ctx = &s;

  memset(&po, 0, sizeof(po));
  po.offset = offset;
  po.length = length;
  po.window = window;
  po.overlap = s.count ? s.litlen - 1 : 0;
  /* One window a thread being worked on, one being mapped ahead, one in the ordered stage. */
  po.inflight = threads + 2 > BM_UV_MAX_INFLIGHT ? BM_UV_MAX_INFLIGHT : threads + 2;
  po.prefault = 1;
  po.user_size = sizeof(scan_win_t);
  po.parallel = (s.lines || s.count) ? scan_window_parallel : NULL;
  po.ordered = scan_window_ordered;
  po.merged = scan_window_merged;
  t0 = cli_now();
  err = cli_run(&run, src, &po, o_noprog == NULL);
  secs = cli_now() - t0;
  if (run.interrupted) {
    cli_error("scan", "interrupted");
    rc = EXIT_INTERRUPTED;
  } else if (err == BM_ETRUNCATED) {
    uint64_t now = 0;
    bm_source_size(src, &now);
    cli_error(pos[0], "the file shrank while it was scanned (%llu bytes now, %llu expected)",
              (unsigned long long)now, (unsigned long long)(offset + length));
    rc = EXIT_FAILED;
  } else if (err != 0) {
    cli_lib_error_os(pos[0], err, run.pipe.os_error);
    rc = EXIT_FAILED;
  } else {
    out_begin(&out, o_json != NULL);
    out_str(&out, "file", pos[0]);
    out_u64(&out, "offset", offset);
    out_u64(&out, "length", length);
    out_u64(&out, "bytes", run.pipe.bytes_done);
    if (s.hash) out_hex64(&out, "xxh3", hash_digest(s.xxh));
    if (s.lines) out_u64(&out, "lines", s.lines_total);
    if (s.count) out_u64(&out, "count", s.count_total);
    out_f(&out, "seconds", secs, 6);
    out_f(&out, "bytes_per_second", secs > 0 ? (double)length / secs : 0, 0);
    out_u64(&out, "window", run.pipe.window);
    out_u64(&out, "threads", threads);
    out_u64(&out, "peak_mapped_bytes", run.pipe.peak_mapped);
    out_end(&out);
    rc = EXIT_DONE;
  }
  hash_free(s.xxh);
  bm_source_close(src);
  return rc;
}
