/* bulkmap bench: page kinds side by side (docs/design.md section 3), measured by the bench module
 * (tools/bench, bench.h): this file parses, runs it under the tool's signal handling and
 * prints its result (human, JSON with out_*, CSV). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "bench.h"
#include "cli.h"

/* ------------------------------------------------------------------------------------
 * Human output. */

static void size_words(size_t page, char *buf, size_t n) {
  if (page >= (1u << 30) && page % (1u << 30) == 0)
    snprintf(buf, n, "%zu GiB", page >> 30);
  else if (page >= (1u << 20) && page % (1u << 20) == 0)
    snprintf(buf, n, "%zu MiB", page >> 20);
  else
    snprintf(buf, n, "%zu KiB", page >> 10);
}

/* "2 MiB pages: populate 8.2x faster, ... than 4 KiB pages": always "Nx faster" (below 1
 * means slower), so that a column of them reads one way. */
static void ratio_line(const char *key, const char *who, const bench_row_t *r,
                       const bench_row_t *br, const char *than) {
  const bench_stat_t *s = r->fig, *base = br->fig;
  double pop = (base[BENCH_F_POPULATE].med / (double)br->size) /
               (s[BENCH_F_POPULATE].med / (double)r->size);
  printf("  %s: %s: %s %.2fx faster, sequential reads %.2fx faster, random reads %.2fx faster, "
         "dependent loads %.2fx faster than %s\n",
         key, who, r->backing == BENCH_SECTION ? "map+populate" : "populate", pop,
         s[BENCH_F_SEQ].med / base[BENCH_F_SEQ].med, base[BENCH_F_RANDOM].med / s[BENCH_F_RANDOM].med,
         base[BENCH_F_DEPENDENT].med / s[BENCH_F_DEPENDENT].med, than);
}

static void print_human(const bench_result_t *res) {
  int i, k;
  printf("runs: %d (each figure: median [min max] of the runs, after one warm-up round)\n",
         res->runs);
  if (!res->tlb_ok) printf("dtlb_misses_per_load: null (%s)\n", res->tlb_reason);
  for (i = 0; i < res->nrows; i++) {
    const bench_row_t *r = &res->rows[i];
    int base;
    char words[64], pg[32];
    printf("%s %s:\n", bench_kind_name[r->kind], bench_backing_name[r->backing]);
    printf("  size: %llu\n", (unsigned long long)r->size);
    if (!r->had) {
      printf("  obtained: false\n  reason: %s\n", r->reason);
      continue;
    }
    printf("  page_size: %zu\n", r->page_size);
    for (k = 0; k < BENCH_NFIG; k++) {
      const bench_stat_t *s = &r->fig[k];
      int d = bench_fig_decimals[k];
      if (isnan(s->med)) continue;
      printf("  %s: %.*f [%.*f %.*f]\n", bench_fig_key[k], d, s->med, d, s->lo, d, s->hi);
      if (k == BENCH_F_POPULATE)
        printf("  populate_bytes_per_second: %.0f\n", (double)r->size / s->med);
    }
    /* The baseline: 4 KiB pages on the same backing; for a section, the file. */
    if ((base = bench_baseline(res, i)) < 0) continue;
    size_words(r->page_size, pg, sizeof(pg));
    if (r->backing == BENCH_SECTION) {
      snprintf(words, sizeof(words), "a section of %s%s pages", pg,
               r->kind == BENCH_THP ? " transparent" : "");
      ratio_line("vs_file", words, r, &res->rows[base], "the file from the page cache");
    } else {
      snprintf(words, sizeof(words), "%s%s pages", pg, r->kind == BENCH_THP ? " transparent" : "");
      ratio_line("vs_4k", words, r, &res->rows[base], "4 KiB pages");
    }
  }
  for (i = 0; res->sweep && i < res->nrows; i++) {
    const bench_row_t *r = &res->rows[i];
    if (!r->had) continue;
    for (k = 0; k < r->nws; k++) {
      const bench_stat_t *a = &r->sweep_random[k], *d = &r->sweep_dependent[k];
      printf("sweep %s %s %llu: random_ns %.2f [%.2f %.2f] dependent_ns %.2f [%.2f %.2f]\n",
             bench_kind_name[r->kind], bench_backing_name[r->backing],
             (unsigned long long)(BENCH_SWEEP_MIN << k), a->med, a->lo, a->hi, d->med, d->lo,
             d->hi);
    }
  }
}

