/* libFuzzer: SIZE and section-name parsing, checked against a second, naive reading. */
#include <stdlib.h>
#include <string.h>
#include "bulkmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  char buf[256];
  uint64_t v;
  size_t i, len = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
  int r, ok;
  memcpy(buf, data, len);
  buf[len] = '\0';

  r = bm_parse_size(buf, &v);
  if (r == 0) {
    /* Digits, then at most one of KMGT; and the value is what it says. */
    unsigned long long d = 0;
    char *end;
    if (buf[0] < '0' || buf[0] > '9') abort();
    d = strtoull(buf, &end, 10);
    if (*end && (end[1] != '\0' || !strchr("kKmMgGtT", *end))) abort();
    switch (*end) {
    case 'k': case 'K': d <<= 10; break;
    case 'm': case 'M': d <<= 20; break;
    case 'g': case 'G': d <<= 30; break;
    case 't': case 'T': d <<= 40; break;
    }
    if (d != v) abort();
  } else if (r != BM_EINVAL && r != BM_EOVERFLOW) {
    abort();
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
