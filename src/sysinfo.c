/* System facts: the backend reads them; this is the public face. */
#include <string.h>
#include "os.h"

int bm_sysinfo_get(bm_sysinfo_t *info) {
  if (info == NULL) return BM_EINVAL;
  memset(info, 0, sizeof(*info));
  return bm__os_sysinfo(info);
}

int bm_sysinfo_mount(int i, bm_mount_t *out) {
  if (out == NULL || i < 0) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  return bm__os_mount(i, out);
}

int bm_sysinfo_large_size(int i, bm_large_size_t *out) {
  if (out == NULL || i < 0) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  return bm__os_large_size(i, out);
}

size_t bm_granularity(void) { return bm__os_config()->granularity; }
size_t bm_page_size(void) { return bm__os_config()->page_size; }
int bm_section_names_persist(void) { return bm__os_config()->names_persist; }
uint64_t bm_address_space_limit(void) { return bm__os_as_limit(); }
