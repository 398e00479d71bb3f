/* The tool's shared pieces: errors, usage and help from the command table main.c hands in,
 * option parsing, signals and limits, key: value / JSON output, progress. It never calls
 * into main.c or a command; what differs by platform is behind plat.h. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"
#include "plat.h"


const char *cli_command = "bulkmap";

/* The command table, handed in by main() (cli_commands_set). */
static const cli_cmd_t *cli_cmds;
static int cli_ncmds;

void cli_commands_set(const cli_cmd_t *table, int n) {
  cli_cmds = table;
  cli_ncmds = n;
}

static const cli_cmd_t *cli_find(const char *cmd) {
  int i;
  for (i = 0; i < cli_ncmds; i++)
    if (strcmp(cli_cmds[i].name, cmd) == 0) return &cli_cmds[i];
  return NULL;
}

/* Short options: each stands for its long one in every command that has that. */
static const struct { char c; const char *flag; } cli_shorts[] = {
  {'a', "--all"},     {'c', "--count"},   {'f', "--force"},   {'g', "--group"},
  {'j', "--json"},    {'l', "--lines"},   {'m', "--mode"},    {'n', "--name"},
  {'o', "--offset"},  {'q', "--no-progress"}, {'s', "--size"}, {'t', "--threads"},
  {'w', "--window"},
};
#define CLI_NSHORTS (int)(sizeof(cli_shorts) / sizeof(cli_shorts[0]))

/* Whether `text` mentions the option `flag` as a whole word ("--json", not "--jsonx"). */
static int cli_mentions(const char *text, const char *flag) {
  const char *p = text;
  size_t n = strlen(flag);
  while ((p = strstr(p, flag)) != NULL) {
    char after = p[n];
    if (!(after >= 'a' && after <= 'z') && after != '-') return 1;
    p += n;
  }
  return 0;
}

int cli_short_list(const char *flags_text, char *buf, size_t n) {
  int i, k = 0;
  size_t used = 0;
  if (n > 0) buf[0] = '\0';
  for (i = 0; i < CLI_NSHORTS; i++) {
    if (!cli_mentions(flags_text, cli_shorts[i].flag)) continue;
    if (used < n)
      used += (size_t)snprintf(buf + used, n - used, "%s-%c %s", k ? ", " : "", cli_shorts[i].c,
                               cli_shorts[i].flag);
    k++;
  }
  return k;
}

/* Optimal string alignment distance (Levenshtein with adjacent swaps: "scna" is 1 from
 * "scan"), for words of at most 63 bytes. */
