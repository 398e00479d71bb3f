/* Parsing of SIZE arguments, as coreutils reads them: plain bytes, or a suffix K M G T
 * (KiB MiB GiB TiB alike) for powers of 1024, or KB MB GB TB for powers of 1000. */
#include <stdio.h>
#include <string.h>
#include "internal.h"

int bm_size_parse(const char *text, uint64_t *out) {
  static const char letters[] = "KMGT";
  uint64_t v = 0, unit = 1;
  const char *p = text, *l;
  unsigned base = 1024, i, power;

  if (text == NULL || out == NULL || *p < '0' || *p > '9') return BM_EINVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return BM_EOVERFLOW;
    v = v * 10 + d;
  }
  if (*p != '\0') {
    /* A lower-case k m g t reads as its capital (coreutils takes 64k and 64K alike); the
     * "iB" or "B" after it is taken as written. */
    char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    if (c == '\0' || (l = strchr(letters, c)) == NULL) return BM_EINVAL;
    power = (unsigned)(l - letters) + 1;
    p++;
    if (p[0] == 'i' && p[1] == 'B' && p[2] == '\0') base = 1024;
    else if (p[0] == 'B' && p[1] == '\0') base = 1000;
    else if (p[0] != '\0') return BM_EINVAL;
    for (i = 0; i < power; i++) unit *= base;
    if (v > UINT64_MAX / unit) return BM_EOVERFLOW;
  }
  *out = v * unit;
  return 0;
}

/* Bytes as people read them, in the units bm_size_parse reads back. */
const char *bm_size_format(uint64_t v, char *buf, size_t n) {
  static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double d = (double)v;
  int u = 0;
  if (buf == NULL || n == 0) return "";
  if (v < 1024) {
    snprintf(buf, n, "%llu bytes", (unsigned long long)v);
    return buf;
  }
  while (d >= 1024 && u < 6) d /= 1024, u++;
  snprintf(buf, n, "%.1f %s", d, unit[u]);
  return buf;
}
