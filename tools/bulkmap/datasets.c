/* The dataset commands' shared wording: errors about sections and the trailer's fields. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "datasets.h"
#include "plat.h"

int ds_report(const char *name, int err) {
  cli_lib_error(name, err); /* the library's words (bm_errmsg) */
  return cli_exit_for(err);
}

int ds_parse_mode(const char *cmd, const char *text, unsigned *mode) {
  char *end;
  unsigned long v;
  if (text[0] < '0' || text[0] > '7') goto bad;
  v = strtoul(text, &end, 8);
  if (*end != '\0' || v > 0777 || strlen(text) > 4) goto bad;
  /* A dataset its owner cannot read could not be cat, stat'ed or verified by anyone but
   * root: --mode 0 or 0044 is a mistake, not a wish (the owner may always remove it). */
  if ((v & 0400) == 0)
    return cli_usage(cmd, "--mode %s: the owner must be able to read the section (0400); "
                     "e.g. 0600 (the default), 0640 or 0644", text);
  *mode = (unsigned)v;
  return 0;
bad:
  return cli_usage(cmd, "--mode '%s': expected octal permission bits, 0400 to 0777 (e.g. 0640)",
                   text);
}

void ds_out_info(cli_out_t *out, const bm_dataset_info_t *info) {
  out_str(out, "name", info->name);
  out_u64(out, "bytes", info->bytes);
  if (info->has_xxh3) out_hex64(out, "xxh3", info->xxh3);
  else out_str(out, "xxh3", NULL);
  out_str(out, "state", bm_state_name(info->state));
  out_u64(out, "page_size", info->page_size);
  out_large(out, &info->large);
  ds_out_format(out, info);
}

int ds_parse_format(const char *cmd, const char *text, bm_format_t *format) {
  if (text == NULL) {
    *format = BM_FORMAT_AUTO;
    return 0;
  }
  if (bm_format_from_name(text, format) == 0) return 0;
  return cli_usage(cmd, "--format '%s': expected auto, raw, npy or safetensors", text);
}

/* "(3, 4)", "(3,)", "()": the shape as numpy prints it. */
static void ds_shape_text(const uint64_t *shape, uint32_t ndim, char *buf, size_t n) {
  size_t k = 0;
  uint32_t i;
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

static void ds_out_layout(cli_out_t *out, int state, int format, int has_layout,
                          const bm_layout_t *l) {
  char shape[BM_MAX_DIMS * 22 + 8], descr[8];
  int known = state != BM_STATE_CORRUPT && state != BM_STATE_FOREIGN && state != BM_STATE_UNREADABLE;
  out_str(out, "format", known ? bm_format_name(format != 0 ? format : BM_FORMAT_RAW) : NULL);
  if (!has_layout) {
    if (out->json) out_str(out, "layout", NULL);
    return;
  }
  ds_shape_text(l->shape, l->ndim, shape, sizeof(shape));
  bm_dtype_descr(l, descr, sizeof(descr));
  if (!out->json) {
    out_str(out, "dtype", bm_dtype_name(l->dtype));
    out_str(out, "shape", shape);
    out_str(out, "order", l->order == 'F' ? "F" : "C");
    out_u64(out, "data_offset", l->data_offset);
    return;
  }
  out_obj_begin(out, "layout");
  out_str(out, "dtype", bm_dtype_name(l->dtype));
  out_arr_u64(out, "shape", l->shape, (int)l->ndim);
  out_str(out, "order", l->order == 'F' ? "F" : "C");
  out_u64(out, "data_offset", l->data_offset);
  out_u64(out, "data_length", l->data_length);
  out_str(out, "descr", descr);
  out_obj_end(out);
}

void ds_out_format(cli_out_t *out, const bm_dataset_info_t *info) {
  ds_out_layout(out, info->state, info->format, info->has_layout, &info->layout);
}

void ds_out_section_format(cli_out_t *out, const bm_section_info_t *si) {
  ds_out_layout(out, si->state, si->format, si->has_layout, &si->layout);
}

const char *ds_section_kind(const bm_section_info_t *si, char *buf, size_t n) {
  size_t k;
  uint32_t i;
  if (si->state == BM_STATE_CORRUPT || si->state == BM_STATE_FOREIGN || si->state == BM_STATE_UNREADABLE) {
    snprintf(buf, n, "-");
    return buf;
  }
  k = (size_t)snprintf(buf, n, "%s", bm_format_name(si->format != 0 ? si->format : BM_FORMAT_RAW));
  if (si->has_layout && k < n) {
    k += (size_t)snprintf(buf + k, n - k, ":%s:", bm_dtype_name(si->layout.dtype));
    for (i = 0; i < si->layout.ndim && k < n; i++)
      k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? "x" : "", (unsigned long long)si->layout.shape[i]);
    if (si->layout.ndim == 0 && k < n) snprintf(buf + k, n - k, "scalar");
  }
  return buf;
}

int ds_out_tensors(cli_out_t *out, bm_dataset_t *ds, const bm_dataset_info_t *info) {
  bm_tensor_t *t = NULL;
  size_t n = 0, i;
  int err;
  if (info->format != BM_FORMAT_SAFETENSORS || info->state != BM_STATE_READY) return 0;
  if ((err = bm_dataset_tensors(ds, &t, &n)) != 0) return err;
  if (out->json) {
    out_arr_begin(out, "tensors");
    for (i = 0; i < n; i++) {
      out_elem_begin(out);
      out_str(out, "name", t[i].name);
      out_str(out, "dtype", bm_dtype_name(t[i].layout.dtype));
      out_arr_u64(out, "shape", t[i].layout.shape, (int)t[i].layout.ndim);
      out_u64(out, "offset", t[i].layout.data_offset);
      out_u64(out, "length", t[i].layout.data_length);
      out_elem_end(out);
    }
    out_arr_end(out);
  } else {
    char shape[BM_MAX_DIMS * 22 + 8];
    out_u64(out, "tensors", n);
    for (i = 0; i < n; i++) {
      ds_shape_text(t[i].layout.shape, t[i].layout.ndim, shape, sizeof(shape));
      fputs("  ", stdout);
      cli_put_escaped(stdout, t[i].name);
      printf(": %s %s at %llu, %llu bytes\n", bm_dtype_name(t[i].layout.dtype), shape,
             (unsigned long long)t[i].layout.data_offset, (unsigned long long)t[i].layout.data_length);
    }
  }
  bm_tensors_free(t);
  return 0;
}

int ds_read_stdin(unsigned char **buf, size_t *n) {
  size_t cap = 1 << 20, len = 0;
  unsigned char *p = malloc(cap);
  *buf = NULL;
  *n = 0;
  if (p == NULL) return ENOMEM;
  plat_binary_stdin();
  for (;;) {
    size_t got;
    if (len == cap) {
      unsigned char *q;
      if (cap > SIZE_MAX / 2 || (q = realloc(p, cap * 2)) == NULL) {
        free(p);
        return ENOMEM;
      }
      p = q;
      cap *= 2;
    }
    got = fread(p + len, 1, cap - len, stdin);
    len += got;
    if (ferror(stdin)) {
      int e = errno != 0 ? errno : EIO;
      free(p);
      return e;
    }
    /* The end as the first read that returns nothing says it: a terminal's ^D on an empty
     * line is one such read, and asking again would wait for a second ^D (as cat does not). */
    if (feof(stdin) || got == 0) break;
  }
  *buf = p;
  *n = len;
  return 0;
}
