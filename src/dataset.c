/* Datasets (docs/design.md section 2): the whole lifecycle of a named section holding a payload
 * and a trailer: create (exclusive, under the writer lock), fill, hash, publish, fail,
 * open verified, verify. The portable protocol; where a name lives, the locks and
 * identities are the backend's (src/os.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "words.h"
#include "dataset.h"

struct bm_dataset_s {
  bm__store_t *st;       /* where it lives, where the metadata is beside the bytes (POSIX);
                            it owns src then */
  bm_source_t *src;
  char name[BM_NAME_MAX + 8];
  uint64_t section;      /* section bytes */
  bm__trailer_t t;       /* as last written or read */
  int writer;            /* this handle created the dataset */
  int replace;           /* made under a hidden name, to become NAME at publish */
  int published, failed;
  int open_state;        /* a reader's state at open, when no trailer could be read */
  bm_xxh3_t *h;          /* the hash of payload bytes [0, hashed) */
  uint64_t hashed;
  bm_source_t *watched;  /* the file the payload comes from */
  bm__identity_t id_fd, id_path;
  char *watch_path;      /* the file's whole path, to see what it names at publish */
  bm__os_lease_t *lease; /* a read lease on the watched file (NULL: none could be had) */
  char unstable_why[160];
};

/* ---- The metadata, wherever it is: beside the bytes (the store) or in the trailer. */
static int bm__meta_write(bm_dataset_t *ds) {
  if (ds->st != NULL) return bm__store_record(ds->st, &ds->t);
  return bm__trailer_io(ds->src, ds->section, &ds->t, 1);
}

/* ---- Hashing the payload from the section, in bounded, prefaulted, guarded windows. */

static int bm__hash_window(const unsigned char *p, size_t n, uint64_t offset, void *arg) {
  (void)offset;
  bm_xxh3_update(arg, p, n);
  return 0;
}

/* Read through a small buffer that stays in the cache where the section takes reads
 * (tmpfs: no mapping of the whole payload, no page table to build), else through
 * windows (hugetlbfs, Windows). */
#define BM__HASH_CHUNK (256u << 10)

static int bm__hash_range(bm_source_t *src, uint64_t start, uint64_t length, bm_xxh3_t *h) {
  unsigned char *buf;
  uint64_t done = 0;
  int err = 0;
  if (length == 0) return 0;
  if (src->hugetlb || !bm__os_config()->meta_beside || (buf = malloc(BM__HASH_CHUNK)) == NULL)
    return bm_window_walk(src, start, length, bm__hash_window, h);
  while (done < length && err == 0) {
    size_t want = length - done < BM__HASH_CHUNK ? (size_t)(length - done) : BM__HASH_CHUNK, got = 0;
    err = bm__os_read_at(src, start + done, buf, want, &got);
    if (err == 0 && got == 0) err = BM_ETRUNCATED; /* cut short under us */
    if (err == 0) bm_xxh3_update(h, buf, got);
    done += got;
  }
  free(buf);
  return err;
}

/* bm_dataset_hash_view's guarded update. */
typedef struct {
  bm_xxh3_t *h;
  const unsigned char *p;
  size_t n;
} bm__hash_call_t;

static int bm__hash_call(void *arg) {
  bm__hash_call_t *c = arg;
  bm_xxh3_update(c->h, c->p, c->n);
  return 0;
}

static void bm__fill_info(const bm_dataset_t *ds, int state, bm_dataset_info_t *info) {
  memset(info, 0, sizeof(*info));
  snprintf(info->name, sizeof(info->name), "%s", ds->name);
  if (ds->st != NULL && bm__store_place(ds->st)[0] != '\0')
    snprintf(info->path, sizeof(info->path), "%s/%s", bm__store_place(ds->st), ds->name);
  else
    snprintf(info->path, sizeof(info->path), "%s", ds->src != NULL ? ds->src->path : "");
  info->state = state;
  info->section_bytes = ds->section;
  if (state == BM_STATE_CORRUPT || state == BM_STATE_FOREIGN) return;
  info->bytes = ds->t.payload_size;
  info->has_xxh3 = state == BM_STATE_READY;
  info->xxh3 = info->has_xxh3 ? ds->t.xxh3 : 0;
  info->page_size = ds->t.page_size;
  info->large = ds->t.large;
  info->writer_pid = ds->t.writer_pid;
  info->created = ds->t.created;
  memcpy(info->source, ds->t.source, sizeof(info->source));
  info->format = ds->t.format != 0 ? ds->t.format : BM_FORMAT_RAW;
  info->has_layout = ds->t.has_layout;
  info->layout = ds->t.layout;
  info->header_bytes = ds->t.header_bytes;
  info->n_tensors = ds->t.n_tensors;
  info->source_stable = ds->st != NULL ? ds->t.source_stable : -1;
  /* The file's size, looked at again: bytes past the payload were added by someone else. */
  if (ds->src != NULL && ds->st != NULL) {
    uint64_t now = 0;
    if (bm_source_size(ds->src, &now) == 0 && now > ds->t.payload_size)
      info->padded_bytes = now - ds->t.payload_size;
  }
}