static int cli_distance(const char *a, const char *b) {
  int d[64][64], i, j, la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 63 || lb > 63) return 99;
  for (i = 0; i <= la; i++) d[i][0] = i;
  for (j = 0; j <= lb; j++) d[0][j] = j;
  for (i = 1; i <= la; i++)
    for (j = 1; j <= lb; j++) {
      int cost = a[i - 1] != b[j - 1], v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

const char *cli_suggest(const char *word, const char *const *cands, int n) {
  const char *best = NULL;
  int i, bestd = 99, wl = (int)strlen(word);
  /* Up to two edits, fewer for short words (one letter of "ls" is half of it). */
  int limit = wl <= 3 ? 1 : 2;
  for (i = 0; i < n; i++) {
    int d = cli_distance(word, cands[i]);
    /* A prefix ("--win" for "--window") is as near as a one-letter slip. */
    if (wl >= 3 && strncmp(cands[i], word, (size_t)wl) == 0 && d > 1) d = 1;
    if (d < bestd) bestd = d, best = cands[i];
  }
  return bestd <= limit && bestd < wl ? best : NULL;
}

#ifndef BULKMAP_DOCDIR_REL
#define BULKMAP_DOCDIR_REL "../share/doc/bulkmap"
#endif

const char *cli_docs_dir(void) {
  static char dir[4096];
  static int done;
  char exe[4000];
  size_t len = sizeof(exe);
  uv_stat_t st;
  uv_fs_t req;
  if (done) return dir[0] ? dir : NULL;
  done = 1;
  /* Installed: share/doc/bulkmap beside the tool's bin/, wherever the prefix is. */
  if (uv_exepath(exe, &len) == 0) {
    char *slash = strrchr(exe, '/');
#ifdef _WIN32
    char *bs = strrchr(exe, '\\');
    if (bs != NULL && (slash == NULL || bs > slash)) slash = bs;
#endif
    if (slash != NULL) {
      *slash = '\0';
      snprintf(dir, sizeof(dir), "%s/" BULKMAP_DOCDIR_REL "/design.md", exe);
      if (uv_fs_stat(NULL, &req, dir, NULL) == 0) {
        /* Shown without "bin/..": the real path reads better. */
        uv_fs_req_cleanup(&req);
        if (uv_fs_realpath(NULL, &req, dir, NULL) == 0 && req.ptr != NULL) {
          snprintf(dir, sizeof(dir), "%s", (const char *)req.ptr);
          uv_fs_req_cleanup(&req);
          if ((len = strlen(dir)) > 10) dir[len - 10] = '\0'; /* "/design.md" */
          return dir;
        }
        snprintf(dir, sizeof(dir), "%s/" BULKMAP_DOCDIR_REL, exe);
        return dir;
      }
      uv_fs_req_cleanup(&req);
    }
  }
#ifdef BULKMAP_SOURCE_DOCS
  /* A build tree: the source's docs/. */
  snprintf(dir, sizeof(dir), "%s/design.md", BULKMAP_SOURCE_DOCS);
  if (uv_fs_stat(NULL, &req, dir, NULL) == 0) {
    uv_fs_req_cleanup(&req);
    snprintf(dir, sizeof(dir), "%s", BULKMAP_SOURCE_DOCS);
    return dir;
  }
  uv_fs_req_cleanup(&req);
#endif
  (void)st;
  dir[0] = '\0';
  return NULL;
}

int cli_help(const char *cmd) {
  const cli_cmd_t *c = cli_find(cmd);
  char shorts[256];
  const char *docs = cli_docs_dir();
  if (c == NULL) return EXIT_USAGE;
  printf("Usage: %s\n%s.\n\n%s\n", c->usage, c->summary, c->help);
  if (cli_short_list(c->help, shorts, sizeof(shorts)) > 0) printf("Short options: %s.\n", shorts);
  printf("\nExit status: 0 done, 1 failed, 2 usage error, 128+N a signal N (SIGINT 130).\n");
  if (docs != NULL) printf("Documentation: %s (design.md, json.md, datasets.md, README.md).\n", docs);
  return 0;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  const cli_cmd_t *c = cli_find(cmd);
  va_list ap;
  va_start(ap, fmt);
  cli_error_code("EUSAGE");
  cli_verror(cmd, fmt, ap);
  va_end(ap);
  if (c != NULL)
    fprintf(stderr, "Usage: %s\nTry 'bulkmap %s --help' for more information.\n", c->usage, cmd);
  return EXIT_USAGE;
}

/* A name or path for human eyes: control characters (a newline in a file name would forge
 * a line of output) are shown as C escapes; everything else as it is. */
void cli_put_escaped(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s, *run = p;
  for (;; p++) {
    if (*p >= 0x20 && *p != 0x7f) continue;
    fwrite(run, 1, (size_t)(p - run), f); /* the plain bytes before, in one go */
    if (*p == '\0') break;
    if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p == '\r') fputs("\\r", f);
    else fprintf(f, "\\x%02x", *p);
    run = p + 1;
  }
}

static void out_key(cli_out_t *o, const char *key);

/* --json's error object (docs/json.md): the run's first error as stderr showed it, the code
 * it was given (cli_error_code), and whether the command runs with --json and has begun
 * its JSON object already. */
static struct {
  int set;
  const char *code;
  int has_context;
  char context[1024];
  char message[4096];
} cli_first;
static const char *cli_next_code;
static volatile sig_atomic_t cli_json_on, cli_json_begun;

void cli_error_code(const char *code) { cli_next_code = code; }

void cli_json_mode(int on) { cli_json_on = on != 0; }

void cli_json_started(void) { cli_json_begun = 1; }

