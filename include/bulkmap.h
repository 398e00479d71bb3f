/* bulkmap: map bulk data (huge files, large-page shared sections) through views whose
 * offsets the library aligns to the OS allocation granularity, and walk any source in
 * bounded sliding windows. The one public header; C11, usable from C++.
 *
 * Conventions (libuv's): every fallible call returns int, 0 on success or a negative
 * BM_E* code. The raw OS error of the calling thread's last failure is kept
 * (bm_last_os_error). The library never prints and never exits. Sizes in memory are
 * size_t; file offsets and lengths are uint64_t on every platform. */
#ifndef BULKMAP_H
#define BULKMAP_H

#include <stddef.h>
#include <stdint.h>

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

/* Returns BM_VERSION_STRING of the library actually linked. */
BM_EXTERN const char *bm_version(void);

/* ---------------------------------------------------------------------------------------
 * Errors. One table: XX(NAME, value, message). */
#define BM_ERRNO_MAP(XX)                                                                   \
  XX(EINVAL, -1, "invalid argument")                                                       \
  XX(ENOMEM, -2, "out of memory")                                                          \
  XX(ENOENT, -3, "no such file or section")                                                \
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
  XX(EOS, -25, "operating system error")

typedef enum {
#define BM__ERR_ENUM(name, val, msg) BM_##name = (val),
  BM_ERRNO_MAP(BM__ERR_ENUM)
#undef BM__ERR_ENUM
  BM__ERR_MIN = -26
} bm_errno_t;

/* Message for a BM_E* code; "unknown error" for anything else. Never NULL. */
BM_EXTERN const char *bm_strerror(int err);
/* Name of a BM_E* code ("EINVAL"); "UNKNOWN" for anything else. Never NULL. */
BM_EXTERN const char *bm_err_name(int err);
/* The raw OS error (errno, or GetLastError() on Windows) behind the calling thread's
 * last failure, or 0 when that failure was the library's own decision. */
BM_EXTERN int bm_last_os_error(void);

/* ---------------------------------------------------------------------------------------
 * Large pages: every request reports its outcome. */
typedef enum {
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
  BM_REASON_TRANSPARENT_ONLY   /* only transparent huge pages were had */
} bm_large_reason_t;

typedef struct bm_large_s {
  int requested;        /* the bm_large_mode_t asked for */
  int obtained;         /* 1 when the mapping really uses large pages (checked, not assumed) */
  int transparent;      /* 1 when what was had is transparent huge pages */
  size_t page_size;     /* page size the kernel reports for the mapping */
  int reason;           /* bm_large_reason_t: why not obtained, or why it fell back */
} bm_large_t;

/* Short text for a bm_large_reason_t ("pool empty"); never NULL. */
BM_EXTERN const char *bm_large_reason_str(int reason);

/* ---------------------------------------------------------------------------------------
 * System facts. */
#define BM_MAX_LARGE_SIZES 4
#define BM_MAX_MOUNTS 4
#define BM_PATH_MAX 512

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
  int n_large_sizes;            /* large page sizes the OS offers, ascending */
  size_t large_sizes[BM_MAX_LARGE_SIZES];
  uint64_t large_free[BM_MAX_LARGE_SIZES];  /* free pages of each size (-1: unknown) */
  uint64_t large_total[BM_MAX_LARGE_SIZES]; /* reserved pages of each size (-1: unknown) */
  size_t default_large_size;    /* the OS default large page size, 0 when none */
  int n_mounts;                 /* hugetlbfs mounts (Linux) */
  struct {
    char path[BM_PATH_MAX];
    size_t page_size;
  } mounts[BM_MAX_MOUNTS];
  int thp;                      /* bm_thp_mode_t */
  int privilege;                /* 1 may use large pages, 0 may not, -1 unknown */
  int has_populate;             /* the kernel supports MADV_POPULATE_READ (or equivalent) */
} bm_sysinfo_t;

/* Fills *info from the OS (cheap; the static parts are read once). Errors: BM_EINVAL. */
BM_EXTERN int bm_sysinfo_get(bm_sysinfo_t *info);
/* The view offset granularity; never 0. */
BM_EXTERN size_t bm_granularity(void);
/* The base page size; never 0. */
BM_EXTERN size_t bm_page_size(void);

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

