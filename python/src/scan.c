/* scan, _scan_range and _fold: bm_scan on the library's pool, and the fold of a Dask
 * scan's parts (bm_scan_part_fold). */
#include "_bulkmap.h" /* Python.h first: it sets the feature macros */
#include <limits.h>
#include <unistd.h>

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

static PyObject *result_dict(const scan_args_t *a, const bm_scan_result_t *r, PyObject *path_obj,
                             double secs);

static PyObject *scan_run(scan_args_t *a, PyObject *path_obj) {
  const char *path = PyBytes_AS_STRING(a->path);
  bm_source_t *src = NULL;
  bm_scan_result_t r;
  uint64_t size = 0;
  poll_t poll;
  PyObject *d = NULL;
  int err, os = 0;
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
  d = result_dict(a, &r, path_obj, secs);
out:
  bm_scan_part_free(r.part);
  Py_BEGIN_ALLOW_THREADS
  bm_source_close(src);
  Py_END_ALLOW_THREADS
  return d;
}

/* The tool's --json keys of one scan (docs/json.md). */
static PyObject *result_dict(const scan_args_t *a, const bm_scan_result_t *rp, PyObject *path_obj,
                             double secs) {
  bm_scan_result_t r = *rp;
  int part = (a->o.flags & BM_SCAN_PART) != 0;
  PyObject *d;
  if ((d = PyDict_New()) == NULL) return NULL;
  if (set_item(d, "file", Py_NewRef(path_obj)) < 0 ||
      set_item(d, "offset", PyLong_FromUnsignedLongLong(r.offset)) < 0 ||
      set_item(d, "length", PyLong_FromUnsignedLongLong(r.length)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(r.bytes)) < 0 ||
      ((a->o.flags & BM_SCAN_HASH) && set_item(d, "xxh3", hex64(r.xxh3)) < 0) ||
      ((a->o.flags & BM_SCAN_LINES) && set_item(d, "lines", PyLong_FromUnsignedLongLong(r.lines)) < 0) ||
      (a->o.n_literals && set_item(d, "count", PyLong_FromUnsignedLongLong(r.counts[0])) < 0) ||
      (secs >= 0 && set_item(d, "seconds", PyFloat_FromDouble(secs)) < 0) ||
      (secs >= 0 && set_item(d, "bytes_per_second", rate(r.length, secs)) < 0) ||
      set_item(d, "window", PyLong_FromUnsignedLongLong(r.window)) < 0 ||
      set_item(d, "threads", PyLong_FromUnsignedLong(r.threads)) < 0 ||
      set_item(d, "peak_mapped_bytes", PyLong_FromUnsignedLongLong(r.peak_mapped)) < 0 ||
      (part && r.part != NULL && set_item(d, "part", part_bytes(r.part)) < 0))
    Py_CLEAR(d);
  return d;
}

/* scan of a stream: a file descriptor ("-" is standard input), read, not mapped
 * (bm_scan_fd). The descriptor stays open; it is read from where it stands. */
static PyObject *scan_fd(scan_args_t *a, int fd, PyObject *path_obj) {
  bm_scan_result_t r;
  poll_t poll;
  PyObject *d = NULL;
  double t0, secs;
  int err;
  memset(&r, 0, sizeof(r));
  a->o.progress = poll_signals;
  a->o.progress_arg = &poll;
  a->o.cancel = &poll.cancel;
  t0 = now();
  poll_begin(&poll);
  err = bm_scan_fd(fd, &a->o, &r);
  poll_end(&poll);
  secs = now() - t0;
  if (PyErr_Occurred()) goto out;
  if (err != 0) {
    PyObject *ctx = PyObject_Str(path_obj);
    raise_bm(ctx != NULL ? PyUnicode_AsUTF8(ctx) : "-", err, r.os_error);
    Py_XDECREF(ctx);
    goto out;
  }
  d = result_dict(a, &r, path_obj, secs);
out:
  bm_scan_part_free(r.part);
  return d;
}

/* scan of several files at once (bm_scan_files), as the tool's scan of several FILEs:
 * {"files": [one dict a file scanned, in order], "total": {...}}, and under "error" the
 * first file that could not be scanned ({"code", "message", "context"}; the others go on). */
