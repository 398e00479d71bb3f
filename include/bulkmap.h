/* bulkmap: map bulk data (huge files, large-page shared sections) through views whose
 * offsets the library aligns to the OS allocation granularity, and walk any source in
 * bounded sliding windows. The one public header; C11, usable from C++.
 *
 * Conventions (libuv's): every fallible call returns int, BM_OK (0) on success or a negative
 * BM_E* code. What went wrong is read from one place, the calling thread's last failure
 * (SQLite's sqlite3_errmsg): bm_errmsg (the words a user reads), bm_errsubject (the file or
 * name they are about), bm_last_os_error (the raw OS error). The library never prints and
 * never exits.
 *
 * Options: every options struct has an _init call that sets its defaults
 * (bm_window_opts_init, bm_dataset_opts_init, bm_scan_opts_init, bm_load_opts_init,
 * bm_publish_opts_init); start from it, then set what differs. A struct zeroed by hand is
 * not the defaults where a default is not zero: there a length of 0 is zero bytes and a
 * large of 0 is BM_LARGE_OFF, as each field's comment says. Sizes in memory are
 * size_t; file offsets and lengths are uint64_t on every platform. */
#ifndef BULKMAP_H
#define BULKMAP_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h> /* sig_atomic_t: a cancel flag a signal handler may set */

#ifdef _WIN32
#include "bulkmap/win.h"
#else
#include "bulkmap/posix.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define BM_VERSION_MAJOR 0
#define BM_VERSION_MINOR 1
#define BM_VERSION_PATCH 0
#define BM_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH: compare with bm_version_number() at run time. */
#define BM_VERSION_NUMBER (BM_VERSION_MAJOR * 10000 + BM_VERSION_MINOR * 100 + BM_VERSION_PATCH)

/* Returns BM_VERSION_STRING of the library actually linked. */
BM_EXTERN const char *bm_version(void);
/* Returns BM_VERSION_NUMBER of the library actually linked (a program built against a newer
 * header than the library it runs with sees a smaller number). */
BM_EXTERN int bm_version_number(void);

/* ---------------------------------------------------------------------------------------
 * Errors. One table: XX(NAME, value, message). */
#define BM_ERRNO_MAP(XX)                                                                   \
  XX(EINVAL, -1, "invalid argument")                                                       \
  XX(ENOMEM, -2, "out of memory")                                                          \
  XX(ENOENT, -3, "no such file or directory")                                                \
  XX(EEXIST, -4, "already exists")                                                         \
  XX(EACCES, -5, "permission denied")                                                      \
  XX(EISDIR, -6, "is a directory")                                                         \
  XX(ENOTREG, -7, "not a regular file (cannot be mapped)")                                 \
  XX(ERANGE, -8, "offset or length past the end of the source")                            \
  XX(EOVERFLOW, -9, "offset plus length overflows, or exceeds the address space")          \
  XX(EALIGN, -10, "size or offset not a multiple of the page size that applies")           \
  XX(ETRUNCATED, -11, "the source shrank under the view")                                  \
  XX(EIO, -12, "I/O error")                                                                \
  XX(ENOSPC, -13, "no space left")                                                         \
  XX(EREADONLY, -14, "write access to a source opened read-only")                          \
  XX(ENOLARGE, -15, "large pages not obtained")                                            \
  XX(EPRIVILEGE, -16, "privilege not held")                                                \
  XX(EINCOMPLETE, -17, "section is not ready (still loading or failed)")                   \
  XX(ECORRUPT, -18, "section trailer is corrupt")                                          \
  XX(EABANDONED, -19, "section was abandoned by its writer while loading")                 \
  XX(ENAME, -20, "bad section name")                                                       \
  XX(ENOTSUP, -21, "not supported on this system")                                         \
  XX(EAMBIGUOUS, -22, "section name exists both in shared memory and on hugetlbfs")        \
  XX(ENOTDATASET, -23, "section is not a bulkmap dataset")                                 \
  XX(EBUSY, -24, "resource busy")                                                          \
  XX(EOS, -25, "operating system error")                                                   \
  XX(EPERM, -26, "operation not permitted")                                                \
  XX(ELOOP, -27, "a symbolic link where none is followed")                                 \
  XX(EFBIG, -28, "file too large (over the file size limit, ulimit -f)")                    \
  XX(EMFILE, -29, "too many open files (ulimit -n)")                                       \
  XX(EAGAIN, -30, "resource temporarily unavailable (a process, thread or memory limit: ulimit -u, -v)")   \
  XX(ECHANGED, -31, "the source file changed while it was read")                           \
  XX(ECHECKSUM, -32, "checksum mismatch: the payload does not hash to the trailer's XXH3")  \
  XX(EREPLACED, -33, "the name now refers to another section (left alone)")             \
  XX(ECANCELED, -34, "canceled")                                                           \
  XX(ENOROOM, -35, "not enough room for the section (checked before making it)")       \
  XX(EFORMAT, -36, "malformed header: not a valid npy or safetensors file")          \
  XX(ETIMEDOUT, -37, "timed out")                                                          \
  XX(EPLACE, -38, "a replace keeps the dataset's place: the other page kind needs rm, then load")

typedef enum {
  BM_OK = 0, /* success */
#define BM__ERR_ENUM(name, val, msg) BM_##name = (val),
  BM_ERRNO_MAP(BM__ERR_ENUM)
#undef BM__ERR_ENUM
  BM__ERR_MIN = -39
} bm_errno_t;

/* Message for a code ("success" for BM_OK); "unknown error" for anything else. Never NULL. */
BM_EXTERN const char *bm_strerror(int err);
/* Name of a code ("EINVAL", "OK"); "UNKNOWN" for anything else. Never NULL. */
BM_EXTERN const char *bm_err_name(int err);
/* The raw OS error (errno, or GetLastError() on Windows) behind the calling thread's
 * last failure, or 0 when that failure was the library's own decision. */
BM_EXTERN int bm_last_os_error(void);
/* The words a user reads for err, the code the calling thread's last bulkmap call returned:
 * what failed and why, with the figures and the remedy ("exists already, abandoned by its
 * writer (pid 4242): bulkmap rm weights removes it", "not loaded: 1.0 GiB needed, /dev/shm
 * has 512.0 MiB free ..."). The calls about files and datasets (bm_name_check, the dataset
 * load, publish, create, open, wait and remove calls) record such words; for any other
 * failure they are bm_strerror(err) with its name and the OS error ("permission denied
 * (EACCES; OS error 13 (0xd))"). Programs print them as they are, after the subject.
 * Thread-local; valid until the thread's next bulkmap call. Never NULL. */
BM_EXTERN const char *bm_errmsg(int err);
/* What bm_errmsg's words are about: the file's path or the dataset's name, or "" when the
 * failure recorded none (the caller knows what it passed). Never NULL. */
BM_EXTERN const char *bm_errsubject(int err);

/* ---------------------------------------------------------------------------------------
 * Large pages: every request reports its outcome. */
typedef enum {
  BM_LARGE_UNRECORDED = -1, /* bm_large_t.requested of a dataset whose trailer (version 1)
                               recorded no request */
  BM_LARGE_OFF = 0,  /* never use large pages */
  BM_LARGE_AUTO = 1, /* use them when they can be had, else fall back and say why */
  BM_LARGE_ON = 2    /* required: fail with BM_ENOLARGE (reason set) when not had */
} bm_large_mode_t;

typedef enum {
  BM_REASON_NONE = 0,          /* obtained (or not requested) */
  BM_REASON_NOT_REQUESTED,     /* mode was BM_LARGE_OFF */
  BM_REASON_NO_PRIVILEGE,      /* SeLockMemoryPrivilege not held / not root */
  BM_REASON_POOL_EMPTY,        /* no free huge pages in the pool */
  BM_REASON_NO_MOUNT,          /* no hugetlbfs mount for a named large-page section */
  BM_REASON_SIZE_NOT_MULTIPLE, /* size or offset not a multiple of the large page size */
  BM_REASON_UNSUPPORTED,       /* the OS or kernel has no large pages */
  BM_REASON_TRANSPARENT_ONLY,  /* only transparent huge pages were had */
  BM_REASON_POOL_TOO_SMALL,    /* free huge pages, but fewer than the size needs */
  BM_REASON_MOUNT_LIMIT,       /* the hugetlbfs mount's size= limit has fewer free pages than
                                  the size needs (the pool may have more) */
  BM_REASON_MOUNT_INODES       /* the hugetlbfs mount's nr_inodes= limit: no inode free */
} bm_large_reason_t;

#define BM_PATH_MAX 512

typedef struct bm_large_s {
  bm_large_mode_t requested; /* asked for */
  int obtained;         /* 1 when the mapping really uses large pages (checked, not assumed) */
  int transparent;      /* 1 when what was had is transparent huge pages */
  size_t page_size;     /* page size the kernel reports for the mapping */
  bm_large_reason_t reason; /* why not obtained, or why it fell back */
  /* For the pool reasons: huge pages the request needed and the pool had free (0 when
   * not known); for BM_REASON_MOUNT_LIMIT: needed and free under the mount's size= */
  uint64_t pages_needed, pages_free;
  /* For the mount reasons: the mount's limit (size= in pages, or nr_inodes=) and its path
   * ("" for the other reasons) */
  uint64_t mount_limit;
  char mount[BM_PATH_MAX];
} bm_large_t;

/* Short text for a bm_large_reason_t ("pool empty"); never NULL. */
BM_EXTERN const char *bm_large_reason_str(int reason);
/* The reason with its figures into buf ("pool too small: 48 of 151 pages free",
 * "hugetlbfs mount size limit: 2 of 3 pages free on /mnt/huge (size= 4 pages)"); returns
 * buf. n of BM_DESCRIBE_MAX is always enough (the mount reasons name the mount). */
#define BM_DESCRIBE_MAX (160 + BM_PATH_MAX)
BM_EXTERN const char *bm_large_describe(const bm_large_t *large, char *buf, size_t n);

/* ---------------------------------------------------------------------------------------
 * System facts. */
typedef enum {
  BM_THP_UNSUPPORTED = 0,
  BM_THP_NEVER,
  BM_THP_MADVISE,
  BM_THP_ALWAYS
} bm_thp_mode_t;

typedef struct bm_sysinfo_s {
  char os[64];                  /* "linux", "windows", ... */
  size_t page_size;             /* base page size */
  size_t granularity;           /* view offset granularity (64 KiB on Windows) */
  int n_large_sizes;            /* large page sizes the OS offers, however many: each one,
                                   with its pool, is bm_sysinfo_large_size(i) */
  size_t default_large_size;    /* the OS default large page size, 0 when none */
  int n_mounts;                 /* hugetlbfs mounts (Linux), however many: each one is
                                   bm_sysinfo_mount(i) */
  bm_thp_mode_t thp;
  char shmem_enabled[16];       /* Linux: shmem_enabled's mode ("never", "advise", ...);
                                   "" where there is none */
  int privilege;                /* 1 may use large pages, 0 may not, -1 unknown */
  int has_populate;             /* the kernel supports MADV_POPULATE_READ (or equivalent) */
} bm_sysinfo_t;

