/* bulkmap_bench: page kinds side by side (docs/design.md section 3, `bulkmap bench`). A row is a
 * region of one page kind on one backing: anonymous private memory (a program's heap), a
 * shared section, a file mapped from the page cache, or the same bytes in a large-page
 * section. bench_run measures every row in interleaved rounds after one unrecorded warm-up
 * round and hands back, for each figure, the median with min and max. It never prints and
 * never touches signals: the caller prints the result and says when to stop (opts.stop). */
#ifndef BULKMAP_BENCH_H
#define BULKMAP_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "bench_os.h" /* BENCH_4K, BENCH_THP, BENCH_LARGE */

enum { BENCH_ANON, BENCH_SHARED, BENCH_FILE, BENCH_SECTION, BENCH_NBACKINGS };
/* The figures of a row, in output order (bench_fig_key); min and max hold the same keys. */
enum {
  BENCH_F_HUGE,      /* share of the region mapped by huge entries, 0..1 */
  BENCH_F_POPULATE,  /* seconds to map and fault it in */
  BENCH_F_SEQ,       /* sequential read, bytes a second */
  BENCH_F_RANDOM,    /* independent random 8-byte reads, ns a read */
  BENCH_F_DEPENDENT, /* dependent loads, ns a load */
  BENCH_F_DTLB,      /* data-TLB misses a random read */
  BENCH_F_LOAD,      /* seconds to fill a section from the file (section rows only) */
  BENCH_NFIG
};
#define BENCH_SWEEP_MIN ((uint64_t)64 << 10) /* the sweep's smallest working set */
#define BENCH_MAX_RUNS 1000
#define BENCH_MAX_ROWS (2 * BENCH_NKINDS + 1)

extern const char *const bench_kind_name[BENCH_NKINDS];       /* "4k" "thp" "large" */
extern const char *const bench_backing_name[BENCH_NBACKINGS]; /* "anonymous" ... "section" */
extern const char *const bench_fig_key[BENCH_NFIG];           /* the JSON keys */
extern const int bench_fig_decimals[BENCH_NFIG];              /* digits worth printing */

/* A summary of the rounds: NaN in all three where nothing was measured. */
typedef struct bench_stat_s {
  double med, lo, hi;
} bench_stat_t;

typedef struct bench_row_s {
  int kind, backing;
  int had;            /* 0: not had, reason says why */
  char reason[320];
  size_t page_size;   /* what the kernel gave */
  uint64_t size;
  bench_stat_t fig[BENCH_NFIG];
  int nws;            /* sweep points: working set BENCH_SWEEP_MIN << i, i < nws */
  bench_stat_t *sweep_random, *sweep_dependent; /* nws each */
  /* private: the rounds */
  double *raw, *raw_sweep, *raw_sweep_dep;
} bench_row_t;

typedef struct bench_opts_s {
  uint64_t size;      /* bytes of each region (bench_region_size rounds it) */
  int runs;           /* recorded rounds, 1..BENCH_MAX_RUNS */
  int sweep;          /* also latency against working set */
  int shared;         /* shared sections instead of anonymous memory */
  int kinds[BENCH_NKINDS], nkinds;
  const char *file;   /* NULL, or a file (of file_size > 0 bytes) for the file rows */
  uint64_t file_size;
  /* Asked between measurements; nonzero stops the run (bench_run returns BENCH_STOPPED).
   * NULL: never. */
  int (*stop)(void *arg);
  void *stop_arg;
} bench_opts_t;

typedef struct bench_result_s {
  int runs, sweep;
  int nrows;
  bench_row_t rows[BENCH_MAX_ROWS];
  int tlb_ok;         /* 0: no dTLB figures, tlb_reason says why */
  char tlb_reason[256];
} bench_result_t;

enum { BENCH_DONE = 0, BENCH_STOPPED = 1, BENCH_ENOMEM = -1 };

/* The kind named by the first len bytes of name ("4k", "thp", "large"), or -1. */
int bench_kind_parse(const char *name, size_t len);
/* size rounded up to whole huge pages (transparent and hugetlb), so that every kind gets
 * the same bytes. */
uint64_t bench_region_size(uint64_t size);
/* Runs the rows o asks for into *res (zeroed here). Returns BENCH_DONE, BENCH_STOPPED
 * (o->stop said so; *res holds what was measured) or BENCH_ENOMEM. A kind that cannot be
 * had is a row with had 0 and its reason, not an error. Free *res with bench_result_free
 * in every case. */
int bench_run(const bench_opts_t *o, bench_result_t *res);
void bench_result_free(bench_result_t *res);
/* The row a ratio line compares row i with: 4 KiB pages on the same backing, or for a
 * section the file; -1 when there is none (or the row is a file's). */
int bench_baseline(const bench_result_t *res, int i);

#endif