/* ------------------------------------------------------------------------------------
 * JSON: one object, keys of docs/json.md. */

/* which: 0 the medians, 1 min, 2 max. */
static void json_figs(cli_out_t *o, const bench_row_t *r, int which) {
  int k;
  for (k = 0; k < BENCH_NFIG; k++) {
    const bench_stat_t *s = &r->fig[k];
    out_num(o, bench_fig_key[k], which == 0 ? s->med : which == 1 ? s->lo : s->hi,
            bench_fig_decimals[k]);
  }
}

static void json_sweep_point(cli_out_t *o, const bench_stat_t *a, const bench_stat_t *d) {
  out_num(o, "random_ns", a->med, 3);
  out_num(o, "dependent_ns", d->med, 3);
  out_obj_begin(o, "min");
  out_num(o, "random_ns", a->lo, 3);
  out_num(o, "dependent_ns", d->lo, 3);
  out_obj_end(o);
  out_obj_begin(o, "max");
  out_num(o, "random_ns", a->hi, 3);
  out_num(o, "dependent_ns", d->hi, 3);
  out_obj_end(o);
}

static void print_json(const bench_result_t *res) {
  cli_out_t o;
  int i, k;
  out_begin(&o, 1);
  out_i64(&o, "runs", res->runs);
  out_arr_begin(&o, "results");
  for (i = 0; i < res->nrows; i++) {
    const bench_row_t *r = &res->rows[i];
    out_elem_begin(&o);
    out_str(&o, "pages", bench_kind_name[r->kind]);
    out_str(&o, "backing", bench_backing_name[r->backing]);
    if (r->had) out_u64(&o, "page_size", r->page_size);
    else out_str(&o, "page_size", NULL);
    out_u64(&o, "size", r->size);
    json_figs(&o, r, 0);
    out_obj_begin(&o, "min");
    json_figs(&o, r, 1);
    out_obj_end(&o);
    out_obj_begin(&o, "max");
    json_figs(&o, r, 2);
    out_obj_end(&o);
    out_str(&o, "reason", r->had ? NULL : r->reason);
    out_str(&o, "dtlb_reason", res->tlb_ok || !r->had ? NULL : res->tlb_reason);
    out_elem_end(&o);
  }
  out_arr_end(&o);
  if (res->sweep) {
    out_arr_begin(&o, "sweep");
    for (i = 0; i < res->nrows; i++) {
      const bench_row_t *r = &res->rows[i];
      if (!r->had) continue;
      for (k = 0; k < r->nws; k++) {
        out_elem_begin(&o);
        out_str(&o, "pages", bench_kind_name[r->kind]);
        out_str(&o, "backing", bench_backing_name[r->backing]);
        out_u64(&o, "working_set", BENCH_SWEEP_MIN << k);
        json_sweep_point(&o, &r->sweep_random[k], &r->sweep_dependent[k]);
        out_elem_end(&o);
      }
    }
    out_arr_end(&o);
  }
  out_end(&o);
}

/* ------------------------------------------------------------------------------------
 * CSV: one row a result and (with --sweep) one a working set; the columns are the JSON
 * keys, min.X and max.X as min_X and max_X, and `row` says which kind of line it is. */

static void csv_num(FILE *f, double v, int decimals) {
  if (!isnan(v) && !isinf(v)) fprintf(f, "%.*f", decimals, v);
}

static void csv_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static double stat_of(const bench_stat_t *s, int which) {
  return which == 0 ? s->med : which == 1 ? s->lo : s->hi;
}

