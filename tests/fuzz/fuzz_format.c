/* libFuzzer: the npy and safetensors header parsers (bm_format_check, bm_format_tensors)
 * on arbitrary bytes, given in a buffer of exactly their size (ASan sees any read past it)
 * and claimed to start a payload of a size taken from the input. Whatever they accept must
 * lie inside that payload: the layout's data within it, each tensor's range inside the data,
 * sorted and apart, every size the product of its shape. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static void check_layout(const bm_layout_t *l, uint64_t size) {
  uint64_t n = l->item_size;
  uint32_t i;
  if (l->item_size == 0 || l->item_size != bm_dtype_size(l->dtype) || l->ndim > BM_MAX_DIMS) abort();
  for (i = 0; i < l->ndim; i++) n = l->shape[i] == 0 || n == 0 ? 0 : n * l->shape[i];
  if (n != l->data_length || l->data_offset > size || l->data_length > size - l->data_offset) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  bm_format_info_t fi;
  bm_tensor_t *t = NULL;
  size_t count = 0, i;
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
    if (fi.header_bytes > size) abort();
    if (fi.has_layout) {
      check_layout(&fi.layout, size);
      if (fi.layout.data_offset + fi.layout.data_length != size) abort();
    }
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
    if (err != 0 || fi.format != BM_FORMAT_SAFETENSORS || count != fi.n_tensors) abort();
    for (i = 0; i < count; i++) {
      check_layout(&t[i].layout, size);
      if (t[i].layout.data_offset < fi.header_bytes) abort();
      if (i > 0 && t[i].layout.data_offset < t[i - 1].layout.data_offset + t[i - 1].layout.data_length) abort();
      if (t[i].name == NULL) abort();
    }
    bm_tensors_free(t);
  }
  free(buf);
  return 0;
}
