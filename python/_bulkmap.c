/* bulkmap._bulkmap: the CPython binding of libbulkmap (docs/design.md section 5), a binding only:
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

/* ---------------------------------------------------------------------------------------
 * Typed payloads (docs/design.md section 6): format, layout and tensors as the tool's --json shows
 * them, from the library's judgement (bm_dataset_info_t, bm_dataset_tensors); nothing is
 * parsed here. */

/* The layout object: {dtype shape order data_offset data_length descr}. */
static PyObject *layout_obj(const bm_layout_t *l) {
  char descr[8];
  PyObject *d = PyDict_New(), *shape = NULL;
  uint32_t i;
  if (d == NULL) return NULL;
  if ((shape = PyList_New((Py_ssize_t)l->ndim)) == NULL) goto fail;
  for (i = 0; i < l->ndim; i++) {
    PyObject *v = PyLong_FromUnsignedLongLong(l->shape[i]);
    if (v == NULL) goto fail;
    PyList_SET_ITEM(shape, i, v);
  }
  bm_dtype_descr(l, descr, sizeof(descr));
  if (set_item(d, "dtype", PyUnicode_FromString(bm_dtype_name(l->dtype))) < 0) goto fail;
  if (set_item(d, "shape", shape) < 0) {
    shape = NULL;
    goto fail;
  }
  shape = NULL;
  if (set_item(d, "order", PyUnicode_FromString(l->order == 'F' ? "F" : "C")) < 0 ||
      set_item(d, "data_offset", PyLong_FromUnsignedLongLong(l->data_offset)) < 0 ||
      set_item(d, "data_length", PyLong_FromUnsignedLongLong(l->data_length)) < 0 ||
      set_item(d, "descr", PyUnicode_FromString(descr)) < 0)
    goto fail;
  return d;
fail:
  Py_XDECREF(shape);
  Py_DECREF(d);
  return NULL;
}

/* d["format"] ("raw" "npy" "safetensors"; None for what is not a readable dataset) and
 * d["layout"] (None when the payload is not one array). */
static int set_format_items(PyObject *d, int state, int format, int has_layout,
                            const bm_layout_t *l) {
  int known = state != BM_STATE_CORRUPT && state != BM_STATE_FOREIGN &&
              state != BM_STATE_UNREADABLE;
  if (set_item(d, "format", known ? PyUnicode_FromString(bm_format_name(format != 0 ? format
                                                                                : BM_FORMAT_RAW))
                                  : Py_NewRef(Py_None)) < 0)
    return -1;
  return set_item(d, "layout", has_layout ? layout_obj(l) : Py_NewRef(Py_None));
}

/* [{name dtype shape offset length}], in payload order. */
static PyObject *tensors_list(const bm_tensor_t *t, size_t n) {
  PyObject *list = PyList_New(0), *d = NULL, *shape = NULL;
  size_t i;
  uint32_t k;
  if (list == NULL) return NULL;
  for (i = 0; i < n; i++) {
    if ((d = PyDict_New()) == NULL || (shape = PyList_New((Py_ssize_t)t[i].layout.ndim)) == NULL)
      goto fail;
    for (k = 0; k < t[i].layout.ndim; k++) {
      PyObject *v = PyLong_FromUnsignedLongLong(t[i].layout.shape[k]);
      if (v == NULL) goto fail;
      PyList_SET_ITEM(shape, k, v);
    }
    if (set_item(d, "name", text(t[i].name)) < 0 ||
        set_item(d, "dtype", PyUnicode_FromString(bm_dtype_name(t[i].layout.dtype))) < 0)
      goto fail;
    if (set_item(d, "shape", shape) < 0) {
      shape = NULL;
      goto fail;
    }
    shape = NULL;
    if (set_item(d, "offset", PyLong_FromUnsignedLongLong(t[i].layout.data_offset)) < 0 ||
        set_item(d, "length", PyLong_FromUnsignedLongLong(t[i].layout.data_length)) < 0 ||
        PyList_Append(list, d) < 0)
      goto fail;
    Py_CLEAR(d);
  }
  return list;
fail:
  Py_XDECREF(shape);
  Py_XDECREF(d);
  Py_DECREF(list);
  return NULL;
}

/* d["tensors"] for a ready safetensors dataset (as `stat --json`): read from the header in
 * the payload and checked again against the trailer by the library. The caller holds the
 * GIL and whatever keeps ds alive; the library call runs without the GIL. */
static int set_tensors_item(PyObject *d, bm_dataset_t *ds, const bm_dataset_info_t *info,
                            const char *name) {
  bm_tensor_t *t = NULL;
  size_t n = 0;
  int err;
  PyObject *list;
  if (info->format != BM_FORMAT_SAFETENSORS || info->state != BM_STATE_READY) return 0;
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_tensors(ds, &t, &n);
  Py_END_ALLOW_THREADS
  if (err != 0) {
    raise_msg(name, err, 0, "the safetensors header no longer agrees with the trailer");
    return -1;
  }
  list = tensors_list(t, n);
  bm_tensors_free(t);
  return set_item(d, "tensors", list);
}

/* name bytes xxh3 state page_size large_pages format layout, then writer_pid created (and
 * with full: source path section_bytes, as stat shows). */
