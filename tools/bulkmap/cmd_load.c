/* bulkmap load: copies a file into a new named section through the bulkmap_uv pipeline
 * (reads in parallel, checksum in order), then publishes the trailer as ready. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"

typedef struct {
  uv_file fd;
  cli_hash_t *xxh;
} load_t;

/* Pool thread: read the file's bytes for this window straight into the section. */
static int load_window_read(bm_uv_window_t *w, void *data) {
  load_t *l = ((cli_run_t *)data)->ctx;
  size_t done = 0;
  while (done < w->length) {
    uv_fs_t req;
    size_t want = w->length - done > (1u << 30) ? (1u << 30) : w->length - done;
    uv_buf_t buf = uv_buf_init((char *)w->data + done, (unsigned)want);
    ssize_t n = uv_fs_read(NULL, &req, l->fd, &buf, 1, (int64_t)(w->offset + done), NULL);
    uv_fs_req_cleanup(&req);
    if (n == UV_EINTR) continue;
    /* EFAULT: the kernel could not get a page of the section to copy into (shared memory
     * full); the read itself was fine. */
    if (n == UV_EFAULT) return BM_ENOSPC;
    if (n < 0) return BM_EIO;
    if (n == 0) return BM_ETRUNCATED; /* the file ended early: it shrank */
    done += (size_t)n;
  }
  return 0;
}

static int load_window_hash(bm_uv_window_t *w, void *data) {
  load_t *l = ((cli_run_t *)data)->ctx;
  hash_update(l->xxh, w->data, w->length);
  return 0;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
#ifdef _WIN32
  const char *b = strrchr(path, '\\');
  if (b != NULL && (s == NULL || b > s)) s = b;
#endif
  return s ? s + 1 : path;
}

typedef struct {
  void *at;
  const bm_trailer_t *t;
  uint32_t state;
} load_trailer_t;

static int load_encode_trailer(void *arg) {
  load_trailer_t *lt = arg;
  int err = bm_trailer_encode(lt->at, lt->t);
  if (err == 0 && lt->state != lt->t->state) err = bm_trailer_set_state(lt->at, lt->state);
  return err;
}

/* Writes the trailer into the section's last BM_TRAILER_SIZE bytes, state last. Guarded:
 * shared memory that cannot get a page (tmpfs full) faults on the first write. */
static int load_write_trailer(bm_source_t *sec, uint64_t secsize, const bm_trailer_t *t,
                              uint32_t state) {
  load_trailer_t lt;
  bm_view_t v;
  int err = bm_view_map(&v, sec, secsize - BM_TRAILER_SIZE, BM_TRAILER_SIZE, BM_ACCESS_WRITE);
  if (err != 0) return err;
  lt.at = v.data;
  lt.t = t;
  lt.state = state;
  err = bm_guard_call(load_encode_trailer, &lt);
  bm_view_unmap(&v);
  return err == BM_ETRUNCATED ? BM_ENOSPC : err;
}

/* Outside the pipeline (libuv's handlers cover it), a signal is only noted, so that making
 * the section and publishing its trailer are never cut off half-way: the load stops at the
 * next step and removes what it made. */
static volatile sig_atomic_t load_signalled;

static void load_on_signal(int signum) {
  (void)signum;
  load_signalled = 1;
}

static void load_note_signals(void) {
  signal(SIGINT, load_on_signal);
  signal(SIGTERM, load_on_signal);
}

