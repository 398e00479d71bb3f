/* bulkmap internals shared by the portable code and both backends: the source object and
 * small arithmetic helpers. Nothing here includes an OS header. */
#ifndef BULKMAP_INTERNAL_H
#define BULKMAP_INTERNAL_H

#include "bulkmap.h"

enum { BM__SRC_FILE = 1, BM__SRC_SECTION = 2, BM__SRC_ANON = 3 };

struct bm_source_s {
  bm_os_handle_t fd;      /* file descriptor, or the file HANDLE on Windows */
  bm_os_handle_t mapping; /* Windows: the file-mapping object; POSIX: unused */
  uint64_t size;          /* bytes (a section's size is fixed at creation) */
  size_t granularity;     /* view offsets align to this */
  size_t page_size;       /* page size of the mappings (large page size when large) */
  unsigned flags;         /* BM_FILE_* the source was opened with */
  int kind;               /* BM__SRC_* */
  int hugetlb;            /* POSIX: backed by hugetlbfs / MFD_HUGETLB */
  int thp;                /* POSIX: views get MADV_HUGEPAGE */
  bm_large_t large;       /* outcome of the large-page request at creation / open */
  uint64_t dev, ino;      /* POSIX: identity of a named section's object (0: none) */
  bm_os_handle_t lock;    /* Windows: the writer mutex a section's creator holds */
  char token[33];         /* Windows: the random part of that mutex's name, 32 lowercase hex
                             digits, recorded in the trailer for readers ("" none) */
  int writer;             /* created by this process (it holds the writer lock) */
  char path[BM_PATH_MAX]; /* file path, or where the section lives (for messages:
                             truncated when long) */
  char *full_path;        /* a file's path as given, whole (NULL for sections) */
  int place_fd;           /* POSIX: a dataset's bytes made anonymously: the directory they
                             were made in (where they must be named), until taken; -1 */
  char gen_name[256];     /* POSIX: a replacing generation's hidden name (bulkmap#gen#...)
                             until bm__os_section_commit makes it NAME; "" otherwise */
};

/* ---- The private state of a view and of a window, kept in the opaque_ storage of the
 * public structs (bulkmap.h) and reached only through bm__view_priv and bm__window_priv. */
#if defined(__GNUC__) || defined(__clang__)
/* The storage is declared uint64_t[] and used as these structs: may_alias takes their
 * accesses out of type-based alias analysis, as char's are (C11 6.5p7 allows no other
 * type). MSVC does no such analysis. */
#define BM__MAY_ALIAS __attribute__((__may_alias__))
#else
#define BM__MAY_ALIAS
#endif

typedef struct BM__MAY_ALIAS bm__view_priv_s {
  void *base;          /* what the OS mapped: offset rounded down to the granularity; NULL
                          for an empty or unmapped view */
  size_t map_length;
  bm_source_t *src;    /* NULL once unmapped (or never mapped) */
  unsigned access;
} bm__view_priv_t;

typedef struct BM__MAY_ALIAS bm__window_priv_s {
  bm_source_t *src;    /* NULL before init and after close */
  uint64_t start, end, pos, step, ovl;
  uint64_t mapped;     /* bytes mapped now (cur and next) */
  int readahead, prefault, fresh, done_empty;
  unsigned access;
  bm_view_t cur, next; /* the window returned, and the one mapped ahead of it */
  uint64_t next_pos;   /* where next's new bytes begin (UINT64_MAX: none mapped ahead) */
} bm__window_priv_t;

/* The private state must fit the storage and meet its alignment on every build (64-bit,
 * i386, mingw): opaque_ is at an offset of the public struct that is a multiple of the
 * private struct's alignment, in a struct aligned at least as strictly. */
_Static_assert(sizeof(bm__view_priv_t) <= sizeof(((bm_view_t *)0)->opaque_),
               "bm__view_priv_t outgrew bm_view_t's opaque_ (BM_VIEW_OPAQUE_WORDS)");
_Static_assert(_Alignof(bm__view_priv_t) <= _Alignof(bm_view_t) &&
                   offsetof(bm_view_t, opaque_) % _Alignof(bm__view_priv_t) == 0,
               "bm_view_t's opaque_ is not aligned for bm__view_priv_t");
