/* Parsing of SIZE arguments (plain bytes or a binary suffix K M G T). */
#include "internal.h"

int bm_parse_size(const char *text, uint64_t *out) {
  uint64_t v = 0;
  const char *p = text;
  unsigned shift = 0;

  if (text == NULL || out == NULL || *p < '0' || *p > '9') return BM_EINVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return BM_EOVERFLOW;
    v = v * 10 + d;
  }
  switch (*p) {
  case '\0': break;
  case 'k': case 'K': shift = 10; break;
  case 'm': case 'M': shift = 20; break;
  case 'g': case 'G': shift = 30; break;
  case 't': case 'T': shift = 40; break;
  default: return BM_EINVAL;
  }
  if (shift != 0 && p[1] != '\0') return BM_EINVAL;
  if (shift != 0 && v > (UINT64_MAX >> shift)) return BM_EOVERFLOW;
  *out = v << shift;
  return 0;
}