static PyObject *info_dict(const bm_dataset_info_t *info, int full, double secs) {
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  if (set_item(d, "name", text(info->name)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(info->bytes)) < 0 ||
      set_item(d, "xxh3", info->has_xxh3 ? hex64(info->xxh3) : Py_NewRef(Py_None)) < 0 ||
      set_item(d, "state", PyUnicode_FromString(bm_state_name(info->state))) < 0 ||
      set_item(d, "page_size", PyLong_FromUnsignedLongLong(info->page_size)) < 0 ||
      set_item(d, "large_pages", large_dict(&info->large)) < 0 ||
      set_format_items(d, info->state, info->format, info->has_layout, &info->layout) < 0 ||
      (secs >= 0 && set_item(d, "seconds", PyFloat_FromDouble(secs)) < 0) ||
      (secs >= 0 && set_item(d, "bytes_per_second",
                             PyLong_FromDouble(secs > 0 ? (double)(uint64_t)((double)info->bytes / secs) : 0)) < 0) ||
      set_item(d, "writer_pid", PyLong_FromLongLong(info->writer_pid)) < 0 ||
      set_item(d, "created", PyLong_FromLongLong(info->created)) < 0 ||
      (full && (set_item(d, "source", text(info->source)) < 0 ||
                set_item(d, "path", text(info->path)) < 0 ||
                set_item(d, "section_bytes", PyLong_FromUnsignedLongLong(info->section_bytes)) < 0 ||
                (info->padded_bytes != 0 &&
                 set_item(d, "padded_bytes", PyLong_FromUnsignedLongLong(info->padded_bytes)) < 0) ||
                set_item(d, "source_stable", info->source_stable < 0 ? Py_NewRef(Py_None)
                                                                     : PyBool_FromLong(info->source_stable)) < 0))) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

/* ---------------------------------------------------------------------------------------
 * remove_on_exit=True (docs/design.md section 7), for every call that makes a dataset (load,
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

/* bind_to_process for a dataset published already: when the binding fails, the name is
 * taken away again (nothing is left that the caller asked to be bound and is not). */
static int bind_or_remove(bm_dataset_t *ds, const char *name) {
  if (bind_to_process(ds, name) == 0) return 0;
  Py_BEGIN_ALLOW_THREADS
  bm_dataset_remove(ds);
  Py_END_ALLOW_THREADS
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

/* Why the load failed, in the tool's words (tools/bulkmap/cmd_load.c load_error), with
 * the library's figures: the room from bm_preflight_describe (a full /dev/shm or memory
 * cgroup), the large-page reason from bm_large_describe, the header's fault from the
 * library's `why`; only the remedies are spelt for Python (format="raw", replace=True,
 * bulkmap.rm(name)) where the tool names its options. */
static PyObject *load_error(const char *path, const char *name, const char *group, int err,
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
    return raise_msg(name, err, 0, name_rule);
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

/* place=: where the section goes. The directory of named shared memory (/dev/shm) means
 * normal pages; any other directory is passed to the library as the hugetlbfs mount to
 * make the section on (bm_dataset_opts_t.mount), and a directory that is no hugetlbfs
 * mount is refused by the library with its reason ("no hugetlbfs mount"). 1: place is
 * /dev/shm, 0: a mount, -1 with an exception. */
static int load_place_is_shm(const char *place) {
  PyObject *os_mod, *r;
  int same;
  if ((os_mod = PyImport_ImportModule("os.path")) == NULL) return -1;
  r = PyObject_CallMethod(os_mod, "exists", "s", place);
  Py_DECREF(os_mod);
  if (r == NULL) return -1;
  same = PyObject_IsTrue(r);
  Py_DECREF(r);
  if (same < 0) return -1;
  if (!same) {
    PyErr_Format(PyExc_FileNotFoundError, "place '%s': no such directory", place);
    return -1;
  }
  if ((os_mod = PyImport_ImportModule("os.path")) == NULL) return -1;
  r = PyObject_CallMethod(os_mod, "samefile", "ss", place, "/dev/shm");
  Py_DECREF(os_mod);
  if (r == NULL) {
    /* No /dev/shm here: place can only be a mount. */
    PyErr_Clear();
    return 0;
  }
  same = PyObject_IsTrue(r);
  Py_DECREF(r);
  return same;
}

static PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "name", "large_pages", "mode", "group", "threads",
                           "replace", "remove_on_exit", "format", "place", NULL};
  PyObject *path_obj, *pathb = NULL, *mode_obj = NULL, *group_obj = Py_None, *threads = Py_None,
                      *place_obj = Py_None, *placeb = NULL, *r = NULL;
  const char *name, *large = NULL, *path, *group = NULL, *format_name = NULL;
  bm_dataset_t *ds = NULL;
  bm_load_opts_t lo;
  bm_load_result_t res;
  bm_preflight_t room;
  poll_t poll;
  uint64_t mode = 0; /* 0: 0600 for a new dataset, the old one's for a replace */
  int err, os, late, replace = 0, remove_on_exit = 0, format = BM_FORMAT_AUTO, shm = -1;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|zOOOppzO:load", kwlist, &path_obj, &name, &large,
                                   &mode_obj, &group_obj, &threads, &replace, &remove_on_exit,
                                   &format_name, &place_obj))
    return NULL;
  memset(&lo, 0, sizeof(lo));
  memset(&res, 0, sizeof(res));
  memset(&room, 0, sizeof(room));
  /* format=: as the tool's --format (bm_format_from_name). */
  if (format_name != NULL && bm_format_from_name(format_name, &format) != 0) {
    PyErr_Format(PyExc_ValueError, "format '%s': expected \"auto\", \"raw\", \"npy\" or "
                 "\"safetensors\"", format_name);
    return NULL;
  }
  /* place=: /dev/shm (normal pages) or a hugetlbfs mount (large pages there: "on" unless
   * large_pages says otherwise). */
  if (place_obj != Py_None) {
    if (!PyUnicode_FSConverter(place_obj, &placeb)) return NULL;
    if ((shm = load_place_is_shm(PyBytes_AS_STRING(placeb))) < 0) goto done;
    if (large == NULL) large = shm ? "off" : "on";
    else if (shm && strcmp(large, "off") != 0) {
      PyErr_Format(PyExc_ValueError, "place '%s' is named shared memory (normal pages): "
                   "large_pages='%s' asks for large pages, which live on a hugetlbfs mount",
                   PyBytes_AS_STRING(placeb), large);
      goto done;
    }
    if (!shm) lo.dataset.mount = PyBytes_AS_STRING(placeb);
  }
  if (large == NULL || strcmp(large, "auto") == 0) lo.dataset.large = BM_LARGE_AUTO;
  else if (strcmp(large, "on") == 0) lo.dataset.large = BM_LARGE_ON;
  else if (strcmp(large, "off") == 0) lo.dataset.large = BM_LARGE_OFF;
  else {
    PyErr_Format(PyExc_ValueError, "large_pages '%s': expected \"auto\", \"on\" or \"off\"", large);
    goto done;
  }
  if (mode_obj != NULL && to_u64(mode_obj, "mode", &mode) < 0) goto done;
  if (mode > 0777) {
    PyErr_SetString(PyExc_ValueError, "mode: permission bits 0 to 0o777");
    goto done;
  }
  if (group_obj != Py_None && (group = PyUnicode_AsUTF8(group_obj)) == NULL) goto done;
  if (to_threads(threads, &lo.threads) < 0) goto done;
  if ((err = bm_name_check(name)) != 0) {
    raise_msg(name, err, 0, name_rule);
    goto done;
  }
  if (!PyUnicode_FSConverter(path_obj, &pathb)) goto done;
  path = PyBytes_AS_STRING(pathb);
  if (path[0] == '\0') {
    PyErr_SetString(PyExc_ValueError, "path is an empty string");
    goto done;
  }
  lo.dataset.mode = (unsigned)mode;
  lo.dataset.group = group;
  lo.dataset.replace = replace;
  lo.dataset.preflight = &room;
  lo.format = format;
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
      load_error(path, name, group, err, err == BM_ECANCELED ? 0 : os, &res, &room);
    goto done;
  }
  /* The bytes are published under the name; a binding that fails takes them away again. */
  if (remove_on_exit && bind_or_remove(ds, name) < 0) goto done;
  r = info_dict(&res.info, 0, res.seconds);
  /* One copy in RAM: what is left of the file in the page cache (None: cannot be seen). */
  if (r != NULL && set_item(r, "source_cached_bytes",
                            res.has_source_cached ? PyLong_FromUnsignedLongLong(res.source_cached_bytes)
                                                  : Py_NewRef(Py_None)) < 0)
    Py_CLEAR(r);
  /* Whether anyone could have written the file unseen during the load, and why not. */
  if (r != NULL && (set_item(r, "source_stable", PyBool_FromLong(res.source_stable)) < 0 ||
                    set_item(r, "source_unstable_why",
                             res.source_stable ? Py_NewRef(Py_None)
                                               : PyUnicode_FromString(res.unstable_why)) < 0))
    Py_CLEAR(r);
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
  Py_XDECREF(placeb);
  return r;
}

/* ---------------------------------------------------------------------------------------
 * stat, ls, rm. */
static PyObject *py_stat(PyObject *self, PyObject *args) {
  const char *name;
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  int err, os;
  PyObject *d;
  if (!PyArg_ParseTuple(args, "s:stat", &name)) return NULL;
  memset(&info, 0, sizeof(info));
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_open(&ds, name, BM_OPEN_ANY_STATE, &info);
  os = err ? bm_last_os_error() : 0;
  Py_END_ALLOW_THREADS
  if (err != 0) return raise_open(name, err, os, &info);
  if (info.state == BM_STATE_CORRUPT) {
    bm_dataset_close(ds);
    return raise_msg(name, BM_ECORRUPT, 0, "the dataset's trailer is corrupt");
  }
  d = info_dict(&info, 1, -1);
  /* safetensors: tensors[], as stat --json (docs/design.md section 6). */
  if (d != NULL && set_tensors_item(d, ds, &info, name) < 0) Py_CLEAR(d);
  Py_BEGIN_ALLOW_THREADS
  bm_dataset_close(ds);
  Py_END_ALLOW_THREADS
  return d;
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
        (v[i].state != BM_STATE_FOREIGN && v[i].state != BM_STATE_UNREADABLE &&
         set_item(d, "retired_bytes", PyLong_FromUnsignedLongLong(v[i].retired_bytes)) < 0) ||
        set_format_items(d, v[i].state, v[i].format, v[i].has_layout, &v[i].layout) < 0 ||
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
  /* docs/design.md section 6. The options it was opened with (what a pickle carries), whether its
   * view is writable (a private copy-on-write view, or a writer's view before publish),
   * and what the payload is (format and layout, from the trailer or the writer's header). */
  int verify, copy_on_write;
  int writer;    /* 1: made by create() and not published yet: the view is shared-writable;
                    2: such a one removed unpublished (a with block left by an exception) */
  int bind_at_publish; /* create(replace=True, remove_on_exit=True): bind once published */
  int format, has_layout;
  bm_layout_t layout;
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
                        !(self->copy_on_write || self->writer), flags) < 0)
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