static PyObject *scan_many(scan_args_t *a, PyObject *seq) {
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i;
  PyObject **items = PySequence_Fast_ITEMS(seq), **paths, *d = NULL, *files = NULL, *total = NULL;
  bm_scan_file_t *f;
  uint64_t bytes = 0, lines = 0, count = 0;
  poll_t poll;
  double t0, secs;
  int err, first = 0;

  f = PyMem_Calloc((size_t)(n ? n : 1), sizeof(*f));
  paths = PyMem_Calloc((size_t)(n ? n : 1), sizeof(*paths));
  if (f == NULL || paths == NULL) {
    PyErr_NoMemory();
    goto out;
  }
  for (i = 0; i < n; i++) {
    if (to_path(items[i], &paths[i]) < 0) goto out;
    f[i].path = PyBytes_AS_STRING(paths[i]);
  }
  a->o.progress = poll_signals;
  a->o.progress_arg = &poll;
  a->o.cancel = &poll.cancel;
  t0 = now();
  poll_begin(&poll);
  err = bm_scan_files(f, (size_t)n, &a->o);
  poll_end(&poll);
  secs = now() - t0;
  if (PyErr_Occurred()) goto out;
  if (err != 0) { /* a file's failure is that file's status; else the call's own */
    for (i = 0; i < n && f[i].status != err; i++) {}
    if (i == n) {
      raise_bm("scan", err, 0);
      goto out;
    }
  }
  if ((files = PyList_New(0)) == NULL || (d = PyDict_New()) == NULL || (total = PyDict_New()) == NULL)
    goto fail;
  for (i = 0; i < n; i++) {
    PyObject *one;
    if (f[i].status != 0) {
      if (!first) {
        PyObject *e = PyDict_New(), *ctx = PyUnicode_DecodeFSDefault(f[i].path);
        if (e == NULL || ctx == NULL ||
            set_item(e, "code", PyUnicode_FromString(bm_err_name(f[i].status))) < 0 ||
            set_item(e, "message", PyUnicode_FromString(bm_strerror(f[i].status))) < 0 ||
            set_item(e, "os_error", PyLong_FromLong(f[i].result.os_error)) < 0 ||
            set_item(e, "context", ctx) < 0 || set_item(d, "error", e) < 0) {
          Py_XDECREF(e);
          goto fail;
        }
        first = 1;
      }
      continue;
    }
    one = result_dict(a, &f[i].result, items[i], -1); /* the time is the call's: in total */
    if (one == NULL || PyList_Append(files, one) < 0) {
      Py_XDECREF(one);
      goto fail;
    }
    Py_DECREF(one);
    bytes += f[i].result.length;
    lines += f[i].result.lines;
    if (a->o.n_literals) count += f[i].result.counts[0];
  }
  if (set_item(total, "bytes", PyLong_FromUnsignedLongLong(bytes)) < 0 ||
      ((a->o.flags & BM_SCAN_LINES) && set_item(total, "lines", PyLong_FromUnsignedLongLong(lines)) < 0) ||
      (a->o.n_literals && set_item(total, "count", PyLong_FromUnsignedLongLong(count)) < 0) ||
      set_item(total, "seconds", PyFloat_FromDouble(secs)) < 0 ||
      set_item(d, "files", Py_NewRef(files)) < 0 || set_item(d, "total", Py_NewRef(total)) < 0)
    goto fail;
  goto out;
fail:
  Py_CLEAR(d);
out:
  Py_XDECREF(files);
  Py_XDECREF(total);
  if (f != NULL)
    for (i = 0; i < n; i++) bm_scan_part_free(f[i].result.part);
  if (paths != NULL)
    for (i = 0; i < n; i++) Py_XDECREF(paths[i]);
  PyMem_Free(f);
  PyMem_Free(paths);
  return d;
}

/* What scan was given: a path, "-" (standard input), a file descriptor, an object with
 * fileno() (a file, a socket, a pipe's end), or a list or tuple of paths. For a file object
 * that can seek, the descriptor is put where the object stands (its read-ahead is not
 * lost). Returns 0 path, 1 fd (*fd set), 2 sequence (*seq set), -1 with an exception. */