_Static_assert(sizeof(bm__window_priv_t) <= sizeof(((bm_window_t *)0)->opaque_),
               "bm__window_priv_t outgrew bm_window_t's opaque_ (BM_WINDOW_OPAQUE_WORDS)");
_Static_assert(_Alignof(bm__window_priv_t) <= _Alignof(bm_window_t) &&
                   offsetof(bm_window_t, opaque_) % _Alignof(bm__window_priv_t) == 0,
               "bm_window_t's opaque_ is not aligned for bm__window_priv_t");

static inline bm__view_priv_t *bm__view_priv(bm_view_t *v) {
  return (bm__view_priv_t *)(void *)v->opaque_;
}
static inline const bm__view_priv_t *bm__view_cpriv(const bm_view_t *v) {
  return (const bm__view_priv_t *)(const void *)v->opaque_;
}
static inline bm__window_priv_t *bm__window_priv(bm_window_t *w) {
  return (bm__window_priv_t *)(void *)w->opaque_;
}
static inline const bm__window_priv_t *bm__window_cpriv(const bm_window_t *w) {
  return (const bm__window_priv_t *)(const void *)w->opaque_;
}

/* A zeroed source of the given kind with no OS object yet, the granularity and page size
 * of normal pages, and no large pages; NULL when out of memory. */
bm_source_t *bm__source_new(int kind, unsigned flags);

/* XXH3-64 of n bytes in one call (src/hash.c). */
uint64_t bm__xxh3_64(const void *p, size_t n);

/* Records the raw OS error of the calling thread's last failure. */
void bm__set_os_error(int oserr);
/* The words of a failure (bm_errmsg, bm_errsubject): recorded by the call that returns
 * code, about subject (a path or a name; may be NULL); returns code. */
int bm__error_words(int code, const char *subject, const char *fmt, ...)
#if defined(__GNUC__) && !defined(_WIN32)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Sets the thread's last OS error back to os, keeping the words recorded. */
void bm__error_keep_os(int os);
/* Forgets the thread's last failure (a call that records words, as it begins). */
void bm__error_clear(void);
/* The words for a code with none recorded: "message (NAME; OS error N (0xN))". */
const char *bm__error_default(int code, int os, char *buf, size_t n);

static inline uint64_t bm__align_down(uint64_t v, uint64_t a) { return v - v % a; }
/* Rounds v up to a multiple of a; returns 0 when that wraps. */
static inline uint64_t bm__align_up(uint64_t v, uint64_t a) {
  uint64_t r = v % a;
  if (r == 0) return v;
  return (v + (a - r) < v) ? 0 : v + (a - r);
}

/* The view and window arithmetic (src/plan.c): pure, no OS calls. */
#define BM__DEFAULT_WINDOW (64u << 20)

typedef struct bm__view_plan_s {
  uint64_t length; /* the length asked for, BM_TO_END resolved */
  uint64_t start;  /* offset to map from: a multiple of the granularity */
  uint64_t span;   /* bytes to map from start (0 for an empty view); fits in size_t */
} bm__view_plan_t;

/* Plans a view of [offset, offset+length) of a source of `size` bytes. whole_pages: round
 * the end up to the granularity (large pages): 1 where the source allows, 2 past its end too
 * (hugetlbfs: see src/plan.c). Errors: BM_EINVAL,
 * BM_ERANGE, BM_EOVERFLOW. */
int bm__view_plan(uint64_t size, uint64_t gran, int whole_pages, uint64_t offset,
                  uint64_t length, bm__view_plan_t *out);

typedef struct bm__window_plan_s {
  uint64_t start, end; /* the range walked */
  uint64_t step;       /* new bytes a window: a multiple of the granularity */
  uint64_t overlap;
  int readahead;       /* may have been given up to honour max_mapped */
} bm__window_plan_t;

/* Plans a window cursor over a source of `size` bytes. Errors as bm_window_init. */
int bm__window_plan(uint64_t size, uint64_t gran, const bm_window_opts_t *o,
                    bm__window_plan_t *out);
/* The range to map for the window whose new bytes start at pos (start <= pos < end);
 * fresh: the first window, or the first after a seek (no overlap). */
void bm__window_span(const bm__window_plan_t *p, uint64_t pos, int fresh, uint64_t *offset,
                     uint64_t *length);

