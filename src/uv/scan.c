/* bulkmap_uv: the scan driven from a libuv loop. The core's scan stages run on the window
 * pipeline (counted on any pool thread into a work from a small pool, merged in order);
 * the loop thread opens each item, walks it, finishes it and reports it, one after another.
 * Small regular files are read whole and scanned on one thread, many at once on the pool
 * when there are several items. One trampoline (scan_drive) moves from item to item, so
 * that items that end at once (a missing file) do not nest calls. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "bulkmap_uv.h"

#define SCAN_FILE_WINDOW (64u << 20)
/* A stream is read into buffers: the default window is smaller there (they are
 * allocated, not mapped views of the page cache). */
#define SCAN_STREAM_WINDOW (8u << 20)

/* ---------------------------------------------------------------------------------------
 * The library's scan stages on the pipeline: a window is counted on any pool thread into
 * a work taken from a small pool (at most `inflight` windows are between the two stages),
 * and merged in order. */
typedef struct {
  bm_scan_t *scan;
  bm_scan_work_t *works[BM_UV_MAX_INFLIGHT + 1];
  atomic_int busy[BM_UV_MAX_INFLIGHT + 1];
} scan_stages_t;

static bm_scan_chunk_t scan_chunk(const bm_uv_window_t *w) {
  bm_scan_chunk_t c;
  c.data = w->data;
  c.length = w->length;
  c.overlap = w->overlap;
  c.avail = w->length;
  c.offset = w->offset;
  c.final = w->last;
  return c;
}

static int scan_window_parallel(bm_uv_window_t *w, void *data);
static int scan_window_ordered(bm_uv_window_t *w, void *data);
static int scan_hash_only(bm_uv_window_t *w, void *data);

static void stages_free(scan_stages_t *g) {
  int i;
  for (i = 0; i <= BM_UV_MAX_INFLIGHT; i++) {
    bm_scan_work_free(g->works[i]);
    g->works[i] = NULL;
  }
  bm_scan_free(g->scan);
  g->scan = NULL;
}

