/* The dataset trailer (docs/design.md section 2): the last BM_TRAILER_SIZE bytes of a dataset
 * section, its encoding, its publish protocol and the judgement of its state.
 *
 * Layout (offsets within the trailer; integers little-endian, whatever the host):
 *      0   8  magic "BULKMAP\0"
 *      8   4  state: the ASCII bytes "LOAD", "REDY" or "FAIL"
 *     12   4  format version (1)
 *     16   8  payload size in bytes (the payload starts at offset 0 of the section)
 *     24   8  XXH3-64 of the payload
 *     32   8  page size the section was made with
 *     40   8  writer pid (signed)
 *     48   8  creation time, seconds since the Unix epoch (signed)
 *     56 256  source file name, UTF-8, NUL-terminated, NUL-padded
 *   version 2 adds the large-page request and outcome, so that stat says what load said:
 *    312   4  requested mode (bm_large_mode_t)
 *    316   4  reason (bm_large_reason_t)
 *    320   4  flags: 1 obtained, 2 transparent
 *    324   4  zero
 *    328   8  page size of the outcome
 *    336   8  huge pages needed (pool reasons)
 *    344   8  huge pages free (pool reasons)
 *   version 3 adds the hugetlbfs mount reasons (MOUNT_LIMIT, MOUNT_INODES) and what they
 *   name; it is written only for those, so every other dataset stays readable by version-2
 *   readers:
 *    352 256  the mount's path, NUL-terminated, NUL-padded (truncated to 255 bytes)
 *    608   8  the mount's limit (size= in pages, or nr_inodes=)
 *    616 ...  zero (352 ... in versions 1 and 2)
 *   version 4 adds what the payload is (docs/design.md section 6: the format and one array's layout),
 *   written only for a payload that is not raw (raw datasets stay readable by version-2 and
 *   3 readers); the mount fields are as in version 3 (zero unless a mount reason):
 *    624   4  format (bm_format_t: 1 raw, 2 npy, 3 safetensors)
 *    628   4  dtype (bm_dtype_t; 0 without a layout)
 *    632   1  byte order '<' '>' '|' (0 without a layout)
 *    633   1  order 'C' or 'F' (0 without a layout)
 *    634   1  1: the layout is set
 *    635   1  zero
 *    636   4  ndim
 *    640   4  item size
 *    644   4  tensors (safetensors)
 *    648   8  data offset
 *    656   8  data length
 *    664   8  header bytes
 *    672 256  shape, BM_MAX_DIMS dimensions of 8 bytes (zero past ndim)
 *    928 ...  zero
 *   version 5 adds the writer token's name (Windows, where a reader finds the writer's
 *   liveness through the trailer: src/win/section.c), written only while the state is
 *   `loading` (a ready or failed trailer needs no liveness, so it stays readable by
 *   version-2 to 4 readers); the mount and format fields are as in version 4:
 *    928  32  the random part of the token's name, 32 lowercase hex digits (128 bits)
 *    960 ...  zero
 *   4088   8  CRC-64/XZ of bytes [12, 4088)
 *
 * Publish protocol: the writer fills the payload, then bm__trailer_encode writes every
 * field and stores the state word last with release ordering. A reader loads the state with acquire ordering, copies the
 * trailer, and loads the state again: a trailer that changed under the copy is read again,
 * so no torn trailer is ever decoded.
 *
 * Why every single-byte change is caught: the magic is compared whole; the three state
 * words differ from each other in all four bytes, so one changed byte never turns a valid
 * state into another valid one (and zero, a fresh section's trailer, is none of them); every
 * other byte is covered by the CRC, and a CRC of degree 64 detects every error burst of up to
 * 64 bits, a changed byte among them. The state is outside the CRC so that publishing it
 * is a single atomic store. */
#include <string.h>
#include "os.h"

