/* bulkmap._bulkmap: the CPython binding of libbulkmap (DESIGN section 5). scan, load, open,
 * stat, ls, rm return the tool's JSON keys as dicts; open() gives a read-only Dataset that
 * exports the buffer protocol over the section's mapping (zero copy) and refuses to close
 * while an export lives. The GIL is released for every scan, load and verification. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"

static PyObject *bm_error; /* bulkmap.Error */

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

static PyObject *raise_msg(const char *context, int err, int os, const char *msg) {
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

static PyObject *raise_bm(const char *context, int err, int os) {
  return raise_msg(context, err, os, bm_strerror(err));
}

/* The message a user needs for a dataset that cannot be opened (as the tool words it). */
static PyObject *raise_open(const char *name, int err, int os, const bm_dataset_info_t *info) {
  char msg[160];
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

/* ---------------------------------------------------------------------------------------
 * Argument helpers. */
static int to_u64(PyObject *o, const char *what, uint64_t *out) {
  unsigned long long v;
  if (!PyLong_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.80s", what, Py_TYPE(o)->tp_name);
    return -1;
  }
  v = PyLong_AsUnsignedLongLong(o);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    /* Negative (OverflowError from CPython) reads better as a ValueError here. */
    PyObject *zero;
    if (PyErr_ExceptionMatches(PyExc_OverflowError) && (zero = PyLong_FromLong(0)) != NULL) {
      int neg = PyObject_RichCompareBool(o, zero, Py_LT);
      Py_DECREF(zero);
      if (neg == 1) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
      }
    }
    return -1;
  }
  *out = v;
  return 0;
}

/* SIZE: an int, or a string as the tool takes it ("64M"). */
static int to_size(PyObject *o, const char *what, uint64_t *out) {
  if (PyUnicode_Check(o)) {
    const char *s = PyUnicode_AsUTF8(o);
    int err;
    if (s == NULL) return -1;
    if ((err = bm_parse_size(s, out)) != 0) {
      PyErr_Format(PyExc_ValueError, "%s '%s': %s (plain bytes or a binary suffix K M G T)",
                   what, s, bm_strerror(err));
      return -1;
    }
    return 0;
  }
  return to_u64(o, what, out);
}

/* The literal: str (UTF-8) or bytes-like; *keep owns the bytes. */
static int to_literal(PyObject *o, PyObject **keep, const unsigned char **lit, size_t *len) {
  if (PyUnicode_Check(o)) *keep = PyUnicode_AsUTF8String(o);
  else if (PyObject_CheckBuffer(o)) *keep = PyBytes_FromObject(o);
  else {
    PyErr_Format(PyExc_TypeError, "count must be str or bytes, not %.80s", Py_TYPE(o)->tp_name);
    return -1;
  }
  if (*keep == NULL) return -1;
  *lit = (const unsigned char *)PyBytes_AS_STRING(*keep);
  *len = (size_t)PyBytes_GET_SIZE(*keep);
  if (*len == 0) {
    PyErr_SetString(PyExc_ValueError, "count: the literal is empty");
    Py_CLEAR(*keep);
    return -1;
  }
  return 0;
}

static int set_item(PyObject *d, const char *key, PyObject *v) {
  int r;
  if (v == NULL) return -1;
  r = PyDict_SetItemString(d, key, v);
  Py_DECREF(v);
  return r;
}

static PyObject *hex64(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  return PyUnicode_FromString(buf);
}

/* Text from the library that may hold any bytes (names, sources): invalid UTF-8 shows as
 * U+FFFD, as in the tool's JSON. */
