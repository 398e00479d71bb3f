/* Typed payloads (docs/design.md section 6): the npy and safetensors header parsers, which judge
 * untrusted bytes with every size bounded, the dtype tables and the npy header writer.
 * The npy dict is a restricted Python literal, parsed here by hand; the safetensors header
 * is JSON, parsed with cJSON (Debian's libcjson), never by a parser of our own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "internal.h"

static const struct {
  const char *name;
  uint32_t size;
  char kind; /* numpy's kind of the unsigned view / the type itself */
} fmt_dtypes[BM__DTYPE_COUNT] = {
    [BM_DTYPE_NONE] = {"unknown", 0, 0},
    [BM_DTYPE_F64] = {"F64", 8, 'f'},
    [BM_DTYPE_F32] = {"F32", 4, 'f'},
    [BM_DTYPE_F16] = {"F16", 2, 'f'},
    [BM_DTYPE_BF16] = {"BF16", 2, 'u'},
    [BM_DTYPE_I64] = {"I64", 8, 'i'},
    [BM_DTYPE_I32] = {"I32", 4, 'i'},
    [BM_DTYPE_I16] = {"I16", 2, 'i'},
    [BM_DTYPE_I8] = {"I8", 1, 'i'},
    [BM_DTYPE_U64] = {"U64", 8, 'u'},
    [BM_DTYPE_U32] = {"U32", 4, 'u'},
    [BM_DTYPE_U16] = {"U16", 2, 'u'},
    [BM_DTYPE_U8] = {"U8", 1, 'u'},
    [BM_DTYPE_BOOL] = {"BOOL", 1, 'b'},
    [BM_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 'u'},
    [BM_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 'u'},
    [BM_DTYPE_C64] = {"C64", 8, 'c'},
    [BM_DTYPE_C128] = {"C128", 16, 'c'},
};

static int fmt_dtype_ok(int d) { return d > BM_DTYPE_NONE && d < BM__DTYPE_COUNT; }

const char *bm_dtype_name(int dtype) {
  return fmt_dtype_ok(dtype) ? fmt_dtypes[dtype].name : "unknown";
}

int bm_dtype_from_name(const char *name) {
  int d;
  if (name == NULL) return BM_DTYPE_NONE;
  for (d = 1; d < BM__DTYPE_COUNT; d++)
    if (strcmp(name, fmt_dtypes[d].name) == 0) return d;
  return BM_DTYPE_NONE;
}

uint32_t bm_dtype_size(int dtype) { return fmt_dtype_ok(dtype) ? fmt_dtypes[dtype].size : 0; }

const char *bm_dtype_descr(const bm_layout_t *l, char *buf, size_t n) {
  char bo;
  if (buf == NULL || n == 0) return "";
  buf[0] = '\0';
  if (l == NULL || !fmt_dtype_ok(l->dtype)) return buf;
  bo = fmt_dtypes[l->dtype].size == 1 ? '|' : l->byteorder == '>' ? '>' : '<';
  snprintf(buf, n, "%c%c%u", bo, fmt_dtypes[l->dtype].kind, (unsigned)fmt_dtypes[l->dtype].size);
  return buf;
}

const char *bm_format_name(int format) {
  switch (format) {
  case BM_FORMAT_AUTO: return "auto";
  case BM_FORMAT_RAW: return "raw";
  case BM_FORMAT_NPY: return "npy";
  case BM_FORMAT_SAFETENSORS: return "safetensors";
  }
  return "unknown";
}

int bm_format_from_name(const char *name, int *format) {
  int f;
  if (name == NULL || format == NULL) return BM_EINVAL;
  for (f = BM_FORMAT_AUTO; f <= BM_FORMAT_SAFETENSORS; f++)
    if (strcmp(name, bm_format_name(f)) == 0) {
      *format = f;
      return 0;
    }
  return BM_EINVAL;
}