static bm_dataset_t *bm__dataset_new(const char *name) {
  bm_dataset_t *ds = calloc(1, sizeof(*ds));
  if (ds != NULL) snprintf(ds->name, sizeof(ds->name), "%s", name);
  return ds;
}

static void bm__dataset_free(bm_dataset_t *ds) {
  bm__os_lease_end(ds->lease);
  bm_xxh3_free(ds->h);
  free(ds->watch_path);
  if (ds->st != NULL) bm__store_close(ds->st);
  else bm_source_close(ds->src);
  free(ds);
}

/* ---- Writers. */

/* The section opts a dataset of these opts is made with (its size for the payload, the
 * trailer and the pages asked for). */
static int bm__dataset_section_opts(const bm_dataset_opts_t *opts, bm_section_opts_t *so) {
  size_t page = bm_page_size();
  memset(so, 0, sizeof(*so));
  if (opts->large < BM_LARGE_OFF || opts->large > BM_LARGE_ON) return BM_EINVAL;
  so->large = opts->large;
  so->large_page_size = opts->large_page_size;
  so->mode = opts->mode;
  so->group = opts->group;
  so->mount = opts->mount;
  so->round = 1;
  so->preflight = opts->preflight;
  /* Sized for the page kind asked for: a multiple of the large page size is a multiple of
   * the normal one too, so a fallback still fits. */
  if (opts->large != BM_LARGE_OFF) {
    bm_sysinfo_t si;
    size_t lp = opts->large_page_size;
    if (lp == 0 && bm_sysinfo_get(&si) == 0) lp = si.default_large_size;
    if (lp > page) page = lp;
  }
  if (bm__os_config()->meta_beside) {
    /* The bytes are exactly the payload: the metadata lives beside them. */
    so->size = opts->size;
    return 0;
  }
  return bm__dataset_size(opts->size, page, &so->size);
}

