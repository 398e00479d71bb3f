/* bulkmap._bulkmap: the CPython binding of libbulkmap (DESIGN section 5), a binding only:
 * scan is bm_scan, load is bm_dataset_load, the Dask fold is bm_scan_part_fold; no thread,
 * window or kernel code lives here. scan, load, open, stat, ls, rm return the tool's JSON
 * keys as dicts; open() gives a read-only Dataset that exports the buffer protocol over the
 * section's mapping (zero copy) and refuses to close while an export or a call on it lives.
 * The GIL is released for every scan, load and verification. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <string.h>
#include <time.h>
#include "bulkmap.h"

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

static const char name_rule[] = "a name is 1-200 characters of A-Z a-z 0-9 . _ -";

/* The message a user needs for a dataset that cannot be opened (as the tool words it). */
static PyObject *raise_open(const char *name, int err, int os, const bm_dataset_info_t *info) {
  char msg[160];
  if (err == BM_ENAME) return raise_msg(name, err, 0, name_rule);
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

/* threads=: None is the library's default (the CPU count); else 1 up to the library's
 * BM_SCAN_MAX_THREADS, which the library checks (bm_scan_check, bm_dataset_load). */
static int to_threads(PyObject *o, unsigned *out) {
  uint64_t t;
  *out = 0;
  if (o == Py_None) return 0;
  if (to_u64(o, "threads", &t) < 0) return -1;
  if (t == 0 || t > BM_SCAN_MAX_THREADS) {
    PyErr_Format(PyExc_ValueError, "threads %llu: 1 to %d (None: the CPU count)",
                 (unsigned long long)t, BM_SCAN_MAX_THREADS);
    return -1;
  }
  *out = (unsigned)t;
  return 0;
}

/* The literal: str (UTF-8) or bytes-like, copied (a bytearray may change under a scan that
 * runs without the GIL); *keep owns the bytes. */
static int to_literal(PyObject *o, PyObject **keep, bm_literal_t *lit) {
  if (PyUnicode_Check(o)) *keep = PyUnicode_AsUTF8String(o);
  else if (PyObject_CheckBuffer(o)) *keep = PyBytes_FromObject(o);
  else {
    PyErr_Format(PyExc_TypeError, "count must be str or bytes, not %.80s", Py_TYPE(o)->tp_name);
    return -1;
  }
  if (*keep == NULL) return -1;
  lit->bytes = PyBytes_AS_STRING(*keep);
  lit->length = (size_t)PyBytes_GET_SIZE(*keep);
  if (lit->length == 0) {
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

static PyObject *rate(uint64_t bytes, double secs) {
  return PyLong_FromDouble(secs > 0 ? (double)(uint64_t)((double)bytes / secs) : 0);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------------
 * Interrupts. A long call runs without the GIL; the library calls progress on this, the
 * calling, thread about every 20 ms. It takes the GIL back with this thread's own state
 * (what Py_END_ALLOW_THREADS does), runs Python's signal handlers (KeyboardInterrupt),
 * and gives the GIL up again. On an exception it sets the cancel flag as well as returning
 * non-zero: the scheduler stops at its next window, and a load's readers at their next
 * 8 MiB piece (they look at the flag, not at the progress result). The exception stays set
 * and is raised when the call returns. */
typedef struct {
  PyThreadState *ts;
  volatile sig_atomic_t cancel;
} poll_t;

static void poll_begin(poll_t *p) {
  p->cancel = 0;
  p->ts = PyEval_SaveThread();
}

static void poll_end(poll_t *p) {
  PyEval_RestoreThread(p->ts);
}

static int poll_signals(uint64_t done, uint64_t total, void *arg) {
  poll_t *p = arg;
  int r;
  (void)done, (void)total;
  if (p->cancel) return 1;
  PyEval_RestoreThread(p->ts);
  r = PyErr_CheckSignals();
  p->ts = PyEval_SaveThread();
  if (r != 0) p->cancel = 1;
  return r != 0;
}

/* ---------------------------------------------------------------------------------------
 * scan and _scan_range: bm_scan. */
typedef struct {
  PyObject *path; /* bytes, from PyUnicode_FSConverter */
  PyObject *lit;  /* the literal's bytes, or NULL */
  bm_literal_t literal;
  bm_scan_opts_t o;
} scan_args_t;

/* The library checks the options (bm_scan_check); this only says which argument it refused,
 * by asking it again about each on its own. */
static int scan_check(scan_args_t *a) {
  bm_scan_opts_t t;
  int err = bm_scan_check(&a->o);
  if (err == 0 || err == BM_EOVERFLOW) return 0; /* the range: bulkmap.Error, with the path */
  t = a->o;
  t.n_literals = 0;
  t.threads = 0;
  if (bm_scan_check(&t) != 0) {
    PyErr_Format(PyExc_ValueError,
                 "window %llu: refused by the library (at most 4 GiB, 256 MiB in a 32-bit "
                 "process; None: 64 MiB)", (unsigned long long)a->o.window);
    return -1;
  }
  t.threads = a->o.threads;
  if (bm_scan_check(&t) != 0) {
    PyErr_Format(PyExc_ValueError, "threads %u: 1 to %d", a->o.threads, BM_SCAN_MAX_THREADS);
    return -1;
  }
  if (a->literal.length > BM_SCAN_MAX_LITERAL)
    PyErr_Format(PyExc_ValueError, "count: the literal is %zu bytes; at most %u",
                 a->literal.length, (unsigned)BM_SCAN_MAX_LITERAL);
  else
    PyErr_Format(PyExc_ValueError,
                 "count: the literal (%zu bytes) must be shorter than the window (%llu bytes)",
                 a->literal.length,
                 (unsigned long long)(a->o.window ? a->o.window : (uint64_t)64 << 20));
  return -1;
}

/* A part as bytes (bm_scan_part_save). */
static PyObject *part_bytes(const bm_scan_part_t *p) {
  size_t need = 0;
  PyObject *b;
  int err;
  bm_scan_part_save(p, NULL, 0, &need);
  if ((b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)need)) == NULL) return NULL;
  if ((err = bm_scan_part_save(p, PyBytes_AS_STRING(b), need, &need)) != 0) {
    Py_DECREF(b);
    return raise_bm("part", err, 0);
  }
  return b;
}

static PyObject *scan_run(scan_args_t *a, PyObject *path_obj) {
  const char *path = PyBytes_AS_STRING(a->path);
  bm_source_t *src = NULL;
  bm_scan_result_t r;
  uint64_t size = 0;
  poll_t poll;
  PyObject *d = NULL;
  int err, os = 0, part = (a->o.flags & BM_SCAN_PART) != 0;
  double t0, secs;

  memset(&r, 0, sizeof(r));
  Py_BEGIN_ALLOW_THREADS
  err = bm_file_open(&src, path, BM_FILE_READ);
  if (err != 0) os = bm_last_os_error();
  else if ((err = bm_source_size(src, &size)) != 0) os = bm_last_os_error();
  Py_END_ALLOW_THREADS
  if (err != 0) {
    raise_bm(path, err, os);
    goto out;
  }
  a->o.progress = poll_signals;
  a->o.progress_arg = &poll;
  a->o.cancel = &poll.cancel;
  t0 = now();
  poll_begin(&poll);
  err = bm_scan(src, &a->o, &r);
  poll_end(&poll);
  secs = now() - t0;
  if (PyErr_Occurred()) goto out; /* KeyboardInterrupt, or another handler's exception */
  if (err == BM_ERANGE)
    raise_msg(path, err, 0, a->o.offset > size ? "offset is past the end of the file"
                                               : "offset plus length runs past the end of the file");
  else if (err == BM_EOVERFLOW)
    raise_msg(path, err, 0, "offset plus length overflows 64 bits");
  else if (err == BM_ETRUNCATED)
    raise_msg(path, err, r.os_error, "the file shrank while it was scanned");
  else if (err != 0)
    raise_bm(path, err, r.os_error);
  if (err != 0) goto out;
  if ((d = PyDict_New()) == NULL) goto out;
  if (set_item(d, "file", Py_NewRef(path_obj)) < 0 ||
      set_item(d, "offset", PyLong_FromUnsignedLongLong(r.offset)) < 0 ||
      set_item(d, "length", PyLong_FromUnsignedLongLong(r.length)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(r.bytes)) < 0 ||
      ((a->o.flags & BM_SCAN_HASH) && set_item(d, "xxh3", hex64(r.xxh3)) < 0) ||
      ((a->o.flags & BM_SCAN_LINES) && set_item(d, "lines", PyLong_FromUnsignedLongLong(r.lines)) < 0) ||
      (a->o.n_literals && set_item(d, "count", PyLong_FromUnsignedLongLong(r.counts[0])) < 0) ||
      set_item(d, "seconds", PyFloat_FromDouble(secs)) < 0 ||
      set_item(d, "bytes_per_second", rate(r.length, secs)) < 0 ||
      set_item(d, "window", PyLong_FromUnsignedLongLong(r.window)) < 0 ||
      set_item(d, "threads", PyLong_FromUnsignedLong(r.threads)) < 0 ||
      set_item(d, "peak_mapped_bytes", PyLong_FromUnsignedLongLong(r.peak_mapped)) < 0 ||
      (part && r.part != NULL && set_item(d, "part", part_bytes(r.part)) < 0))
    Py_CLEAR(d);
out:
  bm_scan_part_free(r.part);
  Py_BEGIN_ALLOW_THREADS
  bm_source_close(src);
  Py_END_ALLOW_THREADS
  return d;
}

static PyObject *scan_common(PyObject *args, PyObject *kw, int part) {
  static char *kwlist[] = {"path", "offset", "length", "hash", "lines", "count", "window",
                           "threads", NULL};
  PyObject *path_obj, *offset = NULL, *length = Py_None, *count = Py_None, *window = Py_None,
                      *threads = Py_None, *r = NULL;
  int hash = 1, lines = 1;
  scan_args_t a;

  memset(&a, 0, sizeof(a));
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOppOOO:scan", kwlist, &path_obj, &offset,
                                   &length, &hash, &lines, &count, &window, &threads))
    return NULL;
  if (!PyUnicode_FSConverter(path_obj, &a.path)) return NULL;
  if (PyBytes_GET_SIZE(a.path) == 0) {
    PyErr_SetString(PyExc_ValueError, "path is an empty string");
    goto out;
  }
  a.o.length = BM_TO_END;
  if (offset != NULL && offset != Py_None && to_u64(offset, "offset", &a.o.offset) < 0) goto out;
  if (length != Py_None && to_u64(length, "length", &a.o.length) < 0) goto out;
  if (length != Py_None && a.o.length == BM_TO_END) {
    PyErr_SetString(PyExc_ValueError, "length: below 2**64 - 1 (None: to the end)");
    goto out;
  }
  if (count != Py_None) {
    if (to_literal(count, &a.lit, &a.literal) < 0) goto out;
    a.o.literals = &a.literal;
    a.o.n_literals = 1;
  }
  if (window != Py_None) {
    if (to_size(window, "window", &a.o.window) < 0) goto out;
    if (a.o.window == 0) {
      PyErr_SetString(PyExc_ValueError, "window: at least 1 byte (None: the library's 64 MiB)");
      goto out;
    }
  }
  if (threads != Py_None) {
    uint64_t t;
    if (to_u64(threads, "threads", &t) < 0) goto out;
    if (t == 0 || t > UINT32_MAX) {
      PyErr_Format(PyExc_ValueError, "threads %llu: 1 to %d (None: the CPU count)",
                   (unsigned long long)t, BM_SCAN_MAX_THREADS);
      goto out;
    }
    a.o.threads = (unsigned)t;
  }
  /* As the tool: asked for nothing, it hashes and counts lines (the library's rule too;
   * set here so that the dict says what was done). */
  if (!hash && !lines && a.o.n_literals == 0) hash = lines = 1;
  a.o.flags = (hash ? BM_SCAN_HASH : 0) | (lines ? BM_SCAN_LINES : 0);
  /* A range of a larger scan (bulkmap.dask): its matches may run on past its end into the
   * next range, and it hands back its part to fold. */
  if (part && a.o.n_literals) {
    a.o.flags |= BM_SCAN_PART;
    a.o.match_end = BM_TO_END;
  }
  if (scan_check(&a) < 0) goto out;
  if (PyUnicode_Check(path_obj)) Py_INCREF(path_obj);
  else path_obj = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(a.path));
  if (path_obj == NULL) goto out;
  r = scan_run(&a, path_obj);
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