static PyObject *text(const char *s) {
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* Called without the GIL every 100 ms during long work: takes it, runs Python's signal
 * handlers (KeyboardInterrupt), gives it back. Non-zero stops the work. */
static int poll_signals(void *arg) {
  PyThreadState **ts = arg;
  int r;
  PyEval_RestoreThread(*ts);
  r = PyErr_CheckSignals();
  *ts = PyEval_SaveThread();
  return r != 0;
}

/* ---------------------------------------------------------------------------------------
 * scan and _scan_range. */
typedef struct {
  PyObject *path; /* bytes, from PyUnicode_FSConverter */
  uint64_t offset, length;
  int has_length;
  bmpy_scan_t s;
  PyObject *lit;
} scan_args_t;

static PyObject *scan_run(scan_args_t *a, int phases, PyObject *path_obj) {
  const char *path = PyBytes_AS_STRING(a->path);
  bm_source_t *src = NULL;
  uint64_t size;
  PyThreadState *ts;
  PyObject *d = NULL;
  int err;
  double t0, secs;

  Py_BEGIN_ALLOW_THREADS
  err = bm_file_open(&src, path, BM_FILE_READ);
  if (err == 0 && (err = bm_source_size(src, &size)) != 0) {
    bm_source_close(src);
    src = NULL;
  }
  Py_END_ALLOW_THREADS
  if (err != 0) return raise_bm(path, err, bm_last_os_error());
  if (a->offset > size) {
    bm_source_close(src);
    return raise_msg(path, BM_ERANGE, 0, "offset is past the end of the file");
  }
  if (a->has_length && a->offset + a->length < a->offset) {
    bm_source_close(src);
    return raise_msg(path, BM_EOVERFLOW, 0, "offset plus length overflows 64 bits");
  }
  if (a->has_length && a->offset + a->length > size) {
    bm_source_close(src);
    return raise_msg(path, BM_ERANGE, 0, "offset plus length runs past the end of the file");
  }
  if (!a->has_length) a->length = size - a->offset;
  a->s.offset = a->offset;
  a->s.length = a->length;
  /* A range of a larger scan may see a literal match run on into the next range. */
  a->s.limit = phases ? size : a->offset + a->length;
  a->s.phases = phases;

  t0 = bmpy_now();
  ts = PyEval_SaveThread();
  err = bmpy_scan(src, &a->s, poll_signals, &ts);
  PyEval_RestoreThread(ts);
  secs = bmpy_now() - t0;
  if (PyErr_Occurred()) goto out; /* KeyboardInterrupt, or another handler's exception */
  if (err == BM_ETRUNCATED) {
    raise_msg(path, err, a->s.os_error, "the file shrank while it was scanned");
    goto out;
  }
  if (err != 0) {
    raise_bm(path, err, a->s.os_error);
    goto out;
  }
  if ((d = PyDict_New()) == NULL) goto out;
  if (set_item(d, "file", Py_NewRef(path_obj)) < 0 ||
      set_item(d, "offset", PyLong_FromUnsignedLongLong(a->offset)) < 0 ||
      set_item(d, "length", PyLong_FromUnsignedLongLong(a->length)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(a->s.bytes)) < 0 ||
      (a->s.hash && set_item(d, "xxh3", hex64(a->s.xxh3)) < 0) ||
      (a->s.lines && set_item(d, "lines", PyLong_FromUnsignedLongLong(a->s.line_count)) < 0) ||
      (a->s.lit && set_item(d, "count", PyLong_FromUnsignedLongLong(a->s.count)) < 0) ||
      set_item(d, "seconds", PyFloat_FromDouble(secs)) < 0 ||
      set_item(d, "bytes_per_second",
               PyLong_FromDouble(secs > 0 ? (double)(uint64_t)((double)a->length / secs) : 0)) < 0 ||
      set_item(d, "window", PyLong_FromUnsignedLongLong(a->s.window_used)) < 0 ||
      set_item(d, "threads", PyLong_FromUnsignedLong(a->s.threads_used)) < 0 ||
      set_item(d, "peak_mapped_bytes", PyLong_FromUnsignedLongLong(a->s.peak_mapped)) < 0)
    Py_CLEAR(d);
  if (d != NULL && phases && a->s.lit) {
    PyObject *l = PyList_New((Py_ssize_t)a->s.fn.n);
    size_t i;
    if (l == NULL) Py_CLEAR(d);
    for (i = 0; l != NULL && i < a->s.fn.n; i++) {
      const bmpy_phase_t *e = &a->s.fn.v[i];
      PyObject *t = Py_BuildValue("(KKKKi)", (unsigned long long)e->lo, (unsigned long long)e->hi,
                                  (unsigned long long)e->count, (unsigned long long)e->value,
                                  e->shift);
      if (t == NULL) {
        Py_CLEAR(l);
        Py_CLEAR(d);
        break;
      }
      PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    if (d != NULL && set_item(d, "phases", l) < 0) Py_CLEAR(d);
  }
out:
  bmpy_phases_free(&a->s.fn);
  Py_BEGIN_ALLOW_THREADS
  bm_source_close(src);
  Py_END_ALLOW_THREADS
  return d;
}

static PyObject *scan_common(PyObject *args, PyObject *kw, int phases) {
  static char *kwlist[] = {"path", "offset", "length", "hash", "lines", "count", "window",
                           "threads", NULL};
  PyObject *path_obj, *offset = NULL, *length = Py_None, *count = Py_None, *window = Py_None,
                      *threads = Py_None, *r = NULL;
  int hash = 1, lines = 1;
  scan_args_t a;
  uint64_t t;

  memset(&a, 0, sizeof(a));
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOppOOO:scan", kwlist, &path_obj, &offset,
                                   &length, &hash, &lines, &count, &window, &threads))
    return NULL;
  if (!PyUnicode_FSConverter(path_obj, &a.path)) return NULL;
  if (PyBytes_GET_SIZE(a.path) == 0) {
    PyErr_SetString(PyExc_ValueError, "path is an empty string");
    goto out;
  }
  if (offset != NULL && offset != Py_None && to_u64(offset, "offset", &a.offset) < 0) goto out;
  if (length != Py_None) {
    if (to_u64(length, "length", &a.length) < 0) goto out;
    a.has_length = 1;
  }
  if (count != Py_None && to_literal(count, &a.lit, &a.s.lit, &a.s.litlen) < 0) goto out;
  if (window != Py_None) {
    if (to_size(window, "window", &a.s.window) < 0) goto out;
    if (a.s.window == 0 || a.s.window > (4ull << 30)) {
      PyErr_SetString(PyExc_ValueError, "window: 1 byte to 4G");
      goto out;
    }
  }
  if (a.s.lit && a.s.litlen >= (a.s.window ? a.s.window : (64u << 20))) {
    PyErr_SetString(PyExc_ValueError, "count: the literal must be shorter than the window");
    goto out;
  }
  if (threads != Py_None) {
    if (to_u64(threads, "threads", &t) < 0) goto out;
    if (t == 0 || t > 64) {
      PyErr_SetString(PyExc_ValueError, "threads: 1 to 64");
      goto out;
    }
    a.s.threads = (unsigned)t;
  }
  a.s.hash = hash;
  a.s.lines = lines;
  /* As the tool: asked for nothing, it hashes and counts lines. */
  if (!a.s.hash && !a.s.lines && !a.s.lit) a.s.hash = a.s.lines = 1;
  if (PyUnicode_Check(path_obj)) Py_INCREF(path_obj);
  else path_obj = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(a.path));
  if (path_obj == NULL) goto out;
  r = scan_run(&a, phases, path_obj);
  Py_DECREF(path_obj);
