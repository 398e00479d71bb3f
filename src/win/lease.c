/* Windows: the source's stability during a load is not checked (no file leases here); the
 * load says so (source_stable: false, and why). */
#include <stdio.h>
#include "../os.h"

int bm__os_lease_take(bm_source_t *src, bm__os_lease_t **out, char *why, size_t why_n) {
  (void)src;
  *out = NULL;
  snprintf(why, why_n, "Windows gives no read leases: a change through another process's mapping is not seen");
  return BM_ENOTSUP;
}
int bm__os_lease_broken(bm__os_lease_t *l) { return (void)l, 0; }
void bm__os_lease_end(bm__os_lease_t *l) { (void)l; }