/* Fails and removes a writer's unpublished dataset (bm_dataset_fail: the name goes if it
 * is still this dataset's); its view stays mapped while arrays use it, refusing new ones. */
static void dataset_fail_writer(dataset_obj *self) {
  bm_dataset_t *ds = self->ds;
  self->writer = 2;
  self->closing = 1; /* as close: calls in progress end first, none start */
  /* ...and this one is in progress itself: a close() in another thread waits for it. */
  self->busy++;
  Py_INCREF(self);
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  bm_dataset_fail(ds);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  self->closing = 0;
  self->busy--;
  Py_DECREF(self);
}

/* Leaving a with block. A dataset from create() that was not published is failed and
 * removed (docs/design.md section 6: nothing is left `ready`); left by an exception, that exception
 * is what the caller sees, even while arrays (the frame's locals) still use the view:
 * the view then goes with the last of them. */
static PyObject *dataset_exit(dataset_obj *self, PyObject *args) {
  PyObject *type = Py_None, *value = NULL, *tb = NULL;
  if (!PyArg_ParseTuple(args, "|OOO:__exit__", &type, &value, &tb)) return NULL;
  if (self->ds != NULL && self->writer == 1) dataset_fail_writer(self);
  if (type != Py_None && self->writer == 2 && self->exports > 0) Py_RETURN_NONE;
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

/* ds.handoff(): the next fork's child becomes the writer (bm_dataset_handoff). */
static PyObject *dataset_handoff(dataset_obj *self, PyObject *unused) {
  int err;
  if (dataset_enter_call(self) < 0) return NULL;
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_handoff(self->ds);
  PyThread_release_lock(self->lock);
  dataset_leave_call(self);
  if (err != 0)
    return raise_msg(PyUnicode_AsUTF8(self->name), err, 0,
                     err == BM_EINVAL ? "handoff() is for a dataset from create() not yet published"
                                      : bm_strerror(err));
  Py_RETURN_NONE;
}

/* bm_dataset_tensors on the dataset, as verify runs (busy, the lock, no GIL). */
static int dataset_tensors(dataset_obj *self, bm_tensor_t **t, size_t *n) {
  int err;
  if (dataset_enter_call(self) < 0) return -1;
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_tensors(self->ds, t, n);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) {
    raise_msg(PyUnicode_AsUTF8(self->name), err, 0,
              "the safetensors header no longer agrees with the trailer");
    return -1;
  }
  return 0;
}

static PyObject *dataset_get_info(dataset_obj *self, void *closure) {
  bm_dataset_info_t info;
  bm_tensor_t *t = NULL;
  size_t n = 0;
  PyObject *d;
  int err;
  if (dataset_enter_call(self) < 0) return NULL;
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_info(self->ds, &info);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) return raise_bm(PyUnicode_AsUTF8(self->name), err, 0);
  d = info_dict(&info, 1, -1);
  /* safetensors: tensors[], as stat() (docs/design.md section 6). */
  if (d != NULL && info.format == BM_FORMAT_SAFETENSORS && info.state == BM_STATE_READY) {
    if (dataset_tensors(self, &t, &n) < 0 || set_item(d, "tensors", tensors_list(t, n)) < 0)
      Py_CLEAR(d);
    bm_tensors_free(t);
  }
  return d;
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

/* ---------------------------------------------------------------------------------------
 * Arrays (docs/design.md section 6): numpy views of the payload, made by numpy from the library's
 * layouts. numpy.frombuffer(ds) holds an export of the Dataset for as long as the array
 * (and every view of it) lives, so the mapping stays and close() refuses (BufferError);
 * the view is read-only unless the Dataset's view is writable (copy_on_write, or create()
 * before publish). The dtypes numpy lacks (BF16, F8_*) come as the unsigned integers of
 * their size (bm_dtype_descr), named by Dataset.dtype / Dataset.dtypes. */

/* What a Dataset knows of its payload: the trailer's format and layout, and its options. */
static void dataset_typed_init(dataset_obj *o, const bm_dataset_info_t *info, int verify,
                               int copy_on_write) {
  o->verify = verify;
  o->copy_on_write = copy_on_write;
  o->writer = 0;
  o->bind_at_publish = 0;
  o->format = info != NULL && info->format != 0 ? info->format : BM_FORMAT_RAW;
  o->has_layout = info != NULL && info->has_layout;
  if (o->has_layout) o->layout = info->layout;
  else memset(&o->layout, 0, sizeof(o->layout));
}

static PyObject *numpy_attr(const char *name) {
  PyObject *np = PyImport_ImportModule("numpy"), *a;
  if (np == NULL) return NULL;
  a = PyObject_GetAttrString(np, name);
  Py_DECREF(np);
  return a;
}

/* The shape as a tuple of ints. */
static PyObject *shape_tuple(const bm_layout_t *l) {
  PyObject *t = PyTuple_New((Py_ssize_t)l->ndim);
  uint32_t i;
  if (t == NULL) return NULL;
  for (i = 0; i < l->ndim; i++) {
    PyObject *v = PyLong_FromUnsignedLongLong(l->shape[i]);
    if (v == NULL) {
      Py_DECREF(t);
      return NULL;
    }
    PyTuple_SET_ITEM(t, i, v);
  }
  return t;
}

/* numpy.frombuffer(self, descr, count, offset).reshape(shape, order=order): a view of
 * payload bytes [data_offset, data_offset + data_length), never a copy. */
static PyObject *array_view(dataset_obj *self, const bm_layout_t *l) {
  char descr[8];
  PyObject *fb = NULL, *args = NULL, *kw = NULL, *flat = NULL, *reshape = NULL, *shape = NULL,
           *out = NULL;
  uint64_t count = l->item_size != 0 ? l->data_length / l->item_size : 0;
  if (l->data_offset > self->view.length || l->data_length > self->view.length - l->data_offset) {
    PyErr_Format(PyExc_ValueError, "%U: the array's bytes [%llu, +%llu) run past the payload "
                 "(%zu bytes)", self->name, (unsigned long long)l->data_offset,
                 (unsigned long long)l->data_length, self->view.length);
    return NULL;
  }
  bm_dtype_descr(l, descr, sizeof(descr));
  if ((fb = numpy_attr("frombuffer")) == NULL) goto out;
  if ((args = Py_BuildValue("(Os)", (PyObject *)self, descr)) == NULL) goto out;
  if ((kw = Py_BuildValue("{sKsK}", "count", (unsigned long long)count, "offset",
                          (unsigned long long)l->data_offset)) == NULL)
    goto out;
  if ((flat = PyObject_Call(fb, args, kw)) == NULL) goto out;
  Py_CLEAR(args);
  Py_CLEAR(kw);
  if ((shape = shape_tuple(l)) == NULL || (reshape = PyObject_GetAttrString(flat, "reshape")) == NULL)
    goto out;
  if ((args = PyTuple_Pack(1, shape)) == NULL ||
      (kw = Py_BuildValue("{ss}", "order", l->order == 'F' ? "F" : "C")) == NULL)
    goto out;
  out = PyObject_Call(reshape, args, kw);
out:
  Py_XDECREF(fb);
  Py_XDECREF(args);
  Py_XDECREF(kw);
  Py_XDECREF(flat);
  Py_XDECREF(reshape);
  Py_XDECREF(shape);
  return out;
}

