/* bulkmap bench: page kinds side by side (DESIGN section 3). Each row is a region of one
 * page kind on one backing: anonymous private memory (a program's heap), a shared section
 * (--shared), a file mapped from the page cache and the same bytes in a large-page section
 * (--file). Every round measures every row, interleaved and in a rotating order, after one
 * unrecorded warm-up round; each figure is the median of the rounds, with min and max.
 * The OS-specific parts (anonymous regions, smaps, the dTLB counter) are in bench_os.c. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "bench_os.h"
#include "cli.h"

enum { B_ANON, B_SHARED, B_FILE, B_SECTION };
static const char *const backing_name[] = {"anonymous", "shared", "file", "section"};
static const char *const kind_name[BENCH_NKINDS] = {"4k", "thp", "large"};

/* The figures of a row, in JSON and CSV order; min and max objects hold the same keys. */
enum { F_HUGE, F_POPULATE, F_SEQ, F_RANDOM, F_DEPENDENT, F_DTLB, F_LOAD, NFIG };
static const char *const fig_key[NFIG] = {"huge_share", "populate_seconds",
                                          "seq_bytes_per_second", "random_ns", "dependent_ns",
                                          "dtlb_misses_per_load", "load_seconds"};
static const int fig_decimals[NFIG] = {3, 6, 0, 3, 3, 4, 6};

#define RANDOM_LOADS (1u << 16) /* independent random reads timed, a chunk */
#define CHASE_STEPS (1u << 14)  /* dependent loads timed, a chunk */
#define CHUNKS 64               /* chunks a round: the fastest counts (see measure) */
#define SWEEP_LOADS (1u << 20)  /* random reads timed at each working set */
#define SWEEP_STEPS (1u << 16)  /* dependent loads timed at each working set */
#define SWEEP_MIN ((uint64_t)64 << 10)
#define SEQ_PASSES 2
#define MAX_RUNS 1000

typedef struct {
  int kind, backing;
  int had;          /* cleared, with the reason, the first round the kind cannot be had */
  char reason[320];
  size_t page_size; /* what the kernel gave */
  uint64_t size;
  double *fig;      /* runs x NFIG; NAN: not measured */
  double *sweep;    /* runs x nws: random_ns at working set SWEEP_MIN << i */
  double *sweep_dep;/* runs x nws: dependent_ns there */
  int nws;
} row_t;

typedef struct {
  uint64_t size;
  int runs, sweep;
  const char *file;
  uint64_t file_size;
  size_t large_size; /* the default large page size, 0 when none */
  bench_tlb_t tlb;
  int tlb_ok;
  char tlb_reason[256];
} bench_t;

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

static unsigned log2_floor(uint64_t n) {
  unsigned b = 0;
  while (b < 63 && ((uint64_t)1 << (b + 1)) <= n) b++;
  return b;
}

/* Sequential read of every byte, 8 at a time, four independent sums. Bytes per second of
 * the best pass: the others only add what the shared machine took from us. */
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
    if (dt > 0 && (double)nwords * 8 / dt > best) best = (double)nwords * 8 / dt;
  }
  return best;
}

/* Independent 8-byte loads at random aligned offsets in the first 2^k words (the largest
 * power of two that fits): no load's address depends on another's, so the CPU overlaps
 * them and what is left is the cost of the cache and TLB misses. ns a load. */
static double bench_random(const uint64_t *p, size_t nwords, uint32_t loads, uint64_t seed) {
  unsigned bits = log2_floor(nwords);
  uint64_t s = seed | 1, sum = 0;
  uint32_t i;
  double t0, dt;
  if (bits == 0) return NAN;
  t0 = cli_now();
  for (i = 0; i < loads; i++) sum += p[rng_next(&s) >> (64 - bits)];
  dt = cli_now() - t0;
  bench_sink += sum;
  return dt * 1e9 / loads;
}

/* Dependent loads: each address is computed from the value the previous load returned
 * (an LCG step with the loaded word added in), so the loads cannot overlap: the latency
 * of a miss, page walk included. It reads only, so it runs on read-only file views and
 * on zero pages alike (a CPU cannot know the value before the load completes). */
static double bench_dependent(const uint64_t *p, size_t nwords, uint64_t seed, uint32_t steps) {
  unsigned bits = log2_floor(nwords);
  uint64_t s = 0x243F6A8885A308D3ull + seed * 0x9E3779B97F4A7C15ull, idx = 0;
  uint32_t i;
  double t0, dt;
  if (bits == 0) return NAN;
  t0 = cli_now();
  for (i = 0; i < steps; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull + p[idx];
    idx = s >> (64 - bits);
  }
  dt = cli_now() - t0;
  bench_sink += s;
  return dt * 1e9 / steps;
}

static int sweep_points(uint64_t size) {
  int n = 0;
  while (n < 40 && (SWEEP_MIN << n) <= size) n++;
  return n;
}

static double *fig_at(const bench_t *b, row_t *r, int round) {
  (void)b;
  return r->fig + (size_t)round * NFIG;
}

