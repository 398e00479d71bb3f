/* Guarded calls: SIGBUS from a view past the end of a shrunk file becomes BM_ETRUNCATED,
 * in several threads at once, and the previous handler comes back. */
#include <string.h>
#include "testutil.h"
#ifndef _WIN32
#include <pthread.h>
#include <signal.h>
#else
#include <windows.h>
#endif

typedef struct {
  const volatile unsigned char *p;
  size_t n;
  int ret;
} touch_t;

static int touch_all(void *arg) {
  touch_t *t = arg;
  size_t i;
  unsigned sum = 0;
  for (i = 0; i < t->n; i += 512) sum += t->p[i];
  (void)sum;
  return t->ret;
}

START_TEST(passes_result_through) {
  touch_t t = {(const unsigned char *)"abc", 3, 42};
  ck_assert_int_eq(bm_guard_call(touch_all, &t), 42);
  t.ret = 0;
  ck_assert_int_eq(bm_guard_call(touch_all, &t), 0);
  ck_assert_int_eq(bm_guard_call(NULL, &t), BM_EINVAL);
}
END_TEST

#ifndef _WIN32
static void my_handler(int sig) { (void)sig; }

/* Maps 16 granules of a file, then cuts it to 1: touching the tail raises SIGBUS. */
static void shrunk_view(const char *name, bm_source_t **src, bm_view_t *v) {
  const uint64_t g = bm_granularity();
  const char *path = bm_test_path(name);
  bm_test_write_pattern(path, 16 * g);
  ck_assert_bm_ok(bm_file_open(src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(v, *src, 0, 16 * g, BM_ACCESS_READ));
  bm_test_truncate(path, g);
}

START_TEST(sigbus_becomes_truncated) {
  struct sigaction mine, now;
  bm_source_t *src;
  bm_view_t v;
  touch_t t;
  int i;
  memset(&mine, 0, sizeof(mine));
  mine.sa_handler = my_handler;
  sigemptyset(&mine.sa_mask);
  ck_assert_int_eq(sigaction(SIGBUS, &mine, NULL), 0);
  shrunk_view("bus", &src, &v);
  t.p = v.data;
  t.n = v.length;
  t.ret = 0;
  for (i = 0; i < 3; i++) ck_assert_int_eq(bm_guard_call(touch_all, &t), BM_ETRUNCATED);
  /* The part still backed by the file reads fine. */
  t.n = bm_granularity();
  ck_assert_int_eq(bm_guard_call(touch_all, &t), 0);
  ck_assert_int_eq(sigaction(SIGBUS, NULL, &now), 0);
  ck_assert_ptr_eq((void *)now.sa_handler, (void *)my_handler);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

static void *guard_thread(void *arg) {
  touch_t t = *(touch_t *)arg;
  long bad = 0;
  int i;
  for (i = 0; i < 200; i++) {
    t.n = (i & 1) ? bm_granularity() : 16 * bm_granularity();
    if (bm_guard_call(touch_all, &t) != ((i & 1) ? 0 : BM_ETRUNCATED)) bad++;
  }
  return (void *)bad;
}

START_TEST(threads_at_once) {
  bm_source_t *src;
  bm_view_t v;
  pthread_t th[4];
  touch_t t;
  void *bad;
  int i;
  struct sigaction before, now;
  ck_assert_int_eq(sigaction(SIGBUS, NULL, &before), 0);
  shrunk_view("bus2", &src, &v);
  t.p = v.data;
  t.ret = 0;
  for (i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, guard_thread, &t), 0);
  for (i = 0; i < 4; i++) {
    ck_assert_int_eq(pthread_join(th[i], &bad), 0);
    ck_assert_int_eq((long)bad, 0);
  }
  ck_assert_int_eq(sigaction(SIGBUS, NULL, &now), 0);
  ck_assert_ptr_eq((void *)now.sa_handler, (void *)before.sa_handler);
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST
#endif

#ifdef _WIN32
/* Windows cannot shrink a mapped file (ERROR_USER_MAPPED_FILE), so a local file gives no
 * EXCEPTION_IN_PAGE_ERROR; the memory manager raises it for a view whose page cannot be
 * read in (a failing disk, a network file gone). The tests raise that same exception. */
static int raise_in_page(void *arg) {
  ULONG_PTR info[3] = {0, 0, 0xC000009C /* STATUS_DEVICE_DATA_ERROR */};
  (void)arg;
  RaiseException(EXCEPTION_IN_PAGE_ERROR, 0, 3, info);
  return 99; /* not reached */
}

static volatile LONG seen_outside;

/* The test's own handler, last in the chain: whatever reaches it was not taken. */
static LONG CALLBACK last_handler(PEXCEPTION_POINTERS ep) {
  DWORD code = ep->ExceptionRecord->ExceptionCode;
  if (code == EXCEPTION_IN_PAGE_ERROR || code == 0xE0424D01) {
    InterlockedIncrement(&seen_outside);
    return EXCEPTION_CONTINUE_EXECUTION; /* RaiseException then returns */
  }
  return EXCEPTION_CONTINUE_SEARCH;
}

/* A fault that is not an in-page error: reading reserved, uncommitted memory. The
 * test's handler commits the page (demand commit) and lets the read run again. */
static LONG CALLBACK commit_handler(PEXCEPTION_POINTERS ep) {
  EXCEPTION_RECORD *r = ep->ExceptionRecord;
  if (r->ExceptionCode != EXCEPTION_ACCESS_VIOLATION || r->NumberParameters < 2)
    return EXCEPTION_CONTINUE_SEARCH;
  if (VirtualAlloc((void *)r->ExceptionInformation[1], 4096, MEM_COMMIT, PAGE_READWRITE) == NULL)
    return EXCEPTION_CONTINUE_SEARCH;
  InterlockedIncrement(&seen_outside);
  return EXCEPTION_CONTINUE_EXECUTION;
}

static int read_reserved(void *arg) {
  return *(volatile unsigned char *)arg + 3;
}

static int raise_other(void *arg) {
  (void)arg;
  RaiseException(0xE0424D01, 0, 0, NULL);
  return 5;
}

START_TEST(in_page_error_becomes_truncated) {
  PVOID h = AddVectoredExceptionHandler(0, last_handler);
  int i;
  ck_assert_ptr_nonnull(h);
  seen_outside = 0;
  for (i = 0; i < 3; i++) ck_assert_int_eq(bm_guard_call(raise_in_page, NULL), BM_ETRUNCATED);
  ck_assert_int_eq(seen_outside, 0);
  /* Other exceptions inside a guarded call are not ours: they go on down the chain. */
  ck_assert_int_eq(bm_guard_call(raise_other, NULL), 5);
  ck_assert_int_eq(seen_outside, 1);
  /* An access violation that is not a view's page failing is the caller's: passed on. */
  {
    void *reserved = VirtualAlloc(NULL, 65536, MEM_RESERVE, PAGE_NOACCESS);
    PVOID ch = AddVectoredExceptionHandler(0, commit_handler);
    ck_assert_ptr_nonnull(reserved);
    ck_assert_int_eq(bm_guard_call(read_reserved, reserved), 3);
    ck_assert_int_eq(seen_outside, 2);
    RemoveVectoredExceptionHandler(ch);
    VirtualFree(reserved, 0, MEM_RELEASE);
    seen_outside = 1;
  }
  /* Outside any guarded call the guard's handler is gone: the fault reaches the others. */
  raise_in_page(NULL);
  ck_assert_int_eq(seen_outside, 2);
  /* After the faults, results pass through as before. */
  {
    touch_t t = {(const unsigned char *)"abc", 3, 42};
    ck_assert_int_eq(bm_guard_call(touch_all, &t), 42);
  }
  RemoveVectoredExceptionHandler(h);
}
END_TEST

static DWORD WINAPI guard_thread(LPVOID arg) {
  touch_t t = {(const unsigned char *)"abc", 3, 0};
  LONG bad = 0;
  int i;
  (void)arg;
  for (i = 0; i < 200; i++) {
    if (i & 1) {
      if (bm_guard_call(touch_all, &t) != 0) bad++;
    } else if (bm_guard_call(raise_in_page, NULL) != BM_ETRUNCATED) {
      bad++;
    }
  }
  return (DWORD)bad;
}

START_TEST(threads_at_once) {
  HANDLE th[4];
  DWORD code;
  int i;
  for (i = 0; i < 4; i++) {
    th[i] = CreateThread(NULL, 0, guard_thread, NULL, 0, NULL);
    ck_assert_ptr_nonnull(th[i]);
  }
  ck_assert_uint_eq(WaitForMultipleObjects(4, th, TRUE, 60000), WAIT_OBJECT_0);
  for (i = 0; i < 4; i++) {
    ck_assert(GetExitCodeThread(th[i], &code));
    ck_assert_uint_eq(code, 0);
    CloseHandle(th[i]);
  }
}
END_TEST
#endif

Suite *guard_suite(void) {
  Suite *s = suite_create("guard");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, passes_result_through);
#ifndef _WIN32
  tcase_add_test(tc, sigbus_becomes_truncated);
  tcase_add_test(tc, threads_at_once);
#else
  tcase_add_test(tc, in_page_error_becomes_truncated);
  tcase_add_test(tc, threads_at_once);
#endif
  suite_add_tcase(s, tc);
  return s;
}
