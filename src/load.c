/* bm_dataset_load: a file into a new dataset on the core's window scheduler (pool.h): onto
 * tmpfs, the file read in order into small buffers, each written with pwrite and hashed
 * from itself; onto hugetlbfs (and on Windows), read in parallel into the section's
 * windows and hashed from them in order; the file watched, then the dataset published, or
 * failed and its name removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "words.h"
#include "pool.h"
#include "dataset.h"

typedef struct {
  bm_source_t *file;
  bm_dataset_t *ds;
  const volatile sig_atomic_t *cancel;
} load_t;

/* Pieces a read: a cancel is seen between them, well within 100 ms. */
#define LOAD_PIECE (8u << 20)

/* The direct copy (the section takes writes: tmpfs): src/fill.c, the file's bytes taken
 * with pread. */
static int load_take(void *ctx, uint64_t off, unsigned char *buf, size_t n) {
  load_t *l = ctx;
  size_t done = 0;
  while (done < n) {
    size_t got = 0;
    int err = bm__os_read_at(l->file, off + done, buf + done, n - done, &got);
    if (err != 0) return err;
    if (got == 0) return bm__set_os_error(0), BM_ETRUNCATED; /* the file ended early: it shrank */
    done += got;
  }
  return 0;
}

static int load_read(void *ctx, bm__pool_win_t *w) {
  load_t *l = ctx;
  size_t done = 0;
  int perr;
  /* The window's pages made in one call before the read fills them (no fault a page; a
   * page that cannot be had is BM_ENOSPC here). */
  if ((perr = bm__os_populate_write(w->view.data, w->length)) != 0 && perr != BM_ENOTSUP) {
    w->os_error = bm_last_os_error();
    return perr;
  }
  while (done < w->length) {
    size_t want = w->length - done > LOAD_PIECE ? LOAD_PIECE : w->length - done, got = 0;
    int err;
    if (l->cancel != NULL && *l->cancel) return BM_ECANCELED;
    if ((err = bm__os_read_at(l->file, w->offset + done, (char *)w->view.data + done, want, &got)) != 0) {
      w->os_error = bm_last_os_error();
      return err;
    }
    if (got == 0) return BM_ETRUNCATED; /* the file ended early: it shrank */
    done += got;
  }
  return 0;
}

static int load_hash(void *ctx, bm__pool_win_t *w) {
  load_t *l = ctx;
  return bm_dataset_hash_view(l->ds, &w->view);
}

/* The file's header judged before anything is made (docs/design.md section 6). */
static int load_format(bm_source_t *file, uint64_t size, int format, bm_format_info_t *fi,
                       bm_load_result_t *res) {
  unsigned char *head;
  size_t n;
  int err;
  memset(fi, 0, sizeof(*fi));
  fi->format = BM_FORMAT_RAW;
  if (format == BM_FORMAT_RAW) return 0;
  if ((err = bm__format_read(file, size, &head, &n)) != 0) return err;
  err = bm_format_check(head, n, size, format, fi, res->why, sizeof(res->why));
  free(head);
  if (err == BM_EFORMAT) res->failed_at = BM_LOAD_AT_FORMAT;
  return err;
}

static const char *load_base_name(const char *path) {
  const char *s = strrchr(path, '/'), *b = strrchr(path, '\\');
  /* Both separators: a Windows path may use either; a POSIX name with a backslash in it
   * is only recorded shorter. */
  if (b != NULL && (s == NULL || b > s)) s = b;
  return s ? s + 1 : path;
}

