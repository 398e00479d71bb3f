/* scan_stdin: XXH3-64 of standard input (as `xxhsum -H3` prints it) and its lines, by the
 * library's scan of a stream: a pipe, a FIFO, a file or a terminal, read in bounded
 * buffers and counted on the library's threads. Ctrl-C cancels it cleanly.
 *
 *   cc scan_stdin.c $(pkg-config --cflags --libs bulkmap) -o scan_stdin
 *   some_command | ./scan_stdin */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <bulkmap.h>
#ifdef _WIN32
#include <windows.h>
#endif

static volatile sig_atomic_t stop;

static void on_interrupt(int sig) {
  (void)sig;
  stop = 1; /* the scan sees it within about 20 ms, even while a read waits */
}

int main(void) {
  bm_scan_opts_t o;
  bm_scan_result_t r;
  int err;

  bm_scan_opts_init(&o); /* to the end of the stream */
  o.flags = BM_SCAN_HASH | BM_SCAN_LINES;
  o.cancel = &stop;
  signal(SIGINT, on_interrupt);
#ifdef _WIN32
  err = bm_scan_fd(GetStdHandle(STD_INPUT_HANDLE), &o, &r);
#else
  err = bm_scan_fd(0, &o, &r);
#endif
  if (err != 0) {
    fprintf(stderr, "scan_stdin: %s (%s, OS error %d)\n", bm_strerror(err), bm_err_name(err),
            r.os_error);
    return err == BM_ECANCELED ? 130 : 1;
  }
  printf("xxh3: %016" PRIx64 "\nbytes: %" PRIu64 "\nlines: %" PRIu64 "\n", r.xxh3, r.bytes,
         r.lines);
  return 0;
}
