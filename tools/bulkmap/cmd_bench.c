/* bulkmap bench: page kinds side by side on an anonymous section of SIZE bytes: populate
 * time, sequential read rate, random 8-byte read latency (independent loads), dependent-load
 * latency (a pointer chase), and the page size the kernel really gave (the library's
 * large-page outcome). A kind that cannot be had is shown with its reason. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"

enum { KIND_4K, KIND_THP, KIND_LARGE, NKINDS };

static const struct {
  const char *name;
  int large;       /* bm_large_mode_t asked for */
  int transparent; /* ask for transparent huge pages instead of hugetlb pages */
} bench_kinds[NKINDS] = {
  {"4k", BM_LARGE_OFF, 0},
  {"thp", BM_LARGE_ON, 1},
  {"large", BM_LARGE_ON, 0},
};

typedef struct {
  int kind;
  int had;
  char reason[160];
  size_t page_size;
  uint64_t size;
  double populate_seconds, seq_bps, random_ns, dependent_ns;
} bench_result_t;

#define RANDOM_LOADS (1u << 24)   /* independent random reads timed */
#define CHASE_STEPS (1u << 21)    /* dependent loads timed */
#define CHASE_STRIDE 4096         /* one chase node a 4 KiB page, whatever the page kind */
#define SEQ_PASSES 3

static volatile sig_atomic_t bench_interrupted;
static volatile uint64_t bench_sink; /* keeps the measured loads from being optimised out */

static void bench_on_signal(int sig) {
  (void)sig;
  bench_interrupted = 1;
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Sequential read of every byte, 8 at a time, four independent sums. Bytes per second. */
static double bench_seq(const uint64_t *p, size_t nwords) {
  double best = 0;
  int pass;
  for (pass = 0; pass < SEQ_PASSES && !bench_interrupted; pass++) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i;
    double t0 = cli_now(), dt;
    for (i = 0; i + 4 <= nwords; i += 4) {
      a += p[i];
      b += p[i + 1];
      c += p[i + 2];
      d += p[i + 3];
    }
    for (; i < nwords; i++) a += p[i];
    dt = cli_now() - t0;
    bench_sink += a + b + c + d;
    /* The best pass: the others only add what the shared machine took from us. */
    if (dt > 0 && (double)nwords * 8 / dt > best) best = (double)nwords * 8 / dt;
  }
  return best;
}

/* Independent 8-byte loads at random aligned offsets in the largest power-of-two prefix
 * of the region: the address of each load does not depend on the one before, so the CPU
 * overlaps them; what is left is the cost of the cache and TLB misses. ns a load. */
static double bench_random(const uint64_t *p, size_t nwords) {
  unsigned bits = 0;
  uint64_t s = 0x9E3779B97F4A7C15ull, sum = 0;
  uint32_t i;
  double t0, dt;
  while (bits < 63 && ((size_t)1 << (bits + 1)) <= nwords) bits++;
  if (bits == 0) return 0;
  t0 = cli_now();
  for (i = 0; i < RANDOM_LOADS; i++) sum += p[rng_next(&s) >> (64 - bits)];
  dt = cli_now() - t0;
  bench_sink += sum;
  return dt * 1e9 / RANDOM_LOADS;
}

/* Pointer chase: one node a 4 KiB page (at a cache line picked per page, so the nodes do
 * not all fall in the same cache sets), linked in one random cycle (Sattolo's shuffle).
 * Each load's address is the value of the previous one: the latency of a miss, page walk
 * included. ns a load; 0 when memory for the shuffle cannot be had. */
static double bench_dependent(unsigned char *base, uint64_t size) {
  size_t n = (size_t)(size / CHASE_STRIDE), k, j;
  uint32_t *perm;
  uint64_t s = 0x243F6A8885A308D3ull;
  void **p;
  uint32_t i;
  double t0, dt;
#define NODE(x) ((void **)(base + (size_t)(x) * CHASE_STRIDE + \
                           (((uint32_t)(x) * 2654435761u >> 26) & 63u) * 64u))
  if (n < 2 || n > UINT32_MAX) return 0;
  if ((perm = malloc(n * sizeof(*perm))) == NULL) return 0;
  for (k = 0; k < n; k++) perm[k] = (uint32_t)k;
  for (k = n - 1; k > 0; k--) { /* Sattolo: a single cycle through every node */
    uint32_t t;
    j = (size_t)(rng_next(&s) % k);
    t = perm[k];
    perm[k] = perm[j];
    perm[j] = t;
  }
  for (k = 0; k < n; k++) *NODE(perm[k]) = (void *)NODE(perm[(k + 1) % n]);
  free(perm);
  p = NODE(0);
  t0 = cli_now();
  for (i = 0; i < CHASE_STEPS; i++) p = (void **)*p;
  dt = cli_now() - t0;
  bench_sink += (uint64_t)(uintptr_t)p;
  return dt * 1e9 / CHASE_STEPS;