/* _fold(parts): parts (bytes from _scan_range's "part") of consecutive ranges of one file,
 * the first at the file's start, folded in order by the library (bm_scan_part_fold).
 * Returns one tuple a range: each literal's count of the matches that begin in that range,
 * given where the ranges before it left the search. */
static PyObject *py_fold(PyObject *self, PyObject *arg) {
  PyObject *seq, *out = NULL;
  bm_scan_part_t *acc = NULL;
  uint64_t before[BM_SCAN_MAX_LITERALS], after[BM_SCAN_MAX_LITERALS];
  Py_ssize_t i, n;
  unsigned k, nlit = 0;
  int err;

  if ((seq = PySequence_Fast(arg, "_fold: a sequence of parts (bytes)")) == NULL) return NULL;
  n = PySequence_Fast_GET_SIZE(seq);
  if ((out = PyList_New(n)) == NULL) goto fail;
  memset(before, 0, sizeof(before));
  for (i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i), *t;
    bm_scan_part_t *p = NULL;
    char *buf;
    Py_ssize_t len;
    uint64_t off;
    if (PyBytes_AsStringAndSize(item, &buf, &len) < 0) goto fail;
    if ((err = bm_scan_part_load(&p, buf, (size_t)len)) != 0) {
      if (err == BM_EINVAL)
        PyErr_Format(PyExc_ValueError, "_fold: part %zd is not a scan part (bm_scan_part_load)", i);
      else
        raise_bm("_fold", err, 0);
      goto fail;
    }
    bm_scan_part_range(p, &off, NULL, NULL);
    if (acc == NULL) {
      if (off != 0) err = BM_EINVAL;
      acc = p;
    } else {
      err = bm_scan_part_fold(acc, p);
      bm_scan_part_free(p);
    }
    if (err != 0) {
      PyErr_Format(PyExc_ValueError,
                   "_fold: part %zd does not follow the parts before it (a file's ranges, in "
                   "order from its start, with the same literal)", i);
      goto fail;
    }
    bm_scan_part_counts(acc, after, &nlit);
    if ((t = PyTuple_New(nlit)) == NULL) goto fail;
    PyList_SET_ITEM(out, i, t);
    for (k = 0; k < nlit; k++) {
      PyObject *c = PyLong_FromUnsignedLongLong(after[k] - before[k]);
      if (c == NULL) goto fail;
      PyTuple_SET_ITEM(t, k, c);
      before[k] = after[k];
    }
  }
  bm_scan_part_free(acc);
  Py_DECREF(seq);
  return out;