out:
  Py_XDECREF(a.path);
  Py_XDECREF(a.lit);
  return r;
}

static PyObject *py_scan(PyObject *self, PyObject *args, PyObject *kw) {
  return scan_common(args, kw, 0);
}

static PyObject *py_scan_range(PyObject *self, PyObject *args, PyObject *kw) {
  return scan_common(args, kw, 1);
}

/* ---------------------------------------------------------------------------------------
 * Dataset dicts (the tool's load/stat keys). */
static PyObject *large_dict(const bm_large_t *l) {
  static const char *modes[] = {"off", "auto", "on"};
  char why[96];
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  if (set_item(d, "requested", l->requested >= 0 && l->requested <= 2
                                   ? PyUnicode_FromString(modes[l->requested])
                                   : Py_NewRef(Py_None)) < 0 ||
      set_item(d, "obtained", PyBool_FromLong(l->obtained)) < 0 ||
      set_item(d, "page_size", PyLong_FromSize_t(l->page_size)) < 0 ||
      set_item(d, "reason", l->reason == BM_REASON_NONE
                                ? Py_NewRef(Py_None)
                                : PyUnicode_FromString(bm_large_describe(l, why, sizeof(why)))) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

/* name bytes xxh3 state page_size large_pages, then writer_pid created (and with full:
 * source path section_bytes, as stat shows). */
static PyObject *info_dict(const bm_dataset_info_t *info, int full, double secs) {
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  if (set_item(d, "name", text(info->name)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(info->bytes)) < 0 ||
      set_item(d, "xxh3", info->has_xxh3 ? hex64(info->xxh3) : Py_NewRef(Py_None)) < 0 ||
      set_item(d, "state", PyUnicode_FromString(bm_state_name(info->state))) < 0 ||
      set_item(d, "page_size", PyLong_FromUnsignedLongLong(info->page_size)) < 0 ||
      set_item(d, "large_pages", large_dict(&info->large)) < 0 ||
      (secs >= 0 && set_item(d, "seconds", PyFloat_FromDouble(secs)) < 0) ||
      (secs >= 0 && set_item(d, "bytes_per_second",
                             PyLong_FromDouble(secs > 0 ? (double)(uint64_t)((double)info->bytes / secs) : 0)) < 0) ||
      set_item(d, "writer_pid", PyLong_FromLongLong(info->writer_pid)) < 0 ||
      set_item(d, "created", PyLong_FromLongLong(info->created)) < 0 ||
      (full && (set_item(d, "source", text(info->source)) < 0 ||
                set_item(d, "path", text(info->path)) < 0 ||
                set_item(d, "section_bytes", PyLong_FromUnsignedLongLong(info->section_bytes)) < 0))) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

/* ---------------------------------------------------------------------------------------
 * load. */
static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "name", "large_pages", "mode", "group", "threads", NULL};
  PyObject *path_obj, *pathb = NULL, *mode_obj = NULL, *group_obj = Py_None, *threads = Py_None,
                      *r = NULL;
  const char *name, *large = "auto", *path, *group = NULL;
  bm_source_t *file = NULL;
  bm_dataset_t *ds = NULL;
  bm_dataset_opts_t o;
  bm_dataset_info_t info;
  bm_large_t outcome;
  bmpy_fill_t fill;
  PyThreadState *ts;
  struct stat st;
  uint64_t mode = 0600, size = 0, t;
  int err, os, fd = -1, failed = 1;
  double t0;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|sOOO:load", kwlist, &path_obj, &name, &large,
                                   &mode_obj, &group_obj, &threads))
    return NULL;
  memset(&o, 0, sizeof(o));
  memset(&fill, 0, sizeof(fill));
  if (strcmp(large, "auto") == 0) o.large = BM_LARGE_AUTO;
  else if (strcmp(large, "on") == 0) o.large = BM_LARGE_ON;
  else if (strcmp(large, "off") == 0) o.large = BM_LARGE_OFF;
  else {
    PyErr_Format(PyExc_ValueError, "large_pages '%s': expected \"auto\", \"on\" or \"off\"", large);
    return NULL;
  }
  if (mode_obj != NULL && to_u64(mode_obj, "mode", &mode) < 0) return NULL;
  if (mode > 0777) {
    PyErr_SetString(PyExc_ValueError, "mode: permission bits 0 to 0o777");
    return NULL;
  }
  if (group_obj != Py_None && (group = PyUnicode_AsUTF8(group_obj)) == NULL) return NULL;
  if (threads != Py_None) {
    if (to_u64(threads, "threads", &t) < 0) return NULL;
    if (t == 0 || t > 64) {
      PyErr_SetString(PyExc_ValueError, "threads: 1 to 64");
      return NULL;
    }
    fill.threads = (unsigned)t;
  }
  if ((err = bm_name_check(name)) != 0)
    return raise_msg(name, err, 0, "a name is 1-200 characters of A-Z a-z 0-9 . _ -");
  if (!PyUnicode_FSConverter(path_obj, &pathb)) return NULL;
  path = PyBytes_AS_STRING(pathb);

  Py_BEGIN_ALLOW_THREADS
  err = bm_file_open(&file, path, BM_FILE_READ);
  os = err ? bm_last_os_error() : 0;
  if (err == 0 && (err = bm_source_size(file, &size)) != 0) os = bm_last_os_error();
  /* A second descriptor for the threads' reads. O_NONBLOCK: should the path have become a
   * FIFO since, it cannot hang us, and fstat refuses it. */
  if (err == 0 && (fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) err = BM_EOS, os = errno;
  if (err == 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) err = BM_ENOTREG, os = 0;
  Py_END_ALLOW_THREADS
  if (err != 0) {
    raise_bm(path, err, os);
    goto done;
  }

  o.size = size;
  o.mode = (unsigned)mode;
  o.group = group;
  o.source = base_name(path);
  memset(&outcome, 0, sizeof(outcome));
  /* Python's handler only notes SIGINT: making the section and publishing it are never
   * cut off half-way, and the note is acted on at the next step below. */
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_create(&ds, name, &o, &outcome);
  os = err ? bm_last_os_error() : 0;
  if (err == 0 && (err = bm_dataset_watch(ds, file)) != 0) os = bm_last_os_error();
  Py_END_ALLOW_THREADS
  if (err != 0 && ds == NULL) {
    char why[96], msg[200];
    if (err == BM_ENOLARGE) {
      snprintf(msg, sizeof(msg), "large pages required but not had: %s",
               bm_large_describe(&outcome, why, sizeof(why)));
      raise_msg(name, err, os, msg);
    } else if (err == BM_EEXIST) {
      raise_msg(name, err, os, "a section of that name exists already");
    } else {
      raise_bm(name, err, os);
    }
    goto done;
  }
  if (err != 0) {
    raise_bm(path, err, os);
    goto done;
  }
  if (PyErr_CheckSignals() != 0) goto done;

  fill.fd = fd;
  fill.ds = ds;
  fill.size = size;
  t0 = bmpy_now();
  ts = PyEval_SaveThread();
  err = bmpy_fill(&fill, poll_signals, &ts);
  PyEval_RestoreThread(ts);
  if (PyErr_Occurred()) goto done;
  if (err != 0) {
    if (err == BM_ETRUNCATED) raise_msg(path, err, fill.os_error, "the file shrank while it was loaded");
    else if (err == BM_ENOSPC)
      raise_msg(name, err, fill.os_error, "no memory left for the section's pages (shared memory full?)");
    else raise_bm(path, err, fill.os_error);
    goto done;
  }
  if (PyErr_CheckSignals() != 0) goto done;
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_publish(ds, &info);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err == BM_ECHANGED) {
    raise_msg(path, err, os, "file changed as we read it: nothing published");
    goto done;
  }
  if (err != 0) {
    raise_bm(name, err, os);
    goto done;
  }
  /* A KeyboardInterrupt noted during the publish would surface right after we return,
   * with the dataset left behind: act on it here instead. */
  if (PyErr_CheckSignals() != 0) goto done;
  r = info_dict(&info, 0, bmpy_now() - t0);
  failed = r == NULL;