/* dtype=: a library name ("F32", "BF16", as safetensors names them) or anything
 * numpy.dtype() takes ("float32", numpy.float32, "<f4"), matched to the library's dtypes
 * by the numpy type string the library gives each (bm_dtype_descr). BF16 and F8 only by
 * name: numpy's view of them is its unsigned integers. */
static int dtype_layout(PyObject *o, bm_layout_t *l) {
  PyObject *npdtype, *dt = NULL, *str = NULL;
  const char *s;
  int d;
  memset(l, 0, sizeof(*l));
  if (PyUnicode_Check(o)) {
    if ((s = PyUnicode_AsUTF8(o)) == NULL) return -1;
    if ((d = bm_dtype_from_name(s)) != BM_DTYPE_NONE) {
      l->dtype = d;
      l->item_size = bm_dtype_size(d);
      l->byteorder = l->item_size == 1 ? '|' : '<';
      return 0;
    }
  }
  if ((npdtype = numpy_attr("dtype")) == NULL) return -1;
  dt = PyObject_CallOneArg(npdtype, o);
  Py_DECREF(npdtype);
  if (dt == NULL) return -1;
  if ((str = PyObject_GetAttrString(dt, "str")) == NULL || (s = PyUnicode_AsUTF8(str)) == NULL)
    goto fail;
  for (d = BM_DTYPE_NONE + 1; d < BM__DTYPE_COUNT; d++) {
    static const char orders[] = "<>";
    int k;
    if (d == BM_DTYPE_BF16 || d == BM_DTYPE_F8_E4M3 || d == BM_DTYPE_F8_E5M2) continue;
    for (k = 0; k < 2; k++) {
      bm_layout_t t;
      char descr[8];
      memset(&t, 0, sizeof(t));
      t.dtype = d;
      t.byteorder = orders[k];
      if (strcmp(bm_dtype_descr(&t, descr, sizeof(descr)), s) == 0) {
        l->dtype = d;
        l->item_size = bm_dtype_size(d);
        l->byteorder = l->item_size == 1 ? '|' : orders[k];
        Py_DECREF(str);
        Py_DECREF(dt);
        return 0;
      }
    }
  }
  PyErr_Format(PyExc_ValueError, "dtype %R ('%s'): not one a dataset can hold (booleans, "
               "integers, floats and complex numbers of numpy's, or BF16 F8_E4M3 F8_E5M2 by "
               "name; no object, string or structured dtypes)", o, s);
fail:
  Py_XDECREF(str);
  Py_DECREF(dt);
  return -1;
}

/* shape=: an int or a sequence of ints, at most BM_MAX_DIMS of them; order 'C' or 'F'.
 * Fills l->ndim, l->shape, l->order and l->data_length (overflow: ValueError). */
static int shape_layout(PyObject *shape, const char *order, bm_layout_t *l) {
  PyObject *seq;
  Py_ssize_t i, n;
  uint64_t bytes = l->item_size;
  if (order == NULL || (strcmp(order, "C") != 0 && strcmp(order, "F") != 0)) {
    PyErr_SetString(PyExc_ValueError, "order: 'C' (row-major) or 'F' (column-major)");
    return -1;
  }
  l->order = order[0];
  if (PyLong_Check(shape)) {
    if (to_u64(shape, "shape", &l->shape[0]) < 0) return -1;
    l->ndim = 1;
  } else {
    if ((seq = PySequence_Fast(shape, "shape must be an int or a sequence of ints")) == NULL)
      return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > BM_MAX_DIMS) {
      Py_DECREF(seq);
      PyErr_Format(PyExc_ValueError, "shape: at most %d dimensions", BM_MAX_DIMS);
      return -1;
    }
    for (i = 0; i < n; i++)
      if (to_u64(PySequence_Fast_GET_ITEM(seq, i), "shape", &l->shape[i]) < 0) {
        Py_DECREF(seq);
        return -1;
      }
    Py_DECREF(seq);
    l->ndim = (uint32_t)n;
  }
  for (i = 0; i < (Py_ssize_t)l->ndim; i++)
    if (l->shape[i] != 0 && bytes > UINT64_MAX / l->shape[i]) {
      PyErr_SetString(PyExc_ValueError, "shape: its size in bytes overflows 64 bits");
      return -1;
    } else {
      bytes *= l->shape[i];
    }
  l->data_length = bytes;
  return 0;
}

/* array(): the payload's one array (npy, or an array published from memory).
 * array(dtype, shape=None, offset=0): the payload's bytes from offset viewed as that dtype
 * (shape None: as many elements as fit). */
static PyObject *dataset_array(dataset_obj *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"dtype", "shape", "offset", NULL};
  PyObject *dtype = Py_None, *shape = Py_None, *offset_obj = NULL;
  uint64_t offset = 0;
  bm_layout_t l;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOO:array", kwlist, &dtype, &shape, &offset_obj))
    return NULL;
  if (!dataset_live(self)) return NULL;
  if (dtype == Py_None) {
    if (shape != Py_None || offset_obj != NULL) {
      PyErr_SetString(PyExc_TypeError, "array(): shape= and offset= go with dtype=");
      return NULL;
    }
    if (self->has_layout) return array_view(self, &self->layout);
    if (self->format == BM_FORMAT_SAFETENSORS)
      PyErr_Format(PyExc_ValueError, "%U is safetensors: arrays() gives its tensors by name",
                   self->name);
    else
      PyErr_Format(PyExc_ValueError, "%U holds no array (format %s): array(dtype, shape) views "
                   "its bytes as one", self->name, bm_format_name(self->format));
    return NULL;
  }
  if (dtype_layout(dtype, &l) < 0) return NULL;
  if (offset_obj != NULL && to_u64(offset_obj, "offset", &offset) < 0) return NULL;
  if (offset > self->view.length) {
    PyErr_Format(PyExc_ValueError, "offset %llu: past the payload's %zu bytes",
                 (unsigned long long)offset, self->view.length);
    return NULL;
  }
  if (shape == Py_None) {
    PyObject *n = PyLong_FromUnsignedLongLong((self->view.length - offset) / l.item_size);
    int r = n != NULL ? shape_layout(n, "C", &l) : -1;
    Py_XDECREF(n);
    if (r < 0) return NULL;
  } else if (shape_layout(shape, "C", &l) < 0) {
    return NULL;
  }
  l.data_offset = offset;
  return array_view(self, &l);
}

/* arrays(): a safetensors payload's tensors, {name: array}, in payload order. */
static PyObject *dataset_arrays(dataset_obj *self, PyObject *unused) {
  bm_tensor_t *t = NULL;
  size_t n = 0, i;
  PyObject *d = NULL, *a, *k;
  if (!dataset_live(self)) return NULL;
  if (self->format != BM_FORMAT_SAFETENSORS) {
    PyErr_Format(PyExc_ValueError, "%U is not safetensors (format %s)%s", self->name,
                 bm_format_name(self->format),
                 self->has_layout ? ": array() gives its one array" : "");
    return NULL;
  }
  if (dataset_tensors(self, &t, &n) < 0) return NULL;
  if ((d = PyDict_New()) == NULL) goto fail;
  for (i = 0; i < n; i++) {
    if ((a = array_view(self, &t[i].layout)) == NULL) goto fail;
    if ((k = text(t[i].name)) == NULL || PyDict_SetItem(d, k, a) < 0) {
      Py_XDECREF(k);
      Py_DECREF(a);
      goto fail;
    }
    Py_DECREF(k);
    Py_DECREF(a);
  }
  bm_tensors_free(t);
  return d;
fail:
  bm_tensors_free(t);
  Py_XDECREF(d);
  return NULL;
}