/* cli_put_escaped into a buffer (cut short, at a whole escape, when it does not fit). */
static void cli_escape_into(char *dst, size_t n, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t k = 0;
  for (; *p && k + 5 < n; p++) {
    if (*p >= 0x20 && *p != 0x7f) dst[k++] = (char)*p;
    else if (*p == '\n') dst[k++] = '\\', dst[k++] = 'n';
    else if (*p == '\t') dst[k++] = '\\', dst[k++] = 't';
    else if (*p == '\r') dst[k++] = '\\', dst[k++] = 'r';
    else k += (size_t)snprintf(dst + k, n - k, "\\x%02x", *p);
  }
  if (n > 0) dst[k < n ? k : n - 1] = '\0';
}

static void cli_verror_as(int record, const char *context, const char *fmt, va_list ap) {
  char msg[1024], esc[4096];
  int has_context = context != NULL && context[0] != '\0' && strcmp(context, "bulkmap") != 0;
  const char *code = cli_next_code;
  cli_next_code = NULL;
  fprintf(stderr, "bulkmap: ");
  /* The tool's own name is the prefix already: "bulkmap: missing COMMAND", not twice. */
  if (has_context) {
    cli_put_escaped(stderr, context);
    fputs(": ", stderr);
  }
  vsnprintf(msg, sizeof(msg), fmt, ap);
  /* The whole message escaped, not only the context: it may quote a name or a path the
   * user gave (a rejected one too), and one message is one line. */
  cli_escape_into(esc, sizeof(esc), msg);
  fputs(esc, stderr);
  fputc('\n', stderr);
  if (!record || cli_first.set) return;
  cli_first.set = 1;
  cli_first.code = code;
  cli_first.has_context = has_context;
  if (has_context) cli_escape_into(cli_first.context, sizeof(cli_first.context), context);
  snprintf(cli_first.message, sizeof(cli_first.message), "%s", esc);
}

void cli_verror(const char *context, const char *fmt, va_list ap) {
  cli_verror_as(1, context, fmt, ap);
}

void cli_error(const char *context, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_verror_as(1, context, fmt, ap);
  va_end(ap);
}

void cli_note(const char *context, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_verror_as(0, context, fmt, ap);
  va_end(ap);
}

/* The error object's members: code, message, context (JSON strings). */
static void cli_json_error_members(const char *cmd, int rc) {
  const char *code = cli_first.set && cli_first.code != NULL ? cli_first.code : "EFAILED";
  /* Every usage error is EUSAGE, whatever it met first (a bad name: ENAME); a signal
   * EINTERRUPTED. */
  if (rc == EXIT_USAGE) code = "EUSAGE";
  else if (rc > 128) code = "EINTERRUPTED";
  printf("\"code\":");
  cli_json_string(code);
  printf(",\"message\":");
  cli_json_string(cli_first.set ? cli_first.message : "failed");
  printf(",\"context\":");
  cli_json_string(cli_first.set && cli_first.has_context ? cli_first.context : cmd);
}

void out_error(cli_out_t *o, int rc) {
  if (!o->json || rc == EXIT_DONE) return;
  out_key(o, "error");
  putchar('{');
  cli_json_error_members(cli_command, rc);
  putchar('}');
}

/* The library's words (bm_errmsg), about its subject when it names one. */
void cli_lib_error(const char *context, int err) {
  const char *subject = bm_errsubject(err);
  cli_error_code(bm_err_name(err));
  cli_error(subject[0] != '\0' ? subject : context, "%s", bm_errmsg(err));
}

void cli_lib_error_os(const char *context, int err, int os) {
  cli_error_code(bm_err_name(err));
  if (bm_errsubject(err)[0] != '\0')
    cli_error(bm_errsubject(err), "%s", bm_errmsg(err));
  else if (os != 0)
    cli_error(context, "%s (%s; OS error %d (0x%x))", bm_strerror(err), bm_err_name(err), os,
              (unsigned)os);
  else
    cli_error(context, "%s (%s)", bm_strerror(err), bm_err_name(err));
}

int cli_exit_for(int err) { return err == BM_ENAME ? EXIT_USAGE : EXIT_FAILED; }

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

/* stdout's first write error, seen by out_end or cli_finish. */
static int cli_out_errno;

