/* Long calls: the clock they are timed by, and the progress callback that lets Python's
 * signal handlers (KeyboardInterrupt) run while the library works without the GIL. */
#include "_bulkmap.h"

double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------------
 * Interrupts. A long call runs without the GIL; the library calls progress on this, the
 * calling, thread about every 20 ms. It takes the GIL back with this thread's own state
 * (what Py_END_ALLOW_THREADS does), runs Python's signal handlers (KeyboardInterrupt),
 * and gives the GIL up again. On an exception it sets the cancel flag as well as returning
 * non-zero: the scheduler stops at its next window, and a load's readers at their next
 * 8 MiB piece (they look at the flag, not at the progress result). The exception stays set
 * and is raised when the call returns. */

void poll_begin(poll_t *p) {
  p->cancel = 0;
  p->ts = PyEval_SaveThread();
}

void poll_end(poll_t *p) {
  PyEval_RestoreThread(p->ts);
}

int poll_signals(uint64_t done, uint64_t total, void *arg) {
  poll_t *p = arg;
  int r;
  (void)done, (void)total;
  if (p->cancel) return 1;
  PyEval_RestoreThread(p->ts);
  r = PyErr_CheckSignals();
  p->ts = PyEval_SaveThread();
  if (r != 0) p->cancel = 1;
  return r != 0;
}
