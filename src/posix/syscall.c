/* POSIX backend: the fault-injection table behind the bm__sys_* calls (posix.h). Only
 * built into the library with BULKMAP_FAULT_INJECTION, which tests use to drive every
 * failure path; an ordinary build calls the OS directly and this file is empty. */
#include "posix.h"

#ifdef BULKMAP_FAULT_INJECTION
#include <errno.h>
#include <string.h>

static struct {
  const char *name;
  unsigned long calls;   /* since the last reset or set */
  unsigned long fail_at; /* fail this call (1-based), 0 never */
  int err;
} bm__sys[BM__SYS_COUNT] = {
#define BM__SYS_ENTRY(n) {#n, 0, 0, 0},
    BM__POSIX_SYSCALLS(BM__SYS_ENTRY)
#undef BM__SYS_ENTRY
};
static unsigned long bm__fired;

int bm__fault_hit(int call) {
  if (++bm__sys[call].calls != bm__sys[call].fail_at) return 0;
  bm__fired++;
  errno = bm__sys[call].err;
  return 1;
}

void bm__fault_reset(void) {
  int i;
  for (i = 0; i < BM__SYS_COUNT; i++) bm__sys[i].calls = bm__sys[i].fail_at = 0;
  bm__fired = 0;
}

int bm__fault_set(const char *call, unsigned long nth, int err) {
  int i;
  bm__fault_reset();
  for (i = 0; i < BM__SYS_COUNT; i++)
    if (strcmp(bm__sys[i].name, call) == 0) {
      bm__sys[i].fail_at = nth;
      bm__sys[i].err = err;
      return 0;
    }
  return -1;
}

unsigned long bm__fault_count(const char *call) {
  unsigned long n = 0;
  int i;
  for (i = 0; i < BM__SYS_COUNT; i++)
    if (call == NULL || strcmp(bm__sys[i].name, call) == 0) n += bm__sys[i].calls;
  return n;
}

unsigned long bm__fault_fired(void) { return bm__fired; }

const char *bm__fault_name(int i) { return i >= 0 && i < BM__SYS_COUNT ? bm__sys[i].name : NULL; }
#else
/* ISO C wants a translation unit to declare something. */
typedef int bm__posix_syscall_unused;
#endif
