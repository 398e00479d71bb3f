/* The bench's OS layer on Windows (see bench_os.h): VirtualAlloc regions, MEM_LARGE_PAGES
 * with SeLockMemoryPrivilege switched on; neither smaps nor a counter interface exists and
 * the reasons say so. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bulkmap.h"
#include "bench_os.h"

#define BENCH_MIB ((size_t)1 << 20)
#include <windows.h>

double bench_os_now(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart / (double)f.QuadPart;
}

/* MEM_LARGE_PAGES needs SeLockMemoryPrivilege enabled in the token ("Lock pages in
 * memory"); holding the right is not enough, it must be switched on. */
static int win_enable_lock_privilege(void) {
  HANDLE tok;
  TOKEN_PRIVILEGES tp;
  DWORD err;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok))
    return 0;
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
  if (!LookupPrivilegeValueW(NULL, L"SeLockMemoryPrivilege", &tp.Privileges[0].Luid)) {
    CloseHandle(tok);
    return 0;
  }
  AdjustTokenPrivileges(tok, FALSE, &tp, 0, NULL, NULL);
  err = GetLastError(); /* ERROR_NOT_ALL_ASSIGNED when the right is not held */
  CloseHandle(tok);
  return err == ERROR_SUCCESS;
}

int bench_mem_map(bench_mem_t *m, int kind, size_t size, char *reason, size_t n) {
  DWORD flags = MEM_RESERVE | MEM_COMMIT, err;
  memset(m, 0, sizeof(*m));
  m->kind = kind;
  if (kind == BENCH_THP) {
    snprintf(reason, n, "unsupported: Windows has no transparent huge pages");
    return -1;
  }
  if (kind == BENCH_LARGE) {
    SIZE_T min = GetLargePageMinimum();
    if (min == 0) {
      snprintf(reason, n, "unsupported: GetLargePageMinimum() is 0 (no large pages)");
      return -1;
    }
    if (size % min != 0) size += min - size % min;
    if (!win_enable_lock_privilege()) {
      snprintf(reason, n, "privilege not held: SeLockMemoryPrivilege (\"Lock pages in memory\")");
      return -1;
    }
    flags |= MEM_LARGE_PAGES;
  }
  m->base = VirtualAlloc(NULL, size, flags, PAGE_READWRITE);
  if (m->base == NULL) {
    err = GetLastError();
    if (err == ERROR_PRIVILEGE_NOT_HELD)
      snprintf(reason, n, "privilege not held: SeLockMemoryPrivilege (\"Lock pages in memory\")");
    else if (kind == BENCH_LARGE && (err == ERROR_NO_SYSTEM_RESOURCES || err == ERROR_NOT_ENOUGH_MEMORY ||
                                     err == ERROR_COMMITMENT_LIMIT))
      snprintf(reason, n, "pool empty: not enough contiguous physical memory for large pages "
               "(OS error %lu (0x%lx))", (unsigned long)err, (unsigned long)err);
    else
      snprintf(reason, n, "VirtualAlloc: OS error %lu (0x%lx)", (unsigned long)err, (unsigned long)err);
    return -1;
  }
  m->size = size;
  m->map_base = m->base;
  m->map_size = size;
  return 0;
}

int bench_mem_populate(bench_mem_t *m, char *reason, size_t n) {
  /* Committed memory is materialized on first touch (large pages already are). */
  size_t i, step = 4096;
  (void)reason;
  (void)n;
  for (i = 0; i < m->size; i += step) ((volatile unsigned char *)m->base)[i] = 1;
  return 0;
}

void bench_mem_unmap(bench_mem_t *m) {
  if (m->map_base != NULL) VirtualFree(m->map_base, 0, MEM_RELEASE);
  memset(m, 0, sizeof(*m));
}

int bench_os_smaps(const void *addr, size_t len, bench_smaps_t *out) {
  (void)addr;
  (void)len;
  memset(out, 0, sizeof(*out));
  return -1;
}

size_t bench_os_thp_size(void) { return 0; }

void bench_os_thp_mode(int shared, char *buf, size_t n) {
  (void)shared;
  if (n > 0) buf[0] = '\0';
}

/* No counters: the stubs are bench_tlb_none.c's. */
const char *bench_os_no_counters(void) {
  return "Windows offers no CPU counter interface without a kernel driver";
}