static int fmt_bad(char *why, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fmt_bad(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  if (why != NULL && n > 0) {
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
  }
  bm__set_os_error(0);
  return BM_EFORMAT;
}

/* The shape's element count times item_size into *bytes; 0 on overflow. */
static int fmt_shape_bytes(const uint64_t *shape, uint32_t ndim, uint32_t item, uint64_t *bytes) {
  uint64_t p = item;
  uint32_t i;
  int zero = 0;
  for (i = 0; i < ndim; i++) {
    if (shape[i] == 0) zero = 1;
    else if (!zero && p > UINT64_MAX / shape[i]) return 0;
    else if (!zero) p *= shape[i];
  }
  *bytes = zero ? 0 : p;
  return 1;
}

static uint64_t fmt_le(const unsigned char *p, int k) {
  uint64_t v = 0;
  while (k-- > 0) v = (v << 8) | p[k];
  return v;
}

/* ---- npy: "\x93NUMPY", major, minor, the header length (2 bytes LE in version 1, 4 in 2
 * and 3), then the dict as a Python literal, padded with spaces and ended by '\n'. */

#define NPY_MAGIC "\x93NUMPY"

typedef struct {
  const unsigned char *p, *end;
} npy_in_t;

static void npy_ws(npy_in_t *in) {
  while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
    in->p++;
}

/* A quoted string with no escapes (the keys and descr numpy writes have none) into out. */
static int npy_string(npy_in_t *in, char *out, size_t n) {
  unsigned char q;
  size_t k = 0;
  if (in->p >= in->end || (*in->p != '\'' && *in->p != '"')) return 0;
  q = *in->p++;
  while (in->p < in->end && *in->p != q) {
    if (*in->p == '\\' || *in->p < 0x20 || k + 1 >= n) return 0;
    out[k++] = (char)*in->p++;
  }
  if (in->p >= in->end) return 0;
  in->p++;
  out[k] = '\0';
  return 1;
}

static int npy_word(npy_in_t *in, const char *w) {
  size_t k = strlen(w);
  if ((size_t)(in->end - in->p) < k || memcmp(in->p, w, k) != 0) return 0;
  in->p += k;
  return 1;
}

/* npy's descr: [<>|=]KIND SIZE; '=' is native, which numpy never writes (it normalizes). */
static int npy_descr(const char *d, bm_layout_t *l, char *why, size_t wn) {
  char bo = d[0], kind;
  unsigned long size;
  char *end;
  int dt = BM_DTYPE_NONE;
  if (bo != '<' && bo != '>' && bo != '|' && bo != '=')
    return fmt_bad(why, wn, "npy: descr '%s' lacks a byte order", d);
  if (bo == '=') bo = '<'; /* the hosts bulkmap runs on are little-endian */
  kind = d[1];
  if (kind == 'O') return fmt_bad(why, wn, "npy: object dtype '%s' (pickled Python objects) refused", d);
  if (kind == '\0' || d[2] < '1' || d[2] > '9')
    return fmt_bad(why, wn, "npy: unknown dtype '%s'", d);
  size = strtoul(d + 2, &end, 10);
  if (*end != '\0') return fmt_bad(why, wn, "npy: unknown dtype '%s'", d);
  switch (kind) {
  case 'f': dt = size == 2 ? BM_DTYPE_F16 : size == 4 ? BM_DTYPE_F32 : size == 8 ? BM_DTYPE_F64 : 0; break;
  case 'i': dt = size == 1 ? BM_DTYPE_I8 : size == 2 ? BM_DTYPE_I16 : size == 4 ? BM_DTYPE_I32 : size == 8 ? BM_DTYPE_I64 : 0; break;
  case 'u': dt = size == 1 ? BM_DTYPE_U8 : size == 2 ? BM_DTYPE_U16 : size == 4 ? BM_DTYPE_U32 : size == 8 ? BM_DTYPE_U64 : 0; break;
  case 'b': dt = size == 1 ? BM_DTYPE_BOOL : 0; break;
  case 'c': dt = size == 8 ? BM_DTYPE_C64 : size == 16 ? BM_DTYPE_C128 : 0; break;
  }
  if (dt == BM_DTYPE_NONE) return fmt_bad(why, wn, "npy: unknown or unsupported dtype '%s'", d);
  if (size > 1 && bo == '|') return fmt_bad(why, wn, "npy: dtype '%s' of %lu bytes has no byte order", d, size);
  l->dtype = dt;
  l->item_size = (uint32_t)size;
  l->byteorder = size == 1 ? '|' : bo;
  return 0;
}

static int npy_shape(npy_in_t *in, bm_layout_t *l, char *why, size_t wn) {
  if (in->p >= in->end || *in->p != '(') return fmt_bad(why, wn, "npy: shape is not a tuple");
  in->p++;
  l->ndim = 0;
  for (;;) {
    uint64_t v = 0;
    int digits = 0;
    npy_ws(in);
    if (in->p < in->end && *in->p == ')') break;
    while (in->p < in->end && *in->p >= '0' && *in->p <= '9') {
      unsigned dgt = (unsigned)(*in->p - '0');
      if (v > (UINT64_MAX / 2 - dgt) / 10) return fmt_bad(why, wn, "npy: a dimension of the shape overflows");
      v = v * 10 + dgt;
      in->p++;
      digits++;
    }
    if (digits == 0) return fmt_bad(why, wn, "npy: shape holds something other than non-negative integers");
    if (l->ndim >= BM_MAX_DIMS) return fmt_bad(why, wn, "npy: more than %d dimensions", BM_MAX_DIMS);
    l->shape[l->ndim++] = v;
    npy_ws(in);
    if (in->p < in->end && *in->p == ',') {
      in->p++;
      continue;
    }
    if (in->p < in->end && *in->p == ')') break;
    return fmt_bad(why, wn, "npy: shape tuple is malformed");
  }
  in->p++;
  return 0;
}

static int npy_check(const unsigned char *h, size_t n, uint64_t size, bm_format_info_t *out,
                     char *why, size_t wn) {
  uint64_t hlen, hbytes, data;
  int lenb, seen = 0, err;
  npy_in_t in;
  bm_layout_t *l = &out->layout;

  if (size < 10 || n < 10) return fmt_bad(why, wn, "npy: the file ends inside the magic and version");
  if (h[6] < 1 || h[6] > 3) return fmt_bad(why, wn, "npy: unknown format version %u.%u", h[6], h[7]);
  lenb = h[6] == 1 ? 2 : 4;
  if (size < 8u + (uint64_t)lenb || n < 8u + (size_t)lenb)
    return fmt_bad(why, wn, "npy: the file ends inside the header length");
  hlen = fmt_le(h + 8, lenb);
  hbytes = 8u + (uint64_t)lenb + hlen;
  if (hlen > BM_NPY_HEADER_MAX)
    return fmt_bad(why, wn, "npy: header of %llu bytes is over the limit of %u", (unsigned long long)hlen, BM_NPY_HEADER_MAX);
  if (hbytes > size)
    return fmt_bad(why, wn, "npy: header of %llu bytes is longer than the file (%llu bytes)",
                   (unsigned long long)hbytes, (unsigned long long)size);
  if (hbytes > n) return fmt_bad(why, wn, "npy: header truncated (%zu of %llu bytes given)", n, (unsigned long long)hbytes);

  in.p = h + 8 + lenb;
  in.end = h + hbytes;
  npy_ws(&in);
  if (in.p >= in.end || *in.p != '{') return fmt_bad(why, wn, "npy: header is not a dict");
  in.p++;
  l->order = 'C';
  for (;;) {
    char key[32], val[64];
    npy_ws(&in);
    if (in.p < in.end && *in.p == '}') break;
    if (!npy_string(&in, key, sizeof(key))) return fmt_bad(why, wn, "npy: header dict key is not a plain string");
    npy_ws(&in);
    if (in.p >= in.end || *in.p != ':') return fmt_bad(why, wn, "npy: header dict lacks ':'");
    in.p++;
    npy_ws(&in);
    if (strcmp(key, "descr") == 0 && !(seen & 1)) {
      if (in.p < in.end && (*in.p == '[' || *in.p == '{'))
        return fmt_bad(why, wn, "npy: structured dtypes are not supported");
      if (!npy_string(&in, val, sizeof(val))) return fmt_bad(why, wn, "npy: descr is not a plain string");
      if ((err = npy_descr(val, l, why, wn)) != 0) return err;
      seen |= 1;
    } else if (strcmp(key, "fortran_order") == 0 && !(seen & 2)) {
      if (npy_word(&in, "True")) l->order = 'F';
      else if (npy_word(&in, "False")) l->order = 'C';
      else return fmt_bad(why, wn, "npy: fortran_order is not True or False");
      seen |= 2;
    } else if (strcmp(key, "shape") == 0 && !(seen & 4)) {
      if ((err = npy_shape(&in, l, why, wn)) != 0) return err;
      seen |= 4;
    } else {
      return fmt_bad(why, wn, "npy: unexpected or repeated key '%s' in the header dict", key);
    }
    npy_ws(&in);
    if (in.p < in.end && *in.p == ',') {
      in.p++;
      continue;
    }
    if (in.p < in.end && *in.p == '}') break;
    return fmt_bad(why, wn, "npy: header dict is malformed");
  }
  in.p++;
  npy_ws(&in);
  if (in.p != in.end) return fmt_bad(why, wn, "npy: bytes after the header dict");
  if (seen != 7) return fmt_bad(why, wn, "npy: header dict lacks %s", !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
  if (!fmt_shape_bytes(l->shape, l->ndim, l->item_size, &l->data_length))
    return fmt_bad(why, wn, "npy: the shape's size in bytes overflows");
  data = size - hbytes;
  if (l->data_length != data)
    return fmt_bad(why, wn, "npy: shape and dtype need %llu bytes of data, the file has %llu",
                   (unsigned long long)l->data_length, (unsigned long long)data);
  l->data_offset = hbytes;
  out->format = BM_FORMAT_NPY;
  out->has_layout = 1;
  out->header_bytes = hbytes;
  return 0;
}

/* ---- safetensors: u64 LE N, N bytes of JSON, the data. */

/* An exact non-negative integer from a JSON number (cJSON keeps numbers as doubles: 2^53
 * and beyond cannot be told exactly, so they are refused). */
static int st_uint(const cJSON *j, uint64_t *v) {
  double d;
  if (!cJSON_IsNumber(j)) return 0;
  d = j->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
  *v = (uint64_t)d;
  return 1;
}

static int st_cmp_offset(const void *a, const void *b) {
  const bm_tensor_t *x = a, *y = b;
  return x->layout.data_offset < y->layout.data_offset ? -1 : x->layout.data_offset > y->layout.data_offset;
}

static int st_cmp_name(const void *a, const void *b) {
  return strcmp((*(const bm_tensor_t *const *)a)->name, (*(const bm_tensor_t *const *)b)->name);
}

/* Parses and checks every tensor; with list non-NULL returns them (names copied). */
static int st_check(const unsigned char *h, size_t n, uint64_t size, bm_format_info_t *out,
                    bm_tensor_t **list, size_t *count, char *why, size_t wn) {
  uint64_t hlen, data;
  cJSON *root, *e;
  bm_tensor_t *t = NULL;
  size_t nt = 0, cap = 0, i, names = 0;
  int err = 0;

  if (size < 8 || n < 8) return fmt_bad(why, wn, "safetensors: the file ends inside the header length");
  hlen = fmt_le(h, 8);
  if (hlen > BM_SAFETENSORS_HEADER_MAX)
    return fmt_bad(why, wn, "safetensors: header of %llu bytes is over the limit of %u (100 MB)",
                   (unsigned long long)hlen, BM_SAFETENSORS_HEADER_MAX);
  if (hlen > size - 8)
    return fmt_bad(why, wn, "safetensors: header of %llu bytes is longer than the file (%llu bytes)",
                   (unsigned long long)hlen, (unsigned long long)size);
  if (hlen + 8 > n) return fmt_bad(why, wn, "safetensors: header truncated");
  if (hlen < 2 || h[8] != '{') return fmt_bad(why, wn, "safetensors: header is not a JSON object");
  data = size - 8 - hlen;
  root = cJSON_ParseWithLength((const char *)h + 8, (size_t)hlen);
  if (root == NULL) {
    /* cJSON_GetErrorPtr is global state, not thread-safe: say where without it. */
    return fmt_bad(why, wn, "safetensors: header is not valid JSON");
  }
  if (!cJSON_IsObject(root)) {
    err = fmt_bad(why, wn, "safetensors: header is not a JSON object");
    goto out;
  }
  for (e = root->child; e != NULL; e = e->next) {
    const cJSON *dt, *sh, *off, *x;
    bm_layout_t l;
    uint64_t b, en;
    int k;
    if (e->string == NULL) {
      err = fmt_bad(why, wn, "safetensors: header entry without a name");
      goto out;
    }
    if (strcmp(e->string, "__metadata__") == 0) {
      if (!cJSON_IsObject(e)) {
        err = fmt_bad(why, wn, "safetensors: __metadata__ is not an object");
        goto out;
      }
      for (x = e->child; x != NULL; x = x->next)
        if (!cJSON_IsString(x)) {
          err = fmt_bad(why, wn, "safetensors: __metadata__ values must be strings");
          goto out;
        }
      continue;
    }
    if (!cJSON_IsObject(e)) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s' is not an object", e->string);
      goto out;
    }
    dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    k = 0;
    for (x = e->child; x != NULL; x = x->next) k++;
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || k != 3) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s' needs exactly dtype, shape and data_offsets", e->string);
      goto out;
    }
    memset(&l, 0, sizeof(l));
    if ((l.dtype = bm_dtype_from_name(dt->valuestring)) == BM_DTYPE_NONE ||
        l.dtype == BM_DTYPE_C64 || l.dtype == BM_DTYPE_C128) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s' has unknown dtype '%.32s'", e->string, dt->valuestring);
      goto out;
    }
    l.item_size = bm_dtype_size(l.dtype);
    l.byteorder = l.item_size == 1 ? '|' : '<';
    l.order = 'C';
    for (x = sh->child; x != NULL; x = x->next) {
      if (l.ndim >= BM_MAX_DIMS) {
        err = fmt_bad(why, wn, "safetensors: tensor '%.64s' has more than %d dimensions", e->string, BM_MAX_DIMS);
        goto out;
      }
      if (!st_uint(x, &l.shape[l.ndim])) {
        err = fmt_bad(why, wn, "safetensors: tensor '%.64s' has a shape of other than non-negative integers", e->string);
        goto out;
      }
      l.ndim++;
    }
    if (cJSON_GetArraySize(off) != 2 || !st_uint(off->child, &b) || !st_uint(off->child->next, &en) || b > en) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s' has malformed data_offsets", e->string);
      goto out;
    }
    if (en > data) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s' ends at %llu, past the data's %llu bytes", e->string,
                    (unsigned long long)en, (unsigned long long)data);
      goto out;
    }
    if (!fmt_shape_bytes(l.shape, l.ndim, l.item_size, &l.data_length)) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s': the shape's size in bytes overflows", e->string);
      goto out;
    }
    if (l.data_length != en - b) {
      err = fmt_bad(why, wn, "safetensors: tensor '%.64s': shape and dtype need %llu bytes, data_offsets give %llu",
                    e->string, (unsigned long long)l.data_length, (unsigned long long)(en - b));
      goto out;
    }
    l.data_offset = 8 + hlen + b;
    if (nt == cap) {
      size_t nc = cap ? cap * 2 : 16;
      bm_tensor_t *g = realloc(t, nc * sizeof(*t));
      if (g == NULL) {
        err = BM_ENOMEM;
        goto out;
      }
      t = g;
      cap = nc;
    }
    t[nt].name = e->string; /* for now: points into the tree */
    t[nt].layout = l;
    names += strlen(e->string) + 1;
    nt++;
  }
  if (nt > 1) {
    bm_tensor_t **byname = malloc(nt * sizeof(*byname));
    if (byname == NULL) {
      err = BM_ENOMEM;
      goto out;
    }
    for (i = 0; i < nt; i++) byname[i] = &t[i];
    qsort(byname, nt, sizeof(*byname), st_cmp_name);
    for (i = 1; i < nt && err == 0; i++)
      if (strcmp(byname[i - 1]->name, byname[i]->name) == 0)
        err = fmt_bad(why, wn, "safetensors: tensor '%.64s' appears twice", byname[i]->name);
    free(byname);
    if (err != 0) goto out;
    qsort(t, nt, sizeof(*t), st_cmp_offset);
    for (i = 1; i < nt; i++) {
      const bm_layout_t *a = &t[i - 1].layout, *c = &t[i].layout;
      if (c->data_offset < a->data_offset + a->data_length) {
        err = fmt_bad(why, wn, "safetensors: tensors '%.64s' and '%.64s' overlap", t[i - 1].name, t[i].name);
        goto out;
      }
    }
  }
  if (out != NULL) {
    out->format = BM_FORMAT_SAFETENSORS;
    out->header_bytes = 8 + hlen;
    out->n_tensors = (uint32_t)nt;
    if ((size_t)out->n_tensors != nt) {
      err = fmt_bad(why, wn, "safetensors: too many tensors");
      goto out;
    }
  }
  if (list != NULL && nt > 0) {
    /* One block: the entries, then their names. */
    char *q;
    bm_tensor_t *r = malloc(nt * sizeof(*r) + names);
    if (r == NULL) {
      err = BM_ENOMEM;
      goto out;
    }
    q = (char *)(r + nt);
    for (i = 0; i < nt; i++) {
      size_t k = strlen(t[i].name) + 1;
      memcpy(q, t[i].name, k);
      r[i].layout = t[i].layout;
      r[i].name = q;
      q += k;
    }
    *list = r;
    *count = nt;
  }
