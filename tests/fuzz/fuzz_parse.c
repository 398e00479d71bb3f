/* libFuzzer: SIZE and section-name parsing, checked against a second, naive reading. */
#include <stdlib.h>
#include <string.h>
#include "bulkmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  char buf[256];
  uint64_t v;
  size_t i, len = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
  int r, ok, k;
  memcpy(buf, data, len);
  buf[len] = '\0';

  r = bm_size_parse(buf, &v);
  if (r == 0) {
    /* Digits, then nothing, or one of KMGT (either case) alone or followed by "iB"
     * (1024-based) or "B" (1000-based), as coreutils reads them; the value is what it says. */
    unsigned long long d = 0, unit = 1, base = 1024;
    const char *sfx;
    char *end;
    int k;
    if (buf[0] < '0' || buf[0] > '9') abort();
    d = strtoull(buf, &end, 10);
    if (*end) {
      if (!strchr("kKmMgGtT", *end)) abort();
      sfx = end + 1;
      if (strcmp(sfx, "B") == 0) base = 1000;
      else if (*sfx && strcmp(sfx, "iB") != 0) abort();
      for (k = 0; k <= (int)(strchr("KMGT", *end & ~0x20) - "KMGT"); k++) unit *= base;
    }
    if (d * unit != v || (unit > 1 && d != v / unit)) abort();
  } else if (r != BM_EINVAL && r != BM_EOVERFLOW) {
    abort();
  }
  /* The forms coreutils takes, pinned. */
  {
    static const struct { const char *t; unsigned long long v; } good[] = {
      {"64M", 67108864ULL}, {"64MiB", 67108864ULL}, {"64m", 67108864ULL},
      {"64MB", 64000000ULL}, {"1K", 1024}, {"1kB", 1000}, {"1KiB", 1024}, {"2T", 2ULL << 40},
      {"1TB", 1000000000000ULL}, {"1G", 1ULL << 30}, {"1GB", 1000000000ULL}, {"0", 0}};
    static const char *bad[] = {"", "64Q", "-1", "64 M", "1.5G", "64mib", "64Mb", "64MIB", "64iB", "M"};
    for (k = 0; k < (int)(sizeof(good) / sizeof(good[0])); k++)
      if (bm_size_parse(good[k].t, &v) != 0 || v != good[k].v) abort();
    for (k = 0; k < (int)(sizeof(bad) / sizeof(bad[0])); k++)
      if (bm_size_parse(bad[k], &v) != BM_EINVAL) abort();
  }

  r = bm_name_check(buf);
  ok = strlen(buf) >= 1 && strlen(buf) <= BM_NAME_MAX && strcmp(buf, ".") && strcmp(buf, "..");
  for (i = 0; buf[i]; i++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", buf[i])) ok = 0;
#ifndef _WIN32
  if ((r == 0) != ok) abort();
#endif
  return 0;
}
