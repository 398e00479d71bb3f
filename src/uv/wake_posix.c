/* The cancel wake-up of a stream read on POSIX (wake.h): a pipe, polled with the stream. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include "wake.h"

int bm__uv_wake_open(int wake[2]) {
  wake[0] = wake[1] = -1;
  return uv_pipe(wake, 0, 0) == 0 ? 0 : BM_EOS;
}

void bm__uv_wake_close(int wake[2]) {
  if (wake[0] >= 0) close(wake[0]);
  if (wake[1] >= 0) close(wake[1]);
  wake[0] = wake[1] = -1;
}

void bm__uv_wake_signal(const int wake[2]) {
  ssize_t n;
  if (wake[1] < 0) return;
  do n = write(wake[1], "x", 1);
  while (n < 0 && errno == EINTR);
}

int bm__uv_wake_wait(const int wake[2], uv_file fd, int *os) {
  struct pollfd pf[2] = {{fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
  if (wake[0] < 0) return 0;
  for (;;) {
    if (poll(pf, 2, -1) >= 0) break;
    if (errno == EINTR) continue;
    *os = errno;
    return BM_EOS;
  }
  return pf[1].revents != 0 ? BM_EBUSY : 0;
}
