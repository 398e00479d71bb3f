/* The tool's shared pieces: errors, option parsing, key: value / JSON output, progress. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"

#ifdef _WIN32
#include <io.h>
#define isatty _isatty
#else
#include <signal.h>
#include <unistd.h>
#endif

void cli_verror(const char *context, const char *fmt, va_list ap) {
  fprintf(stderr, "bulkmap: %s: ", context);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_error(const char *context, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_verror(context, fmt, ap);
  va_end(ap);
}

void cli_lib_error(const char *context, int err) {
  cli_lib_error_os(context, err, bm_last_os_error());
}

void cli_lib_error_os(const char *context, int err, int os) {
  if (os != 0)
    cli_error(context, "%s (%s; OS error %d (0x%x))", bm_strerror(err), bm_err_name(err), os,
              (unsigned)os);
  else
    cli_error(context, "%s (%s)", bm_strerror(err), bm_err_name(err));
}

int cli_exit_for(int err) { return err == BM_ENAME ? EXIT_USAGE : EXIT_FAILED; }

void cli_ignore_sigpipe(void) {
#ifndef _WIN32
  signal(SIGPIPE, SIG_IGN);
#endif
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt_t *opts, int nopts,
              const char **pos, int npos, int *npos_out) {
  int i, k, n = 0, seen[32] = {0}, only_pos = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      cli_help(cmd);
      return -1;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      const char *eq = strchr(a, '=');
      size_t flen = eq ? (size_t)(eq - a) : strlen(a);
      for (k = 0; k < nopts; k++)
        if (strlen(opts[k].flag) == flen && strncmp(opts[k].flag, a, flen) == 0) break;
      if (k == nopts) return cli_usage(cmd, "unknown option %.*s", (int)flen, a);
      if (seen[k]++) return cli_usage(cmd, "%s given twice", opts[k].flag);
      if (!opts[k].takes_value) {
        if (eq) return cli_usage(cmd, "%s takes no value", opts[k].flag);
        *opts[k].value = "1";
      } else if (eq) {
        *opts[k].value = eq + 1;
      } else {
        /* "--name --json" is a forgotten value, not a name; --flag=--x still passes one. */
        if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
          return cli_usage(cmd, "%s needs a value", opts[k].flag);
        *opts[k].value = argv[++i];
      }
      continue;
    }
    if (n >= npos) return cli_usage(cmd, "unexpected argument '%s'", a);
    pos[n++] = a;
  }
  *npos_out = n;
  return 0;
}

int cli_size(const char *cmd, const char *flag, const char *text, uint64_t *out) {
  int err = bm_parse_size(text, out);
  if (err == BM_EOVERFLOW)
    return cli_usage(cmd, "%s '%s': too large for 64 bits", flag, text);
  if (err != 0)
    return cli_usage(cmd, "%s '%s': not a size (bytes, or a number with K, M, G or T)", flag,
                     text);
  return 0;
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
#ifdef _WIN32
  _putenv_s("UV_THREADPOOL_SIZE", buf);
#else
  setenv("UV_THREADPOOL_SIZE", buf, 1);
#endif
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
void json_string(const char *s) {
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
  if (json) putchar('{');
}

void out_str(cli_out_t *o, const char *key, const char *val) {
  out_key(o, key);
  if (!o->json) printf("%s\n", val ? val : "-");
  else if (val == NULL) printf("null");
  else json_string(val);
}

void out_u64(cli_out_t *o, const char *key, uint64_t v) {
  out_key(o, key);
  printf(o->json ? "%llu" : "%llu\n", (unsigned long long)v);
}

void out_i64(cli_out_t *o, const char *key, int64_t v) {
  out_key(o, key);
  printf(o->json ? "%lld" : "%lld\n", (long long)v);
}

void out_f(cli_out_t *o, const char *key, double v, int decimals) {
  out_key(o, key);
  printf(o->json ? "%.*f" : "%.*f\n", decimals, v);
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
  fflush(stdout);
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
  p->on = enabled && isatty(2);
  p->t0 = cli_now();
  p->total = total;
}

static void human_bytes(char *buf, size_t n, double v) {
  const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, i++;
  snprintf(buf, n, "%.1f %s", v, u[i]);
}

void progress_draw(cli_progress_t *p, uint64_t done) {
  char a[32], b[32], r[32], bar[31];
  double el = cli_now() - p->t0, rate = el > 0 ? (double)done / el : 0, pct, left;
  int i, fill;
  if (!p->on) return;
  pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
  fill = (int)(pct * 30 / 100);
  for (i = 0; i < 30; i++) bar[i] = i < fill ? '#' : ' ';
  bar[30] = '\0';
  left = rate > 0 ? (double)(p->total - done) / rate : 0;
  human_bytes(a, sizeof(a), (double)done);
  human_bytes(b, sizeof(b), (double)p->total);
  human_bytes(r, sizeof(r), rate);
  fprintf(stderr, "\r[%s] %5.1f%% %s / %s  %s/s  %02d:%02d left ", bar, pct, a, b, r,
          (int)left / 60, (int)left % 60);
  fflush(stderr);
}

void progress_clear(cli_progress_t *p) {
  if (!p->on) return;
  fprintf(stderr, "\r%100s\r", "");
  fflush(stderr);
}