out:
  free(t);
  cJSON_Delete(root);
  return err;
}

/* Looks like safetensors: a header length that fits the file, then a JSON object. */
static int st_looks(const unsigned char *h, size_t n, uint64_t size) {
  uint64_t hlen;
  if (n < 9 || size < 10) return 0;
  hlen = fmt_le(h, 8);
  return hlen >= 2 && hlen <= size - 8 && h[8] == '{';
}

static int fmt_pick(const unsigned char *h, size_t n, uint64_t size, int format) {
  if (format != BM_FORMAT_AUTO) return format;
  if (n >= 6 && size >= 6 && memcmp(h, NPY_MAGIC, 6) == 0) return BM_FORMAT_NPY;
  if (st_looks(h, n, size)) return BM_FORMAT_SAFETENSORS;
  return BM_FORMAT_RAW;
}

int bm_format_check(const void *head, size_t n, uint64_t size, int format, bm_format_info_t *out,
                    char *why, size_t wn) {
  const unsigned char *h = head;
  bm_format_info_t scratch;
  if (why != NULL && wn > 0) why[0] = '\0';
  if (out == NULL) out = &scratch;
  memset(out, 0, sizeof(*out));
  if ((head == NULL && n > 0) || format < BM_FORMAT_AUTO || format > BM_FORMAT_SAFETENSORS)
    return BM_EINVAL;
  if ((uint64_t)n > size) n = (size_t)size;
  format = fmt_pick(h, n, size, format);
  switch (format) {
  case BM_FORMAT_NPY:
    if (n < 6 || memcmp(h, NPY_MAGIC, 6) != 0) return fmt_bad(why, wn, "npy: no \\x93NUMPY magic at the start");
    return npy_check(h, n, size, out, why, wn);
  case BM_FORMAT_SAFETENSORS:
    return st_check(h, n, size, out, NULL, NULL, why, wn);
  }
  out->format = BM_FORMAT_RAW;
  return 0;
}