/* ---- Sections (src/section.c). As bm_section_create for NAME with opts, but the section
 * is made under a hidden name (see bulkmap.h, Replace) after checking that the caller may
 * replace NAME (BM_EPERM); bm__os_section_commit makes it NAME once published. */
int bm__section_create_hidden(bm_source_t **out, const char *name,
                              const bm_section_opts_t *opts, bm_large_t *outcome);

/* ---- The dataset trailer (src/trailer.c): the last BM_TRAILER_SIZE bytes of a dataset. */
#define BM__TRAILER_VERSION 2

typedef struct bm__trailer_s {
  uint32_t version;
  uint32_t state;        /* BM_STATE_LOADING, _READY or _FAILED */
  uint64_t payload_size;
  uint64_t xxh3;
  uint64_t page_size;
  int64_t writer_pid;
  int64_t created;       /* seconds since the Unix epoch */
  char source[256];      /* NUL-terminated */
  bm_large_t large;      /* the request and its outcome (version 2; requested -1 in 1) */
  /* What the payload is (version 4; RAW and nothing else before) */
  int format;            /* bm_format_t: RAW, NPY or SAFETENSORS */
  int has_layout;        /* layout holds the payload's one array */
  bm_layout_t layout;
  uint64_t header_bytes; /* the format's header at the payload's start */
  uint32_t n_tensors;    /* safetensors */
  char writer_token[33]; /* version 5, written only while loading: the random part of the
                            writer token's name (Windows), 32 lowercase hex digits; "" none */
  int source_stable;     /* metadata beside the bytes only (not in the trailer block): 1 the
                            source was under a read lease for the whole load, 0 not checked,
                            -1 not recorded */
} bm__trailer_t;

/* Decodes the trailer at `bytes` (the last BM_TRAILER_SIZE bytes of a section of
 * section_size bytes), the state read with acquire ordering around a copy. Errors:
 * BM_ENOTDATASET (bad magic), BM_ECORRUPT (state, version, CRC or numbers that do not fit
 * the section). */
int bm__trailer_decode(const void *bytes, uint64_t section_size, bm__trailer_t *out);
/* Encodes t at `bytes`, taking the old state back first and storing the new one last with
 * release ordering. Errors: BM_EINVAL. */
int bm__trailer_encode(void *bytes, const bm__trailer_t *t);
/* Reads (write 0) or writes (1) the trailer of src, a section of `section` bytes, through
 * a guarded view of its last BM_TRAILER_SIZE bytes. Errors: those of decode and encode,
 * BM_ENOTDATASET (shorter than a trailer), BM_ETRUNCATED (cut short, or a read saw its size
 * change), BM_ENOSPC (a write's page could not be had). */
int bm__trailer_io(bm_source_t *src, uint64_t section, bm__trailer_t *t, int write);
/* The state a reader sees of t: LOADING is ABANDONED once src's writer lock is free (the
 * lock t names, where the backend finds it through the metadata). */
int bm__trailer_judge(bm_source_t *src, const bm__trailer_t *t);
/* Whether src's trailer is not written yet: all zero (a section just made), or the magic
 * without a state word (a first trailer being encoded). 1 yes, 0 no, < 0 as trailer_io. */
int bm__trailer_unwritten(bm_source_t *src, uint64_t section);
/* Section bytes for a payload with pages of page_size. BM_EOVERFLOW when it wraps. */
int bm__dataset_size(uint64_t payload, size_t page_size, uint64_t *size);


/* ---- One copy in RAM (src/cache.c): a file's page-cache residency before a load, and
 * dropping what the load brought in after it. */
typedef struct bm__cache_s {
  unsigned char *bits;   /* one bit a page: resident before */
  unsigned char *vec;    /* a window's mincore vector */
  uint64_t size, before; /* the file's bytes; bytes resident before */
  int ok;                /* the snapshot was taken (0: the OS cannot tell) */
  int all, none;         /* every page was resident / none was: no bits kept */
} bm__cache_t;
/* Notes which pages of the file f (size bytes) are resident. BM_ENOTSUP where the OS
 * cannot tell (c->ok 0; restore then does nothing), BM_ENOMEM. */
