/* uv_scan_stdin: XXH3-64 and lines of standard input (a pipe, a FIFO, a file), scanned by
 * bulkmap_uv from a libuv loop, printed as xxhsum -H3 prints it:
 *     some-command | uv_scan_stdin        XXH3 (stdin) = 0123456789abcdef, then the lines
 * Build: cc -D_FILE_OFFSET_BITS=64 uv_scan_stdin.c $(pkg-config --cflags --libs bulkmap_uv) */
#include <stdio.h>
#include <string.h>
#include <bulkmap_uv.h>

static void on_done(bm_uv_scan_t *s, int status, void *data) {
  (void)s;
  *(int *)data = status;
}

int main(void) {
  bm_uv_scan_t scan;
  bm_uv_scan_item_t in;
  bm_uv_scan_opts_t o;
  int status = -1, err;

  memset(&in, 0, sizeof(in));
  in.path = "-"; /* standard input, read as it comes (a descriptor: path NULL, fd) */
  bm_uv_scan_opts_init(&o); /* to the end of the stream */
  o.scan.flags = BM_SCAN_HASH | BM_SCAN_LINES;
  o.done = on_done;
  o.data = &status;
  if ((err = bm_uv_scan_start(&scan, uv_default_loop(), &in, 1, &o)) != 0) {
    fprintf(stderr, "uv_scan_stdin: %s\n", bm_strerror(err));
    return 1;
  }
  /* Buffers read, counted on libuv's thread pool, hashed in order; done ends the run. */
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  if (status != 0 || in.status != 0) {
    fprintf(stderr, "uv_scan_stdin: %s (OS error %d)\n",
            bm_strerror(status ? status : in.status), in.os_error);
    return 1;
  }
  printf("XXH3 (stdin) = %016llx\n", (unsigned long long)in.result.xxh3);
  printf("%llu lines, %llu bytes\n", (unsigned long long)in.result.lines,
         (unsigned long long)in.result.bytes);
  return 0;
}
