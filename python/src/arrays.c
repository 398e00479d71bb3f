/* Typed payloads: numpy arrays over a Dataset's view, and torch tensors over a private
 * (copy-on-write) mapping of their own; dtype= and shape= into the library's layouts. */
#include "_bulkmap.h"

/* ---------------------------------------------------------------------------------------
 * Arrays (docs/design.md section 6): numpy views of the payload, made by numpy from the library's
 * layouts. numpy.frombuffer(ds) holds an export of the Dataset for as long as the array
 * (and every view of it) lives, so the mapping stays and close() refuses (BufferError);
 * the view is read-only unless the Dataset's view is writable (copy_on_write, or create()
 * before publish). The dtypes numpy lacks (BF16, F8_*) come as the unsigned integers of
 * their size (bm_dtype_descr), named by Dataset.dtype / Dataset.dtypes. */

static PyObject *numpy_attr(const char *name) {
  PyObject *np = PyImport_ImportModule("numpy"), *a;
  if (np == NULL) return NULL;
  a = PyObject_GetAttrString(np, name);
  Py_DECREF(np);
  return a;
}

/* The shape as a tuple of ints. */
static PyObject *shape_tuple(const bm_layout_t *l) {
  PyObject *list = shape_list(l), *t;
  if (list == NULL) return NULL;
  t = PyList_AsTuple(list);
  Py_DECREF(list);
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
int dtype_layout(PyObject *o, bm_layout_t *l) {
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
int shape_layout(PyObject *shape, const char *order, bm_layout_t *l) {
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
PyObject *dataset_array(dataset_obj *self, PyObject *args, PyObject *kw) {
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
PyObject *dataset_arrays(dataset_obj *self, PyObject *unused) {
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

PyObject *dataset_get_format(dataset_obj *self, void *closure) {
  return PyUnicode_FromString(bm_format_name(self->format));
}

/* The library's name of the array's element type ("F32", "BF16"), or None. */
PyObject *dataset_get_dtype(dataset_obj *self, void *closure) {
  if (!self->has_layout) Py_RETURN_NONE;
  return PyUnicode_FromString(bm_dtype_name(self->layout.dtype));
}

/* safetensors: {name: the library's dtype name}; else None. */
PyObject *dataset_get_dtypes(dataset_obj *self, void *closure) {
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

PyTypeObject private_type = {
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
  bm_large_size_t ls;
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
  for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++)
    if (ls.size == H && ls.free != UINT64_MAX) l.pages_free = ls.free;
  l.reason = l.pages_free == 0 ? BM_REASON_POOL_EMPTY : BM_REASON_POOL_TOO_SMALL;
  snprintf(msg, sizeof(msg), "tensors(): the dataset is on large pages, and a private "
           "(copy-on-write) mapping of it reserves free huge pages of the pool for its writes, "
           "which the kernel refused: %s (bulkmap setup --large-pages SIZE grows the pool; "
           "arrays() reads it without a private mapping)", bm_large_describe(&l, why, sizeof(why)));
  return raise_msg(PyUnicode_AsUTF8(self->name), err, os, msg);
}

/* _private_view() -> a private (copy-on-write) mapping of the whole payload. */
PyObject *dataset_private_view(dataset_obj *self, PyObject *unused) {
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

PyObject *dataset_tensors_method(dataset_obj *self, PyObject *args, PyObject *kw) {
  return dataset_call_typed(self, "tensors", args, kw);
}

PyObject *dataset_tensor_method(dataset_obj *self, PyObject *args, PyObject *kw) {
  return dataset_call_typed(self, "tensor", args, kw);
}

/* _layout: the payload's one array as the Dataset knows it (the trailer's at open, the
 * writer's own before publish), as stat()'s "layout"; None when it holds none. */
PyObject *dataset_get_layout(dataset_obj *self, void *closure) {
  if (!self->has_layout) Py_RETURN_NONE;
  return layout_obj(&self->layout);
}

/* metadata: the safetensors header's __metadata__ from the compact layout the library kept
 * at publish (bm_dataset_metadata: the header is not parsed again); {} for other formats. */
PyObject *dataset_get_metadata(dataset_obj *self, void *closure) {
  bm_meta_t *m = NULL;
  size_t n = 0, i;
  PyObject *d;
  int err, os;
  if (dataset_enter_call(self) < 0) return NULL;
  if (self->format != BM_FORMAT_SAFETENSORS || self->writer) {
    dataset_leave_call(self);
    return PyDict_New();
  }
  Py_BEGIN_ALLOW_THREADS
  PyThread_acquire_lock(self->lock, WAIT_LOCK);
  err = bm_dataset_metadata(self->ds, &m, &n);
  os = err ? bm_last_os_error() : 0;
  PyThread_release_lock(self->lock);
  Py_END_ALLOW_THREADS
  dataset_leave_call(self);
  if (err != 0) return raise_bm(PyUnicode_AsUTF8(self->name), err, os);
  if ((d = PyDict_New()) == NULL) goto out;
  for (i = 0; i < n; i++) {
    /* JSON strings: UTF-8, lone surrogates (\ud800) kept as Python keeps them. */
    PyObject *k = PyUnicode_DecodeUTF8(m[i].key, (Py_ssize_t)m[i].key_len, "surrogatepass"),
             *v = PyUnicode_DecodeUTF8(m[i].value, (Py_ssize_t)m[i].value_len, "surrogatepass");
    if (k == NULL || v == NULL || PyDict_SetItem(d, k, v) < 0) {
      Py_XDECREF(k);
      Py_XDECREF(v);
      Py_CLEAR(d);
      goto out;
    }
    Py_DECREF(k);
    Py_DECREF(v);
  }
out:
  bm_metadata_free(m);
  return d;
}
