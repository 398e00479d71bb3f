/* The one internal OS interface. Implemented once in src/posix/ and once in src/win/;
 * portable code in src/ calls only these.
 *
 * Contract for every bm__os_* function: pointer arguments are non-NULL; offsets passed to
 * bm__os_map are multiples of src->granularity and lengths are > 0; the result is 0 or a
 * negative BM_E* code, with the raw OS error recorded (bm__set_os_error) when the OS
 * refused. No function prints, exits or leaves a half-made object behind on failure. */
#ifndef BULKMAP_OS_H
#define BULKMAP_OS_H

#include "internal.h"

/* Facts the backend reads once; portable code reads them instead of #ifdefs. */
typedef struct bm__os_config_s {
  size_t page_size;
  size_t granularity;
  int has_populate; /* the view prefetch fails cleanly instead of faulting */
  uint64_t map_offset_limit; /* a mapping must start below this offset (UINT64_MAX: none) */
} bm__os_config_t;

const bm__os_config_t *bm__os_config(void);
int bm__os_sysinfo(bm_sysinfo_t *info);

/* Files: fills src->fd, src->size; rejects what cannot be mapped (BM_EISDIR, BM_ENOTREG). */
int bm__os_file_open(bm_source_t *src, const char *path, unsigned flags);
int bm__os_file_extend(bm_source_t *src, uint64_t size);
int bm__os_source_size(bm_source_t *src, uint64_t *size);
void bm__os_source_close(bm_source_t *src);

/* Views. access is BM_ACCESS_READ, _WRITE or _COPY (already checked against the source). */
int bm__os_map(bm_source_t *src, uint64_t offset, size_t length, unsigned access, void **base);
int bm__os_unmap(void *base, size_t length);
int bm__os_flush(bm_source_t *src, void *base, size_t length);
int bm__os_advise(void *base, size_t length, int advice);
/* Prefaults [base, base+length) for reading. BM_ENOTSUP when the OS cannot do it cleanly
 * (the caller then touches under bm__os_guard); BM_ETRUNCATED when a page could not be had
 * because it lies past the end of the source; BM_EIO otherwise. */
int bm__os_populate(void *base, size_t length);
/* Runs fn(arg), turning SIGBUS / EXCEPTION_IN_PAGE_ERROR in this thread into BM_ETRUNCATED. */
int bm__os_guard(int (*fn)(void *arg), void *arg);

/* Sections (names already checked). */
int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome);
int bm__os_section_open(bm_source_t *src, const char *name, unsigned access);
int bm__os_section_remove(const char *name);
int bm__os_section_large(bm_source_t *src, bm_large_t *outcome);

/* Processes and time, for the dataset trailer. */
int64_t bm__os_pid(void);
int bm__os_pid_alive(int64_t pid); /* 1 alive, 0 gone */
int64_t bm__os_time(void);

#endif