/* Fills *info from the OS (cheap; the static parts are read once). Errors: BM_EINVAL. */
BM_EXTERN int bm_sysinfo_get(bm_sysinfo_t *info);

/* A hugetlbfs mount (Linux): its directory and the huge page size its files get. */
typedef struct bm_mount_s {
  char path[BM_PATH_MAX];
  size_t page_size;
} bm_mount_t;
/* The i-th hugetlbfs mount the OS lists now (0 <= i; /proc/mounts order), into *out. There
 * is no limit to their number: BM_ENOENT past the last one (every i on Windows). Each call
 * reads the OS afresh, so mounts made or removed since bm_sysinfo_get can make n_mounts
 * stale: walk them as `for (i = 0; bm_sysinfo_mount(i, &m) == 0; i++)`. A mount whose path
 * /proc/mounts escapes (a space in it) is not listed. Errors: BM_EINVAL (out NULL, i < 0),
 * BM_ENOENT, BM_ENOMEM. */
BM_EXTERN int bm_sysinfo_mount(int i, bm_mount_t *out);
/* A large page size the OS offers, and its pool. */
typedef struct bm_large_size_s {
  size_t size;    /* bytes a page */
  uint64_t free;  /* free pages of this size (UINT64_MAX: unknown) */
  uint64_t total; /* reserved pages of this size (UINT64_MAX: unknown) */
} bm_large_size_t;
/* The i-th large page size the OS offers now (0 <= i; ascending), with its pool, into *out
 * (Linux: the /sys/kernel/mm/hugepages/hugepages-<N>kB directories, the pool's
 * free_hugepages and nr_hugepages; Windows: the one size GetLargePageMinimum gives, its
 * pool unknown). There is no limit to their number: BM_ENOENT past the last one (every i
 * where there are no large pages). Each call reads the OS afresh, so pools change and
 * n_large_sizes from bm_sysinfo_get can be stale: walk them as
 * `for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++)`. Errors: BM_EINVAL (out NULL,
 * i < 0), BM_ENOENT, BM_ENOMEM. */
BM_EXTERN int bm_sysinfo_large_size(int i, bm_large_size_t *out);
/* The view offset granularity; never 0. */
BM_EXTERN size_t bm_granularity(void);
/* The base page size; never 0. */
BM_EXTERN size_t bm_page_size(void);
/* 1 when a named section outlives its last handle, until removed (POSIX); 0 when it dies
 * with its last handle (Windows: a loader must hold its dataset open for others to see it). */
BM_EXTERN int bm_section_names_persist(void);
/* The process's address-space limit in bytes (ulimit -v), 0 when there is none. */
BM_EXTERN uint64_t bm_address_space_limit(void);

/* ---------------------------------------------------------------------------------------
 * Sources: anything that can be mapped. A file, or a (named or anonymous) section. */
typedef struct bm_source_s bm_source_t;

enum {
  BM_FILE_READ = 1 << 0,   /* read-only */
  BM_FILE_WRITE = 1 << 1,  /* read-write (implies read) */
  BM_FILE_CREATE = 1 << 2, /* create if missing (with BM_FILE_WRITE) */
  BM_FILE_EXCL = 1 << 3,   /* with CREATE: fail with BM_EEXIST if it exists */
  BM_FILE_TRUNC = 1 << 4,  /* truncate to 0 on open (with BM_FILE_WRITE) */
  BM_FILE_COW = 1 << 5     /* opened read-only; views are private copy-on-write */
};

/* Opens a regular file. flags: one of READ, WRITE, COW, plus CREATE/EXCL/TRUNC with WRITE.
 * Errors: BM_EINVAL (flags, NULL), BM_ENOENT, BM_EACCES, BM_EISDIR, BM_ENOTREG (FIFO,
 * device, socket: not mappable), BM_EEXIST, BM_EOS. On success *out is owned by the caller
 * (bm_source_close). Paths are UTF-8 on every platform. Linux: a file on hugetlbfs gets the
 * huge page size as its granularity; procfs and sysfs files are refused (BM_ENOTREG). */
BM_EXTERN int bm_file_open(bm_source_t **out, const char *path, unsigned flags);
/* Grows a file opened for writing to size bytes (never shrinks: BM_EINVAL when smaller).
 * Errors: BM_EREADONLY, BM_ENOSPC, BM_EIO, BM_ENOTSUP (a section). */
BM_EXTERN int bm_file_extend(bm_source_t *src, uint64_t size);
/* The source's current size, asked of the OS (so a file that shrank says so). */
BM_EXTERN int bm_source_size(bm_source_t *src, uint64_t *size);
/* Granularity that view offsets of this source align to: the allocation granularity, or
 * the large page size of a large-page section. */
BM_EXTERN size_t bm_source_granularity(const bm_source_t *src);
/* Closes the source. Views stay valid until unmapped (the OS keeps the object alive).
 * NULL is ignored. */
BM_EXTERN void bm_source_close(bm_source_t *src);

/* ---------------------------------------------------------------------------------------
 * Views at any offset. */
enum {
  BM_ACCESS_READ = 1 << 0,
  BM_ACCESS_WRITE = 1 << 1, /* shared writes; needs a source opened with BM_FILE_WRITE */
  BM_ACCESS_COPY = 1 << 2   /* private copy-on-write; the source is never modified */
};

#define BM_TO_END UINT64_MAX /* length meaning "up to the end of the source" */

/* 8-byte words of a view's private storage: 32 bytes are used on 64-bit systems (16 on
 * 32-bit ones), the rest is room to grow without changing sizeof(bm_view_t). */
#define BM_VIEW_OPAQUE_WORDS 6

typedef struct bm_view_s {
  void *data;          /* the exact byte asked for (never NULL, even when length is 0) */
  size_t length;       /* bytes usable at data */
  uint64_t offset;     /* the offset asked for */
  /* The library's own state (what the OS mapped, the source, the access). Its size is part
   * of the ABI, so that callers can keep a view on the stack or in their own structs; its
   * contents are the library's and may change in any release (pthread_mutex_t's way). */
  uint64_t opaque_[BM_VIEW_OPAQUE_WORDS];
} bm_view_t;

/* Maps [offset, offset+length) of src. offset may be any value up to the source size; the
 * mapping starts at offset rounded down to bm_source_granularity(src) and view->data points
 * at the exact byte. length BM_TO_END maps to the end. A length of 0 (or offset == size with
 * BM_TO_END) gives an empty view. Errors: BM_EINVAL, BM_ERANGE (offset or offset+length past
 * the end), BM_EOVERFLOW (offset+length wraps, or does not fit in size_t, or reaches bytes
 * the OS cannot map: 16 TiB and past in a 32-bit Linux process), BM_EREADONLY
 * (BM_ACCESS_WRITE on a read-only or copy-on-write source), BM_ENOMEM, BM_EOS. */
BM_EXTERN int bm_view_map(bm_view_t *view, bm_source_t *src, uint64_t offset,
                          uint64_t length, unsigned access);
/* Writes the view's dirty pages to the source and the source to stable storage
 * (msync+fsync / FlushViewOfFile+FlushFileBuffers). No-op for read-only or copy views. */
BM_EXTERN int bm_view_flush(bm_view_t *view);

typedef enum {
  BM_ADVICE_NORMAL = 0,
  BM_ADVICE_SEQUENTIAL,
  BM_ADVICE_RANDOM,
  BM_ADVICE_WILLNEED,
  BM_ADVICE_DONTNEED
} bm_advice_t;

/* Passes access advice to the OS. Advice the OS lacks is accepted and ignored. */
BM_EXTERN int bm_view_advise(bm_view_t *view, int advice);
/* Faults the whole view in now, in a way that fails cleanly: BM_ETRUNCATED when the source
 * shrank below the view (where touching would raise SIGBUS), BM_EIO on an I/O error.
 * Falls back to a guarded touch when the kernel lacks MADV_POPULATE_READ. */
BM_EXTERN int bm_view_prefetch(bm_view_t *view);
/* Unmaps the view and zeroes it. An empty or already unmapped view is fine. */
BM_EXTERN int bm_view_unmap(bm_view_t *view);
/* The bytes the OS mapped for the view, what it takes of the address space: from its offset
 * rounded down to the granularity to its end (rounded up to whole large pages where those
 * apply). 0 for an empty, unmapped or NULL view. Never fails. */
BM_EXTERN size_t bm_view_mapped(const bm_view_t *view);

/* Runs fn(arg) and turns a SIGBUS (Windows: EXCEPTION_IN_PAGE_ERROR) raised in this thread
 * while it runs into BM_ETRUNCATED; otherwise returns what fn returned. Thread-safe; the
 * previous handler is restored when the last guarded call returns, and faults outside any
 * guarded call go to it. fn must not leave locks held or memory half-owned if it is cut off
 * (it is unwound with siglongjmp). */
BM_EXTERN int bm_guard_call(int (*fn)(void *arg), void *arg);

/* ---------------------------------------------------------------------------------------
 * The window cursor: walks [start, start+length) of a source in windows of a fixed size.
 * Each window's new bytes follow the previous window's; a window after the first begins
 * with `overlap` bytes repeated from the end of the previous one, so a record straddling
 * an edge is seen whole. */
typedef struct bm_window_opts_s {
  uint64_t window;     /* bytes of new data a window; rounded up to the granularity; 0: 64 MiB */
  uint64_t overlap;    /* bytes repeated at the front of each window after the first; < window */
  uint64_t start;      /* first byte to walk */
  uint64_t length;     /* bytes to walk, or BM_TO_END */
  uint64_t max_mapped; /* bound on bytes mapped at once (0: no bound beyond 2 windows);
                          the window shrinks to respect it; BM_EINVAL when below 1 granule */
  int readahead;       /* map and prefetch the next window while this one is used */
  int prefault;        /* fault each window in before returning it (clean truncation error) */
  unsigned access;     /* BM_ACCESS_READ (default when 0) or BM_ACCESS_COPY */
} bm_window_opts_t;
/* The defaults: the whole source (length BM_TO_END), 64 MiB windows, no overlap, READ. */
BM_EXTERN void bm_window_opts_init(bm_window_opts_t *opts);

/* 8-byte words of a window's private storage: 232 bytes are used on 64-bit systems (208 on
 * 32-bit ones), the rest is room to grow without changing sizeof(bm_window_t). */
#define BM_WINDOW_OPAQUE_WORDS 40

typedef struct bm_window_s {
  /* the current window, valid after bm_window_next returned 1 */
  const unsigned char *data;
  size_t length;       /* bytes at data, including the overlap */
  size_t overlap;      /* leading bytes repeated from the previous window */
  uint64_t offset;     /* source offset of data[0] */
  uint64_t peak_mapped;/* most bytes mapped at once so far */
  /* The library's own state (the range, the position, the two views it maps). Its size is
   * part of the ABI, its contents are the library's (as bm_view_t's). */
  uint64_t opaque_[BM_WINDOW_OPAQUE_WORDS];
} bm_window_t;

