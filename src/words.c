/* The words a user reads when a call about a dataset fails (bm_errmsg): what failed, why,
 * with the figures the library has and the remedy. Written once, here; the tool and the
 * Python module print them as they are. Remedies name the command (`bulkmap rm NAME`), which
 * every installation has, pip's included. */
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "words.h"

const char bm__name_rule[] = "a name is 1-200 characters of A-Z a-z 0-9 . _ -";

static int words_name(const char *name) {
  return bm__error_words(BM_ENAME, name, "%s", bm__name_rule);
}

/* EAMBIGUOUS: every place that holds the name, with its owner and state. */
static int words_ambiguous(const char *name) {
  char list[1536];
  size_t k = 0, n = 0, i;
  bm_section_info_t *v = NULL;
  list[0] = '\0';
  if (bm_section_list(name, BM_LIST_ALL, &v, &n) == 0)
    for (i = 0; i < n && k < sizeof(list); i++)
      k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s/%s (owner %s, %s)", i ? "; " : "",
                            v[i].place, v[i].name, v[i].owner, bm_state_name(v[i].state));
  bm_section_list_free(v);
  return bm__error_words(BM_EAMBIGUOUS, name, "the name is held in several places, none of them "
                         "yours alone: %s (bulkmap rm NAME removes the one you may remove)",
                         list[0] ? list : "(they could not be listed)");
}

static int words_dataset(int err, const char *name, const bm_dataset_info_t *info) {
  int os = bm_last_os_error();
  char d[256];
  switch (err) {
  case BM_ENOENT:
    return bm__error_words(err, name, "no such section");
  case BM_ENAME:
    return words_name(name);
  case BM_EAMBIGUOUS:
    return words_ambiguous(name);
  case BM_ENOTDATASET:
    return bm__error_words(err, name, "not a bulkmap dataset (bulkmap cat --raw writes its bytes "
                           "as they are)");
  case BM_EINCOMPLETE:
  case BM_EABANDONED:
    if (info != NULL && info->state == BM_STATE_LOADING)
      return bm__error_words(err, name, "not ready: still loading (writer pid %lld)",
                             (long long)info->writer_pid);
    if (info != NULL && info->state == BM_STATE_FAILED)
      return bm__error_words(err, name, "not ready: the load failed");
    if (err == BM_EABANDONED)
      return bm__error_words(err, name, "not ready: abandoned by its writer while loading "
                             "(bulkmap rm %s removes it)", name);
    break;
  case BM_ECORRUPT:
    return bm__error_words(err, name, "the dataset's trailer is corrupt");
  case BM_ECHECKSUM:
    if (info != NULL && info->has_xxh3)
      return bm__error_words(err, name, "checksum mismatch: the payload does not hash to the "
                             "trailer's %016llx", (unsigned long long)info->xxh3);
    break;
  case BM_ETRUNCATED:
    return bm__error_words(err, name, "the section changed size while it was read");
  }
  return bm__error_words(err, name, "%s", bm__error_default(err, os, d, sizeof(d)));
}

static int words_wait(int err, const char *name, double seconds, const bm_dataset_info_t *info) {
  if (err != BM_ETIMEDOUT) return words_dataset(err, name, info);
  if (info != NULL && info->state == BM_STATE_LOADING)
    return bm__error_words(err, name, "timed out after %g s: still loading (writer pid %lld)",
                           seconds, (long long)info->writer_pid);
  return bm__error_words(err, name, "timed out after %g s: no such section", seconds);
}

static int words_remove(int err, const char *name) {
  bm_section_info_t held;
  switch (err) {
  case BM_EBUSY:
    return bm__error_words(err, name, "its writer is still loading it (bulkmap rm --force "
                           "removes it anyway)");
  case BM_ENOTSUP:
    return bm__error_words(err, name, "sections cannot be removed here: one lives until its "
                           "last handle closes");
  case BM_EPERM:
    if (bm_section_lookup(name, &held) == 0)
      return bm__error_words(err, name, "another user's dataset, owned by %s (uid %lu): only its "
                             "owner or root may remove it", held.owner, (unsigned long)held.uid);
    break;
  }
  return words_dataset(err, name, NULL);
}