int bm__cache_snapshot(bm_source_t *f, uint64_t size, bm__cache_t *c);
/* Drops the pages not resident at the snapshot; *after gets the bytes cached now. */
int bm__cache_restore(bm_source_t *f, bm__cache_t *c, uint64_t *after);
void bm__cache_free(bm__cache_t *c);

/* ---- Typed payloads (src/format.c): the header at the start of a source of size bytes
 * (a file, or a dataset's section) copied into *buf (malloc'd, *n bytes: as much as the
 * header needs, bounded by BM_NPY_HEADER_MAX / BM_SAFETENSORS_HEADER_MAX, or a few bytes
 * when the magic says neither), guarded. Errors: as bm_view_map, BM_ENOMEM, BM_ETRUNCATED. */
int bm__format_read(bm_source_t *src, uint64_t size, unsigned char **buf, size_t *n);
/* Records what a writer's payload is (src/dataset.c), as judged already (a load judged the
 * file's header; a buffer published with a layout). Errors: BM_EINVAL (not an unpublished
 * writer). */
int bm__dataset_set_info(bm_dataset_t *ds, const bm_format_info_t *fi);

/* ==== formats' compact layout (src/format.c) ==========================================
 * What a header says, once judged, as one self-contained little-endian blob, so that
 * nothing parses the header again (a dataset keeps it in its metadata):
 *   "BMLY" u32 version(1) u32 format u32 flags(0) u64 payload_size u64 header_bytes
 *   npy:          layout, then u32 descr length + descr bytes (the dtype as a Python literal
 *                 in numpy's descr form, e.g. '<f4' or [('a', '<i4'), ('', '|V4')]: what
 *                 numpy.lib.format.descr_to_dtype takes after ast.literal_eval)
 *   safetensors:  u32 n_tensors, u32 n_metadata, u8 has_metadata, then each tensor:
 *                 u32 name length + name bytes, u32 dtype, u32 ndim, ndim x u64 shape,
 *                 u64 begin, u64 end (offsets in the data, after 8 + N); then each pair:
 *                 u32 + key bytes, u32 + value bytes
 *   raw:          nothing more
 *   u64 XXH3 of everything before it.
 * layout: u32 dtype, u8 byteorder, u8 order, u16 0, u32 item_size, u32 ndim, ndim x u64,
 * u64 data_offset, u64 data_length, u32 flags, u32 descr length + descr bytes (< BM_DESCR_MAX).
 *
 * bm__layout_encode: judges header[0, header_n) as bm_format_check did into fi (fi->format
 * and fi->payload_size are used; the header is parsed once more, here, at load) and gives
 * the blob in *out (malloc'd, free()), *out_n bytes. RAW needs no header. Errors:
 * BM_EINVAL, BM_EFORMAT (the header does not say what fi says), BM_ENOMEM.
 *
 * bm__layout_decode: every length bounds-checked (the blob may come from a file another
 * process wrote): fi gets format, has_layout, layout (npy), header_bytes, n_tensors,
 * n_metadata, payload_size. Each other output may be NULL: *tensors (as bm_format_tensors
 * gives them: payload order, bm_tensors_free), *meta (bm_metadata_free), *descr (the npy
 * descr literal, NUL-terminated, free(); NULL for other formats). Errors: BM_EINVAL,
 * BM_ECORRUPT (truncated, a bad length, checksum or value), BM_ENOMEM. */
int bm__layout_encode(const bm_format_info_t *fi, const unsigned char *header, size_t header_n,
                      unsigned char **out, size_t *out_n);
int bm__layout_decode(const unsigned char *blob, size_t n, bm_format_info_t *fi,
                      bm_tensor_t **tensors, size_t *n_tensors, bm_meta_t **meta,
                      size_t *n_meta, char **descr);
/* ==== end of formats' compact layout ================================================== */

/* ---- The scan engine's kernels (src/kernels.c): AVX2 where the CPU has it. */
int bm__cpu_avx2(void);
uint64_t bm__count_byte(const unsigned char *p, size_t n, unsigned char c);
/* The largest scan window a process of this word size maps (4 GiB; 256 MiB in 32 bits). */
uint64_t bm__scan_max_window(void);
/* The first occurrence of lit (len >= 1) in [p, p+n); NULL when none. */
const unsigned char *bm__find_literal(const unsigned char *p, size_t n,
                                      const unsigned char *lit, size_t len);

#endif