static void write_csv(FILE *f, const bench_result_t *res) {
  int i, k, m, c;
  fputs("row,pages,backing,page_size,size,working_set", f);
  for (m = 0; m < 3; m++)
    for (k = 0; k < BENCH_NFIG; k++)
      fprintf(f, ",%s%s", m == 0 ? "" : m == 1 ? "min_" : "max_", bench_fig_key[k]);
  fputs(",reason,dtlb_reason\n", f);
  for (i = 0; i < res->nrows; i++) {
    const bench_row_t *r = &res->rows[i];
    fprintf(f, "result,%s,%s,", bench_kind_name[r->kind], bench_backing_name[r->backing]);
    if (r->had) fprintf(f, "%zu", r->page_size);
    fprintf(f, ",%llu,", (unsigned long long)r->size);
    for (m = 0; m < 3; m++)
      for (k = 0; k < BENCH_NFIG; k++) {
        fputc(',', f);
        csv_num(f, stat_of(&r->fig[k], m), bench_fig_decimals[k]);
      }
    fputc(',', f);
    if (!r->had) csv_string(f, r->reason);
    fputc(',', f);
    if (r->had && !res->tlb_ok) csv_string(f, res->tlb_reason);
    fputc('\n', f);
  }
  for (i = 0; res->sweep && i < res->nrows; i++) {
    const bench_row_t *r = &res->rows[i];
    if (!r->had) continue;
    for (k = 0; k < r->nws; k++) {
      fprintf(f, "sweep,%s,%s,%zu,%llu,%llu", bench_kind_name[r->kind],
              bench_backing_name[r->backing], r->page_size, (unsigned long long)r->size,
              (unsigned long long)(BENCH_SWEEP_MIN << k));
      for (m = 0; m < 3; m++)
        for (c = 0; c < BENCH_NFIG; c++) {
          fputc(',', f);
          if (c == BENCH_F_RANDOM) csv_num(f, stat_of(&r->sweep_random[k], m), 3);
          if (c == BENCH_F_DEPENDENT) csv_num(f, stat_of(&r->sweep_dependent[k], m), 3);
        }
      fputs(",,\n", f);
    }
  }
}

/* ------------------------------------------------------------------------------------ */

static int parse_pages(const char *o_pages, bench_opts_t *bo) {
  const char *p = o_pages;
  int i, k;
  bo->nkinds = 0;
  if (p == NULL) {
    for (k = 0; k < BENCH_NKINDS; k++) bo->kinds[bo->nkinds++] = k;
    return 0;
  }
  while (*p) {
    size_t len = strcspn(p, ",");
    if ((k = bench_kind_parse(p, len)) < 0)
      return cli_usage("bench", "--pages: unknown kind '%.*s' (4k, thp, large)", (int)len, p);
    for (i = 0; i < bo->nkinds; i++)
      if (bo->kinds[i] == k) return cli_usage("bench", "--pages: '%s' given twice", bench_kind_name[k]);
    bo->kinds[bo->nkinds++] = k;
    p += len;
    if (*p == ',') {
      p++;
      if (*p == '\0') return cli_usage("bench", "--pages '%s': ends with a comma", o_pages);
    }
  }
  if (bo->nkinds == 0) return cli_usage("bench", "--pages: no kind given");
  return 0;
}

/* FILE's size, checked: a file of at least one byte that this process can map whole. */
static int bench_file(const char *path, uint64_t *size) {
  bm_source_t *f = NULL;
  int err = bm_file_open(&f, path, BM_FILE_READ);
  if (err == 0) err = bm_source_size(f, size);
  bm_source_close(f);
  if (err != 0) {
    cli_lib_error(path, err);
    return cli_exit_for(err);
  }
  if (*size == 0) {
    cli_error(path, "empty file: nothing to map and measure");
    return EXIT_FAILED;
  }
  if (*size > (uint64_t)SIZE_MAX / 2) {
    cli_error(path, "too large to map whole in this process (%llu bytes)", (unsigned long long)*size);
    return EXIT_FAILED;
  }
  return 0;
}

static int bench_stop(void *arg) {
  (void)arg;
  return cli_signal_caught() != 0;
}

