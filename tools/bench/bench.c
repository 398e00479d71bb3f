/* The bench module (bench.h): the measurements, the rounds and their statistics. The OS
 * parts (private regions of each kind, smaps, the dTLB counter, the clock) are behind
 * bench_os.h; sections and file views come from the library. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bulkmap.h"

const char *const bench_kind_name[BENCH_NKINDS] = {"4k", "thp", "large"};
const char *const bench_backing_name[BENCH_NBACKINGS] = {"anonymous", "shared", "file", "section"};
const char *const bench_fig_key[BENCH_NFIG] = {"huge_share", "populate_seconds",
                                               "seq_bytes_per_second", "random_ns",
                                               "dependent_ns", "dtlb_misses_per_load",
                                               "load_seconds"};
const int bench_fig_decimals[BENCH_NFIG] = {3, 6, 0, 3, 3, 4, 6};

/* One run's state. */
typedef struct {
  uint64_t size;
  int runs, sweep;
  const char *file;
  uint64_t file_size;
  size_t large_size; /* the default large page size, 0 when none */
  bench_tlb_t tlb;
  int tlb_ok;
  int (*stop)(void *arg);
  void *stop_arg;
  int stopped;       /* stop said so once: it stays so */
} bench_t;

static int bench_stopped(bench_t *b) {
  if (!b->stopped && b->stop != NULL && b->stop(b->stop_arg)) b->stopped = 1;
  return b->stopped;
}

#define RANDOM_LOADS (1u << 16) /* independent random reads timed, a chunk */
#define CHASE_STEPS (1u << 14)  /* dependent loads timed, a chunk */
#define CHUNKS 64               /* chunks a round: the fastest counts (see measure) */
#define SWEEP_LOADS (1u << 20)  /* random reads timed at each working set */
#define SWEEP_STEPS (1u << 16)  /* dependent loads timed at each working set */
#define SEQ_PASSES 2

static volatile uint64_t bench_sink; /* keeps the measured loads from being optimised out */

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
static double bench_seq(bench_t *ctx, const uint64_t *p, size_t nwords) {
  double best = 0;
  int pass;
  for (pass = 0; pass < SEQ_PASSES && !bench_stopped(ctx); pass++) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i;
    double t0 = bench_os_now(), dt;
    for (i = 0; i + 4 <= nwords; i += 4) {
      a += p[i];
      b += p[i + 1];
      c += p[i + 2];
      d += p[i + 3];
    }
    for (; i < nwords; i++) a += p[i];
    dt = bench_os_now() - t0;
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
  t0 = bench_os_now();
  for (i = 0; i < loads; i++) sum += p[rng_next(&s) >> (64 - bits)];
  dt = bench_os_now() - t0;
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
  t0 = bench_os_now();
  for (i = 0; i < steps; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull + p[idx];
    idx = s >> (64 - bits);
  }
  dt = bench_os_now() - t0;
  bench_sink += s;
  return dt * 1e9 / steps;
}

static int sweep_points(uint64_t size) {
  int n = 0;
  while (n < 40 && (BENCH_SWEEP_MIN << n) <= size) n++;
  return n;
}

static double *fig_at(const bench_t *b, bench_row_t *r, int round) {
  (void)b;
  return r->raw + (size_t)round * BENCH_NFIG;
}