/* Prepares a cursor over src (which must outlive it). opts may be NULL for defaults.
 * Errors: BM_EINVAL (overlap >= window, max_mapped below a granule), BM_ERANGE (start past
 * the end), BM_EOVERFLOW (start+length wraps). */
BM_EXTERN int bm_window_init(bm_window_t *w, bm_source_t *src, const bm_window_opts_t *opts);
/* Advances to the next window: returns 1 with w->data/length/offset set, 0 at the end (an
 * empty range gives one empty window, then 0), or a negative error: BM_ETRUNCATED when the source became
 * shorter than the range being walked, BM_ENOMEM, BM_EOS. The previous window is unmapped. */
BM_EXTERN int bm_window_next(bm_window_t *w);
/* Moves the cursor so that the next window starts at absolute offset `offset` (no overlap
 * on that window). Errors: BM_ERANGE outside [start, end]. */
BM_EXTERN int bm_window_seek(bm_window_t *w, uint64_t offset);
/* The window size actually used (after rounding and the max_mapped bound). */
BM_EXTERN uint64_t bm_window_size(const bm_window_t *w);
/* Unmaps whatever is mapped. Safe to call twice. */
BM_EXTERN void bm_window_close(bm_window_t *w);
/* Walks [start, start+length) of src (length BM_TO_END: to the end) in prefaulted windows
 * of about 64 MiB with read-ahead, calling fn(p, n, offset, arg) once for each window's new
 * bytes, in order, under bm_guard_call: a source cut short by another process ends the walk
 * with BM_ETRUNCATED, never a SIGBUS. Stops at fn's first non-zero result and returns it.
 * Errors: as bm_window_init (BM_ERANGE past the end becomes BM_ETRUNCATED when the source
 * shrank) and bm_window_next. */
BM_EXTERN int bm_window_walk(bm_source_t *src, uint64_t start, uint64_t length,
                             int (*fn)(const unsigned char *p, size_t n, uint64_t offset,
                                       void *arg),
                             void *arg);

/* The window arithmetic on its own, for drivers of their own (bulkmap_uv runs windows on a
 * thread pool): what a cursor over src with these opts would walk. `windows` mapped at
 * once (>= 1; read-ahead counts as a second) share opts->max_mapped: the window shrinks
 * so that that many windows, each with its overlap and a granule of alignment slack, fit.
 * Errors as bm_window_init, and BM_EINVAL when windows is 0. */
typedef struct bm_window_plan_s {
  uint64_t start, end; /* the range walked */
  uint64_t step;       /* new bytes a window: a multiple of the granularity */
  uint64_t overlap;
  uint64_t count;      /* windows in the range (an empty range has one, empty) */
} bm_window_plan_t;
BM_EXTERN int bm_window_plan(bm_source_t *src, const bm_window_opts_t *opts, unsigned windows,
                             bm_window_plan_t *out);
/* Window k (0-based) of a plan: the range to map, overlap included (none on window 0). */
BM_EXTERN void bm_window_plan_span(const bm_window_plan_t *p, uint64_t k, uint64_t *offset,
                                   uint64_t *length);

/* ---------------------------------------------------------------------------------------
 * Named shared sections (docs/design.md section 2). Names: 1-200 of [A-Za-z0-9._-]; on Windows a
 * "Local\" or "Global\" prefix is passed through. Linux: /dev/shm/NAME, or NAME on a
 * hugetlbfs mount for large pages. */
#define BM_NAME_MAX 200

/* Room: before a section is made, its size is checked against what the place it goes to
 * and the caller's memory limit have free, so that a section too large fails at once with
 * the figures (BM_ENOROOM) instead of the kernel killing the writer midway (a memory
 * cgroup's OOM killer) or a write faulting on a full /dev/shm. A check, not a reservation:
 * another process may take the room meanwhile. Large pages are checked as well (the
 * hugetlbfs mount's size= and nr_inodes= and the pool); what is short there is a large-page
 * reason (bm_large_t), not a lack of room, since normal pages may still be had. */
typedef enum {
  BM_LIMIT_NONE = 0, /* nothing short (or nothing could be read) */
  BM_LIMIT_SHM,      /* the file system of named shared memory (Linux: the tmpfs on
                        /dev/shm, its size=) */
  BM_LIMIT_CGROUP    /* the caller's memory cgroup (or an ancestor's): its limit less its
                        usage, page cache that can be dropped counted as free (cgroup v2
                        memory.max - memory.current, v1 memory.limit_in_bytes -
                        memory.usage_in_bytes). Huge pages are not charged to it */
} bm_limit_t;

typedef struct bm_preflight_s {
  bm_limit_t limit;         /* what is short; BM_LIMIT_NONE when it fits */
  uint64_t needed;          /* bytes the section needs (its size in the place checked) */
  uint64_t free;            /* bytes free under that limit */
  uint64_t total;           /* that limit's size in bytes */
  char where[BM_PATH_MAX];  /* "/dev/shm", or the cgroup's directory
                               ("/sys/fs/cgroup/memory/docker/1234") */
  /* Every figure read, short or not (UINT64_MAX: no limit, or it could not be read) */
  uint64_t shm_free, shm_total;
  uint64_t cgroup_free, cgroup_limit;
  char cgroup[BM_PATH_MAX]; /* the tightest cgroup's directory ("" when none) */
  bm_large_t large;         /* bm_dataset_preflight: what a large-page request would get
                               (reason set when the mount or the pool is short) */
} bm_preflight_t;

/* What was short, with the figures and a remedy, into buf: "needs 512.0 MiB, /dev/shm has
 * 64.0 MiB free of 64.0 MiB (mount a larger /dev/shm, e.g. docker run --shm-size, or remove
 * datasets: bulkmap ls)", "needs 512.0 MiB, memory cgroup /sys/fs/cgroup/x allows 48.0 MiB
 * more of 300.0 MiB (raise its limit, e.g. docker run --memory, or use large pages, which
 * it does not count)". "fits" for BM_LIMIT_NONE. Returns buf; n of BM_DESCRIBE_MAX * 2 is
 * always enough. */
BM_EXTERN const char *bm_preflight_describe(const bm_preflight_t *p, char *buf, size_t n);

typedef struct bm_section_opts_s {
  uint64_t size;            /* bytes; fixed at creation; rounded up to the page size used */
  bm_large_mode_t large;
  size_t large_page_size;   /* 0: the OS default large page size */
  unsigned mode;            /* POSIX permission bits; 0 means 0600 (owner only) */
  int round;                /* 1: round size up to the large page size; 0: BM_EALIGN */
  int transparent;          /* 1: ask for transparent huge pages (never hugetlb) instead;
                               `large` says how strict: BM_LARGE_ON fails with BM_ENOLARGE
                               when the kernel does not give them, AUTO falls back to normal
                               pages with the reason; the outcome says transparent. Windows
                               has none (BM_REASON_UNSUPPORTED) */
  const char *group;        /* POSIX: group (name or number) to own a named section; NULL:
                               the creator's. Ignored on Windows */
  const char *mount;        /* Linux: the hugetlbfs mount to put a named large-page section
                               on (a path /proc/mounts lists); NULL: the default-size one */
  bm_preflight_t *preflight; /* may be NULL: gets the room checked before the section was
                               made, also when it was short (BM_ENOROOM) */
} bm_section_opts_t;

/* Checks a section name. Errors: BM_ENAME. */
BM_EXTERN int bm_name_check(const char *name);
/* Creates a section exclusively (BM_EEXIST when the name is taken; NULL name: anonymous,
 * private to this process and its children). *outcome (may be NULL) gets the large-page
 * truth, read from what the kernel says of the mapping. A strict request (BM_LARGE_ON)
 * that cannot be met fails with BM_ENOLARGE and outcome->reason set; BM_LARGE_AUTO falls
 * back to normal pages and sets the reason. The section is read-write.
 * Before anything is made the room is checked (bm_preflight_t; opts->preflight gets the
 * figures): a hugetlbfs mount or pool too small is a large-page reason (AUTO falls back to
 * normal pages and says why); normal pages that do not fit in shared memory or under the
 * memory cgroup are BM_ENOROOM.
 * Exclusive without a shared lock (nobody can hold one to stall you): the object is made
 * O_EXCL in its place with no permission bits (so no other user can open it, let alone
 * lock it), its writer lock is taken, and then the other places are looked at; of two
 * creators of one name in two places the one on the file system with the lower device
 * number wins, the other steps back (BM_EEXIST) and removes what it made.
 * Errors: BM_EINVAL, BM_ENAME, BM_EEXIST (also when the name exists in the other place,
 * shared memory or a hugetlbfs mount), BM_EALIGN (BM_LARGE_ON, size not a multiple of the
 * large page size and round 0), BM_ENOLARGE, BM_ENOROOM, BM_ENOMEM, BM_EOS. */
BM_EXTERN int bm_section_create(bm_source_t **out, const char *name,
                                const bm_section_opts_t *opts, bm_large_t *outcome);
/* Opens an existing section by name, searching shared memory and the hugetlbfs mounts.
 * When the name exists in several places and exactly one of them is owned by the calling
 * user, that one is used; otherwise BM_EAMBIGUOUS (bm_section_list(name, ...) says where). access: BM_ACCESS_READ or BM_ACCESS_WRITE.
 * Errors: BM_ENAME, BM_ENOENT, BM_EACCES, BM_EAMBIGUOUS. */
BM_EXTERN int bm_section_open(bm_source_t **out, const char *name, unsigned access);
/* Removes a named section (the memory lives on until the last mapping goes), found as
 * bm_section_open finds it; also an object that is no section planted under the name (a
 * FIFO, socket, symlink (itself, never its target) or an empty directory), never opened.
 * What is removed is the object judged: it is moved aside under a name no section can have,
 * checked to be the same (device and inode), then removed; one swapped in meanwhile is put
 * back and judged again. No lock is taken, so nobody can stall a remove.
 * Errors: BM_ENAME, BM_ENOENT, BM_EACCES, BM_EPERM (another user's, in a sticky
 * directory), BM_EAMBIGUOUS (neither is removed), BM_EBUSY (a dataset whose writer is
 * still loading it: see bm_section_remove_force), BM_EISDIR (a directory that is not
 * empty), BM_ENOTSUP (Windows: sections die with their last handle). */
BM_EXTERN int bm_section_remove(const char *name);
/* bm_section_remove, also when a live writer is still loading the dataset. */
BM_EXTERN int bm_section_remove_force(const char *name);
/* The large-page outcome of an open section (page size from the kernel). For a section
 * opened by name, requested reads BM_LARGE_OFF: the opener asked for nothing. */
BM_EXTERN int bm_section_large(bm_source_t *src, bm_large_t *outcome);

