/* Windows backend: a replace (src/lifecycle.c's hidden generation and commit), which a
 * named section's kernel object allows only for a name that does not exist yet. */
#include "../os.h"
#include "win.h"

/* ---- Replace (docs/design.md section 7). A named section cannot be renamed and its name cannot
 * be taken from it while any handle is open (CreateFileMappingW of an existing name opens
 * that one), so no new generation can become an existing NAME: a replace of a name that
 * exists is BM_ENOTSUP, of one that does not is a plain creation. */
int bm__os_section_create_hidden(bm_source_t *src, const char *name,
                                 const bm_section_opts_t *opts, bm_large_t *outcome) {
  WCHAR w[WIN_NAME_CAP];
  HANDLE h;
  int err;
  if ((err = bm__win_utf8_to_wide(name, w, WIN_NAME_CAP)) != 0) return err;
  h = OpenFileMappingW(FILE_MAP_READ, FALSE, w);
  if (h != NULL || GetLastError() == ERROR_ACCESS_DENIED) {
    if (h != NULL) CloseHandle(h);
    return bm__set_os_error(0), BM_ENOTSUP;
  }
  return bm__os_section_create(src, name, opts, outcome);
}

int bm__os_section_commit(bm_source_t *src, const char *name) {
  (void)src, (void)name;
  return 0; /* made under NAME already */
}
