/* The cancel wake-up of a stream read on Windows (wake.h): none. An anonymous pipe cannot be
 * waited on together with another handle, so a read ends when data or the end comes. */
#include "wake.h"

int bm__uv_wake_open(int wake[2]) {
  wake[0] = wake[1] = -1;
  return 0;
}

void bm__uv_wake_close(int wake[2]) { wake[0] = wake[1] = -1; }

void bm__uv_wake_signal(const int wake[2]) { (void)wake; }

int bm__uv_wake_wait(const int wake[2], uv_file fd, int *os) {
  (void)wake;
  (void)fd;
  (void)os;
  return 0;
}