/* ---------------------------------------------------------------------------------------
 * Typed payloads (docs/design.md section 6; the rules and their sources: docs/formats.md): a
 * dataset's payload is always the file's bytes from offset 0, and may be one of these
 * formats, told by its magic (auto) or asked for:
 *   raw          bytes
 *   npy          a NumPy .npy file (versions 1.0, 2.0, 3.0): "\x93NUMPY", version, a header
 *                dict (descr, fortran_order, shape) as a Python literal, then one array
 *   safetensors  an 8-byte little-endian header length N, N bytes of JSON (per tensor
 *                dtype, shape, data_offsets; an optional __metadata__), then the data
 * Headers are read as the reference implementations read them (numpy 1.24's
 * numpy.lib.format with max_header_size at 100 MB; the safetensors crate's deserialize),
 * except where the reference is lenient only by accident (duplicate keys: refused).
 * A header that fails is BM_EFORMAT, with what is wrong in a `why` text. */
typedef enum {
  BM_FORMAT_AUTO = 0,       /* by the magic; a file with neither magic is raw, one with a
                               magic that fails its checks is refused */
  BM_FORMAT_RAW = 1,
  BM_FORMAT_NPY = 2,
  BM_FORMAT_SAFETENSORS = 3
} bm_format_t;

/* Element types, named as safetensors names them (the values are stable: they are
 * recorded). numpy has no BF16, no F8 and no sub-byte floats: a reader views the byte-sized
 * ones as unsigned integers of their size (bm_dtype_descr) and keeps the name. F4 (4 bits),
 * F6_E2M3 and F6_E3M2 (6 bits) are sub-byte: bm_dtype_size gives 0, bm_dtype_bits their
 * bits. BM_DTYPE_NPY: an npy dtype with no safetensors name (structured, strings, datetimes,
 * longdouble ...): layout.descr names it as numpy does. */
typedef enum {
  BM_DTYPE_NONE = 0,
  BM_DTYPE_F64, BM_DTYPE_F32, BM_DTYPE_F16, BM_DTYPE_BF16,
  BM_DTYPE_I64, BM_DTYPE_I32, BM_DTYPE_I16, BM_DTYPE_I8,
  BM_DTYPE_U64, BM_DTYPE_U32, BM_DTYPE_U16, BM_DTYPE_U8,
  BM_DTYPE_BOOL, BM_DTYPE_F8_E4M3, BM_DTYPE_F8_E5M2,
  BM_DTYPE_C64, BM_DTYPE_C128, /* C128: npy only (numpy's complex128) */
  BM_DTYPE_F4, BM_DTYPE_F6_E2M3, BM_DTYPE_F6_E3M2,
  BM_DTYPE_F8_E8M0, BM_DTYPE_F8_E4M3FNUZ, BM_DTYPE_F8_E5M2FNUZ,
  BM_DTYPE_NPY,
  BM__DTYPE_COUNT
} bm_dtype_t;

#define BM_MAX_DIMS 32                          /* numpy's NPY_MAXDIMS (1.x) */
#define BM_SAFETENSORS_HEADER_MAX 100000000u    /* 100 MB, as the safetensors crate */
#define BM_NPY_HEADER_MAX 100000000u            /* numpy's max_header_size raised to 100 MB */
#define BM_WHY_MAX 256                          /* always room enough for a `why` text */
#define BM_DESCR_MAX 32                         /* layout.descr with its NUL */
#define BM_LAYOUT_RECORD 1u                     /* layout.flags: a structured npy dtype */

/* One array in the payload: its element type, shape and where its bytes lie. */
typedef struct bm_layout_s {
  bm_dtype_t dtype;
  char byteorder;             /* '<' little-endian, '>' big-endian (npy only), '|' none */
  char order;                 /* 'C' (row-major) or 'F' (npy fortran_order: column-major) */
  uint32_t item_size;         /* bytes an element (0 for the sub-byte dtypes) */
  uint32_t ndim;              /* 0 (a scalar: one element) .. BM_MAX_DIMS */
  uint64_t shape[BM_MAX_DIMS];
  uint64_t data_offset;       /* payload offset of the first element */
  uint64_t data_length;       /* bytes: the shape's product times the element's size */
  uint32_t flags;             /* BM_LAYOUT_RECORD: structured; the whole descr is in the
                                 compact layout (src/format.c), descr is "|V<item_size>" */
  char descr[BM_DESCR_MAX];   /* npy: numpy's type string of an element ("<f4", "|S5",
                                 "<U3", "<M8[ns]", "|V12"); "" for safetensors */
} bm_layout_t;

/* One tensor of a safetensors payload: its name (exact bytes, valid UTF-8, may hold a NUL:
 * name_len counts them; a NUL follows for C readers; owned by the list) and layout (order
 * 'C'; data_offset is the payload offset: 8 + N + begin). */
typedef struct bm_tensor_s {
  const char *name;
  bm_layout_t layout;
  size_t name_len;
} bm_tensor_t;

/* One __metadata__ pair of a safetensors header (exact bytes, NUL-terminated too). */
typedef struct bm_meta_s {
  const char *key;
  const char *value;
  size_t key_len, value_len;
} bm_meta_t;

/* What a header says, judged. */
typedef struct bm_format_info_s {
  bm_format_t format;         /* RAW, NPY or SAFETENSORS (never AUTO) */
  int has_layout;             /* 1: layout is the payload's one array (npy) */
  bm_layout_t layout;
  uint64_t header_bytes;      /* bytes before the data (npy: magic..dict; safetensors 8 + N) */
  uint32_t n_tensors;         /* safetensors: tensors in the header (__metadata__ excluded) */
  uint32_t n_metadata;        /* safetensors: __metadata__ pairs */
  uint64_t payload_size;      /* the size the header was judged against */
} bm_format_info_t;

/* "raw", "npy", "safetensors" ("auto" for BM_FORMAT_AUTO); "unknown" otherwise. */
BM_EXTERN const char *bm_format_name(int format);
/* "auto" | "raw" | "npy" | "safetensors" into *format. Errors: BM_EINVAL. */
BM_EXTERN int bm_format_from_name(const char *name, bm_format_t *format);
/* "F32", "BF16", "BOOL", "C64", "F4" ..., "npy" for BM_DTYPE_NPY; "unknown" otherwise. */
BM_EXTERN const char *bm_dtype_name(int dtype);
/* The dtype named so (safetensors' names, as bm_dtype_name gives); BM_DTYPE_NONE if none. */
BM_EXTERN int bm_dtype_from_name(const char *name);
/* Bytes an element; 0 for no dtype, BM_DTYPE_NPY (see layout.item_size) and sub-byte ones. */
BM_EXTERN uint32_t bm_dtype_size(int dtype);
/* Bits an element (4 for F4, 6 for F6_*, 8 * size otherwise); 0 for no dtype and NPY. */
BM_EXTERN uint32_t bm_dtype_bits(int dtype);
/* The numpy type string that views the bytes of a layout: "<f4", ">i8", "|b1", "<c8"; the
 * types numpy lacks as unsigned integers of their size ("<u2" for BF16, "|u1" for F8; ""
 * for the sub-byte ones); an npy layout's own descr ("|S5", "<M8[ns]", "|V12"). Into buf
 * (BM_DESCR_MAX bytes are always enough); returns buf ("" for no dtype). */
BM_EXTERN const char *bm_dtype_descr(const bm_layout_t *layout, char *buf, size_t n);

/* Judges the header at the start of a payload of `size` bytes, of which the first n are at
 * `head` (n may be less than size: enough for the header is enough; for safetensors 8 + N
 * bytes, for npy 12 + its header length; with fewer, BM_EFORMAT "truncated" unless size
 * itself is shorter). format: BM_FORMAT_AUTO picks by the magic (raw when neither
 * matches; a file with a magic that fails is refused, the why ending with "--format raw
 * loads the bytes as they are"); RAW accepts anything. *out is filled on success; why (may
 * be NULL) gets what is wrong on BM_EFORMAT ("" on success). Reads nothing beyond
 * head[0, n); allocates about twice the header at most. Errors: BM_EINVAL, BM_EFORMAT,
 * BM_ENOMEM (out of memory: never reported as a bad header). */
BM_EXTERN int bm_format_check(const void *head, size_t n, uint64_t size, int format,
                              bm_format_info_t *out, char *why, size_t why_n);
/* Every tensor of a safetensors header at head[0, n) (as bm_format_check reads it), in
 * payload order (sorted by offset, then name). *out is an array of *count entries whose
 * names are owned by it, freed with bm_tensors_free (NULL when *count is 0). Errors: as
 * bm_format_check, and BM_EINVAL when the payload is not safetensors. */
BM_EXTERN int bm_format_tensors(const void *head, size_t n, uint64_t size, bm_tensor_t **out,
                                size_t *count, char *why, size_t why_n);
/* NULL is ignored. */
BM_EXTERN void bm_tensors_free(bm_tensor_t *tensors);
/* The __metadata__ pairs of a safetensors header (as bm_format_tensors reads it), in the
 * header's order; *out freed with bm_metadata_free (NULL when *count is 0). Errors: as
 * bm_format_tensors. */
BM_EXTERN int bm_format_metadata(const void *head, size_t n, uint64_t size, bm_meta_t **out,
                                 size_t *count, char *why, size_t why_n);
/* NULL is ignored. */
BM_EXTERN void bm_metadata_free(bm_meta_t *meta);
/* The npy header (magic, version 1.0, or 2.0 when the dict needs it, the dict, padded with
 * spaces to a multiple of 64 bytes) for an array of layout->dtype (BM_DTYPE_BF16 and F8
 * are written as their unsigned views; BM_DTYPE_NPY as layout->descr when it is not a
 * record), byteorder ('<' or '|'; 0: '<', or '|' for one byte; '>' too), order ('C' or
 * 'F'; 0: 'C'), ndim and shape; item_size, data_offset and data_length are ignored. *len
 * gets its length; buf may be NULL to ask (n 0). The data follows it: data_offset = *len.
 * Errors: BM_EINVAL (bad dtype, ndim, order), BM_EOVERFLOW (the shape's bytes overflow),
 * BM_ENOSPC (n < *len). */
BM_EXTERN int bm_npy_header(const bm_layout_t *layout, void *buf, size_t n, size_t *len);

/* ---------------------------------------------------------------------------------------
 * Datasets (docs/design.md section 2): a named section whose payload starts at offset 0, followed
 * by zeros and a 4096-byte trailer (checksum, state, what was asked for and obtained). The
 * library owns the whole lifecycle; the trailer format is private to it.
 *
 *   writer: bm_dataset_create -> fill bm_dataset_source() through views or windows
 *           (optionally bm_dataset_hash_view in order) -> bm_dataset_publish -> close;
 *           on any failure bm_dataset_fail (or just bm_dataset_close).
 *   reader: bm_dataset_open -> bm_dataset_view / windows over bm_dataset_source ->
 *           bm_dataset_verify (optional) -> bm_dataset_close.
 *
 * Writer liveness: the creator holds a lock on the section that the kernel drops when it
 * dies (Linux: an open-file-description write lock, which needs a descriptor opened for
 * writing, so a reader cannot take it; Windows: a handle to a mutex, never owned, whose
 * name carries 128 random bits that the trailer records, so no one can create it first), so
 * a `loading` dataset whose lock is free is `abandoned`, whatever pid namespace either side is in. The
 * pid in the trailer is for people to read. Ownership is by identity: a writer removes its
 * section only while the name still refers to the object it created. */