#undef NODE
}

static void bench_reason(bench_result_t *r, const char *what, int err, const bm_large_t *l) {
  if (err == BM_ENOLARGE || err == BM_EALIGN)
    snprintf(r->reason, sizeof(r->reason), "%s", bm_large_reason_str(l->reason));
  else
    snprintf(r->reason, sizeof(r->reason), "%s: %s (%s)", what, bm_strerror(err), bm_err_name(err));
}

static void bench_kind(int kind, uint64_t size, bench_result_t *r) {
  bm_section_opts_t so;
  bm_large_t large;
  bm_source_t *src = NULL;
  bm_view_t v;
  double t0;
  int err;

  memset(r, 0, sizeof(*r));
  memset(&v, 0, sizeof(v));
  r->kind = kind;
  r->size = size;
  memset(&so, 0, sizeof(so));
  so.size = size;
  so.large = bench_kinds[kind].large;
  so.transparent = bench_kinds[kind].transparent;
  so.round = 1;
  memset(&large, 0, sizeof(large));

  /* Populate: from nothing to every page present and mapped (a hugetlb section allocates
   * and zeroes its pages when it is created, the others when they are faulted in). */
  t0 = cli_now();
  err = bm_section_create(&src, NULL, &so, &large);
  if (err != 0) {
    bench_reason(r, "create", err, &large);
    return;
  }
  if ((err = bm_source_size(src, &r->size)) != 0 ||
      (err = bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE)) != 0 ||
      (err = bm_view_prefetch(&v)) != 0) {
    bench_reason(r, "map", err, &large);
    goto done;
  }
  r->populate_seconds = cli_now() - t0;
  /* What the kernel gave, asked again now that every page is in. */
  if (bm_section_large(src, &large) != 0) large.page_size = 0;
  r->page_size = large.page_size;
  if (kind != KIND_4K && !(large.obtained && large.transparent == bench_kinds[kind].transparent)) {
    snprintf(r->reason, sizeof(r->reason), "the kernel gave %zu-byte pages%s", large.page_size,
             large.transparent ? " (transparent)" : "");
    goto done;
  }
  r->seq_bps = bench_seq(v.data, v.length / 8);
  if (!bench_interrupted) r->random_ns = bench_random(v.data, v.length / 8);
  if (!bench_interrupted) r->dependent_ns = bench_dependent(v.data, v.length);
  r->had = 1;
done:
  bm_view_unmap(&v);
  bm_source_close(src);
}

static void csv_row(FILE *f, const bench_result_t *r) {
  if (r->had)
    fprintf(f, "%s,%zu,%llu,%.6f,%.0f,%.3f,%.3f,\n", bench_kinds[r->kind].name, r->page_size,
            (unsigned long long)r->size, r->populate_seconds, r->seq_bps, r->random_ns,
            r->dependent_ns);
  else
    fprintf(f, "%s,,%llu,,,,,\"%s\"\n", bench_kinds[r->kind].name, (unsigned long long)r->size,
            r->reason);
}

