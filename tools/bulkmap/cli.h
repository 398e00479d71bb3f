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
  const char *usage; /* the synopsis line of DESIGN section 3 */
  const char *help;  /* what it does, and its options */
} cli_cmd_t;

/* "bulkmap: CONTEXT: MESSAGE" on stderr. */
void cli_error(const char *context, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_verror(const char *context, const char *fmt, va_list ap);
/* Reports a library error: message, name and the raw OS error when there is one. */
void cli_lib_error(const char *context, int err);
/* The same with the OS error given (one that happened on another thread). */
void cli_lib_error_os(const char *context, int err, int os);
/* Prints the usage of a command to stderr and returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...);
/* --help for a command, on stdout. */
int cli_help(const char *cmd);
/* Exit status for a library error: usage (2) for bad names, else failed (1). */
int cli_exit_for(int err);

/* Options: a table of flags, parsed in order; positionals collected. */
typedef struct cli_opt_s {
  const char *flag;  /* "--window" */
  int takes_value;
  const char **value;/* where the value goes (or "1" for a plain flag) */
} cli_opt_t;
/* Parses argv[1..] (argv[0] is the command name). Fills positionals (at most npos, else
 * usage error). Returns 0, EXIT_USAGE after printing why, or -1 when --help was asked
 * (and printed). Each flag may be given once. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt_t *opts, int nopts,
              const char **pos, int npos, int *npos_out);
/* Parses a SIZE option value; prints the error and returns EXIT_USAGE when bad. */
int cli_size(const char *cmd, const char *flag, const char *text, uint64_t *out);

/* Output: human `key: value` lines or one JSON object. */
typedef struct cli_out_s {
  int json;
  int fields;  /* fields written so far in the current JSON object level */
  int depth;
} cli_out_t;
void out_begin(cli_out_t *o, int json);
void json_string(const char *s); /* a quoted, escaped JSON string (always valid UTF-8) */
void out_str(cli_out_t *o, const char *key, const char *val); /* NULL: JSON null */
void out_u64(cli_out_t *o, const char *key, uint64_t v);
void out_i64(cli_out_t *o, const char *key, int64_t v);
void out_f(cli_out_t *o, const char *key, double v, int decimals);
void out_bool(cli_out_t *o, const char *key, int v);
void out_hex64(cli_out_t *o, const char *key, uint64_t v);
void out_obj_begin(cli_out_t *o, const char *key); /* nested object: "key.sub: v" in human form */
void out_obj_end(cli_out_t *o);
void out_arr_u64(cli_out_t *o, const char *key, const uint64_t *v, int n);
void out_end(cli_out_t *o);

/* Progress bar on stderr (only when it is a terminal and not disabled). */
typedef struct cli_progress_s {
  int on;
  double t0;
  uint64_t total;
} cli_progress_t;
void progress_init(cli_progress_t *p, int enabled, uint64_t total);
void progress_draw(cli_progress_t *p, uint64_t done);
void progress_clear(cli_progress_t *p);

/* Seconds from a monotonic clock. */
double cli_now(void);
/* Threads: the pool size from --threads (validated) or the CPU count; sets
 * UV_THREADPOOL_SIZE before the pool starts. Returns 0 or EXIT_USAGE. */
int cli_threads(const char *cmd, const char *text, unsigned *out);
/* Human-readable large-page outcome into the output. */
void out_large(cli_out_t *o, const bm_large_t *l);
/* Ignores SIGPIPE (writes to a closed pipe become errors) where that exists. */
void cli_ignore_sigpipe(void);

/* XXH3-64 of a byte stream, as xxhsum -H3 (AVX2 where the CPU has it). */
typedef struct cli_hash_s cli_hash_t;
cli_hash_t *hash_new(void); /* NULL when out of memory */
void hash_update(cli_hash_t *h, const void *p, size_t n);
uint64_t hash_digest(const cli_hash_t *h);
void hash_free(cli_hash_t *h); /* NULL is ignored */

/* Counting kernels (AVX2 where cli_cpu_avx2 says the CPU has it). */
int cli_cpu_avx2(void);
uint64_t count_byte(const unsigned char *p, size_t n, unsigned char c);
/* Finds the first occurrence of lit (len >= 1) in [p, p+n); NULL when none. */
const unsigned char *find_literal(const unsigned char *p, size_t n, const unsigned char *lit,
                                  size_t len);

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
