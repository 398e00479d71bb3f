/* Errors: bulkmap.Error, raised with the library's code, the OS error behind it and the path
 * or name, and the words a user reads for each call's failures (as the tool words them). */
#include "_bulkmap.h"

PyObject *bm_error; /* bulkmap.Error */

/* ---------------------------------------------------------------------------------------
 * Errors: bulkmap.Error(message) with .code ("ENOENT"), .os_error (int, 0 when the failure
 * was the library's own decision) and .context (the path or name). */
/* Sets o.name = v, taking v's reference. */
static int set_attr(PyObject *o, const char *name, PyObject *v) {
  int r;
  if (v == NULL) return -1;
  r = PyObject_SetAttrString(o, name, v);
  Py_DECREF(v);
  return r;
}

PyObject *raise_msg(const char *context, int err, int os, const char *msg) {
  PyObject *text, *exc;
  if (os != 0)
    text = PyUnicode_FromFormat("%s: %s (%s; OS error %d (0x%x): %s)", context, msg,
                                bm_err_name(err), os, (unsigned)os, strerror(os));
  else
    text = PyUnicode_FromFormat("%s: %s (%s)", context, msg, bm_err_name(err));
  if (text == NULL) return NULL;
  exc = PyObject_CallOneArg(bm_error, text);
  Py_DECREF(text);
  if (exc == NULL) return NULL;
  if (set_attr(exc, "code", PyUnicode_FromString(bm_err_name(err))) < 0 ||
      set_attr(exc, "os_error", PyLong_FromLong(os)) < 0 ||
      set_attr(exc, "context", PyUnicode_DecodeFSDefault(context)) < 0) {
    Py_DECREF(exc);
    return NULL;
  }
  PyErr_SetObject(bm_error, exc);
  Py_DECREF(exc);
  return NULL;
}

PyObject *raise_bm(const char *context, int err, int os) {
  return raise_msg(context, err, os, bm_strerror(err));
}

/* The rule a name breaks (BM_ENAME), in the words of every call that takes one. */
PyObject *raise_name(const char *name, int err) {
  return raise_msg(name, err, 0, "a name is 1-200 characters of A-Z a-z 0-9 . _ -");
}

int check_name(const char *name) {
  int err = bm_name_check(name);
  if (err == 0) return 0;
  raise_name(name, err);
  return -1;
}

/* The message a user needs for a dataset that cannot be opened (as the tool words it). */
PyObject *raise_open(const char *name, int err, int os, const bm_dataset_info_t *info) {
  char msg[160];
  if (err == BM_ENAME) return raise_name(name, err);
  if ((err == BM_EINCOMPLETE || err == BM_EABANDONED) && info->state == BM_STATE_LOADING) {
    snprintf(msg, sizeof(msg), "not ready: still loading (writer pid %lld)",
             (long long)info->writer_pid);
    return raise_msg(name, err, os, msg);
  }
  if (err == BM_EINCOMPLETE && info->state == BM_STATE_FAILED)
    return raise_msg(name, err, os, "not ready: the load failed");
  if (err == BM_EABANDONED)
    return raise_msg(name, err, os, "not ready: abandoned by its writer while loading");
  if (err == BM_ECHECKSUM && info->has_xxh3) {
    snprintf(msg, sizeof(msg), "checksum mismatch: the payload does not hash to the trailer's %016llx",
             (unsigned long long)info->xxh3);
    return raise_msg(name, err, os, msg);
  }
  return raise_bm(name, err, os);
}

/* Which of the two a failure of bm_dataset_load is about: the file (path) or the dataset
 * (name). The library opens the file first; an error it can give for both (ENOENT: no such
 * file, or no such group; EACCES) is the file's when the file cannot be opened now. */
static int load_about_file(const char *path, int err) {
  bm_source_t *f = NULL;
  int again;
  switch (err) {
  case BM_ECHANGED: case BM_ETRUNCATED: case BM_EIO: case BM_EISDIR: case BM_ENOTREG:
    return 1;
  case BM_ENOENT: case BM_EACCES: case BM_EPERM: case BM_EOS:
    break;
  default:
    return 0;
  }
  Py_BEGIN_ALLOW_THREADS
  again = bm_file_open(&f, path, BM_FILE_READ);
  bm_source_close(f);
  Py_END_ALLOW_THREADS
  return again == err;
}

/* Why the load failed, in the tool's words (tools/bulkmap/cmd_load.c load_error), with
 * the library's figures: the room from bm_preflight_describe (a full /dev/shm or memory
 * cgroup), the large-page reason from bm_large_describe, the header's fault from the
 * library's `why`; only the remedies are spelt for Python (format="raw", replace=True,
 * bulkmap.rm(name)) where the tool names its options. */
