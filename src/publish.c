/* bm_dataset_publish_buffer: a caller's bytes into a new dataset in one call (docs/design.md
 * section 6, publishing from memory): judged as a file's header is (or, given a layout,
 * written as an npy payload: the npy header, then the bytes), created, copied in through
 * pwrite from the caller's memory (tmpfs) or bounded guarded views (hugetlbfs, Windows),
 * hashed, then published. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "words.h"
#include "dataset.h"

#define PUB_CHUNK (64u << 20) /* bytes mapped at a time */

typedef struct {
  unsigned char *dst;
  const unsigned char *hdr, *data;
  size_t hlen, n;
  uint64_t off; /* payload offset of dst[0] */
  size_t len;
} pub_copy_t;

static pub_copy_t pub_piece(unsigned char *dst, const unsigned char *hdr, size_t hlen,
                            const void *data, size_t n, uint64_t off, size_t len) {
  pub_copy_t c;
  c.dst = dst;
  c.hdr = hdr;
  c.data = data;
  c.hlen = hlen;
  c.n = n;
  c.off = off;
  c.len = len;
  return c;
}

/* The payload is hdr[0, hlen) then data[0, n): copies its bytes [off, off+len). */
static int pub_copy(void *arg) {
  pub_copy_t *c = arg;
  size_t done = 0;
  if (c->off < c->hlen) {
    size_t k = c->hlen - (size_t)c->off;
    if (k > c->len) k = c->len;
    memcpy(c->dst, c->hdr + c->off, k);
    done = k;
  }
  if (done < c->len) memcpy(c->dst + done, c->data + (size_t)(c->off + done - c->hlen), c->len - done);
  return 0;
}

static int pub_layout(const bm_layout_t *in, size_t n, bm_format_info_t *fi, size_t *hlen,
                      char *why, size_t wn) {
  bm_layout_t l = *in;
  uint64_t bytes = 0;
  uint32_t i;
  int err;
  l.item_size = bm_dtype_size(l.dtype);
  if (l.item_size == 0) return bm__set_os_error(0), snprintf(why, wn, "layout: unknown dtype %d", l.dtype), BM_EFORMAT;
  if (l.ndim > BM_MAX_DIMS)
    return bm__set_os_error(0), snprintf(why, wn, "layout: more than %d dimensions", BM_MAX_DIMS), BM_EFORMAT;
  if (l.order == 0) l.order = 'C';
  if (l.item_size == 1) l.byteorder = '|';
  else if (l.byteorder == 0 || l.byteorder == '|') l.byteorder = '<';
  for (i = l.ndim; i < BM_MAX_DIMS; i++) l.shape[i] = 0;
  err = bm_npy_header(&l, NULL, 0, hlen);
  if (err == BM_EOVERFLOW)
    return bm__set_os_error(0), snprintf(why, wn, "layout: the shape's size in bytes overflows"), BM_EFORMAT;
  if (err != 0) return bm__set_os_error(0), snprintf(why, wn, "layout: bad order or byte order"), BM_EFORMAT;
  bytes = l.item_size;
  for (i = 0; i < l.ndim; i++) bytes = l.shape[i] == 0 || bytes == 0 ? 0 : bytes * l.shape[i];
  if (bytes != (uint64_t)n)
    return bm__set_os_error(0),
           snprintf(why, wn, "layout: dtype and shape need %llu bytes, the buffer has %llu",
                    (unsigned long long)bytes, (unsigned long long)n),
           BM_EFORMAT;
  l.data_offset = *hlen;
  l.data_length = n;
  memset(fi, 0, sizeof(*fi));
  fi->format = BM_FORMAT_NPY;
  fi->has_layout = 1;
  fi->layout = l;
  fi->header_bytes = *hlen;
  return 0;
}