/* The measurements on a populated region; round < 0 is the warm-up (not recorded). */
static void measure(bench_t *b, bench_row_t *r, int round, const void *data, size_t len) {
  double f[BENCH_NFIG], misses;
  int i;
  for (i = 0; i < BENCH_NFIG; i++) f[i] = NAN;
  f[BENCH_F_SEQ] = bench_seq(b, data, len / 8);
  /* Latencies in chunks, the fastest of each round kept: work on the other core (this
   * machine is shared) only ever adds time, so the fastest chunk is the one it disturbed
   * least; the median across rounds then says how repeatable that is. */
  if (b->tlb_ok) bench_tlb_start(&b->tlb);
  for (i = 0; i < CHUNKS && !bench_stopped(b); i++) {
    double ns = bench_random(data, len / 8, RANDOM_LOADS, 0x9E3779B97F4A7C15ull + (uint64_t)i);
    if (isnan(f[BENCH_F_RANDOM]) || ns < f[BENCH_F_RANDOM]) f[BENCH_F_RANDOM] = ns;
  }
  if (b->tlb_ok && bench_tlb_stop(&b->tlb, &misses) == 0)
    f[BENCH_F_DTLB] = misses / ((double)RANDOM_LOADS * CHUNKS);
  for (i = 0; i < CHUNKS && !bench_stopped(b); i++) {
    double ns = bench_dependent(data, len / 8, (uint64_t)i, CHASE_STEPS);
    if (isnan(f[BENCH_F_DEPENDENT]) || ns < f[BENCH_F_DEPENDENT]) f[BENCH_F_DEPENDENT] = ns;
  }
  for (i = 0; b->sweep && i < r->nws && !bench_stopped(b); i++) {
    size_t ws = (size_t)(BENCH_SWEEP_MIN << i);
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
    if (round >= 0) r->raw_sweep[(size_t)round * r->nws + i] = best;
    /* Dependent loads show the TLB's reach more sharply: no overlap hides a page walk. */
    best = NAN;
    for (c = 0; c < CHUNKS / 4; c++) {
      ns = bench_dependent(data, ws / 8, (uint64_t)i * 64 + (uint64_t)c, SWEEP_STEPS / (CHUNKS / 4));
      if (isnan(best) || ns < best) best = ns;
    }
    if (round >= 0) r->raw_sweep_dep[(size_t)round * r->nws + i] = best;
  }
  if (round >= 0) {
    double *o = fig_at(b, r, round);
    for (i = 0; i < BENCH_NFIG; i++)
      if (i != BENCH_F_POPULATE && i != BENCH_F_LOAD && i != BENCH_F_HUGE) o[i] = f[i];
  }
}