done:
  Py_BEGIN_ALLOW_THREADS
  /* Only what this load made: a name removed and made again by anyone since is left. */
  if (ds != NULL && failed) bm_dataset_fail(ds);
  bm_dataset_close(ds);
  if (fd >= 0) close(fd);
  bm_source_close(file);
  Py_END_ALLOW_THREADS
  Py_XDECREF(pathb);
  return r;
}

/* ---------------------------------------------------------------------------------------
 * stat, ls, rm. */
static PyObject *py_stat(PyObject *self, PyObject *args) {
  const char *name;
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  int err, os;
  if (!PyArg_ParseTuple(args, "s:stat", &name)) return NULL;
  memset(&info, 0, sizeof(info));
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_open(&ds, name, BM_OPEN_ANY_STATE, &info);
  os = err ? bm_last_os_error() : 0;
  bm_dataset_close(ds);
  Py_END_ALLOW_THREADS
  if (err != 0) return raise_open(name, err, os, &info);
  if (info.state == BM_STATE_CORRUPT)
    return raise_msg(name, BM_ECORRUPT, 0, "the dataset's trailer is corrupt");
  return info_dict(&info, 1, -1);
}

static PyObject *py_ls(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"all", NULL};
  int all = 0, err;
  bm_section_info_t *v = NULL;
  size_t n = 0, i;
  PyObject *list, *d = NULL, *out;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:ls", kwlist, &all)) return NULL;
  Py_BEGIN_ALLOW_THREADS
  err = bm_section_list(NULL, all ? BM_LIST_ALL : 0, &v, &n);
  Py_END_ALLOW_THREADS
  if (err != 0) return raise_bm("ls", err, bm_last_os_error());
  if ((list = PyList_New(0)) == NULL) goto fail;
  for (i = 0; i < n; i++) {
    int dataset = v[i].state != BM_STATE_FOREIGN && v[i].state != BM_STATE_UNREADABLE;
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", v[i].mode);
    if ((d = PyDict_New()) == NULL) goto fail;
    if (set_item(d, "name", text(v[i].name)) < 0 || set_item(d, "place", text(v[i].place)) < 0 ||
        set_item(d, "bytes", PyLong_FromUnsignedLongLong(v[i].bytes)) < 0 ||
        set_item(d, "state", PyUnicode_FromString(bm_state_name(v[i].state))) < 0 ||
        set_item(d, "page_size", PyLong_FromUnsignedLongLong(v[i].page_size)) < 0 ||
        set_item(d, "owner", text(v[i].owner)) < 0 ||
        set_item(d, "mode", PyUnicode_FromString(mode)) < 0 ||
        set_item(d, "writer_pid", dataset ? PyLong_FromLongLong(v[i].writer_pid) : Py_NewRef(Py_None)) < 0 ||
        set_item(d, "created", dataset ? PyLong_FromLongLong(v[i].created) : Py_NewRef(Py_None)) < 0 ||
        PyList_Append(list, d) < 0)
      goto fail;
    Py_CLEAR(d);
  }
  bm_section_list_free(v);
  out = PyDict_New();
  if (out == NULL || set_item(out, "sections", list) < 0) {
    Py_XDECREF(out);
    return NULL;
  }
  return out;
