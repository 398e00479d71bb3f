/* Named and anonymous sections: the portable checks (names, options) and the source object,
 * create, open, remove, list and look up; where a section lives and which pages it gets are
 * the backend's. */
#include <stdio.h>
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

/* ---- A replace's new generation: bm_dataset_create with opts->replace makes it here. */

int bm__section_create_hidden(bm_source_t **out, const char *name, const bm_section_opts_t *opts,
                              bm_large_t *outcome) {
  bm_large_t large;
  bm_source_t *src;
  int err;

  /* As bm_section_create, for the hidden name. */
  memset(&large, 0, sizeof(large));
  large.requested = opts->large;
  large.page_size = bm__os_config()->page_size;
  large.reason = opts->large != BM_LARGE_OFF ? BM_REASON_NONE : BM_REASON_NOT_REQUESTED;
  if (outcome != NULL) *outcome = large;
  *out = NULL;
  if (opts->preflight != NULL) {
    memset(opts->preflight, 0, sizeof(*opts->preflight));
    opts->preflight->shm_free = opts->preflight->shm_total = UINT64_MAX;
    opts->preflight->cgroup_free = opts->preflight->cgroup_limit = UINT64_MAX;
  }
  if (opts->size == 0 || (opts->mode & ~0777u)) return BM_EINVAL;
  if ((err = bm_name_check(name)) != 0) return err;
  if ((src = bm__source_new(BM__SRC_SECTION, BM_FILE_WRITE)) == NULL) return BM_ENOMEM;
  src->large = large;
  err = bm__os_section_create_hidden(src, name, opts, &large);
  if (outcome != NULL) *outcome = large;
  if (err != 0) {
    free(src);
    return err;
  }
  src->large = large;
  *out = src;
  return 0;
}

/* ---- Listing. */

typedef struct {
  unsigned flags;
  bm_section_info_t *v;
  size_t n, cap;
  int err;
} bm__list_t;

static int bm__list_add(bm__list_t *l, const bm_section_info_t *si) {
  if ((si->state == BM_STATE_FOREIGN || si->state == BM_STATE_UNREADABLE) &&
      !(l->flags & BM_LIST_ALL))
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    bm_section_info_t *v = realloc(l->v, cap * sizeof(*v));
    if (v == NULL) return l->err = BM_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *si;
  return 0;
}

static int bm__list_one(void *arg, const bm__os_entry_t *e) {
  bm__list_t *l = arg;
  bm_section_info_t si;
  bm__trailer_t t;
  int err;

  memset(&si, 0, sizeof(si));
  snprintf(si.name, sizeof(si.name), "%s", e->name);
  snprintf(si.place, sizeof(si.place), "%s", e->place);
  snprintf(si.owner, sizeof(si.owner), "%s", e->owner);
  si.uid = e->uid;
  si.mode = e->mode;
  si.mine = e->mine;
  si.bytes = e->size;
  si.page_size = e->place_page_size != 0 ? e->place_page_size : bm_page_size();
  snprintf(si.type, sizeof(si.type), "%s", e->type != NULL ? e->type : "file");
  si.maps = e->maps;
  if (strcmp(si.type, "file") != 0) {
    si.state = BM_STATE_FOREIGN; /* planted under the name; never opened */
    si.bytes = 0;
  } else if (e->src == NULL) {
    si.state = BM_STATE_UNREADABLE;
  } else {
    memset(&t, 0, sizeof(t));
    err = bm__trailer_io(e->src, e->size, &t, 0);
    if (err == 0) {
      si.state = bm__trailer_judge(e->src, &t);
      si.bytes = t.payload_size;
      si.page_size = t.page_size;
      si.writer_pid = t.writer_pid;
      si.created = t.created;
      si.format = t.format != 0 ? t.format : BM_FORMAT_RAW;
      si.has_layout = t.has_layout;
      si.layout = t.layout;
    } else if (err == BM_ECORRUPT) {
      si.state = BM_STATE_CORRUPT;
    } else if (err == BM_ENOTDATASET && bm__os_writer_alive(e->src, NULL) == 1) {
      si.state = BM_STATE_LOADING; /* being made: no trailer yet */
    } else {
      si.state = BM_STATE_FOREIGN;
    }
  }
  return bm__list_add(l, &si);
}

/* A dataset whose metadata is beside its bytes, as the store judged it. */
static int bm__list_store(void *arg, const bm_section_info_t *si, bm__store_t *st) {
  (void)st;
  return bm__list_add(arg, si);
}

static int bm__list_cmp(const void *a, const void *b) {
  const bm_section_info_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : strcmp(x->place, y->place);
}

int bm_section_list(const char *name, unsigned flags, bm_section_info_t **out, size_t *n) {
  bm__list_t l;
  int err;
  if (out == NULL || n == NULL || (flags & ~(unsigned)BM_LIST_ALL)) return BM_EINVAL;
  *out = NULL;
  *n = 0;
  if (name != NULL && (err = bm_name_check(name)) != 0) return err;
  memset(&l, 0, sizeof(l));
  l.flags = flags;
  err = bm__store_list(name, bm__list_store, &l);
  if (err == 0) err = l.err;
  if (err == 0) err = bm__os_section_list(name, bm__list_one, &l);
  if (err == 0) err = l.err;
  if (err != 0) {
    free(l.v);
    return err;
  }
  if (l.n > 1) qsort(l.v, l.n, sizeof(*l.v), bm__list_cmp);
  *out = l.v;
  *n = l.n;
  return 0;
}

void bm_section_list_free(bm_section_info_t *list) { free(list); }

int bm_section_lookup(const char *name, bm_section_info_t *info) {
  bm_section_info_t *v;
  size_t n, i, pick = 0, mine = 0;
  int err;
  if (info == NULL) return BM_EINVAL;
  memset(info, 0, sizeof(*info));
  if ((err = bm_name_check(name)) != 0) return err;
  if ((err = bm_section_list(name, BM_LIST_ALL, &v, &n)) != 0) return err;
  if (n == 0) return bm__set_os_error(0), BM_ENOENT;
  for (i = 0; i < n; i++)
    if (v[i].mine) {
      if (mine++ == 0) pick = i;
    }
  *info = v[pick];
  bm_section_list_free(v);
  /* As bm_section_open: several places and not exactly one of them yours is ambiguous. */
  if (n > 1 && mine != 1) return bm__set_os_error(0), BM_EAMBIGUOUS;
  return 0;
}