#define BM__MAGIC "BULKMAP\0"
#define BM__OFF_STATE 8
#define BM__OFF_VERSION 12
#define BM__OFF_PAYLOAD 16
#define BM__OFF_XXH3 24
#define BM__OFF_PAGE 32
#define BM__OFF_PID 40
#define BM__OFF_CREATED 48
#define BM__OFF_SOURCE 56
#define BM__SOURCE_LEN 256
#define BM__OFF_REQUESTED 312
#define BM__OFF_REASON 316
#define BM__OFF_FLAGS 320
#define BM__OFF_LPAGE 328
#define BM__OFF_NEEDED 336
#define BM__OFF_FREE 344
#define BM__OFF_MOUNT 352
#define BM__MOUNT_LEN 256
#define BM__OFF_MLIMIT 608
#define BM__OFF_ZERO 352
#define BM__VERSION_MOUNTS 3
#define BM__VERSION_FORMAT 4
#define BM__OFF_FORMAT 624
#define BM__OFF_DTYPE 628
#define BM__OFF_BYTEORDER 632
#define BM__OFF_ORDER 633
#define BM__OFF_HASLAYOUT 634
#define BM__OFF_NDIM 636
#define BM__OFF_ITEM 640
#define BM__OFF_TENSORS 644
#define BM__OFF_DOFF 648
#define BM__OFF_DLEN 656
#define BM__OFF_HBYTES 664
#define BM__OFF_SHAPE 672
#define BM__OFF_FMT_END (BM__OFF_SHAPE + 8 * BM_MAX_DIMS)
#define BM__VERSION_TOKEN 5
#define BM__OFF_TOKEN BM__OFF_FMT_END
#define BM__TOKEN_LEN 32
/* The last reason each version can record. */
#define BM__REASON_MAX2 BM_REASON_POOL_TOO_SMALL
#define BM__REASON_MAX3 BM_REASON_MOUNT_INODES
#define BM__OFF_CRC (BM_TRAILER_SIZE - 8)

_Static_assert(sizeof(((bm__trailer_t *)0)->source) == BM__SOURCE_LEN, "source field size");
_Static_assert(sizeof(((bm__trailer_t *)0)->writer_token) == BM__TOKEN_LEN + 1, "token size");
_Static_assert(BM__OFF_TOKEN == 928, "the token follows the format fields");

/* ---- CRC-64/XZ (ECMA-182 polynomial, reflected), a nibble at a time. */
static const uint64_t bm__crc_nibble[16] = {
    0x0000000000000000ull, 0x7d9ba13851336649ull, 0xfb374270a266cc92ull, 0x86ace348f355aadbull,
    0x64b62bcaebc387a1ull, 0x192d8af2baf0e1e8ull, 0x9f8169ba49a54b33ull, 0xe21ac88218962d7aull,
    0xc96c5795d7870f42ull, 0xb4f7f6ad86b4690bull, 0x325b15e575e1c3d0ull, 0x4fc0b4dd24d2a599ull,
    0xadda7c5f3c4488e3ull, 0xd041dd676d77eeaaull, 0x56ed3e2f9e224471ull, 0x2b769f17cf112238ull};

static uint64_t bm__crc64(const unsigned char *p, size_t n) {
  uint64_t c = ~(uint64_t)0;
  while (n--) {
    c ^= *p++;
    c = (c >> 4) ^ bm__crc_nibble[c & 15];
    c = (c >> 4) ^ bm__crc_nibble[c & 15];
  }
  return ~c;
}

