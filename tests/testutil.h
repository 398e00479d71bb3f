/* Helpers for the Check suites: temporary directories, pattern files written by the test
 * itself (the independent source of expected bytes), and child processes. */
#ifndef BULKMAP_TESTUTIL_H
#define BULKMAP_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include "bulkmap.h"

/* The byte the pattern has at offset i: differs between neighbouring offsets and pages. */
static inline unsigned char bm_test_byte(uint64_t i) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
  return (unsigned char)((x >> 56) ^ (i & 0xff));
}

/* A fresh temporary directory for the calling test (removed by bm_test_tmp_cleanup). */
const char *bm_test_tmpdir(void);
void bm_test_tmp_cleanup(void);
/* Linux, as root: the calling process (and its children) in a private mount namespace with a
 * tmpfs of its own on /dev/shm. A test that reclaims every abandoned dataset it sees does so
 * there, so that it never takes what another test running beside it is judging, nor has its
 * own taken. Elsewhere (not root, or no namespace) it says so and shares /dev/shm. */
void bm_test_private_shm(void);
/* Path of `name` inside the temporary directory (static buffer rotated among 4). */
const char *bm_test_path(const char *name);
/* Writes a file of `size` bytes of the pattern (with plain write()). */
void bm_test_write_pattern(const char *path, uint64_t size);
/* Creates a sparse file of `size` bytes. */
void bm_test_make_sparse(const char *path, uint64_t size);
/* Writes n bytes at offset with pwrite. */
void bm_test_pwrite(const char *path, uint64_t offset, const void *buf, size_t n);
/* Reads n bytes at offset with pread; returns bytes read. */
size_t bm_test_pread(const char *path, uint64_t offset, void *buf, size_t n);
/* Sets the size of a file (truncate). */
void bm_test_truncate(const char *path, uint64_t size);
#ifdef _WIN32
/* SetEndOfFile through a fresh handle (UTF-8 path): 0, or the Win32 error it failed with
 * (Windows refuses to shrink a file a view maps: ERROR_USER_MAPPED_FILE). */
unsigned long bm_test_try_truncate(const char *path, uint64_t size);
#endif

/* Child processes: the runner itself is re-executed as `check_bulkmap --child NAME ARGS`,
 * so a second process is spawned (not forked-and-shared). Children register here. */
typedef int (*bm_test_child_fn)(int argc, char **argv);
void bm_test_register_child(const char *name, bm_test_child_fn fn);
#define BM_TEST_CHILD(name)                                                     \
  static int name(int argc, char **argv);                                       \
  __attribute__((constructor)) static void name##_register(void) {              \
    bm_test_register_child(#name, name);                                        \
  }                                                                             \
  static int name(int argc, char **argv)
int bm_test_child_main(int argc, char **argv);
/* Runs child NAME with args in a new process; returns its exit status (or 128+signal). */
int bm_test_spawn(const char *name, const char *const *args);
#ifndef _WIN32
/* Starts child NAME (or any program: argv[0] is its path) without waiting: its pid, or -1. */
long bm_test_start(const char *name, const char *const *args);
long bm_test_start_argv(const char *const *argv);
/* Waits for a started child: its exit status, 128+signal, or -1. */
int bm_test_wait(long pid);
#endif
/* Path to the runner binary. */
const char *bm_test_self(void);

/* Skips the calling test with a reason: printed, and noted in the file the runner names
 * in BM_SKIP_FILE, so that a test case with a skip (and no failure) ends with exit status
 * 77, which ctest shows as skipped (SKIP_RETURN_CODE), never as passed. */
void bm_test_note_skip(const char *test, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
#define BM_TEST_SKIP(...)                           \
  do {                                              \
    bm_test_note_skip(__func__, __VA_ARGS__);       \
    return;                                         \
  } while (0)

#define ck_assert_bm_ok(expr)                                                      \
  do {                                                                             \
    int bm__r = (expr);                                                            \
    ck_assert_msg(bm__r == 0, "%s failed: %s (%s), os error %d", #expr,            \
                  bm_err_name(bm__r), bm_strerror(bm__r), bm_last_os_error());     \
  } while (0)

#define ck_assert_bm_err(expr, code)                                               \
  do {                                                                             \
    int bm__r = (expr);                                                            \
    ck_assert_msg(bm__r == (code), "%s returned %s, expected %s", #expr,           \
                  bm_err_name(bm__r), bm_err_name(code));                          \
  } while (0)

#endif