/* The measurements on a populated region; round < 0 is the warm-up (not recorded). */
static void measure(bench_t *b, row_t *r, int round, const void *data, size_t len) {
  double f[NFIG], misses;
  int i;
  for (i = 0; i < NFIG; i++) f[i] = NAN;
  f[F_SEQ] = bench_seq(data, len / 8);
  /* Latencies in chunks, the fastest of each round kept: work on the other core (this
   * machine is shared) only ever adds time, so the fastest chunk is the one it disturbed
   * least; the median across rounds then says how repeatable that is. */
  if (b->tlb_ok) bench_tlb_start(&b->tlb);
  for (i = 0; i < CHUNKS && !bench_interrupted; i++) {
    double ns = bench_random(data, len / 8, RANDOM_LOADS, 0x9E3779B97F4A7C15ull + (uint64_t)i);
    if (isnan(f[F_RANDOM]) || ns < f[F_RANDOM]) f[F_RANDOM] = ns;
  }
  if (b->tlb_ok && bench_tlb_stop(&b->tlb, &misses) == 0)
    f[F_DTLB] = misses / ((double)RANDOM_LOADS * CHUNKS);
  for (i = 0; i < CHUNKS && !bench_interrupted; i++) {
    double ns = bench_dependent(data, len / 8, (uint64_t)i, CHASE_STEPS);
    if (isnan(f[F_DEPENDENT]) || ns < f[F_DEPENDENT]) f[F_DEPENDENT] = ns;
  }
  for (i = 0; b->sweep && i < r->nws && !bench_interrupted; i++) {
    size_t ws = (size_t)(SWEEP_MIN << i);
    double ns;
    /* Warm the working set's caches and TLB entries first: the sweep asks what a loop
     * over that much memory costs in steady state. */
    double best = NAN;
    int c;
    (void)bench_random(data, ws / 8, SWEEP_LOADS / 4, 0x5851F42D4C957F2Dull + (uint64_t)i);
    for (c = 0; c < CHUNKS / 2; c++) { /* the fastest chunk, as above */
      ns = bench_random(data, ws / 8, SWEEP_LOADS / (CHUNKS / 2),
                        0x14057B7EF767814Full + (uint64_t)i * 64 + (uint64_t)c);
      if (isnan(best) || ns < best) best = ns;
    }
    if (round >= 0) r->sweep[(size_t)round * r->nws + i] = best;
    /* Dependent loads show the TLB's reach more sharply: no overlap hides a page walk. */
    best = NAN;
    for (c = 0; c < CHUNKS / 4; c++) {
      ns = bench_dependent(data, ws / 8, (uint64_t)i * 64 + (uint64_t)c, SWEEP_STEPS / (CHUNKS / 4));
      if (isnan(best) || ns < best) best = ns;
    }
    if (round >= 0) r->sweep_dep[(size_t)round * r->nws + i] = best;
  }
  if (round >= 0) {
    double *o = fig_at(b, r, round);
    for (i = 0; i < NFIG; i++)
      if (i != F_POPULATE && i != F_LOAD && i != F_HUGE) o[i] = f[i];
  }
}