static void cli_flush_stdout(void) {
  errno = 0;
  if (fflush(stdout) != 0 && cli_out_errno == 0) cli_out_errno = errno ? errno : EIO;
}

int cli_out_failed(void) {
  cli_flush_stdout();
  return ferror(stdout) ? (cli_out_errno ? cli_out_errno : EIO) : 0;
}

int cli_finish(const char *cmd, int rc) {
  int err;
  /* --json: a command that failed before its object was begun writes the error object. */
  if (rc != EXIT_DONE && cli_json_on && !cli_json_begun) {
    cli_json_begun = 1;
    putchar('{');
    printf("\"error\":{");
    cli_json_error_members(cmd, rc);
    printf("}}\n");
  }
  cli_flush_stdout();
  err = ferror(stdout) ? (cli_out_errno ? cli_out_errno : EIO) : 0;
  /* Closing finds what a flush cannot (a deferred error of a network file system). */
  errno = 0;
  if (fclose(stdout) != 0 && err == 0 && errno != EBADF) err = errno ? errno : EIO;
  if (err != 0 && rc == EXIT_DONE) {
    cli_error(cmd, "cannot write the result: %s", strerror(err));
    return EXIT_FAILED;
  }
  return rc;
}

/* "unknown option X" with the nearest option of the command, if one is near. */
static int cli_unknown_option(const char *cmd, const char *a, size_t flen, const cli_opt_t *opts,
                              int nopts) {
  const char *cands[33], *best; /* (not "near": a macro of the Windows headers) */
  char word[64];
  int k, n = 0;
  snprintf(word, sizeof(word), "%.*s", (int)(flen < 63 ? flen : 63), a);
  for (k = 0; k < nopts && n < 32; k++) cands[n++] = opts[k].flag;
  cands[n++] = "--help";
  /* "-jsn" for "--jsn": compared with one dash more. */
  if (word[1] != '-' && flen > 2 && flen < 62) {
    memmove(word + 1, word, strlen(word) + 1);
    word[0] = '-';
  }
  best = cli_suggest(word, cands, n);
  if (best != NULL)
    return cli_usage(cmd, "unknown option %.*s; did you mean %s?", (int)flen, a, best);
  return cli_usage(cmd, "unknown option %.*s", (int)flen, a);
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt_t *opts, int nopts,
              const char **pos, int npos, int *npos_out) {
  int i, k, n = 0, seen[32] = {0}, only_pos = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *eq = NULL;
    size_t flen;
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      cli_help(cmd);
      return -1;
    }
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (n >= npos) return cli_usage(cmd, "unexpected argument '%s'", a);
      pos[n++] = a;
      continue;
    }
    k = nopts;
    if (a[1] != '-') {
      /* A short option, "-c LITERAL" or "-cLITERAL": the long one it stands for. */
      int s;
      for (s = 0; s < CLI_NSHORTS; s++)
        if (cli_shorts[s].c == a[1]) break;
      if (s < CLI_NSHORTS)
        for (k = 0; k < nopts; k++)
          if (strcmp(opts[k].flag, cli_shorts[s].flag) == 0) break;
      if (k < nopts && a[2] != '\0') {
        if (!opts[k].takes_value)
          return cli_usage(cmd, "-%c (%s) takes no value: '%s'", a[1], opts[k].flag, a);
        eq = a + 1; /* the value is what follows the letter */
      }
      flen = strlen(a);
      if (k == nopts) return cli_unknown_option(cmd, a, flen, opts, nopts);
    } else {
      eq = strchr(a, '=');
      flen = eq ? (size_t)(eq - a) : strlen(a);
      for (k = 0; k < nopts; k++)
        if (strlen(opts[k].flag) == flen && strncmp(opts[k].flag, a, flen) == 0) break;
      if (k == nopts) return cli_unknown_option(cmd, a, flen, opts, nopts);
    }
    if (opts[k].takes_value > 1 ? seen[k] >= opts[k].takes_value : seen[k] > 0) {
      if (opts[k].takes_value > 1)
        return cli_usage(cmd, "%s given more than %d times", opts[k].flag, opts[k].takes_value);
      return cli_usage(cmd, "%s given twice", opts[k].flag);
    }
    {
      const char **slot = opts[k].takes_value > 1 ? &opts[k].value[seen[k]] : opts[k].value;
      seen[k]++;
      if (!opts[k].takes_value) {
        if (eq) return cli_usage(cmd, "%s takes no value", opts[k].flag);
        *slot = "1";
      } else if (eq) {
        *slot = eq + 1;
      } else {
        /* "--name --json" is a forgotten value, not a name; --flag=--x still passes one. */
        if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
          return cli_usage(cmd, "%s needs a value", opts[k].flag);
        *slot = argv[++i];
      }
    }
  }
  *npos_out = n;
  /* Parsed: whether --json was given is known now (main's guess served a usage error). */
  for (k = 0; k < nopts; k++)
    if (strcmp(opts[k].flag, "--json") == 0) cli_json_mode(*opts[k].value != NULL);
  return 0;
}

