/* bulkmap cat: writes a dataset's payload to stdout after verifying its checksum. */
#define XXH_INLINE_ALL
#include <string.h>
#include <xxhash.h>
#include <uv.h>
#include "dataset.h"
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

#define CAT_EPIPE (-1000) /* the reader went away */

static int cat_hash(const unsigned char *p, size_t n, void *arg) {
  XXH3_64bits_update(arg, p, n);
  return 0;
}

static int cat_write(const unsigned char *p, size_t n, void *arg) {
  int *oserr = arg;
  while (n > 0) {
    uv_fs_t req;
    size_t want = n > (1u << 30) ? (1u << 30) : n;
    uv_buf_t buf = uv_buf_init((char *)p, (unsigned)want);
    ssize_t w = uv_fs_write(NULL, &req, 1, &buf, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (w == UV_EINTR || w == UV_EAGAIN) continue;
    if (w < 0) {
      *oserr = (int)w;
      return w == UV_EPIPE ? CAT_EPIPE : BM_EIO;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int cmd_cat(int argc, char **argv) {
  const char *o_raw = NULL, *o_noverify = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--raw", 0, &o_raw}, {"--no-verify", 0, &o_noverify}};
  dataset_t d;
  int npos, rc, err, uverr = 0;
  uint64_t length;

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
      XXH3_state_t *x = XXH3_createState();
      uint64_t h;
      if (x == NULL || XXH3_64bits_reset(x) != XXH_OK) {
        cli_error("cat", "out of memory");
        dataset_close(&d);
        return EXIT_FAILED;
      }
      err = dataset_walk(&d, length, cat_hash, x);
      h = XXH3_64bits_digest(x);
      XXH3_freeState(x);
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
  err = dataset_walk(&d, length, cat_write, &uverr);
  dataset_close(&d);
  if (err == CAT_EPIPE) {
    cli_error("cat", "stdout: the reader closed the pipe");
    return EXIT_FAILED;
  }
  if (err != 0 && uverr != 0) {
    cli_error("cat", "stdout: %s", uv_strerror(uverr));
    return EXIT_FAILED;
  }
  if (err != 0) {
    cli_lib_error(pos[0], err);
    return EXIT_FAILED;
  }
  return EXIT_DONE;
}