static int publish_buffer(bm_dataset_t **out, const char *name, const void *data, size_t n,
                          const bm_publish_opts_t *opts, bm_load_result_t *res) {
  bm_load_result_t scratch;
  bm_dataset_opts_t dso;
  bm_format_info_t fi;
  bm_dataset_t *ds = NULL;
  unsigned char hdr[4096];
  size_t hlen = 0;
  uint64_t total, off;
  double t0;
  int err, ferr;

  if (res == NULL) res = &scratch;
  memset(res, 0, sizeof(*res));
  if (out != NULL) *out = NULL;
  if (name == NULL || opts == NULL || (data == NULL && n > 0)) return BM_EINVAL;
  if (opts->format < BM_FORMAT_AUTO || opts->format > BM_FORMAT_SAFETENSORS) return BM_EINVAL;
  if ((err = bm_name_check(name)) != 0) return err;
  res->failed_at = BM_LOAD_AT_FORMAT;
  if (opts->layout != NULL) {
    if ((err = pub_layout(opts->layout, n, &fi, &hlen, res->why, sizeof(res->why))) != 0) return err;
    if (hlen > sizeof(hdr) || bm_npy_header(&fi.layout, hdr, sizeof(hdr), &hlen) != 0) return BM_EINVAL;
  } else if ((err = bm_format_check(data, n, n, opts->format, &fi, res->why, sizeof(res->why))) != 0) {
    return err;
  }
  total = (uint64_t)hlen + n;
  dso = opts->dataset;
  dso.size = total;
  t0 = bm__os_now();
  res->failed_at = BM_LOAD_AT_CREATE;
  if ((err = bm_dataset_create(&ds, name, &dso, &res->large)) != 0) return err;
  res->failed_at = BM_LOAD_AT_FILL;
  if ((err = bm__dataset_set_info(ds, &fi)) != 0) goto failed;
  /* Where the section takes writes (tmpfs), the payload goes in with pwrite straight from
   * the caller's memory, each piece hashed there first (src/fill.c). */
  if (bm__fill_takes_writes(ds)) {
    const void *part[2];
    size_t plen[2];
    part[0] = hdr;
    plen[0] = hlen;
    part[1] = data;
    plen[1] = n;
    if ((err = bm__fill_memory(ds, part, plen, 2, &res->os_error)) != 0) goto failed;
    total = 0; /* nothing left for the views */
  }
  for (off = 0; off < total; off += PUB_CHUNK) {
    size_t len = (size_t)(total - off < PUB_CHUNK ? total - off : PUB_CHUNK);
    pub_copy_t c;
    bm_view_t v;
    if ((err = bm_view_map(&v, bm_dataset_source(ds), off, len, BM_ACCESS_WRITE)) != 0) goto failed;
    c = pub_piece(v.data, hdr, hlen, data, n, off, len);
    /* The section's pages made first, in one call: a page that cannot be had (tmpfs full)
     * is BM_ENOSPC here, and the copy takes no fault a page. A fault in the copy is then
     * the caller's buffer's (its backing file shrank): BM_ETRUNCATED, said as such. */
    err = bm__os_populate_write(v.data, v.length);
    if (err == BM_ENOTSUP) {
      err = bm_guard_call(pub_copy, &c);
      if (err == BM_ETRUNCATED) err = BM_ENOSPC; /* no way to tell whose page it was */
    } else if (err == 0) {
      err = bm_guard_call(pub_copy, &c);
    }
    if (err == 0) err = bm_dataset_hash_view(ds, &v);
    res->os_error = bm_last_os_error();
    bm_view_unmap(&v);
    if (err != 0) goto failed;
  }
  if ((err = bm_dataset_publish(ds, &res->info)) != 0) goto failed;
  res->seconds = bm__os_now() - t0;
  res->failed_at = 0;
  res->os_error = 0;
  if (out != NULL) *out = ds;
  else bm_dataset_close(ds);
  return 0;

failed: {
    int os = bm_last_os_error(); /* the failure's, not the cleanup's */
    ferr = bm_dataset_fail(ds);
    bm_dataset_close(ds);
    bm__set_os_error(os);
  }
  res->removed = ferr == 0 ? 1 : ferr == BM_EREPLACED ? -1 : 0;
  return err;
}

/* The public call: the publish above, and the words of a failure (bm_errmsg); the subject
 * of a fault in the bytes is the source named in the options ("-": standard input). */
int bm_dataset_publish_buffer(bm_dataset_t **out, const char *name, const void *data, size_t n,
                              const bm_publish_opts_t *opts, bm_load_result_t *res) {
  bm_load_result_t scratch;
  bm_publish_opts_t o;
  bm_preflight_t room;
  bm__load_words_t w;
  int err;
  if (res == NULL) res = &scratch;
  if (opts == NULL) return publish_buffer(out, name, data, n, opts, res);
  o = *opts;
  if (o.dataset.preflight == NULL) {
    memset(&room, 0, sizeof(room));
    o.dataset.preflight = &room;
  }
  if ((err = publish_buffer(out, name, data, n, &o, res)) == 0 || err == BM_ECANCELED) return err;
  w.file = opts->dataset.source != NULL && opts->dataset.source[0] != '\0' ? opts->dataset.source : name;
  w.name = name;
  w.group = opts->dataset.group;
  w.result = res;
  w.room = o.dataset.preflight;
  return bm__words_load(err, &w);
}

void bm_publish_opts_init(bm_publish_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  bm_dataset_opts_init(&o->dataset);
  o->format = BM_FORMAT_AUTO;
}
