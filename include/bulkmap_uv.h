/* bulkmap_uv: stream a source's windows through a libuv loop. Windows are mapped, faulted
 * in and handed to a parallel callback on the thread pool (several in flight, so mapping
 * the next window overlaps work on this one), then to an ordered callback, one at a time
 * and strictly in source order (for sequential work such as a hash), then unmapped; the
 * loop thread hears of each window in order. At most `inflight` windows are mapped at once,
 * and never more than `max_mapped` bytes. The windows are planned by the core's window
 * arithmetic (bm_window_plan), so they are the windows a bm_window_t cursor would give.
 *
 * A stream (a pipe, a terminal, standard input) cannot be mapped: bm_uv_pipeline_start_fd
 * reads it, in order, into buffers that go through the same stages, with the same overlap.
 *
 * On the pipeline, bm_uv_scan_start drives the core's scan (hash, lines, literals) over
 * files, streams and many small files at once, from the loop.
 *
 * The core library stays free of libuv; this small library is what the bulkmap tool uses,
 * and any libuv application can use it the same way. */
#ifndef BULKMAP_UV_H
#define BULKMAP_UV_H

#include <uv.h>
#include "bulkmap.h"

#ifndef _WIN32
/* libuv is built with a 64-bit off_t (_FILE_OFFSET_BITS=64) and its uv_fs_t holds one: a
 * user compiled with a 32-bit off_t (the default on 32-bit Linux) hands libuv uv_fs_t
 * structs 4 bytes shorter than libuv writes. Build with -D_FILE_OFFSET_BITS=64. */
#ifdef __cplusplus
static_assert(sizeof(off_t) == 8, "bulkmap_uv: build with -D_FILE_OFFSET_BITS=64 (libuv's uv_fs_t holds a 64-bit off_t)");
#else
_Static_assert(sizeof(off_t) == 8, "bulkmap_uv: build with -D_FILE_OFFSET_BITS=64 (libuv's uv_fs_t holds a 64-bit off_t)");
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define BM_UV_MAX_INFLIGHT 16

typedef struct bm_uv_pipeline_s bm_uv_pipeline_t;

typedef struct bm_uv_window_s {
  /* Valid inside the parallel and ordered callbacks (the bytes are unmapped after). */
  unsigned char *data;     /* first byte of the window, overlap included */
  size_t length;           /* bytes at data */
  size_t overlap;          /* leading bytes repeated from the previous window */
  uint64_t offset;         /* source offset of data[0] */
  uint64_t index;          /* 0, 1, 2, ... in source order */
  int last;                /* 1 for the final window */
  void *user;              /* opts.user_size bytes of scratch for this window, zeroed */
  /* private */
  bm_uv_pipeline_t *pipe;
  bm_view_t view;
  uv_work_t req;
  int status, state;
  /* A callback that fails may set this to the raw OS error behind its failure (errno, or
   * GetLastError() on Windows); it becomes the pipeline's os_error. 0 on entry. */
  int os_error;
  unsigned char *buf;      /* private: a stream's buffer */
  size_t bufsize;
} bm_uv_window_t;

typedef struct bm_uv_pipeline_opts_s {
  uint64_t offset, length; /* the range to walk; length BM_TO_END for the rest */
  uint64_t window;         /* bytes of new data a window (rounded to the granularity) */
  uint64_t overlap;        /* < window */
  unsigned inflight;       /* windows mapped at once, 1..BM_UV_MAX_INFLIGHT (0: 4); fewer
                              when max_mapped cannot hold that many, or when they
                              would map more than a quarter of the address space
                              (1 GiB in a 32-bit process) */
  uint64_t max_mapped;     /* bound on bytes mapped (or buffered) at once, 0: none; the
                              window shrinks to honour it (BM_EINVAL below a granule) */
  unsigned access;         /* BM_ACCESS_READ (0) or BM_ACCESS_WRITE */
  int prefault;            /* fault each window in before the parallel callback */
  size_t user_size;        /* scratch bytes a window */
  /* Thread pool, any order, concurrently. Return 0 or a BM_E* code (stops the walk; set
   * w->os_error to pass the OS error behind it). */
  int (*parallel)(bm_uv_window_t *w, void *data);
  /* Thread pool, one at a time, in source order, after parallel. */
  int (*ordered)(bm_uv_window_t *w, void *data);
  /* Loop thread, in source order, after the window was unmapped (data is NULL). */
  void (*merged)(bm_uv_window_t *w, void *data);
  /* Loop thread, once, when every job has finished: 0, the first error, or the status
   * given to bm_uv_pipeline_cancel. */
  void (*done)(bm_uv_pipeline_t *p, int status, void *data);
  void *data;
} bm_uv_pipeline_opts_t;

