/* Streams read, not mapped (src/os.h): a pipe, a FIFO, a terminal, a socket or a file the
 * caller holds open, waited on with poll so that a read blocked on a silent writer still
 * sees a cancel (no signal, no EINTR needed). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

/* A descriptor that is not open for reading: EBADF, as read(2) says it. */
static int posix_stream_badf(void) {
  bm__set_os_error(EBADF);
  return BM_EINVAL;
}

int bm__os_stream_check(int fd) {
  struct stat st;
  int fl;
  if (fd < 0) return posix_stream_badf();
  if ((fl = fcntl(fd, F_GETFL)) < 0) return errno == EBADF ? posix_stream_badf() : bm__posix_error(errno);
  /* A write-only end would never poll readable: refused here, not waited on forever. */
  if ((fl & O_ACCMODE) == O_WRONLY) return posix_stream_badf();
  if (fstat(fd, &st) != 0) return bm__posix_error(errno);
  if (S_ISDIR(st.st_mode)) return bm__set_os_error(EISDIR), BM_EISDIR;
  return 0;
}

int bm__os_stream_read(int fd, void *buf, size_t n, unsigned ms, size_t *got) {
  struct pollfd pf;
  ssize_t r;
  int e;
  *got = 0;
  pf.fd = fd;
  pf.events = POLLIN;
  pf.revents = 0;
  r = poll(&pf, 1, (int)ms);
  if (r < 0) {
    if (errno == EINTR || errno == EAGAIN) return BM_ETIMEDOUT;
    return bm__posix_error(errno);
  }
  if (r == 0) return BM_ETIMEDOUT;
  if (pf.revents & POLLNVAL) return posix_stream_badf();
  /* POLLHUP and POLLERR too: the read says what there is (the end, or the error). */
  r = read(fd, buf, n);
  if (r >= 0) {
    *got = (size_t)r;
    return 0;
  }
  e = errno;
  if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK) return BM_ETIMEDOUT;
  if (e == EBADF) return posix_stream_badf();
  if (e == EISDIR) return bm__set_os_error(e), BM_EISDIR;
  bm__set_os_error(e);
  return BM_EIO;
}

int bm__os_stream_open(const char *path, int *h, uint64_t *size) {
  struct stat st;
  int fd;
  /* O_NONBLOCK: a FIFO opens at once, writer or not (read then waits in poll). */
  do fd = bm__sys_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return bm__posix_error(errno);
  if (bm__sys_fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return bm__posix_error(e);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return bm__set_os_error(EISDIR), BM_EISDIR;
  }
  *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
  *h = fd;
  return 0;
}

void bm__os_stream_close(int h) {
  if (h >= 0) close(h);
}