fail:
  Py_XDECREF(d);
  Py_XDECREF(list);
  bm_section_list_free(v);
  return NULL;
}

static PyObject *py_rm(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "force", NULL};
  const char *name;
  int force = 0, err, os;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p:rm", kwlist, &name, &force)) return NULL;
  Py_BEGIN_ALLOW_THREADS
  err = force ? bm_section_remove_force(name) : bm_section_remove(name);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err == BM_EBUSY)
    return raise_msg(name, err, os, "its writer is still loading it (force=True removes it anyway)");
  if (err == BM_ENAME) return raise_msg(name, err, 0, "a name is 1-200 characters of A-Z a-z 0-9 . _ -");
  if (err != 0) return raise_bm(name, err, os);
  Py_RETURN_NONE;
}

static PyObject *py_parse_size(PyObject *self, PyObject *arg) {
  uint64_t v;
  if (to_size(arg, "size", &v) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(v);
}

/* ---------------------------------------------------------------------------------------
 * Dataset: a verified, read-only view of a ready dataset's payload. */
typedef struct {
  PyObject_HEAD
  bm_dataset_t *ds;
  bm_view_t view;
  Py_ssize_t exports;
  PyObject *name;
} dataset_obj;

static PyTypeObject dataset_type;

static int dataset_live(dataset_obj *self) {
  if (self->ds == NULL) {
    PyErr_SetString(PyExc_ValueError, "the dataset is closed");
    return 0;
  }
  return 1;
}

static void dataset_release(dataset_obj *self) {
  bm_view_t v = self->view;
  bm_dataset_t *ds = self->ds;
  memset(&self->view, 0, sizeof(self->view));
  self->ds = NULL;
  Py_BEGIN_ALLOW_THREADS
  bm_view_unmap(&v);
  bm_dataset_close(ds);
  Py_END_ALLOW_THREADS
}

static void dataset_dealloc(dataset_obj *self) {
  /* Every export holds a reference, so none is alive here. */
  if (self->ds != NULL) dataset_release(self);
  Py_XDECREF(self->name);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int dataset_getbuffer(dataset_obj *self, Py_buffer *view, int flags) {
  if (self->ds == NULL) {
    PyErr_SetString(PyExc_BufferError, "the dataset is closed");
    view->obj = NULL;
    return -1;
  }
  if (PyBuffer_FillInfo(view, (PyObject *)self, self->view.data, (Py_ssize_t)self->view.length,
                        1, flags) < 0)
    return -1;
  self->exports++;
  return 0;
}

static void dataset_releasebuffer(dataset_obj *self, Py_buffer *view) {
  self->exports--;
}

static PyBufferProcs dataset_as_buffer = {(getbufferproc)dataset_getbuffer,
                                          (releasebufferproc)dataset_releasebuffer};

static PyObject *dataset_close(dataset_obj *self, PyObject *unused) {
  if (self->exports > 0) {
    PyErr_SetString(PyExc_BufferError, "cannot close the dataset: exported pointers exist "
                                       "(a memoryview or numpy array still uses it)");
    return NULL;
  }
  if (self->ds != NULL) dataset_release(self);
  Py_RETURN_NONE;
}

static PyObject *dataset_enter(dataset_obj *self, PyObject *unused) {
  if (!dataset_live(self)) return NULL;
  return Py_NewRef(self);
}

static PyObject *dataset_exit(dataset_obj *self, PyObject *args) {
  return dataset_close(self, NULL);
}

static PyObject *dataset_verify(dataset_obj *self, PyObject *unused) {
  int err, os;
  bm_dataset_info_t info;
  if (!dataset_live(self)) return NULL;
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_verify(self->ds);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err != 0) {
    bm_dataset_info(self->ds, &info);
    return raise_open(PyUnicode_AsUTF8(self->name), err, os, &info);
  }
  Py_RETURN_NONE;
}

static PyObject *dataset_get_info(dataset_obj *self, void *closure) {
  bm_dataset_info_t info;
  int err;
  if (!dataset_live(self)) return NULL;
  if ((err = bm_dataset_info(self->ds, &info)) != 0)
    return raise_bm(PyUnicode_AsUTF8(self->name), err, 0);
  return info_dict(&info, 1, -1);
}

static PyObject *dataset_get_name(dataset_obj *self, void *closure) {
  return Py_NewRef(self->name);
}

static PyObject *dataset_get_closed(dataset_obj *self, void *closure) {
  return PyBool_FromLong(self->ds == NULL);
}

static PyObject *dataset_get_size(dataset_obj *self, void *closure) {
  return PyLong_FromSize_t(self->view.length);
}

static PyObject *dataset_get_address(dataset_obj *self, void *closure) {
  if (!dataset_live(self)) return NULL;
  return PyLong_FromVoidPtr(self->view.data);
}

static Py_ssize_t dataset_len(dataset_obj *self) {
  if (!dataset_live(self)) return -1;
  return (Py_ssize_t)self->view.length;
}

static PyObject *dataset_repr(dataset_obj *self) {
  if (self->ds == NULL) return PyUnicode_FromFormat("<bulkmap.Dataset %R closed>", self->name);
  return PyUnicode_FromFormat("<bulkmap.Dataset %R %zu bytes>", self->name, self->view.length);
}

static PyMethodDef dataset_methods[] = {
  {"close", (PyCFunction)dataset_close, METH_NOARGS,
   "Unmaps the payload. BufferError while a memoryview or array still uses it."},
  {"verify", (PyCFunction)dataset_verify, METH_NOARGS,
   "Hashes the payload again and compares it with the trailer (bulkmap.Error ECHECKSUM)."},
  {"__enter__", (PyCFunction)dataset_enter, METH_NOARGS, NULL},
  {"__exit__", (PyCFunction)dataset_exit, METH_VARARGS, NULL},
  {NULL, NULL, 0, NULL}};

static PyGetSetDef dataset_getset[] = {
  {"info", (getter)dataset_get_info, NULL, "The trailer, as stat() shows it.", NULL},
  {"name", (getter)dataset_get_name, NULL, "The dataset's name.", NULL},
  {"closed", (getter)dataset_get_closed, NULL, "True after close().", NULL},
  {"size", (getter)dataset_get_size, NULL, "Payload bytes.", NULL},
  {"address", (getter)dataset_get_address, NULL, "Address of the payload's first byte.", NULL},
  {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods dataset_as_sequence = {.sq_length = (lenfunc)dataset_len};

static PyTypeObject dataset_type = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "bulkmap.Dataset",
  .tp_basicsize = sizeof(dataset_obj),
  .tp_dealloc = (destructor)dataset_dealloc,
  .tp_repr = (reprfunc)dataset_repr,
  .tp_as_sequence = &dataset_as_sequence,
  .tp_as_buffer = &dataset_as_buffer,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A ready dataset, verified and mapped read-only (bulkmap.open). Exports the "
            "buffer protocol: memoryview(ds) and numpy.frombuffer(ds, dtype) are views of "
            "the section, not copies.",
  .tp_methods = dataset_methods,
  .tp_getset = dataset_getset,
};

static PyObject *py_open(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "verify", NULL};
  const char *name;
  int verify = 1, err, os;
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  bm_view_t view;
  dataset_obj *obj;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p:open", kwlist, &name, &verify)) return NULL;
  memset(&info, 0, sizeof(info));
  memset(&view, 0, sizeof(view));
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_open(&ds, name, verify ? BM_OPEN_VERIFY : 0, &info);
  os = err ? bm_last_os_error() : 0;
  if (err == 0 && (err = bm_dataset_view(ds, &view)) != 0) {
    os = bm_last_os_error();
    bm_dataset_close(ds);
  }
  Py_END_ALLOW_THREADS
  if (err == BM_ENAME) return raise_msg(name, err, 0, "a name is 1-200 characters of A-Z a-z 0-9 . _ -");
  if (err != 0) return raise_open(name, err, os, &info);
  obj = PyObject_New(dataset_obj, &dataset_type);
  if (obj != NULL) {
    obj->ds = NULL;
    obj->exports = 0;
    memset(&obj->view, 0, sizeof(obj->view));
    obj->name = PyUnicode_FromString(name);
  }
  if (obj == NULL || obj->name == NULL) {
    Py_XDECREF(obj);
    bm_view_unmap(&view);
    bm_dataset_close(ds);
    return NULL;
  }
  obj->ds = ds;
  obj->view = view;
  obj->exports = 0;
  return (PyObject *)obj;
}

/* ---------------------------------------------------------------------------------------
 * The module. */
static PyMethodDef methods[] = {
  {"scan", (PyCFunction)(void (*)(void))py_scan, METH_VARARGS | METH_KEYWORDS,
   "scan(path, offset=0, length=None, hash=True, lines=True, count=None, window=None, "
   "threads=None) -> dict"},
  {"_scan_range", (PyCFunction)(void (*)(void))py_scan_range, METH_VARARGS | METH_KEYWORDS,
   "A range of a larger scan: as scan, plus 'phases', the literal count as a function of "
   "where the search resumes (for bulkmap.dask)."},
  {"load", (PyCFunction)(void (*)(void))py_load, METH_VARARGS | METH_KEYWORDS,
   "load(path, name, large_pages='auto', mode=0o600, group=None) -> dict"},
  {"open", (PyCFunction)(void (*)(void))py_open, METH_VARARGS | METH_KEYWORDS,
   "open(name, verify=True) -> Dataset"},
  {"stat", py_stat, METH_VARARGS, "stat(name) -> dict"},
  {"ls", (PyCFunction)(void (*)(void))py_ls, METH_VARARGS | METH_KEYWORDS,
   "ls(all=False) -> {'sections': [...]}"},
  {"rm", (PyCFunction)(void (*)(void))py_rm, METH_VARARGS | METH_KEYWORDS,
   "rm(name, force=False)"},
  {"parse_size", py_parse_size, METH_O, "parse_size('64M') -> 67108864"},
  {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bulkmap",
                                    "libbulkmap from Python (see the bulkmap package).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bulkmap(void) {
  PyObject *m;
  if (PyType_Ready(&dataset_type) < 0) return NULL;
  if ((m = PyModule_Create(&module)) == NULL) return NULL;
  bm_error = PyErr_NewExceptionWithDoc(
      "bulkmap.Error",
      "A libbulkmap failure: .code is the error's name (\"ENOENT\", \"EINCOMPLETE\", ...), "
      ".os_error the raw OS error behind it (0 when none), .context the path or name.",
      NULL, NULL);
  if (bm_error == NULL || PyModule_AddObjectRef(m, "Error", bm_error) < 0 ||
      PyModule_AddObjectRef(m, "Dataset", (PyObject *)&dataset_type) < 0 ||
      PyModule_AddStringConstant(m, "library_version", bm_version()) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
