/* Dicts: the library's results as Python dicts with the keys of the tool's --json output
 * (docs/json.md): large-page reports, layouts, tensors, dataset info, ls and rm entries. */
#include "_bulkmap.h"

int set_item(PyObject *d, const char *key, PyObject *v) {
  int r;
  if (v == NULL) return -1;
  r = PyDict_SetItemString(d, key, v);
  Py_DECREF(v);
  return r;
}

PyObject *hex64(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  return PyUnicode_FromString(buf);
}

/* Text from the library that may hold any bytes (names, sources): invalid UTF-8 shows as
 * U+FFFD, as in the tool's JSON. */
PyObject *text(const char *s) {
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

PyObject *rate(uint64_t bytes, double secs) {
  return PyLong_FromDouble(secs > 0 ? (double)(uint64_t)((double)bytes / secs) : 0);
}

/* ---------------------------------------------------------------------------------------
 * Dataset dicts (the tool's load/stat keys). */
static PyObject *large_dict(const bm_large_t *l) {
  char why[1024];
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  if (set_item(d, "requested", large_name(l->requested) != NULL
                                   ? PyUnicode_FromString(large_name(l->requested))
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

/* The shape as a list of ints. */
PyObject *shape_list(const bm_layout_t *l) {
  PyObject *shape = PyList_New((Py_ssize_t)l->ndim);
  uint32_t i;
  if (shape == NULL) return NULL;
  for (i = 0; i < l->ndim; i++) {
    PyObject *v = PyLong_FromUnsignedLongLong(l->shape[i]);
    if (v == NULL) {
      Py_DECREF(shape);
      return NULL;
    }
    PyList_SET_ITEM(shape, i, v);
  }
  return shape;
}

/* The layout object: {dtype shape order data_offset data_length descr}. */
PyObject *layout_obj(const bm_layout_t *l) {
  char descr[8];
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  bm_dtype_descr(l, descr, sizeof(descr));
  if (set_item(d, "dtype", PyUnicode_FromString(bm_dtype_name(l->dtype))) < 0 ||
      set_item(d, "shape", shape_list(l)) < 0 ||
      set_item(d, "order", PyUnicode_FromString(l->order == 'F' ? "F" : "C")) < 0 ||
      set_item(d, "data_offset", PyLong_FromUnsignedLongLong(l->data_offset)) < 0 ||
      set_item(d, "data_length", PyLong_FromUnsignedLongLong(l->data_length)) < 0 ||
      set_item(d, "descr", PyUnicode_FromString(descr)) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

/* d["format"] ("raw" "npy" "safetensors"; None for what is not a readable dataset) and
 * d["layout"] (None when the payload is not one array). */
int set_format_items(PyObject *d, int state, int format, int has_layout,
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
PyObject *tensors_list(const bm_tensor_t *t, size_t n) {
  PyObject *list = PyList_New(0), *d = NULL;
  size_t i;
  if (list == NULL) return NULL;
  for (i = 0; i < n; i++) {
    if ((d = PyDict_New()) == NULL) goto fail;
    if (set_item(d, "name", text(t[i].name)) < 0 ||
        set_item(d, "dtype", PyUnicode_FromString(bm_dtype_name(t[i].layout.dtype))) < 0 ||
        set_item(d, "shape", shape_list(&t[i].layout)) < 0 ||
        set_item(d, "offset", PyLong_FromUnsignedLongLong(t[i].layout.data_offset)) < 0 ||
        set_item(d, "length", PyLong_FromUnsignedLongLong(t[i].layout.data_length)) < 0 ||
        PyList_Append(list, d) < 0)
      goto fail;
    Py_CLEAR(d);
  }
  return list;
fail:
  Py_XDECREF(d);
  Py_DECREF(list);
  return NULL;
}

/* d["tensors"] for a ready safetensors dataset (as `stat --json`): read from the header in
 * the payload and checked again against the trailer by the library. The caller holds the
 * GIL and whatever keeps ds alive; the library call runs without the GIL. */
int set_tensors_item(PyObject *d, bm_dataset_t *ds, const bm_dataset_info_t *info,
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
PyObject *info_dict(const bm_dataset_info_t *info, int full, double secs) {
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
      (secs >= 0 && set_item(d, "bytes_per_second", rate(info->bytes, secs)) < 0) ||
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

/* An entry of ls()'s "sections", as `ls --json` shows it: name place bytes state page_size
 * owner mode, then writer_pid created (None for what is not a dataset), maps (None: not
 * known), retired_bytes (datasets only), format layout. */
PyObject *section_dict(const bm_section_info_t *s) {
  int dataset = s->state != BM_STATE_FOREIGN && s->state != BM_STATE_UNREADABLE;
  char mode[8];
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  snprintf(mode, sizeof(mode), "%04o", s->mode);
  if (set_item(d, "name", text(s->name)) < 0 || set_item(d, "place", text(s->place)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(s->bytes)) < 0 ||
      set_item(d, "state", PyUnicode_FromString(bm_state_name(s->state))) < 0 ||
      set_item(d, "page_size", PyLong_FromUnsignedLongLong(s->page_size)) < 0 ||
      set_item(d, "owner", text(s->owner)) < 0 ||
      set_item(d, "mode", PyUnicode_FromString(mode)) < 0 ||
      set_item(d, "writer_pid", dataset ? PyLong_FromLongLong(s->writer_pid) : Py_NewRef(Py_None)) < 0 ||
      set_item(d, "created", dataset ? PyLong_FromLongLong(s->created) : Py_NewRef(Py_None)) < 0 ||
      set_item(d, "maps", s->maps >= 0 ? PyLong_FromLongLong(s->maps) : Py_NewRef(Py_None)) < 0 ||
      (dataset && set_item(d, "retired_bytes", PyLong_FromUnsignedLongLong(s->retired_bytes)) < 0) ||
      set_format_items(d, s->state, s->format, s->has_layout, &s->layout) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

/* An entry of rm(abandoned=True)'s "removed", as `rm --abandoned --json` shows it: name
 * place bytes state writer_pid (None when not known). */
PyObject *reclaimed_dict(const bm_reclaimed_t *r) {
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  if (set_item(d, "name", text(r->name)) < 0 || set_item(d, "place", text(r->place)) < 0 ||
      set_item(d, "bytes", PyLong_FromUnsignedLongLong(r->bytes)) < 0 ||
      set_item(d, "state", PyUnicode_FromString(bm_state_name(r->state))) < 0 ||
      set_item(d, "writer_pid", r->writer_pid > 0 ? PyLong_FromLongLong(r->writer_pid)
                                                  : Py_NewRef(Py_None)) < 0) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}