int cmd_load(int argc, char **argv) {
  const char *o_name = NULL, *o_large = NULL, *o_hold = NULL, *o_json = NULL, *o_noprog = NULL,
             *pos[1];
  const cli_opt_t opts[] = {{"--name", 1, &o_name}, {"--large-pages", 1, &o_large},
                            {"--hold", 0, &o_hold}, {"--json", 0, &o_json},
                            {"--no-progress", 0, &o_noprog}};
  bm_section_opts_t so;
  bm_large_t large;
  bm_trailer_t t;
  bm_source_t *file = NULL, *sec = NULL;
  bm_uv_pipeline_opts_t po;
  cli_run_t run;
  load_t l;
  uint64_t payload, secsize;
  unsigned threads;
  uv_fs_t req;
  int npos, rc, err, mode = BM_LARGE_AUTO, hold;
  double t0, secs;
  cli_out_t out;

  rc = cli_parse("load", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("load", "missing FILE");
  if (pos[0][0] == '\0') return cli_usage("load", "FILE is an empty string");
  if (o_name == NULL) return cli_usage("load", "missing --name NAME");
  if (bm_name_check(o_name) != 0)
    return cli_usage("load", "--name '%s': a name is 1-200 characters of A-Z a-z 0-9 . _ -",
                     o_name);
  if (o_large != NULL) {
    if (strcmp(o_large, "auto") == 0) mode = BM_LARGE_AUTO;
    else if (strcmp(o_large, "on") == 0) mode = BM_LARGE_ON;
    else if (strcmp(o_large, "off") == 0) mode = BM_LARGE_OFF;
    else return cli_usage("load", "--large-pages '%s': expected auto, on or off", o_large);
  }
#ifdef _WIN32
  hold = 1; /* a section dies with its last handle */
#else
  hold = o_hold != NULL;
#endif
  if ((rc = cli_threads("load", NULL, &threads)) != 0) return rc;

  if ((err = bm_file_open(&file, pos[0], BM_FILE_READ)) != 0 ||
      (err = bm_source_size(file, &payload)) != 0) {
    cli_lib_error(pos[0], err);
    bm_source_close(file);
    return EXIT_FAILED;
  }
  memset(&l, 0, sizeof(l));
  /* The reads go through libuv's descriptor. The path was checked to be a regular file
   * above; should it have been swapped since, O_NONBLOCK keeps a FIFO from hanging us and
   * fstat refuses it. */
  l.fd = uv_fs_open(NULL, &req, pos[0], UV_FS_O_RDONLY | UV_FS_O_NONBLOCK, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (l.fd >= 0 && (uv_fs_fstat(NULL, &req, l.fd, NULL) != 0 ||
                    (req.statbuf.st_mode & S_IFMT) != S_IFREG)) {
    uv_fs_req_cleanup(&req);
    uv_fs_close(NULL, &req, l.fd, NULL);
    uv_fs_req_cleanup(&req);
    cli_error(pos[0], "changed while it was opened: no longer a regular file");
    bm_source_close(file);
    return EXIT_FAILED;
  }
  uv_fs_req_cleanup(&req);
  if (l.fd < 0) {
    cli_error(pos[0], "cannot open: %s", uv_strerror(l.fd));
    bm_source_close(file);
    return EXIT_FAILED;
  }

  memset(&so, 0, sizeof(so));
  so.large = mode;
  so.round = 1;
  {
    /* Size for the page kind asked for: a multiple of the large page size is a multiple
     * of the normal one too, so a fallback still fits. */
    bm_sysinfo_t si;
    size_t page = bm_page_size();
    if (mode != BM_LARGE_OFF && bm_sysinfo_get(&si) == 0 && si.default_large_size > page)
      page = si.default_large_size;
    if ((err = bm_dataset_size(payload, page, &so.size)) != 0) {
      cli_lib_error(pos[0], err);
      goto fail_file;
    }
  }
  memset(&large, 0, sizeof(large));
  load_note_signals();
  err = bm_section_create(&sec, o_name, &so, &large);
  if (err == BM_EEXIST) {
    cli_error(o_name, "a section of that name exists already (bulkmap rm %s removes it)", o_name);
    goto fail_file;
  }
  if (err == BM_ENOLARGE) {
    cli_error(o_name, "large pages required but not had: %s", bm_large_reason_str(large.reason));
    goto fail_file;
  }
  if (err != 0) {
    cli_lib_error(o_name, err);
    goto fail_file;
  }
  if ((err = bm_source_size(sec, &secsize)) != 0) {
    cli_lib_error(o_name, err);
    goto fail_section;
  }

  /* Published as loading first, so that a reader meeting a dead writer can say so. */
  memset(&t, 0, sizeof(t));
  t.version = BM_TRAILER_VERSION;
  t.state = BM_STATE_LOADING;
  t.payload_size = payload;
  t.page_size = large.obtained ? large.page_size : bm_page_size();
  t.writer_pid = (int64_t)uv_os_getpid();
  {
    uv_timeval64_t tv;
    t.created = uv_gettimeofday(&tv) == 0 ? tv.tv_sec : 0;
  }
  snprintf(t.source, sizeof(t.source), "%s", base_name(pos[0]));
  if ((err = load_write_trailer(sec, secsize, &t, BM_STATE_LOADING)) != 0) {
    cli_lib_error(o_name, err);
    goto fail_section;
  }
  if (load_signalled) goto interrupted;

  if ((l.xxh = hash_new()) == NULL) {
    cli_error("load", "out of memory");
    goto fail_section;
  }
  memset(&po, 0, sizeof(po));
  po.offset = 0;
  po.length = payload;
  po.window = 64u << 20;
  po.inflight = threads + 2 > BM_UV_MAX_INFLIGHT ? BM_UV_MAX_INFLIGHT : threads + 2;
  po.access = BM_ACCESS_WRITE;
  po.parallel = load_window_read;
  po.ordered = load_window_hash;
  run.ctx = &l;
  t0 = cli_now();
  err = cli_run(&run, sec, &po, o_noprog == NULL);
  secs = cli_now() - t0;
  load_note_signals(); /* libuv put the default action back when its handles closed */
  if (run.interrupted || load_signalled) goto interrupted;
  if (err != 0) {
    if (err == BM_ETRUNCATED) cli_error(pos[0], "the file shrank while it was loaded");
    else if (err == BM_ENOSPC)
      cli_error(o_name, "no memory left for the section's pages (shared memory full?)");
    else cli_lib_error_os(pos[0], err, run.pipe.os_error);
    load_write_trailer(sec, secsize, &t, BM_STATE_FAILED);
    goto fail_section;
  }
  t.xxh3 = hash_digest(l.xxh);
  if (load_signalled) goto interrupted;
  if ((err = load_write_trailer(sec, secsize, &t, BM_STATE_READY)) != 0) {
    cli_lib_error(o_name, err);
    goto fail_section;
  }
  /* Published: from here a signal ends a --hold, or is too late to matter. */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);

  out_begin(&out, o_json != NULL);
  out_str(&out, "name", o_name);
  out_u64(&out, "bytes", payload);
  out_hex64(&out, "xxh3", t.xxh3);
  out_str(&out, "state", "ready");
  out_u64(&out, "page_size", t.page_size);
  out_large(&out, &large);
  out_f(&out, "seconds", secs, 6);
  out_f(&out, "bytes_per_second", secs > 0 ? (double)payload / secs : 0, 0);
  out_i64(&out, "writer_pid", t.writer_pid);
  out_i64(&out, "created", t.created);
  out_end(&out);
  rc = EXIT_DONE;
  if (hold) {
    fprintf(stderr, "bulkmap: load: holding %s until interrupted\n", o_name);
    cli_wait_for_signal();
#ifndef _WIN32
    bm_section_remove(o_name);
#endif
  }
  goto done;

interrupted:
  cli_error("load", "interrupted: %s removed, nothing published", o_name);
  load_write_trailer(sec, secsize, &t, BM_STATE_FAILED);
  bm_section_remove(o_name);
  rc = EXIT_INTERRUPTED;
  goto done;

fail_section:
  bm_section_remove(o_name);
fail_file:
  rc = EXIT_FAILED;
done:
  hash_free(l.xxh);
  uv_fs_close(NULL, &req, l.fd, NULL);
  uv_fs_req_cleanup(&req);
  bm_source_close(sec);
  bm_source_close(file);
  return rc;
}