static PyObject *dataset_get_format(dataset_obj *self, void *closure) {
  return PyUnicode_FromString(bm_format_name(self->format));
}

/* The library's name of the array's element type ("F32", "BF16"), or None. */
static PyObject *dataset_get_dtype(dataset_obj *self, void *closure) {
  if (!self->has_layout) Py_RETURN_NONE;
  return PyUnicode_FromString(bm_dtype_name(self->layout.dtype));
}

/* safetensors: {name: the library's dtype name}; else None. */
static PyObject *dataset_get_dtypes(dataset_obj *self, void *closure) {
  bm_tensor_t *t = NULL;
  size_t n = 0, i;
  PyObject *d;
  if (self->format != BM_FORMAT_SAFETENSORS) Py_RETURN_NONE;
  if (!dataset_live(self) || dataset_tensors(self, &t, &n) < 0) return NULL;
  if ((d = PyDict_New()) == NULL) goto out;
  for (i = 0; i < n; i++) {
    PyObject *k = text(t[i].name), *v = PyUnicode_FromString(bm_dtype_name(t[i].layout.dtype));
    int r = k != NULL && v != NULL ? PyDict_SetItem(d, k, v) : -1;
    Py_XDECREF(k);
    Py_XDECREF(v);
    if (r < 0) {
      Py_CLEAR(d);
      break;
    }
  }
out:
  bm_tensors_free(t);
  return d;
}

static PyObject *dataset_get_copy_on_write(dataset_obj *self, void *closure) {
  return PyBool_FromLong(self->copy_on_write);
}

static PyObject *dataset_get_writable(dataset_obj *self, void *closure) {
  return PyBool_FromLong(self->ds != NULL && (self->copy_on_write || self->writer == 1));
}

/* A pickle is the name and the options: bulkmap._reopen(name, verify, copy_on_write)
 * opens the dataset again where it is unpickled (a DataLoader worker, a Dask task). */
static PyObject *dataset_reduce(dataset_obj *self, PyObject *unused) {
  PyObject *mod, *fn;
  if (self->writer != 0) {
    PyErr_Format(PyExc_TypeError, "%U: a dataset from create() pickles once published (a "
                 "pickle opens it again by name)", self->name);
    return NULL;
  }
  if ((mod = PyImport_ImportModule("bulkmap")) == NULL) return NULL;
  fn = PyObject_GetAttrString(mod, "_reopen");
  Py_DECREF(mod);
  if (fn == NULL) return NULL;
  return Py_BuildValue("(N(ONN))", fn, self->name, PyBool_FromLong(self->verify),
                       PyBool_FromLong(self->copy_on_write));
}

/* publish(format="auto") of a dataset from create(): its header judged (the layout it was
 * made with, or by the magic), the write view unmapped, the payload hashed from the section
 * and published `ready` by the library; the Dataset then reads it as open() would. Refused
 * (BufferError) while an array or memoryview could still write into it. */
static PyObject *dataset_publish_busy(dataset_obj *self, PyObject *args, PyObject *kw);

/* publish() releases the GIL with self->ds in use: it counts as a call in progress, so a
 * close() (or a with block left) in another thread waits for it instead of freeing the
 * dataset under it. */
static PyObject *dataset_publish(dataset_obj *self, PyObject *args, PyObject *kw) {
  PyObject *r;
  if (dataset_enter_call(self) < 0) return NULL;
  r = dataset_publish_busy(self, args, kw);
  dataset_leave_call(self);
  return r;
}

static PyObject *dataset_publish_busy(dataset_obj *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"format", NULL};
  const char *fname = "auto";
  char why[BM_WHY_MAX] = "";
  int format, err, os = 0, step = 0;
  bm_dataset_info_t info;
  bm_view_t wv, rv;
  PyObject *d;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|s:publish", kwlist, &fname)) return NULL;
  if (!dataset_live(self)) return NULL;
  if (self->writer != 1) {
    PyErr_Format(PyExc_ValueError, "%U: %s", self->name,
                 self->writer == 2 ? "removed unpublished (its with block was left)"
                                   : "only a dataset from create() is published, once");
    return NULL;
  }
  if (self->has_layout) format = BM_FORMAT_NPY;
  else if (bm_format_from_name(fname, &format) != 0) {
    PyErr_Format(PyExc_ValueError, "format '%s': expected \"auto\", \"raw\", \"npy\" or "
                 "\"safetensors\"", fname);
    return NULL;
  }
  if (self->exports > 0) {
    PyErr_SetString(PyExc_BufferError, "cannot publish: an array or memoryview can still write "
                    "into the dataset (del it first: later writes would not match the checksum)");
    return NULL;
  }
  memset(&info, 0, sizeof(info));
  memset(&rv, 0, sizeof(rv));
  wv = self->view;
  self->closing = 1; /* no export and no call starts meanwhile */
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_set_format(self->ds, format, why, sizeof(why));
  if (err == 0) {
    step = 1;
    bm_view_unmap(&wv);
    err = bm_dataset_publish(self->ds, &info);
  }
  if (err == 0) {
    step = 2;
    err = bm_dataset_view(self->ds, &rv);
  }
  if (err != 0) os = bm_last_os_error();
  if (err != 0 && step == 1) bm_dataset_fail(self->ds);
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  self->closing = 0;
  if (step >= 1) memset(&self->view, 0, sizeof(self->view));
  if (err != 0) {
    const char *name = PyUnicode_AsUTF8(self->name);
    if (step >= 1) { /* unmapped: published and unreadable, or failed and removed */
      self->writer = step == 1 ? 2 : 0;
      dataset_release(self);
    }
    if (err == BM_EFORMAT) return raise_msg(name, err, 0, why);
    return raise_msg(name, err, os, step == 1 ? "cannot publish: the dataset was removed"
                                              : "published, but cannot be mapped again");
  }
  self->view = rv;
  self->writer = 0;
  self->format = info.format != 0 ? info.format : BM_FORMAT_RAW;
  self->has_layout = info.has_layout;
  if (info.has_layout) self->layout = info.layout;
  if (self->bind_at_publish && bind_or_remove(self->ds, PyUnicode_AsUTF8(self->name)) < 0)
    return NULL;
  if ((d = info_dict(&info, 1, -1)) != NULL && set_tensors_item(d, self->ds, &info,
                                                                PyUnicode_AsUTF8(self->name)) < 0)
    Py_CLEAR(d);
  return d;
}

/* ---------------------------------------------------------------------------------------
 * Tensors (docs/design.md section 6). torch 1.13 has no read-only tensors, and a write
 * through a read-only mapping is SIGSEGV: tensors() are made over a private (copy-on-write)
 * mapping of the payload of their own, writable, whose writes stay in this process (and
 * in these tensors: the section and other readers never see them). That mapping needs
 * nothing of the Dataset once made: it lives as long as the tensors (torch's storage holds
 * the buffer), also after close(). On hugetlbfs the kernel reserves huge pages of the pool
 * for a private mapping when it is made, so a pool without enough free pages fails here,
 * at the call, never later at a write. The torch side (dtypes, shapes) is bulkmap/_typed.py. */
typedef struct {
  PyObject_HEAD
  bm_view_t view;
  PyObject *name;
} private_obj;