int cli_size(const char *cmd, const char *flag, const char *text, uint64_t *out) {
  const char *p = text;
  int err = bm_parse_size(text, out);
  if (err == BM_EOVERFLOW)
    return cli_usage(cmd, "%s '%s': too large for 64 bits", flag, text);
  if (err == 0) return 0;
  /* The hint names what went wrong where it can be told. */
  while (*p >= '0' && *p <= '9') p++;
  if (text[0] == '-' || text[0] == '+')
    return cli_usage(cmd, "%s '%s': not a size: no sign (sizes are whole bytes, e.g. 64M)", flag, text);
  if (*p == '.' || *p == ',')
    return cli_usage(cmd, "%s '%s': not a size: whole numbers only (e.g. 1536M, not 1.5G)", flag, text);
  if (*p == ' ' || (text[0] == ' '))
    return cli_usage(cmd, "%s '%s': not a size: no spaces (e.g. 64M)", flag, text);
  return cli_usage(cmd, "%s '%s': not a size: bytes, or a number with K M G T or KiB MiB GiB "
                   "TiB (powers of 1024: 64M = 64MiB = 67108864) or KB MB GB TB (powers of "
                   "1000: 64MB = 64000000)", flag, text);
}

int cli_threads(const char *cmd, const char *text, unsigned *out) {
  char buf[16];
  uint64_t n;
  if (text == NULL) {
    unsigned cpus = uv_available_parallelism();
    n = cpus == 0 ? 1 : cpus;
  } else {
    if (bm_parse_size(text, &n) != 0 || strpbrk(text, "kKmMgGtT") != NULL)
      return cli_usage(cmd, "--threads '%s': not a number", text);
    if (n == 0) return cli_usage(cmd, "--threads 0: at least one thread is needed");
    if (n > 256) return cli_usage(cmd, "--threads %s: at most 256", text);
  }
  *out = (unsigned)n;
  /* libuv reads UV_THREADPOOL_SIZE once, when the pool starts on the first queued job. */
  snprintf(buf, sizeof(buf), "%u", *out);
  uv_os_setenv("UV_THREADPOOL_SIZE", buf);
  return 0;
}

double cli_now(void) { return (double)uv_hrtime() / 1e9; }

/* Output. */
static void out_key(cli_out_t *o, const char *key) {
  if (o->json) {
    printf("%s\"%s\":", o->fields++ ? "," : "", key);
  } else {
    printf("%s: ", key);
  }
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), or 0. */
static int utf8_len(const unsigned char *p) {
  int n, i;
  unsigned c = p[0];
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3;
  else if (c >= 0xf0 && c <= 0xf4) n = 4;
  else return 0;
  for (i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && p[1] < 0xa0) return 0;
  if (c == 0xed && p[1] > 0x9f) return 0;
  if (c == 0xf0 && p[1] < 0x90) return 0;
  if (c == 0xf4 && p[1] > 0x8f) return 0;
  return n;
}

/* A JSON string: escapes what JSON needs, and shows bytes that are not UTF-8 (a file name
 * on Linux may hold any) as U+FFFD, so that the output is always valid JSON. */
