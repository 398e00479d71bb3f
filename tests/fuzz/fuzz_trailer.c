/* libFuzzer: the dataset trailer decoder on arbitrary bytes and section sizes. Whatever it
 * accepts must fit the section, and re-encoding what it accepted must decode the same. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  static unsigned char buf[BM_TRAILER_SIZE] __attribute__((aligned(64)));
  static unsigned char again[BM_TRAILER_SIZE] __attribute__((aligned(64)));
  uint64_t section = 0;
  bm__trailer_t t, u;
  size_t k;
  if (n < 8) return 0;
  memcpy(&section, data, 8);
  data += 8;
  n -= 8;
  /* Mostly mutate a valid trailer, so that the checks past the magic are reached. */
  memset(buf, 0, sizeof(buf));
  if (n > 0 && (data[0] & 1)) {
    memset(&t, 0, sizeof(t));
    t.version = BM__TRAILER_VERSION;
    t.state = BM_STATE_READY;
    t.payload_size = section % (1ull << 40);
    t.page_size = 4096;
    t.writer_pid = 1;
    strcpy(t.source, "seed");
    section = t.payload_size + BM_TRAILER_SIZE + (section >> 50);
    bm__trailer_encode(buf, &t);
    for (k = 1; k + 1 < n; k += 2) buf[data[k] | ((data[k + 1] & 0x0f) << 8)] ^= data[k] ? data[k] : 1;
  } else {
    memcpy(buf, data, n < sizeof(buf) ? n : sizeof(buf));
  }
  if (bm__trailer_decode(buf, section, &t) != 0) return 0;
  if (section < BM_TRAILER_SIZE || t.payload_size > section - BM_TRAILER_SIZE) abort();
  if (t.state != BM_STATE_LOADING && t.state != BM_STATE_READY && t.state != BM_STATE_FAILED) abort();
  if (memchr(t.source, '\0', sizeof(t.source)) == NULL) abort();
  if (t.version == 1) return 0; /* read only: a writer always writes the current version */
  if (bm__trailer_encode(again, &t) != 0 || bm__trailer_decode(again, section, &u) != 0) abort();
  if (t.version != u.version || t.state != u.state || t.payload_size != u.payload_size ||
      t.xxh3 != u.xxh3 || t.page_size != u.page_size || t.writer_pid != u.writer_pid ||
      t.created != u.created || strcmp(t.source, u.source) != 0 ||
      memcmp(&t.large, &u.large, sizeof(t.large)) != 0)
    abort();
  return 0;
}
