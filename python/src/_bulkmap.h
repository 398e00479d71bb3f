/* The private header of bulkmap._bulkmap, the CPython binding of libbulkmap: what its files
 * share. The binding by topic:
 *   module.c    the method table, the types and bulkmap.Error registered (PyInit__bulkmap)
 *   errors.c    bulkmap.Error and the words of each call's failures
 *   args.c      Python arguments into the library's values (paths, sizes, options)
 *   interrupt.c the clock, and signal handlers run during calls made without the GIL
 *   dicts.c     results as dicts with the tool's --json keys (info, layout, ls, rm)
 *   scan.c      scan, _scan_range, _fold
 *   sections.c  stat, ls, rm
 *   dataset.c   bulkmap.Dataset (its lifetime, the buffer protocol) and open()
 *   arrays.c    numpy arrays and torch tensors of a Dataset; dtype= and shape=
 *   publish.c   load, create, _publish, Dataset.publish, remove_on_exit=
 * Names shared here have no prefix (set_item, raise_msg, as they were in the one file this
 * came from): the module is built with hidden visibility and the library's own names all
 * begin with bm_, so none leaves the module or meets the library's. */
#ifndef BULKMAP_PYTHON_H
#define BULKMAP_PYTHON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <string.h>
#include <time.h>
#include "bulkmap.h"

/* errors.c */
extern PyObject *bm_error; /* bulkmap.Error */
PyObject *raise_msg(const char *context, int err, int os, const char *msg);
PyObject *raise_bm(const char *context, int err, int os);
int check_name(const char *name); /* 0, or -1 with bulkmap.Error ENAME raised */

/* args.c */
int to_path(PyObject *o, PyObject **out);
int to_u64(PyObject *o, const char *what, uint64_t *out);
int to_size(PyObject *o, const char *what, uint64_t *out);
int to_threads(PyObject *o, unsigned *out);
int to_literal(PyObject *o, PyObject **keep, bm_literal_t *lit);
int to_large(const char *s, int *out);   /* "auto" "on" "off": BM_LARGE_* */
const char *large_name(int mode);        /* BM_LARGE_* as to_large reads it; NULL: none */
int to_format(const char *s, bm_format_t *out);  /* "auto" "raw" "npy" "safetensors": BM_FORMAT_* */
int make_opts(PyObject *mode_obj, PyObject *group_obj, const char *large, int replace,
              bm_dataset_opts_t *o);
PyObject *py_parse_size(PyObject *self, PyObject *arg);

/* interrupt.c: a long call without the GIL, its progress callback running Python's signal
 * handlers (poll_begin releases the GIL, poll_end takes it back). */
typedef struct {
  PyThreadState *ts;
  volatile sig_atomic_t cancel;
} poll_t;
double now(void);
void poll_begin(poll_t *p);
void poll_end(poll_t *p);
int poll_signals(uint64_t done, uint64_t total, void *arg);

/* dicts.c */
int set_item(PyObject *d, const char *key, PyObject *v);
PyObject *hex64(uint64_t v);
PyObject *text(const char *s);
PyObject *rate(uint64_t bytes, double secs);
PyObject *shape_list(const bm_layout_t *l);
PyObject *layout_obj(const bm_layout_t *l);
int set_format_items(PyObject *d, int state, int format, int has_layout,
                     const bm_layout_t *l);
PyObject *tensors_list(const bm_tensor_t *t, size_t n);
int set_tensors_item(PyObject *d, bm_dataset_t *ds, const bm_dataset_info_t *info,
                     const char *name);
PyObject *info_dict(const bm_dataset_info_t *info, int full, double secs);
PyObject *section_dict(const bm_section_info_t *s);
PyObject *reclaimed_dict(const bm_reclaimed_t *r);

/* scan.c */
PyObject *py_scan(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_scan_range(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_fold(PyObject *self, PyObject *arg);

/* sections.c */
PyObject *py_stat(PyObject *self, PyObject *args);
PyObject *py_ls(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_rm(PyObject *self, PyObject *args, PyObject *kw);

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

/* dataset.c */
extern PyTypeObject dataset_type;
int dataset_live(dataset_obj *self);
int dataset_enter_call(dataset_obj *self);
void dataset_leave_call(dataset_obj *self);
void dataset_release(dataset_obj *self);
int dataset_tensors(dataset_obj *self, bm_tensor_t **t, size_t *n);
/* A Dataset named `name` that holds no dataset yet (no handle, no view, a raw payload), for
 * open() and create() to fill in; NULL with an exception. */
dataset_obj *dataset_new(const char *name);
PyObject *py_open(PyObject *self, PyObject *args, PyObject *kw);

/* arrays.c: the Dataset's methods and getters for arrays and tensors, and the type of the
 * private mappings tensors() are made on. */
extern PyTypeObject private_type;
int dtype_layout(PyObject *o, bm_layout_t *l);
int shape_layout(PyObject *shape, const char *order, bm_layout_t *l);
PyObject *dataset_array(dataset_obj *self, PyObject *args, PyObject *kw);
PyObject *dataset_arrays(dataset_obj *self, PyObject *unused);
PyObject *dataset_private_view(dataset_obj *self, PyObject *unused);
PyObject *dataset_tensors_method(dataset_obj *self, PyObject *args, PyObject *kw);
PyObject *dataset_tensor_method(dataset_obj *self, PyObject *args, PyObject *kw);
PyObject *dataset_get_format(dataset_obj *self, void *closure);
PyObject *dataset_get_dtype(dataset_obj *self, void *closure);
PyObject *dataset_get_dtypes(dataset_obj *self, void *closure);
PyObject *dataset_get_layout(dataset_obj *self, void *closure);
PyObject *dataset_get_metadata(dataset_obj *self, void *closure);

/* publish.c */
PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_create(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_publish(PyObject *self, PyObject *args, PyObject *kw);
PyObject *dataset_publish(dataset_obj *self, PyObject *args, PyObject *kw);

#endif
