/* bulkmap scan: hash, count lines and count literals over files of any size, pipes, FIFOs
 * and `-` (standard input), many files at once: parsed here, scanned by bulkmap_uv
 * (bm_uv_scan_start) on the tool's loop, printed here. */
#include <stdlib.h>
#include <string.h>
#include "run.h"

typedef struct {
  uint64_t offset, length;
  int have_length;
} scan_args_t;

/* A FILE's result is final: its error, if any, is said now (as each FILE ends), and the
 * worst exit status kept. */
typedef struct {
  const scan_args_t *a;
  bm_uv_scan_item_t *items;
  int worst;
} scan_ctx_t;

static int scan_item_error(const bm_uv_scan_item_t *it, const scan_args_t *a) {
  const char *file = it->path;
  int err = it->status;
  if (it->failed_at == BM_UV_SCAN_AT_RANGE && it->stream)
    return cli_usage("scan", "--offset %llu%s runs past the end of %s (%llu bytes)",
                     (unsigned long long)a->offset, a->have_length ? " plus --length" : "", file,
                     (unsigned long long)it->result.bytes + a->offset);
  if (it->failed_at == BM_UV_SCAN_AT_RANGE && a->offset > it->size)
    return cli_usage("scan", "--offset %llu is past the end of %s (%llu bytes)",
                     (unsigned long long)a->offset, file, (unsigned long long)it->size);
  if (it->failed_at == BM_UV_SCAN_AT_RANGE)
    return cli_usage("scan", "--offset %llu --length %llu runs past the end of %s (%llu bytes)",
                     (unsigned long long)a->offset, (unsigned long long)a->length, file,
                     (unsigned long long)it->size);
  if (err == BM_ETRUNCATED && !it->stream) {
    cli_error_code("ETRUNCATED");
    cli_error(file, "the file shrank while it was scanned (%llu bytes now, %llu expected)",
              (unsigned long long)it->size,
              (unsigned long long)(it->result.offset + it->result.length));
    return EXIT_FAILED;
  }
  cli_lib_error_os(it->failed_at == BM_UV_SCAN_AT_BEGIN ? "scan" : file, err, it->os_error);
  return EXIT_FAILED;
}

static void scan_item_done(cli_run_t *r, size_t i) {
  scan_ctx_t *c = r->ctx;
  bm_uv_scan_item_t *it = &c->items[i];
  int rc;
  if (it->status == 0) return;
  rc = scan_item_error(it, c->a);
  if (rc > c->worst) c->worst = rc;
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
                       const bm_uv_scan_item_t *it, unsigned threads) {
  const bm_scan_result_t *r = &it->result;
  out_str(out, "file", file);
  out_u64(out, "offset", r->offset);
  out_u64(out, "length", r->length);
  out_u64(out, "bytes", r->bytes);
  if (o->flags & BM_SCAN_HASH) out_hex64(out, "xxh3", r->xxh3);
  if (o->flags & BM_SCAN_LINES) out_u64(out, "lines", r->lines);
  if (o->n_literals) scan_print_counts(out, o, r->counts, "");
  out_f(out, "seconds", it->seconds, 6);
  out_f(out, "bytes_per_second", it->seconds > 0 ? (double)r->bytes / it->seconds : 0, 0);
  out_u64(out, "window", r->window);
  out_u64(out, "threads", threads);
  out_u64(out, "peak_mapped_bytes", r->peak_mapped);
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
  scan_ctx_t ctx;
  bm_scan_opts_t base;
  bm_uv_scan_opts_t so;
  bm_literal_t lits[BM_SCAN_MAX_LITERALS];
  unsigned nlit = 0, j, threads;
  char why[160];
  int err;
  bm_uv_scan_item_t *items = NULL;
  cli_run_t run;
  int npos, rc, i, multi, stdin_seen = 0;
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
  if ((rc = cli_threads("scan", o_threads, &threads)) != 0) goto out_pos;
  a.have_length = o_length != NULL;

  /* What to compute, and the rules for it: the library's, checked once. */
  bm_scan_opts_init(&base);
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
  base.threads = threads;
  if ((err = bm_scan_check_why(&base, why, sizeof(why))) != 0) {
    rc = cli_usage("scan", "%s", why);
    goto out_pos;
  }

  multi = npos > 1;
  /* Results are printed once every FILE was scanned: an interrupted scan prints none. */
  if ((items = calloc((size_t)npos, sizeof(*items))) == NULL) {
    cli_error_code("ENOMEM");
    cli_error("scan", "out of memory");
    rc = EXIT_FAILED;
    goto out_pos;
  }
  for (i = 0; i < npos; i++) items[i].path = pos[i];
  bm_uv_scan_opts_init(&so);
  so.scan = base;
  /* The window given, or bulkmap_uv's (64 MiB a file, less for a stream's buffers). */
  if (o_window == NULL) so.scan.window = 0;
  ctx.a = &a;
  ctx.items = items;
  ctx.worst = EXIT_DONE;
  run.item_done = scan_item_done;
  run.ctx = &ctx;
  if ((err = cli_run_scan(&run, items, (size_t)npos, &so, o_noprog == NULL)) != 0) {
    /* No loop, no thread pool (ulimit -n, -u, -v): every FILE fails with why. */
    for (i = 0; i < npos; i++) cli_lib_error_os(pos[i], err, run.os_error);
    rc = EXIT_FAILED;
    goto out_items;
  }
  if (run.interrupted) {
    cli_error("scan", "interrupted by %s", cli_signal_name(run.signum));
    rc = cli_signal_status(run.signum);
    goto out_items;
  }
  if (!multi && ctx.worst != EXIT_DONE) {
    rc = ctx.worst;
    goto out_items;
  }
  for (i = 0; i < npos; i++) {
    if (items[i].status != 0) continue;
    tbytes += items[i].result.bytes;
    tlines += items[i].result.lines;
    for (j = 0; j < nlit; j++) tcounts[j] += items[i].result.counts[j];
  }
  out_begin(&out, o_json != NULL);
  if (multi && out.json) {
    printf("\"files\":[");
    out.fields = 0;
  }
  for (i = 0; i < npos; i++) {
    if (items[i].status != 0) continue;
    if (!multi) {
      scan_print(&out, pos[i], &base, &items[i], threads);
    } else if (out.json) {
      cli_out_t one;
      if (out.fields++) putchar(',');
      out_begin(&one, 1);
      scan_print(&one, pos[i], &base, &items[i], threads);
      putchar('}');
    } else {
      scan_print(&out, pos[i], &base, &items[i], threads);
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
  out_error(&out, ctx.worst); /* a FILE that failed: JSON holds the first error */
  out_end(&out);
  rc = ctx.worst;
out_items:
  free(items);
out_pos:
  free(pos);
  return rc < 0 ? EXIT_DONE : rc;
}
