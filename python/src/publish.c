/* Making datasets: load (from a file), create (a writable Dataset filled, then published),
 * _publish (from memory), and remove_on_exit=. */
#include "_bulkmap.h"

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

PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "name", "large_pages", "mode", "group", "threads",
                           "replace", "remove_on_exit", "format", "place", NULL};
  PyObject *path_obj, *pathb = NULL, *mode_obj = NULL, *group_obj = Py_None, *threads = Py_None,
                      *place_obj = Py_None, *placeb = NULL, *r = NULL;
  const char *name, *large = NULL, *path, *format_name = NULL, *mount = NULL;
  bm_dataset_t *ds = NULL;
  bm_load_opts_t lo;
  bm_load_result_t res;
  bm_preflight_t room;
  poll_t poll;
  int err, os, late, replace = 0, remove_on_exit = 0, shm = -1;
  bm_format_t format = BM_FORMAT_AUTO;

  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|zOOOppzO:load", kwlist, &path_obj, &name, &large,
                                   &mode_obj, &group_obj, &threads, &replace, &remove_on_exit,
                                   &format_name, &place_obj))
    return NULL;
  bm_load_opts_init(&lo);
  memset(&res, 0, sizeof(res));
  memset(&room, 0, sizeof(room));
  /* format=: as the tool's --format (bm_format_from_name). */
  if (format_name != NULL && to_format(format_name, &format) < 0) return NULL;
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
    if (!shm) mount = PyBytes_AS_STRING(placeb);
  }
  if (make_opts(mode_obj, group_obj, large != NULL ? large : "auto", replace, &lo.dataset) < 0)
    goto done;
  lo.dataset.mount = mount;
  if (to_threads(threads, &lo.threads) < 0) goto done;
  if (check_name(name) < 0) goto done;
  if (to_path(path_obj, &pathb) < 0) goto done;
  path = PyBytes_AS_STRING(pathb);
  lo.dataset.preflight = &room;
  lo.format = format;
  lo.progress = poll_signals;
  lo.progress_arg = &poll;
  lo.cancel = &poll.cancel;

  /* name and path point into objects the arguments hold until we return. */
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
    raise_bm(name, err, err == BM_ECANCELED ? 0 : os); /* the library's words and subject */
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

/* publish(format="auto") of a dataset from create(): its header judged (the layout it was
 * made with, or by the magic), the write view unmapped, the payload hashed from the section
 * and published `ready` by the library; the Dataset then reads it as open() would. Refused
 * (BufferError) while an array or memoryview could still write into it. */
static PyObject *dataset_publish_busy(dataset_obj *self, PyObject *args, PyObject *kw);

/* publish() releases the GIL with self->ds in use: it counts as a call in progress, so a
 * close() (or a with block left) in another thread waits for it instead of freeing the
 * dataset under it. */
PyObject *dataset_publish(dataset_obj *self, PyObject *args, PyObject *kw) {
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
  bm_format_t format;
  int err, os = 0, step = 0;
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
  else if (to_format(fname, &format) < 0) return NULL;
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
 * Publishing from memory (docs/design.md section 6): publish() is bm_dataset_publish_buffer, one
 * library call (checked, created, copied in, hashed from the section, published); create()
 * is bm_dataset_create and a shared-writable view the caller fills, then Dataset.publish().
 * replace= is bm_dataset_opts_t.replace, remove_on_exit= bm_dataset_remove_on_exit
 * (bind_to_process; with replace, once published). */

/* A Dataset over a writer's handle and its shared-writable view (create()). */
static PyObject *dataset_wrap_writer(bm_dataset_t *ds, bm_view_t *view, const char *name) {
  dataset_obj *obj = dataset_new(name);
  if (obj == NULL) {
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

PyObject *py_create(PyObject *self, PyObject *args, PyObject *kw) {
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
  if (check_name(name) < 0) return NULL;
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
  if (err != 0) return raise_bm(name, err, os);
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
PyObject *py_publish(PyObject *self, PyObject *args, PyObject *kw) {
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
  bm_publish_opts_init(&po);
  memset(&res, 0, sizeof(res));
  if (make_opts(mode_obj, group_obj, large, replace, &po.dataset) < 0) return NULL;
  if (check_name(name) < 0) return NULL;
  if (to_format(fname, &po.format) < 0) return NULL;
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
    raise_bm(name, err, os);
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