static void private_dealloc(private_obj *self) {
  /* Each export holds a reference: none is alive here. */
  bm_view_unmap(&self->view);
  Py_XDECREF(self->name);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int private_getbuffer(private_obj *self, Py_buffer *view, int flags) {
  return PyBuffer_FillInfo(view, (PyObject *)self, self->view.data, (Py_ssize_t)self->view.length,
                           0, flags);
}

static Py_ssize_t private_len(private_obj *self) {
  return (Py_ssize_t)self->view.length;
}

static PyObject *private_repr(private_obj *self) {
  return PyUnicode_FromFormat("<bulkmap private copy of %R, %zu bytes>", self->name,
                              self->view.length);
}

static PyBufferProcs private_as_buffer = {(getbufferproc)private_getbuffer, NULL};
static PySequenceMethods private_as_sequence = {.sq_length = (lenfunc)private_len};

static PyTypeObject private_type = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "bulkmap._PrivateView",
  .tp_basicsize = sizeof(private_obj),
  .tp_dealloc = (destructor)private_dealloc,
  .tp_repr = (reprfunc)private_repr,
  .tp_as_sequence = &private_as_sequence,
  .tp_as_buffer = &private_as_buffer,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A private (copy-on-write) mapping of a dataset's payload: writable, its writes "
            "stay in this process. What Dataset.tensors() builds its tensors on.",
};

/* Why a private mapping of a dataset on large pages was refused: the pool's figures in the
 * library's words (bm_large_describe), for the huge pages a private mapping of the whole
 * payload reserves. */
static PyObject *private_refused(dataset_obj *self, int err, int os, const bm_dataset_info_t *info) {
  char why[BM_DESCRIBE_MAX], msg[BM_DESCRIBE_MAX + 400];
  bm_sysinfo_t si;
  bm_large_t l;
  size_t H = info->page_size;
  int i;
  if (!(info->large.obtained && !info->large.transparent && H > bm_page_size()))
    return raise_msg(PyUnicode_AsUTF8(self->name), err, os,
                     "tensors(): cannot map the dataset privately (copy-on-write)");
  memset(&l, 0, sizeof(l));
  l.requested = BM_LARGE_ON;
  l.page_size = H;
  l.pages_needed = (info->section_bytes + H - 1) / H;
  if (bm_sysinfo_get(&si) == 0)
    for (i = 0; i < si.n_large_sizes; i++)
      if (si.large_sizes[i] == H && si.large_free[i] != (uint64_t)-1) l.pages_free = si.large_free[i];
  l.reason = l.pages_free == 0 ? BM_REASON_POOL_EMPTY : BM_REASON_POOL_TOO_SMALL;
  snprintf(msg, sizeof(msg), "tensors(): the dataset is on large pages, and a private "
           "(copy-on-write) mapping of it reserves free huge pages of the pool for its writes, "
           "which the kernel refused: %s (bulkmap setup --large-pages SIZE grows the pool; "
           "arrays() reads it without a private mapping)", bm_large_describe(&l, why, sizeof(why)));
  return raise_msg(PyUnicode_AsUTF8(self->name), err, os, msg);
}

/* _private_view() -> a private (copy-on-write) mapping of the whole payload. */
static PyObject *dataset_private_view(dataset_obj *self, PyObject *unused) {
  bm_view_t v;
  bm_dataset_info_t info;
  private_obj *o;
  int err, os = 0;
  memset(&v, 0, sizeof(v));
  memset(&info, 0, sizeof(info));
  if (dataset_enter_call(self) < 0) return NULL;
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_view_map(&v, bm_dataset_source(self->ds), 0, self->view.length, BM_ACCESS_COPY);
  if (err != 0) {
    os = bm_last_os_error();
    bm_dataset_info(self->ds, &info);
  }
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) return private_refused(self, err, os, &info);
  if ((o = PyObject_New(private_obj, &private_type)) == NULL) {
    bm_view_unmap(&v);
    return NULL;
  }
  o->view = v;
  o->name = Py_NewRef(self->name);
  return (PyObject *)o;
}

/* tensors(), tensor(), metadata: bulkmap/_typed.py, given the Dataset. */
static PyObject *dataset_call_typed(dataset_obj *self, const char *fn, PyObject *args,
                                    PyObject *kw) {
  PyObject *mod, *f, *all, *r;
  Py_ssize_t i, n = args != NULL ? PyTuple_GET_SIZE(args) : 0;
  if ((mod = PyImport_ImportModule("bulkmap._typed")) == NULL) return NULL;
  f = PyObject_GetAttrString(mod, fn);
  Py_DECREF(mod);
  if (f == NULL) return NULL;
  if ((all = PyTuple_New(n + 1)) == NULL) {
    Py_DECREF(f);
    return NULL;
  }
  PyTuple_SET_ITEM(all, 0, Py_NewRef(self));
  for (i = 0; i < n; i++) PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
  r = PyObject_Call(f, all, kw);
  Py_DECREF(all);
  Py_DECREF(f);
  return r;
}

static PyObject *dataset_tensors_method(dataset_obj *self, PyObject *args, PyObject *kw) {
  return dataset_call_typed(self, "tensors", args, kw);
}

static PyObject *dataset_tensor_method(dataset_obj *self, PyObject *args, PyObject *kw) {
  return dataset_call_typed(self, "tensor", args, kw);
}

/* _layout: the payload's one array as the Dataset knows it (the trailer's at open, the
 * writer's own before publish), as stat()'s "layout"; None when it holds none. */
static PyObject *dataset_get_layout(dataset_obj *self, void *closure) {
  if (!self->has_layout) Py_RETURN_NONE;
  return layout_obj(&self->layout);
}

static PyObject *dataset_get_metadata(dataset_obj *self, void *closure) {
  return dataset_call_typed(self, "metadata", NULL, NULL);
}

static PyMethodDef dataset_methods[] = {
  {"array", (PyCFunction)(void (*)(void))dataset_array, METH_VARARGS | METH_KEYWORDS,
   "array() -> numpy array: the payload's one array (npy, or published from memory), a view "
   "of the section (read-only unless copy_on_write or before publish). array(dtype, "
   "shape=None, offset=0): the bytes from offset as that dtype."},
  {"arrays", (PyCFunction)dataset_arrays, METH_NOARGS,
   "arrays() -> {name: numpy array}: a safetensors payload's tensors, views of the section. "
   "BF16 and F8 come as uint16 / uint8 views; dtypes names them."},
  {"publish", (PyCFunction)(void (*)(void))dataset_publish, METH_VARARGS | METH_KEYWORDS,
   "publish(format='auto') -> dict: a dataset from create() hashed and published ready (the "
   "arrays and memoryviews that write into it must be gone: BufferError)."},
  {"tensors", (PyCFunction)(void (*)(void))dataset_tensors_method, METH_VARARGS | METH_KEYWORDS,
   "tensors() -> {name: torch.Tensor}: a safetensors payload's tensors with the file's dtypes "
   "(bfloat16 included), zero copy over a private copy-on-write mapping of their own "
   "(writable; writes stay in this process; valid after close()). Dtypes torch lacks come as "
   "the signed integers of their width; dtypes names them."},
  {"tensor", (PyCFunction)(void (*)(void))dataset_tensor_method, METH_VARARGS | METH_KEYWORDS,
   "tensor() -> torch.Tensor: the payload's one array (npy, or published from memory), as "
   "tensors() makes them."},
  {"handoff", (PyCFunction)dataset_handoff, METH_NOARGS,
   "handoff(): the next os.fork()'s child becomes the dataset's writer (it fills and "
   "publishes it); this process's handle then only closes. Without it a child is never the "
   "writer: a fork of a writer that dies leaves the dataset abandoned, whatever the child does."},
  {"_private_view", (PyCFunction)dataset_private_view, METH_NOARGS,
   "A private (copy-on-write) mapping of the whole payload, writable (what tensors() uses)."},
  {"__reduce__", (PyCFunction)dataset_reduce, METH_NOARGS,
   "Pickles as the name and the options; unpickling opens the dataset again."},
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
  {"format", (getter)dataset_get_format, NULL, "'raw', 'npy' or 'safetensors'.", NULL},
  {"dtype", (getter)dataset_get_dtype, NULL,
   "The array's element type as the library names it ('F32', 'BF16'), or None.", NULL},
  {"dtypes", (getter)dataset_get_dtypes, NULL,
   "safetensors: {name: 'F32' | 'BF16' | ...}; None otherwise.", NULL},
  {"_layout", (getter)dataset_get_layout, NULL,
   "The payload's one array: {dtype shape order data_offset data_length descr}, or None.", NULL},
  {"metadata", (getter)dataset_get_metadata, NULL,
   "safetensors: the header's __metadata__ ({str: str}); {} when it has none, and for the "
   "other formats.", NULL},
  {"copy_on_write", (getter)dataset_get_copy_on_write, NULL,
   "True: mapped privately (open(copy_on_write=True)): writes stay in this process.", NULL},
  {"writable", (getter)dataset_get_writable, NULL,
   "True when arrays and memoryviews of it may be written.", NULL},
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
  static char *kwlist[] = {"name", "verify", "wait", "copy_on_write", NULL};
  const char *name;
  /* verify=False: open checks trailer, state, sizes and layout in O(1) (docs/design.md section 6). */
  int verify = 0, copy_on_write = 0, err, os;
  PyObject *wait_obj = Py_None;
  bm_dataset_t *ds = NULL;
  bm_dataset_info_t info;
  bm_view_t view;
  dataset_obj *obj;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pOp:open", kwlist, &name, &verify, &wait_obj,
                                   &copy_on_write))
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
  /* copy_on_write: a private view of the section (MAP_PRIVATE / FILE_MAP_COPY): writable,
   * its writes never reach the section or other readers. */
  if (err == 0 && (err = copy_on_write ? bm_view_map(&view, bm_dataset_source(ds), 0, info.bytes,
                                                     BM_ACCESS_COPY)
                                       : bm_dataset_view(ds, &view)) != 0) {
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
  dataset_typed_init(obj, &info, verify, copy_on_write);
  return (PyObject *)obj;
}