fail:
  bm_scan_part_free(acc);
  Py_XDECREF(out);
  Py_DECREF(seq);
  return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Dataset dicts (the tool's load/stat keys). */
static PyObject *large_dict(const bm_large_t *l) {
  static const char *modes[] = {"off", "auto", "on"};
  char why[1024];
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
 * remove_on_exit=True (DESIGN section 7), for every call that makes a dataset (load,
 * publish, create): binds the writer's dataset to this process with
 * bm_dataset_remove_on_exit (a watcher process removes the name when this process and the
 * children it forks have ended, by any path, SIGKILL included; a name replaced since is
 * left alone). Call it with the writer's handle after bm_dataset_create, or after the
 * publish (always after it with replace: only then is the name the dataset's). Returns 0,
 * or -1 with bulkmap.Error set: the caller then removes what it made. */
static int bind_to_process(bm_dataset_t *ds, const char *name) {
  int err, os;
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_remove_on_exit(ds);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err == 0) return 0;
  if (err == BM_EREPLACED)
    raise_msg(name, err, os, "remove_on_exit: the name refers to another section now (left alone)");
  else
    raise_msg(name, err, os, "remove_on_exit: cannot bind the dataset to this process (the "
                             "dataset was removed)");
  return -1;
}

/* ---------------------------------------------------------------------------------------
 * load: bm_dataset_load. */

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

static PyObject *load_error(const char *path, const char *name, const char *group, int err,
                            int os, const bm_load_result_t *res) {
  char why[1024], msg[1200];
  if (load_about_file(path, err)) {
    if (err == BM_ECHANGED) return raise_msg(path, err, os, "file changed as we read it: nothing published");
    if (err == BM_ETRUNCATED) return raise_msg(path, err, os, "the file shrank while it was loaded");
    return raise_bm(path, err, os);
  }
  switch (err) {
  case BM_ENAME:
    return raise_msg(name, err, 0, name_rule);
  case BM_EEXIST:
    return raise_msg(name, err, os, "a section of that name exists already (bulkmap.rm(name) "
                                    "removes it; replace=True replaces it)");
  case BM_ENOLARGE:
    snprintf(msg, sizeof(msg), "large pages required but not had: %s",
             bm_large_describe(&res->large, why, sizeof(why)));
    return raise_msg(name, err, os, msg);
  case BM_ENOSPC:
    return raise_msg(name, err, os, "no memory left for the section's pages (shared memory full?)");
  case BM_ENOENT:
    if (group != NULL) {
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

static PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "name", "large_pages", "mode", "group", "threads",
                           "replace", "remove_on_exit", NULL};
  PyObject *path_obj, *pathb = NULL, *mode_obj = NULL, *group_obj = Py_None, *threads = Py_None,
                      *r = NULL;
  const char *name, *large = "auto", *path, *group = NULL;
  bm_dataset_t *ds = NULL;
  bm_load_opts_t lo;
  bm_load_result_t res;
  poll_t poll;
  uint64_t mode = 0600;
  int err, os, late, replace = 0, remove_on_exit = 0;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|sOOOpp:load", kwlist, &path_obj, &name, &large,
                                   &mode_obj, &group_obj, &threads, &replace, &remove_on_exit))
    return NULL;
  memset(&lo, 0, sizeof(lo));
  memset(&res, 0, sizeof(res));
  if (strcmp(large, "auto") == 0) lo.dataset.large = BM_LARGE_AUTO;
  else if (strcmp(large, "on") == 0) lo.dataset.large = BM_LARGE_ON;
  else if (strcmp(large, "off") == 0) lo.dataset.large = BM_LARGE_OFF;
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
  if (to_threads(threads, &lo.threads) < 0) return NULL;
  if ((err = bm_name_check(name)) != 0) return raise_msg(name, err, 0, name_rule);
  if (!PyUnicode_FSConverter(path_obj, &pathb)) return NULL;
  path = PyBytes_AS_STRING(pathb);
  if (path[0] == '\0') {
    PyErr_SetString(PyExc_ValueError, "path is an empty string");
    goto done;
  }
  lo.dataset.mode = (unsigned)mode;
  lo.dataset.group = group;
  lo.dataset.replace = replace;
  lo.progress = poll_signals;
  lo.progress_arg = &poll;
  lo.cancel = &poll.cancel;

  /* name, group and path point into objects the arguments hold until we return. */
  poll_begin(&poll);
  err = bm_dataset_load(&ds, name, path, &lo, &res);
  os = err == 0 ? 0 : res.os_error ? res.os_error : bm_last_os_error();
  poll_end(&poll);
  /* A signal that came after the library's last look (while it published) is acted on
   * here: an interrupted load leaves nothing, so the new dataset goes again. Not after a
   * replace: the old generation is gone already, and the name must not be left empty. */
  late = err == 0 && PyErr_CheckSignals() != 0;
  if (ds != NULL && !replace && (late || PyErr_Occurred())) {
    Py_BEGIN_ALLOW_THREADS
    bm_dataset_remove(ds);
    Py_END_ALLOW_THREADS
  }
  if (PyErr_Occurred()) goto done;
  if (err != 0) {
    if (replace && err == BM_EPERM && group == NULL && res.failed_at != BM_LOAD_AT_FILE)
      raise_msg(name, err, os, "replace: only the dataset's owner (or root) may replace it; "
                               "the old one is left as it was");
    else
      load_error(path, name, group, err, err == BM_ECANCELED ? 0 : os, &res);
    goto done;
  }
  /* The bytes are published under the name; a binding that fails takes them away again. */
  if (remove_on_exit && bind_to_process(ds, name) < 0) {
    Py_BEGIN_ALLOW_THREADS
    bm_dataset_remove(ds);
    Py_END_ALLOW_THREADS
    goto done;
  }
  r = info_dict(&res.info, 0, res.seconds);
  if (r == NULL) {
    Py_BEGIN_ALLOW_THREADS
    bm_dataset_remove(ds);
    Py_END_ALLOW_THREADS
  }

done:
  Py_BEGIN_ALLOW_THREADS
  bm_dataset_close(ds);
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
        set_item(d, "maps", v[i].maps >= 0 ? PyLong_FromLongLong(v[i].maps) : Py_NewRef(Py_None)) < 0 ||
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

/* rm(abandoned=True): bm_dataset_reclaim, as `rm --abandoned --json` prints it:
 * {"removed": [{name place bytes state writer_pid}], "freed_bytes": N}. */
static PyObject *rm_abandoned(void) {
  bm_reclaimed_t *v = NULL;
  size_t n = 0, i;
  uint64_t freed = 0;
  PyObject *list = NULL, *d = NULL, *out = NULL;
  int err, os;
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_reclaim(&v, &n, &freed);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err == BM_ENOTSUP) {
    bm_reclaimed_free(v);
    return raise_msg("rm", err, 0, "abandoned: nothing to reclaim here (a section lives until "
                                   "its last handle closes)");
  }
  /* What was removed before a failure is gone: it is not reported, the failure is. */
  if (err != 0) {
    bm_reclaimed_free(v);
    return raise_bm("rm", err, os);
  }
  if ((list = PyList_New(0)) == NULL) goto fail;
  for (i = 0; i < n; i++) {
    if ((d = PyDict_New()) == NULL) goto fail;
    if (set_item(d, "name", text(v[i].name)) < 0 || set_item(d, "place", text(v[i].place)) < 0 ||
        set_item(d, "bytes", PyLong_FromUnsignedLongLong(v[i].bytes)) < 0 ||
        set_item(d, "state", PyUnicode_FromString(bm_state_name(v[i].state))) < 0 ||
        set_item(d, "writer_pid", v[i].writer_pid > 0 ? PyLong_FromLongLong(v[i].writer_pid)
                                                      : Py_NewRef(Py_None)) < 0 ||
        PyList_Append(list, d) < 0)
      goto fail;
    Py_CLEAR(d);
  }
  if ((out = PyDict_New()) == NULL) goto fail;
  err = set_item(out, "removed", list); /* takes list */
  list = NULL;
  if (err < 0 || set_item(out, "freed_bytes", PyLong_FromUnsignedLongLong(freed)) < 0) goto fail;
  bm_reclaimed_free(v);
  return out;
fail:
  Py_XDECREF(d);
  Py_XDECREF(list);
  Py_XDECREF(out);
  bm_reclaimed_free(v);
  return NULL;
}

static PyObject *py_rm(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "force", "abandoned", NULL};
  const char *name = NULL;
  int force = 0, abandoned = 0, err, os;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|zpp:rm", kwlist, &name, &force, &abandoned))
    return NULL;
  if (abandoned) {
    if (name != NULL || force) {
      PyErr_SetString(PyExc_TypeError, "rm(abandoned=True) takes no name and no force");
      return NULL;
    }
    return rm_abandoned();
  }
  if (name == NULL) {
    PyErr_SetString(PyExc_TypeError, "rm() needs a name (or abandoned=True)");
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  err = force ? bm_section_remove_force(name) : bm_section_remove(name);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err == BM_EBUSY)
    return raise_msg(name, err, os, "its writer is still loading it (force=True removes it anyway)");
  if (err == BM_ENAME) return raise_msg(name, err, 0, name_rule);
  if (err != 0) return raise_bm(name, err, os);
  Py_RETURN_NONE;
}

