/* bulkmap._bulkmap: the CPython binding of libbulkmap (docs/design.md section 5), a binding only:
 * scan is bm_scan, load is bm_dataset_load, the Dask fold is bm_scan_part_fold; no thread,
 * window or kernel code lives here. scan, load, open, stat, ls, rm return the tool's JSON
 * keys as dicts; open() gives a read-only Dataset that exports the buffer protocol over the
 * section's mapping (zero copy) and refuses to close while an export or a call on it lives.
 * The GIL is released for every scan, load and verification. */
#include "_bulkmap.h"

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