/* ---------------------------------------------------------------------------------------
 * Publishing from memory (docs/design.md section 6): publish() is bm_dataset_publish_buffer, one
 * library call (checked, created, copied in, hashed from the section, published); create()
 * is bm_dataset_create and a shared-writable view the caller fills, then Dataset.publish().
 * replace= is bm_dataset_opts_t.replace, remove_on_exit= bm_dataset_remove_on_exit
 * (bind_to_process; with replace, once published). */

/* mode, group, large_pages and replace into the library's dataset options. */
static int make_opts(PyObject *mode_obj, PyObject *group_obj, const char *large, int replace,
                     bm_dataset_opts_t *o) {
  uint64_t mode = 0; /* 0: 0600 for a new dataset, the old one's for a replace */
  memset(o, 0, sizeof(*o));
  if (strcmp(large, "auto") == 0) o->large = BM_LARGE_AUTO;
  else if (strcmp(large, "on") == 0) o->large = BM_LARGE_ON;
  else if (strcmp(large, "off") == 0) o->large = BM_LARGE_OFF;
  else {
    PyErr_Format(PyExc_ValueError, "large_pages '%s': expected \"auto\", \"on\" or \"off\"", large);
    return -1;
  }
  if (mode_obj != NULL && to_u64(mode_obj, "mode", &mode) < 0) return -1;
  if (mode > 0777) {
    PyErr_SetString(PyExc_ValueError, "mode: permission bits 0 to 0o777");
    return -1;
  }
  if (group_obj != Py_None && (o->group = PyUnicode_AsUTF8(group_obj)) == NULL) return -1;
  o->mode = (unsigned)mode;
  o->replace = replace;
  return 0;
}

static PyObject *make_error(const char *name, const char *group, int replace, int err, int os,
                            const bm_large_t *large, const char *why) {
  char d[1024], msg[1200];
  switch (err) {
  case BM_ENAME:
    return raise_msg(name, err, 0, name_rule);
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

/* A Dataset over a writer's handle and its shared-writable view (create()). */
static PyObject *dataset_wrap_writer(bm_dataset_t *ds, bm_view_t *view, const char *name) {
  dataset_obj *obj = PyObject_New(dataset_obj, &dataset_type);
  if (obj != NULL) {
    obj->ds = NULL;
    obj->exports = obj->busy = 0;
    obj->closing = 0;
    memset(&obj->view, 0, sizeof(obj->view));
    dataset_typed_init(obj, NULL, 0, 0);
    obj->lock = PyThread_allocate_lock();
    obj->name = PyUnicode_FromString(name);
  }
  if (obj == NULL || obj->name == NULL || obj->lock == NULL) {
    if (obj != NULL && obj->lock == NULL && !PyErr_Occurred()) PyErr_NoMemory();
    Py_XDECREF(obj);
    Py_BEGIN_ALLOW_THREADS
    bm_view_unmap(view);
    bm_dataset_close(ds); /* unpublished: failed and removed */
    Py_END_ALLOW_THREADS
    return NULL;
  }
  obj->ds = ds;
  obj->view = *view;
  obj->writer = 1;
  return (PyObject *)obj;
}

typedef struct {
  bm_layout_t *layout;
  void *dst;
  size_t n;
} npy_write_t;

/* Writes the npy header into the new section (guarded: a full tmpfs faults on the write). */
static int npy_write(void *arg) {
  npy_write_t *w = arg;
  size_t len = 0;
  return bm_npy_header(w->layout, w->dst, w->n, &len);
}

static PyObject *py_create(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "size", "dtype", "shape", "order", "mode", "group",
                           "large_pages", "replace", "remove_on_exit", NULL};
  const char *name, *order = "C", *large = "auto";
  PyObject *size_obj = Py_None, *dtype = Py_None, *shape = Py_None, *mode_obj = NULL,
           *group_obj = Py_None, *obj;
  int replace = 0, remove_on_exit = 0, typed, err, os = 0;
  uint64_t size = 0;
  size_t hlen = 0;
  bm_dataset_opts_t o;
  bm_layout_t l;
  bm_large_t lg;
  bm_dataset_t *ds = NULL;
  bm_view_t view;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|OOOsOOspp:create", kwlist, &name, &size_obj,
                                   &dtype, &shape, &order, &mode_obj, &group_obj, &large,
                                   &replace, &remove_on_exit))
    return NULL;
  if (make_opts(mode_obj, group_obj, large, replace, &o) < 0) return NULL;
  if ((err = bm_name_check(name)) != 0) return raise_msg(name, err, 0, name_rule);
  typed = dtype != Py_None;
  memset(&l, 0, sizeof(l));
  if (typed) {
    /* An npy payload: the library's header for the layout, then the data to fill. */
    if (shape == Py_None) {
      PyErr_SetString(PyExc_TypeError, "create(dtype=...) needs shape= too");
      return NULL;
    }
    if (dtype_layout(dtype, &l) < 0 || shape_layout(shape, order, &l) < 0) return NULL;
    if (bm_npy_header(&l, NULL, 0, &hlen) != 0 || l.data_length > UINT64_MAX - hlen) {
      PyErr_SetString(PyExc_ValueError, "shape: its size in bytes overflows 64 bits");
      return NULL;
    }
    l.data_offset = hlen;
    if (size_obj != Py_None) {
      if (to_size(size_obj, "size", &size) < 0) return NULL;
      if (size != hlen + l.data_length) {
        PyErr_Format(PyExc_ValueError, "size %llu: dtype and shape make %llu bytes (an npy "
                     "header of %zu, then the data); leave size out", (unsigned long long)size,
                     (unsigned long long)(hlen + l.data_length), hlen);
        return NULL;
      }
    }
    size = hlen + l.data_length;
  } else {
    if (shape != Py_None) {
      PyErr_SetString(PyExc_TypeError, "create(shape=...) needs dtype= too");
      return NULL;
    }
    if (size_obj == Py_None) {
      PyErr_SetString(PyExc_TypeError, "create() needs size= (bytes), or dtype= and shape=");
      return NULL;
    }
    if (to_size(size_obj, "size", &size) < 0) return NULL;
  }
  if ((uint64_t)(size_t)size != size) {
    PyErr_SetString(PyExc_OverflowError, "size: larger than this process can map");
    return NULL;
  }
  o.size = size;
  memset(&view, 0, sizeof(view));
  memset(&lg, 0, sizeof(lg));
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_create(&ds, name, &o, &lg);
  if (err != 0) os = bm_last_os_error();
  else if ((err = bm_view_map(&view, bm_dataset_source(ds), 0, size, BM_ACCESS_WRITE)) != 0)
    os = bm_last_os_error();
  else if (typed) {
    npy_write_t w = {&l, view.data, hlen};
    if ((err = bm_guard_call(npy_write, &w)) == BM_ETRUNCATED) err = BM_ENOSPC;
  }
  if (err != 0 && ds != NULL) {
    bm_view_unmap(&view);
    bm_dataset_close(ds); /* unpublished: failed and removed */
    ds = NULL;
  }
  Py_END_ALLOW_THREADS
  if (err != 0) return make_error(name, o.group, replace, err, os, &lg, "");
  if (remove_on_exit && !replace && bind_to_process(ds, name) < 0) {
    Py_BEGIN_ALLOW_THREADS
    bm_view_unmap(&view);
    bm_dataset_close(ds);
    Py_END_ALLOW_THREADS
    return NULL;
  }
  if ((obj = dataset_wrap_writer(ds, &view, name)) == NULL) return NULL;
  ((dataset_obj *)obj)->bind_at_publish = remove_on_exit && replace;
  if (typed) {
    ((dataset_obj *)obj)->format = BM_FORMAT_NPY;
    ((dataset_obj *)obj)->has_layout = 1;
    ((dataset_obj *)obj)->layout = l;
  }
  return obj;
}