PyObject *load_error(const char *path, const char *name, const char *group, int err,
                            int os, const bm_load_result_t *res, const bm_preflight_t *room) {
  char why[BM_DESCRIBE_MAX * 2], msg[BM_DESCRIBE_MAX * 2 + 400];
  bm_section_info_t held;
  if (err == BM_EFORMAT) {
    const char *hint = strstr(res->why, "--format raw");
    if (hint != NULL) {
      /* The library's own hint (--format auto met a magic): spelt for Python. */
      snprintf(msg, sizeof(msg), "%.*sformat=\"raw\"%s: nothing published", (int)(hint - res->why),
               res->why, hint + strlen("--format raw"));
    } else {
      snprintf(msg, sizeof(msg), "%s: nothing published (format=\"raw\" loads the bytes as they are)",
               res->why[0] ? res->why : "the header is not valid");
    }
    return raise_msg(path, err, 0, msg);
  }
  if (res->failed_at == BM_LOAD_AT_FILE || load_about_file(path, err)) {
    if (err == BM_ECHANGED) return raise_msg(path, err, os, "file changed as we read it: nothing published");
    if (err == BM_ETRUNCATED) return raise_msg(path, err, os, "the file shrank while it was loaded");
    return raise_bm(path, err, os);
  }
  switch (err) {
  case BM_ENAME:
    return raise_name(name, err);
  case BM_ENOTSUP:
    if (res->failed_at == BM_LOAD_AT_CREATE)
      return raise_msg(name, err, os, "cannot be replaced here: a named section cannot be renamed "
                                      "(it lives until its last handle closes: stop its holder, then load)");
    break;
  case BM_EEXIST:
    if (bm_section_lookup(name, &held) == 0 && held.state == BM_STATE_ABANDONED) {
      snprintf(msg, sizeof(msg), "exists already, abandoned by its writer (pid %lld): "
               "bulkmap.rm(name) removes it", (long long)held.writer_pid);
      return raise_msg(name, err, os, msg);
    }
    if (bm_section_lookup(name, &held) == 0 && held.state == BM_STATE_FAILED)
      return raise_msg(name, err, os, "exists already, a load that failed: bulkmap.rm(name) removes it");
    return raise_msg(name, err, os, "a section of that name exists already (bulkmap.rm(name) "
                                    "removes it; replace=True replaces it)");
  case BM_ENOROOM:
    snprintf(msg, sizeof(msg), "not loaded: %s", bm_preflight_describe(room, why, sizeof(why)));
    return raise_msg(name, err, 0, msg);
  case BM_ENOLARGE:
    snprintf(msg, sizeof(msg), "large pages required but not had: %s%s",
             bm_large_describe(&res->large, why, sizeof(why)),
             res->large.reason == BM_REASON_NO_MOUNT ? " (bulkmap setup --large-pages SIZE mounts hugetlbfs)"
             : res->large.reason == BM_REASON_POOL_EMPTY || res->large.reason == BM_REASON_POOL_TOO_SMALL
                 ? " (bulkmap setup --large-pages SIZE grows the pool)" : "");
    return raise_msg(name, err, os, msg);
  case BM_ENOSPC:
    return raise_msg(name, err, os, "no memory left for the section's pages (shared memory full: "
                                    "/dev/shm or the huge page pool)");
  case BM_ENOENT:
    if (group != NULL && res->failed_at == BM_LOAD_AT_CREATE) {
      snprintf(msg, sizeof(msg), "group '%.200s': no such group", group);
      return raise_msg(name, err, os, msg);
    }
    break;
  case BM_EACCES: case BM_EPERM:
    if (group != NULL) {
      snprintf(msg, sizeof(msg), "group '%.200s': you may not give a section to that group", group);
      return raise_msg(name, err, os, msg);
    }
    break;
  }
  return raise_bm(name, err, os);
}

PyObject *make_error(const char *name, const char *group, int replace, int err, int os,
                            const bm_large_t *large, const char *why) {
  char d[1024], msg[1200];
  switch (err) {
  case BM_ENAME:
    return raise_name(name, err);
  case BM_EFORMAT:
    snprintf(msg, sizeof(msg), "%s: nothing published", why);
    return raise_msg(name, err, 0, msg);
  case BM_EEXIST:
    return raise_msg(name, err, os, "a section of that name exists already (bulkmap.rm(name) "
                                    "removes it; replace=True replaces it)");
  case BM_ENOLARGE:
    snprintf(msg, sizeof(msg), "large pages required but not had: %s",
             bm_large_describe(large, d, sizeof(d)));
    return raise_msg(name, err, os, msg);
  case BM_ENOSPC:
    return raise_msg(name, err, os, "no memory left for the section's pages (shared memory full?)");
  case BM_ENOENT: case BM_EACCES: case BM_EPERM:
    if (group != NULL) {
      snprintf(msg, sizeof(msg), err == BM_ENOENT ? "group '%.200s': no such group"
                                 : "group '%.200s': you may not give a section to that group", group);
      return raise_msg(name, err, os, msg);
    }
    if (replace && err == BM_EPERM)
      return raise_msg(name, err, os, "replace: only the dataset's owner (or root) may replace "
                                      "it; the old one is left as it was");
    break;
  }
  return raise_bm(name, err, os);
}

