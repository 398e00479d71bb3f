/* Dataset sections for cat and stat: open, decode the trailer, walk the payload. */
#include <string.h>
#include "dataset.h"

int dataset_open(const char *cmd, const char *name, dataset_t *d) {
  bm_view_t v;
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
  if (err != 0) {
    cli_lib_error(name, err);
    bm_view_unmap(&v);
    dataset_close(d);
    return EXIT_FAILED;
  }
  d->decode = bm_trailer_decode(v.data, d->size, &d->t);
  bm_view_unmap(&v);
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