#define BM_TRAILER_SIZE 4096

typedef enum {
  BM_STATE_LOADING = 1,
  BM_STATE_READY = 2,
  BM_STATE_FAILED = 3,
  BM_STATE_ABANDONED = 4, /* loading, and the writer's lock is free: it died */
  BM_STATE_CORRUPT = 5,   /* the trailer has the magic but does not check */
  BM_STATE_FOREIGN = 6,   /* not a bulkmap dataset (bm_section_list only) */
  BM_STATE_UNREADABLE = 7 /* could not be opened for reading (bm_section_list only) */
} bm_state_t;

/* Name of a bm_state_t ("ready"); "unknown" otherwise. */
BM_EXTERN const char *bm_state_name(int state);

typedef struct bm_dataset_s bm_dataset_t;

typedef struct bm_dataset_opts_s {
  uint64_t size;          /* payload bytes (0 allowed: an empty dataset) */
  bm_large_mode_t large;  /* bm_dataset_opts_init: BM_LARGE_AUTO (0 is BM_LARGE_OFF) */
  size_t large_page_size; /* 0: the OS default large page size */
  unsigned mode;          /* permission bits; 0 means 0600. Readers need only read access */
  const char *group;      /* POSIX: group name or number to own the section; NULL: yours */
  const char *mount;      /* Linux: the hugetlbfs mount to create large pages on (a path
                             /proc/mounts lists); NULL: the default-size mount */
  const char *source;     /* what is recorded as the source (e.g. a file's base name);
                             NULL: "". Truncated to 255 bytes. bm_dataset_load's words
                             (bm_errmsg) name the file by it when given */
  bm_preflight_t *preflight; /* may be NULL: gets the room checked before the section was
                             made, also when it was short (BM_ENOROOM) */
  int replace;            /* 1: NAME may exist already and is replaced atomically once the
                             new generation is published (docs/design.md section 7; see
                             bm_dataset_create). 0: exclusive (BM_EEXIST) */
} bm_dataset_opts_t;
/* The defaults: large pages BM_LARGE_AUTO, mode 0600 (a replace: the old one's), your group,
 * the first trusted place. size and source are the caller's to set. */
BM_EXTERN void bm_dataset_opts_init(bm_dataset_opts_t *opts);

/* What a dataset's trailer says, judged. */
typedef struct bm_dataset_info_s {
  char name[BM_NAME_MAX + 8]; /* the name (with a Local\ or Global\ prefix on Windows) */
  char path[BM_PATH_MAX];     /* where it lives: /dev/shm/NAME, MOUNT/NAME, or the name */
  bm_state_t state;
  uint64_t bytes;             /* payload bytes */
  uint64_t section_bytes;     /* the whole section, padding and trailer included */
  int has_xxh3;               /* 1 only for a ready dataset */
  uint64_t xxh3;              /* XXH3-64 of the payload when has_xxh3 */
  uint64_t page_size;         /* page size the section was made with */
  bm_large_t large;           /* the large-page request and outcome recorded at creation
                                 (requested is -1 for a version-1 trailer: not recorded) */
  int64_t writer_pid;         /* the creator's pid, as it saw itself (for people) */
  int64_t created;            /* seconds since the Unix epoch */
  char source[256];           /* the source recorded by the writer */
  /* What the payload is (docs/design.md section 6), recorded at publish: format RAW for a trailer
   * older than format version 4 (not recorded: the bytes are taken as they are). */
  bm_format_t format;         /* RAW, NPY or SAFETENSORS */
  int has_layout;             /* 1: layout is the payload's one array (npy, an array
                                 published from memory) */
  bm_layout_t layout;
  uint64_t header_bytes;      /* bytes of the format's header at the payload's start */
  uint32_t n_tensors;         /* safetensors: tensors (list them: bm_dataset_tensors) */
  int source_stable;          /* 1: nobody could write the source during the load (a read
                                 lease held throughout); 0: not checked (why: the load's
                                 result); -1: not recorded (a buffer, or an older dataset) */
  uint64_t padded_bytes;      /* bytes the file has past the payload: a third party that
                                 mapped a hugetlbfs dataset writable grew it to whole pages
                                 (0: none; the payload is still [0, bytes)) */
} bm_dataset_info_t;

/* Creates dataset NAME for a payload of opts->size bytes: the section is made exclusively
 * across every place a name can live (two racing creators: exactly one succeeds, the other
 * gets BM_EEXIST), sized for the payload and the trailer, with the permissions asked for,
 * and marked `loading` under this process's writer lock. *outcome (may be NULL) gets the
 * large-page truth, also on failure (BM_ENOLARGE says why in outcome->reason).
 * The room is checked first, as bm_dataset_preflight does: too little for normal pages is
 * BM_ENOROOM at once, nothing made, with the figures in *opts->preflight (when set) for
 * bm_preflight_describe.
 * On BM_EEXIST, bm_section_lookup(name, &info) says what holds the name (a dataset
 * `abandoned` by a writer that died, `failed`, `loading` by a live writer, `ready`, or a
 * `foreign` object, its owner and writer pid), so a caller can say how to go on
 * ("X exists, abandoned by its writer (pid N): bulkmap rm X removes it").
 * Errors: BM_EINVAL, BM_ENAME, BM_EEXIST, BM_ENOLARGE, BM_EALIGN, BM_ENOROOM, BM_ENOSPC,
 * BM_EACCES (group not yours), BM_ENOENT (no such group or mount), BM_EBUSY, BM_EOS. */
BM_EXTERN int bm_dataset_create(bm_dataset_t **out, const char *name,
                                const bm_dataset_opts_t *opts, bm_large_t *outcome);
/* The room bm_dataset_create would check for these opts (size, large, large_page_size,
 * mount; the rest is ignored), without making anything: *out gets every figure and, in
 * out->large, what a large-page request would get. Returns 0 when it fits (with AUTO, also
 * when large pages would not be had but normal pages fit: out->large.reason says why),
 * BM_ENOROOM when normal pages are needed and do not fit (out->limit says which limit),
 * BM_ENOLARGE (BM_LARGE_ON: the mount or the pool is short, out->large.reason), BM_EINVAL,
 * BM_EOVERFLOW. Windows refuses a section over the commit limit itself, cleanly, so it
 * checks nothing here (BM_LIMIT_NONE). */
BM_EXTERN int bm_dataset_preflight(const bm_dataset_opts_t *opts, bm_preflight_t *out);
/* The dataset's section, to map with views or windows: the payload is [0, size); a writer
 * maps it with BM_ACCESS_WRITE, a reader with BM_ACCESS_READ. Owned by the dataset. */
BM_EXTERN bm_source_t *bm_dataset_source(bm_dataset_t *ds);
/* Ties the dataset to the file it is filled from: its identity (device, inode, size,
 * modification and change times) is taken now and compared again by bm_dataset_publish,
 * which fails with BM_ECHANGED when the file changed in between (as tar's "file changed
 * as we read it"). src must stay open until publish. Errors: BM_EINVAL, BM_EOS. */
BM_EXTERN int bm_dataset_watch(bm_dataset_t *ds, bm_source_t *file);
/* Hashes the payload bytes a writable or readable view of bm_dataset_source(ds) holds,
 * as they are in the section. Views must come in payload order: the view must start at or
 * before the first byte not hashed yet and end after it (bytes hashed already are skipped,
 * so overlapping windows are fine). Lets a writer hash while it fills; without it,
 * bm_dataset_publish hashes the whole payload itself. Errors: BM_EINVAL (a view of another
 * source, or a gap), BM_ETRUNCATED. */
BM_EXTERN int bm_dataset_hash_view(bm_dataset_t *ds, const bm_view_t *view);
/* Publishes the dataset as `ready` with the XXH3 of its payload, computed by the library
 * from the section (from what bm_dataset_hash_view saw, or in one pass now). A watched
 * source that changed fails the publish (BM_ECHANGED) and nothing is published; the caller
 * then calls bm_dataset_fail. Errors: BM_EINVAL (not a writer, hashed only in part),
 * BM_ECHANGED, BM_ETRUNCATED, BM_ENOSPC (shared memory full), BM_EOS. *info (may be NULL)
 * gets what a reader will see. */
BM_EXTERN int bm_dataset_publish(bm_dataset_t *ds, bm_dataset_info_t *info);
/* Marks an unpublished dataset `failed` and removes its name if the name still refers to
 * this dataset's section (else leaves the name alone and returns BM_EREPLACED). A
 * published one is only removed the same way. On Windows the name goes with the last
 * handle (0). Errors: BM_EINVAL, BM_EREPLACED, BM_EOS. */
BM_EXTERN int bm_dataset_fail(bm_dataset_t *ds);
/* Removes the dataset's name if it still refers to this dataset's section (same device and
 * inode), whether or not it was published; the memory lives on while mapped. Errors:
 * BM_EREPLACED (the name now refers to another object: left alone), BM_ENOENT (already
 * gone), BM_ENOTSUP (Windows: a section lives until its last handle closes). */
BM_EXTERN int bm_dataset_remove(bm_dataset_t *ds);

enum {
  BM_OPEN_ANY_STATE = 1 << 0, /* open whatever the state (for stat): info says which */
  BM_OPEN_VERIFY = 1 << 1     /* hash the payload now and refuse a mismatch (BM_ECHECKSUM) */
};
/* Opens dataset NAME read-only. Without BM_OPEN_ANY_STATE only a ready dataset opens:
 * BM_EINCOMPLETE (loading with a live writer, or failed), BM_EABANDONED, BM_ECORRUPT,
 * BM_ENOTDATASET. *info (may be NULL) is filled whenever the trailer could be read, also
 * when the open is refused. Other errors: BM_ENAME, BM_ENOENT, BM_EACCES, BM_EAMBIGUOUS,
 * BM_ECHECKSUM, BM_ETRUNCATED (the section changed size while it was read). */
BM_EXTERN int bm_dataset_open(bm_dataset_t **out, const char *name, unsigned flags,
                              bm_dataset_info_t *info);
/* Writer, before bm_dataset_publish: says what the payload is. The header is read from
 * the section as it is now (fill at least the header first) and judged as
 * bm_format_check judges it, against the payload size; what it says (format, layout,
 * tensor count) is recorded in the trailer at publish. BM_FORMAT_AUTO by the magic; RAW
 * records nothing (the default). why (may be NULL) gets what is wrong on BM_EFORMAT.
 * Errors: BM_EINVAL (not an unpublished writer), BM_EFORMAT, BM_ENOMEM, BM_ETRUNCATED. */
BM_EXTERN int bm_dataset_set_format(bm_dataset_t *ds, int format, char *why, size_t why_n);
/* Every tensor of a safetensors dataset, parsed from the header bytes in its payload
 * (bounded by BM_SAFETENSORS_HEADER_MAX; checked again, the section is not trusted) and
 * matched against the trailer's count. *out as bm_format_tensors (bm_tensors_free).
 * Errors: BM_EINVAL (not safetensors), BM_EFORMAT / BM_ECORRUPT (the header no longer
 * agrees with the trailer), BM_ENOMEM, BM_ETRUNCATED. */