typedef struct bm_view_s {
  void *data;          /* the exact byte asked for (never NULL, even when length is 0) */
  size_t length;       /* bytes usable at data */
  uint64_t offset;     /* the offset asked for */
  /* private */
  void *base;          /* what the OS mapped: offset rounded down to the granularity */
  size_t map_length;
  bm_source_t *src;
  unsigned access;
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

typedef struct bm_window_s {
  /* the current window, valid after bm_window_next returned 1 */
  const unsigned char *data;
  size_t length;       /* bytes at data, including the overlap */
  size_t overlap;      /* leading bytes repeated from the previous window */
  uint64_t offset;     /* source offset of data[0] */
  uint64_t peak_mapped;/* most bytes mapped at once so far */
  /* private */
  bm_source_t *src;
  uint64_t start, end, pos, step, ovl;
  uint64_t mapped;
  int readahead, prefault, fresh, done_empty;
  unsigned access;
  bm_view_t cur, next;
  uint64_t next_pos;
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

/* ---------------------------------------------------------------------------------------
 * Named shared sections (DESIGN section 2). Names: 1-200 of [A-Za-z0-9._-]; on Windows a
 * "Local\" or "Global\" prefix is passed through. Linux: /dev/shm/NAME, or NAME on a
 * hugetlbfs mount for large pages. */
#define BM_NAME_MAX 200

typedef struct bm_section_opts_s {
  uint64_t size;            /* bytes; fixed at creation; rounded up to the page size used */
  int large;                /* bm_large_mode_t */
  size_t large_page_size;   /* 0: the OS default large page size */
  unsigned mode;            /* POSIX permission bits; 0 means 0600 (owner only) */
  int round;                /* 1: round size up to the large page size; 0: BM_EALIGN */
  int transparent;          /* 1: ask for transparent huge pages (never hugetlb) instead;
                               `large` says how strict: BM_LARGE_ON fails with BM_ENOLARGE
                               when the kernel does not give them, AUTO falls back to normal
                               pages with the reason; the outcome says transparent. Windows
                               has none (BM_REASON_UNSUPPORTED) */
} bm_section_opts_t;

/* Checks a section name. Errors: BM_ENAME. */
BM_EXTERN int bm_name_check(const char *name);
/* Creates a section exclusively (BM_EEXIST when the name is taken; NULL name: anonymous,
 * private to this process and its children). *outcome (may be NULL) gets the large-page
 * truth, read from what the kernel says of the mapping. A strict request (BM_LARGE_ON)
 * that cannot be met fails with BM_ENOLARGE and outcome->reason set; BM_LARGE_AUTO falls
 * back to normal pages and sets the reason. The section is read-write.
 * Errors: BM_EINVAL, BM_ENAME, BM_EEXIST (also when the name exists in the other place,
 * shared memory or a hugetlbfs mount), BM_EALIGN (BM_LARGE_ON, size not a multiple of the
 * large page size and round 0), BM_ENOLARGE, BM_ENOMEM, BM_EOS. */
BM_EXTERN int bm_section_create(bm_source_t **out, const char *name,
                                const bm_section_opts_t *opts, bm_large_t *outcome);
/* Opens an existing section by name (searching shared memory and the hugetlbfs mounts;
 * BM_EAMBIGUOUS when both have it). access: BM_ACCESS_READ or BM_ACCESS_WRITE.
 * Errors: BM_ENAME, BM_ENOENT, BM_EACCES, BM_EAMBIGUOUS. */
BM_EXTERN int bm_section_open(bm_source_t **out, const char *name, unsigned access);
/* Removes a named section (the memory lives on until the last mapping goes).
 * Errors: BM_ENAME, BM_ENOENT, BM_EACCES, BM_EAMBIGUOUS (in both places: neither is
 * removed), BM_ENOTSUP (Windows: sections die with their last handle). */
BM_EXTERN int bm_section_remove(const char *name);
/* The large-page outcome of an open section (page size from the kernel). For a section
 * opened by name, requested reads BM_LARGE_OFF: the opener asked for nothing. */
BM_EXTERN int bm_section_large(bm_source_t *src, bm_large_t *outcome);

/* ---------------------------------------------------------------------------------------
 * Dataset trailer (DESIGN section 2): the last 4096 bytes of a dataset section. */
#define BM_TRAILER_SIZE 4096
#define BM_TRAILER_VERSION 1

typedef enum {
  BM_STATE_LOADING = 1,
  BM_STATE_READY = 2,
  BM_STATE_FAILED = 3
} bm_state_t;

typedef struct bm_trailer_s {
  uint32_t version;
  uint32_t state;        /* bm_state_t */
  uint64_t payload_size;
  uint64_t xxh3;
  uint64_t page_size;
  int64_t writer_pid;
  int64_t created;       /* seconds since the Unix epoch */
  char source[256];      /* source file name, NUL-terminated, truncated to fit */
} bm_trailer_t;

/* Name of a bm_state_t ("ready"); "unknown" otherwise. */
BM_EXTERN const char *bm_state_name(int state);
/* Decodes the trailer at the end of a section of section_size bytes whose last
 * BM_TRAILER_SIZE bytes are at `bytes` (an acquire load reads the state). Every number is
 * checked against the section: Errors: BM_ENOTDATASET (bad magic), BM_ECORRUPT (version,
 * state, sizes or checksum of the trailer wrong). Does not judge the state. */
BM_EXTERN int bm_trailer_decode(const void *bytes, uint64_t section_size, bm_trailer_t *out);
/* Encodes t into the BM_TRAILER_SIZE bytes at `bytes`, the state last with release
 * ordering. Errors: BM_EINVAL. */
BM_EXTERN int bm_trailer_encode(void *bytes, const bm_trailer_t *t);
/* Publishes a new state into an encoded trailer (release store), updating its checksum. */
BM_EXTERN int bm_trailer_set_state(void *bytes, uint32_t state);
/* Section size needed for a payload of n bytes with pages of page_size: the payload,
 * zero padding, and the trailer, rounded up to page_size. BM_EOVERFLOW when it wraps. */
BM_EXTERN int bm_dataset_size(uint64_t payload, size_t page_size, uint64_t *size);
/* Judges a decoded trailer: 0 when ready; BM_EINCOMPLETE (loading with a live writer, or
 * failed), BM_EABANDONED (loading and the writer is gone). */
BM_EXTERN int bm_trailer_check_state(const bm_trailer_t *t);

/* ---------------------------------------------------------------------------------------
 * Parsing helpers shared by the tool and applications. */

/* Parses SIZE: plain bytes or a binary suffix K M G T (one letter, upper or lower case,
 * optional trailing "iB"/"B" not accepted). Errors: BM_EINVAL (empty, junk, bad suffix),
 * BM_EOVERFLOW (does not fit in 64 bits). */
BM_EXTERN int bm_parse_size(const char *text, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* BULKMAP_H */
