/* Windows: a dataset's metadata stays in its section (the trailer, src/dataset.c), since a
 * named section has no path beside which anything could live; the seed programs read the
 * payload at offset 0. None of the calls of the POSIX store applies (os.h). */
#include <stdlib.h>
#include "../os.h"

int bm__store_create(bm__store_t **out, const char *name, const bm_section_opts_t *so,
                     int replace, const bm__trailer_t *t, bm_large_t *outcome) {
  (void)name, (void)so, (void)replace, (void)t, (void)outcome;
  *out = NULL;
  return BM_ENOTSUP;
}
bm_source_t *bm__store_source(bm__store_t *st) { return (void)st, NULL; }
const char *bm__store_place(bm__store_t *st) { return (void)st, ""; }
int bm__store_record(bm__store_t *st, const bm__trailer_t *t) { return (void)st, (void)t, BM_ENOTSUP; }
int bm__store_publish(bm__store_t *st, const bm__trailer_t *t) { return (void)st, (void)t, BM_ENOTSUP; }
int bm__store_open(bm__store_t **out, const char *name, bm__trailer_t *t, int *state) {
  (void)name, (void)t, (void)state;
  *out = NULL;
  return BM_ENOENT;
}
int bm__store_reread(bm__store_t *st, bm__trailer_t *t, int *state) {
  return (void)st, (void)t, (void)state, BM_ENOTSUP;
}
int bm__store_remove(bm__store_t *st) { return (void)st, BM_ENOTSUP; }
void bm__store_close(bm__store_t *st) { (void)st; }
int bm__store_remove_name(const char *name, int force) { return (void)name, (void)force, BM_ENOENT; }
int bm__store_list(const char *name,
                   int (*fn)(void *arg, const bm_section_info_t *si, bm__store_t *st), void *arg) {
  return (void)name, (void)fn, (void)arg, 0;
}
int bm__store_reclaim(void (*done)(void *arg, const bm_section_info_t *si, uint64_t freed),
                      void *arg) {
  return (void)done, (void)arg, 0;
}
int bm__store_remove_on_exit(bm__store_t *st) { return (void)st, 0; }
int bm__store_set_layout(bm__store_t *st, unsigned char *blob, size_t n) {
  (void)st, (void)n;
  free(blob);
  return BM_ENOTSUP;
}
int bm__store_layout(bm__store_t *st, unsigned char **blob, size_t *n) {
  (void)st;
  *blob = NULL;
  *n = 0;
  return BM_ENOTSUP;
}
int bm__store_handoff(bm__store_t *st) { return (void)st, BM_ENOTSUP; }
int bm__store_given_away(bm__store_t *st) { return (void)st, 0; }
int bm__store_unsettled(const char *name) { return (void)name, 0; }