/* _publish(name, obj, dtype=None, shape=None, order='C', format='auto', ...): obj's bytes
 * (any C- or Fortran-contiguous buffer) as a new dataset. With dtype the bytes are one
 * array of that dtype and shape (None: 1-D), written as an npy payload; without, they are
 * judged by their magic (format='auto') as a file's are. bulkmap.publish passes an
 * ndarray's dtype, shape and order. */
static PyObject *py_publish(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "obj", "dtype", "shape", "order", "format", "mode", "group",
                           "large_pages", "replace", "remove_on_exit", NULL};
  const char *name, *order = "C", *fname = "auto", *large = "auto";
  PyObject *obj, *dtype = Py_None, *shape = Py_None, *mode_obj = NULL, *group_obj = Py_None,
                 *r = NULL;
  int replace = 0, remove_on_exit = 0, err, os = 0;
  bm_publish_opts_t po;
  bm_load_result_t res;
  bm_layout_t l;
  bm_dataset_t *ds = NULL;
  Py_buffer buf;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|OOssOOspp:publish", kwlist, &name, &obj, &dtype,
                                   &shape, &order, &fname, &mode_obj, &group_obj, &large,
                                   &replace, &remove_on_exit))
    return NULL;
  memset(&po, 0, sizeof(po));
  memset(&res, 0, sizeof(res));
  if (make_opts(mode_obj, group_obj, large, replace, &po.dataset) < 0) return NULL;
  if ((err = bm_name_check(name)) != 0) return raise_msg(name, err, 0, name_rule);
  if (bm_format_from_name(fname, &po.format) != 0) {
    PyErr_Format(PyExc_ValueError, "format '%s': expected \"auto\", \"raw\", \"npy\" or "
                 "\"safetensors\"", fname);
    return NULL;
  }
  if (PyObject_GetBuffer(obj, &buf, PyBUF_ANY_CONTIGUOUS) < 0) {
    if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "publish: %.80s is not a contiguous buffer (bytes, "
                   "bytearray, memoryview, a numpy array...)", Py_TYPE(obj)->tp_name);
    }
    return NULL;
  }
  if (dtype != Py_None) {
    if (dtype_layout(dtype, &l) < 0) goto done;
    if (shape == Py_None) {
      PyObject *n;
      int bad;
      if (buf.len % l.item_size != 0) {
        PyErr_Format(PyExc_ValueError, "publish: %zd bytes are not a whole number of %u-byte "
                     "elements", buf.len, (unsigned)l.item_size);
        goto done;
      }
      n = PyLong_FromSsize_t(buf.len / l.item_size);
      bad = n == NULL || shape_layout(n, order, &l) < 0;
      Py_XDECREF(n);
      if (bad) goto done;
    } else if (shape_layout(shape, order, &l) < 0) {
      goto done;
    }
    po.layout = &l;
  }
  /* The buffer is held (not copied) while the library copies it in without the GIL. */
  Py_BEGIN_ALLOW_THREADS
  err = bm_dataset_publish_buffer(&ds, name, buf.buf, (size_t)buf.len, &po, &res);
  os = err == 0 ? 0 : res.os_error ? res.os_error : bm_last_os_error();
  Py_END_ALLOW_THREADS
  if (err != 0) {
    make_error(name, po.dataset.group, replace, err, os, &res.large, res.why);
    goto done;
  }
  if (remove_on_exit && bind_or_remove(ds, name) < 0) goto done;
  r = info_dict(&res.info, 0, res.seconds);
  if (r != NULL && set_item(r, "source_cached_bytes", Py_NewRef(Py_None)) < 0) Py_CLEAR(r);
  if (r == NULL && !replace) {
    Py_BEGIN_ALLOW_THREADS
    bm_dataset_remove(ds);
    Py_END_ALLOW_THREADS
  }
done:
  PyBuffer_Release(&buf);
  Py_BEGIN_ALLOW_THREADS
  bm_dataset_close(ds);
  Py_END_ALLOW_THREADS
  return r;
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
   "remove_on_exit=False, format='auto', place=None) -> dict (as `bulkmap load --json`; "
   "format: 'auto' | 'raw' | 'npy' | 'safetensors'; place: '/dev/shm' or a hugetlbfs mount)"},
  {"open", (PyCFunction)(void (*)(void))py_open, METH_VARARGS | METH_KEYWORDS,
   "open(name, verify=False, wait=None, copy_on_write=False) -> Dataset (wait=SECONDS: "
   "until it is ready; copy_on_write: a private, writable view)"},
  {"stat", py_stat, METH_VARARGS, "stat(name) -> dict"},
  {"ls", (PyCFunction)(void (*)(void))py_ls, METH_VARARGS | METH_KEYWORDS,
   "ls(all=False) -> {'sections': [...]}"},
  {"rm", (PyCFunction)(void (*)(void))py_rm, METH_VARARGS | METH_KEYWORDS,
   "rm(name, force=False) -> None; rm(abandoned=True) -> {'removed': [...], 'freed_bytes': N}"},
  {"parse_size", py_parse_size, METH_O, "parse_size('64M') -> 67108864"},
  {"create", (PyCFunction)(void (*)(void))py_create, METH_VARARGS | METH_KEYWORDS,
   "create(name, size=None, dtype=None, shape=None, order='C', mode=0o600, group=None, "
   "large_pages='auto', replace=False, remove_on_exit=False) -> writable Dataset; fill it "
   "(memoryview, array()), then publish()"},
  {"_publish", (PyCFunction)(void (*)(void))py_publish, METH_VARARGS | METH_KEYWORDS,
   "_publish(name, obj, dtype=None, shape=None, order='C', format='auto', mode=0o600, "
   "group=None, large_pages='auto', replace=False, remove_on_exit=False) -> dict "
   "(bulkmap.publish is the public form)"},
  {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bulkmap",
                                    "libbulkmap from Python (see the bulkmap package).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bulkmap(void) {
  PyObject *m;
  if (PyType_Ready(&dataset_type) < 0 || PyType_Ready(&private_type) < 0) return NULL;
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