BM_EXTERN int bm_dataset_tensors(bm_dataset_t *ds, bm_tensor_t **out, size_t *count);
/* A safetensors dataset's __metadata__ (string pairs, in the header's order), from the
 * compact layout kept in its metadata (the header is not parsed again); none for other
 * formats. *out freed with bm_metadata_free (NULL when *count is 0). Errors: BM_EINVAL,
 * BM_ECORRUPT, BM_ENOMEM, BM_EINCOMPLETE (no bytes to read yet). */
BM_EXTERN int bm_dataset_metadata(bm_dataset_t *ds, bm_meta_t **out, size_t *count);
/* What the dataset is now: a writer's own state; for a reader the trailer read again and
 * judged (a writer may have published, failed or died since the open). */
BM_EXTERN int bm_dataset_info(bm_dataset_t *ds, bm_dataset_info_t *info);
/* Maps the whole payload read-only into *view (an empty view for an empty payload).
 * Errors: as bm_view_map (BM_EOVERFLOW where the payload is larger than the address
 * space: walk it with a window cursor over bm_dataset_source instead). */
BM_EXTERN int bm_dataset_view(bm_dataset_t *ds, bm_view_t *view);
/* Hashes the payload (through bounded windows, guarded) and compares it with the
 * trailer. Errors: BM_ECHECKSUM, BM_EINCOMPLETE (not ready), BM_ETRUNCATED, BM_EOS. */
BM_EXTERN int bm_dataset_verify(bm_dataset_t *ds);
/* A writer's handle is not inherited by fork: in a child the writer's descriptors are
 * closed at once (so a child that outlives a dead writer never keeps its dataset
 * `loading`), unless the role is handed on: after bm_dataset_handoff, the next fork's child
 * is the writer (it publishes or fails it) and the parent's handle only closes. Errors:
 * BM_EINVAL (not an unpublished writer), BM_ENOTSUP (Windows). */
BM_EXTERN int bm_dataset_handoff(bm_dataset_t *ds);
/* Closes the handle (views stay valid until unmapped). A writer that did not publish
 * fails the dataset first (bm_dataset_fail). NULL is ignored. */
BM_EXTERN void bm_dataset_close(bm_dataset_t *ds);

/* ---------------------------------------------------------------------------------------
 * Lifecycle (docs/design.md section 7): replacing a dataset under its readers, waiting for one,
 * reclaiming what dead writers left, tying one to its process. docs/datasets.md has the
 * exact rules.
 *
 * Replace (bm_dataset_opts_t.replace = 1, for bm_dataset_create and bm_dataset_load): the
 * new generation is made, filled and published under a hidden name no dataset can have
 * ("bulkmap#gen#NAME#PID#N", never listed, opened or taken), then becomes NAME at
 * bm_dataset_publish. Opening NAME at any instant gives the old complete dataset or the
 * new complete one, never BM_ENOENT, `loading` or a mix; readers of the old keep their
 * bytes until they close (its memory goes with its last mapping). In one place (the new
 * generation's pages are of the same kind) NAME is swapped with renameat2(RENAME_EXCHANGE),
 * checked and the old one unlinked. Across places (/dev/shm and a hugetlbfs mount) the old
 * one is marked superseded (its sticky bit), the new one renamed to NAME in its own place,
 * and then the old one removed: an opener that finds NAME in both places takes the one
 * not marked (of the same owner), and an open that loses the old one between finding and
 * opening it finds again. NAME absent: the publish makes it, exclusively (BM_EEXIST when
 * someone else made it meanwhile). Only the old one's owner, or root, may replace it:
 * BM_EPERM before anything is made (and again at publish, nothing changed). A replace that
 * fails at any step leaves the old dataset as it was and removes the new generation.
 * Windows: a named section cannot be renamed, so replacing an existing name is
 * BM_ENOTSUP (a name that does not exist yet is created as without replace). */

/* Opens dataset NAME as bm_dataset_open does, waiting up to `seconds` (< 0: no deadline;
 * NaN: BM_EINVAL)
 * while it does not exist yet or is `loading` under a live writer. Without busy polling:
 * Linux watches /dev/shm and the hugetlbfs mount directories with inotify (a name made or
 * renamed there, a writer's publish, which touches the object's times, its last close,
 * which is how a dead writer shows) and re-checks at most every 2 s; Windows re-checks
 * every 50 ms. Ends at once on `failed` (BM_EINCOMPLETE, info->state FAILED) and
 * `abandoned` (BM_EABANDONED), and at the deadline with BM_ETIMEDOUT (*info: the last state
 * seen, state 0 when NAME never appeared). flags: BM_OPEN_VERIFY (not ANY_STATE: BM_EINVAL).
 * Other errors as bm_dataset_open. */
BM_EXTERN int bm_dataset_wait_open(bm_dataset_t **out, const char *name, unsigned flags,
                                   double seconds, bm_dataset_info_t *info);

/* What bm_dataset_reclaim removed. */
typedef struct bm_reclaimed_s {
  char name[BM_NAME_MAX + 64]; /* the dataset's name; for a generation left by a replace
                                  whose writer died, its hidden name (bulkmap#gen#...) */
  char place[BM_PATH_MAX];     /* "/dev/shm" or the hugetlbfs mount */
  bm_state_t state;            /* BM_STATE_ABANDONED or BM_STATE_FAILED */
  uint64_t bytes;              /* the section's size: the memory freed once unmapped */
  uint32_t uid;
  int64_t writer_pid;          /* the dead writer's pid, as the trailer says (0: none) */
} bm_reclaimed_t;

/* Removes every dataset in /dev/shm and on every hugetlbfs mount that is `abandoned` (its
 * writer died while loading) or `failed`, and every hidden generation of a replace whose
 * writer died, that the caller may remove: its own, or any as root. Never one whose writer
 * lock is held (a live writer), whatever its state; each is removed by identity (what was
 * judged, see bm_section_remove). *out (may be NULL) gets an array of *n entries (freed
 * with bm_reclaimed_free), *freed (may be NULL) the sum of their bytes. Errors:
 * BM_ENOMEM, BM_ENOTSUP (Windows: sections die with their last handle; nothing is left). */
BM_EXTERN int bm_dataset_reclaim(bm_reclaimed_t **out, size_t *n, uint64_t *freed);
BM_EXTERN void bm_reclaimed_free(bm_reclaimed_t *list);

/* Binds the dataset's name to this process (Python's remove_on_exit): when the process
 * ends, by any path, a SIGKILL included, the name is removed if it still refers to this
 * dataset's section (same device and inode: a name replaced or made again since is left
 * alone). Linux: a watcher process (forked twice, so it is not the caller's child; it
 * leaves the caller's session, ignores terminal signals and unmaps every shared mapping
 * it inherited, so it keeps no section's memory alive) blocks reading a pipe whose only
 * write end the caller holds (close-on-exec); the kernel closes it when the caller dies
 * (or execs), and the watcher removes the name and exits. Children the caller forks hold
 * the write end too: the name goes when the last of them has ended. The binding outlives
 * the handle (close it freely); it cannot be undone, but removing the dataset earlier
 * (bm_dataset_remove) leaves the watcher nothing to do. Call it after bm_dataset_create
 * (or after publish; with replace, after publish, when the name is the dataset's).
 * Windows: a section dies with its last handle anyway: 0, nothing done. Errors:
 * BM_EINVAL (not a writer's handle), BM_EAGAIN (no process), BM_EMFILE, BM_EOS. */
BM_EXTERN int bm_dataset_remove_on_exit(bm_dataset_t *ds);

/* Whether systemd-logind removes the calling user's System V and POSIX IPC objects, the
 * datasets in /dev/shm among them, when the user's last session ends (logind.conf
 * RemoveIPC=, default yes; it spares system users, uid <= SYS_UID_MAX, and root). */
typedef struct bm_removeipc_s {
  int applies;               /* 1: logind is there, RemoveIPC is on, the user is not a
                                system user: datasets go at logout */
  int logind;                /* systemd-logind is installed and systemd runs */
  int remove_ipc;            /* the setting (1 yes, the default; 0 no) */
  uint32_t uid;              /* the effective user */
  uint32_t sys_uid_max;      /* from /etc/login.defs SYS_UID_MAX, else 999 */
  char source[BM_PATH_MAX];  /* the file that set RemoveIPC ("" for the default) */
} bm_removeipc_t;

/* Fills *out (Linux; elsewhere applies 0). Errors: BM_EINVAL. */
BM_EXTERN int bm_removeipc_check(bm_removeipc_t *out);

/* ---------------------------------------------------------------------------------------
 * Listing sections. */
typedef struct bm_section_info_s {
  char name[BM_NAME_MAX + 8];
  char place[BM_PATH_MAX];  /* the directory it lives in: "/dev/shm" or a hugetlbfs mount */
  bm_state_t state;         /* a dataset state, FOREIGN or UNREADABLE */
  uint64_t bytes;           /* payload bytes of a dataset, else the object's size */
  uint64_t page_size;       /* the page size of the place (hugetlbfs) or the dataset's */
  uint32_t uid;             /* owner */
  char owner[64];           /* owner's user name, or the number */
  unsigned mode;            /* permission bits */
  int mine;                 /* owned by the calling process's effective user */
  int64_t writer_pid;       /* datasets only, else 0 */
  int64_t created;          /* datasets only, else 0 */
  char type[16];            /* what the object is: "file", or for one planted under the
                               name (state FOREIGN, bytes 0, never opened) "directory",
                               "symlink", "fifo", "socket", "device" */
  bm_format_t format;       /* datasets: as in bm_dataset_info_t, else 0 */
  int has_layout;
  bm_layout_t layout;
  int64_t maps;             /* processes that map it now (any view, shared or private), read
                               from /proc/PID/maps; -1 where that cannot be seen (no /proc,
                               Windows, or a section others may read while some other
                               user's processes could not be inspected: not root) */
  uint64_t retired_bytes;   /* datasets: bytes of generations retired by a replace or a
                               remove that processes still map (freed at their last
                               unmap); counted where maps are (0 where not seen) */
} bm_section_info_t;

enum { BM_LIST_ALL = 1 << 0 /* also objects that are not datasets (any type) */ };

/* What holds NAME, judged as bm_section_list judges (any type, BM_LIST_ALL), picked as
 * bm_section_open picks (your own first when several places have it): for a caller that
 * met BM_EEXIST to say what is in the way and how to go on. Errors: BM_ENAME, BM_ENOENT,
 * BM_EAMBIGUOUS (*info: the first of them), BM_ENOMEM, BM_ENOTSUP (Windows). */
BM_EXTERN int bm_section_lookup(const char *name, bm_section_info_t *info);

/* Lists the sections in /dev/shm and on every hugetlbfs mount (name NULL), or every place
 * that holds NAME. *out is an array of *n entries, sorted by name then place, freed with
 * bm_section_list_free (NULL when *n is 0). Errors: BM_EINVAL, BM_ENOMEM, BM_ENOTSUP
 * (Windows: the kernel's namespace of sections cannot be listed). */
