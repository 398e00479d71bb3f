/* bulkmap load: a client of the library's dataset calls. The file is read into the new
 * dataset's section through the bulkmap_uv pipeline (reads in parallel, the library's
 * checksum in order); the library publishes it only if the file did not change. */
#include <stdlib.h>
#include <string.h>
#include "datasets.h"
#include "run.h"

typedef struct {
  uv_file fd;
  bm_dataset_t *ds;
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

/* Pool thread, in payload order: the library hashes the bytes as they are in the section
 * (bm_dataset_hash_view), so the published checksum is the payload's, never a buffer's. */
static int load_window_hash(bm_uv_window_t *w, void *data) {
  load_t *l = ((cli_run_t *)data)->ctx;
  return bm_dataset_hash_view(l->ds, &w->view);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
#ifdef _WIN32
  const char *b = strrchr(path, '\\');
  if (b != NULL && (s == NULL || b > s)) s = b;
#endif
  return s ? s + 1 : path;
}

static int load_parse_large(const char *text, int *mode) {
  if (text == NULL) *mode = BM_LARGE_AUTO;
  else if (strcmp(text, "auto") == 0) *mode = BM_LARGE_AUTO;
  else if (strcmp(text, "on") == 0) *mode = BM_LARGE_ON;
  else if (strcmp(text, "off") == 0) *mode = BM_LARGE_OFF;
  else return cli_usage("load", "--large-pages '%s': expected auto, on or off", text);
  return 0;
}

/* Opens FILE twice: as a bulkmap source (identity, size) and through libuv for the pool's
 * reads. Prints why and returns EXIT_FAILED when it cannot be loaded. */
static int load_open_file(const char *path, bm_source_t **file, uv_file *fd) {
  uv_fs_t req;
  int err;
  if ((err = bm_file_open(file, path, BM_FILE_READ)) != 0) {
    cli_lib_error(path, err);
    return EXIT_FAILED;
  }
  /* Should the path have been swapped for a FIFO since, O_NONBLOCK keeps it from hanging
   * us and fstat refuses it. */
  *fd = uv_fs_open(NULL, &req, path, UV_FS_O_RDONLY | UV_FS_O_NONBLOCK, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (*fd < 0) {
    cli_error(path, "cannot open: %s", uv_strerror(*fd));
    return EXIT_FAILED;
  }
  if (uv_fs_fstat(NULL, &req, *fd, NULL) != 0 || (req.statbuf.st_mode & S_IFMT) != S_IFREG) {
    uv_fs_req_cleanup(&req);
    cli_error(path, "changed while it was opened: no longer a regular file");
    return EXIT_FAILED;
  }
  uv_fs_req_cleanup(&req);
  return 0;
}

/* Why a create failed, in a user's words. */
static void load_create_error(const char *name, int err, const bm_large_t *large,
                              const char *group) {
  char why[96];
  if (err == BM_EEXIST)
    cli_error(name, "a section of that name exists already (bulkmap rm %s removes it)", name);
  else if (err == BM_ENOLARGE)
    cli_error(name, "large pages required but not had: %s%s",
              bm_large_describe(large, why, sizeof(why)),
              large->reason == BM_REASON_NO_MOUNT
                  ? " (bulkmap setup --large-pages SIZE mounts hugetlbfs)"
              : large->reason == BM_REASON_POOL_EMPTY || large->reason == BM_REASON_POOL_TOO_SMALL
                  ? " (bulkmap setup --large-pages SIZE grows the pool)"
                  : "");
  else if (err == BM_ENOENT && group != NULL)
    cli_error(name, "--group '%s': no such group", group);
  else if ((err == BM_EACCES || err == BM_EPERM) && group != NULL)
    cli_error(name, "--group '%s': you may not give a section to that group", group);
  else if (err == BM_EBUSY)
    cli_error(name, "another process holds the lock of /dev/shm that creators take (stuck?)");
  else
    cli_lib_error(name, err);
}

int cmd_load(int argc, char **argv) {
  const char *o_name = NULL, *o_large = NULL, *o_hold = NULL, *o_json = NULL, *o_noprog = NULL,
             *o_mode = NULL, *o_group = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--name", 1, &o_name},     {"--large-pages", 1, &o_large},
                            {"--hold", 0, &o_hold},     {"--json", 0, &o_json},
                            {"--no-progress", 0, &o_noprog}, {"--mode", 1, &o_mode},
                            {"--group", 1, &o_group}};
  bm_dataset_opts_t dso;
  bm_dataset_info_t info;
  bm_large_t large;
  bm_source_t *file = NULL;
  bm_uv_pipeline_opts_t po;
  cli_run_t run;
  load_t l;
  uint64_t payload;
  unsigned threads, mode = 0600;
  uv_fs_t req;
  int npos, rc, err, large_mode = BM_LARGE_AUTO, hold, sig = 0;
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
  if ((rc = load_parse_large(o_large, &large_mode)) != 0) return rc;
  if (o_mode != NULL && (rc = ds_parse_mode("load", o_mode, &mode)) != 0) return rc;
  if (o_group != NULL && o_group[0] == '\0') return cli_usage("load", "--group is an empty string");
#ifdef _WIN32
  hold = 1; /* a section dies with its last handle */
#else
  hold = o_hold != NULL;
#endif
  if ((rc = cli_threads("load", NULL, &threads)) != 0) return rc;

  memset(&l, 0, sizeof(l));
  l.fd = -1;
  if ((rc = load_open_file(pos[0], &file, &l.fd)) != 0) goto done;
  if ((err = bm_source_size(file, &payload)) != 0) {
    cli_lib_error(pos[0], err);
    rc = EXIT_FAILED;
    goto done;
  }

  memset(&dso, 0, sizeof(dso));
  dso.size = payload;
  dso.large = large_mode;
  dso.mode = mode;
  dso.group = o_group;
  dso.source = base_name(pos[0]);
  memset(&large, 0, sizeof(large));
  /* From before the section exists until it is published or removed, a terminating signal
   * is only noted (cli.h): the load stops at its next step and removes what it made, so a
   * half-made section is never left, nor one left `loading`. */
  cli_signals_defer(1);
  if ((err = bm_dataset_create(&l.ds, o_name, &dso, &large)) != 0) {
    load_create_error(o_name, err, &large, o_group);
    rc = EXIT_FAILED;
    goto done;
  }
  if ((err = bm_dataset_watch(l.ds, file)) != 0) {
    cli_lib_error(pos[0], err);
    goto failed;
  }
  if ((sig = cli_signal_caught()) != 0) goto interrupted;

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
  err = cli_run(&run, bm_dataset_source(l.ds), &po, o_noprog == NULL);
  if (run.interrupted) {
    sig = run.signum;
    goto interrupted;
  }
  if ((sig = cli_signal_caught()) != 0) goto interrupted;
  if (err != 0) {
    if (err == BM_ETRUNCATED) cli_error(pos[0], "the file shrank while it was loaded");
    else if (err == BM_ENOSPC)
      cli_error(o_name, "no memory left for the section's pages (shared memory full: /dev/shm or the huge page "
                "pool)");
    else cli_lib_error_os(pos[0], err, run.pipe.os_error);
    goto failed;
  }
  err = bm_dataset_publish(l.ds, &info);
  secs = cli_now() - t0;
  if (err == BM_ECHANGED) {
    cli_error(pos[0], "file changed as we read it: nothing published");
    goto failed;
  }
  if (err != 0) {
    if (err == BM_ENOSPC)
      cli_error(o_name, "no memory left for the section's pages (shared memory full: /dev/shm or the huge page "
                "pool)");
    else cli_lib_error(o_name, err);
    goto failed;
  }
  /* Published: a signal from here on is acted on by the hold (or was too late to
   * matter: the result is printed and the load is done). */

  out_begin(&out, o_json != NULL);
  ds_out_info(&out, &info);
  out_f(&out, "seconds", secs, 6);
  out_f(&out, "bytes_per_second", secs > 0 ? (double)payload / secs : 0, 0);
  out_i64(&out, "writer_pid", info.writer_pid);
  out_i64(&out, "created", info.created);
  out_end(&out);
  rc = EXIT_DONE;
  if (hold) {
    int werr = cli_out_failed();
    if (werr != 0) {
      /* Nobody learnt that it is loaded (a closed pipe, a full disk): holding it would
       * only keep memory no one knows of. */
      cli_error("load", "cannot write the result: %s; not holding %s", strerror(werr), o_name);
      rc = EXIT_FAILED;
    } else {
      fprintf(stderr, "bulkmap: load: holding %s until interrupted\n", o_name);
      cli_wait_for_signal();
    }
#ifndef _WIN32
    /* Only what this load made: a name removed and made again by anyone since is left. */
    if ((err = bm_dataset_remove(l.ds)) == BM_EREPLACED)
      cli_error(o_name, "now names another section: left alone");
#endif
  }
  goto done;

interrupted:
  err = bm_dataset_fail(l.ds);
  cli_error("load", "interrupted by %s: nothing published%s", cli_signal_name(sig),
            err == 0 ? ", the section removed"
            : err == BM_EREPLACED ? " (the name now refers to another section: left alone)" : "");
  rc = cli_signal_status(sig);
  goto done;

failed:
  if (bm_dataset_fail(l.ds) == BM_EREPLACED)
    cli_error(o_name, "now names another section: left alone");
  rc = EXIT_FAILED;
done:
  bm_dataset_close(l.ds);
  if (l.fd >= 0) {
    uv_fs_close(NULL, &req, l.fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  bm_source_close(file);
  return rc;
}
