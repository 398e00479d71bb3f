/* The tool's options and arguments: the command table main.c hands in, usage and help
 * from it, short options, "did you mean", option parsing, sizes and thread counts. It never
 * calls into main.c or a command; output is out.c's, progress and times progress.c's,
 * signals signals.c's. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"

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
  int err = bm_size_parse(text, out);
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
    if (bm_size_parse(text, &n) != 0 || strpbrk(text, "kKmMgGtT") != NULL)
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