BM_EXTERN int bm_section_list(const char *name, unsigned flags, bm_section_info_t **out,
                              size_t *n);
BM_EXTERN void bm_section_list_free(bm_section_info_t *list);

/* ---------------------------------------------------------------------------------------
 * The scan engine: XXH3-64 (as xxhsum -H3), newlines (as wc -l) and the non-overlapping
 * occurrences of up to BM_SCAN_MAX_LITERALS literals (each found left to right, as a greedy
 * search finds them: "aa" occurs twice in "aaaa"), in one pass over a source, a byte range
 * of it or a buffer. The work is split into windows that any thread may count (the counts
 * of a literal across window edges are made exact by folding, in order, each window's
 * count as a function of where the previous match ended), then merged in order (the hash),
 * then finished. bm_scan runs it all on the library's own threads (bm_scan_fd for a stream
 * that is read, not mapped; bm_scan_files for many files); a driver of its own (bulkmap_uv's
 * libuv loop) calls the stages, bm_scan_begin .. bm_scan_finish.
 *
 * Per-range results fold: a scan with BM_SCAN_PART returns a bm_scan_part_t that, folded
 * in order with the parts of the adjacent ranges (bm_scan_part_fold), gives exactly the
 * whole range's counts; parts cross processes as bytes (bm_scan_part_save/load). This is
 * how a Dask cluster scans one file on many hosts. */
#define BM_SCAN_MAX_LITERALS 16
/* Longest literal: 1 MiB (and shorter than the window). */
#define BM_SCAN_MAX_LITERAL (1u << 20)
#define BM_SCAN_MAX_THREADS 256

enum {
  BM_SCAN_HASH = 1 << 0,  /* XXH3-64 of the scanned bytes */
  BM_SCAN_LINES = 1 << 1, /* count '\n' bytes */
  BM_SCAN_PART = 1 << 2   /* the result carries a part to fold (counts of matches that
                             begin in the range; they may run past its end, up to
                             match_end) */
};

typedef struct bm_literal_s {
  const void *bytes;
  size_t length; /* 1..BM_SCAN_MAX_LITERAL */
} bm_literal_t;

typedef struct bm_scan_part_s bm_scan_part_t;

typedef struct bm_scan_opts_s {
  unsigned flags;                /* BM_SCAN_*; with no HASH, LINES nor literals: HASH|LINES */
  const bm_literal_t *literals;  /* counted each on its own, in one pass; copied */
  unsigned n_literals;           /* 0..BM_SCAN_MAX_LITERALS */
  uint64_t offset;               /* first byte scanned */
  uint64_t length;               /* bytes scanned; BM_TO_END: to the end of the source */
  uint64_t match_end;            /* BM_SCAN_PART: a match beginning in the range may run up
                                    to this offset (0: the range's end; BM_TO_END: the
                                    source's end). Without PART matches lie in the range */
  uint64_t window;               /* bytes of new data a window (0: 64 MiB); rounded up to
                                    the granularity; at most 4 GiB (256 MiB in a 32-bit
                                    process) and longer than the longest literal */
  unsigned threads;              /* bm_scan's workers, 1..BM_SCAN_MAX_THREADS (0: the CPU
                                    count) */
  uint64_t max_mapped;           /* bound on bytes mapped at once (0: a quarter of the
                                    address-space limit when there is one, else none) */
  /* bm_scan calls progress(done, total, arg) on the calling thread about every 20 ms and
   * at the end; a non-zero return cancels (the call returns BM_ECANCELED). May be NULL. */
  int (*progress)(uint64_t done, uint64_t total, void *arg);
  void *progress_arg;
  /* Set non-zero (from a signal handler, or another thread) to cancel: the workers stop
   * at their next window and the call returns BM_ECANCELED. May be NULL. */
  const volatile sig_atomic_t *cancel;
} bm_scan_opts_t;
/* The defaults: the whole source (length BM_TO_END), flags 0 (with no literal: HASH|LINES),
 * 64 MiB windows, a thread a CPU, no literal. */
BM_EXTERN void bm_scan_opts_init(bm_scan_opts_t *opts);

typedef struct bm_scan_result_s {
  uint64_t offset, length;       /* the range scanned */
  uint64_t bytes;                /* bytes scanned */
  uint64_t xxh3;                 /* with BM_SCAN_HASH */
  uint64_t lines;                /* with BM_SCAN_LINES */
  uint64_t counts[BM_SCAN_MAX_LITERALS]; /* one a literal, in the order given */
  uint64_t window;               /* the window size used (after rounding and max_mapped) */
  unsigned threads;              /* workers used (bm_scan; 1 for a buffer) */
  uint64_t peak_mapped;          /* the most bytes mapped at once */
  int os_error;                  /* the raw OS error behind a failure on a worker, or 0 */
  bm_scan_part_t *part;          /* BM_SCAN_PART: owned by the caller (bm_scan_part_free) */
} bm_scan_result_t;

/* Checks a scan's options once, for every front end: flags, literal count and lengths,
 * window, threads, overflow of offset+length. Errors: BM_EINVAL (which: see the contract
 * of bm_scan_opts_t), BM_EOVERFLOW. */
BM_EXTERN int bm_scan_check(const bm_scan_opts_t *opts);
/* The same, with which argument and why in why[0..n) ("literal 2 (9 bytes) must be shorter
 * than the window (8 bytes)"; "" when fine): what a front end prints. */
BM_EXTERN int bm_scan_check_why(const bm_scan_opts_t *opts, char *why, size_t n);
/* Scans src on the library's worker threads, windows mapped, prefaulted and counted in
 * parallel, hashed in order, never more than max_mapped bytes mapped; SIGBUS-guarded: a
 * source cut short meanwhile gives BM_ETRUNCATED. *out is zeroed, then filled.
 * Errors: as bm_scan_check, BM_ERANGE (the range runs past the end), BM_ETRUNCATED,
 * BM_ECANCELED, BM_ENOMEM, BM_EAGAIN (no thread could be started), BM_EOS. */
BM_EXTERN int bm_scan(bm_source_t *src, const bm_scan_opts_t *opts, bm_scan_result_t *out);
/* The same over data[0, n) on the calling thread (a stream's buffers: see the stages for
 * many). opts->offset/length pick bytes of the buffer; with BM_SCAN_PART, match_end may
 * reach up to n. Errors: as bm_scan_check, BM_ERANGE, BM_ENOMEM. */
BM_EXTERN int bm_scan_buffer(const void *data, size_t n, const bm_scan_opts_t *opts,
                             bm_scan_result_t *out);
/* The same over a stream that cannot be mapped: a pipe, a FIFO, standard input, a
 * terminal, a socket (POSIX), or any file read from where it stands. fd is the caller's
 * and stays open: on POSIX a file descriptor (0 for standard input); on Windows a HANDLE
 * (GetStdHandle(STD_INPUT_HANDLE), or _get_osfhandle(n) of a C runtime descriptor), read
 * as bytes (no text-mode translation). It is read in order, one window at a time, into
 * buffers of window + 2 * (longest literal - 1) bytes (window 0: 8 MiB here; not rounded),
 * at most threads + 2 of them, all within max_mapped (0: a quarter of the address-space
 * limit when there is one): the window shrinks to fit. The buffers are counted on the
 * library's threads (threads 0: the CPU count, at most 4) and merged in order, so every
 * result (xxh3, lines, counts, parts) is what bm_scan gives for the same bytes as a file;
 * window is the one used, peak_mapped the bytes of buffers held at most.
 * opts->offset bytes are read and dropped first; then opts->length bytes are scanned
 * (BM_TO_END: to the end of the stream; the result's length says how many). A stream that
 * ends first gives BM_ERANGE. With BM_SCAN_PART and a match_end past the range, up to
 * (longest literal - 1) bytes after the range are read too (consumed from fd).
 * progress(done, total, arg): total is 0 while the stream's length is not known (length
 * BM_TO_END), and done at the last call; total is length otherwise. A cancel (the flag or
 * progress) is seen within about 20 ms also while a read waits on a silent writer (no
 * signal is needed; EINTR is retried), except on Windows for a console, a disk file or a
 * pipe that cannot be peeked (Wine's from the host), read as it comes (a pipe is polled).
 * Errors: as bm_scan_check, BM_EINVAL (fd not open for reading: result os_error and
 * bm_last_os_error say EBADF, or ERROR_INVALID_HANDLE), BM_EISDIR, BM_ERANGE, BM_EIO (a
 * read failed: os_error says why), BM_ECANCELED, BM_ENOMEM, BM_EAGAIN (no thread). */
BM_EXTERN int bm_scan_fd(bm_os_handle_t fd, const bm_scan_opts_t *opts, bm_scan_result_t *out);

/* One file of bm_scan_files: path in, status and result out. */
typedef struct bm_scan_file_s {
  const char *path;              /* the file (UTF-8 on Windows) */
  int status;                    /* 0, or why this file was not scanned (BM_E*; the raw OS
                                    error in result.os_error) */
  bm_scan_result_t result;       /* as bm_scan's for the file (window and threads say how
                                    it was scanned: a small file is one window on one
                                    thread); result.part is the caller's, whatever the call
                                    returns */
} bm_scan_file_t;

/* Scans many files with the same options (offset, length and match_end apply to each file
 * as bm_scan takes them), one result a file, as fast as the work allows: the small
 * regular files (up to 256 KiB) are read whole and scanned in buffers, 64 files a job on
 * the library's threads; the larger files follow one by one, each by bm_scan; what is not
 * a regular file (a FIFO, a device, a /proc file) is opened and read by bm_scan_fd. A
 * file that cannot be scanned does not stop the others: its status says why.
 * progress(done, total, arg): done is the bytes scanned over all the files so far, total
 * 0 until the last call, which gives done. A cancel stops the call: the files not scanned
 * have status BM_ECANCELED.
 * Returns 0 when every file was scanned, BM_ECANCELED, or the status of the first file
 * that failed. Errors of the call itself: as bm_scan_check, BM_EINVAL (files NULL with
 * n > 0; a NULL or empty path is that file's BM_EINVAL), BM_ENOMEM, BM_EAGAIN. */
BM_EXTERN int bm_scan_files(bm_scan_file_t *files, size_t n, const bm_scan_opts_t *opts);

/* Parts. fold: acc becomes acc followed by next (next's range must begin where acc's ends,
 * with the same literals in the same order: else BM_EINVAL); lines and bytes add up, and
 * each literal's count is exact across the edge. counts: what a scan of the whole folded
 * range would count, into counts[0..n_literals). */
BM_EXTERN int bm_scan_part_fold(bm_scan_part_t *acc, const bm_scan_part_t *next);
BM_EXTERN int bm_scan_part_counts(const bm_scan_part_t *p, uint64_t *counts, unsigned *n_literals);
/* The part's range, bytes and lines. */
BM_EXTERN void bm_scan_part_range(const bm_scan_part_t *p, uint64_t *offset, uint64_t *length,
                                  uint64_t *lines);
