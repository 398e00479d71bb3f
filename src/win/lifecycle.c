/* Windows backend of the lifecycle calls (src/lifecycle.c). The kernel's namespace of
 * sections can neither be watched nor listed, and a section dies with its last handle:
 * waiting re-checks every 50 ms, nothing is left to reclaim, and a dataset is bound to its
 * process already (its holder's handles close when it ends). */
#include <windows.h>
#include <stdlib.h>
#include <string.h>
#include "../os.h"

struct bm__os_waiter_s {
  int unused;
};

int bm__os_wait_begin(bm__os_waiter_t **w, const char *name) {
  (void)name;
  *w = calloc(1, sizeof(**w));
  return *w != NULL ? 0 : BM_ENOMEM;
}

int bm__os_wait(bm__os_waiter_t *w, double seconds) {
  double ms = seconds * 1000.0;
  (void)w;
  if (ms > 50) ms = 50;
  if (ms > 0) Sleep((DWORD)ms + 1);
  return 0;
}

void bm__os_wait_end(bm__os_waiter_t *w) { free(w); }

int bm__os_section_reclaim(int (*judge)(void *arg, const bm__os_entry_t *e),
                           void (*done)(void *arg, const bm__os_entry_t *e, int err), void *arg) {
  (void)judge, (void)done, (void)arg;
  return bm__set_os_error(0), BM_ENOTSUP;
}

int bm__os_remove_on_exit(bm_source_t *src, const char *name) {
  (void)src, (void)name;
  return 0; /* the section goes with the last handle anyway */
}

int bm__os_removeipc(bm_removeipc_t *out) {
  out->applies = 0;
  return 0;
}