int cmd_bench(int argc, char **argv) {
  const char *o_size = NULL, *o_pages = NULL, *o_csv = NULL, *o_json = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--size", 1, &o_size}, {"--pages", 1, &o_pages},
                            {"--csv", 1, &o_csv}, {"--json", 0, &o_json}};
  int order[NKINDS], n = 0, npos, rc, i, k;
  uint64_t size = 1ull << 30;
  bench_result_t res[NKINDS];
  const bench_result_t *base = NULL;
  FILE *csv = NULL;

  rc = cli_parse("bench", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (o_size && (rc = cli_size("bench", "--size", o_size, &size))) return rc;
  if (size < (1u << 20)) return cli_usage("bench", "--size %s: at least 1M", o_size);
  if (size > (uint64_t)SIZE_MAX / 2)
    return cli_usage("bench", "--size %s: larger than this process can map", o_size);
  {
    /* Each kind faults the whole region in: past the machine's memory that would only
     * summon the OOM killer (for everyone), so refuse what cannot fit with room to spare. */
    uint64_t total = uv_get_total_memory();
    if (total != 0 && size > total / 4 * 3)
      return cli_usage("bench", "--size %s: more than 3/4 of this machine's memory (%llu MiB)",
                       o_size, (unsigned long long)(total >> 20));
  }
  if (o_pages == NULL) {
    for (k = 0; k < NKINDS; k++) order[n++] = k;
  } else {
    const char *p = o_pages;
    while (*p) {
      size_t len = strcspn(p, ",");
      for (k = 0; k < NKINDS; k++)
        if (strlen(bench_kinds[k].name) == len && strncmp(bench_kinds[k].name, p, len) == 0) break;
      if (k == NKINDS) return cli_usage("bench", "--pages: unknown kind '%.*s' (4k, thp, large)", (int)len, p);
      for (i = 0; i < n; i++)
        if (order[i] == k) return cli_usage("bench", "--pages: '%s' given twice", bench_kinds[k].name);
      order[n++] = k;
      p += len;
      if (*p == ',') p++;
    }
    if (n == 0) return cli_usage("bench", "--pages: no kind given");
  }
  if (o_csv != NULL && (csv = fopen(o_csv, "w")) == NULL) {
    cli_error(o_csv, "cannot write the CSV file");
    return EXIT_FAILED;
  }

  signal(SIGINT, bench_on_signal);
  signal(SIGTERM, bench_on_signal);
  for (i = 0; i < n && !bench_interrupted; i++) {
    bench_kind(order[i], size, &res[i]);
    if (res[i].had && order[i] == KIND_4K) base = &res[i];
  }
  if (bench_interrupted) {
    /* The sections were anonymous: nothing outlives the process. */
    if (csv) fclose(csv);
    cli_error("bench", "interrupted");
    return EXIT_INTERRUPTED;
  }

  if (csv) {
    fprintf(csv, "pages,page_size,size,populate_seconds,seq_bytes_per_second,random_ns,dependent_ns,reason\n");
    for (i = 0; i < n; i++) csv_row(csv, &res[i]);
    if (fclose(csv) != 0) {
      cli_error(o_csv, "cannot write the CSV file");
      return EXIT_FAILED;
    }
  }
  if (o_json) {
    printf("{\"results\":[");
    for (i = 0; i < n; i++) {
      const bench_result_t *r = &res[i];
      printf("%s{\"pages\":\"%s\",", i ? "," : "", bench_kinds[r->kind].name);
      if (r->had)
        printf("\"page_size\":%zu,\"size\":%llu,\"populate_seconds\":%.6f,"
               "\"seq_bytes_per_second\":%.0f,\"random_ns\":%.3f,\"dependent_ns\":%.3f}",
               r->page_size, (unsigned long long)r->size, r->populate_seconds, r->seq_bps,
               r->random_ns, r->dependent_ns);
      else {
        printf("\"page_size\":null,\"size\":%llu,\"populate_seconds\":null,"
               "\"seq_bytes_per_second\":null,\"random_ns\":null,\"dependent_ns\":null,\"reason\":",
               (unsigned long long)r->size);
        json_string(r->reason);
        putchar('}');
      }
    }
    printf("]}\n");
  } else {
    for (i = 0; i < n; i++) {
      const bench_result_t *r = &res[i];
      printf("%s:\n", bench_kinds[r->kind].name);
      if (!r->had) {
        printf("  obtained: false\n  reason: %s\n", r->reason);
        continue;
      }
      printf("  page_size: %zu\n  size: %llu\n", r->page_size, (unsigned long long)r->size);
      printf("  populate_seconds: %.6f\n  populate_bytes_per_second: %.0f\n", r->populate_seconds,
             (double)r->size / r->populate_seconds);
      printf("  seq_bytes_per_second: %.0f\n  random_ns: %.2f\n  dependent_ns: %.2f\n",
             r->seq_bps, r->random_ns, r->dependent_ns);
      if (base != NULL && r != base)
        printf("  populate_vs_4k: %.2fx faster\n  seq_vs_4k: %.2fx\n  random_vs_4k: %.2fx the time\n"
               "  dependent_vs_4k: %.2fx the time\n",
               base->populate_seconds / r->populate_seconds * ((double)r->size / (double)base->size),
               r->seq_bps / base->seq_bps, r->random_ns / base->random_ns,
               r->dependent_ns / base->dependent_ns);
    }
  }
  fflush(stdout);
  return EXIT_DONE;
}