static void row_fail(row_t *r, int round, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void row_fail(row_t *r, int round, const char *fmt, ...) {
  va_list ap;
  size_t n = 0;
  r->had = 0;
  if (round >= 0) n = (size_t)snprintf(r->reason, sizeof(r->reason), "in round %d: ", round + 1);
  va_start(ap, fmt);
  vsnprintf(r->reason + n, sizeof(r->reason) - n, fmt, ap);
  va_end(ap);
}

static void lib_reason(row_t *r, int round, const char *what, int err, const bm_large_t *l) {
  if (l != NULL && (err == BM_ENOLARGE || err == BM_EALIGN)) {
    char mode[64] = "";
    if (r->kind == BENCH_THP) bench_os_thp_mode(1, mode, sizeof(mode));
    if (r->kind == BENCH_THP && mode[0] == '\0')
      row_fail(r, round, "%s: no transparent huge pages for shared memory on this system",
               bm_large_reason_str(l->reason));
    else if (l->reason == BM_REASON_NO_PRIVILEGE)
      row_fail(r, round, "%s (Linux: root or CAP_IPC_LOCK; Windows: SeLockMemoryPrivilege, "
               "\"Lock pages in memory\")", bm_large_reason_str(l->reason));
    else if (r->kind == BENCH_THP)
      row_fail(r, round, "%s: shmem_enabled is %s (shared memory gets transparent huge pages "
               "only in advise, within_size, always or force)", bm_large_reason_str(l->reason), mode);
    else if (l->reason == BM_REASON_POOL_EMPTY) {
      bm_sysinfo_t si;
      int i;
      long long fr = -1;
      if (bm_sysinfo_get(&si) == 0)
        for (i = 0; i < si.n_large_sizes; i++)
          if (si.large_sizes[i] == si.default_large_size && si.large_free[i] != UINT64_MAX)
            fr = (long long)si.large_free[i];
      if (fr >= 0 && si.default_large_size > 0)
        row_fail(r, round, "pool empty: %lld free %llu MiB pages, %llu needed (bulkmap setup "
                 "--large-pages SIZE)", fr, (unsigned long long)(si.default_large_size >> 20),
                 (unsigned long long)((r->size + si.default_large_size - 1) / si.default_large_size));
      else
        row_fail(r, round, "%s", bm_large_reason_str(l->reason));
    } else
      row_fail(r, round, "%s", bm_large_reason_str(l->reason));
  } else {
    int os = bm_last_os_error();
    if (os != 0)
      row_fail(r, round, "%s: %s (%s; OS error %d (0x%x))", what, bm_strerror(err), bm_err_name(err),
               os, (unsigned)os);
    else
      row_fail(r, round, "%s: %s (%s)", what, bm_strerror(err), bm_err_name(err));
  }
}

/* The share of [data, data+len) the kernel maps with huge entries, and its page size for a
 * kind; where smaps cannot be read (Windows) what the kind implies. */
static void huge_share(row_t *r, const void *data, size_t len, size_t fallback_page, double *share) {
  bench_smaps_t sm;
  if (bench_os_smaps(data, len, &sm) == 0 && sm.mapped_bytes > 0) {
    *share = (double)sm.huge_bytes / (double)sm.mapped_bytes;
    if (sm.kernel_page_size > r->page_size) r->page_size = sm.kernel_page_size;
    if (r->page_size == 0) r->page_size = sm.kernel_page_size;
  } else {
    *share = fallback_page > bm_page_size() ? 1.0 : 0.0;
    if (r->page_size == 0) r->page_size = fallback_page;
  }
}

static void run_anon(bench_t *b, row_t *r, int round) {
  bench_mem_t m;
  double t0, pop, share;
  char why[256];
  /* Populate once untimed and give it back, then time the second populate: in a VM the
   * first touch of memory the host took back (balloon, free page reporting) costs the
   * host's fault too, by seconds and at random; memory this process just freed is backed,
   * so the timed populate is the guest kernel's cost of faulting and zeroing pages. */
  if (bench_mem_map(&m, r->kind, (size_t)b->size, why, sizeof(why)) == 0) {
    (void)bench_mem_populate(&m, why, sizeof(why));
    bench_mem_unmap(&m);
  }
  t0 = cli_now();
  if (bench_mem_map(&m, r->kind, (size_t)b->size, why, sizeof(why)) != 0) {
    row_fail(r, round, "%s", why);
    return;
  }
  if (bench_mem_populate(&m, why, sizeof(why)) != 0) {
    row_fail(r, round, "%s", why);
    bench_mem_unmap(&m);
    return;
  }
  pop = cli_now() - t0;
  r->page_size = 0;
  huge_share(r, m.base, m.size, r->kind == BENCH_LARGE ? b->large_size : bm_page_size(), &share);
  if (r->kind == BENCH_THP) {
    char mode[64] = "";
    if (share <= 0) {
      bench_os_thp_mode(0, mode, sizeof(mode));
      row_fail(r, round, "transparent only in name: the kernel mapped none of the region with "
               "huge pages after MADV_HUGEPAGE (enabled: %s)", mode);
      bench_mem_unmap(&m);
      return;
    }
    if (share >= 0.5) r->page_size = bench_os_thp_size();
  }
  if (round >= 0) {
    fig_at(b, r, round)[F_POPULATE] = pop;
    fig_at(b, r, round)[F_HUGE] = share;
  }
  measure(b, r, round, m.base, m.size);
  bench_mem_unmap(&m);
}

/* A section of the kind: anonymous (memfd on Linux, a pagefile-backed section on
 * Windows), created, mapped and populated. */
static int section_of_kind(row_t *r, int round, uint64_t size, bm_source_t **src, bm_large_t *l) {
  bm_section_opts_t so;
  int err;
  memset(&so, 0, sizeof(so));
  memset(l, 0, sizeof(*l));
  so.size = size;
  so.large = r->kind == BENCH_4K ? BM_LARGE_OFF : BM_LARGE_ON;
  so.transparent = r->kind == BENCH_THP;
  so.round = 1;
  if ((err = bm_section_create(src, NULL, &so, l)) != 0) {
    lib_reason(r, round, "create", err, l);
    return -1;
  }
  return 0;
}

/* What the kernel gave a section, asked again now that every page is in. */
static int section_check(row_t *r, int round, bm_source_t *src, const bm_view_t *v, double *share) {
  bm_large_t l;
  if (bm_section_large(src, &l) != 0) memset(&l, 0, sizeof(l));
  if (r->kind != BENCH_4K && !(l.obtained && l.transparent == (r->kind == BENCH_THP))) {
    row_fail(r, round, "the kernel gave %llu-byte pages%s", (unsigned long long)l.page_size,
             l.transparent ? " (transparent)" : "");
    return -1;
  }
  r->page_size = 0;
  huge_share(r, v->data, v->length, l.page_size, share);
  r->page_size = l.page_size != 0 ? l.page_size : r->page_size;
  return 0;
}

/* A reader's view of length bytes of section src, timed from t0 to populated, checked
 * against smaps, recorded (load < 0: no load_seconds) and measured. The view is left in *v
 * for the caller to unmap. */
static void section_measure(bench_t *b, row_t *r, int round, bm_source_t *src, uint64_t length,
                            unsigned access, double t0, double load, bm_large_t *l,
                            bm_view_t *v) {
  double pop, share;
  int err;
  if ((err = bm_view_map(v, src, 0, length, access)) != 0 || (err = bm_view_prefetch(v)) != 0) {
    lib_reason(r, round, "map", err, l);
    return;
  }
  pop = cli_now() - t0;
  if (section_check(r, round, src, v, &share) != 0) return;
  if (round >= 0) {
    fig_at(b, r, round)[F_POPULATE] = pop;
    if (load >= 0) fig_at(b, r, round)[F_LOAD] = load;
    fig_at(b, r, round)[F_HUGE] = share;
  }
  measure(b, r, round, v->data, v->length);
}

static void run_shared(bench_t *b, row_t *r, int round) {
  bm_source_t *src = NULL;
  bm_large_t l;
  bm_view_t v;
  double t0;
  memset(&v, 0, sizeof(v));
  /* Populated once untimed first, as in run_anon. */
  if (bm_section_create(&src, NULL, &(bm_section_opts_t){.size = b->size, .round = 1,
                        .large = r->kind == BENCH_4K ? BM_LARGE_OFF : BM_LARGE_AUTO,
                        .transparent = r->kind == BENCH_THP}, NULL) == 0) {
    if (bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE) == 0) (void)bm_view_prefetch(&v);
    bm_view_unmap(&v);
    bm_source_close(src);
    src = NULL;
  }
  t0 = cli_now();
  if (section_of_kind(r, round, b->size, &src, &l) != 0) return;
  section_measure(b, r, round, src, BM_TO_END, BM_ACCESS_WRITE, t0, -1, &l, &v);
  bm_view_unmap(&v);
  bm_source_close(src);
}