void cli_json_string(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  int n;
  putchar('"');
  while (*p) {
    if (*p == '"' || *p == '\\') printf("\\%c", *p++);
    else if (*p < 0x20 || *p == 0x7f) printf("\\u%04x", *p++);
    else if ((n = utf8_len(p)) == 0) printf("\\ufffd"), p++;
    else fwrite(p, 1, (size_t)n, stdout), p += n;
  }
  putchar('"');
}

void out_begin(cli_out_t *o, int json) {
  memset(o, 0, sizeof(*o));
  o->json = json;
  if (json) cli_json_begun = 1, putchar('{');
}

void out_str(cli_out_t *o, const char *key, const char *val) {
  out_key(o, key);
  if (!o->json) {
    cli_put_escaped(stdout, val ? val : "-");
    putchar('\n');
  }
  else if (val == NULL) printf("null");
  else cli_json_string(val);
}

static int key_ends(const char *key, const char *end) {
  size_t k = strlen(key), e = strlen(end);
  return k >= e && strcmp(key + k - e, end) == 0;
}

/* Keys whose numbers are bytes, rates or seconds, for the human form's note. */
static int key_is_size(const char *key) {
  static const char *const sizes[] = {"bytes", "length", "offset", "window", "size",
                                      "page_size", "allocation_granularity", "working_set", "data_offset",
                                      "data_length"};
  size_t i;
  if (key_ends(key, "_per_second")) return 0;
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    if (strcmp(key, sizes[i]) == 0) return 1;
  return key_ends(key, "_bytes") || key_ends(key, "_size");
}

static void human_bytes(char *buf, size_t n, double v);

/* " (64.0 MiB)" after a byte count of 1 KiB or more, nothing below. */
static void human_size_note(uint64_t v) {
  char b[32];
  if (v < 1024) return;
  human_bytes(b, sizeof(b), (double)v);
  printf(" (%s)", b);
}

static void human_note(const char *key, double v) {
  char b[32];
  if (key_ends(key, "bytes_per_second")) {
    if (v < 1024) return;
    human_bytes(b, sizeof(b), v);
    printf(" (%s/s)", b);
  } else if (strcmp(key, "seconds") == 0 || key_ends(key, "_seconds")) {
    if (v <= 0) return;
    if (v < 1e-3) printf(" (%.1f us)", v * 1e6);
    else if (v < 1) printf(" (%.1f ms)", v * 1e3);
    else if (v < 60) printf(" (%.2f s)", v);
    else if (v < 3600) printf(" (%d min %02d s)", (int)(v / 60), (int)v % 60);
    else printf(" (%d h %02d min)", (int)(v / 3600), (int)(v / 60) % 60);
  }
}

void out_u64(cli_out_t *o, const char *key, uint64_t v) {
  out_key(o, key);
  if (o->json) {
    printf("%llu", (unsigned long long)v);
    return;
  }
  printf("%llu", (unsigned long long)v);
  if (key_is_size(key)) human_size_note(v);
  putchar('\n');
}

void out_u64_named(cli_out_t *o, const char *key, uint64_t v) {
  if (o->json) {
    printf("%s", o->fields++ ? "," : "");
    cli_json_string(key);
    printf(":%llu", (unsigned long long)v);
  } else {
    cli_put_escaped(stdout, key);
    printf(": %llu\n", (unsigned long long)v);
  }
}

void out_i64(cli_out_t *o, const char *key, int64_t v) {
  out_key(o, key);
  printf(o->json ? "%lld" : "%lld\n", (long long)v);
}

void out_f(cli_out_t *o, const char *key, double v, int decimals) {
  static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  out_key(o, key);
  if (decimals >= 0 && decimals <= 9 && v >= 0 && v < 1e18 / scale[decimals]) {
    /* In integers: printf's floating-point path is a large share of scan's time over
     * many small files (a result a file). */
    unsigned long long u = (unsigned long long)(v * scale[decimals] + 0.5),
                       d = (unsigned long long)scale[decimals];
    if (decimals == 0) printf("%llu", u);
    else printf("%llu.%0*llu", u / d, decimals, u % d);
    if (!o->json) human_note(key, v), putchar('\n');
    return;
  }
  printf("%.*f", decimals, v);
  if (!o->json) human_note(key, v), putchar('\n');
}

