/* The bulkmap tool: what its subcommands share (errors, options, output, the loop). */
#ifndef BULKMAP_CLI_H
#define BULKMAP_CLI_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include "bulkmap.h"

enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

typedef struct cli_cmd_s {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *usage;   /* the synopsis line of docs/design.md section 3 */
  const char *summary; /* one line for `bulkmap --help` */
  const char *help;    /* what it does, and one "  --option  what it does" line an option */
} cli_cmd_t;

/* Errors (out.c). "bulkmap: CONTEXT: MESSAGE" on stderr. */
void cli_error(const char *context, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_verror(const char *context, const char *fmt, va_list ap);
/* The same line, for a note on the way (not a failure): never the error of --json's object. */
void cli_note(const char *context, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The code ("ENOROOM": a library error's name; "EUSAGE"...) of the next cli_error, for
 * --json's error object. The run's first cli_error is that object's error, with the
 * message and context as stderr shows them (docs/json.md); one without a code is
 * "EFAILED". cli_lib_error and cli_usage set theirs. */
void cli_error_code(const char *code);
/* Whether the command runs with --json: main() guesses from argv (so that a usage error
 * found before --json was parsed still gets its object); cli_parse says for sure. */
void cli_json_mode(int on);
/* A JSON result was begun on stdout (out_begin does this; a command that prints its
 * object's first brace itself calls it): no error object is written after it. */
void cli_json_started(void);
/* What cli_json_mode and cli_json_started set, read by the signal handler (signals.c). */
extern volatile sig_atomic_t cli_json_on, cli_json_begun;
/* Reports a library error: message, name and the raw OS error when there is one. */
void cli_lib_error(const char *context, int err);
/* The same with the OS error given (one that happened on another thread). */
void cli_lib_error_os(const char *context, int err, int os);
/* The command table (main.c's), for cli_usage and cli_help; set once, before a command
 * runs. */
void cli_commands_set(const cli_cmd_t *table, int n);
/* Prints "bulkmap: CMD: MESSAGE" and the usage of a command to stderr and returns
 * EXIT_USAGE. A user-given name or path in the message goes through %s escaped, as every
 * cli_error message does (a control character cannot forge a line). */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* --help for a command, on stdout (EXIT_USAGE for an unknown command). */
int cli_help(const char *cmd);
/* The candidate nearest to `word` (a typo: one or two letters changed, added, dropped or
 * swapped, or a prefix of it), or NULL when none is near: for "did you mean". */
const char *cli_suggest(const char *word, const char *const *cands, int n);
/* Short options: "-j" stands for "--json" in every command that has --json. Writes the
 * ones among `flags_text` (a help text) as "-c --count, -j --json" into buf; returns how
 * many. */
int cli_short_list(const char *flags_text, char *buf, size_t n);
/* Where the installed documentation is (share/doc/bulkmap beside the tool, or the source
 * tree's docs/ for a build), or NULL. */
const char *cli_docs_dir(void);
/* Exit status for a library error: usage (2) for bad names, else failed (1). */
int cli_exit_for(int err);

/* Options (cli.c): a table of flags, parsed in order; positionals collected. */
typedef struct cli_opt_s {
  const char *flag;  /* "--window" */
  int takes_value;   /* 0: a plain flag; 1: a value; N > 1: a value, up to N times, into
                        value[0..N) (an array the caller zeroed: the given ones first) */
  const char **value;/* where the value goes (or "1" for a plain flag) */
} cli_opt_t;
/* Parses argv[1..] (argv[0] is the command name). Fills positionals (at most npos, else
 * usage error). Returns 0, EXIT_USAGE after printing why (an unknown option with the
 * nearest known one), or -1 when --help was asked (and printed). Each flag may be given
 * once, unless its takes_value is above 1. A short option (cli_short_list) stands for its long one
 * where the command has that. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt_t *opts, int nopts,
              const char **pos, int npos, int *npos_out);
/* Parses a SIZE option value; prints the error and returns EXIT_USAGE when bad. */
int cli_size(const char *cmd, const char *flag, const char *text, uint64_t *out);
/* Threads: the pool size from --threads (validated) or the CPU count; sets
 * UV_THREADPOOL_SIZE before the pool starts. Returns 0 or EXIT_USAGE. */
int cli_threads(const char *cmd, const char *text, unsigned *out);

/* Output (out.c): human `key: value` lines or one JSON object. */
typedef struct cli_out_s {
  int json;
  int fields;  /* fields written so far in the current JSON object level */
  int depth;
} cli_out_t;
void out_begin(cli_out_t *o, int json);
void cli_json_string(const char *s); /* a quoted, escaped JSON string (always valid UTF-8) */
/* A name or path for human output: control characters as C escapes (\n, \t, \x1b), so
 * that a name cannot forge a line; out_str and cli_error do this already. */
void cli_put_escaped(FILE *f, const char *s);
void out_str(cli_out_t *o, const char *key, const char *val); /* NULL: JSON null */
/* Human output shows sizes, rates and times readably after the number (keys unchanged,
 * JSON unchanged): a key that names bytes ("bytes", "length", "window", "page_size",
 * "*_bytes", ...) as "67108864 (64.0 MiB)", "*bytes_per_second" as "... (1.2 GiB/s)",
 * "seconds" and "*_seconds" as "... (1.5 ms)". */
void out_u64(cli_out_t *o, const char *key, uint64_t v);
/* A value under a key that is data (a literal counted): escaped in both forms. */
void out_u64_named(cli_out_t *o, const char *key, uint64_t v);
void out_i64(cli_out_t *o, const char *key, int64_t v);
void out_f(cli_out_t *o, const char *key, double v, int decimals);
void out_bool(cli_out_t *o, const char *key, int v);
void out_hex64(cli_out_t *o, const char *key, uint64_t v);
void out_obj_begin(cli_out_t *o, const char *key); /* nested object: "key.sub: v" in human form */
void out_obj_end(cli_out_t *o);
void out_arr_u64(cli_out_t *o, const char *key, const uint64_t *v, int n);
/* A number that may be missing: NaN or infinite is JSON null (human: "-"). */
void out_num(cli_out_t *o, const char *key, double v, int decimals);
/* An array of objects: out_arr_begin, then out_elem_begin ... out_elem_end for each. */
void out_arr_begin(cli_out_t *o, const char *key);
void out_elem_begin(cli_out_t *o);
void out_elem_end(cli_out_t *o);
void out_arr_end(cli_out_t *o);
/* A time: JSON the number of seconds, human cli_format_time's words. */
void out_time(cli_out_t *o, const char *key, int64_t t);
/* Human-readable large-page outcome into the output. */
void out_large(cli_out_t *o, const bm_large_t *l);
void out_end(cli_out_t *o);
/* A command that fails after it began its object (stat of a dataset not ready, scan of
 * several files one of which failed): the run's first error under "error", as the error
 * object has it, when JSON and rc is not EXIT_DONE. Before out_end. */
void out_error(cli_out_t *o, int rc);

/* Progress bar on stderr (progress.c; only when it is a terminal and not disabled). */
typedef struct cli_progress_s {
  int on;
  double t0;
  uint64_t total; /* 0: not known (a stream) */
  int drawn;      /* columns on screen */
} cli_progress_t;
void progress_init(cli_progress_t *p, int enabled, uint64_t total);
void progress_draw(cli_progress_t *p, uint64_t done);
void progress_clear(cli_progress_t *p);
/* The progress line for a terminal `width` columns wide (at most width-1 characters);
 * returns its length. */
int progress_format(char *line, size_t n, int width, double elapsed, uint64_t done,
                    uint64_t total);

/* Seconds from a monotonic clock. */
double cli_now(void);
/* Bytes as people read them ("512.0 B", "64.0 MiB": one decimal, units of 1024). */
void cli_human_bytes(char *buf, size_t n, double v);
/* A time in seconds since 1970 for human eyes, "2024-05-01T12:00:00Z"; outside 1970-9999
 * "N (invalid time)" and -1 (JSON keeps the number). */
int cli_format_time(char *buf, size_t n, int64_t t);

/* Signals (signals.c). main() calls cli_signals_init once: SIGPIPE and SIGXFSZ are ignored (a write
 * to a closed pipe or past ulimit -f becomes an error: EPIPE, EFBIG), and the terminating
 * signals that can be caught (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM,
 * SIGVTALRM, SIGPROF, SIGXCPU; Windows: SIGINT, SIGBREAK, SIGTERM) are handled:
 * - by default a signal ends the process at once with exit status 128+N (a command with
 *   nothing to clean up needs nothing more);
 * - after cli_signals_defer(1) (cli_run and cli_wait_for_signal do it for their duration)
 *   a signal is only noted: the command sees it with cli_signal_caught(), cleans up and
 *   returns cli_signal_status(signum). A command that makes something that must not be
 *   left half-made defers from before it makes it until it is done or removed. */
void cli_signals_init(void);
/* Ignores SIGPIPE (writes to a closed pipe become errors) where that exists. main() does
 * this for every command (cli_signals_init). */
void cli_ignore_sigpipe(void);
/* Resource limits the kernel enforces with SIGKILL, checked before a command starts:
 * under `ulimit -t` with soft = hard the soft limit is lowered by a margin, so that
 * SIGXCPU (handled like any terminating signal: cleanup, exit 152) comes before the
 * kill. Returns 0, or EXIT_FAILED after saying why when the CPU time left cannot cover
 * the margin. main() calls it once, after cli_signals_init. */
int cli_limits_init(void);
/* cli_signals_init again if a command put handlers of its own in (cli_run does this). */
void cli_signals_ensure(void);
/* Sets deferring on (1) or off (0); returns the previous setting. Turning it off with a
 * signal noted does not end the process: the caller acts on cli_signal_caught(). */
int cli_signals_defer(int on);
/* The first terminating signal noted (0: none). */
int cli_signal_caught(void);
/* Exit status for a signal: 128+N (SIGINT 130, SIGTERM 143, SIGHUP 129). */
int cli_signal_status(int signum);
/* "SIGTERM" etc. */
const char *cli_signal_name(int signum);
/* Called by the signal handler in deferred mode (async-signal-safe), set by run.c to wake
 * its loop. */
extern void (*volatile cli_signal_wake)(void);

/* Blocks until a terminating signal arrives (Ctrl-C on Windows) and returns its number
 * (signals deferred meanwhile); returns at once with the signal already noted if there
 * is one, and 0 when the loop cannot be had (after saying why on stderr). On the tool's
 * one libuv loop (run.c), so that a command need not include run.h to hold. */
int cli_wait_for_signal(void);

/* Flushes stdout; returns 0, or the errno of the first failed write of the result (for a
 * command that must act on it before it ends, e.g. load --hold stops holding). */
int cli_out_failed(void);
/* The end of main(): with --json, a failure (rc not 0) with no JSON object begun writes
 * {"error": {"code", "message", "context"}} (docs/json.md). Flushes and closes stdout. When a command succeeded but its result
 * could not be written (disk full, closed pipe, ulimit -f), prints why and returns
 * EXIT_FAILED; else returns rc. */
int cli_finish(const char *cmd, int rc);
/* The name of the command being run ("bulkmap" before one is chosen), for messages. */
extern const char *cli_command;

/* The subcommands. */
int cmd_info(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_setup(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
