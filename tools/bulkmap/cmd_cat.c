/* bulkmap cat: writes a dataset's payload to stdout after verifying its checksum. */
#include <string.h>
#include <uv.h>
#include "dataset.h"
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

#define CAT_EPIPE (-1000) /* the reader went away */

static int cat_hash(const unsigned char *p, size_t n, void *arg) {
  hash_update(arg, p, n);
  return 0;
}

typedef struct {
  int oserr;         /* libuv error of a failed write to stdout */
  cli_hash_t *xxh; /* hashes what is written, when verifying */
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
    hash_update(o->xxh, o->buf, k);
    if ((err = cat_write_out(o->buf, k, o)) != 0) return err;
    p += k;
    n -= k;
  }
  return 0;
}

int cmd_cat(int argc, char **argv) {
  const char *o_raw = NULL, *o_noverify = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--raw", 0, &o_raw}, {"--no-verify", 0, &o_noverify}};
  dataset_t d;
  static cat_out_t out; /* 1 MiB: not on the stack */
  int npos, rc, err;
  uint64_t length, h2 = 0;

  rc = cli_parse("cat", argc, argv, opts, 2, pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("cat", "missing NAME");
  if ((rc = dataset_open("cat", pos[0], &d)) != 0) return rc;
  cli_ignore_sigpipe();
#ifdef _WIN32
  _setmode(1, _O_BINARY);
#endif
  if (o_raw) {
    length = d.size;
  } else {
    if (d.decode == BM_ENOTDATASET) {
      cli_error(pos[0], "not a bulkmap dataset (--raw writes its bytes as they are)");
      dataset_close(&d);
      return EXIT_FAILED;
    }
    if (d.decode != 0) {
      cli_error(pos[0], "%s", bm_strerror(d.decode));
      dataset_close(&d);
      return EXIT_FAILED;
    }
    if ((err = bm_trailer_check_state(&d.t)) != 0) {
      cli_error(pos[0], "%s (state: %s)", bm_strerror(err), bm_state_name((int)d.t.state));
      dataset_close(&d);
      return EXIT_FAILED;
    }
    length = d.t.payload_size;
    if (!o_noverify) {
      cli_hash_t *x = hash_new();
      uint64_t h;
      if (x == NULL) {
        cli_error("cat", "out of memory");
        dataset_close(&d);
        return EXIT_FAILED;
      }
      err = dataset_walk(&d, length, cat_hash, x);
      h = hash_digest(x);
      hash_free(x);
      if (err != 0) {
        cli_lib_error(pos[0], err);
        dataset_close(&d);
        return EXIT_FAILED;
      }
      if (h != d.t.xxh3) {
        cli_error(pos[0], "checksum mismatch: payload hashes to %016llx, trailer says %016llx",
                  (unsigned long long)h, (unsigned long long)d.t.xxh3);
        dataset_close(&d);
        return EXIT_FAILED;
      }
    }
  }
  if (!o_raw && !o_noverify) {
    if ((out.xxh = hash_new()) == NULL) {
      cli_error("cat", "out of memory");
      dataset_close(&d);
      return EXIT_FAILED;
    }
  }
  err = dataset_walk(&d, length, cat_write, &out);
  if (out.xxh != NULL) {
    h2 = hash_digest(out.xxh);
    hash_free(out.xxh);
  }
  dataset_close(&d);
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
  if (out.xxh != NULL && h2 != d.t.xxh3) {
    cli_error(pos[0], "the payload changed while it was written out: it hashed to %016llx, "
              "the trailer says %016llx", (unsigned long long)h2, (unsigned long long)d.t.xxh3);
    return EXIT_FAILED;
  }
  return EXIT_DONE;
}