void out_bool(cli_out_t *o, const char *key, int v) {
  out_key(o, key);
  printf(o->json ? "%s" : "%s\n", v ? "true" : "false");
}

void out_hex64(cli_out_t *o, const char *key, uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  out_str(o, key, buf);
}

void out_obj_begin(cli_out_t *o, const char *key) {
  if (o->json) {
    out_key(o, key);
    putchar('{');
    o->fields = 0;
  } else {
    printf("%s:\n", key);
  }
  o->depth++;
}

void out_obj_end(cli_out_t *o) {
  o->depth--;
  if (o->json) {
    putchar('}');
    o->fields = 1;
  }
}

void out_arr_u64(cli_out_t *o, const char *key, const uint64_t *v, int n) {
  int i;
  out_key(o, key);
  if (o->json) putchar('[');
  for (i = 0; i < n; i++) printf(o->json ? "%s%llu" : "%s%llu", i ? (o->json ? "," : " ") : "",
                                 (unsigned long long)v[i]);
  printf(o->json ? "]" : "\n");
}

void out_end(cli_out_t *o) {
  if (o->json) printf("}\n");
  cli_flush_stdout();
}

void out_large(cli_out_t *o, const bm_large_t *l) {
  static const char *modes[] = {"off", "auto", "on"};
  out_obj_begin(o, "large_pages");
  if (!o->json) printf("  ");
  char why[96];
  /* -1: a dataset written before the request was recorded (trailer version 1). */
  out_str(o, "requested", l->requested >= 0 && l->requested <= 2 ? modes[l->requested] : NULL);
  if (!o->json) printf("  ");
  out_bool(o, "obtained", l->obtained);
  if (!o->json) printf("  ");
  out_u64(o, "page_size", l->page_size);
  if (!o->json) printf("  ");
  out_str(o, "reason", l->reason == BM_REASON_NONE ? NULL : bm_large_describe(l, why, sizeof(why)));
  out_obj_end(o);
}

/* Progress. */
void progress_init(cli_progress_t *p, int enabled, uint64_t total) {
  p->on = enabled && uv_guess_handle(2) == UV_TTY;
  p->t0 = cli_now();
  p->total = total;
  p->drawn = 0;
}

static void human_bytes(char *buf, size_t n, double v) {
  const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, i++;
  snprintf(buf, n, "%.1f %s", v, u[i]);
}

/* Columns of the terminal on stderr (80 when it cannot be told). */
static int term_width(void) {
  const char *env = getenv("COLUMNS");
  int w = plat_term_width();
  if (w > 0) return w;
  if (env != NULL && atoi(env) > 0) return atoi(env);
  return 80;
}

/* Lays the line out for `width` columns (never the last one, which would wrap on some
 * terminals): a bar of 10-30 cells while it fits, then fields dropped from the least
 * useful (the total, the rate, the estimate). Exposed for the tests through
 * progress_format. */
