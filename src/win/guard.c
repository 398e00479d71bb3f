/* Guarded calls on Windows: an EXCEPTION_IN_PAGE_ERROR (a view whose page could not be
 * read in: the file shrank, a network file went away, an I/O error) raised in a thread
 * inside bm_guard_call becomes BM_ETRUNCATED. mingw gcc has no __try/__except, so a
 * vectored exception handler (installed while any guarded call runs, reference counted)
 * redirects the faulting thread to a landing function that longjmps back to the guard;
 * exceptions outside a guarded call, and of other kinds, are passed on untouched. */
#include <setjmp.h>
#include "../os.h"
#include "win.h"

static SRWLOCK win_guard_lock = SRWLOCK_INIT;
static int win_guard_users;
static PVOID win_guard_handle;
static _Thread_local jmp_buf *win_guard_jmp;

/* Runs on the faulting thread's own stack after the exception dispatcher has returned,
 * so nothing of the dispatcher is left half done when we jump. _setjmp with a NULL frame
 * (below) makes longjmp restore registers without an SEH unwind. */
static void win_guard_landing(void) {
  longjmp(*win_guard_jmp, 1);
}

static LONG CALLBACK win_guard_handler(PEXCEPTION_POINTERS ep) {
  CONTEXT *c = ep->ContextRecord;
  uintptr_t sp;

  if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_IN_PAGE_ERROR || win_guard_jmp == NULL)
    return EXCEPTION_CONTINUE_SEARCH;
  /* Resume in win_guard_landing, as if called from the faulting instruction: the stack
   * pointer is moved below whatever the faulting code was using and aligned as the ABI
   * wants at a function's entry (16-byte aligned before the call pushed its return). */
#if defined(_M_X64) || defined(__x86_64__)
  sp = ((uintptr_t)c->Rsp - 512) & ~(uintptr_t)15;
  c->Rsp = sp - 8;
  c->Rip = (DWORD64)(uintptr_t)win_guard_landing;
#elif defined(_M_IX86) || defined(__i386__)
  sp = ((uintptr_t)c->Esp - 512) & ~(uintptr_t)15;
  c->Esp = (DWORD)(sp - 4);
  c->Eip = (DWORD)(uintptr_t)win_guard_landing;
#elif defined(_M_ARM64) || defined(__aarch64__)
  sp = ((uintptr_t)c->Sp - 512) & ~(uintptr_t)15;
  c->Sp = sp;
  c->Pc = (DWORD64)(uintptr_t)win_guard_landing;
#else
#error "bm__os_guard: unknown processor"
#endif
  return EXCEPTION_CONTINUE_EXECUTION;
}

static int win_guard_enter(void) {
  int err = 0;
  AcquireSRWLockExclusive(&win_guard_lock);
  if (win_guard_users == 0) {
    /* First in the chain, so that no other handler sees a fault we turn into an error. */
    win_guard_handle = AddVectoredExceptionHandler(1, win_guard_handler);
    if (win_guard_handle == NULL) err = bm__win_last_error();
  }
  if (err == 0) win_guard_users++;
  ReleaseSRWLockExclusive(&win_guard_lock);
  return err;
}

static void win_guard_leave(void) {
  AcquireSRWLockExclusive(&win_guard_lock);
  if (--win_guard_users == 0) {
    RemoveVectoredExceptionHandler(win_guard_handle);
    win_guard_handle = NULL;
  }
  ReleaseSRWLockExclusive(&win_guard_lock);
}

int bm__os_guard(int (*fn)(void *arg), void *arg) {
  jmp_buf jb;
  jmp_buf *volatile outer = win_guard_jmp;
  volatile int rc;

  if ((rc = win_guard_enter()) != 0) return rc;
#if defined(__MINGW32__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
  if (_setjmp(jb, NULL) == 0) {
#else
  if (setjmp(jb) == 0) {
#endif
    win_guard_jmp = &jb;
    rc = fn(arg);
  } else {
    bm__set_os_error(0);
    rc = BM_ETRUNCATED;
  }
  win_guard_jmp = outer;
  win_guard_leave();
  return rc;
}
