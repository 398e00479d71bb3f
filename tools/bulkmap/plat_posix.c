/* The tool's platform functions on POSIX (plat.h): sigaction, ioctl, rlimits, mount. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mount.h>
#endif
#include "plat.h"

const plat_signal_t plat_signals[] = {
  {SIGINT, "SIGINT"},   {SIGTERM, "SIGTERM"},     {SIGHUP, "SIGHUP"},   {SIGQUIT, "SIGQUIT"},
  {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},     {SIGALRM, "SIGALRM"}, {SIGVTALRM, "SIGVTALRM"},
  {SIGPROF, "SIGPROF"}, {SIGXCPU, "SIGXCPU"},
};
const int plat_nsignals = (int)(sizeof(plat_signals) / sizeof(plat_signals[0]));

void plat_signals_install(void (*handler)(int)) {
  struct sigaction sa;
  int i;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  sigaction(SIGXFSZ, &sa, NULL);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask); /* one handler at a time */
  for (i = 0; i < plat_nsignals; i++) {
    int s = plat_signals[i].signum;
    struct sigaction old;
    if (sigaction(s, NULL, &old) == 0 && old.sa_handler == SIG_IGN && s != SIGINT &&
        s != SIGTERM && s != SIGQUIT)
      continue;
    sigaction(s, &sa, NULL);
  }
}

int plat_signals_installed(void (*handler)(int)) {
  struct sigaction cur;
  return sigaction(SIGINT, NULL, &cur) == 0 && cur.sa_handler == handler &&
         sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == handler;
}

void plat_signal_rearm(int signum, void (*handler)(int)) {
  (void)signum;
  (void)handler; /* sigaction handlers stay */
}

void plat_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static void plat_write_fd(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void plat_write_stderr(const char *s, size_t n) { plat_write_fd(2, s, n); }

void plat_write_stdout(const char *s, size_t n) { plat_write_fd(1, s, n); }

void plat_exit_now(int status) { _exit(status); }

int plat_term_width(void) {
  struct winsize ws;
  return ioctl(2, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

void plat_keep_std_fds(void) {
  int fd;
  for (fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int got = open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (got >= 0 && got != fd) close(got); /* not the lowest free: leave it */
  }
}

void plat_binary_stdout(void) {}
void plat_binary_stdin(void) {}

int plat_stdin_as_file(int *fdp, char *path, size_t n) {
  static char buf[1 << 20];
  const char *dir = getenv("TMPDIR");
  struct stat sb;
  int w, r, e;
  *fdp = -1;
  if (fstat(0, &sb) == 0 && S_ISREG(sb.st_mode) && lseek(0, 0, SEEK_CUR) == 0) {
    if ((r = fcntl(0, F_DUPFD_CLOEXEC, 3)) < 0) return errno;
    goto named;
  }
  if (dir == NULL || dir[0] == '\0') dir = "/var/tmp";
  w = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (w < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    char tmpl[4096];
    if ((size_t)snprintf(tmpl, sizeof(tmpl), "%s/bulkmap-stdin-XXXXXX", dir) >= sizeof(tmpl)) return ENAMETOOLONG;
    if ((w = mkstemp(tmpl)) >= 0) unlink(tmpl);
  }
  if (w < 0) return errno;
  for (;;) {
    ssize_t got = read(0, buf, sizeof(buf)), put;
    size_t at = 0;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) goto fail;
    /* The end as the first read that returns nothing says it (a terminal's ^D on an empty
     * line is one such read, and asking again would wait for a second ^D). */
    if (got == 0) break;
    while (at < (size_t)got) {
      put = write(w, buf + at, (size_t)got - at);
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) goto fail;
      at += (size_t)put;
    }
  }
  /* Read-only from here: no writer is left (a read lease can be had on it). */
  snprintf(path, n, "/proc/self/fd/%d", w);
  r = open(path, O_RDONLY | O_CLOEXEC);
  e = errno;
  close(w);
  if (r < 0) return e;
named:
  snprintf(path, n, "/proc/self/fd/%d", r);
  *fdp = r;
  return 0;
fail:
  e = errno;
  close(w);
  return e;
}

int plat_fds_available(int n) {
  int fds[16], k = 0, e = 0, i;
  if (n > 16) n = 16;
  for (i = 0; i < n; i++) {
    if ((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
      e = errno;
      break;
    }
    k++;
  }
  for (i = 0; i < k; i++) close(fds[i]);
  return e == EMFILE || e == ENFILE ? e : 0;
}

int plat_cpu_limit(uint64_t *soft, uint64_t *hard, double *used) {
  struct rlimit rl;
  struct rusage ru;
  if (getrlimit(RLIMIT_CPU, &rl) != 0 || rl.rlim_max == RLIM_INFINITY) return -1;
  *hard = (uint64_t)rl.rlim_max;
  *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
  *used = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    *used = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
            ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  return 0;
}

int plat_cpu_limit_set_soft(uint64_t soft) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_CPU, &rl) != 0) return errno;
  rl.rlim_cur = (rlim_t)soft;
  return setrlimit(RLIMIT_CPU, &rl) == 0 ? 0 : errno;
}

int plat_is_root(void) { return geteuid() == 0; }

int plat_group_id(const char *text, unsigned long *gid) {
  struct group *g = getgrnam(text);
  char *end;
  unsigned long v;
  if (g != NULL) {
    *gid = (unsigned long)g->gr_gid;
    return 0;
  }
  v = strtoul(text, &end, 10);
  if (text[0] >= '0' && text[0] <= '9' && *end == '\0' && v == (unsigned long)(gid_t)v) {
    *gid = v;
    return 0;
  }
  return -1;
}

int plat_mount_hugetlbfs(const char *dir, const char *opts) {
#ifdef __linux__
  return mount("none", dir, "hugetlbfs", MS_NOSUID | MS_NODEV, opts) == 0 ? 0 : errno;
#else
  (void)dir;
  (void)opts;
  return ENOSYS;
#endif
}
