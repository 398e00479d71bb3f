/* Windows backend: named and anonymous pagefile-backed sections (CreateFileMappingW with
 * INVALID_HANDLE_VALUE, OpenFileMappingW), large-page sections (SEC_COMMIT |
 * SEC_LARGE_PAGES with SeLockMemoryPrivilege), what an opened section is (size and page
 * kind, from NtQuerySection, else from VirtualQuery of a view), and the writer token a
 * named section's creator holds. A replace is src/win/replace.c. */
#include <stdio.h>
#include <string.h>
#include "../os.h"
#include "win.h"
#include <psapi.h>
#include <ntsecapi.h> /* RtlGenRandom */

/* NtQuerySection's SectionBasicInformation (ntdll; stable since NT 3.1, documented in the
 * WDK as ZwQuerySection's); looked up at run time. */
typedef struct {
  PVOID base;
  ULONG attributes;
  LARGE_INTEGER size;
} win_section_basic_t;
typedef LONG(NTAPI *win_query_section_fn)(HANDLE, int, PVOID, SIZE_T, PSIZE_T);
typedef BOOL(WINAPI *win_query_ws_fn)(HANDLE, PVOID, DWORD);

static void win_set_outcome(bm_large_t *o, int requested, int obtained, size_t page, int reason) {
  o->requested = requested;
  o->obtained = obtained;
  o->transparent = 0;
  o->page_size = page;
  o->reason = reason;
  /* Windows has no pool of reserved large pages to count (they come from free memory). */
  o->pages_needed = 0;
  o->pages_free = 0;
}

static int win_name(const char *name, WCHAR *buf) {
  if (name == NULL) return 0;
  return bm__win_utf8_to_wide(name, buf, WIN_NAME_CAP);
}

/* Whether the page at p (touched here) is really a large page, as the working set says
 * (QueryWorkingSetEx: the LargePage bit of a valid page). 1 yes, 0 no, -1 cannot tell. */
static int win_page_is_large(volatile unsigned char *p) {
  PSAPI_WORKING_SET_EX_INFORMATION ws;
  win_query_ws_fn q;
  HMODULE k32 = GetModuleHandleW(L"kernel32.dll");
  q = k32 ? (win_query_ws_fn)(void (*)(void))GetProcAddress(k32, "K32QueryWorkingSetEx") : NULL;
  if (q == NULL) return -1;
  (void)*p;
  memset(&ws, 0, sizeof(ws));
  ws.VirtualAddress = (PVOID)p;
  if (!q(GetCurrentProcess(), &ws, sizeof(ws)) || !ws.VirtualAttributes.Valid) return -1;
  return ws.VirtualAttributes.LargePage ? 1 : 0;
}

/* Tries a SEC_LARGE_PAGES section of size bytes. 0 and *out on success; otherwise a
 * bm_large_reason_t in *reason and a BM_E* result (BM_EEXIST ends the whole request). */
static int win_create_large(const WCHAR *wname, uint64_t size, size_t lp, HANDLE *out,
                            int *reason) {
  HANDLE m;
  DWORD e;
  void *v;
  int large;

  if (bm__win_enable_lock_memory() != 0) {
    *reason = BM_REASON_NO_PRIVILEGE;
    return BM_ENOLARGE;
  }
  /* Large pages are committed when the section is made (SEC_COMMIT is required with
   * SEC_LARGE_PAGES), so success means the pages were had. */
  m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT | SEC_LARGE_PAGES,
                         (DWORD)(size >> 32), (DWORD)size, wname);
  e = GetLastError();
  if (m == NULL) {
    bm__set_os_error((int)e);
    switch (e) {
    case ERROR_PRIVILEGE_NOT_HELD:
    case ERROR_NOT_ALL_ASSIGNED: *reason = BM_REASON_NO_PRIVILEGE; break;
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT: *reason = BM_REASON_POOL_EMPTY; break;
    case ERROR_INVALID_HANDLE: return BM_EEXIST; /* the name is another kind of object */
    default: *reason = BM_REASON_UNSUPPORTED; break;
    }
    return BM_ENOLARGE;
  }
  if (e == ERROR_ALREADY_EXISTS) {
    /* CreateFileMapping opened someone else's section: sections are made exclusively. */
    CloseHandle(m);
    bm__set_os_error((int)e);
    return BM_EEXIST;
  }
  /* Check, do not assume: map the first large page and ask the working set. Views of a
   * large-page section must be whole large pages (FILE_MAP_LARGE_PAGES, Windows 10 1703+;
   * earlier systems use large pages without the flag). */
  v = MapViewOfFile(m, FILE_MAP_WRITE | FILE_MAP_LARGE_PAGES, 0, 0, lp);
  if (v == NULL) v = MapViewOfFile(m, FILE_MAP_WRITE, 0, 0, lp);
  if (v == NULL) {
    e = GetLastError();
    CloseHandle(m);
    bm__set_os_error((int)e);
    *reason = BM_REASON_UNSUPPORTED;
    return BM_ENOLARGE;
  }
  large = win_page_is_large(v);
  UnmapViewOfFile(v);
  if (large == 0) {
    /* Accepted but backed by normal pages (Wine does this): not large pages. */
    CloseHandle(m);
    bm__set_os_error(0);
    *reason = BM_REASON_UNSUPPORTED;
    return BM_ENOLARGE;
  }
  *out = m;
  return 0;
}