int bm_format_tensors(const void *head, size_t n, uint64_t size, bm_tensor_t **out,
                      size_t *count, char *why, size_t wn) {
  bm_format_info_t fi;
  if (why != NULL && wn > 0) why[0] = '\0';
  if (out == NULL || count == NULL || (head == NULL && n > 0)) return BM_EINVAL;
  *out = NULL;
  *count = 0;
  if ((uint64_t)n > size) n = (size_t)size;
  memset(&fi, 0, sizeof(fi));
  return st_check(head, n, size, &fi, out, count, why, wn);
}

void bm_tensors_free(bm_tensor_t *tensors) { free(tensors); }

int bm_npy_header(const bm_layout_t *l, void *buf, size_t n, size_t *len) {
  char dict[BM_MAX_DIMS * 22 + 128], descr[8];
  bm_layout_t v;
  size_t k, total, pre, pad;
  uint32_t i;
  uint64_t bytes;
  if (l == NULL || len == NULL || !fmt_dtype_ok(l->dtype) || l->ndim > BM_MAX_DIMS) return BM_EINVAL;
  if (l->order != 0 && l->order != 'C' && l->order != 'F') return BM_EINVAL;
  if (l->byteorder != 0 && l->byteorder != '<' && l->byteorder != '>' && l->byteorder != '|') return BM_EINVAL;
  if (!fmt_shape_bytes(l->shape, l->ndim, bm_dtype_size(l->dtype), &bytes)) return BM_EOVERFLOW;
  v = *l;
  bm_dtype_descr(&v, descr, sizeof(descr));
  k = (size_t)snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr,
                       l->order == 'F' ? "True" : "False");
  for (i = 0; i < l->ndim; i++)
    k += (size_t)snprintf(dict + k, sizeof(dict) - k, "%llu,%s", (unsigned long long)l->shape[i],
                          i + 1 < l->ndim ? " " : "");
  if (l->ndim > 1) k--; /* "(3, 4)" but "(3,)" */
  k += (size_t)snprintf(dict + k, sizeof(dict) - k, "), }");
  /* Version 1.0 while the length fits 16 bits (always, for BM_MAX_DIMS dimensions). */
  pre = 10;
  total = pre + k + 1;
  pad = (64 - total % 64) % 64;
  total += pad;
  *len = total;
  if (buf == NULL && n == 0) return 0;
  if (buf == NULL || n < total) return BM_ENOSPC;
  memcpy(buf, NPY_MAGIC "\x01\x00", 8);
  ((unsigned char *)buf)[8] = (unsigned char)((total - pre) & 0xff);
  ((unsigned char *)buf)[9] = (unsigned char)((total - pre) >> 8);
  memcpy((char *)buf + pre, dict, k);
  memset((char *)buf + pre + k, ' ', pad);
  ((char *)buf)[total - 1] = '\n';
  return 0;
}

