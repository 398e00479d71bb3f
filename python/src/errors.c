/* Errors: bulkmap.Error, raised with the library's code, the OS error behind it, the path
 * or name, and the library's words for the failure (bm_errmsg: the same words the tool
 * prints). Only the binding's own argument errors are worded here. */
#include "_bulkmap.h"

PyObject *bm_error; /* bulkmap.Error */

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

/* bulkmap.Error("CONTEXT: TEXT") with .code, .os_error and .context. */
static PyObject *raise_text(const char *context, int err, int os, const char *text_utf8) {
  PyObject *text, *exc;
  text = PyUnicode_FromFormat("%s: %s", context, text_utf8);
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

/* The binding's own words (an argument the library never saw), with the code at the end. */
PyObject *raise_msg(const char *context, int err, int os, const char *msg) {
  char text[1600];
  if (os != 0)
    snprintf(text, sizeof(text), "%s (%s; OS error %d (0x%x): %s)", msg, bm_err_name(err), os,
             (unsigned)os, strerror(os));
  else
    snprintf(text, sizeof(text), "%s (%s)", msg, bm_err_name(err));
  return raise_text(context, err, os, text);
}

/* A failure of the library call just made on this thread: its words (bm_errmsg), about
 * the subject it names (bm_errsubject), else about context. */
PyObject *raise_bm(const char *context, int err, int os) {
  const char *subject = bm_errsubject(err);
  return raise_text(subject[0] != '\0' ? subject : context, err, os, bm_errmsg(err));
}

int check_name(const char *name) {
  int err = bm_name_check(name);
  if (err == 0) return 0;
  raise_bm(name, err, 0);
  return -1;
}