static int win_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                              bm_large_t *outcome) {
  const bm__os_config_t *cfg = bm__os_config();
  WCHAR wbuf[WIN_NAME_CAP];
  const WCHAR *wname = name != NULL ? wbuf : NULL;
  uint64_t size;
  size_t lp = bm__win_large_page_size();
  HANDLE m = NULL;
  DWORD e;
  int err, reason = BM_REASON_NOT_REQUESTED, mode = opts->large;

  if ((err = win_name(name, wbuf)) != 0) return err;
  if (opts->size == 0) return BM_EINVAL;
  /* opts->mode (POSIX permission bits), opts->group and opts->mount (a hugetlbfs mount)
   * have no meaning here: the section gets the default security of the creator's token
   * (its owner, SYSTEM and administrators), and large pages come from no mount. */

  if (opts->transparent) {
    /* Windows has no transparent huge pages (SEC_LARGE_PAGES is the hugetlb kind). */
    reason = BM_REASON_UNSUPPORTED;
    if (mode == BM_LARGE_ON) {
      win_set_outcome(outcome, mode, 0, cfg->page_size, reason);
      return bm__set_os_error(0), BM_ENOLARGE;
    }
  } else if (mode != BM_LARGE_OFF) {
    size = opts->size;
    if (lp == 0 || (opts->large_page_size != 0 && opts->large_page_size != lp)) {
      /* GetLargePageMinimum() is the one large page size Windows gives applications. */
      reason = BM_REASON_UNSUPPORTED;
    } else if (size % lp != 0 && !opts->round) {
      /* A large-page section's size must be a multiple of GetLargePageMinimum(). */
      reason = BM_REASON_SIZE_NOT_MULTIPLE;
      if (mode == BM_LARGE_ON) {
        win_set_outcome(outcome, mode, 0, cfg->page_size, reason);
        return bm__set_os_error(0), BM_EALIGN;
      }
    } else if ((size = bm__align_up(size, lp)) == 0) {
      return BM_EOVERFLOW;
    } else {
      err = win_create_large(wname, size, lp, &m, &reason);
      if (err == BM_EEXIST) return err;
      if (err == 0) {
        src->size = size;
        src->granularity = lp;
        src->page_size = lp;
        win_set_outcome(outcome, mode, 1, lp, BM_REASON_NONE);
        goto made;
      }
    }
    if (mode == BM_LARGE_ON) {
      win_set_outcome(outcome, mode, 0, cfg->page_size, reason);
      return BM_ENOLARGE;
    }
  }

  /* Normal pages: a pagefile-backed section, reserved and committed as a whole. */
  if ((size = bm__align_up(opts->size, cfg->page_size)) == 0) return BM_EOVERFLOW;
  m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT,
                         (DWORD)(size >> 32), (DWORD)size, wname);
  e = GetLastError();
  if (m == NULL) return e == ERROR_INVALID_HANDLE ? (bm__set_os_error((int)e), BM_EEXIST) : bm__win_error(e);
  if (e == ERROR_ALREADY_EXISTS) {
    CloseHandle(m);
    return bm__win_error(e);
  }
  src->size = size;
  src->granularity = cfg->granularity;
  src->page_size = cfg->page_size;
  win_set_outcome(outcome, mode, 0, cfg->page_size, mode == BM_LARGE_OFF ? BM_REASON_NOT_REQUESTED : reason);