static void row_fail(bench_row_t *r, int round, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void row_fail(bench_row_t *r, int round, const char *fmt, ...) {
  va_list ap;
  size_t n = 0;
  r->had = 0;
  if (round >= 0) n = (size_t)snprintf(r->reason, sizeof(r->reason), "in round %d: ", round + 1);
  va_start(ap, fmt);
  vsnprintf(r->reason + n, sizeof(r->reason) - n, fmt, ap);
  va_end(ap);
}

static void lib_reason(bench_row_t *r, int round, const char *what, int err, const bm_large_t *l) {
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
      bm_large_size_t ls;
      int i;
      long long fr = -1;
      if (bm_sysinfo_get(&si) == 0)
        for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++)
          if (ls.size == si.default_large_size && ls.free != UINT64_MAX)
            fr = (long long)ls.free;
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
static void huge_share(bench_row_t *r, const void *data, size_t len, size_t fallback_page, double *share) {
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

static void run_anon(bench_t *b, bench_row_t *r, int round) {
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
  t0 = bench_os_now();
  if (bench_mem_map(&m, r->kind, (size_t)b->size, why, sizeof(why)) != 0) {
    row_fail(r, round, "%s", why);
    return;
  }
  if (bench_mem_populate(&m, why, sizeof(why)) != 0) {
    row_fail(r, round, "%s", why);
    bench_mem_unmap(&m);
    return;
  }
  pop = bench_os_now() - t0;
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
    fig_at(b, r, round)[BENCH_F_POPULATE] = pop;
    fig_at(b, r, round)[BENCH_F_HUGE] = share;
  }
  measure(b, r, round, m.base, m.size);
  bench_mem_unmap(&m);
}

/* A section of the kind: anonymous (memfd on Linux, a pagefile-backed section on
 * Windows), created, mapped and populated. */
static int section_of_kind(bench_row_t *r, int round, uint64_t size, bm_source_t **src, bm_large_t *l) {
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
static int section_check(bench_row_t *r, int round, bm_source_t *src, const bm_view_t *v, double *share) {
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
static void section_measure(bench_t *b, bench_row_t *r, int round, bm_source_t *src, uint64_t length,
                            unsigned access, double t0, double load, bm_large_t *l,
                            bm_view_t *v) {
  double pop, share;
  int err;
  if ((err = bm_view_map(v, src, 0, length, access)) != 0 || (err = bm_view_prefetch(v)) != 0) {
    lib_reason(r, round, "map", err, l);
    return;
  }
  pop = bench_os_now() - t0;
  if (section_check(r, round, src, v, &share) != 0) return;
  if (round >= 0) {
    fig_at(b, r, round)[BENCH_F_POPULATE] = pop;
    if (load >= 0) fig_at(b, r, round)[BENCH_F_LOAD] = load;
    fig_at(b, r, round)[BENCH_F_HUGE] = share;
  }
  measure(b, r, round, v->data, v->length);
}

static void run_shared(bench_t *b, bench_row_t *r, int round) {
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
  t0 = bench_os_now();
  if (section_of_kind(r, round, b->size, &src, &l) != 0) return;
  section_measure(b, r, round, src, BM_TO_END, BM_ACCESS_WRITE, t0, -1, &l, &v);
  bm_view_unmap(&v);
  bm_source_close(src);
}

/* FILE from the page cache: open, map and populate timed (MADV_POPULATE_READ), then read. */
static void run_file(bench_t *b, bench_row_t *r, int round) {
  bm_source_t *f = NULL;
  bm_view_t v;
  double t0 = bench_os_now(), pop, share;
  int err;
  memset(&v, 0, sizeof(v));
  if ((err = bm_file_open(&f, b->file, BM_FILE_READ)) != 0 ||
      (err = bm_view_map(&v, f, 0, BM_TO_END, BM_ACCESS_READ)) != 0 ||
      (err = bm_view_prefetch(&v)) != 0) {
    lib_reason(r, round, b->file, err, NULL);
    goto done;
  }
  pop = bench_os_now() - t0;
  r->page_size = 0;
  huge_share(r, v.data, v.length, bm_page_size(), &share);
  if (round >= 0) {
    fig_at(b, r, round)[BENCH_F_POPULATE] = pop;
    fig_at(b, r, round)[BENCH_F_HUGE] = share;
  }
  measure(b, r, round, v.data, v.length);
done:
  bm_view_unmap(&v);
  bm_source_close(f);
}

/* The same bytes in a section of the kind: created and filled from the file (load_seconds,
 * what `bulkmap load` pays once), then a reader's map and populate (populate_seconds). */
static void run_section(bench_t *b, bench_row_t *r, int round) {
  bm_source_t *src = NULL, *f = NULL;
  bm_large_t l;
  bm_view_t v, fv;
  double t0 = bench_os_now(), load;
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
  load = bench_os_now() - t0;
  bm_view_unmap(&fv);
  bm_source_close(f);
  f = NULL;
  bm_view_unmap(&v);
  t0 = bench_os_now();
  section_measure(b, r, round, src, b->file_size, BM_ACCESS_READ, t0, load, &l, &v);
done:
  bm_view_unmap(&fv);
  bm_source_close(f);
  bm_view_unmap(&v);
  bm_source_close(src);
}

/* ------------------------------------------------------------------------------------
 * Statistics. */

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

/* ------------------------------------------------------------------------------------
 * The run. */

int bench_kind_parse(const char *name, size_t len) {
  int k;
  for (k = 0; k < BENCH_NKINDS; k++)
    if (strlen(bench_kind_name[k]) == len && strncmp(bench_kind_name[k], name, len) == 0) return k;
  return -1;
}

static size_t bench_large_size(void) {
  bm_sysinfo_t si;
  return bm_sysinfo_get(&si) == 0 ? si.default_large_size : 0;
}

uint64_t bench_region_size(uint64_t size) {
  size_t align = bench_os_thp_size(), large = bench_large_size();
  if (large > align) align = large;
  if (align > 0 && size % align != 0) size += align - size % align;
  return size;
}

/* The rows asked for: the kinds on their backing, then the file and its sections. */
static void plan_rows(const bench_opts_t *o, bench_result_t *res, uint64_t size) {
  int i;
  for (i = 0; i < o->nkinds; i++) {
    res->rows[res->nrows].kind = o->kinds[i];
    res->rows[res->nrows].backing = o->shared ? BENCH_SHARED : BENCH_ANON;
    res->rows[res->nrows++].size = size;
  }
  if (o->file == NULL) return;
  res->rows[res->nrows].kind = BENCH_4K;
  res->rows[res->nrows].backing = BENCH_FILE;
  res->rows[res->nrows++].size = o->file_size;
  for (i = 0; i < o->nkinds; i++)
    if (o->kinds[i] == BENCH_LARGE) {
      res->rows[res->nrows].kind = BENCH_LARGE;
      res->rows[res->nrows].backing = BENCH_SECTION;
      res->rows[res->nrows++].size = o->file_size;
    }
}

static int alloc_row(bench_row_t *r, int runs, int sweep) {
  size_t k, nraw = (size_t)runs * BENCH_NFIG;
  r->had = 1;
  r->nws = sweep ? sweep_points(r->size) : 0;
  r->raw = malloc(nraw * sizeof(double));
  r->raw_sweep = malloc((size_t)runs * (size_t)(r->nws + 1) * sizeof(double));
  r->raw_sweep_dep = malloc((size_t)runs * (size_t)(r->nws + 1) * sizeof(double));
  r->sweep_random = calloc((size_t)r->nws + 1, sizeof(bench_stat_t));
  r->sweep_dependent = calloc((size_t)r->nws + 1, sizeof(bench_stat_t));
  if (r->raw == NULL || r->raw_sweep == NULL || r->raw_sweep_dep == NULL ||
      r->sweep_random == NULL || r->sweep_dependent == NULL)
    return BENCH_ENOMEM;
  for (k = 0; k < nraw; k++) r->raw[k] = NAN;
  for (k = 0; k < (size_t)runs * (size_t)r->nws; k++) r->raw_sweep[k] = r->raw_sweep_dep[k] = NAN;
  return 0;
}

/* Medians, min and max of every figure and sweep point. */
static int summarize(bench_result_t *res) {
  double *tmp = malloc((size_t)res->runs * sizeof(double));
  int i, k;
  if (tmp == NULL) return BENCH_ENOMEM;
  for (i = 0; i < res->nrows; i++) {
    bench_row_t *r = &res->rows[i];
    for (k = 0; k < BENCH_NFIG; k++) {
      bench_stat_t *s = &r->fig[k];
      if (r->had) stats(r->raw + k, res->runs, BENCH_NFIG, tmp, &s->med, &s->lo, &s->hi);
      else s->med = s->lo = s->hi = NAN;
    }
    for (k = 0; k < r->nws; k++) {
      bench_stat_t *a = &r->sweep_random[k], *d = &r->sweep_dependent[k];
      stats(r->raw_sweep + k, res->runs, (size_t)r->nws, tmp, &a->med, &a->lo, &a->hi);
      stats(r->raw_sweep_dep + k, res->runs, (size_t)r->nws, tmp, &d->med, &d->lo, &d->hi);
    }
  }
  free(tmp);
  return 0;
}

int bench_run(const bench_opts_t *o, bench_result_t *res) {
  bench_t b;
  int i, round, err = 0;
  memset(res, 0, sizeof(*res));
  memset(&b, 0, sizeof(b));
  b.size = bench_region_size(o->size);
  b.runs = res->runs = o->runs;
  b.sweep = res->sweep = o->sweep;
  b.file = o->file;
  b.file_size = o->file_size;
  b.large_size = bench_large_size();
  b.stop = o->stop;
  b.stop_arg = o->stop_arg;
  b.tlb.fd = -1;
  plan_rows(o, res, b.size);
  for (i = 0; i < res->nrows; i++)
    if ((err = alloc_row(&res->rows[i], b.runs, b.sweep)) != 0) return err;
  b.tlb_ok = res->tlb_ok = bench_tlb_open(&b.tlb, res->tlb_reason, sizeof(res->tlb_reason)) == 0;
  /* Round -1 warms up (first touches of memory the host had taken back, page cache,
   * code); the order rotates each round so that no row always follows the same one. */
  for (round = -1; round < b.runs && !bench_stopped(&b); round++) {
    for (i = 0; i < res->nrows && !bench_stopped(&b); i++) {
      bench_row_t *r = &res->rows[(i + (round + 1)) % res->nrows];
      if (!r->had) continue;
      switch (r->backing) {
      case BENCH_ANON: run_anon(&b, r, round); break;
      case BENCH_SHARED: run_shared(&b, r, round); break;
      case BENCH_FILE: run_file(&b, r, round); break;
      default: run_section(&b, r, round); break;
      }
    }
  }
  bench_tlb_close(&b.tlb);
  if ((err = summarize(res)) != 0) return err;
  return b.stopped ? BENCH_STOPPED : BENCH_DONE;
}

void bench_result_free(bench_result_t *res) {
  int i;
  for (i = 0; i < res->nrows; i++) {
    bench_row_t *r = &res->rows[i];
    free(r->raw);
    free(r->raw_sweep);
    free(r->raw_sweep_dep);
    free(r->sweep_random);
    free(r->sweep_dependent);
    r->raw = r->raw_sweep = r->raw_sweep_dep = NULL;
    r->sweep_random = r->sweep_dependent = NULL;
  }
}

int bench_baseline(const bench_result_t *res, int i) {
  const bench_row_t *r = &res->rows[i];
  int j, base = -1;
  if (r->backing == BENCH_FILE) return -1;
  for (j = 0; j < res->nrows; j++) {
    const bench_row_t *q = &res->rows[j];
    if (!q->had || j == i) continue;
    if (r->backing == BENCH_SECTION ? q->backing == BENCH_FILE
                                    : (q->backing == r->backing && q->kind == BENCH_4K))
      base = j;
  }
  return base;
}
