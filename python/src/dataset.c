/* bulkmap.Dataset and open(): a checked view of a ready dataset's payload (or a writer's,
 * from create()), its lifetime, the buffer protocol, and open(wait=). */
#include "_bulkmap.h"

int dataset_live(dataset_obj *self) {
  if (self->ds == NULL || self->closing) {
    PyErr_SetString(PyExc_ValueError, "the dataset is closed");
    return 0;
  }
  return 1;
}

/* Starts a call that releases the GIL (0), or refuses it on a closed dataset (-1). */
int dataset_enter_call(dataset_obj *self) {
  if (!dataset_live(self)) return -1;
  self->busy++;
  Py_INCREF(self);
  return 0;
}

void dataset_leave_call(dataset_obj *self) {
  self->busy--;
  Py_DECREF(self);
}

void dataset_release(dataset_obj *self) {
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
  if (err != 0) return raise_bm(PyUnicode_AsUTF8(self->name), err, os);
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
int dataset_tensors(dataset_obj *self, bm_tensor_t **t, size_t *n) {
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

dataset_obj *dataset_new(const char *name) {
  dataset_obj *obj = PyObject_New(dataset_obj, &dataset_type);
  if (obj == NULL) return NULL;
  obj->ds = NULL;
  obj->exports = obj->busy = 0;
  obj->closing = 0;
  memset(&obj->view, 0, sizeof(obj->view));
  dataset_typed_init(obj, NULL, 0, 0);
  obj->lock = PyThread_allocate_lock();
  obj->name = PyUnicode_FromString(name);
  if (obj->name == NULL || obj->lock == NULL) {
    if (obj->lock == NULL && !PyErr_Occurred()) PyErr_NoMemory();
    Py_DECREF(obj);
    return NULL;
  }
  return obj;
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

PyTypeObject dataset_type = {
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
    raise_bm(name, err, os);
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

PyObject *py_open(PyObject *self, PyObject *args, PyObject *kw) {
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
  if (err != 0) return raise_bm(name, err, os);
  if ((obj = dataset_new(name)) == NULL) {
    bm_view_unmap(&view);
    bm_dataset_close(ds);
    return NULL;
  }
  obj->ds = ds;
  obj->view = view;
  dataset_typed_init(obj, &info, verify, copy_on_write);
  return (PyObject *)obj;
}