made:
  src->fd = BM_OS_INVALID_HANDLE;
  src->mapping = m;
  src->kind = name != NULL ? BM__SRC_SECTION : BM__SRC_ANON;
  src->flags = BM_FILE_WRITE;
  src->large = *outcome;
  if (name != NULL && strlen(name) < sizeof(src->path)) strcpy(src->path, name);
  return 0;
}

/* ---- The writer token. Liveness belongs to the writer's process, not to one of its
 * threads: the creator holds a handle to a named mutex, "<prefix>bulkmap#token#<32 hex>",
 * and a reader asks whether that object still exists. Kernel objects live exactly while a
 * handle to them is open, and the kernel closes every handle of a process that dies, so
 * the token goes with its writer however it ends (docs/design.md section 2: "Windows: the
 * handle itself"). The mutex is never owned: ownership would belong to the creating thread
 * (it is abandoned when that thread exits while the process loads on, ReleaseMutex fails
 * from any other thread, and the owning thread would acquire it again when it checks as a
 * reader). Its handle is not inheritable (NULL attributes): a child of the writer must not
 * keep it alive.
 *
 * The name carries 128 random bits and nothing of the dataset's name, and the dataset's
 * trailer records them (src/trailer.c, version 5) from microseconds after the section is
 * made until it is published or failed: readers learn the name from the dataset, never by
 * guessing. A name anyone can work out can be taken first by anyone, and mutexes in
 * Global\ need no privilege: a mutex planted under bulkmap's earlier name for this token,
 * "<prefix>bulkmap#writer#<rest of NAME>", made a dead writer's dataset of that NAME look
 * alive for ever (or, an object of another kind, made every load of NAME fail). A random
 * name that exists already was taken by someone who cannot have known it: drawn again.
 * Only who can read the trailer learns the name (the section's default security: its
 * owner, SYSTEM and administrators, who can open the token itself anyway). '#' is no name
 * character, so a token's name never collides with a section's. A reader's check holds
 * the token open only for the check. */

#define WIN_TOKEN_DRAWS 8

/* 128 random bits as 32 hex digits (the name src/posix/store.c gives its helper):
 * RtlGenRandom (advapi32's SystemFunction036, which libuv's uv_random uses on Windows too;
 * no CSP to open, nothing to link beyond advapi32). */