struct bm_uv_pipeline_s {
  /* read-only for callers */
  uint64_t bytes_done;     /* new bytes through the ordered stage */
  uint64_t total;          /* bytes in the range (a stream: 0 until it has ended) */
  uint64_t window;         /* window size used */
  uint64_t peak_mapped;    /* the most bytes mapped at once (final once done is called) */
  int os_error;            /* the raw OS error behind a failed status (0 when none): the
                              failure happened on a pool thread, not the caller's */
  /* private */
  uv_loop_t *loop;
  bm_source_t *src;
  bm_uv_pipeline_opts_t o;
  bm_window_plan_t plan;
  uint64_t start, end, nwin, next_map, next_ordered;
  uv_file fd;              /* a stream, or -1 */
  uint64_t read_pos;       /* stream: bytes consumed from fd (the skipped offset included) */
  int reading, eof;
  unsigned char *tail;     /* stream: the last `overlap` bytes read */
  size_t tail_len;
  int wake[2];             /* stream (POSIX): a pipe that wakes a read blocked on fd */
  unsigned active;         /* jobs queued or running */
  int ordering;            /* an ordered job is queued or running */
  int status, finished;
  void *mapped;            /* atomic counters, allocated with the slots */
  bm_uv_window_t *slots;
  unsigned char *scratch;
};

/* Releases a failing callback's OS error: `return bm_uv_window_fail(w, BM_EIO, errno);` */
static inline int bm_uv_window_fail(bm_uv_window_t *w, int err, int os_error) {
  w->os_error = os_error;
  return err;
}

/* Starts walking src on loop. The source, the pipeline and opts->data must outlive the
 * walk (until done is called; the pipeline holds no memory after that). Errors (nothing started): BM_EINVAL (no done callback,
 * overlap >= window, inflight out of range), BM_ERANGE, BM_EOVERFLOW, BM_ENOMEM. */
int bm_uv_pipeline_start(bm_uv_pipeline_t *p, uv_loop_t *loop, bm_source_t *src,
                         const bm_uv_pipeline_opts_t *opts);
/* The same over a stream: fd is read from where it stands, one read at a time and in order,
 * into buffers of overlap + window bytes (window as given, not rounded; 0: 64 MiB), that go
 * through the same callbacks (access must be read). opts->offset bytes are read and
 * skipped; opts->length bytes (BM_TO_END: to the end of the stream) are walked: a stream
 * that ends first gives BM_ERANGE. fd stays open and the caller's; a cancel wakes a read
 * blocked on it (POSIX). Errors as bm_uv_pipeline_start, and BM_EOS when the wake-up pipe
 * cannot be made. */
int bm_uv_pipeline_start_fd(bm_uv_pipeline_t *p, uv_loop_t *loop, uv_file fd,
                            const bm_uv_pipeline_opts_t *opts);
/* Stops scheduling new windows; done(status) follows once the jobs in flight have
 * finished. status should be negative (e.g. BM_EBUSY or an application code). */
void bm_uv_pipeline_cancel(bm_uv_pipeline_t *p, int status);
/* The most bytes that were mapped at any one time. */
uint64_t bm_uv_pipeline_peak_mapped(const bm_uv_pipeline_t *p);

/* ---------------------------------------------------------------------------------------
 * The scan on a libuv loop: the core's scan stages (bm_scan_begin, bm_scan_work_run,
 * bm_scan_merge, bm_scan_finish) driven through the pipeline above, windows counted on the
 * loop's thread pool and merged in order, for one item or many, each with its own result.
 * An item is a file (mapped, so larger than the address space is fine), a FIFO or a pipe
 * (/dev/fd/N), "-" (standard input) or a descriptor: the last three are read as streams.
 * A small regular file (256 KiB or less) is read whole and scanned on one thread: for many
 * small files the hops to the pool and the mapping cost more than the work. With several
 * items the small ones are scanned first, many at once on the pool; then the others, one
 * after another, in order. Results reach the loop thread in item order. */
