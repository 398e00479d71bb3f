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

/* Whether an access violation is really a page of a file view that could not be read
 * in. Windows raises EXCEPTION_IN_PAGE_ERROR for that; Wine 8 turns the SIGBUS of a view
 * past the end of its (shrunk) file into EXCEPTION_ACCESS_VIOLATION. A read of a
 * committed, readable page of a mapped view has no other cause for a fault, so such a
 * violation is taken as the in-page error it is; any other stays the caller's bug. */
static int win_guard_is_view_read_fault(const EXCEPTION_RECORD *r) {
  MEMORY_BASIC_INFORMATION mbi;
  const DWORD readable = PAGE_READONLY | PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READ |
                         PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY;
  if (r->NumberParameters < 2 || r->ExceptionInformation[0] != 0 /* read */) return 0;
  if (VirtualQuery((LPCVOID)r->ExceptionInformation[1], &mbi, sizeof(mbi)) == 0) return 0;
  return mbi.State == MEM_COMMIT && mbi.Type == MEM_MAPPED && (mbi.Protect & readable) &&
         !(mbi.Protect & (PAGE_GUARD | PAGE_NOACCESS));
}

static LONG CALLBACK win_guard_handler(PEXCEPTION_POINTERS ep) {
  CONTEXT *c = ep->ContextRecord;
  DWORD code = ep->ExceptionRecord->ExceptionCode;
  uintptr_t sp;

  if (win_guard_jmp == NULL) return EXCEPTION_CONTINUE_SEARCH;
  if (code != EXCEPTION_IN_PAGE_ERROR &&
      !(code == EXCEPTION_ACCESS_VIOLATION && win_guard_is_view_read_fault(ep->ExceptionRecord)))
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