static PyObject *py_parse_size(PyObject *self, PyObject *arg) {
  uint64_t v;
  if (to_size(arg, "size", &v) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(v);
}

/* ---------------------------------------------------------------------------------------
 * Dataset: a checked, read-only view of a ready dataset's payload.
 *
 * Lifetime: a call that works on the dataset without the GIL (verify, info) counts itself
 * in `busy` and holds a reference to the object, so the handle and the mapping it uses
 * stay until it returns. close() (and leaving a `with` block) from another thread
 * meanwhile waits for it: new calls and exports are refused at once ("closed"), the calls
 * in progress finish on the live mapping, then the handle is freed. `lock` keeps the
 * library's calls on the one handle apart (a reader's bm_dataset_info rereads the trailer
 * into the handle) and is what close waits on. */
typedef struct {
  PyObject_HEAD
  bm_dataset_t *ds;
  bm_view_t view;
  Py_ssize_t exports;
  Py_ssize_t busy;
  int closing;
  PyThread_type_lock lock;
  PyObject *name;
} dataset_obj;

static PyTypeObject dataset_type;

static int dataset_live(dataset_obj *self) {
  if (self->ds == NULL || self->closing) {
    PyErr_SetString(PyExc_ValueError, "the dataset is closed");
    return 0;
  }
  return 1;
}

/* Starts a call that releases the GIL (0), or refuses it on a closed dataset (-1). */
static int dataset_enter_call(dataset_obj *self) {
  if (!dataset_live(self)) return -1;
  self->busy++;
  Py_INCREF(self);
  return 0;
}

static void dataset_leave_call(dataset_obj *self) {
  self->busy--;
  Py_DECREF(self);
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
  /* Every export and every call in progress holds a reference, so none is alive here. */
  if (self->ds != NULL) dataset_release(self);
  if (self->lock != NULL) PyThread_free_lock(self->lock);
  Py_XDECREF(self->name);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int dataset_getbuffer(dataset_obj *self, Py_buffer *view, int flags) {
  if (self->ds == NULL || self->closing) {
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
  if (self->ds == NULL) Py_RETURN_NONE;
  /* Calls in progress in other threads end first; none can start now. */
  self->closing = 1;
  while (self->busy > 0) {
    Py_BEGIN_ALLOW_THREADS
    struct timespec pause = {0, 100000};
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    PyThread_release_lock(self->lock);
    nanosleep(&pause, NULL); /* let the call take the GIL back and leave */
    Py_END_ALLOW_THREADS
  }
  self->closing = 0;
  if (self->ds != NULL) dataset_release(self); /* another close may have come first */
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
  if (dataset_enter_call(self) < 0) return NULL;
  memset(&info, 0, sizeof(info));
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_verify(self->ds);
  os = err ? bm_last_os_error() : 0;
  if (err != 0) bm_dataset_info(self->ds, &info);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) return raise_open(PyUnicode_AsUTF8(self->name), err, os, &info);
  Py_RETURN_NONE;
}

static PyObject *dataset_get_info(dataset_obj *self, void *closure) {
  bm_dataset_info_t info;
  int err;
  if (dataset_enter_call(self) < 0) return NULL;
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_info(self->ds, &info);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) return raise_bm(PyUnicode_AsUTF8(self->name), err, 0);
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
   "Unmaps the payload. BufferError while a memoryview or array still uses it; waits for "
   "another thread's verify() on it to end."},
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
  .tp_doc = "A ready dataset, checked and mapped read-only (bulkmap.open). Exports the "
            "buffer protocol: memoryview(ds) and numpy.frombuffer(ds, dtype) are views of "
            "the section, not copies.",
  .tp_methods = dataset_methods,
  .tp_getset = dataset_getset,
};