static void bm__put64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t bm__get64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static void bm__put32(unsigned char *p, uint32_t v) {
  int i;
  for (i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t bm__get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- The state word: its bytes in memory are the ASCII tag, on any host. */
static uint32_t bm__state_word(uint32_t state) {
  const char *tag;
  uint32_t w;
  switch (state) {
  case BM_STATE_LOADING: tag = "LOAD"; break;
  case BM_STATE_READY: tag = "REDY"; break;
  case BM_STATE_FAILED: tag = "FAIL"; break;
  default: return 0;
  }
  memcpy(&w, tag, 4);
  return w;
}

static uint32_t bm__word_state(uint32_t w) {
  uint32_t s;
  for (s = BM_STATE_LOADING; s <= BM_STATE_FAILED; s++)
    if (w != 0 && w == bm__state_word(s)) return s;
  return 0;
}

/* A section's trailer is page aligned, so the state word is naturally aligned and the
 * atomics are real; a caller's unaligned scratch buffer is private, so a plain copy is as
 * good there. */
static void bm__store_state(unsigned char *p, uint32_t w) {
  if (((uintptr_t)(p + BM__OFF_STATE) & 3) == 0)
    __atomic_store_n((uint32_t *)(void *)(p + BM__OFF_STATE), w, __ATOMIC_RELEASE);
  else
    memcpy(p + BM__OFF_STATE, &w, 4);
}

static uint32_t bm__load_state(const unsigned char *p, int order) {
  uint32_t w;
  if (((uintptr_t)(p + BM__OFF_STATE) & 3) == 0)
    return order == __ATOMIC_ACQUIRE
               ? __atomic_load_n((const uint32_t *)(const void *)(p + BM__OFF_STATE),
                                 __ATOMIC_ACQUIRE)
               : __atomic_load_n((const uint32_t *)(const void *)(p + BM__OFF_STATE),
                                 __ATOMIC_RELAXED);
  memcpy(&w, p + BM__OFF_STATE, 4);
  return w;
}

const char *bm_state_name(int state) {
  switch (state) {
  case BM_STATE_LOADING: return "loading";
  case BM_STATE_READY: return "ready";
  case BM_STATE_FAILED: return "failed";
  case BM_STATE_ABANDONED: return "abandoned";
  case BM_STATE_CORRUPT: return "corrupt";
  case BM_STATE_FOREIGN: return "foreign";
  case BM_STATE_UNREADABLE: return "unreadable";
  }
  return "unknown";
}

static int bm__page_ok(uint64_t ps) { return ps != 0 && (ps & (ps - 1)) == 0; }

/* A token's random part: exactly BM__TOKEN_LEN lowercase hex digits. */
static int bm__token_ok(const char *p) {
  int i;
  for (i = 0; i < BM__TOKEN_LEN; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
  return 1;
}

/* The format fields must describe bytes inside the payload, whatever the CRC says. */
static int bm__format_ok(const bm__trailer_t *t) {
  const bm_layout_t *l = &t->layout;
  uint64_t n = 0;
  uint32_t i;
  if (t->format == 0) return !t->has_layout && t->header_bytes == 0 && t->n_tensors == 0;
  if (t->format < BM_FORMAT_RAW || t->format > BM_FORMAT_SAFETENSORS) return 0;
  if (t->header_bytes > t->payload_size) return 0;
  if (t->format == BM_FORMAT_RAW && (t->header_bytes != 0 || t->has_layout)) return 0;
  if (t->format == BM_FORMAT_SAFETENSORS && (t->header_bytes < 10 || t->has_layout)) return 0;
  if (t->format != BM_FORMAT_SAFETENSORS && t->n_tensors != 0) return 0;
  if (t->format == BM_FORMAT_NPY && !t->has_layout) return 0;
  if (!t->has_layout) return 1;
  if (l->ndim > BM_MAX_DIMS || (l->order != 'C' && l->order != 'F') ||
      (l->byteorder != '<' && l->byteorder != '>' && l->byteorder != '|'))
    return 0;
  if (l->dtype == BM_DTYPE_NPY) {
    /* An npy dtype with no safetensors name (structured, strings, datetimes): its size is
     * the layout's, its descr in the compact layout beside the trailer block. */
    if (l->item_size == 0) return 0;
  } else if (bm_dtype_size(l->dtype) == 0 || l->item_size != bm_dtype_size(l->dtype) ||
             (l->byteorder == '|') != (l->item_size == 1)) {
    return 0;
  }
  n = l->item_size;
  for (i = 0; i < l->ndim; i++) {
    if (l->shape[i] == 0) n = 0;
    else if (n > UINT64_MAX / l->shape[i]) return 0;
    else n *= l->shape[i];
  }
  for (; i < BM_MAX_DIMS; i++)
    if (l->shape[i] != 0) return 0;
  return n == l->data_length && l->data_offset >= t->header_bytes &&
         l->data_offset <= t->payload_size && l->data_length <= t->payload_size - l->data_offset;
}

int bm__trailer_encode(void *bytes, const bm__trailer_t *t) {
  unsigned char *p = bytes;
  uint32_t w;
  int token;

  if (p == NULL || t == NULL) return BM_EINVAL;
  if ((w = bm__state_word(t->state)) == 0) return BM_EINVAL;
  if (!bm__page_ok(t->page_size)) return BM_EINVAL;
  if (t->large.requested < BM_LARGE_OFF || t->large.requested > BM_LARGE_ON ||
      t->large.reason < 0 || t->large.reason > BM__REASON_MAX3 ||
      !bm__page_ok(t->large.page_size))
    return BM_EINVAL;
  if (memchr(t->source, '\0', sizeof(t->source)) == NULL) return BM_EINVAL;
  if (!bm__format_ok(t)) return BM_EINVAL;
  if (t->writer_token[0] != '\0' &&
      (!bm__token_ok(t->writer_token) || t->writer_token[BM__TOKEN_LEN] != '\0'))
    return BM_EINVAL;
  token = t->state == BM_STATE_LOADING && t->writer_token[0] != '\0';

  /* Take the old state back first (seqlock style: the fence orders the invalid word
   * before the field stores), so that a reader never pairs an old `ready` with new
   * fields when a trailer is written over. */
  bm__store_state(p, 0);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  memcpy(p, BM__MAGIC, 8);
  /* The lowest version that holds what is written, so older readers read the rest. */
  bm__put32(p + BM__OFF_VERSION,
            token                               ? BM__VERSION_TOKEN
            : t->format > BM_FORMAT_RAW         ? BM__VERSION_FORMAT
            : t->large.reason > BM__REASON_MAX2 ? BM__VERSION_MOUNTS
                                                : BM__TRAILER_VERSION);
  bm__put64(p + BM__OFF_PAYLOAD, t->payload_size);
  bm__put64(p + BM__OFF_XXH3, t->xxh3);
  bm__put64(p + BM__OFF_PAGE, t->page_size);
  bm__put64(p + BM__OFF_PID, (uint64_t)t->writer_pid);
  bm__put64(p + BM__OFF_CREATED, (uint64_t)t->created);
  memset(p + BM__OFF_SOURCE, 0, BM__SOURCE_LEN);
  memcpy(p + BM__OFF_SOURCE, t->source, strlen(t->source));
  bm__put32(p + BM__OFF_REQUESTED, (uint32_t)t->large.requested);
  bm__put32(p + BM__OFF_REASON, (uint32_t)t->large.reason);
  bm__put32(p + BM__OFF_FLAGS, (t->large.obtained ? 1u : 0u) | (t->large.transparent ? 2u : 0u));
  bm__put32(p + BM__OFF_FLAGS + 4, 0);
  bm__put64(p + BM__OFF_LPAGE, (uint64_t)t->large.page_size);
  bm__put64(p + BM__OFF_NEEDED, t->large.pages_needed);
  bm__put64(p + BM__OFF_FREE, t->large.pages_free);
  memset(p + BM__OFF_ZERO, 0, BM__OFF_CRC - BM__OFF_ZERO);
  if (t->large.reason > BM__REASON_MAX2) {
    size_t m = 0;
    while (m < BM__MOUNT_LEN - 1 && t->large.mount[m] != '\0') m++;
    memcpy(p + BM__OFF_MOUNT, t->large.mount, m);
    bm__put64(p + BM__OFF_MLIMIT, t->large.mount_limit);
  }
  if (t->format > BM_FORMAT_RAW) {
    const bm_layout_t *l = &t->layout;
    int i;
    bm__put32(p + BM__OFF_FORMAT, (uint32_t)t->format);
    bm__put32(p + BM__OFF_TENSORS, t->n_tensors);
    bm__put64(p + BM__OFF_HBYTES, t->header_bytes);
    if (t->has_layout) {
      bm__put32(p + BM__OFF_DTYPE, (uint32_t)l->dtype);
      p[BM__OFF_BYTEORDER] = (unsigned char)l->byteorder;
      p[BM__OFF_ORDER] = (unsigned char)l->order;
      p[BM__OFF_HASLAYOUT] = 1;
      bm__put32(p + BM__OFF_NDIM, l->ndim);
      bm__put32(p + BM__OFF_ITEM, l->item_size);
      bm__put64(p + BM__OFF_DOFF, l->data_offset);
      bm__put64(p + BM__OFF_DLEN, l->data_length);
      for (i = 0; i < BM_MAX_DIMS; i++) bm__put64(p + BM__OFF_SHAPE + 8 * i, l->shape[i]);
    }
  }
  if (token) memcpy(p + BM__OFF_TOKEN, t->writer_token, BM__TOKEN_LEN);
  bm__put64(p + BM__OFF_CRC, bm__crc64(p + BM__OFF_VERSION, BM__OFF_CRC - BM__OFF_VERSION));
  bm__store_state(p, w); /* last, release: everything above is visible first */
  return 0;
}

int bm__trailer_decode(const void *bytes, uint64_t section_size, bm__trailer_t *out) {
  const unsigned char *p = bytes;
  unsigned char b[BM_TRAILER_SIZE];
  uint32_t w1 = 0, w2, state;
  uint64_t payload, page;
  uint32_t version;
  int tries;

  if (p == NULL || out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  /* Copy between two loads of the state; a trailer being written over is read again.
   * A writer publishes in microseconds, so a few tries are plenty. */
  for (tries = 0; tries < 64; tries++) {
    w1 = bm__load_state(p, __ATOMIC_ACQUIRE);
    memcpy(b, p, sizeof(b));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    w2 = bm__load_state(p, __ATOMIC_RELAXED);
    if (w1 == w2 && w1 != 0) break;
    if (w1 == w2 && memcmp(b, BM__MAGIC, 8) != 0) break;
  }
  if (memcmp(b, BM__MAGIC, 8) != 0) return BM_ENOTDATASET;
  if ((state = bm__word_state(w1)) == 0 || w1 != w2) return BM_ECORRUPT;
  if (bm__get64(b + BM__OFF_CRC) != bm__crc64(b + BM__OFF_VERSION, BM__OFF_CRC - BM__OFF_VERSION))
    return BM_ECORRUPT;
  version = bm__get32(b + BM__OFF_VERSION);
  if (version != 1 && version != BM__TRAILER_VERSION && version != BM__VERSION_MOUNTS &&
      version != BM__VERSION_FORMAT && version != BM__VERSION_TOKEN)
    return BM_ECORRUPT;

  /* The numbers must fit the section they describe, whatever the CRC says. */
  payload = bm__get64(b + BM__OFF_PAYLOAD);
  page = bm__get64(b + BM__OFF_PAGE);
  if (section_size < BM_TRAILER_SIZE) return BM_ECORRUPT;
  if (payload > section_size - BM_TRAILER_SIZE) return BM_ECORRUPT;
  /* Not `section_size % page`: a section that fell back to transparent huge pages keeps
   * the size it was asked for, which need not be a multiple of the PMD size. */
  if (!bm__page_ok(page) || page > section_size) return BM_ECORRUPT;
  if ((int64_t)bm__get64(b + BM__OFF_PID) <= 0) return BM_ECORRUPT;
  if (memchr(b + BM__OFF_SOURCE, '\0', BM__SOURCE_LEN) == NULL) return BM_ECORRUPT;

  out->version = version;
  out->state = state;
  out->payload_size = payload;
  out->xxh3 = bm__get64(b + BM__OFF_XXH3);
  out->page_size = page;
  out->writer_pid = (int64_t)bm__get64(b + BM__OFF_PID);
  out->created = (int64_t)bm__get64(b + BM__OFF_CREATED);
  memcpy(out->source, b + BM__OFF_SOURCE, BM__SOURCE_LEN);
  if (version == 1) {
    /* Version 1 did not record the request: say so rather than guess. */
    out->large.requested = -1;
    out->large.page_size = (size_t)page;
    out->large.obtained = page > 4096;
    return 0;
  }
  {
    uint32_t req = bm__get32(b + BM__OFF_REQUESTED), why = bm__get32(b + BM__OFF_REASON);
    uint32_t fl = bm__get32(b + BM__OFF_FLAGS);
    uint64_t lp = bm__get64(b + BM__OFF_LPAGE);
    uint32_t why_max = version >= BM__VERSION_MOUNTS ? BM__REASON_MAX3 : BM__REASON_MAX2;
    if (req > BM_LARGE_ON || why > why_max || (fl & ~3u) != 0 ||
        !bm__page_ok(lp) || lp > section_size)
      return BM_ECORRUPT;
    out->large.requested = (int)req;
    out->large.reason = (int)why;
    out->large.obtained = (fl & 1) != 0;
    out->large.transparent = (fl & 2) != 0;
    out->large.page_size = (size_t)lp;
    out->large.pages_needed = bm__get64(b + BM__OFF_NEEDED);
    out->large.pages_free = bm__get64(b + BM__OFF_FREE);
    if (version >= BM__VERSION_MOUNTS) {
      if (memchr(b + BM__OFF_MOUNT, '\0', BM__MOUNT_LEN) == NULL) return BM_ECORRUPT;
      memcpy(out->large.mount, b + BM__OFF_MOUNT, BM__MOUNT_LEN);
      out->large.mount_limit = bm__get64(b + BM__OFF_MLIMIT);
    }
  }
  out->format = BM_FORMAT_RAW;
  if (version >= BM__VERSION_FORMAT) {
    bm_layout_t *l = &out->layout;
    int i;
    out->format = (int)bm__get32(b + BM__OFF_FORMAT);
    out->n_tensors = bm__get32(b + BM__OFF_TENSORS);
    out->header_bytes = bm__get64(b + BM__OFF_HBYTES);
    if (b[BM__OFF_HASLAYOUT] > 1 || b[BM__OFF_HASLAYOUT + 1] != 0) return BM_ECORRUPT;
    out->has_layout = b[BM__OFF_HASLAYOUT];
    l->dtype = (int)bm__get32(b + BM__OFF_DTYPE);
    l->byteorder = (char)b[BM__OFF_BYTEORDER];
    l->order = (char)b[BM__OFF_ORDER];
    l->ndim = bm__get32(b + BM__OFF_NDIM);
    l->item_size = bm__get32(b + BM__OFF_ITEM);
    l->data_offset = bm__get64(b + BM__OFF_DOFF);
    l->data_length = bm__get64(b + BM__OFF_DLEN);
    for (i = 0; i < BM_MAX_DIMS; i++) l->shape[i] = bm__get64(b + BM__OFF_SHAPE + 8 * i);
    if (!out->has_layout) {
      uint64_t any = (uint64_t)l->dtype | (uint64_t)(unsigned char)l->byteorder |
                     (uint64_t)(unsigned char)l->order | l->ndim | l->item_size |
                     l->data_offset | l->data_length;
      for (i = 0; i < BM_MAX_DIMS; i++) any |= l->shape[i];
      if (any != 0) return BM_ECORRUPT;
    }
    if (out->format == BM_FORMAT_RAW || !bm__format_ok(out)) return BM_ECORRUPT;
  }
  if (version >= BM__VERSION_TOKEN) {
    /* Written only to name a token: one that names none is no version-5 trailer. */
    if (!bm__token_ok((const char *)b + BM__OFF_TOKEN)) return BM_ECORRUPT;
    memcpy(out->writer_token, b + BM__OFF_TOKEN, BM__TOKEN_LEN);
    out->writer_token[BM__TOKEN_LEN] = '\0';
  }
  return 0;
}

int bm__dataset_size(uint64_t payload, size_t page_size, uint64_t *size) {
  uint64_t n;
  if (size == NULL || !bm__page_ok(page_size)) return BM_EINVAL;
  *size = 0;
  if (payload > UINT64_MAX - BM_TRAILER_SIZE) return BM_EOVERFLOW;
  n = bm__align_up(payload + BM_TRAILER_SIZE, page_size);
  if (n == 0) return BM_EOVERFLOW;
  *size = n;
  return 0;
}

/* ---- The trailer through a view of the section's last BM_TRAILER_SIZE bytes. Guarded:
 * shared memory that cannot get a page (tmpfs full) faults on the first write, and a
 * section cut short by another process faults on a read. */

typedef struct {
  void *at;
  bm__trailer_t *t;
  uint64_t section;
  int write;
} bm__trailer_call_t;

static int bm__trailer_call(void *arg) {
  bm__trailer_call_t *c = arg;
  return c->write ? bm__trailer_encode(c->at, c->t) : bm__trailer_decode(c->at, c->section, c->t);
}

/* 1 when the trailer at `at` has no state word yet and nothing but zeros, or the magic,
 * before it is stored. */
static int bm__unwritten_call(void *arg) {
  const unsigned char *p = ((bm__trailer_call_t *)arg)->at;
  size_t i;
  if (bm__load_state(p, __ATOMIC_ACQUIRE) != 0) return 0;
  if (memcmp(p, BM__MAGIC, 8) == 0) return 1; /* being encoded: the state is stored last */
  for (i = 0; i < BM_TRAILER_SIZE; i++)
    if (p[i] != 0) return 0;
  return 1;
}

int bm__trailer_unwritten(bm_source_t *src, uint64_t section) {
  bm__trailer_call_t c;
  bm_view_t v;
  int r;
  if (section < BM_TRAILER_SIZE) return 0;
  r = bm_view_map(&v, src, section - BM_TRAILER_SIZE, BM_TRAILER_SIZE, BM_ACCESS_READ);
  if (r == BM_ERANGE) return BM_ETRUNCATED;
  if (r != 0) return r;
  memset(&c, 0, sizeof(c));
  c.at = v.data;
  r = bm_guard_call(bm__unwritten_call, &c);
  bm_view_unmap(&v);
  return r;
}

int bm__trailer_io(bm_source_t *src, uint64_t section, bm__trailer_t *t, int write) {
  bm__trailer_call_t c;
  bm_view_t v;
  uint64_t now;
  int err;

  if (section < BM_TRAILER_SIZE) return BM_ENOTDATASET;
  err = bm_view_map(&v, src, section - BM_TRAILER_SIZE, BM_TRAILER_SIZE,
                    write ? BM_ACCESS_WRITE : BM_ACCESS_READ);
  if (err == BM_ERANGE) return BM_ETRUNCATED;
  if (err != 0) return err;
  if (!write) err = bm_view_prefetch(&v);
  if (err == 0) {
    c.at = v.data;
    c.t = t;
    c.section = section;
    c.write = write;
    err = bm_guard_call(bm__trailer_call, &c);
  }
  bm_view_unmap(&v);
  if (write && err == BM_ETRUNCATED) return BM_ENOSPC;
  /* A section whose size changed since it was opened is being rewritten under us: what
   * was decoded may belong to another layout. */
  if (!write && (err == 0 || err == BM_ECORRUPT || err == BM_ENOTDATASET)) {
    int e2 = bm_source_size(src, &now);
    if (e2 != 0) return e2;
    if (now != section) return BM_ETRUNCATED;
  }
  return err;
}

/* ---- Judging a trailer: the state a reader sees. */

int bm__trailer_judge(bm_source_t *src, const bm__trailer_t *t) {
  int alive;
  if (t->state != BM_STATE_LOADING) return (int)t->state;
  alive = bm__os_writer_alive(src, t->writer_token);
  return alive == 0 ? BM_STATE_ABANDONED : BM_STATE_LOADING;
}