static int words_load(int err, const bm__load_words_t *w) {
  const bm_load_result_t *r = w->result;
  const char *name = w->name, *file = w->file != NULL ? w->file : "-";
  char why[BM_DESCRIBE_MAX * 2], d[256];
  bm_section_info_t held;
  int os = r->os_error != 0 ? r->os_error : bm_last_os_error();

  if (err == BM_ENAME) return words_name(name);
  if (err == BM_EPERM && w->group == NULL && bm_section_lookup(name, &held) == 0)
    return bm__error_words(err, name, "not replaced: another user's dataset, owned by %s (uid "
                           "%lu): only its owner or root may replace it", held.owner,
                           (unsigned long)held.uid);
  if (err == BM_EPERM && w->group == NULL)
    return bm__error_words(err, name, "not replaced: another user's dataset (only its owner or "
                           "root may replace it)");
  if (err == BM_ENOTSUP && r->failed_at == BM_LOAD_AT_CREATE)
    return bm__error_words(err, name, "cannot be replaced here: a named section cannot be renamed "
                           "(it lives until its last handle closes: stop its holder, then load)");
  if (err == BM_EEXIST && bm_section_lookup(name, &held) == 0 && held.state == BM_STATE_ABANDONED)
    return bm__error_words(err, name, "exists already, abandoned by its writer (pid %lld): "
                           "bulkmap rm %s removes it", (long long)held.writer_pid, name);
  if (err == BM_EEXIST && bm_section_lookup(name, &held) == 0 && held.state == BM_STATE_FAILED)
    return bm__error_words(err, name, "exists already, a load that failed: bulkmap rm %s removes "
                           "it", name);
  if (err == BM_EEXIST || err == BM_EAMBIGUOUS)
    return bm__error_words(err, name, "a section of that name exists already (bulkmap rm %s "
                           "removes it; a load with replace replaces it)", name);
  if (err == BM_ENOROOM)
    return bm__error_words(err, name, "not loaded: %s",
                           bm_preflight_describe(w->room, why, sizeof(why)));
  if (err == BM_ENOLARGE)
    return bm__error_words(err, name, "large pages required but not had: %s%s",
                           bm_large_describe(&r->large, why, sizeof(why)),
                           r->large.reason == BM_REASON_NO_MOUNT
                               ? " (bulkmap setup --large-pages SIZE mounts hugetlbfs)"
                           : r->large.reason == BM_REASON_POOL_EMPTY ||
                                   r->large.reason == BM_REASON_POOL_TOO_SMALL
                               ? " (bulkmap setup --large-pages SIZE grows the pool)" : "");
  if (err == BM_EFORMAT && strstr(r->why, "the raw format") != NULL) /* auto's own hint */
    return bm__error_words(err, file, "%s: nothing published", r->why);
  if (err == BM_EFORMAT)
    return bm__error_words(err, file, "%s: nothing published (the raw format loads the bytes as "
                           "they are)", r->why[0] ? r->why : "the header is not valid");
  if (r->failed_at == BM_LOAD_AT_FILE && err == BM_ECHANGED)
    return bm__error_words(err, file, "file changed as we read it: nothing published");
  if (r->failed_at == BM_LOAD_AT_FILE)
    return bm__error_words(err, file, "%s", bm__error_default(err, os, d, sizeof(d)));
  if (err == BM_ENOENT && w->group != NULL && r->failed_at == BM_LOAD_AT_CREATE)
    return bm__error_words(err, name, "group '%s': no such group", w->group);
  if ((err == BM_EACCES || err == BM_EPERM) && w->group != NULL)
    return bm__error_words(err, name, "group '%s': you may not give a section to that group",
                           w->group);
  if (err == BM_ECHANGED)
    return bm__error_words(err, file, "file changed as we read it: nothing published");
  if (err == BM_ETRUNCATED)
    return bm__error_words(err, file, "the file shrank while it was loaded");
  if (err == BM_ENOSPC)
    return bm__error_words(err, name, "no memory left for the section's pages (shared memory "
                           "full: /dev/shm or the huge page pool)");
  return bm__error_words(err, file, "%s",
                         bm__error_default(err, os, d, sizeof(d)));
}

static int words_load_all(int err, const bm__load_words_t *w) {
  char subject[1024], words[2048];
  words_load(err, w);
  if (w->result->removed >= 0) return err;
  /* What was made could not be removed: the name was taken over meanwhile. */
  snprintf(subject, sizeof(subject), "%s", bm_errsubject(err));
  snprintf(words, sizeof(words), "%s", bm_errmsg(err));
  return bm__error_words(err, subject, "%s; %s now names another section: left alone", words,
                         w->name);
}

/* The public word calls: the words recorded, the thread's OS error left as the failure set
 * it (finding the figures, a lookup or a listing, may touch it). */
#define WORDS_KEEP_OS(call)                 \
  do {                                      \
    int os_ = bm_last_os_error(), r_;       \
    r_ = (call);                            \
    bm__error_keep_os(os_);                 \
    return r_;                              \
  } while (0)

int bm__words_name(const char *name) { WORDS_KEEP_OS(words_name(name)); }
int bm__words_dataset(int err, const char *name, const bm_dataset_info_t *info) {
  WORDS_KEEP_OS(words_dataset(err, name, info));
}
int bm__words_wait(int err, const char *name, double seconds, const bm_dataset_info_t *info) {
  WORDS_KEEP_OS(words_wait(err, name, seconds, info));
}
int bm__words_remove(int err, const char *name) { WORDS_KEEP_OS(words_remove(err, name)); }
int bm__words_load(int err, const bm__load_words_t *w) { WORDS_KEEP_OS(words_load_all(err, w)); }