/* A copy of p. Errors: BM_ENOMEM. */
BM_EXTERN int bm_scan_part_copy(bm_scan_part_t **out, const bm_scan_part_t *p);
/* As bytes (for another process): *need gets the size; buf may be NULL to ask. Errors:
 * BM_ENOSPC (n < *need). */
BM_EXTERN int bm_scan_part_save(const bm_scan_part_t *p, void *buf, size_t n, size_t *need);
/* From bytes made by bm_scan_part_save: checked whole (untrusted input). Errors:
 * BM_EINVAL (not a part, or inconsistent), BM_ENOMEM. */
BM_EXTERN int bm_scan_part_load(bm_scan_part_t **out, const void *buf, size_t n);
/* NULL is ignored. */
BM_EXTERN void bm_scan_part_free(bm_scan_part_t *p);

/* The stages, for a driver of its own. A window is a chunk of the range: its bytes
 * data[0, length) lie at source offset `offset`; its first `overlap` bytes repeat the end of
 * the previous window (window 0 has none; the others have bm_scan_overlap(s) of them, or
 * all the previous bytes when the range is shorter); new bytes are data[overlap, length).
 * The matches it counts are those that begin in data[0, length - bm_scan_overlap(s)) (in
 * data[0, length) for the final window), reading up to data[avail) (avail >= length; > only
 * for the final window of a BM_SCAN_PART scan, which is given the bytes up to match_end).
 * So consecutive windows of the core's window plan (bm_window_plan with that overlap) tile
 * the range exactly. */
typedef struct bm_scan_s bm_scan_t;
typedef struct bm_scan_work_s bm_scan_work_t;
typedef struct bm_scan_chunk_s {
  const unsigned char *data;
  size_t length, overlap, avail;
  uint64_t offset;
  int final;
} bm_scan_chunk_t;

/* Starts a scan of [offset, offset+length); length BM_TO_END: a stream, whose range ends
 * with the window merged as final (or where it began, when none was). Errors: as
 * bm_scan_check, BM_ENOMEM. */
BM_EXTERN int bm_scan_begin(bm_scan_t **out, const bm_scan_opts_t *opts);
/* The overlap windows need: the longest literal's length minus one (0 without literals). */
BM_EXTERN size_t bm_scan_overlap(const bm_scan_t *s);
/* A window's scratch, reusable for window after window; one for each window in flight.
 * Errors: BM_ENOMEM. */
BM_EXTERN int bm_scan_work_new(const bm_scan_t *s, bm_scan_work_t **out);
BM_EXTERN void bm_scan_work_free(bm_scan_work_t *w);
/* Any thread, concurrently for different works: counts the window into w. Touches the
 * bytes: call it guarded (bm_guard_call) where the source may shrink. Errors: BM_EINVAL
 * (a chunk that does not fit the rule above), BM_ENOMEM. */
BM_EXTERN int bm_scan_work_run(const bm_scan_t *s, bm_scan_work_t *w, const bm_scan_chunk_t *c);
/* One thread at a time, windows in order: hashes the chunk's new bytes (it touches them)
 * and folds w's counts in. w may be reused after. Errors: BM_EINVAL (out of order),
 * BM_ENOMEM. */
BM_EXTERN int bm_scan_merge(bm_scan_t *s, bm_scan_work_t *w, const bm_scan_chunk_t *c);
/* Fills *out (counts, hash, bytes, a part with BM_SCAN_PART); the scan can then only be
 * freed. Errors: BM_EINVAL (the range was not merged to its end), BM_ENOMEM. */
BM_EXTERN int bm_scan_finish(bm_scan_t *s, bm_scan_result_t *out);
/* NULL is ignored. */
BM_EXTERN void bm_scan_free(bm_scan_t *s);

/* ---------------------------------------------------------------------------------------
 * The load: a file into a new dataset on the library's threads (onto tmpfs: read into
 * small buffers, each written with pwrite and hashed from itself; onto large pages: read
 * straight into the section's windows), hashed in payload order, the file watched (a file
 * that changed is not published: BM_ECHANGED), then published, or failed and removed. */
typedef struct bm_load_opts_s {
  bm_dataset_opts_t dataset;     /* size is the file's; source NULL: the file's base name */
  unsigned threads;              /* readers, 1..BM_SCAN_MAX_THREADS (0: the CPU count) */
  /* As bm_scan_opts_t: progress on the calling thread (non-zero cancels), cancel from a
   * signal handler or another thread. Either may be NULL. */
  int (*progress)(uint64_t done, uint64_t total, void *arg);
  void *progress_arg;
  const volatile sig_atomic_t *cancel;
  bm_format_t format;            /* the file's header is judged (from the file,
                                    before the section is made) as bm_format_check does;
                                    BM_FORMAT_AUTO (0) by the magic; RAW takes the bytes as
                                    they are */
} bm_load_opts_t;
/* The defaults: bm_dataset_opts_init's dataset, a thread a CPU, BM_FORMAT_AUTO. */
BM_EXTERN void bm_load_opts_init(bm_load_opts_t *opts);

enum { BM_LOAD_AT_FILE = 1, BM_LOAD_AT_CREATE = 2, BM_LOAD_AT_FILL = 3, BM_LOAD_AT_FORMAT = 4 };

typedef struct bm_load_result_s {
  bm_dataset_info_t info;        /* what a reader will see (filled once published) */
  bm_large_t large;              /* the large-page request and outcome, also on failure */
  double seconds;                /* from the section's creation to its publication */
  int os_error;                  /* the raw OS error behind a failure on a reader thread */
  int removed;                   /* on failure: 1 the section was removed, 0 none was made,
                                    -1 the name now refers to another object (left alone) */
  int failed_at;                 /* on failure, the step: BM_LOAD_AT_FILE (opening or sizing
                                    the file: the error is the file's), BM_LOAD_AT_CREATE
                                    (making the dataset: the name's), BM_LOAD_AT_FILL (the
                                    reads, the checksum, the publish), BM_LOAD_AT_FORMAT
                                    (the header: BM_EFORMAT, why says what is wrong) */
  char why[BM_WHY_MAX];          /* BM_EFORMAT: what is wrong with the header ("" else) */
  /* One copy in RAM: pages of the file that the load brought into the page cache are
   * dropped after it (those resident before stay). What is left cached of the file: */
  int has_source_cached;         /* 0 where it cannot be seen (Windows) */
  uint64_t source_cached_bytes;
  uint64_t source_cached_before; /* ... and what was cached before the load */
  /* Whether anyone could write the file during the load unseen (through a mapping whose
   * pages were dirty already, which changes no size or time): where a read lease could be
   * had it was held throughout (a break is BM_ECHANGED); where not, the load went on. */
  int source_stable;             /* 1 checked; 0 not checked, unstable_why says why */
  char unstable_why[160];
} bm_load_result_t;

/* Loads the file at path into a new dataset NAME. On success the dataset is `ready`; with
 * out non-NULL the caller gets the writer's handle (to remove it later: bm_dataset_remove,
 * as `load --hold` does), else it is closed. On failure nothing is left under the name
 * (removed says what happened) and *out is NULL.
 * Errors: as bm_file_open (path), bm_dataset_create (name), and BM_ECHANGED (the file
 * changed while it was read), BM_ETRUNCATED (it shrank), BM_ENOSPC (no memory for the
 * section's pages), BM_EIO, BM_ECANCELED, BM_EAGAIN (no thread), BM_EOS. */
BM_EXTERN int bm_dataset_load(bm_dataset_t **out, const char *name, const char *path,
                              const bm_load_opts_t *opts, bm_load_result_t *result);

/* Publishing from memory: what bm_dataset_publish_buffer takes. */
typedef struct bm_publish_opts_s {
  bm_dataset_opts_t dataset;     /* size is computed; source NULL: "" */
  bm_format_t format;            /* without layout: the bytes are judged as a file's are
                                    (BM_FORMAT_AUTO (0) by the magic, RAW as they are) */
  const bm_layout_t *layout;     /* NULL, or the bytes are one array of this dtype, shape,
                                    order and byte order (item_size and data_offset are
                                    ignored; data_length must equal n): the payload is
                                    then an npy file (bm_npy_header, then the bytes), so
                                    plain numpy reads it, and the dataset has the layout */
} bm_publish_opts_t;
/* The defaults: bm_dataset_opts_init's dataset, BM_FORMAT_AUTO, no layout. */
BM_EXTERN void bm_publish_opts_init(bm_publish_opts_t *opts);

/* Publishes data[0, n) as a new dataset NAME in one call: checked (format or layout),
 * created, copied in (onto tmpfs with pwrite straight from data, hashed there beside the
 * writes), hashed and published `ready`; on failure nothing is left under the name. data
 * must not change meanwhile: bytes changed by another thread during the call may be
 * written other than hashed, and bm_dataset_verify then says the dataset is corrupt. *result as for bm_dataset_load (failed_at is
 * BM_LOAD_AT_FORMAT for a bad header or layout, AT_CREATE, AT_FILL; source_cached is not
 * set). out as for bm_dataset_load (NULL: closed; on POSIX it stays until removed).
 * Errors: BM_EINVAL, BM_EFORMAT (why in result->why), BM_EOVERFLOW, and as
 * bm_dataset_create and bm_dataset_publish. */
BM_EXTERN int bm_dataset_publish_buffer(bm_dataset_t **out, const char *name, const void *data,
                                        size_t n, const bm_publish_opts_t *opts,
                                        bm_load_result_t *result);

/* ---------------------------------------------------------------------------------------
 * XXH3-64 (equal to xxhsum -H3), streaming; the dataset checksum. */
typedef struct bm_xxh3_s bm_xxh3_t;
/* NULL when out of memory. */
BM_EXTERN bm_xxh3_t *bm_xxh3_new(void);
BM_EXTERN void bm_xxh3_update(bm_xxh3_t *h, const void *p, size_t n);
BM_EXTERN uint64_t bm_xxh3_digest(const bm_xxh3_t *h);
/* NULL is ignored. */
BM_EXTERN void bm_xxh3_free(bm_xxh3_t *h);

/* ---------------------------------------------------------------------------------------
 * Parsing helpers shared by the tool and applications. */

/* Parses SIZE as coreutils takes it: decimal digits, then nothing (bytes) or a suffix:
 * K M G T or KiB MiB GiB TiB, powers of 1024 (64M = 64MiB = 67108864); KB MB GB TB,
 * powers of 1000 (64MB = 64000000). A lower-case k m g t reads as its capital (64m = 64M,
 * 64kB = 64KB); "iB" and "B" are taken only as written. No sign, space, fraction or other
 * suffix. *out is set only on success. Errors: BM_EINVAL (NULL, empty, junk, bad suffix),
 * BM_EOVERFLOW (does not fit in 64 bits). */
BM_EXTERN int bm_size_parse(const char *text, uint64_t *out);
/* Bytes as people read them into buf ("512 bytes", "64.0 MiB", "2.0 GiB": one decimal, units
 * of 1024 as bm_size_parse reads them); returns buf ("" when n is 0). 16 bytes is always
 * enough. */
BM_EXTERN const char *bm_size_format(uint64_t v, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* BULKMAP_H */