int cmd_bench(int argc, char **argv) {
  const char *o_size = NULL, *o_pages = NULL, *o_csv = NULL, *o_json = NULL, *o_shared = NULL,
             *o_file = NULL, *o_runs = NULL, *o_sweep = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--size", 1, &o_size},     {"--pages", 1, &o_pages},
                            {"--shared", 0, &o_shared}, {"--file", 1, &o_file},
                            {"--runs", 1, &o_runs},     {"--sweep", 0, &o_sweep},
                            {"--csv", 1, &o_csv},       {"--json", 0, &o_json}};
  int npos, rc, was, sig, result = EXIT_DONE;
  uint64_t runs = 5, total;
  bench_opts_t bo;
  bench_result_t res;
  FILE *csv = NULL;

  memset(&bo, 0, sizeof(bo));
  bo.size = 1ull << 30;
  rc = cli_parse("bench", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (o_size && (rc = cli_size("bench", "--size", o_size, &bo.size))) return rc;
  if (bo.size < (1u << 20)) return cli_usage("bench", "--size %s: at least 1M", o_size);
  if (bo.size > (uint64_t)SIZE_MAX / 2)
    return cli_usage("bench", "--size %s: larger than this process can map", o_size);
  /* Each kind faults the whole region in: past the machine's memory that would only
   * summon the OOM killer (for everyone), so refuse what cannot fit with room to spare. */
  total = uv_get_total_memory();
  if (total != 0 && bo.size > total / 4 * 3)
    return cli_usage("bench", "--size %s: more than 3/4 of this machine's memory (%llu MiB)",
                     o_size, (unsigned long long)(total >> 20));
  if (o_runs != NULL) {
    if (bm_size_parse(o_runs, &runs) != 0 || strpbrk(o_runs, "kKmMgGtT") != NULL)
      return cli_usage("bench", "--runs '%s': not a number", o_runs);
    if (runs < 1 || runs > BENCH_MAX_RUNS)
      return cli_usage("bench", "--runs %s: from 1 to %d", o_runs, BENCH_MAX_RUNS);
  }
  bo.runs = (int)runs;
  bo.sweep = o_sweep != NULL;
  bo.shared = o_shared != NULL;
  if ((rc = parse_pages(o_pages, &bo)) != 0) return rc;
  if (o_file != NULL && (rc = bench_file(o_file, &bo.file_size)) != 0) return rc;
  bo.file = o_file;
  if (o_csv != NULL && (csv = fopen(o_csv, "w")) == NULL) {
    int e = errno;
    cli_error(o_csv, "cannot write the CSV file: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    return EXIT_FAILED;
  }

  /* Every region is anonymous or a view of FILE: nothing outlives the process, so a
   * signal only has to stop the rounds (noted, asked between measurements). */
  bo.stop = bench_stop;
  was = cli_signals_defer(1);
  rc = bench_run(&bo, &res);
  cli_signals_defer(was);
  if (rc == BENCH_ENOMEM) {
    cli_error_code("ENOMEM");
    cli_error("bench", "out of memory");
    result = EXIT_FAILED;
  } else if (rc == BENCH_STOPPED || (sig = cli_signal_caught()) != 0) {
    sig = cli_signal_caught();
    cli_error("bench", "interrupted by %s", cli_signal_name(sig));
    result = cli_signal_status(sig);
  } else {
    if (csv != NULL) {
      write_csv(csv, &res);
      rc = ferror(csv);
      if (fclose(csv) != 0 || rc) {
        int e = errno;
        cli_error_code(e == ENOSPC ? "ENOSPC" : e == EFBIG ? "EFBIG" : "EIO");
        cli_error(o_csv, "cannot write the CSV file: %s (errno %d (0x%x))", strerror(e), e,
                  (unsigned)e);
        result = EXIT_FAILED;
      }
      csv = NULL;
    }
    if (result == EXIT_DONE) {
      if (o_json) print_json(&res);
      else print_human(&res);
    }
  }
  if (csv != NULL) fclose(csv);
  bench_result_free(&res);
  return result;
}
