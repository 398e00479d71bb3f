/* stat, ls, rm: the named sections on this machine (bm_dataset_open with any state,
 * bm_section_list, bm_section_remove, bm_dataset_reclaim). */
#include "_bulkmap.h"

/* ---------------------------------------------------------------------------------------
 * stat, ls, rm. */
PyObject *py_stat(PyObject *self, PyObject *args) {
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
  if (err != 0) return raise_bm(name, err, os);
  if (info.state == BM_STATE_CORRUPT) {
    bm_dataset_close(ds);
    return raise_msg(name, BM_ECORRUPT, 0, bm_strerror(BM_ECORRUPT)); /* as the tool says it */
  }
  d = info_dict(&info, 1, -1);
  /* safetensors: tensors[], as stat --json (docs/design.md section 6). */
  if (d != NULL && set_tensors_item(d, ds, &info, name) < 0) Py_CLEAR(d);
  Py_BEGIN_ALLOW_THREADS
  bm_dataset_close(ds);
  Py_END_ALLOW_THREADS
  return d;
}

PyObject *py_ls(PyObject *self, PyObject *args, PyObject *kw) {
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
    if ((d = section_dict(&v[i])) == NULL || PyList_Append(list, d) < 0) goto fail;
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
    if ((d = reclaimed_dict(&v[i])) == NULL || PyList_Append(list, d) < 0) goto fail;
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

PyObject *py_rm(PyObject *self, PyObject *args, PyObject *kw) {
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
  if (err != 0) return raise_bm(name, err, os);
  Py_RETURN_NONE;
}