/* FILE from the page cache: open, map and populate timed (MADV_POPULATE_READ), then read. */
static void run_file(bench_t *b, row_t *r, int round) {
  bm_source_t *f = NULL;
  bm_view_t v;
  double t0 = cli_now(), pop, share;
  int err;
  memset(&v, 0, sizeof(v));
  if ((err = bm_file_open(&f, b->file, BM_FILE_READ)) != 0 ||
      (err = bm_view_map(&v, f, 0, BM_TO_END, BM_ACCESS_READ)) != 0 ||
      (err = bm_view_prefetch(&v)) != 0) {
    lib_reason(r, round, b->file, err, NULL);
    goto done;
  }
  pop = cli_now() - t0;
  r->page_size = 0;
  huge_share(r, v.data, v.length, bm_page_size(), &share);
  if (round >= 0) {
    fig_at(b, r, round)[F_POPULATE] = pop;
    fig_at(b, r, round)[F_HUGE] = share;
  }
  measure(b, r, round, v.data, v.length);
done:
  bm_view_unmap(&v);
  bm_source_close(f);
}

/* The same bytes in a section of the kind: created and filled from the file (load_seconds,
 * what `bulkmap load` pays once), then a reader's map and populate (populate_seconds). */
static void run_section(bench_t *b, row_t *r, int round) {
  bm_source_t *src = NULL, *f = NULL;
  bm_large_t l;
  bm_view_t v, fv;
  double t0 = cli_now(), load;
  int err;
  memset(&v, 0, sizeof(v));
  memset(&fv, 0, sizeof(fv));
  if (section_of_kind(r, round, b->file_size, &src, &l) != 0) return;
  if ((err = bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_WRITE)) != 0) {
    lib_reason(r, round, "map", err, &l);
    goto done;
  }
  if ((err = bm_file_open(&f, b->file, BM_FILE_READ)) != 0 ||
      (err = bm_view_map(&fv, f, 0, BM_TO_END, BM_ACCESS_READ)) != 0 ||
      (err = bm_view_prefetch(&fv)) != 0) {
    lib_reason(r, round, b->file, err, NULL);
    goto done;
  }
  if (fv.length > v.length) {
    row_fail(r, round, "%s grew while being measured", b->file);
    goto done;
  }
  memcpy(v.data, fv.data, fv.length);
  load = cli_now() - t0;
  bm_view_unmap(&fv);
  bm_source_close(f);
  f = NULL;
  bm_view_unmap(&v);
  t0 = cli_now();
  section_measure(b, r, round, src, b->file_size, BM_ACCESS_READ, t0, load, &l, &v);
done:
  bm_view_unmap(&fv);
  bm_source_close(f);
  bm_view_unmap(&v);
  bm_source_close(src);
}