static int dataset_load(bm_dataset_t **out, const char *name, const char *path,
                        const bm_load_opts_t *opts, bm_load_result_t *res) {
  bm_load_result_t scratch;
  bm_dataset_opts_t dso;
  bm_window_opts_t wo;
  bm__pool_t p;
  load_t l;
  bm_format_info_t fi;
  bm__cache_t cache;
  bm__watch_t watch;
  uint64_t size;
  double t0;
  int err, ferr;

  if (res == NULL) res = &scratch;
  memset(res, 0, sizeof(*res));
  if (out != NULL) *out = NULL;
  if (name == NULL || path == NULL || opts == NULL) return BM_EINVAL;
  if (opts->threads > BM_SCAN_MAX_THREADS) return BM_EINVAL;
  if (opts->format < BM_FORMAT_AUTO || opts->format > BM_FORMAT_SAFETENSORS) return BM_EINVAL;
  memset(&cache, 0, sizeof(cache));
  memset(&watch, 0, sizeof(watch));
  if ((err = bm_name_check(name)) != 0) return err;
  memset(&l, 0, sizeof(l));
  l.cancel = opts->cancel;
  res->failed_at = BM_LOAD_AT_FILE;
  if ((err = bm_file_open(&l.file, path, BM_FILE_READ)) != 0) return err;
  if ((err = bm_source_size(l.file, &size)) != 0) goto out;
  /* Watched from now on, before its header is read: its identity, and a read lease where
   * one can be had (a write through a mapping shows in neither size nor times). */
  if ((err = bm__watch_begin(l.file, &watch)) != 0) goto out;
  /* One copy in RAM: what is cached of the file before anything of it is read (the
   * header included); where the OS cannot tell, nothing is dropped. */
  if (bm__cache_snapshot(l.file, size, &cache) == 0 && cache.ok) res->source_cached_before = cache.before;
  if ((err = load_format(l.file, size, opts->format, &fi, res)) != 0) goto out;
  dso = opts->dataset;
  dso.size = size;
  if (dso.source == NULL) dso.source = load_base_name(path);
  if (l.cancel != NULL && *l.cancel) {
    err = BM_ECANCELED;
    goto out;
  }
  t0 = bm__os_now();
  res->failed_at = BM_LOAD_AT_CREATE;
  if ((err = bm_dataset_create(&l.ds, name, &dso, &res->large)) != 0) goto out;
  res->failed_at = BM_LOAD_AT_FILL;
  if ((err = bm__dataset_watch_from(l.ds, &watch)) != 0) goto failed;
  {
    const char *why = bm__dataset_unstable_why(l.ds);
    res->source_stable = why == NULL;
    snprintf(res->unstable_why, sizeof(res->unstable_why), "%s", why != NULL ? why : "");
  }
  if ((err = bm__dataset_set_info(l.ds, &fi)) != 0) goto failed;

  /* Where the section takes writes (tmpfs) the file goes in through buffers with pwrite
   * (src/fill.c); else (hugetlbfs, Windows) it is read into the section's writable windows
   * and hashed from them. */
  memset(&p, 0, sizeof(p));
  p.threads = opts->threads;
  p.progress = opts->progress;
  p.progress_arg = opts->progress_arg;
  p.cancel = opts->cancel;
  if (bm__fill_takes_writes(l.ds)) {
    err = bm__fill(&p, l.ds, size, load_take, &l);
  } else {
    if (p.threads == 0) p.threads = bm__os_cpu_count();
    p.inflight = p.threads + 2;
    memset(&wo, 0, sizeof(wo));
    wo.length = size;
    if ((err = bm_window_plan(bm_dataset_source(l.ds), &wo, p.inflight, &p.plan)) != 0) goto failed;
    p.src = bm_dataset_source(l.ds);
    p.access = BM_ACCESS_WRITE;
    p.parallel = load_read;
    p.ordered = load_hash;
    p.ctx = &l;
    err = bm__pool_run(&p);
  }
  res->os_error = p.os_error;
  if (err == 0 && l.cancel != NULL && *l.cancel) err = BM_ECANCELED;
  if (err == 0) err = bm_dataset_publish(l.ds, &res->info);
  if (err != 0) goto failed;
  res->seconds = bm__os_now() - t0;
  res->failed_at = 0;
  if (out != NULL) {
    *out = l.ds;
    l.ds = NULL;
  }
  goto out;

failed: {
    int os = bm_last_os_error(); /* the failure's, not the cleanup's */
    ferr = bm_dataset_fail(l.ds);
    bm__set_os_error(os);
  }
  res->removed = ferr == 0 ? 1 : ferr == BM_EREPLACED ? -1 : 0;
out: {
    int os = bm_last_os_error();
    bm_dataset_close(l.ds);
    if (cache.ok && bm__cache_restore(l.file, &cache, &res->source_cached_bytes) == 0)
      res->has_source_cached = 1;
    bm__cache_free(&cache);
    bm__watch_end(&watch);
    bm_source_close(l.file);
    if (err != 0) bm__set_os_error(os); /* the failure's, not the cleanup's */
  }
  return err;
}

/* The public call: the load above, and the words of a failure (bm_errmsg), which need the
 * room the create checked: the caller's, or one of ours. */
int bm_dataset_load(bm_dataset_t **out, const char *name, const char *path,
                    const bm_load_opts_t *opts, bm_load_result_t *res) {
  bm_load_result_t scratch;
  bm_load_opts_t o;
  bm_preflight_t room;
  bm__load_words_t w;
  int err;
  if (res == NULL) res = &scratch;
  if (opts == NULL) return dataset_load(out, name, path, opts, res);
  o = *opts;
  if (o.dataset.preflight == NULL) {
    memset(&room, 0, sizeof(room));
    o.dataset.preflight = &room;
  }
  if ((err = dataset_load(out, name, path, &o, res)) == 0 || err == BM_ECANCELED) return err;
  /* The file as the caller calls it: its source name when given ("-": standard input spooled
   * to a file), else its path. */
  w.file = opts->dataset.source != NULL && opts->dataset.source[0] != '\0' ? opts->dataset.source : path;
  w.name = name;
  w.group = opts->dataset.group;
  w.result = res;
  w.room = o.dataset.preflight;
  return bm__words_load(err, &w);
}

void bm_load_opts_init(bm_load_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  bm_dataset_opts_init(&o->dataset);
  o->format = BM_FORMAT_AUTO;
}
