/* Arguments: Python values into what the library takes (sizes, thread counts, literals),
 * with the ValueError or TypeError that names the argument refused. */
#include "_bulkmap.h"

/* ---------------------------------------------------------------------------------------
 * Argument helpers. */
int to_u64(PyObject *o, const char *what, uint64_t *out) {
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

/* large_pages=: the tool's --large-pages words, one a bm_large_mode_t. */
static const char *const large_names[] = {
  [BM_LARGE_OFF] = "off", [BM_LARGE_AUTO] = "auto", [BM_LARGE_ON] = "on"};

int to_large(const char *s, int *out) {
  int m;
  for (m = 0; m < (int)(sizeof(large_names) / sizeof(large_names[0])); m++)
    if (strcmp(s, large_names[m]) == 0) {
      *out = m;
      return 0;
    }
  PyErr_Format(PyExc_ValueError, "large_pages '%s': expected \"auto\", \"on\" or \"off\"", s);
  return -1;
}

const char *large_name(int mode) {
  if (mode < 0 || mode >= (int)(sizeof(large_names) / sizeof(large_names[0]))) return NULL;
  return large_names[mode];
}

/* format=: the tool's --format words (bm_format_from_name). */
int to_format(const char *s, bm_format_t *out) {
  if (bm_format_from_name(s, out) == 0) return 0;
  PyErr_Format(PyExc_ValueError, "format '%s': expected \"auto\", \"raw\", \"npy\" or "
               "\"safetensors\"", s);
  return -1;
}

/* A path argument (str, bytes, os.PathLike) as the bytes of its file system encoding, in
 * *out; not empty. */
int to_path(PyObject *o, PyObject **out) {
  if (!PyUnicode_FSConverter(o, out)) return -1;
  if (PyBytes_GET_SIZE(*out) == 0) {
    PyErr_SetString(PyExc_ValueError, "path is an empty string");
    Py_CLEAR(*out);
    return -1;
  }
  return 0;
}

/* mode, group, large_pages and replace into the library's dataset options. */
int make_opts(PyObject *mode_obj, PyObject *group_obj, const char *large, int replace,
                     bm_dataset_opts_t *o) {
  uint64_t mode = 0; /* 0: 0600 for a new dataset, the old one's for a replace */
  memset(o, 0, sizeof(*o));
  if (to_large(large, &o->large) < 0) return -1;
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

/* SIZE: an int, or a string as the tool takes it ("64M"). */
int to_size(PyObject *o, const char *what, uint64_t *out) {
  if (PyUnicode_Check(o)) {
    const char *s = PyUnicode_AsUTF8(o);
    int err;
    if (s == NULL) return -1;
    if ((err = bm_size_parse(s, out)) != 0) {
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
int to_threads(PyObject *o, unsigned *out) {
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
int to_literal(PyObject *o, PyObject **keep, bm_literal_t *lit) {
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

PyObject *py_parse_size(PyObject *self, PyObject *arg) {
  uint64_t v;
  if (to_size(arg, "size", &v) < 0) return NULL;
  return PyLong_FromUnsignedLongLong(v);
}
