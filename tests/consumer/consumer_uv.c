/* Hashes nothing, counts bytes: its own executable through an installed bulkmap_uv. Built
 * with strict C11 plus the POSIX feature macro uv.h needs; bulkmap_uv leaks none. */
#include <stdio.h>
#include <bulkmap_uv.h>

static uint64_t seen;

static int ordered(bm_uv_window_t *w, void *data) {
  (void)data;
  seen += w->length - w->overlap;
  return 0;
}

static int status = -1;
static void done(bm_uv_pipeline_t *p, int st, void *data) {
  (void)p;
  (void)data;
  status = st;
}

int main(int argc, char **argv) {
  bm_source_t *src;
  bm_uv_pipeline_t p;
  bm_uv_pipeline_opts_t o = {0};
  uint64_t size;
  (void)argc;
  o.length = BM_TO_END;
  o.window = 4096;
  o.max_mapped = 1 << 20;
  o.ordered = ordered;
  o.done = done;
  if (bm_file_open(&src, argv[0], BM_FILE_READ) != 0 || bm_source_size(src, &size) != 0 ||
      bm_uv_pipeline_start(&p, uv_default_loop(), src, &o) != 0)
    return 1;
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  bm_source_close(src);
  if (status != 0 || seen != size) return 1;
  printf("consumer_uv: %llu bytes ok\n", (unsigned long long)seen);
  return 0;
}
