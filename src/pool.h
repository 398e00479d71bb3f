/* The core's window scheduler: windows of a plan mapped, (prefaulted,) given to a parallel
 * stage on any of a few worker threads, then to an ordered stage one at a time in window
 * order, then unmapped; at most `inflight` windows mapped at once. The calling thread
 * waits, reporting progress and watching for a cancel. The scan and the load run on it;
 * bulkmap_uv drives the same stages through libuv instead.
 * Two other kinds of window go the same way: a stream's (`read` set), read into the
 * slot's buffer one at a time in order instead of mapped, the plan ending with the window
 * the reader marks final; and jobs (no src, no read): window k is job k, only counted. */
#ifndef BULKMAP_POOL_H
#define BULKMAP_POOL_H

#include "internal.h"

typedef struct bm__pool_win_s {
  bm_view_t view;          /* the window's mapping (a mapped window) */
  const unsigned char *data; /* the window's bytes: view.data, or buf (a stream's) */
  unsigned char *buf;      /* a stream: the slot's buffer of `bufsize` bytes (the pool's) */
  uint64_t index;          /* 0, 1, ... in order */
  uint64_t offset;         /* source offset of view.data[0] */
  size_t length;           /* bytes of the window, overlap included */
  size_t overlap;          /* leading bytes repeated from the previous window */
  size_t avail;            /* bytes mapped from view.data (> length only for the final
                              window, given `tail` bytes more) */
  int final;
  void *user;              /* the caller's scratch for this slot */
  int os_error;            /* a stage that fails may set the OS error behind it */
} bm__pool_win_t;

typedef struct bm__pool_s {
  /* in */
  bm_source_t *src;
  unsigned access;         /* BM_ACCESS_READ or _WRITE */
  int prefault;            /* fault each window in before the parallel stage */
  bm_window_plan_t plan;   /* the windows (bm_window_plan with `inflight` windows) */
  uint64_t tail;           /* bytes past the range's end mapped with the final window,
                              as far as the source goes */
  unsigned threads;        /* workers, >= 1 */
  unsigned inflight;       /* slots, >= 1 */
  void **user;             /* user[i]: slot i's scratch (may be NULL) */
  int (*parallel)(void *ctx, bm__pool_win_t *w); /* may be NULL */
  int (*ordered)(void *ctx, bm__pool_win_t *w);  /* may be NULL */
  void *ctx;
  /* A stream: fills w from the stream in place of mapping (data in w->buf; length,
   * overlap, avail, offset, final), one call at a time, in window order; the window it
   * marks final is the plan's last (plan.count is then set; UINT64_MAX before). A read
   * that waits looks at bm__pool_stopped now and then. */
  int (*read)(void *ctx, bm__pool_win_t *w);
  size_t bufsize;          /* a stream: each slot's buffer */
  uint64_t total;          /* a stream or jobs: progress's total (0: not known) */
  int (*progress)(uint64_t done, uint64_t total, void *arg);
  void *progress_arg;
  const volatile sig_atomic_t *cancel;
  void *run;               /* private: the run under way */
  /* out */
  uint64_t done;           /* new bytes through the ordered stage (jobs: length minus
                              overlap, as the parallel stage set them) */
  uint64_t peak_mapped;
  int os_error;
  unsigned threads_used;
} bm__pool_t;

/* Runs every window of p->plan; 0, the first stage error, BM_ECANCELED, BM_ETRUNCATED
 * (the source shrank), or BM_EAGAIN/BM_ENOMEM when no worker could be started. */
int bm__pool_run(bm__pool_t *p);
/* 1 when *cancel is set (cancel may be NULL). */
int bm__pool_cancelled(const bm__pool_t *p);
/* 1 when the run should stop: *cancel set, or the run failed or was canceled meanwhile
 * (from a stage: takes the run's lock). */
int bm__pool_stopped(bm__pool_t *p);

#endif