static int scan_target(PyObject *o, int *fd, PyObject **seq) {
  if (PyList_Check(o) || PyTuple_Check(o)) {
    *seq = PySequence_Fast(o, "scan: paths");
    return *seq != NULL ? 2 : -1;
  }
  if (PyLong_Check(o) && !PyBool_Check(o)) {
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v > INT_MAX) {
      PyErr_Format(PyExc_ValueError, "scan: file descriptor %ld is not one", v);
      return -1;
    }
    *fd = (int)v;
    return 1;
  }
  if ((PyUnicode_Check(o) && PyUnicode_CompareWithASCIIString(o, "-") == 0) ||
      (PyBytes_Check(o) && strcmp(PyBytes_AS_STRING(o), "-") == 0)) {
    *fd = 0;
    return 1;
  }
  if (!PyUnicode_Check(o) && !PyBytes_Check(o) && PyObject_HasAttrString(o, "fileno") &&
      !PyObject_HasAttrString(o, "__fspath__")) {
    PyObject *r = PyObject_CallMethod(o, "fileno", NULL), *seekable;
    long v;
    if (r == NULL) return -1;
    v = PyLong_AsLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0 || v > INT_MAX) {
      PyErr_Format(PyExc_ValueError, "scan: fileno() gave %ld", v);
      return -1;
    }
    *fd = (int)v;
    seekable = PyObject_HasAttrString(o, "seekable") ? PyObject_CallMethod(o, "seekable", NULL) : NULL;
    if (seekable == NULL) PyErr_Clear();
    if (seekable != NULL && PyObject_IsTrue(seekable) == 1 && PyObject_HasAttrString(o, "tell")) {
      PyObject *pos = PyObject_CallMethod(o, "tell", NULL);
      long long at = pos != NULL ? PyLong_AsLongLong(pos) : -1;
      Py_XDECREF(pos);
      if (at < 0 || lseek(*fd, (off_t)at, SEEK_SET) < 0) {
        Py_XDECREF(seekable);
        if (!PyErr_Occurred()) PyErr_SetFromErrno(PyExc_OSError);
        return -1;
      }
    }
    Py_XDECREF(seekable);
    return 1;
  }
  return 0;
}

static PyObject *scan_common(PyObject *args, PyObject *kw, int part) {
  static char *kwlist[] = {"path", "offset", "length", "hash", "lines", "count", "window",
                           "threads", NULL};
  PyObject *path_obj, *offset = NULL, *length = Py_None, *count = Py_None, *window = Py_None,
                      *threads = Py_None, *r = NULL;
  int hash = 1, lines = 1, kind, fd = -1;
  PyObject *seq = NULL;
  scan_args_t a;

  memset(&a, 0, sizeof(a));
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOppOOO:scan", kwlist, &path_obj, &offset,
                                   &length, &hash, &lines, &count, &window, &threads))
    return NULL;
  if ((kind = part ? 0 : scan_target(path_obj, &fd, &seq)) < 0) return NULL;
  if (kind == 0 && to_path(path_obj, &a.path) < 0) return NULL;
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
  if (kind == 1) {
    /* "file": "-", the descriptor, or a file object's name */
    PyObject *name = PyObject_HasAttrString(path_obj, "name") ? PyObject_GetAttrString(path_obj, "name") : NULL;
    if (name != NULL && !PyUnicode_Check(name)) Py_CLEAR(name);
    PyErr_Clear();
    r = scan_fd(&a, fd, name != NULL ? name : path_obj);
    Py_XDECREF(name);
    goto out;
  }
  if (kind == 2) {
    r = scan_many(&a, seq);
    goto out;
  }
  if (PyUnicode_Check(path_obj)) Py_INCREF(path_obj);
  else path_obj = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(a.path));
  if (path_obj == NULL) goto out;
  r = scan_run(&a, path_obj);
  Py_DECREF(path_obj);
out:
  Py_XDECREF(seq);
  Py_XDECREF(a.path);
  Py_XDECREF(a.lit);
  return r;
}

PyObject *py_scan(PyObject *self, PyObject *args, PyObject *kw) {
  return scan_common(args, kw, 0);
}

PyObject *py_scan_range(PyObject *self, PyObject *args, PyObject *kw) {
  return scan_common(args, kw, 1);
}

/* _fold(parts): parts (bytes from _scan_range's "part") of consecutive ranges of one file,
 * the first at the file's start, folded in order by the library (bm_scan_part_fold).
 * Returns one tuple a range: each literal's count of the matches that begin in that range,
 * given where the ranges before it left the search. */
PyObject *py_fold(PyObject *self, PyObject *arg) {
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
