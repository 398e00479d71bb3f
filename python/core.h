/* The Python extension's C core, free of Python: a small thread pipeline over windows of a
 * source (map and count in parallel, hash in order, as the tool's bulkmap_uv pipeline does
 * on libuv's pool), the scan and load built on it, and the literal "phase functions" that
 * make counts of a literal exact across window and range edges. Runs without the GIL. */
#ifndef BMPY_CORE_H
#define BMPY_CORE_H

#include <stdint.h>
#include <stddef.h>
#include "bulkmap.h"

/* A literal count over a byte range [a, b) as a function of where the greedy left-to-right
 * search may resume: phase k means "the next match may start at a + k" (the previous match
 * ended there), k in [0, L). Each entry covers phases [lo, hi]: count matches start in
 * [a, b), and the phase handed to the next range is `value` (shift == 0) or k - value
 * (shift == 1). Entries are sorted and cover [0, L) without gaps. */
typedef struct {
  uint64_t lo, hi, count, value;
  int shift;
} bmpy_phase_t;

typedef struct {
  bmpy_phase_t *v;
  size_t n, cap;
} bmpy_phases_t;

void bmpy_phases_free(bmpy_phases_t *f);
/* Evaluates f at phase k: *count, and the next phase. */
void bmpy_phases_eval(const bmpy_phases_t *f, uint64_t k, uint64_t *count, uint64_t *next);

typedef struct {
  /* in */
  uint64_t offset, length; /* the range; length is the exact byte count (checked by caller) */
  uint64_t limit;          /* a literal match starting in the range may end up to here
                              (offset+length for a plain scan; the file's end for a range
                              of a larger scan) */
  int hash, lines;
  const unsigned char *lit; /* NULL: no count */
  size_t litlen;
  int phases;              /* 1: build the range's phase function (for a fold elsewhere) */
  uint64_t window;         /* bytes of new data a window (0: 64 MiB) */
  unsigned threads;        /* 0: the CPU count */
  /* out */
  uint64_t xxh3, line_count, count, bytes, peak_mapped, window_used;
  unsigned threads_used;
  bmpy_phases_t fn;        /* with phases */
  int os_error;
} bmpy_scan_t;

/* Scans src over [offset, offset+length). poll(poll_arg) (may be NULL) is called on the
 * calling thread every 100 ms while the work runs; a non-zero return stops it (BM_EBUSY).
 * Returns 0 or a BM_E* code (BM_ENOMEM, BM_ETRUNCATED when the source shrank, BM_EOS). */
int bmpy_scan(bm_source_t *src, bmpy_scan_t *s, int (*poll)(void *), void *poll_arg);

typedef struct {
  int fd;                  /* the file, open for reading */
  bm_dataset_t *ds;        /* created, watched */
  uint64_t size;
  unsigned threads;
  int os_error;
} bmpy_fill_t;

/* Reads the file into the dataset's section in parallel windows and hashes the section in
 * payload order (bm_dataset_hash_view). Returns 0 or a BM_E* code. */
int bmpy_fill(bmpy_fill_t *l, int (*poll)(void *), void *poll_arg);

/* Monotonic seconds. */
double bmpy_now(void);

#endif