/* ---------------------------------------------------------------------------------------
 * open(wait=SECONDS): bm_dataset_wait_open without the GIL, in slices of at most
 * WAIT_SLICE seconds with Python's signal handlers run between them: the library's wait
 * has no cancel flag, so a Ctrl-C is acted on within a slice. Each slice starts watching
 * (inotify) before it first looks, so what happens between two slices is not missed. */
#define WAIT_SLICE 0.2

/* wait=: seconds, an int or a float, 0 or more (math.inf: no deadline). */
static int wait_seconds(PyObject *o, double *out) {
  double s;
  if (!PyLong_Check(o) && !PyFloat_Check(o)) {
    PyErr_Format(PyExc_TypeError, "wait must be seconds (int or float) or None, not %.80s",
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  s = PyFloat_AsDouble(o);
  if (s == -1.0 && PyErr_Occurred()) return -1;
  if (!(s >= 0)) {
    PyErr_SetString(PyExc_ValueError, "wait: seconds, 0 or more (None: do not wait)");
    return -1;
  }
  *out = s;
  return 0;
}

/* Opens NAME once it is ready, waiting up to `seconds` while it does not exist or is
 * loading under a live writer. 0 with *out set; -1 with an exception: bulkmap.Error
 * (ETIMEDOUT at the deadline, "timed out" in the message; EINCOMPLETE for a failed load
 * and EABANDONED for a dead writer, at once; as open for the rest), or what a signal
 * handler raised (KeyboardInterrupt). */
static int open_waiting(bm_dataset_t **out, const char *name, unsigned flags, double seconds,
                        bm_dataset_info_t *info) {
  double end = now() + seconds, left;
  char msg[200];
  int err, os;
  for (;;) {
    left = end - now();
    if (left < 0) left = 0;
    Py_BEGIN_ALLOW_THREADS
    err = bm_dataset_wait_open(out, name, flags, left < WAIT_SLICE ? left : WAIT_SLICE, info);
    os = err ? bm_last_os_error() : 0;
    Py_END_ALLOW_THREADS
    if (err != BM_ETIMEDOUT) break;
    if (PyErr_CheckSignals() != 0) return -1;
    if (end - now() <= 0) break;
  }
  if (err == 0) return 0;
  *out = NULL;
  if (err != BM_ETIMEDOUT) {
    raise_open(name, err, os, info);
    return -1;
  }
  if (info->state == BM_STATE_LOADING)
    snprintf(msg, sizeof(msg), "timed out after %g s waiting for it to be ready: still loading "
             "(writer pid %lld)", seconds, (long long)info->writer_pid);
  else
    snprintf(msg, sizeof(msg), "timed out after %g s waiting for it to be ready: it does not "
             "exist", seconds);
  raise_msg(name, err, 0, msg);
  return -1;
}

static PyObject *py_open(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "verify", "wait", NULL};
  const char *name;
  int verify = 1, err, os;
  PyObject *wait_obj = Py_None;
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  bm_view_t view;
  dataset_obj *obj;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pO:open", kwlist, &name, &verify, &wait_obj))
    return NULL;
  memset(&info, 0, sizeof(info));
  memset(&view, 0, sizeof(view));
  if (wait_obj != Py_None) {
    double seconds;
    if (wait_seconds(wait_obj, &seconds) < 0 ||
        open_waiting(&ds, name, verify ? BM_OPEN_VERIFY : 0, seconds, &info) < 0)
      return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  err = ds != NULL ? 0 : bm_dataset_open(&ds, name, verify ? BM_OPEN_VERIFY : 0, &info);
  os = err ? bm_last_os_error() : 0;
  if (err == 0 && (err = bm_dataset_view(ds, &view)) != 0) {
    os = bm_last_os_error();
    bm_dataset_close(ds);
  }
  Py_END_ALLOW_THREADS
  if (err != 0) return raise_open(name, err, os, &info);
  obj = PyObject_New(dataset_obj, &dataset_type);
  if (obj != NULL) {
    obj->ds = NULL;
    obj->exports = obj->busy = 0;
    obj->closing = 0;
    memset(&obj->view, 0, sizeof(obj->view));
    obj->lock = PyThread_allocate_lock();
    obj->name = PyUnicode_FromString(name);
  }
  if (obj == NULL || obj->name == NULL || obj->lock == NULL) {
    if (obj != NULL && obj->lock == NULL && !PyErr_Occurred()) PyErr_NoMemory();
    Py_XDECREF(obj);
    bm_view_unmap(&view);
    bm_dataset_close(ds);
    return NULL;
  }
  obj->ds = ds;
  obj->view = view;
  return (PyObject *)obj;
}

/* ---------------------------------------------------------------------------------------
 * The module. */
static PyMethodDef methods[] = {
  {"scan", (PyCFunction)(void (*)(void))py_scan, METH_VARARGS | METH_KEYWORDS,
   "scan(path, offset=0, length=None, hash=True, lines=True, count=None, window=None, "
   "threads=None) -> dict"},
  {"_scan_range", (PyCFunction)(void (*)(void))py_scan_range, METH_VARARGS | METH_KEYWORDS,
   "A range of a larger scan: as scan, plus (with count) 'part', the range's part as bytes "
   "for _fold; its literal matches may run on past the range's end (for bulkmap.dask)."},
  {"_fold", py_fold, METH_O,
   "_fold([part, ...]) -> [(count, ...), ...]: a file's consecutive ranges' parts folded in "
   "order by the library; each range's count of the matches that begin in it."},
  {"load", (PyCFunction)(void (*)(void))py_load, METH_VARARGS | METH_KEYWORDS,
   "load(path, name, large_pages='auto', mode=0o600, group=None, threads=None, replace=False, "
   "remove_on_exit=False) -> dict"},
  {"open", (PyCFunction)(void (*)(void))py_open, METH_VARARGS | METH_KEYWORDS,
   "open(name, verify=True, wait=None) -> Dataset (wait=SECONDS: until it is ready)"},
  {"stat", py_stat, METH_VARARGS, "stat(name) -> dict"},
  {"ls", (PyCFunction)(void (*)(void))py_ls, METH_VARARGS | METH_KEYWORDS,
   "ls(all=False) -> {'sections': [...]}"},
  {"rm", (PyCFunction)(void (*)(void))py_rm, METH_VARARGS | METH_KEYWORDS,
   "rm(name, force=False) -> None; rm(abandoned=True) -> {'removed': [...], 'freed_bytes': N}"},
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
      PyModule_AddStringConstant(m, "library_version", bm_version()) < 0 ||
      PyModule_AddIntConstant(m, "SCAN_MAX_THREADS", BM_SCAN_MAX_THREADS) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