int bm_dataset_preflight(const bm_dataset_opts_t *opts, bm_preflight_t *out) {
  bm_section_opts_t so;
  int err;
  if (opts == NULL || out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  if ((err = bm__dataset_section_opts(opts, &so)) != 0) return err;
  return bm__os_preflight(&so, out);
}


const char *bm_preflight_describe(const bm_preflight_t *p, char *buf, size_t n) {
  char need[32], fr[32], tot[32];
  if (buf == NULL || n == 0) return "";
  if (p == NULL || p->limit == BM_LIMIT_NONE) {
    snprintf(buf, n, "fits");
    return buf;
  }
  bm_size_format(p->needed, need, sizeof(need));
  bm_size_format(p->free, fr, sizeof(fr));
  bm_size_format(p->total, tot, sizeof(tot));
  if (p->limit == BM_LIMIT_SHM)
    snprintf(buf, n,
             "needs %s, %s has %s free of %s (mount a larger %s, e.g. mount -o remount,size=... "
             "%s or docker run --shm-size, or remove datasets: bulkmap ls)",
             need, p->where, fr, tot, p->where, p->where);
  else
    snprintf(buf, n,
             "needs %s, memory cgroup %s allows %s more of %s (raise its limit, e.g. docker "
             "run --memory, or use large pages, which it does not count)",
             need, p->where[0] ? p->where : "?", fr, tot);
  return buf;
}

static int dataset_create(bm_dataset_t **out, const char *name, const bm_dataset_opts_t *opts,
                          bm_large_t *outcome) {
  bm_section_opts_t so;
  bm_large_t large;
  bm_dataset_t *ds;
  int err;

  memset(&large, 0, sizeof(large));
  if (outcome != NULL) *outcome = large;
  if (out == NULL || opts == NULL) return BM_EINVAL;
  *out = NULL;
  if ((err = bm_name_check(name)) != 0) return err;
  if ((err = bm__dataset_section_opts(opts, &so)) != 0) return err;

  if ((ds = bm__dataset_new(name)) == NULL) return BM_ENOMEM;

  ds->replace = opts->replace != 0;
  /* Recorded as loading first, so that a reader meeting a dead writer can say so. */
  ds->t.state = BM_STATE_LOADING;
  ds->t.payload_size = opts->size;
  ds->t.page_size = bm_page_size();
  ds->t.writer_pid = bm__os_pid();
  ds->t.created = bm__os_time();
  ds->t.large.requested = opts->large;
  ds->t.source_stable = -1; /* not a watched file (yet) */
  snprintf(ds->t.source, sizeof(ds->t.source), "%s", opts->source != NULL ? opts->source : "");
  if (bm__os_config()->meta_beside) {
    large.requested = opts->large;
    large.page_size = bm_page_size();
    large.reason = opts->large != BM_LARGE_OFF ? BM_REASON_NONE : BM_REASON_NOT_REQUESTED;
    ds->t.large = large; /* the claim's first record: what was asked, nothing had yet */
    if (opts->preflight != NULL) {
      memset(opts->preflight, 0, sizeof(*opts->preflight));
      opts->preflight->shm_free = opts->preflight->shm_total = UINT64_MAX;
      opts->preflight->cgroup_free = opts->preflight->cgroup_limit = UINT64_MAX;
    }
    err = bm__store_create(&ds->st, name, &so, ds->replace, &ds->t, &large);
    if (err == 0) ds->src = bm__store_source(ds->st);
  } else {
    /* A replace's generation is made hidden and becomes NAME at publish (src/lifecycle.c). */
    err = ds->replace ? bm__section_create_hidden(&ds->src, name, &so, &large)
                      : bm_section_create(&ds->src, name, &so, &large);
  }
  if (outcome != NULL) *outcome = large;
  if (err != 0) {
    free(ds);
    return err;
  }
  ds->writer = 1;
  ds->t.page_size = large.obtained ? large.page_size : bm_page_size();
  ds->t.large = large;
  if ((err = bm_source_size(ds->src, &ds->section)) != 0) goto undo;
  if ((ds->h = bm_xxh3_new()) == NULL) {
    err = BM_ENOMEM;
    goto undo;
  }
  /* The trailer names the writer token (Windows: its name is random, so readers learn it
   * here, never by guessing). Written before the payload, microseconds after the section
   * was made: a reader that finds the section first looks again (dataset_open). */
  snprintf(ds->t.writer_token, sizeof(ds->t.writer_token), "%s", ds->src->token);
  if (ds->st == NULL && (err = bm__trailer_io(ds->src, ds->section, &ds->t, 1)) != 0) goto undo;
  *out = ds;
  return 0;

undo: {
    int os = bm_last_os_error(); /* the failure's, not the cleanup's */
    if (ds->st != NULL) bm__store_remove(ds->st);
    else bm__os_section_remove_own(ds->src, ds->name);
    bm__set_os_error(os);
  }
  bm__dataset_free(ds);
  return err;
}

bm_source_t *bm_dataset_source(bm_dataset_t *ds) { return ds != NULL ? ds->src : NULL; }
bm__store_t *bm__dataset_store(bm_dataset_t *ds) { return ds != NULL ? ds->st : NULL; }

int bm__watch_begin(bm_source_t *file, bm__watch_t *w) {
  int err;
  memset(w, 0, sizeof(*w));
  if (file == NULL || file->full_path == NULL) return BM_EINVAL;
  if ((err = bm__os_identity(file, NULL, &w->id_fd)) != 0) return err;
  if ((err = bm__os_identity(NULL, file->full_path, &w->id_path)) != 0) return err;
  w->file = file;
  /* Who may write it meanwhile unseen: a read lease says, where one can be had. */
  err = bm__os_lease_take(file, &w->lease, w->unstable_why, sizeof(w->unstable_why));
  if (err != 0 && err != BM_ENOTSUP && w->unstable_why[0] == '\0')
    snprintf(w->unstable_why, sizeof(w->unstable_why), "no read lease: %s", bm_strerror(err));
  return 0;
}

void bm__watch_end(bm__watch_t *w) {
  bm__os_lease_end(w->lease);
  w->lease = NULL;
}

int bm__dataset_watch_from(bm_dataset_t *ds, bm__watch_t *w) {
  if (ds == NULL || w->file == NULL || !ds->writer || ds->published) return BM_EINVAL;
  free(ds->watch_path);
  if ((ds->watch_path = malloc(strlen(w->file->full_path) + 1)) == NULL) return BM_ENOMEM;
  strcpy(ds->watch_path, w->file->full_path);
  ds->watched = w->file;
  ds->id_fd = w->id_fd;
  ds->id_path = w->id_path;
  bm__os_lease_end(ds->lease);
  ds->lease = w->lease; /* the dataset's now */
  w->lease = NULL;
  memcpy(ds->unstable_why, w->unstable_why, sizeof(ds->unstable_why));
  ds->t.source_stable = ds->lease != NULL;
  return 0;
}

int bm_dataset_watch(bm_dataset_t *ds, bm_source_t *file) {
  bm__watch_t w;
  int err;
  if (ds == NULL || file == NULL || !ds->writer || ds->published || file->full_path == NULL)
    return BM_EINVAL;
  if ((err = bm__watch_begin(file, &w)) != 0) return err;
  err = bm__dataset_watch_from(ds, &w);
  bm__watch_end(&w);
  return err;
}

static int bm__same_identity(const bm__identity_t *a, const bm__identity_t *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int bm_dataset_hash_view(bm_dataset_t *ds, const bm_view_t *view) {
  bm__hash_call_t c;
  uint64_t end, skip;
  if (ds == NULL || view == NULL || bm__view_cpriv(view)->src != ds->src || ds->published)
    return BM_EINVAL;
  end = view->offset + view->length;
  if (end > ds->t.payload_size) end = ds->t.payload_size;
  if (end <= ds->hashed) return 0; /* nothing new */
  if (view->offset > ds->hashed) return BM_EINVAL; /* a gap */
  skip = ds->hashed - view->offset;
  c.h = ds->h;
  c.p = (const unsigned char *)view->data + skip;
  c.n = (size_t)(end - ds->hashed);
  {
    int err = bm_guard_call(bm__hash_call, &c);
    if (err != 0) return err;
  }
  ds->hashed = end;
  return 0;
}

/* The compact layout of the payload's header (tensor table, __metadata__, the npy descr),
 * made once here from the header in the section and kept in the metadata, so that readers
 * never parse the header again (src/format.c: bm__layout_encode). */
static int bm__dataset_keep_layout(bm_dataset_t *ds) {
  bm_format_info_t fi;
  unsigned char *head, *blob = NULL;
  size_t n, blob_n = 0;
  int err;
  memset(&fi, 0, sizeof(fi));
  fi.format = ds->t.format;
  fi.has_layout = ds->t.has_layout;
  fi.layout = ds->t.layout;
  fi.header_bytes = ds->t.header_bytes;
  fi.n_tensors = ds->t.n_tensors;
  fi.payload_size = ds->t.payload_size;
  if ((err = bm__format_read(ds->src, ds->t.payload_size, &head, &n)) != 0) return err;
  err = bm__layout_encode(&fi, head, n, &blob, &blob_n);
  free(head);
  /* A layout given from memory that names another dtype than the header's own (BF16 over
   * an npy of uint16) is not the header's: kept in the trailer block only, and readers read
   * the header itself for the rest. */
  if (err == BM_EFORMAT) return 0;
  if (err != 0) return err;
  return bm__store_set_layout(ds->st, blob, blob_n);
}

/* A reader's layout fields the trailer block has no room for (the npy descr and flags),
 * from the compact layout. */
static void bm__dataset_read_layout(bm_dataset_t *ds) {
  bm_format_info_t fi;
  unsigned char *blob;
  size_t n;
  if (ds->st == NULL || !ds->t.has_layout || bm__store_layout(ds->st, &blob, &n) != 0 || blob == NULL)
    return;
  if (bm__layout_decode(blob, n, &fi, NULL, NULL, NULL, NULL, NULL) == 0 && fi.has_layout &&
      fi.layout.dtype == ds->t.layout.dtype && fi.layout.data_offset == ds->t.layout.data_offset) {
    ds->t.layout.flags = fi.layout.flags;
    memcpy(ds->t.layout.descr, fi.layout.descr, sizeof(ds->t.layout.descr));
  }
  free(blob);
}

int bm__dataset_hash_written(bm_dataset_t *ds, uint64_t offset, const void *p, size_t n) {
  bm__hash_call_t c;
  int err;
  if (ds == NULL || !ds->writer || ds->published || offset != ds->hashed ||
      offset + n > ds->t.payload_size)
    return BM_EINVAL;
  c.h = ds->h;
  c.p = p;
  c.n = n;
  if ((err = bm_guard_call(bm__hash_call, &c)) != 0) return err;
  ds->hashed = offset + n;
  return 0;
}

int bm__dataset_hash_from(bm_dataset_t *ds, uint64_t offset, uint64_t length) {
  int err;
  if (ds == NULL || !ds->writer || ds->published || offset != ds->hashed ||
      offset + length > ds->t.payload_size)
    return BM_EINVAL;
  if ((err = bm__hash_range(ds->src, offset, length, ds->h)) != 0) return err;
  ds->hashed = offset + length;
  return 0;
}

int bm_dataset_publish(bm_dataset_t *ds, bm_dataset_info_t *info) {
  int err;
  if (ds == NULL || !ds->writer || ds->published || ds->failed) return BM_EINVAL;
  if (ds->watched != NULL) {
    bm__identity_t a, b;
    /* The file as opened (in-place writes change its times and size), and what its path
     * names now (a file replaced by rename is another inode). */
    if ((err = bm__os_identity(ds->watched, NULL, &a)) != 0) return err;
    if (!bm__same_identity(&a, &ds->id_fd)) return bm__set_os_error(0), BM_ECHANGED;
    err = bm__os_identity(NULL, ds->watch_path, &b);
    if (err == BM_ENOENT) return bm__set_os_error(0), BM_ECHANGED;
    if (err != 0) return err;
    if (!bm__same_identity(&b, &ds->id_path)) return bm__set_os_error(0), BM_ECHANGED;
    /* Opened for writing by someone during the load (the lease broke): the bytes may be a
     * mix of two versions whatever the times say. */
    if (bm__os_lease_broken(ds->lease)) return bm__set_os_error(0), BM_ECHANGED;
  }
  if (ds->hashed == 0 && ds->t.payload_size > 0) {
    if ((err = bm__hash_range(ds->src, 0, ds->t.payload_size, ds->h)) != 0) return err;
    ds->hashed = ds->t.payload_size;
  }
  if (ds->hashed != ds->t.payload_size) return BM_EINVAL;
  if (ds->st != NULL && ds->t.format != 0 && ds->t.format != BM_FORMAT_RAW &&
      (err = bm__dataset_keep_layout(ds)) != 0)
    return err;
  ds->t.xxh3 = bm_xxh3_digest(ds->h);
  ds->t.state = BM_STATE_READY;
  if (ds->st != NULL) {
    /* Named and recorded ready in one step of the store (a replace swaps NAME there). */
    if ((err = bm__store_publish(ds->st, &ds->t)) != 0) {
      ds->t.state = BM_STATE_LOADING;
      return err;
    }
    ds->published = 1;
    if (info != NULL) bm__fill_info(ds, BM_STATE_READY, info);
    return 0;
  }
  if ((err = bm__trailer_io(ds->src, ds->section, &ds->t, 1)) != 0) {
    ds->t.state = BM_STATE_LOADING;
    return err;
  }
  /* A replace: the generation becomes NAME now, still under its writer lock (so that a
   * reclaim never takes it for a dead writer's); failing, the old one is left as it was. */
  if (ds->replace && (err = bm__os_section_commit(ds->src, ds->name)) != 0) {
    ds->t.state = BM_STATE_FAILED;
    bm__trailer_io(ds->src, ds->section, &ds->t, 1);
    ds->failed = 1;
    bm__os_section_remove_own(ds->src, ds->name);
    return err;
  }
  ds->published = 1;
  /* Ready needs no liveness: the lock goes, so that a holder never blocks a plain rm. */
  bm__os_writer_release(ds->src);
  if (info != NULL) bm__fill_info(ds, BM_STATE_READY, info);
  return 0;
}

int bm_dataset_fail(bm_dataset_t *ds) {
  int err;
  if (ds == NULL || !ds->writer) return BM_EINVAL;
  if (!ds->published && !ds->failed) {
    /* Anyone who mapped it meanwhile sees `failed`, not a writer that seems to live on. */
    ds->t.state = BM_STATE_FAILED;
    bm__meta_write(ds);
  }
  ds->failed = 1;
  err = bm_dataset_remove(ds);
  /* Where a name dies with its last handle (Windows), closing is the removal. */
  return err == BM_ENOTSUP ? 0 : err;
}

int bm_dataset_remove(bm_dataset_t *ds) {
  if (ds == NULL) return BM_EINVAL;
  if (ds->st != NULL) return bm__store_remove(ds->st);
  return bm__os_section_remove_own(ds->src, ds->name);
}

/* ---- Readers. */

/* How long a reader looks again at a section whose trailer is not written yet, where the
 * writer lock is found only through the trailer (token_in_meta). Its creator writes the
 * trailer a few system calls after making the section, before any payload: a reader that
 * meets it then must not judge it (it cannot name the writer's token yet), so it waits for
 * the trailer, generously, since a loaded machine can hold a thread off for much of a
 * second. One still blank after is no dataset being made: another program's section (the
 * only one that pays the wait, and only when its last 4 KiB are zero), or one whose
 * creator died in that instant (it goes with its last handle; never judged abandoned:
 * nothing says it ever was a dataset). */
#define BM__UNWRITTEN_GRACE 2.0

/* err: what reading ds's trailer said. While the trailer is unwritten (blank, or a first
 * one being encoded), reads it again until it is or the grace has passed; returns the last
 * read's result. Each read follows the look that says whether to go on, so a trailer
 * written between the two is read, not taken for a foreign section's bytes. */
static int bm__await_trailer(bm_dataset_t *ds, int err) {
  bm__os_waiter_t *w;
  double end;
  int unwritten;
  if ((err != BM_ENOTDATASET && err != BM_ECORRUPT) || !bm__os_config()->token_in_meta ||
      bm__os_wait_begin(&w, ds->name) != 0)
    return err;
  end = bm__os_now() + BM__UNWRITTEN_GRACE;
  for (;;) {
    unwritten = bm__trailer_unwritten(ds->src, ds->section);
    memset(&ds->t, 0, sizeof(ds->t));
    err = bm__trailer_io(ds->src, ds->section, &ds->t, 0);
    if ((err != BM_ENOTDATASET && err != BM_ECORRUPT) || unwritten != 1 || bm__os_now() >= end)
      break;
    bm__os_wait(w, 0.005);
  }
  bm__os_wait_end(w);
  return err;
}

static int dataset_open(bm_dataset_t **out, const char *name, unsigned flags,
                        bm_dataset_info_t *info) {
  bm_dataset_t *ds;
  int err, state, tries = 0;

again:
  if (info != NULL) memset(info, 0, sizeof(*info));
  if (out == NULL || (flags & ~(unsigned)(BM_OPEN_ANY_STATE | BM_OPEN_VERIFY))) return BM_EINVAL;
  *out = NULL;
  if ((err = bm_name_check(name)) != 0) return err;
  if ((ds = bm__dataset_new(name)) == NULL) return BM_ENOMEM;
  if (bm__os_config()->meta_beside) {
    err = bm__store_open(&ds->st, name, &ds->t, &state);
    if (err == 0) {
      ds->src = bm__store_source(ds->st);
      bm__dataset_read_layout(ds);
      ds->section = ds->t.payload_size;
      if (state == BM_STATE_LOADING || state == BM_STATE_FAILED) err = BM_EINCOMPLETE;
      else if (state == BM_STATE_ABANDONED) err = BM_EABANDONED;
      goto judged;
    }
    if (err != BM_ENOENT && err != BM_ENOTDATASET) {
      bm__dataset_free(ds);
      return err;
    }
    /* No metadata beside NAME: a plain section, or a dataset of the previous layout (its
     * trailer in the section), read as before. */
  }
  if ((err = bm_section_open(&ds->src, name, BM_ACCESS_READ)) != 0 ||
      (err = bm_source_size(ds->src, &ds->section)) != 0) {
    bm__dataset_free(ds);
    return err;
  }
  err = bm__await_trailer(ds, bm__trailer_io(ds->src, ds->section, &ds->t, 0));
  if (err == BM_ENOTDATASET && bm__os_writer_alive(ds->src, NULL) == 1) {
    /* No trailer yet, but its creator lives: a dataset being made (POSIX, whose lock is
     * on the object; where the lock is named in the trailer, it was looked for above). */
    memset(&ds->t, 0, sizeof(ds->t));
    state = BM_STATE_LOADING;
    err = BM_EINCOMPLETE;
  } else if ((err == BM_ENOTDATASET || err == BM_ECORRUPT) && bm__os_config()->meta_beside &&
             tries < 50 && bm__store_unsettled(name)) {
    /* No metadata beside NAME when we looked, and now there is (a dataset made between our
     * two looks), or its bytes are being published or removed: they carry no trailer, and
     * are not a foreign object. Look again, through its metadata. */
    tries++;
    bm__dataset_free(ds);
    goto again;
  } else if (err == BM_ENOTDATASET || err == BM_ECORRUPT) {
    state = err == BM_ECORRUPT ? BM_STATE_CORRUPT : BM_STATE_FOREIGN;
  } else if (err != 0) {
    bm__dataset_free(ds);
    return err;
  } else {
    state = bm__trailer_judge(ds->src, &ds->t);
    if (state == BM_STATE_ABANDONED) {
      /* The trailer said `loading` and the writer's lock is free now: it died, or it
       * published and let the lock go between our two looks. Read again to tell. */
      bm__trailer_t again;
      if (bm__trailer_io(ds->src, ds->section, &again, 0) == 0 && again.state != BM_STATE_LOADING) {
        ds->t = again;
        state = (int)again.state;
      }
    }
    if (state == BM_STATE_LOADING || state == BM_STATE_FAILED) err = BM_EINCOMPLETE;
    else if (state == BM_STATE_ABANDONED) err = BM_EABANDONED;
  }
  if (err == BM_ENOTDATASET || err == BM_ECORRUPT || err == BM_EABANDONED) {
    /* A creator's object has no permission bits until it is committed (only root can open
     * it then) and no trailer or writer lock for its first microseconds: it is a dataset
     * being made, not a foreign, corrupt or abandoned one. */
    bm_section_info_t si;
    if (bm_section_lookup(name, &si) == 0 && si.mode == 0 && si.state != BM_STATE_READY) {
      memset(&ds->t, 0, sizeof(ds->t));
      state = BM_STATE_LOADING;
      err = BM_EINCOMPLETE;
    }
  }
judged:
  ds->open_state = state;
  if (info != NULL) bm__fill_info(ds, state, info);
  if (err != 0 && !((flags & BM_OPEN_ANY_STATE) &&
                    (err == BM_EINCOMPLETE || err == BM_EABANDONED || err == BM_ECORRUPT))) {
    bm__dataset_free(ds);
    return err;
  }
  if (err == 0 && (flags & BM_OPEN_VERIFY) && (err = bm_dataset_verify(ds)) != 0) {
    bm__dataset_free(ds);
    return err;
  }
  *out = ds;
  return 0;
}

int bm_dataset_info(bm_dataset_t *ds, bm_dataset_info_t *info) {
  int state;
  if (ds == NULL || info == NULL) return BM_EINVAL;
  if (ds->writer)
    state = ds->published ? BM_STATE_READY : ds->failed ? BM_STATE_FAILED : BM_STATE_LOADING;
  else {
    /* A reader asks again: the writer may have published, failed or died since. */
    bm__trailer_t t;
    memset(&t, 0, sizeof(t));
    if (ds->st != NULL) {
      if (bm__store_reread(ds->st, &t, &state) == 0) ds->t = t;
      else state = ds->open_state;
    } else {
      if (bm__trailer_io(ds->src, ds->section, &t, 0) == 0) ds->t = t;
      state = ds->t.state == 0 ? ds->open_state : bm__trailer_judge(ds->src, &ds->t);
    }
  }
  bm__fill_info(ds, state, info);
  return 0;
}

int bm_dataset_view(bm_dataset_t *ds, bm_view_t *view) {
  if (ds == NULL || view == NULL) return BM_EINVAL;
  if (ds->src == NULL) return BM_EINCOMPLETE; /* not ready: no bytes to map */
  return bm_view_map(view, ds->src, 0, ds->t.payload_size, BM_ACCESS_READ);
}

int bm_dataset_verify(bm_dataset_t *ds) {
  bm_xxh3_t *h;
  uint64_t got;
  int err;
  if (ds == NULL) return BM_EINVAL;
  if (ds->t.state != BM_STATE_READY || ds->src == NULL) return BM_EINCOMPLETE;
  if ((h = bm_xxh3_new()) == NULL) return BM_ENOMEM;
  err = bm__hash_range(ds->src, 0, ds->t.payload_size, h);
  got = bm_xxh3_digest(h);
  bm_xxh3_free(h);
  if (err != 0) return err;
  if (got != ds->t.xxh3) return bm__set_os_error(0), BM_ECHECKSUM;
  return 0;
}

int bm_dataset_handoff(bm_dataset_t *ds) {
  if (ds == NULL || !ds->writer || ds->published || ds->failed) return BM_EINVAL;
  if (ds->st == NULL) return bm__set_os_error(0), BM_ENOTSUP;
  return bm__store_handoff(ds->st);
}

void bm_dataset_close(bm_dataset_t *ds) {
  if (ds == NULL) return;
  /* One forked away (bm_dataset_handoff) is its child's now: nothing to fail here. */
  if (ds->st != NULL && bm__store_given_away(ds->st)) {
    bm__dataset_free(ds);
    return;
  }
  if (ds->writer && !ds->published && !ds->failed) bm_dataset_fail(ds);
  bm__dataset_free(ds);
}

/* ---- What the payload is (docs/design.md section 6): recorded by a writer before it publishes,
 * the tensors of a safetensors payload read back from its header bytes. */

int bm__dataset_set_info(bm_dataset_t *ds, const bm_format_info_t *fi) {
  if (ds == NULL || fi == NULL || !ds->writer || ds->published || ds->failed) return BM_EINVAL;
  ds->t.format = fi->format == BM_FORMAT_RAW ? 0 : fi->format;
  ds->t.has_layout = fi->has_layout;
  if (fi->has_layout) ds->t.layout = fi->layout;
  else memset(&ds->t.layout, 0, sizeof(ds->t.layout));
  ds->t.header_bytes = fi->format == BM_FORMAT_RAW ? 0 : fi->header_bytes;
  ds->t.n_tensors = fi->format == BM_FORMAT_SAFETENSORS ? fi->n_tensors : 0;
  return 0;
}

int bm_dataset_set_format(bm_dataset_t *ds, int format, char *why, size_t why_n) {
  bm_format_info_t fi;
  unsigned char *head;
  size_t n;
  int err;
  if (why != NULL && why_n > 0) why[0] = '\0';
  if (ds == NULL || !ds->writer || ds->published || ds->failed || format < BM_FORMAT_AUTO ||
      format > BM_FORMAT_SAFETENSORS)
    return BM_EINVAL;
  if ((err = bm__format_read(ds->src, ds->t.payload_size, &head, &n)) != 0) return err;
  err = bm_format_check(head, n, ds->t.payload_size, format, &fi, why, why_n);
  free(head);
  if (err != 0) return err;
  return bm__dataset_set_info(ds, &fi);
}

int bm_dataset_tensors(bm_dataset_t *ds, bm_tensor_t **out, size_t *count) {
  unsigned char *head;
  size_t n;
  int err;
  if (out != NULL) *out = NULL;
  if (count != NULL) *count = 0;
  if (ds == NULL || out == NULL || count == NULL || ds->t.format != BM_FORMAT_SAFETENSORS)
    return BM_EINVAL;
  if (ds->st != NULL && !ds->writer) {
    /* The tensor table kept in the metadata: the header is not parsed again. */
    bm_format_info_t fi;
    unsigned char *blob;
    if ((err = bm__store_layout(ds->st, &blob, &n)) != 0) return err;
    if (blob != NULL) {
      err = bm__layout_decode(blob, n, &fi, out, count, NULL, NULL, NULL);
      free(blob);
      if (err == 0 && *count != ds->t.n_tensors) {
        bm_tensors_free(*out);
        *out = NULL;
        *count = 0;
        err = BM_ECORRUPT;
      }
      return err;
    }
  }
  if ((err = bm__format_read(ds->src, ds->t.payload_size, &head, &n)) != 0) return err;
  err = bm_format_tensors(head, n, ds->t.payload_size, out, count, NULL, 0);
  free(head);
  if (err == 0 && (*count != ds->t.n_tensors)) {
    bm_tensors_free(*out);
    *out = NULL;
    *count = 0;
    err = BM_ECORRUPT;
  }
  return err;
}

int bm_dataset_metadata(bm_dataset_t *ds, bm_meta_t **out, size_t *count) {
  unsigned char *buf;
  size_t n;
  int err;
  if (out != NULL) *out = NULL;
  if (count != NULL) *count = 0;
  if (ds == NULL || out == NULL || count == NULL) return BM_EINVAL;
  if (ds->t.format != BM_FORMAT_SAFETENSORS) return 0;
  if (ds->st != NULL && !ds->writer) {
    bm_format_info_t fi;
    if ((err = bm__store_layout(ds->st, &buf, &n)) != 0) return err;
    if (buf != NULL) {
      err = bm__layout_decode(buf, n, &fi, NULL, NULL, out, count, NULL);
      free(buf);
      return err;
    }
  }
  if (ds->src == NULL) return BM_EINCOMPLETE;
  if ((err = bm__format_read(ds->src, ds->t.payload_size, &buf, &n)) != 0) return err;
  err = bm_format_metadata(buf, n, ds->t.payload_size, out, count, NULL, 0);
  free(buf);
  return err;
}

const char *bm__dataset_unstable_why(bm_dataset_t *ds) {
  return ds->lease != NULL ? NULL : ds->unstable_why;
}

/* The public calls: the work above, and the words of a failure (bm_errmsg). */
int bm_dataset_open(bm_dataset_t **out, const char *name, unsigned flags,
                    bm_dataset_info_t *info) {
  bm_dataset_info_t scratch;
  int err = dataset_open(out, name, flags, info != NULL ? info : &scratch);
  return err == 0 ? 0 : bm__words_dataset(err, name, info != NULL ? info : &scratch);
}

int bm_dataset_create(bm_dataset_t **out, const char *name, const bm_dataset_opts_t *opts,
                      bm_large_t *outcome) {
  bm_load_result_t r;
  bm__load_words_t w;
  bm_preflight_t room;
  bm_dataset_opts_t o;
  int err;
  if (opts == NULL) return dataset_create(out, name, opts, outcome);
  o = *opts;
  if (o.preflight == NULL) {
    memset(&room, 0, sizeof(room));
    o.preflight = &room;
  }
  memset(&r, 0, sizeof(r));
  err = dataset_create(out, name, &o, &r.large);
  if (outcome != NULL) *outcome = r.large;
  if (err == 0 || err == BM_ENAME) return err;
  r.failed_at = BM_LOAD_AT_CREATE;
  w.file = NULL;
  w.name = name;
  w.group = opts->group;
  w.result = &r;
  w.room = o.preflight;
  return bm__words_load(err, &w);
}

void bm_dataset_opts_init(bm_dataset_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  o->large = BM_LARGE_AUTO;
}