/* ---- Reading a header from a source: copied out (the parsers then see bytes that cannot
 * change under them), guarded (a source cut short raises no SIGBUS). */

typedef struct {
  unsigned char *dst;
  const void *src;
  size_t n;
} fmt_copy_t;

static int fmt_copy(void *arg) {
  fmt_copy_t *c = arg;
  memcpy(c->dst, c->src, c->n);
  return 0;
}

static int fmt_read_at(bm_source_t *src, uint64_t off, unsigned char *dst, size_t n) {
  bm_view_t v;
  fmt_copy_t c;
  int err;
  if (n == 0) return 0;
  if ((err = bm_view_map(&v, src, off, n, BM_ACCESS_READ)) != 0) return err == BM_ERANGE ? BM_ETRUNCATED : err;
  c.dst = dst;
  c.src = v.data;
  c.n = n;
  err = bm_guard_call(fmt_copy, &c);
  bm_view_unmap(&v);
  return err;
}

int bm__format_read(bm_source_t *src, uint64_t size, unsigned char **buf, size_t *n) {
  unsigned char head[16];
  size_t k = (size_t)(size < sizeof(head) ? size : sizeof(head)), need = k;
  int err;
  *buf = NULL;
  *n = 0;
  if ((err = fmt_read_at(src, 0, head, k)) != 0) return err;
  if (k >= 10 && memcmp(head, NPY_MAGIC, 6) == 0) {
    uint64_t h = head[6] == 1 ? fmt_le(head + 8, 2) : k >= 12 ? fmt_le(head + 8, 4) : 0;
    if (h <= BM_NPY_HEADER_MAX) need = (size_t)(12 + h);
  } else if (k >= 9) {
    uint64_t h = fmt_le(head, 8);
    if (h <= BM_SAFETENSORS_HEADER_MAX) need = (size_t)(8 + h);
  }
  if ((uint64_t)need > size) need = (size_t)size;
  if ((*buf = malloc(need > 0 ? need : 1)) == NULL) return BM_ENOMEM;
  memcpy(*buf, head, k < need ? k : need);
  if (need > k && (err = fmt_read_at(src, k, *buf + k, need - k)) != 0) {
    free(*buf);
    *buf = NULL;
    return err;
  }
  *n = need;
  return 0;
}
