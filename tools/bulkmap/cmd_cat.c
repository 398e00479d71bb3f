/* bulkmap cat: writes a dataset's payload to stdout after verifying its checksum (a client
 * of bm_dataset_open and bm_dataset_verify); --raw writes any section's bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "datasets.h"
#include "plat.h"

#define CAT_EPIPE (-1000) /* the reader went away */

typedef struct {
  int oserr;         /* libuv error of a failed write to stdout */
  bm_xxh3_t *xxh;  /* hashes what is written, when verifying */
  unsigned char buf[1u << 20];
} cat_out_t;

static int cat_write_out(const unsigned char *p, size_t n, cat_out_t *o) {
  while (n > 0) {
    uv_fs_t req;
    size_t want = n > (1u << 30) ? (1u << 30) : n;
    uv_buf_t buf = uv_buf_init((char *)p, (unsigned)want);
    ssize_t w = uv_fs_write(NULL, &req, 1, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (w == UV_EINTR || w == UV_EAGAIN) continue;
    /* EFAULT: the kernel could not read the section's page to copy out: it shrank. */
    if (w == UV_EFAULT) return BM_ETRUNCATED;
    if (w < 0) {
      o->oserr = (int)w;
      return w == UV_EPIPE ? CAT_EPIPE : BM_EIO;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int cat_write(const unsigned char *p, size_t n, void *arg) {
  cat_out_t *o = arg;
  if (o->xxh == NULL) return cat_write_out(p, n, o);
  /* Verifying: what goes out is hashed again, since a writer may change the payload
   * between the verifying pass and this one, and exit 0 must mean verified bytes went
   * out. Hashed and written from one private copy: the shared pages may change between
   * a hash of them and the kernel's copy of them. */
  while (n > 0) {
    size_t k = n < sizeof(o->buf) ? n : sizeof(o->buf);
    int err;
    memcpy(o->buf, p, k);
    bm_xxh3_update(o->xxh, o->buf, k);
    if ((err = cat_write_out(o->buf, k, o)) != 0) return err;
    p += k;
    n -= k;
  }
  return 0;
}

static int cat_window(const unsigned char *p, size_t n, uint64_t offset, void *arg) {
  (void)offset;
  return cat_write(p, n, arg);
}

int ds_wait(const char *cmd, const char *name, const char *text, unsigned flags,
            bm_dataset_t **ds, bm_dataset_info_t *info, int *err) {
  char *end;
  double s = strtod(text, &end);
  if (end == text || *end != '\0' || !isfinite(s) || s < 0 || s > 1e9)
    return cli_usage(cmd, "--wait '%s': expected seconds, a number from 0 (e.g. 30 or 0.5)", text);
  *err = bm_dataset_wait_open(ds, name, flags, s, info);
  if (*err == BM_ETIMEDOUT) {
    cli_lib_error(name, *err); /* the library's words: how long, and the state last seen */
    return EXIT_FAILED;
  }
  return -1;
}

int cmd_cat(int argc, char **argv) {
  const char *o_raw = NULL, *o_noverify = NULL, *o_wait = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--raw", 0, &o_raw}, {"--no-verify", 0, &o_noverify},
                            {"--wait", 1, &o_wait}};
  static cat_out_t out; /* 1 MiB: not on the stack */
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  bm_source_t *src = NULL;
  int npos, rc, err, verify;
  uint64_t length, h2 = 0;

  rc = cli_parse("cat", argc, argv, opts, 3, pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("cat", "missing NAME");
  if (bm_name_check(pos[0]) != 0)
    return cli_usage("cat", "'%s': %s", pos[0], bm_errmsg(BM_ENAME));
  if (o_wait != NULL && o_raw != NULL) return cli_usage("cat", "--wait waits for a dataset: not with --raw");
  verify = !o_raw && !o_noverify;
  cli_ignore_sigpipe();
  plat_binary_stdout();
  memset(&info, 0, sizeof(info));
  if (o_raw) {
    /* Every mapped byte, of whatever the section holds. */
    if ((err = bm_section_open(&src, pos[0], BM_ACCESS_READ)) != 0 ||
        (err = bm_source_size(src, &length)) != 0) {
      bm_source_close(src);
      return ds_report(pos[0], err);
    }
  } else {
    /* Verified first (bm_dataset_verify), then written from private copies that are hashed
     * again, since a writer may change the payload between the verifying pass and this one,
     * and exit 0 must mean verified bytes went out. */
    if (o_wait != NULL) {
      rc = ds_wait("cat", pos[0], o_wait, verify ? BM_OPEN_VERIFY : 0, &ds, &info, &err);
      if (rc >= 0) return rc;
    } else {
      err = bm_dataset_open(&ds, pos[0], verify ? BM_OPEN_VERIFY : 0, &info);
    }
    if (err != 0) return ds_report(pos[0], err);
    src = bm_dataset_source(ds);
    length = info.bytes;
    if (verify && (out.xxh = bm_xxh3_new()) == NULL) {
      cli_error("cat", "out of memory");
      bm_dataset_close(ds);
      return EXIT_FAILED;
    }
  }
  /* Bounded, prefaulted, guarded windows: a section cut short by another process is
   * BM_ETRUNCATED, never a SIGBUS. */
  err = length == 0 ? 0 : bm_window_walk(src, 0, length, cat_window, &out);
  if (out.xxh != NULL) {
    h2 = bm_xxh3_digest(out.xxh);
    bm_xxh3_free(out.xxh);
    out.xxh = NULL;
  }
  if (ds != NULL) bm_dataset_close(ds);
  else bm_source_close(src);
  if (err == CAT_EPIPE) {
    cli_error("cat", "stdout: the reader closed the pipe");
    return EXIT_FAILED;
  }
  if (err != 0 && out.oserr != 0) {
    cli_error("cat", "stdout: %s", uv_strerror(out.oserr));
    return EXIT_FAILED;
  }
  if (err == BM_ETRUNCATED) {
    cli_error(pos[0], "the section shrank while it was written out");
    return EXIT_FAILED;
  }
  if (err != 0) {
    cli_lib_error(pos[0], err);
    return EXIT_FAILED;
  }
  if (verify && h2 != info.xxh3) {
    cli_error(pos[0], "the payload changed while it was written out: it hashed to %016llx, "
              "the trailer says %016llx", (unsigned long long)h2, (unsigned long long)info.xxh3);
    return EXIT_FAILED;
  }
  return EXIT_DONE;
}
