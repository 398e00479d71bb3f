/* The tool's output: human `key: value` lines or one JSON object on stdout, escaping of
 * names for both, the errors on stderr and --json's error object (docs/json.md), and the
 * end of the run (stdout flushed, a failed write reported). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

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
volatile sig_atomic_t cli_json_on, cli_json_begun;

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

/* " (64.0 MiB)" after a byte count of 1 KiB or more, nothing below. */
static void human_size_note(uint64_t v) {
  char b[32];
  if (v < 1024) return;
  cli_human_bytes(b, sizeof(b), (double)v);
  printf(" (%s)", b);
}

static void human_note(const char *key, double v) {
  char b[32];
  if (key_ends(key, "bytes_per_second")) {
    if (v < 1024) return;
    cli_human_bytes(b, sizeof(b), v);
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

void out_time(cli_out_t *o, const char *key, int64_t t) {
  char buf[48];
  if (o->json) {
    out_i64(o, key, t);
    return;
  }
  cli_format_time(buf, sizeof(buf), t);
  out_str(o, key, buf);
}