typedef struct bm_uv_scan_s bm_uv_scan_t;

/* The step an item failed at (bm_uv_scan_item_t.failed_at). */
enum {
  BM_UV_SCAN_AT_FILE = 1,  /* opening or sizing it: the error is the file's */
  BM_UV_SCAN_AT_RANGE = 2, /* BM_ERANGE: the range runs past its end (a file: size says
                              where; a stream ended after result.bytes scanned bytes) */
  BM_UV_SCAN_AT_BEGIN = 3, /* the scan's state could not be made (bm_scan_begin) */
  BM_UV_SCAN_AT_WALK = 4   /* the walk: mapping or reading, counting, finishing */
};

typedef struct bm_uv_scan_item_s {
  /* in */
  const char *path;         /* a file, a FIFO, a pipe, or "-" (standard input); NULL: fd */
  uv_file fd;               /* with path NULL: read as a stream from where it stands (it
                               stays open and the caller's) */
  /* out: zeroed at start; final when item_done is called for it */
  int status;               /* 0, a BM_E* code, or a cancel's status (an item that was
                               not finished when the scan was cancelled) */
  int os_error;             /* the raw OS error behind a failure, or 0 */
  int failed_at;            /* on failure: BM_UV_SCAN_AT_* */
  int stream;               /* 1: it was read as a stream */
  uint64_t size;            /* a file's size when opened (after a BM_ETRUNCATED walk: its
                               size then); a stream: 0 */
  double seconds;           /* the item's scan, from opening it to its result */
  bm_scan_result_t result;  /* offset and length (the range; a stream's length: the bytes
                               it held), bytes (also those scanned before a failure),
                               xxh3, lines, counts, window (the window a file would be
                               given, also for a small one), peak_mapped (0: read whole) */
} bm_uv_scan_item_t;

typedef struct bm_uv_scan_opts_s {
  /* What to compute and the range of each item, as bm_scan takes them (checked by
   * bm_scan_check; the literals must outlive the scan). window 0: 64 MiB for a file, 8 MiB
   * for a stream (its buffers are allocated, not views of the page cache). threads: the
   * windows worked on at once (0: UV_THREADPOOL_SIZE, or libuv's default of 4). max_mapped
   * 0: a quarter of the address-space limit when there is one. progress, progress_arg and
   * cancel are not used: see progress below and bm_uv_scan_cancel. */
  bm_scan_opts_t scan;
  /* Loop thread, when an item's walk begins (done 0) and after each of its windows: the
   * bytes scanned of item `item` and its total (a stream: 0). May be NULL. */
  void (*progress)(bm_uv_scan_t *s, size_t item, uint64_t done, uint64_t total, void *data);
  /* Loop thread, in item order, once an item's result is final. May be NULL. */
  void (*item_done)(bm_uv_scan_t *s, size_t item, void *data);
  /* Loop thread, once, when the scan has ended and holds nothing more (s may be freed):
   * 0 (every item has its own status), or the status given to bm_uv_scan_cancel. */
  void (*done)(bm_uv_scan_t *s, int status, void *data);
  void *data;
} bm_uv_scan_opts_t;

/* The defaults: scan as bm_scan_opts_init, no callbacks (done must be set). */
void bm_uv_scan_opts_init(bm_uv_scan_opts_t *opts);

struct bm_uv_scan_s {
  /* private */
  void *state;
};

/* Starts scanning items[0, n) on loop; nothing is called back before the loop runs. s,
 * items, opts->data and opts->scan.literals must outlive the scan (until done is called).
 * Errors (nothing started): BM_EINVAL (n 0, no done callback, an item with neither path
 * nor fd), as bm_scan_check, BM_ENOMEM, BM_EOS (a loop handle could not be made). */
int bm_uv_scan_start(bm_uv_scan_t *s, uv_loop_t *loop, bm_uv_scan_item_t *items, size_t n,
                     const bm_uv_scan_opts_t *opts);
/* Loop thread: stops the scan; done(status) follows once the work in flight has ended
 * (a read waiting on a stream is woken). Items not yet reported get no item_done call.
 * status should be negative (0: BM_ECANCELED). */
void bm_uv_scan_cancel(bm_uv_scan_t *s, int status);

#ifdef __cplusplus
}
#endif
#endif
