/* The tool's signals and limits: one handler for every terminating signal, which ends the
 * process at once or, deferred, only notes the signal for a clean cancel (cli.h says
 * when); SIGPIPE ignored; the CPU time limit given a margin. What differs by platform is
 * plat.h's. */
#include <signal.h>
#include <string.h>
#include "cli.h"
#include "plat.h"

void cli_ignore_sigpipe(void) { plat_ignore_sigpipe(); }

/* Signals: one handler for every terminating signal (plat_signals); see cli.h. */
static volatile sig_atomic_t cli_sig_caught, cli_sig_defer;
void (*volatile cli_signal_wake)(void);

const char *cli_signal_name(int signum) {
  int i;
  for (i = 0; i < plat_nsignals; i++)
    if (plat_signals[i].signum == signum) return plat_signals[i].name;
  return "a signal";
}

int cli_signal_status(int signum) { return 128 + signum; }

int cli_signal_caught(void) { return cli_sig_caught; }

int cli_signals_defer(int on) {
  int was = cli_sig_defer;
  cli_sig_defer = on;
  return was;
}

static void cli_on_signal(int signum) {
  plat_signal_rearm(signum, cli_on_signal);
  if (!cli_sig_defer) {
    /* Nothing to clean up: say so and end, with async-signal-safe calls only. */
    static const char pre[] = "bulkmap: ", mid[] = ": interrupted by ";
    const char *cmd = cli_command, *name = cli_signal_name(signum);
    plat_write_stderr(pre, sizeof(pre) - 1);
    plat_write_stderr(cmd, strlen(cmd));
    plat_write_stderr(mid, sizeof(mid) - 1);
    plat_write_stderr(name, strlen(name));
    plat_write_stderr("\n", 1);
    if (cli_json_on && !cli_json_begun) {
      /* --json: the error object, if nothing of the result was begun. */
      static const char j1[] = "{\"error\":{\"code\":\"EINTERRUPTED\",\"message\":\"interrupted by ",
                        j2[] = "\",\"context\":\"", j3[] = "\"}}\n";
      plat_write_stdout(j1, sizeof(j1) - 1);
      plat_write_stdout(name, strlen(name));
      plat_write_stdout(j2, sizeof(j2) - 1);
      plat_write_stdout(cmd, strlen(cmd));
      plat_write_stdout(j3, sizeof(j3) - 1);
    }
    plat_exit_now(cli_signal_status(signum));
  }
  if (cli_sig_caught == 0) cli_sig_caught = signum;
  if (cli_signal_wake != NULL) cli_signal_wake();
}

void cli_signals_ensure(void) {
  if (!plat_signals_installed(cli_on_signal)) cli_signals_init();
}

void cli_signals_init(void) { plat_signals_install(cli_on_signal); }

/* Under `ulimit -t` with soft = hard, the kernel's SIGXCPU at the soft limit comes with
 * its SIGKILL at the same second: no time to clean up. The soft limit is lowered (always
 * allowed) to leave a margin, so that SIGXCPU, a terminating signal handled like the
 * others, comes first. A margin of two seconds where the limit allows it: the CPU time of
 * every thread counts, and a load on two cores spends two seconds a second. */
int cli_limits_init(void) {
  uint64_t soft, hard, want;
  double used;
  if (plat_cpu_limit(&soft, &hard, &used) != 0 || soft < hard) return 0;
  want = hard >= 4 ? hard - 2 : hard >= 2 ? hard - 1 : 0;
  if ((double)want <= used + 0.1) {
    cli_error(cli_command, "the CPU time limit (ulimit -t %llu) leaves no time to finish and clean "
              "up (%.1f s used): raise it to at least %llu", (unsigned long long)hard, used,
              (unsigned long long)(hard < 2 ? 2 : hard + 1));
    return EXIT_FAILED;
  }
  (void)plat_cpu_limit_set_soft(want);
  return 0;
}