static int random_hex(char out[33]) {
  unsigned char b[16];
  int i;
  if (!RtlGenRandom(b, sizeof(b))) return bm__win_last_error();
  for (i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
  return 0;
}

/* The token's name for section `name`, in the section's namespace (its prefix Local\ or
 * Global\, if any, is kept): "<prefix>bulkmap#token#<token>"; with token "" the name
 * bulkmap used before tokens were random, "<prefix>bulkmap#writer#<rest of name>", which a
 * dataset whose trailer names no token (written by an earlier bulkmap) still has. */
static int win_writer_name(const char *name, const char *token, WCHAR *buf) {
  char n[WIN_NAME_CAP];
  size_t p = 0;
  int w;
  if (strncmp(name, "Local\\", 6) == 0) p = 6;
  else if (strncmp(name, "Global\\", 7) == 0) p = 7;
  if (token[0] != '\0') w = snprintf(n, sizeof(n), "%.*sbulkmap#token#%s", (int)p, name, token);
  else w = snprintf(n, sizeof(n), "%.*sbulkmap#writer#%s", (int)p, name, name + p);
  if (w < 0 || (size_t)w >= sizeof(n)) return bm__set_os_error(0), BM_ENAME;
  return bm__win_utf8_to_wide(n, buf, WIN_NAME_CAP);
}

/* Creates a token no one else holds: *out and its random part in token. */
static int win_writer_create(const char *name, HANDLE *out, char token[33]) {
  WCHAR w[WIN_NAME_CAP];
  HANDLE h;
  DWORD e = 0;
  int err, i;
  for (i = 0; i < WIN_TOKEN_DRAWS; i++) {
    if ((err = random_hex(token)) != 0) return err;
    if ((err = win_writer_name(name, token, w)) != 0) return err;
    h = CreateMutexW(NULL, FALSE, w);
    e = GetLastError();
    if (h != NULL && e != ERROR_ALREADY_EXISTS) {
      *out = h;
      return 0;
    }
    /* Opened someone else's object (ERROR_ALREADY_EXISTS), or the name is another
     * user's (ERROR_ACCESS_DENIED) or another kind of object's (ERROR_INVALID_HANDLE):
     * never ours to hold. Anything else is no matter of names. */
    if (h != NULL) CloseHandle(h);
    else if (e != ERROR_ACCESS_DENIED && e != ERROR_INVALID_HANDLE) break;
  }
  token[0] = '\0';
  return e == ERROR_INVALID_HANDLE ? (bm__set_os_error((int)e), BM_EEXIST) : bm__win_error(e);
}

int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome) {
  HANDLE token = NULL;
  char id[33] = "";
  int err;
  /* The token first: its name is in the trailer the creator writes next, so it must exist
   * before any reader can read that name. */
  if (name != NULL && (err = win_writer_create(name, &token, id)) != 0) return err;
  if ((err = win_section_create(src, name, opts, outcome)) != 0) {
    if (token != NULL) CloseHandle(token);
    return err;
  }
  if (token != NULL) {
    src->lock = token;
    src->writer = 1;
    memcpy(src->token, id, sizeof(src->token));
  }
  return 0;
}

int bm__os_writer_alive(bm_source_t *src, const char *token) {
  WCHAR w[WIN_NAME_CAP];
  HANDLE h;
  DWORD e;
  int err;
  if (src->writer) return 1; /* this very source holds it */
  if (src->kind != BM__SRC_SECTION || src->path[0] == '\0' || token == NULL)
    return bm__set_os_error(0), 0;
  if ((err = win_writer_name(src->path, token, w)) != 0) return err;
  h = OpenMutexW(SYNCHRONIZE, FALSE, w);
  if (h != NULL) {
    CloseHandle(h);
    return 1;
  }
  e = GetLastError();
  bm__set_os_error((int)e);
  switch (e) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND: return 0;
  case ERROR_ACCESS_DENIED: return 1; /* there, held by another user's writer */
  default: return bm__win_error(e);
  }
}

void bm__os_writer_release(bm_source_t *src) {
  if (src->lock != BM_OS_INVALID_HANDLE && src->lock != NULL) CloseHandle(src->lock);
  src->lock = BM_OS_INVALID_HANDLE;
  src->writer = 0;
  src->token[0] = '\0';
}

/* Windows charges a pagefile-backed section against the commit limit when it is made and
 * refuses one over it cleanly (ERROR_COMMITMENT_LIMIT, nothing made): no writer dies
 * midway, so there is nothing to check before. */
int bm__os_preflight(const bm_section_opts_t *opts, bm_preflight_t *out) {
  memset(out, 0, sizeof(*out));
  out->needed = opts->size;
  out->shm_free = out->shm_total = out->cgroup_free = out->cgroup_limit = UINT64_MAX;
  out->large.requested = opts->large;
  out->large.page_size = bm__os_config()->page_size;
  out->large.reason = opts->large == BM_LARGE_OFF ? BM_REASON_NOT_REQUESTED : BM_REASON_NONE;
  return 0;
}

/* ---- Names. A section has no name to unlink: it dies with its last handle and view,
 * so removing (one's own or by name) is not something Windows does. */

int bm__os_section_remove_own(bm_source_t *src, const char *name) {
  (void)src, (void)name;
  bm__set_os_error(0);
  return BM_ENOTSUP;
}

int bm__os_section_remove_name(const char *name, int force) {
  (void)name, (void)force;
  bm__set_os_error(0);
  return BM_ENOTSUP;
}

