/* libFuzzer: the npy and safetensors header parsers (bm_format_check, bm_format_tensors,
 * bm_format_metadata) and the compact layout (bm__layout_encode / _decode) on arbitrary
 * bytes, given in a buffer of exactly their size (ASan sees any read past it) and claimed
 * to start a payload of a size taken from the input. Whatever they accept must lie inside
 * that payload and follow the rules of docs/formats.md: the npy array's data within the
 * file (bytes after it allowed, as numpy allows them), safetensors tensors contiguous from
 * the header's end to the payload's end exactly, every size the product of its shape
 * (sub-byte dtypes in bits, ending on a byte), names valid UTF-8 of their stated length;
 * what the header says encodes to a blob that decodes to the same, and any cut or changed
 * blob is refused with BM_ECORRUPT (never a crash, never accepted as other). */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static void check_layout(const bm_layout_t *l, uint64_t size, int exact) {
  uint64_t n, bits;
  uint32_t i;
  int zero = 0;
  if (l->ndim > BM_MAX_DIMS) abort();
  if (l->dtype == BM_DTYPE_NPY) bits = (uint64_t)l->item_size * 8;
  else {
    bits = bm_dtype_bits(l->dtype);
    if (bits == 0 || l->item_size != bm_dtype_size(l->dtype)) abort();
  }
  n = bits;
  for (i = 0; i < l->ndim; i++) {
    if (l->shape[i] == 0) zero = 1;
    else {
      if (n != 0 && l->shape[i] > UINT64_MAX / n) abort(); /* an overflow let through */
      n *= l->shape[i];
    }
  }
  if (zero) n = 0;
  if (n % 8 != 0 || n / 8 != l->data_length || l->data_offset > size || l->data_length > size - l->data_offset) abort();
  if (exact && l->data_offset + l->data_length != size) abort();
}

static void check_blob(const bm_format_info_t *fi, const unsigned char *h, size_t n) {
  unsigned char *blob = NULL;
  size_t bn = 0, nt = 0, nm = 0;
  bm_format_info_t back;
  bm_tensor_t *t = NULL;
  bm_meta_t *m = NULL;
  char *d = NULL;
  int err = bm__layout_encode(fi, h, n, &blob, &bn);
  if (err == BM_ENOMEM) return;
  if (err != 0) abort(); /* what was judged good encodes */
  err = bm__layout_decode(blob, bn, &back, &t, &nt, &m, &nm, &d);
  if (err == 0) {
    if (back.format != fi->format || back.header_bytes != fi->header_bytes || back.n_tensors != fi->n_tensors ||
        nt != fi->n_tensors || back.has_layout != fi->has_layout)
      abort();
    if (fi->has_layout && (back.layout.data_length != fi->layout.data_length || back.layout.ndim != fi->layout.ndim))
      abort();
  } else if (err != BM_ENOMEM) abort();
  bm_tensors_free(t);
  bm_metadata_free(m);
  free(d);
  t = NULL, m = NULL, d = NULL;
  if (bn > 0) { /* a cut and a flipped byte: refused */
    size_t cut = (bn * 7 / 11) % bn, flip = (bn * 5 / 13) % bn;
    if (bm__layout_decode(blob, cut, &back, &t, &nt, &m, &nm, &d) != BM_ECORRUPT) abort();
    blob[flip] ^= 0x10;
    if (bm__layout_decode(blob, bn, &back, &t, &nt, &m, &nm, &d) != BM_ECORRUPT) abort();
  }
  free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  bm_format_info_t fi;
  bm_tensor_t *t = NULL;
  bm_meta_t *m = NULL;
  size_t count = 0, mc = 0, i;
  char why[BM_WHY_MAX];
  uint64_t size;
  unsigned char *buf;
  int format, err;
  if (n < 2) return 0;
  /* data[0]: the format asked for, and how far past the given bytes the payload runs. */
  format = data[0] & 3;
  size = (uint64_t)(n - 1) + ((data[0] >> 2) & 1 ? ((uint64_t)data[1] << (data[0] >> 3)) : 0);
  n -= 1;
  buf = malloc(n ? n : 1);
  memcpy(buf, data + 1, n);
  err = bm_format_check(buf, n, size, format, &fi, why, sizeof(why));
  if (err == 0) {
    if (fi.format < BM_FORMAT_RAW || fi.format > BM_FORMAT_SAFETENSORS) abort();
    if (fi.header_bytes > size || fi.payload_size != size) abort();
    if (fi.has_layout) check_layout(&fi.layout, size, 0);
    if (size == n) check_blob(&fi, buf, n);
  } else if (err != BM_EFORMAT && err != BM_ENOMEM) {
    abort();
  } else if (err == BM_EFORMAT && why[0] == '\0') {
    abort(); /* a refusal always says why */
  }
  /* The tensor list reads the bytes as safetensors whatever the magic: it must agree with
   * a check asked for safetensors. */
  if (err != 0 || fi.format != BM_FORMAT_SAFETENSORS)
    err = bm_format_check(buf, n, size, BM_FORMAT_SAFETENSORS, &fi, why, sizeof(why));
  if (bm_format_tensors(buf, n, size, &t, &count, why, sizeof(why)) == 0) {
    uint64_t at = fi.header_bytes;
    if (err != 0 || fi.format != BM_FORMAT_SAFETENSORS || count != fi.n_tensors) abort();
    for (i = 0; i < count; i++) {
      check_layout(&t[i].layout, size, 0);
      if (t[i].layout.data_offset != at) abort(); /* contiguous, no gap, no overlap */
      at += t[i].layout.data_length;
      if (t[i].name == NULL || t[i].name[t[i].name_len] != '\0') abort();
    }
    if (at != size) abort(); /* the buffer is exactly 8 + N + the data's end */
    bm_tensors_free(t);
    if (bm_format_metadata(buf, n, size, &m, &mc, why, sizeof(why)) != 0 || mc != fi.n_metadata) abort();
    bm_metadata_free(m);
  }
  free(buf);
  return 0;
}
