/* Named and anonymous sections: the portable checks (names, options) and the source object;
 * where a section lives and which pages it gets are the backend's. */
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "words.h"

/* A namespace prefix the backend passes through (Windows: "Local\" or "Global\") is
 * skipped; elsewhere a backslash is no name character, so such a name is refused. */
static int name_check(const char *name) {
  const char *const *prefixes = bm__os_config()->name_prefixes;
  size_t n, i;
  if (name == NULL) return BM_ENAME;
  for (i = 0; prefixes[i] != NULL; i++) {
    size_t p = strlen(prefixes[i]);
    if (strncmp(name, prefixes[i], p) == 0) {
      name += p;
      break;
    }
  }
  for (n = 0; name[n] != '\0'; n++) {
    char c = name[n];
    if (n >= BM_NAME_MAX) return BM_ENAME;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return BM_ENAME;
  }
  if (n == 0) return BM_ENAME;
  /* "." and ".." name directories, never a file that could hold a section. */
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return BM_ENAME;
  return 0;
}

static int bm__is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

int bm_section_create(bm_source_t **out, const char *name, const bm_section_opts_t *opts,
                      bm_large_t *outcome) {
  bm_large_t large;
  bm_source_t *src;
  int err;

  memset(&large, 0, sizeof(large));
  if (opts != NULL) large.requested = opts->large;
  large.page_size = bm__os_config()->page_size;
  large.reason = opts != NULL && opts->large != BM_LARGE_OFF ? BM_REASON_NONE
                                                             : BM_REASON_NOT_REQUESTED;
  if (outcome != NULL) *outcome = large;
  if (out == NULL || opts == NULL) return BM_EINVAL;
  *out = NULL;
  if (opts->preflight != NULL) {
    memset(opts->preflight, 0, sizeof(*opts->preflight));
    opts->preflight->shm_free = opts->preflight->shm_total = UINT64_MAX;
    opts->preflight->cgroup_free = opts->preflight->cgroup_limit = UINT64_MAX;
  }
  if (opts->size == 0) return BM_EINVAL;
  if (opts->large < BM_LARGE_OFF || opts->large > BM_LARGE_ON) return BM_EINVAL;
  if (opts->mode & ~0777u) return BM_EINVAL;
  if (opts->large_page_size != 0 && !bm__is_pow2(opts->large_page_size)) return BM_EINVAL;
  if (name != NULL && (err = bm_name_check(name)) != 0) return err;

  src = bm__source_new(name != NULL ? BM__SRC_SECTION : BM__SRC_ANON, BM_FILE_WRITE);
  if (src == NULL) return BM_ENOMEM;
  src->large = large;
  err = bm__os_section_create(src, name, opts, &large);
  /* The outcome is reported on failure too: a strict request says why it failed. */
  if (outcome != NULL) *outcome = large;
  if (err != 0) {
    free(src);
    return err;
  }
  src->large = large;
  *out = src;
  return 0;
}

static int section_open(bm_source_t **out, const char *name, unsigned access) {
  bm_source_t *src;
  int err;

  if (out == NULL) return BM_EINVAL;
  *out = NULL;
  if ((err = bm_name_check(name)) != 0) return err;
  if (access == 0 || (access & ~(unsigned)(BM_ACCESS_READ | BM_ACCESS_WRITE))) return BM_EINVAL;
  src = bm__source_new(BM__SRC_SECTION,
                        (access & BM_ACCESS_WRITE) ? BM_FILE_WRITE : BM_FILE_READ);
  if (src == NULL) return BM_ENOMEM;
  err = bm__os_section_open(src, name, access);
  if (err != 0) {
    free(src);
    return err;
  }
  *out = src;
  return 0;
}

int bm_section_remove(const char *name) {
  int err;
  if ((err = bm_name_check(name)) != 0) return err;
  err = bm__os_section_remove_name(name, 0);
  return err == 0 ? 0 : bm__words_remove(err, name);
}

int bm_section_remove_force(const char *name) {
  int err;
  if ((err = bm_name_check(name)) != 0) return err;
  err = bm__os_section_remove_name(name, 1);
  return err == 0 ? 0 : bm__words_remove(err, name);
}

int bm_section_large(bm_source_t *src, bm_large_t *outcome) {
  bm_large_t large;
  int err;
  if (src == NULL || outcome == NULL) return BM_EINVAL;
  if (src->kind != BM__SRC_SECTION && src->kind != BM__SRC_ANON) return BM_EINVAL;
  /* Ask the kernel again: what was requested and why stays; the page size is current. */
  large = src->large;
  if ((err = bm__os_section_large(src, &large)) != 0) return err;
  *outcome = large;
  return 0;
}

/* The public check: the rule above, and its words on a failure (bm_errmsg). */
int bm_name_check(const char *name) {
  return name_check(name) == 0 ? 0 : bm__words_name(name != NULL ? name : "");
}

int bm_section_open(bm_source_t **out, const char *name, unsigned access) {
  int err = section_open(out, name, access);
  return err == 0 ? 0 : bm__words_dataset(err, name, NULL);
}