/* The object manager's namespace (\Sessions\N\BaseNamedObjects) can be walked only through
 * the native NtOpenDirectoryObject / NtQueryDirectoryObject, which Microsoft documents as
 * subject to change, and a section found there says nothing of who made it nor whether it is
 * a dataset until it is opened; no supported Win32 call lists sections. */
int bm__os_section_list(const char *name, int (*fn)(void *arg, const bm__os_entry_t *e),
                        void *arg) {
  (void)name, (void)fn, (void)arg;
  bm__set_os_error(0);
  return BM_ENOTSUP;
}

/* ---- Opening. */

/* The size and page kind of an opened section. NtQuerySection gives both exactly (it needs
 * SECTION_QUERY access); without it, a view of the whole section is mapped and measured
 * with VirtualQuery, which rounds the size up to whole pages (for a section bulkmap made
 * that is its size; for another program's it is the bytes a view can really reach). */
static int win_section_facts(HANDLE m, int can_query, uint64_t *size, int *large) {
  win_query_section_fn q = NULL;
  HMODULE nt = GetModuleHandleW(L"ntdll.dll");
  MEMORY_BASIC_INFORMATION mbi;
  void *v;

  *large = 0;
  if (can_query && nt != NULL)
    q = (win_query_section_fn)(void (*)(void))GetProcAddress(nt, "NtQuerySection");
  if (q != NULL) {
    win_section_basic_t sbi;
    memset(&sbi, 0, sizeof(sbi));
    if (q(m, 0 /* SectionBasicInformation */, &sbi, sizeof(sbi), NULL) >= 0 && sbi.size.QuadPart > 0) {
      *size = (uint64_t)sbi.size.QuadPart;
      *large = (sbi.attributes & SEC_LARGE_PAGES) != 0;
      return 0;
    }
  }
  v = MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0);
  if (v == NULL) return bm__win_last_error();
  if (VirtualQuery(v, &mbi, sizeof(mbi)) == 0) {
    int err = bm__win_last_error();
    UnmapViewOfFile(v);
    return err;
  }
  *size = (uint64_t)mbi.RegionSize;
  UnmapViewOfFile(v);
  return 0;
}

int bm__os_section_open(bm_source_t *src, const char *name, unsigned access) {
  const bm__os_config_t *cfg = bm__os_config();
  WCHAR wname[WIN_NAME_CAP];
  DWORD want = FILE_MAP_READ;
  HANDLE m;
  uint64_t size = 0;
  size_t lp;
  int err, large, query = 1;

  if ((err = win_name(name, wname)) != 0) return err;
  if (access & BM_ACCESS_WRITE) want |= FILE_MAP_WRITE;
  /* SECTION_QUERY lets NtQuerySection read the size; a section whose security refuses it
   * is opened without and measured through a view. */
  m = OpenFileMappingW(want | SECTION_QUERY, FALSE, wname);
  if (m == NULL && GetLastError() == ERROR_ACCESS_DENIED) {
    query = 0;
    m = OpenFileMappingW(want, FALSE, wname);
  }
  if (m == NULL) return bm__win_last_error();
  if ((err = win_section_facts(m, query, &size, &large)) != 0) {
    CloseHandle(m);
    return err;
  }
  lp = bm__win_large_page_size();
  src->fd = BM_OS_INVALID_HANDLE;
  src->mapping = m;
  src->size = size;
  src->kind = BM__SRC_SECTION;
  src->flags = (access & BM_ACCESS_WRITE) ? BM_FILE_WRITE : BM_FILE_READ;
  if (large && lp != 0) {
    /* Views of a large-page section are whole large pages at multiples of
     * GetLargePageMinimum(). */
    src->granularity = lp;
    src->page_size = lp;
    win_set_outcome(&src->large, BM_LARGE_OFF, 1, lp, BM_REASON_NONE);
  } else {
    src->granularity = cfg->granularity;
    src->page_size = cfg->page_size;
    win_set_outcome(&src->large, BM_LARGE_OFF, 0, cfg->page_size, BM_REASON_NOT_REQUESTED);
  }
  if (strlen(name) < sizeof(src->path)) strcpy(src->path, name);
  return 0;
}

int bm__os_section_large(bm_source_t *src, bm_large_t *outcome) {
  *outcome = src->large;
  outcome->page_size = src->page_size;
  return 0;
}
