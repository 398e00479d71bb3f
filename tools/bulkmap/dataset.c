/* Dataset sections for cat and stat: open, decode the trailer, walk the payload. */
#include <string.h>
#include "dataset.h"

typedef struct {
  const bm_view_t *v;
  uint64_t size;
  bm_trailer_t *t;
  int decode;
} decode_call_t;

static int decode_call(void *arg) {
  decode_call_t *c = arg;
  c->decode = bm_trailer_decode(c->v->data, c->size, c->t);
  return 0;
}

int dataset_open(const char *cmd, const char *name, dataset_t *d) {
  bm_view_t v;
  uint64_t now;
  int err;
  memset(d, 0, sizeof(*d));
  if (bm_name_check(name) != 0)
    return cli_usage(cmd, "'%s': a name is 1-200 characters of A-Z a-z 0-9 . _ -", name);
  err = bm_section_open(&d->src, name, BM_ACCESS_READ);
  if (err == BM_ENOENT) {
    cli_error(name, "no such section");
    return EXIT_FAILED;
  }
  if (err == 0) err = bm_source_size(d->src, &d->size);
  if (err != 0) {
    cli_lib_error(name, err);
    dataset_close(d);
    return EXIT_FAILED;
  }
  if (d->size < BM_TRAILER_SIZE) {
    d->decode = BM_ENOTDATASET;
    return 0;
  }
  err = bm_view_map(&v, d->src, d->size - BM_TRAILER_SIZE, BM_TRAILER_SIZE, BM_ACCESS_READ);
  if (err == 0) err = bm_view_prefetch(&v);
  if (err == 0) {
    /* Guarded: another process may cut the section short between the prefetch and the
     * copy the decoder makes (the fault then becomes BM_ETRUNCATED). */
    decode_call_t c = {&v, d->size, &d->t, 0};
    err = bm_guard_call(decode_call, &c);
    d->decode = c.decode;
  }
  /* A section whose size changed since it was opened is being rewritten under us: what
   * was decoded may belong to another layout. */
  if (err == 0 && ((err = bm_source_size(d->src, &now)) == 0) && now != d->size)
    err = BM_ETRUNCATED;
  bm_view_unmap(&v);
  if (err != 0) {
    if (err == BM_ETRUNCATED) cli_error(name, "the section changed size while it was read");
    else cli_lib_error(name, err);
    dataset_close(d);
    return EXIT_FAILED;
  }
  return 0;
}

void dataset_close(dataset_t *d) {
  bm_source_close(d->src);
  d->src = NULL;
}

typedef struct {
  int (*fn)(const unsigned char *p, size_t n, void *arg);
  void *arg;
  const unsigned char *p;
  size_t n;
} walk_call_t;

static int walk_call(void *arg) {
  walk_call_t *c = arg;
  return c->fn(c->p, c->n, c->arg);
}

int dataset_walk(dataset_t *d, uint64_t length, int (*fn)(const unsigned char *p, size_t n,
                                                          void *arg), void *arg) {
  bm_window_opts_t o;
  bm_window_t w;
  walk_call_t c;
  int r, err = 0;
  memset(&o, 0, sizeof(o));
  o.length = length;
  o.window = 64u << 20;
  o.prefault = 1;
  o.readahead = 1;
  if ((err = bm_window_init(&w, d->src, &o)) != 0) return err;
  c.fn = fn;
  c.arg = arg;
  while ((r = bm_window_next(&w)) == 1) {
    c.p = w.data + w.overlap;
    c.n = w.length - w.overlap;
    if ((err = bm_guard_call(walk_call, &c)) != 0) break;
  }
  if (r < 0) err = r;
  bm_window_close(&w);
  return err;
}