/* ------------------------------------------------------------------------------------
 * Statistics and output. */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median, min and max of n samples a stride apart, NaN samples left out (all NaN: NaN). */
static void stats(const double *v, int n, size_t stride, double *tmp, double *med, double *lo,
                  double *hi) {
  int i, k = 0;
  for (i = 0; i < n; i++)
    if (!isnan(v[(size_t)i * stride])) tmp[k++] = v[(size_t)i * stride];
  if (k == 0) {
    *med = *lo = *hi = NAN;
    return;
  }
  qsort(tmp, (size_t)k, sizeof(double), cmp_double);
  *lo = tmp[0];
  *hi = tmp[k - 1];
  *med = k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

typedef struct {
  double med[NFIG], lo[NFIG], hi[NFIG];
} summary_t;

static void summarize(const bench_t *b, const row_t *r, double *tmp, summary_t *s) {
  int i;
  for (i = 0; i < NFIG; i++) {
    if (r->had)
      stats(r->fig + i, b->runs, NFIG, tmp, &s->med[i], &s->lo[i], &s->hi[i]);
    else
      s->med[i] = s->lo[i] = s->hi[i] = NAN;
  }
}

static void json_num(double v, int decimals) {
  if (isnan(v) || isinf(v))
    fputs("null", stdout);
  else
    printf("%.*f", decimals, v);
}

static void csv_num(FILE *f, double v, int decimals) {
  if (!isnan(v) && !isinf(v)) fprintf(f, "%.*f", decimals, v);
}

static void csv_string(FILE *f, const char *s) {
  if (s == NULL) return;
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

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
static void ratio_line(const char *key, const char *who, const summary_t *s, const summary_t *base,
                       const row_t *r, const row_t *br, const char *than) {
  double pop = (base->med[F_POPULATE] / (double)br->size) / (s->med[F_POPULATE] / (double)r->size);
  printf("  %s: %s: %s %.2fx faster, sequential reads %.2fx faster, random reads %.2fx faster, "
         "dependent loads %.2fx faster than %s\n",
         key, who, r->backing == B_SECTION ? "map+populate" : "populate", pop,
         s->med[F_SEQ] / base->med[F_SEQ], base->med[F_RANDOM] / s->med[F_RANDOM],
         base->med[F_DEPENDENT] / s->med[F_DEPENDENT], than);
}

static void print_human(const bench_t *b, row_t *rows, int nrows, double *tmp) {
  summary_t s[8];
  int i, k;
  printf("runs: %d (each figure: median [min max] of the runs, after one warm-up round)\n",
         b->runs);
  if (!b->tlb_ok) printf("dtlb_misses_per_load: null (%s)\n", b->tlb_reason);
  for (i = 0; i < nrows; i++) summarize(b, &rows[i], tmp, &s[i]);
  for (i = 0; i < nrows; i++) {
    const row_t *r = &rows[i];
    printf("%s %s:\n", kind_name[r->kind], backing_name[r->backing]);
    printf("  size: %llu\n", (unsigned long long)r->size);
    if (!r->had) {
      printf("  obtained: false\n  reason: %s\n", r->reason);
      continue;
    }
    printf("  page_size: %zu\n", r->page_size);
    for (k = 0; k < NFIG; k++) {
      if (isnan(s[i].med[k])) continue;
      printf("  %s: %.*f [%.*f %.*f]\n", fig_key[k], fig_decimals[k], s[i].med[k], fig_decimals[k],
             s[i].lo[k], fig_decimals[k], s[i].hi[k]);
      if (k == F_POPULATE)
        printf("  populate_bytes_per_second: %.0f\n", (double)r->size / s[i].med[k]);
    }
    {
      /* The baseline: 4 KiB pages on the same backing; for a section, the file. */
      int j, base = -1;
      char words[64], pg[32];
      for (j = 0; j < nrows; j++) {
        const row_t *q = &rows[j];
        if (!q->had || j == i) continue;
        if (r->backing == B_SECTION ? q->backing == B_FILE
                                    : (q->backing == r->backing && q->kind == BENCH_4K))
          base = j;
      }
      if (base < 0 || r->backing == B_FILE) continue;
      size_words(r->page_size, pg, sizeof(pg));
      if (r->backing == B_SECTION) {
        snprintf(words, sizeof(words), "a section of %s%s pages", pg,
                 r->kind == BENCH_THP ? " transparent" : "");
        ratio_line("vs_file", words, &s[i], &s[base], r, &rows[base], "the file from the page cache");
      } else {
        snprintf(words, sizeof(words), "%s%s pages", pg, r->kind == BENCH_THP ? " transparent" : "");
        ratio_line("vs_4k", words, &s[i], &s[base], r, &rows[base], "4 KiB pages");
      }
    }
  }
  if (b->sweep) {
    for (i = 0; i < nrows; i++) {
      double med, lo, hi, dmed, dlo, dhi;
      if (!rows[i].had) continue;
      for (k = 0; k < rows[i].nws; k++) {
        stats(rows[i].sweep + k, b->runs, (size_t)rows[i].nws, tmp, &med, &lo, &hi);
        stats(rows[i].sweep_dep + k, b->runs, (size_t)rows[i].nws, tmp, &dmed, &dlo, &dhi);
        printf("sweep %s %s %llu: random_ns %.2f [%.2f %.2f] dependent_ns %.2f [%.2f %.2f]\n",
               kind_name[rows[i].kind], backing_name[rows[i].backing],
               (unsigned long long)(SWEEP_MIN << k), med, lo, hi, dmed, dlo, dhi);
      }
    }
  }
}

static void json_figs(const double *v) {
  int k;
  for (k = 0; k < NFIG; k++) {
    printf("%s\"%s\":", k ? "," : "", fig_key[k]);
    json_num(v[k], fig_decimals[k]);
  }
}

static void print_json(const bench_t *b, row_t *rows, int nrows, double *tmp) {
  int i, k, first = 1;
  printf("{\"runs\":%d,\"results\":[", b->runs);
  for (i = 0; i < nrows; i++) {
    const row_t *r = &rows[i];
    summary_t s;
    summarize(b, r, tmp, &s);
    printf("%s{\"pages\":\"%s\",\"backing\":\"%s\",\"page_size\":", i ? "," : "",
           kind_name[r->kind], backing_name[r->backing]);
    if (r->had)
      printf("%zu", r->page_size);
    else
      fputs("null", stdout);
    printf(",\"size\":%llu,", (unsigned long long)r->size);
    json_figs(s.med);
    fputs(",\"min\":{", stdout);
    json_figs(s.lo);
    fputs("},\"max\":{", stdout);
    json_figs(s.hi);
    fputs("},\"reason\":", stdout);
    if (r->had)
      fputs("null", stdout);
    else
      json_string(r->reason);
    fputs(",\"dtlb_reason\":", stdout);
    if (b->tlb_ok || !r->had)
      fputs("null", stdout);
    else
      json_string(b->tlb_reason);
    putchar('}');
  }
  putchar(']');
  if (b->sweep) {
    fputs(",\"sweep\":[", stdout);
    for (i = 0; i < nrows; i++) {
      double med, lo, hi, dmed, dlo, dhi;
      if (!rows[i].had) continue;
      for (k = 0; k < rows[i].nws; k++) {
        stats(rows[i].sweep + k, b->runs, (size_t)rows[i].nws, tmp, &med, &lo, &hi);
        stats(rows[i].sweep_dep + k, b->runs, (size_t)rows[i].nws, tmp, &dmed, &dlo, &dhi);
        printf("%s{\"pages\":\"%s\",\"backing\":\"%s\",\"working_set\":%llu,\"random_ns\":",
               first ? "" : ",", kind_name[rows[i].kind], backing_name[rows[i].backing],
               (unsigned long long)(SWEEP_MIN << k));
        json_num(med, 3);
        fputs(",\"dependent_ns\":", stdout);
        json_num(dmed, 3);
        fputs(",\"min\":{\"random_ns\":", stdout);
        json_num(lo, 3);
        fputs(",\"dependent_ns\":", stdout);
        json_num(dlo, 3);
        fputs("},\"max\":{\"random_ns\":", stdout);
        json_num(hi, 3);
        fputs(",\"dependent_ns\":", stdout);
        json_num(dhi, 3);
        fputs("}}", stdout);
        first = 0;
      }
    }
    putchar(']');
  }
  puts("}");
}

/* One row a result and (with --sweep) one a working set; the columns are the JSON keys,
 * min.X and max.X as min_X and max_X, and `row` says which kind of line it is. */
static void write_csv(FILE *f, const bench_t *b, row_t *rows, int nrows, double *tmp) {
  int i, k, m;
  fputs("row,pages,backing,page_size,size,working_set", f);
  for (m = 0; m < 3; m++)
    for (k = 0; k < NFIG; k++) fprintf(f, ",%s%s", m == 0 ? "" : m == 1 ? "min_" : "max_", fig_key[k]);
  fputs(",reason,dtlb_reason\n", f);
  for (i = 0; i < nrows; i++) {
    const row_t *r = &rows[i];
    summary_t s;
    summarize(b, r, tmp, &s);
    fprintf(f, "result,%s,%s,", kind_name[r->kind], backing_name[r->backing]);
    if (r->had) fprintf(f, "%zu", r->page_size);
    fprintf(f, ",%llu,", (unsigned long long)r->size);
    for (m = 0; m < 3; m++)
      for (k = 0; k < NFIG; k++) {
        fputc(',', f);
        csv_num(f, m == 0 ? s.med[k] : m == 1 ? s.lo[k] : s.hi[k], fig_decimals[k]);
      }
    fputc(',', f);
    if (!r->had) csv_string(f, r->reason);
    fputc(',', f);
    if (r->had && !b->tlb_ok) csv_string(f, b->tlb_reason);
    fputc('\n', f);
  }
  for (i = 0; b->sweep && i < nrows; i++) {
    const row_t *r = &rows[i];
    if (!r->had) continue;
    for (k = 0; k < r->nws; k++) {
      double v[3], dv[3];
      stats(r->sweep + k, b->runs, (size_t)r->nws, tmp, &v[0], &v[1], &v[2]);
      stats(r->sweep_dep + k, b->runs, (size_t)r->nws, tmp, &dv[0], &dv[1], &dv[2]);
      fprintf(f, "sweep,%s,%s,%zu,%llu,%llu", kind_name[r->kind], backing_name[r->backing],
              r->page_size, (unsigned long long)r->size, (unsigned long long)(SWEEP_MIN << k));
      for (m = 0; m < 3; m++) {
        int c;
        for (c = 0; c < NFIG; c++) {
          fputc(',', f);
          if (c == F_RANDOM) csv_num(f, v[m], 3);
          if (c == F_DEPENDENT) csv_num(f, dv[m], 3);
        }
      }
      fputs(",,\n", f);
    }
  }
}

/* ------------------------------------------------------------------------------------ */

static int parse_pages(const char *o_pages, int *order, int *n) {
  const char *p = o_pages;
  int i, k;
  *n = 0;
  if (p == NULL) {
    for (k = 0; k < BENCH_NKINDS; k++) order[(*n)++] = k;
    return 0;
  }
  while (*p) {
    size_t len = strcspn(p, ",");
    for (k = 0; k < BENCH_NKINDS; k++)
      if (strlen(kind_name[k]) == len && strncmp(kind_name[k], p, len) == 0) break;
    if (k == BENCH_NKINDS)
      return cli_usage("bench", "--pages: unknown kind '%.*s' (4k, thp, large)", (int)len, p);
    for (i = 0; i < *n; i++)
      if (order[i] == k) return cli_usage("bench", "--pages: '%s' given twice", kind_name[k]);
    order[(*n)++] = k;
    p += len;
    if (*p == ',') {
      p++;
      if (*p == '\0') return cli_usage("bench", "--pages '%s': ends with a comma", o_pages);
    }
  }
  if (*n == 0) return cli_usage("bench", "--pages: no kind given");
  return 0;
}

int cmd_bench(int argc, char **argv) {
  const char *o_size = NULL, *o_pages = NULL, *o_csv = NULL, *o_json = NULL, *o_shared = NULL,
             *o_file = NULL, *o_runs = NULL, *o_sweep = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--size", 1, &o_size},     {"--pages", 1, &o_pages},
                            {"--shared", 0, &o_shared}, {"--file", 1, &o_file},
                            {"--runs", 1, &o_runs},     {"--sweep", 0, &o_sweep},
                            {"--csv", 1, &o_csv},       {"--json", 0, &o_json}};
  int order[BENCH_NKINDS], nkinds, npos, rc, i, round, nrows = 0, result = EXIT_DONE;
  uint64_t runs = 5;
  size_t align;
  bench_t b;
  row_t rows[2 * BENCH_NKINDS + 1];
  double *tmp = NULL;
  FILE *csv = NULL;

  memset(&b, 0, sizeof(b));
  memset(rows, 0, sizeof(rows));
  b.size = 1ull << 30;
  b.tlb.fd = -1;
  rc = cli_parse("bench", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 0, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (o_size && (rc = cli_size("bench", "--size", o_size, &b.size))) return rc;
  if (b.size < (1u << 20)) return cli_usage("bench", "--size %s: at least 1M", o_size);
  if (b.size > (uint64_t)SIZE_MAX / 2)
    return cli_usage("bench", "--size %s: larger than this process can map", o_size);
  {
    /* Each kind faults the whole region in: past the machine's memory that would only
     * summon the OOM killer (for everyone), so refuse what cannot fit with room to spare. */
    uint64_t total = uv_get_total_memory();
    if (total != 0 && b.size > total / 4 * 3)
      return cli_usage("bench", "--size %s: more than 3/4 of this machine's memory (%llu MiB)",
                       o_size, (unsigned long long)(total >> 20));
  }
  if (o_runs != NULL) {
    if (bm_parse_size(o_runs, &runs) != 0 || strpbrk(o_runs, "kKmMgGtT") != NULL)
      return cli_usage("bench", "--runs '%s': not a number", o_runs);
    if (runs < 1 || runs > MAX_RUNS)
      return cli_usage("bench", "--runs %s: from 1 to %d", o_runs, MAX_RUNS);
  }
  b.runs = (int)runs;
  b.sweep = o_sweep != NULL;
  if ((rc = parse_pages(o_pages, order, &nkinds)) != 0) return rc;
  /* Every kind gets the same bytes: SIZE rounded up to whole huge pages. */
  align = bench_os_thp_size();
  {
    bm_sysinfo_t si;
    if (bm_sysinfo_get(&si) == 0) b.large_size = si.default_large_size;
    if (b.large_size > align) align = b.large_size;
  }
  if (align > 0 && b.size % align != 0) b.size += align - b.size % align;

  if (o_file != NULL) {
    bm_source_t *f = NULL;
    int err = bm_file_open(&f, o_file, BM_FILE_READ);
    if (err == 0) err = bm_source_size(f, &b.file_size);
    if (err != 0) {
      cli_lib_error(o_file, err);
      bm_source_close(f);
      return cli_exit_for(err);
    }
    bm_source_close(f);
    if (b.file_size == 0) {
      cli_error(o_file, "empty file: nothing to map and measure");
      return EXIT_FAILED;
    }
    if (b.file_size > (uint64_t)SIZE_MAX / 2) {
      cli_error(o_file, "too large to map whole in this process (%llu bytes)",
                (unsigned long long)b.file_size);
      return EXIT_FAILED;
    }
    b.file = o_file;
  }
  if (o_csv != NULL && (csv = fopen(o_csv, "w")) == NULL) {
    int e = errno;
    cli_error(o_csv, "cannot write the CSV file: %s (errno %d (0x%x))", strerror(e), e, (unsigned)e);
    return EXIT_FAILED;
  }

  for (i = 0; i < nkinds; i++) {
    rows[nrows].kind = order[i];
    rows[nrows].backing = o_shared ? B_SHARED : B_ANON;
    rows[nrows++].size = b.size;
  }
  if (b.file != NULL) {
    rows[nrows].kind = BENCH_4K;
    rows[nrows].backing = B_FILE;
    rows[nrows++].size = b.file_size;
    for (i = 0; i < nkinds; i++)
      if (order[i] == BENCH_LARGE) {
        rows[nrows].kind = BENCH_LARGE;
        rows[nrows].backing = B_SECTION;
        rows[nrows++].size = b.file_size;
      }
  }
  for (i = 0; i < nrows; i++) {
    size_t k;
    rows[i].had = 1;
    rows[i].nws = b.sweep ? sweep_points(rows[i].size) : 0;
    rows[i].fig = malloc((size_t)b.runs * NFIG * sizeof(double));
    rows[i].sweep = malloc((size_t)b.runs * (size_t)(rows[i].nws + 1) * sizeof(double));
    rows[i].sweep_dep = malloc((size_t)b.runs * (size_t)(rows[i].nws + 1) * sizeof(double));
    if (rows[i].fig == NULL || rows[i].sweep == NULL || rows[i].sweep_dep == NULL) {
      cli_error("bench", "out of memory");
      result = EXIT_FAILED;
      goto out;
    }
    for (k = 0; k < (size_t)b.runs * NFIG; k++) rows[i].fig[k] = NAN;
    for (k = 0; k < (size_t)b.runs * (size_t)rows[i].nws; k++)
      rows[i].sweep[k] = rows[i].sweep_dep[k] = NAN;
  }
  if ((tmp = malloc((size_t)b.runs * sizeof(double))) == NULL) {
    cli_error("bench", "out of memory");
    result = EXIT_FAILED;
    goto out;
  }
  b.tlb_ok = bench_tlb_open(&b.tlb, b.tlb_reason, sizeof(b.tlb_reason)) == 0;

  signal(SIGINT, bench_on_signal);
  signal(SIGTERM, bench_on_signal);
  /* Round -1 warms up (first touches of memory the host had taken back, page cache,
   * code); the order rotates each round so that no row always follows the same one. */
  for (round = -1; round < b.runs && !bench_interrupted; round++) {
    for (i = 0; i < nrows && !bench_interrupted; i++) {
      row_t *r = &rows[(i + (round + 1)) % nrows];
      if (!r->had) continue;
      switch (r->backing) {
      case B_ANON: run_anon(&b, r, round); break;
      case B_SHARED: run_shared(&b, r, round); break;
      case B_FILE: run_file(&b, r, round); break;
      default: run_section(&b, r, round); break;
      }
    }
  }
  if (bench_interrupted) {
    /* Everything was anonymous or a view of FILE: nothing outlives the process. */
    cli_error("bench", "interrupted");
    result = EXIT_INTERRUPTED;
    goto out;
  }
  if (csv != NULL) {
    write_csv(csv, &b, rows, nrows, tmp);
    rc = ferror(csv);
    if (fclose(csv) != 0 || rc) {
      int e = errno;
      csv = NULL;
      cli_error(o_csv, "cannot write the CSV file: %s (errno %d (0x%x))", strerror(e), e,
                (unsigned)e);
      result = EXIT_FAILED;
      goto out;
    }
    csv = NULL;
  }
  if (o_json)
    print_json(&b, rows, nrows, tmp);
  else
    print_human(&b, rows, nrows, tmp);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error("bench", "cannot write the result");
    result = EXIT_FAILED;
  }
out:
  if (csv != NULL) fclose(csv);
  bench_tlb_close(&b.tlb);
  for (i = 0; i < nrows; i++) {
    free(rows[i].fig);
    free(rows[i].sweep);
    free(rows[i].sweep_dep);
  }
  free(tmp);
  return result;
}
