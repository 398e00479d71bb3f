/* The tool's platform functions on Windows (plat.h): the CRT's signals (Ctrl-C is SIGINT,
 * Ctrl-Break SIGBREAK), the console's width; no rlimits, no hugetlbfs. */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdlib.h>
#include <windows.h>
#include "plat.h"

const plat_signal_t plat_signals[] = {
  {SIGINT, "SIGINT"}, {SIGTERM, "SIGTERM"}, {SIGBREAK, "SIGBREAK"},
};
const int plat_nsignals = (int)(sizeof(plat_signals) / sizeof(plat_signals[0]));

void plat_signals_install(void (*handler)(int)) {
  int i;
  for (i = 0; i < plat_nsignals; i++) signal(plat_signals[i].signum, handler);
}

int plat_signals_installed(void (*handler)(int)) {
  (void)handler;
  return 0; /* the CRT cannot be asked without changing it: install again */
}

void plat_signal_rearm(int signum, void (*handler)(int)) { signal(signum, handler); }

void plat_ignore_sigpipe(void) {}

void plat_write_stderr(const char *s, size_t n) { _write(2, s, (unsigned)n); }

void plat_write_stdout(const char *s, size_t n) { _write(1, s, (unsigned)n); }

void plat_exit_now(int status) { _exit(status); }

int plat_term_width(void) {
  CONSOLE_SCREEN_BUFFER_INFO ci;
  if (GetConsoleScreenBufferInfo(GetStdHandle(STD_ERROR_HANDLE), &ci))
    return ci.srWindow.Right - ci.srWindow.Left + 1;
  return 0;
}

void plat_keep_std_fds(void) {}

void plat_binary_stdout(void) { _setmode(1, _O_BINARY); }
void plat_binary_stdin(void) { _setmode(0, _O_BINARY); }

int plat_stdin_as_file(int *fd, char *path, size_t n) {
  (void)path, (void)n;
  *fd = -1;
  return ENOTSUP;
}

int plat_fds_available(int n) {
  (void)n;
  return 0; /* handles are not a small table: libuv's loop gets what it needs */
}

int plat_cpu_limit(uint64_t *soft, uint64_t *hard, double *used) {
  (void)soft;
  (void)hard;
  (void)used;
  return -1;
}

int plat_cpu_limit_set_soft(uint64_t soft) {
  (void)soft;
  return ENOSYS;
}

int plat_is_root(void) { return 0; }

int plat_group_id(const char *text, unsigned long *gid) {
  (void)text;
  (void)gid;
  return -1;
}

int plat_mount_hugetlbfs(const char *dir, const char *opts) {
  (void)dir;
  (void)opts;
  return ENOSYS;
}
