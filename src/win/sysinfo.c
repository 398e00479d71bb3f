/* Windows backend: system facts (GetSystemInfo, GetLargePageMinimum) and the
 * SeLockMemoryPrivilege that large pages need: whether the token holds it, and enabling
 * it once with AdjustTokenPrivileges. */
#include <stdio.h>
#include <string.h>
#include "../os.h"
#include "win.h"

static INIT_ONCE win_large_once = INIT_ONCE_STATIC_INIT;
static size_t win_large_size;

static BOOL CALLBACK win_large_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once, (void)param, (void)ctx;
  win_large_size = (size_t)GetLargePageMinimum();
  return TRUE;
}

size_t bm__win_large_page_size(void) {
  InitOnceExecuteOnce(&win_large_once, win_large_init, NULL, NULL);
  return win_large_size;
}

/* The outcome of the one attempt to enable the privilege, and its raw error. */
static INIT_ONCE win_priv_once = INIT_ONCE_STATIC_INIT;
static int win_priv_result;
static DWORD win_priv_oserr;

static BOOL CALLBACK win_priv_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  TOKEN_PRIVILEGES tp;
  HANDLE tok;
  (void)once, (void)param, (void)ctx;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok)) {
    win_priv_oserr = GetLastError();
    win_priv_result = BM_EPRIVILEGE;
    return TRUE;
  }
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
  if (!LookupPrivilegeValueW(NULL, L"SeLockMemoryPrivilege", &tp.Privileges[0].Luid)) {
    win_priv_oserr = GetLastError();
    win_priv_result = BM_EPRIVILEGE;
  } else if (!AdjustTokenPrivileges(tok, FALSE, &tp, 0, NULL, NULL)) {
    win_priv_oserr = GetLastError();
    win_priv_result = BM_EPRIVILEGE;
  } else {
    /* AdjustTokenPrivileges succeeds even when it enabled nothing: the account lacks
     * "Lock pages in memory" exactly when it then says ERROR_NOT_ALL_ASSIGNED. */
    win_priv_oserr = GetLastError();
    win_priv_result = win_priv_oserr == ERROR_NOT_ALL_ASSIGNED ? BM_EPRIVILEGE : 0;
  }
  CloseHandle(tok);
  return TRUE;
}

int bm__win_enable_lock_memory(void) {
  InitOnceExecuteOnce(&win_priv_once, win_priv_init, NULL, NULL);
  bm__set_os_error((int)win_priv_oserr);
  return win_priv_result;
}

int bm__win_has_lock_memory(void) {
  LUID luid;
  HANDLE tok;
  DWORD need = 0, i;
  TOKEN_PRIVILEGES *tp;
  int r = 0;

  if (!LookupPrivilegeValueW(NULL, L"SeLockMemoryPrivilege", &luid)) return -1;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) return -1;
  GetTokenInformation(tok, TokenPrivileges, NULL, 0, &need);
  tp = need ? (TOKEN_PRIVILEGES *)HeapAlloc(GetProcessHeap(), 0, need) : NULL;
  if (tp == NULL || !GetTokenInformation(tok, TokenPrivileges, tp, need, &need)) {
    r = -1;
  } else {
    for (i = 0; i < tp->PrivilegeCount; i++)
      if (tp->Privileges[i].Luid.LowPart == luid.LowPart &&
          tp->Privileges[i].Luid.HighPart == luid.HighPart)
        r = 1;
  }
  if (tp != NULL) HeapFree(GetProcessHeap(), 0, tp);
  CloseHandle(tok);
  return r;
}

/* No hugetlbfs: large pages come from free memory, with no mount to put them in. */
int bm__os_mount(int i, bm_mount_t *out) {
  (void)i, (void)out;
  return bm__set_os_error(0), BM_ENOENT;
}

/* Windows offers one large page size to applications (GetLargePageMinimum); the pool is
 * all of free physical memory, how much of it is contiguous is unknown. */
int bm__os_large_size(int i, bm_large_size_t *out) {
  size_t large = bm__win_large_page_size();
  if (i != 0 || large <= bm__os_config()->page_size) return bm__set_os_error(0), BM_ENOENT;
  out->size = large;
  out->free = UINT64_MAX;
  out->total = UINT64_MAX;
  return 0;
}

int bm__os_sysinfo(bm_sysinfo_t *info) {
  const bm__os_config_t *cfg = bm__os_config();
  size_t large = bm__win_large_page_size();

  snprintf(info->os, sizeof(info->os), "windows");
  info->page_size = cfg->page_size;
  info->granularity = cfg->granularity;
  info->has_populate = cfg->has_populate;
  if (large > cfg->page_size) {
    info->n_large_sizes = 1; /* bm__os_large_size(0) */
    info->default_large_size = large;
  }
  info->n_mounts = 0;
  info->thp = BM_THP_UNSUPPORTED;
  info->shmem_enabled[0] = '\0'; /* Linux's tmpfs huge page mode: nothing of the kind here */
  info->privilege = large > cfg->page_size ? bm__win_has_lock_memory() : 0;
  return 0;
}
