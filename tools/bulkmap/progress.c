/* The tool's progress bar on stderr, and numbers for people: sizes ("64.0 MiB"), the
 * monotonic clock, times since 1970 as dates. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "cli.h"
#include "plat.h"

double cli_now(void) { return (double)uv_hrtime() / 1e9; }

/* Progress. */
void progress_init(cli_progress_t *p, int enabled, uint64_t total) {
  p->on = enabled && uv_guess_handle(2) == UV_TTY;
  p->t0 = cli_now();
  p->total = total;
  p->drawn = 0;
}

void cli_human_bytes(char *buf, size_t n, double v) {
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
  cli_human_bytes(a, sizeof(a), (double)done);
  cli_human_bytes(b, sizeof(b), (double)total);
  cli_human_bytes(r, sizeof(r), rate);
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