static int stages_new(scan_stages_t *g, const bm_scan_opts_t *o) {
  int i, err;
  memset(g, 0, sizeof(*g));
  if ((err = bm_scan_begin(&g->scan, o)) != 0) return err;
  for (i = 0; i <= BM_UV_MAX_INFLIGHT; i++) {
    atomic_init(&g->busy[i], 0);
    if ((err = bm_scan_work_new(g->scan, &g->works[i])) != 0) {
      stages_free(g);
      return err;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * The scan's state, behind bm_uv_scan_t.state. */
enum { SMALL_UNTRIED = 0, SMALL_DONE, SMALL_NOT };

typedef struct scan_state_s scan_state_t;

typedef struct {
  uv_work_t req;
  size_t k;
  scan_state_t *st;
} scan_job_t;

struct scan_state_s {
  bm_uv_scan_t *s;
  uv_loop_t *loop;
  bm_uv_scan_item_t *items;
  size_t n;
  bm_uv_scan_opts_t o;
  unsigned threads;
  unsigned char *small;     /* SMALL_* an item */
  uv_file *fifo;            /* a FIFO the small path opened, kept open for its walk */
  uv_idle_t idle;           /* the first turn of the loop: nothing is called back before */
  int idle_pending;
  /* The small files of several items, SCAN_BATCH a job on the pool. */
  scan_job_t *jobs;
  size_t njobs, next_job, active_jobs, job_window;
  int jobs_full;            /* a job could not be queued: the loop thread does the rest */
  atomic_int stop;          /* a cancel: jobs not yet run do nothing */
  /* The items one after another. */
  size_t next;              /* the next item to report */
  int walking, driving, again, status, finishing;
  bm_uv_pipeline_t pipe;
  scan_stages_t stages;
  bm_source_t *src;
  uv_file own_fd;           /* a FIFO's descriptor, closed after its walk */
  uint64_t t0;
};

static void scan_drive(scan_state_t *st);

static double scan_seconds(uint64_t t0) { return (double)(uv_hrtime() - t0) / 1e9; }

static int scan_window_parallel(bm_uv_window_t *w, void *data) {
  scan_stages_t *g = &((scan_state_t *)data)->stages;
  bm_scan_chunk_t c = scan_chunk(w);
  int i;
  for (i = 0; i < BM_UV_MAX_INFLIGHT; i++) {
    int expect = 0;
    if (atomic_compare_exchange_strong(&g->busy[i], &expect, 1)) break;
  }
  *(int *)w->user = i;
  return bm_scan_work_run(g->scan, g->works[i], &c);
}

static int scan_window_ordered(bm_uv_window_t *w, void *data) {
  scan_stages_t *g = &((scan_state_t *)data)->stages;
  bm_scan_chunk_t c = scan_chunk(w);
  int i = *(int *)w->user, err;
  err = bm_scan_merge(g->scan, g->works[i], &c);
  if (i < BM_UV_MAX_INFLIGHT) atomic_store(&g->busy[i], 0);
  return err;
}

/* Without a parallel stage (the hash alone) the spare work, empty, is merged. */
static int scan_hash_only(bm_uv_window_t *w, void *data) {
  scan_stages_t *g = &((scan_state_t *)data)->stages;
  bm_scan_chunk_t c = scan_chunk(w);
  return bm_scan_merge(g->scan, g->works[BM_UV_MAX_INFLIGHT], &c);
}

static void scan_close_fd(uv_file fd) {
  uv_fs_t req;
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
}

/* ---------------------------------------------------------------------------------------
 * A small regular file is read into one buffer and scanned there (bm_scan_buffer): for
 * many small files the hops to the thread pool and back, and mapping, cost more than the
 * work (10,000 files of 4 KiB: see perf/RESULTS.md). Returns 1 when done, 0 when the file
 * is not one for this path (the walk then takes it, and reports whatever is wrong with
 * it). Any thread. */
#define SCAN_SMALL (256u << 10)

static int scan_small(const char *file, const bm_uv_scan_opts_t *so, bm_uv_scan_item_t *it,
                      uv_file *fifo) {
  const bm_scan_opts_t *base = &so->scan;
  unsigned char *buf = NULL;
  uv_fs_t req;
  uv_file fd;
  uv_buf_t b;
  uint64_t size, length, t0 = uv_hrtime();
  ssize_t n;
  int done = 0;

  *fifo = -1;
  /* O_NONBLOCK: a FIFO opens at once, writer or not (and is then read through poll). */
  fd = uv_fs_open(NULL, &req, file, UV_FS_O_RDONLY | UV_FS_O_NONBLOCK, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return 0;
  if (uv_fs_fstat(NULL, &req, fd, NULL) != 0) {
    uv_fs_req_cleanup(&req);
    goto out;
  }
#ifdef S_IFIFO
  if ((req.statbuf.st_mode & S_IFMT) == S_IFIFO) {
    /* Kept open: closing a FIFO its writer has just opened would end that writer (EPIPE). */
    uv_fs_req_cleanup(&req);
    *fifo = fd;
    return 0;
  }
#endif
  if ((req.statbuf.st_mode & S_IFMT) != S_IFREG || req.statbuf.st_size == 0 ||
      req.statbuf.st_size > SCAN_SMALL) {
    /* Empty files too: procfs and sysfs files claim to be, and the pipeline refuses them. */
    uv_fs_req_cleanup(&req);
    goto out;
  }
  size = req.statbuf.st_size;
  uv_fs_req_cleanup(&req);
  if (base->offset > size || (base->length != BM_TO_END && base->offset + base->length > size))
    goto out;
  length = base->length != BM_TO_END ? base->length : size - base->offset;
  if ((buf = malloc((size_t)size + 1)) == NULL) goto out;
  /* One byte more than the size, to see a file that grew; a short read, one that shrank:
   * both are left to the walk. */
  b = uv_buf_init((char *)buf, (unsigned)size + 1);
  do n = uv_fs_read(NULL, &req, fd, &b, 1, 0, NULL);
  while (n == UV_EINTR);
  uv_fs_req_cleanup(&req);
  if (n < 0 || (uint64_t)n != size) goto out;

  {
    bm_scan_opts_t o = *base;
    bm_scan_result_t r;
    o.length = length;
    if (bm_scan_buffer(buf, (size_t)size, &o, &r) != 0) goto out;
    it->result = r;
    it->result.offset = base->offset;
    it->result.length = it->result.bytes = length;
    it->result.window = base->window ? base->window : SCAN_FILE_WINDOW;
    it->result.peak_mapped = 0; /* nothing mapped: read */
    it->size = size;
  }
  it->seconds = scan_seconds(t0);
  done = 1;
out:
  free(buf);
  scan_close_fd(fd);
  return done;
}

/* ---------------------------------------------------------------------------------------
 * Several items: the small ones first, SCAN_BATCH files a job (a hop to the pool and back
 * costs more than a small file's scan), a few jobs queued at a time so that a cancel stops
 * the rest at once. */
#define SCAN_BATCH 64

static void scan_jobs_fill(scan_state_t *st);

static void scan_job_work(uv_work_t *req) {
  scan_job_t *j = req->data;
  scan_state_t *st = j->st;
  size_t i;
  if (atomic_load(&st->stop)) return;
  for (i = j->k * SCAN_BATCH; i < (j->k + 1) * SCAN_BATCH && i < st->n; i++) {
    const char *path = st->items[i].path;
    if (path == NULL || strcmp(path, "-") == 0) {
      st->small[i] = SMALL_NOT;
      continue;
    }
    st->small[i] = scan_small(path, &st->o, &st->items[i], &st->fifo[i]) ? SMALL_DONE : SMALL_NOT;
  }
}

static void scan_job_after(uv_work_t *req, int status) {
  scan_state_t *st = ((scan_job_t *)req->data)->st;
  (void)status;
  st->active_jobs--;
  scan_jobs_fill(st);
  if (st->active_jobs == 0) scan_drive(st);
}

static void scan_jobs_fill(scan_state_t *st) {
  while (!atomic_load(&st->stop) && !st->jobs_full && st->next_job < st->njobs &&
         st->active_jobs < st->job_window) {
    scan_job_t *j = &st->jobs[st->next_job]; /* jobs end in any order: one each */
    j->k = st->next_job;
    j->st = st;
    j->req.data = j;
    if (uv_queue_work(st->loop, &j->req, scan_job_work, scan_job_after) != 0) {
      st->jobs_full = 1; /* the loop thread does what is left itself */
      return;
    }
    st->next_job++;
    st->active_jobs++;
  }
}

/* ---------------------------------------------------------------------------------------
 * One item's walk on the pipeline. */
static void scan_walk_merged(bm_uv_window_t *w, void *data) {
  scan_state_t *st = data;
  (void)w;
  if (st->o.progress != NULL)
    st->o.progress(st->s, st->next, st->pipe.bytes_done, st->pipe.total, st->o.data);
}

static void scan_walk_cleanup(scan_state_t *st) {
  stages_free(&st->stages);
  if (st->own_fd >= 0) scan_close_fd(st->own_fd);
  st->own_fd = -1;
  bm_source_close(st->src);
  st->src = NULL;
}

static void scan_report(scan_state_t *st) {
  size_t i = st->next++;
  if (st->o.item_done != NULL) st->o.item_done(st->s, i, st->o.data);
}

static void scan_walk_done(bm_uv_pipeline_t *p, int status, void *data) {
  scan_state_t *st = data;
  bm_uv_scan_item_t *it = &st->items[st->next];
  bm_scan_result_t r;
  int err;

  st->walking = 0;
  it->seconds = scan_seconds(st->t0);
  it->result.bytes = p->bytes_done;
  if (status != 0) {
    it->status = status;
    it->os_error = p->os_error;
    it->failed_at = status == BM_ERANGE && it->stream ? BM_UV_SCAN_AT_RANGE : BM_UV_SCAN_AT_WALK;
    if (status == BM_ETRUNCATED && !it->stream) bm_source_size(st->src, &it->size);
  } else if ((err = bm_scan_finish(st->stages.scan, &r)) != 0) {
    it->status = err;
    it->os_error = bm_last_os_error();
    it->failed_at = BM_UV_SCAN_AT_WALK;
  } else {
    uint64_t offset = it->result.offset;
    it->result = r;
    it->result.offset = offset;
    it->result.length = it->stream ? p->bytes_done : it->result.length;
    it->result.bytes = p->bytes_done;
    it->result.window = p->window;
    it->result.threads = st->threads;
    it->result.peak_mapped = p->peak_mapped;
  }
  scan_walk_cleanup(st);
  if (st->status == 0) scan_report(st);
  scan_drive(st);
}

/* Opens item i and starts its walk. Returns 1 when the walk runs (its end comes through
 * scan_walk_done), 0 when the item is done (failed) already. */
static int scan_walk_start(scan_state_t *st, size_t i, uv_file fifo) {
  bm_uv_scan_item_t *it = &st->items[i];
  const bm_scan_opts_t *base = &st->o.scan;
  bm_uv_pipeline_opts_t po;
  bm_scan_opts_t o;
  uint64_t length = base->length;
  uv_file fd = fifo;
  int err;

  st->own_fd = -1;
  if (fd >= 0) {
    it->stream = 1; /* a FIFO, or a pipe as /dev/fd/N */
    st->own_fd = fd;
  } else if (it->path == NULL) {
    it->stream = 1;
    fd = it->fd;
  } else if (strcmp(it->path, "-") == 0) {
    /* libuv reads the descriptor's handle itself: no text-mode translation on Windows. */
    it->stream = 1;
    fd = 0;
  } else if ((err = bm_file_open(&st->src, it->path, BM_FILE_READ)) != 0 ||
             (err = bm_source_size(st->src, &it->size)) != 0) {
    it->status = err;
    it->os_error = bm_last_os_error();
    it->failed_at = BM_UV_SCAN_AT_FILE;
    goto fail;
  }
  if (!it->stream) {
    if (base->offset > it->size || (length != BM_TO_END && base->offset + length > it->size)) {
      it->status = BM_ERANGE;
      it->failed_at = BM_UV_SCAN_AT_RANGE;
      goto fail;
    }
    if (length == BM_TO_END) length = it->size - base->offset;
  }
  it->result.offset = base->offset;
  it->result.length = length == BM_TO_END ? 0 : length;
  o = *base;
  o.length = length;
  if ((err = stages_new(&st->stages, &o)) != 0) {
    it->status = err;
    it->os_error = bm_last_os_error();
    it->failed_at = BM_UV_SCAN_AT_BEGIN;
    goto fail;
  }

  memset(&po, 0, sizeof(po));
  po.offset = base->offset;
  po.length = length;
  po.window = base->window ? base->window : it->stream ? SCAN_STREAM_WINDOW : SCAN_FILE_WINDOW;
  po.overlap = bm_scan_overlap(st->stages.scan);
  /* One window a thread being worked on, one being mapped ahead, one in the ordered stage. */
  po.inflight = st->threads + 2 > BM_UV_MAX_INFLIGHT ? BM_UV_MAX_INFLIGHT : st->threads + 2;
  po.prefault = 1;
  /* Under an address-space limit (ulimit -v) the windows in flight keep to a quarter of
   * it, leaving the rest to the threads' stacks, the heap and the program. */
  po.max_mapped = base->max_mapped ? base->max_mapped : bm_address_space_limit() / 4;
  po.user_size = sizeof(int);
  po.parallel = (o.flags & BM_SCAN_LINES) || o.n_literals ? scan_window_parallel : NULL;
  po.ordered = po.parallel ? scan_window_ordered : scan_hash_only;
  po.merged = scan_walk_merged;
  po.done = scan_walk_done;
  po.data = st;
  st->walking = 1;
  err = it->stream ? bm_uv_pipeline_start_fd(&st->pipe, st->loop, fd, &po)
                   : bm_uv_pipeline_start(&st->pipe, st->loop, st->src, &po);
  if (err != 0) {
    st->walking = 0;
    it->status = err;
    it->os_error = 0;
    it->failed_at = BM_UV_SCAN_AT_WALK;
    goto fail;
  }
  /* (done may have come already: nothing could be queued) */
  if (st->walking && st->o.progress != NULL)
    st->o.progress(st->s, i, 0, st->pipe.total, st->o.data);
  return 1;
fail:
  it->seconds = scan_seconds(st->t0);
  scan_walk_cleanup(st);
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * The driver: items in order, each reported before the next one begins. */
static void scan_closed(uv_handle_t *h) {
  scan_state_t *st = h->data;
  bm_uv_scan_t *s = st->s;
  void (*done)(bm_uv_scan_t *, int, void *) = st->o.done;
  void *data = st->o.data;
  int status = st->status;
  free(st);
  s->state = NULL;
  done(s, status, data);
}

static void scan_finish(scan_state_t *st) {
  size_t i;
  st->finishing = 1;
  for (i = st->next; i < st->n; i++) {
    if (st->fifo[i] >= 0) scan_close_fd(st->fifo[i]);
    if (st->status != 0 && st->items[i].status == 0) st->items[i].status = st->status;
  }
  free(st->small);
  free(st->fifo);
  free(st->jobs);
  st->small = NULL;
  st->fifo = NULL;
  st->jobs = NULL;
  uv_close((uv_handle_t *)&st->idle, scan_closed);
}

static void scan_step(scan_state_t *st) {
  while (!st->walking && st->status == 0 && st->next < st->n) {
    size_t i = st->next;
    bm_uv_scan_item_t *it = &st->items[i];
    uv_file fifo = st->fifo[i];
    st->fifo[i] = -1; /* the walk's now */
    st->t0 = uv_hrtime();
    if (st->small[i] == SMALL_DONE) {
      scan_report(st);
      continue;
    }
    if (st->small[i] == SMALL_UNTRIED && it->path != NULL && strcmp(it->path, "-") != 0 &&
        scan_small(it->path, &st->o, it, &fifo)) {
      scan_report(st);
      continue;
    }
    if (scan_walk_start(st, i, fifo)) return; /* its end drives the next */
    scan_report(st);
  }
  if (!st->walking && !st->finishing && (st->status != 0 || st->next == st->n)) scan_finish(st);
}

static void scan_drive(scan_state_t *st) {
  if (st->idle_pending || st->active_jobs > 0 || st->finishing) return;
  if (st->driving) {
    st->again = 1;
    return;
  }
  st->driving = 1;
  do {
    st->again = 0;
    scan_step(st);
  } while (st->again && !st->finishing);
  st->driving = 0;
}

static void scan_on_idle(uv_idle_t *h) {
  scan_state_t *st = h->data;
  uv_idle_stop(h);
  st->idle_pending = 0;
  scan_drive(st);
}

int bm_uv_scan_start(bm_uv_scan_t *s, uv_loop_t *loop, bm_uv_scan_item_t *items, size_t n,
                     const bm_uv_scan_opts_t *opts) {
  scan_state_t *st;
  const char *env;
  size_t i;
  int err;

  if (s == NULL || loop == NULL || items == NULL || n == 0 || opts == NULL || opts->done == NULL)
    return BM_EINVAL;
  for (i = 0; i < n; i++)
    if (items[i].path == NULL && items[i].fd < 0) return BM_EINVAL;
  if ((err = bm_scan_check(&opts->scan)) != 0) return err;
  if ((st = calloc(1, sizeof(*st))) == NULL) return BM_ENOMEM;
  st->small = calloc(n, 1);
  st->fifo = malloc(n * sizeof(*st->fifo));
  if (st->small == NULL || st->fifo == NULL) goto nomem;
  st->s = s;
  st->loop = loop;
  st->items = items;
  st->n = n;
  st->o = *opts;
  st->o.scan.progress = NULL;
  st->o.scan.progress_arg = NULL;
  st->o.scan.cancel = NULL;
  st->own_fd = -1;
  env = getenv("UV_THREADPOOL_SIZE");
  st->threads = opts->scan.threads ? opts->scan.threads
                : env != NULL && atoi(env) > 0 ? (unsigned)atoi(env) : 4;
  for (i = 0; i < n; i++) {
    bm_uv_scan_item_t *it = &items[i];
    it->status = it->os_error = it->failed_at = it->stream = 0;
    it->size = 0;
    it->seconds = 0;
    memset(&it->result, 0, sizeof(it->result));
    st->fifo[i] = -1;
  }
  atomic_init(&st->stop, 0);
  if (n > 1) {
    st->njobs = (n + SCAN_BATCH - 1) / SCAN_BATCH;
    st->job_window = 4 * (size_t)st->threads;
    if ((st->jobs = calloc(st->njobs, sizeof(*st->jobs))) == NULL) goto nomem;
  }
  if (uv_idle_init(loop, &st->idle) != 0) {
    err = BM_EOS;
    goto fail;
  }
  st->idle.data = st;
  s->state = st;
  st->idle_pending = 1;
  uv_idle_start(&st->idle, scan_on_idle);
  scan_jobs_fill(st);
  return 0;
nomem:
  err = BM_ENOMEM;
fail:
  free(st->small);
  free(st->fifo);
  free(st->jobs);
  free(st);
  return err;
}

void bm_uv_scan_cancel(bm_uv_scan_t *s, int status) {
  scan_state_t *st = s != NULL ? s->state : NULL;
  if (st == NULL || st->finishing) return;
  if (st->status == 0) st->status = status < 0 ? status : BM_ECANCELED;
  atomic_store(&st->stop, 1);
  if (st->walking) bm_uv_pipeline_cancel(&st->pipe, st->status);
  else scan_drive(st);
}

void bm_uv_scan_opts_init(bm_uv_scan_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  bm_scan_opts_init(&o->scan);
}