int progress_format(char *line, size_t n, int width, double elapsed, uint64_t done,
                    uint64_t total) {
  char a[32], b[32], r[32], eta[32] = "", fields[160], bar[31];
  double rate = elapsed > 0 ? (double)done / elapsed : 0, pct;
  int i, fill, cols = width - 1, bw, variant;
  human_bytes(a, sizeof(a), (double)done);
  human_bytes(b, sizeof(b), (double)total);
  human_bytes(r, sizeof(r), rate);
  /* No estimate before there is a rate to base it on; rounded up, so that "0:00 left"
   * never shows while work remains. */
  if (total > 0 && done > 0 && elapsed >= 0.5 && done < total) {
    double left = (double)(total - done) / rate;
    unsigned long s = (unsigned long)left + ((double)(unsigned long)left < left);
    if (s >= 3600) snprintf(eta, sizeof(eta), "%lu:%02lu:%02lu left", s / 3600, s / 60 % 60, s % 60);
    else snprintf(eta, sizeof(eta), "%02lu:%02lu left", s / 60, s % 60);
  }
  if (total == 0) {
    /* A stream: its size is not known. */
    for (variant = 0; variant < 2; variant++) {
      if (variant == 0) snprintf(line, n, "%s  %s/s", a, r);
      else snprintf(line, n, "%s", a);
      if ((int)strlen(line) <= cols) return (int)strlen(line);
    }
    line[0] = '\0';
    return 0;
  }
  pct = 100.0 * (double)done / (double)total;
  if (pct > 100) pct = 100;
  for (variant = 0; variant < 5; variant++) {
    switch (variant) {
    case 0: case 1:
      snprintf(fields, sizeof(fields), "%5.1f%% %s / %s  %s/s%s%s", pct, a, b, r,
               eta[0] ? "  " : "", eta);
      break;
    case 2: snprintf(fields, sizeof(fields), "%5.1f%% %s  %s/s%s%s", pct, a, r, eta[0] ? "  " : "", eta); break;
    case 3: snprintf(fields, sizeof(fields), "%5.1f%%%s%s", pct, eta[0] ? "  " : "", eta); break;
    default: snprintf(fields, sizeof(fields), "%5.1f%%", pct); break;
    }
    if (variant == 0) {
      /* "[bar] fields": the bar takes what is left, 10 to 30 cells. */
      bw = cols - (int)strlen(fields) - 3;
      if (bw < 10) continue;
      if (bw > 30) bw = 30;
      fill = (int)(pct * bw / 100);
      for (i = 0; i < bw; i++) bar[i] = i < fill ? '#' : ' ';
      bar[bw] = '\0';
      snprintf(line, n, "[%s] %s", bar, fields);
    } else {
      snprintf(line, n, "%s", fields);
    }
    if ((int)strlen(line) <= cols) return (int)strlen(line);
  }
  line[0] = '\0';
  return 0;
}

void progress_draw(cli_progress_t *p, uint64_t done) {
  char line[256];
  int len;
  if (!p->on) return;
  len = progress_format(line, sizeof(line), term_width(), cli_now() - p->t0, done, p->total);
  /* Over what was drawn before, padded where the new line is shorter. */
  fprintf(stderr, "\r%s%*s", line, p->drawn > len ? p->drawn - len : 0, "");
  if (p->drawn > len) fprintf(stderr, "\r%s", line);
  p->drawn = len;
  fflush(stderr);
}

void progress_clear(cli_progress_t *p) {
  if (!p->on || p->drawn == 0) return;
  fprintf(stderr, "\r%*s\r", p->drawn, "");
  p->drawn = 0;
  fflush(stderr);
}

/* Arrays of objects (JSON; human output prints them as it likes). */
void out_arr_begin(cli_out_t *o, const char *key) {
  out_key(o, key);
  if (o->json) putchar('[');
  else putchar('\n');
  o->fields = 0;
  o->depth++;
}

void out_arr_end(cli_out_t *o) {
  o->depth--;
  if (o->json) putchar(']');
  o->fields = 1;
}

void out_elem_begin(cli_out_t *o) {
  if (o->json) printf("%s{", o->fields++ ? "," : "");
  o->fields = 0;
  o->depth++;
}

void out_elem_end(cli_out_t *o) {
  o->depth--;
  if (o->json) putchar('}');
  o->fields = 1;
}

void out_num(cli_out_t *o, const char *key, double v, int decimals) {
  if (isnan(v) || isinf(v)) out_str(o, key, NULL);
  else out_f(o, key, v, decimals);
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian; H. Hinnant's days_from_civil
 * inverted): no gmtime, the same on every platform, and exact for any year. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  int64_t era, doe, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
  *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int cli_format_time(char *buf, size_t n, int64_t t) {
  int64_t days, secs, y;
  unsigned m, d;
  /* 1970-01-01 to 9999-12-31T23:59:59Z */
  if (t < 0 || t > 253402300799LL) {
    snprintf(buf, n, "%lld (invalid time)", (long long)t);
    return -1;
  }
  days = t / 86400;
  secs = t % 86400;
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, n, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
           (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
  return 0;
}

void out_time(cli_out_t *o, const char *key, int64_t t) {
  char buf[48];
  if (o->json) {
    out_i64(o, key, t);
    return;
  }
  cli_format_time(buf, sizeof(buf), t);
  out_str(o, key, buf);
}
