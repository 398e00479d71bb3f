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
  int names_persist; /* a named section outlives its last handle (until removed) */
  int meta_beside;   /* a dataset's metadata lives beside its bytes (bm__store_*, POSIX);
                       0: in a trailer at the end of the section (Windows) */
  const char *const *name_prefixes; /* namespace prefixes passed through to the kernel
                                       object's name (Windows: Local\, Global\), NULL-ended */
  int token_in_meta; /* the writer lock is found only through the name its trailer records
                        (Windows): a section whose trailer is not written yet cannot be
                        judged, only looked at again */
} bm__os_config_t;

const bm__os_config_t *bm__os_config(void);
int bm__os_sysinfo(bm_sysinfo_t *info);
/* The i-th hugetlbfs mount (i >= 0): BM_ENOENT past the last. */
int bm__os_mount(int i, bm_mount_t *out);
/* The i-th large page size, ascending, with its pool (i >= 0): BM_ENOENT past the last. */
int bm__os_large_size(int i, bm_large_size_t *out);

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
/* Allocates the pages of a writable shared mapping [base, base+length) before they are
 * written, in one call (MADV_POPULATE_WRITE): a copy into it then takes no page fault a
 * page, and a page that cannot be had is BM_ENOSPC here, not a SIGBUS later. BM_ENOTSUP
 * where the OS has no such call (the copy then faults its pages in as it goes). */
int bm__os_populate_write(void *base, size_t length);
/* Runs fn(arg), turning SIGBUS / EXCEPTION_IN_PAGE_ERROR in this thread into BM_ETRUNCATED. */
int bm__os_guard(int (*fn)(void *arg), void *arg);

/* Sections (names already checked). */
int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome);
int bm__os_section_open(bm_source_t *src, const char *name, unsigned access);
int bm__os_section_large(bm_source_t *src, bm_large_t *outcome);

/* Datasets. A named section's creator holds its writer lock from creation until it
 * closes the source (POSIX: an OFD write lock (fcntl F_OFD_SETLK, F_WRLCK) on byte 0 of the
 * section, which needs a descriptor opened for writing; Windows: a handle to a named mutex,
 * held but not owned, which the kernel deletes with the writer's last handle, its name
 * carrying 128 random bits, src->token, that the dataset's trailer records for readers).
 * bm__os_writer_alive: 1 when some process holds it, 0 when free (the writer died or
 * closed), < 0 on error. token: the lock's name as the metadata recorded it
 * (bm__trailer_t.writer_token): "" for metadata that recorded none (Windows: a trailer
 * written before tokens had random names, whose token has the name bulkmap used then),
 * NULL where no metadata was read (Windows then answers 0: a token it cannot name is one it
 * cannot find). POSIX ignores it: the lock is on the object itself. */
int bm__os_writer_alive(bm_source_t *src, const char *token);
/* Gives the writer lock up (a published dataset needs no liveness). */
void bm__os_writer_release(bm_source_t *src);
/* Removes `name` only if it still refers to src's object (device + inode), atomically (no
 * lock: POSIX moves it aside, checks, removes). BM_EREPLACED when another object holds the
 * name now, BM_ENOENT when nothing does, BM_ENOTSUP where names die with their handles. */
int bm__os_section_remove_own(bm_source_t *src, const char *name);
/* Removes `name` as bm__os_section_open would find it; force: also while its writer
 * lives (else BM_EBUSY when the writer lock is held). */
int bm__os_section_remove_name(const char *name, int force);

/* Room for a new section (before it is made; figures into *out, see bm_preflight_t).
 * opts->size is the section's size; opts->large, large_page_size, mount and transparent say
 * where it would go. 0 fits (out->large.reason set when large pages would not be had and
 * AUTO would fall back), BM_ENOROOM when the normal pages it would get do not fit,
 * BM_ENOLARGE / BM_EALIGN (BM_LARGE_ON not to be had). Nothing is made. */
int bm__os_preflight(const bm_section_opts_t *opts, bm_preflight_t *out);

/* The source's stability during a load (POSIX: src/posix/lease.c): a read lease on the
 * open file src, broken when anyone opens it for writing. BM_ENOTSUP with why set when
 * none can be had (someone has it open for writing, not the owner, no leases here);
 * broken: 1 once someone opened it for writing since. */
typedef struct bm__os_lease_s bm__os_lease_t;
int bm__os_lease_take(bm_source_t *src, bm__os_lease_t **out, char *why, size_t why_n);
int bm__os_lease_broken(bm__os_lease_t *l);
void bm__os_lease_end(bm__os_lease_t *l);

/* A file's identity, for "changed while it was read". */
typedef struct bm__identity_s {
  uint64_t dev, ino, size;
  int64_t mtime_ns, ctime_ns;
} bm__identity_t;
/* Of the open file src (path NULL), or of what path names now. */
int bm__os_identity(bm_source_t *src, const char *path, bm__identity_t *id);

/* One entry of a place that holds sections, for bm_section_list. src is the object opened
 * read-only (NULL when it could not be: open_error says why); the callee owns it. */
typedef struct bm__os_entry_s {
  const char *name;
  const char *place;
  uint64_t size;
  size_t place_page_size; /* the hugetlbfs mount's page size; 0 for shared memory */
  uint32_t uid;
  const char *owner;
  unsigned mode;
  int mine;
  bm_source_t *src;
  int open_error;
  const char *type; /* "file", or what else is planted under the name ("directory",
                       "symlink", "fifo", "socket", "device": never opened, src NULL) */
  int64_t maps;     /* processes mapping the object (-1: cannot be seen) */
  int hidden;       /* a replace's hidden generation (bm__os_section_reclaim only) */
} bm__os_entry_t;
/* Calls fn for every entry with a section's name in every place (only those called `name` unless NULL);
 * stops at fn's first non-zero result, which it returns. */
int bm__os_section_list(const char *name, int (*fn)(void *arg, const bm__os_entry_t *e),
                        void *arg);

/* ---- Where a dataset lives, where its metadata is beside its bytes (meta_beside; POSIX:
 * src/posix/store.c, the layout in docs/datasets.md). The store writes and reads whole
 * records of the trailer's fields (bm__trailer_t) plus what it keeps itself (the bytes'
 * identity, the place, the keep link); the portable protocol in src/dataset.c decides
 * what the states are. */
typedef struct bm__store_s bm__store_t;
/* Writer: claims NAME (exclusive: BM_EEXIST, told by bm_section_lookup who holds it) and
 * makes its bytes, anonymous until publish, as so asks (exactly so->size bytes), recording
 * t as `loading` under this handle's writer lock. replace: NAME may exist (BM_EPERM when
 * not the caller's or the caller root; BM_EBUSY while another writer holds it;
 * BM_EPLACE when so asks for the other page kind than its place has). */
int bm__store_create(bm__store_t **out, const char *name, const bm_section_opts_t *so,
                     int replace, const bm__trailer_t *t, bm_large_t *outcome);
bm_source_t *bm__store_source(bm__store_t *st); /* NULL: no bytes to map */
const char *bm__store_place(bm__store_t *st);
/* Writer: the compact layout (src/format.c, bm__layout_encode) its ready records carry;
 * the store takes blob (malloc'd). Reader or writer: a copy of it (*blob NULL, *n 0 when
 * there is none; free()). */
int bm__store_set_layout(bm__store_t *st, unsigned char *blob, size_t n);
int bm__store_layout(bm__store_t *st, unsigned char **blob, size_t *n);
/* Writer: the next fork's child becomes the writer (the parent gives it up then);
 * given_away: 1 once this process forked it away. */
int bm__store_handoff(bm__store_t *st);
int bm__store_given_away(bm__store_t *st);
/* Writer: records t (a state other than ready: loading, failed). */
int bm__store_record(bm__store_t *st, const bm__trailer_t *t);
/* Writer: names the bytes (NAME, atomically swapped for a replace) and records t ready;
 * the writer lock goes. Errors: BM_EEXIST (NAME taken meanwhile), BM_ENOSPC, BM_EOS. */
int bm__store_publish(bm__store_t *st, const bm__trailer_t *t);
/* Reader: the record NAME has now, judged (*state), with its bytes opened when ready.
 * BM_ENOENT when NAME has no metadata (a plain section or the previous layout). */
int bm__store_open(bm__store_t **out, const char *name, bm__trailer_t *t, int *state);
/* The record again (a reader keeps the generation it opened). */
int bm__store_reread(bm__store_t *st, bm__trailer_t *t, int *state);
/* Removes the dataset (names, keep links, metadata) while it is this handle's. */
int bm__store_remove(bm__store_t *st);
void bm__store_close(bm__store_t *st);
/* bm_section_remove of a dataset; BM_ENOENT when NAME has no metadata. */
int bm__store_remove_name(const char *name, int force);
/* Whether NAME, found with no metadata beside it, may be a dataset of this layout after all:
 * its metadata is there now, or its bytes are being published or removed this instant
 * (then after a short pause). 0 where datasets have no such metadata. */
int bm__store_unsettled(const char *name);
/* Every dataset's entry (name NULL) or NAME's; st is the entry's store (read-only). */
int bm__store_list(const char *name,
                   int (*fn)(void *arg, const bm_section_info_t *si, bm__store_t *st), void *arg);
/* Reclaims what dead writers left; done(arg, entry, bytes freed) for each. */
int bm__store_reclaim(void (*done)(void *arg, const bm_section_info_t *si, uint64_t freed),
                      void *arg);
/* Binds the dataset to this process (bm_dataset_remove_on_exit). */
int bm__store_remove_on_exit(bm__store_t *st);

/* ---- Lifecycle (src/lifecycle.c). */
/* Creates the new generation of a replace of NAME under a hidden name no dataset can have
 * (src->gen_name), where the opts put it, exactly as bm__os_section_create would make NAME.
 * BM_EPERM when NAME exists and is neither the caller's nor the caller root; BM_ENOTSUP
 * where names cannot be renamed and NAME exists (Windows). */
int bm__os_section_create_hidden(bm_source_t *src, const char *name,
                                 const bm_section_opts_t *opts, bm_large_t *outcome);
/* Makes src's hidden generation NAME atomically for openers (see bulkmap.h, Replace), the
 * old one unlinked; afterwards src refers to NAME. A no-op without a hidden name. */
int bm__os_section_commit(bm_source_t *src, const char *name);
/* A waiter for changes that may concern NAME (made, renamed, published, closed by its
 * writer); wait returns after one (0) or after `seconds` at most. */
typedef struct bm__os_waiter_s bm__os_waiter_t;
int bm__os_wait_begin(bm__os_waiter_t **w, const char *name);
int bm__os_wait(bm__os_waiter_t *w, double seconds);
void bm__os_wait_end(bm__os_waiter_t *w);
/* Calls judge for every dataset and hidden generation the caller may remove (its own, or
 * any as root; src opened read-only); where judge says 1 the object is removed by identity
 * and done(arg, e, err) says how that went. BM_ENOTSUP where names die with handles. */
int bm__os_section_reclaim(int (*judge)(void *arg, const bm__os_entry_t *e),
                           void (*done)(void *arg, const bm__os_entry_t *e, int err), void *arg);
/* Removes NAME, if it still refers to src's object, when this process ends (see
 * bm_dataset_remove_on_exit). */
int bm__os_remove_on_exit(bm_source_t *src, const char *name);
int bm__os_removeipc(bm_removeipc_t *out);

/* Processes and time, for the dataset trailer. */
int64_t bm__os_pid(void);
int64_t bm__os_time(void);


/* Threads, for the scan engine's and the load's workers (src/pool.c). A thread runs
 * fn(arg) to its end; bm__os_thread_join waits for it and frees it. */
typedef struct bm__os_thread_s bm__os_thread_t;
int bm__os_thread_start(bm__os_thread_t **t, void (*fn)(void *arg), void *arg);
void bm__os_thread_join(bm__os_thread_t *t);
/* A mutex with one condition variable. wait_ms returns after ms milliseconds at most (or
 * when woken, or spuriously). */
typedef struct bm__os_lock_s bm__os_lock_t;
int bm__os_lock_new(bm__os_lock_t **l);
void bm__os_lock_free(bm__os_lock_t *l);
void bm__os_lock(bm__os_lock_t *l);
void bm__os_unlock(bm__os_lock_t *l);
void bm__os_lock_wait_ms(bm__os_lock_t *l, unsigned ms);
void bm__os_lock_broadcast(bm__os_lock_t *l);
/* Processors online (>= 1). */
unsigned bm__os_cpu_count(void);
/* Monotonic seconds. */
double bm__os_now(void);
/* The process's address-space limit in bytes (ulimit -v), 0 when none. */
uint64_t bm__os_as_limit(void);
/* Reads up to n bytes of the file src at offset into buf (n <= 1 GiB): *got bytes read, 0
 * at the end of the file. BM_ENOSPC when the buffer's pages could not be had (a section
 * whose shared memory is full), BM_EIO otherwise. */
int bm__os_read_at(bm_source_t *src, uint64_t offset, void *buf, size_t n, size_t *got);

/* Streams (bm_scan_fd): a pipe, a FIFO, a terminal, a socket or a file that is read, not
 * mapped, from where it stands. h is the caller's and stays open.
 * check: BM_EINVAL when h is not open for reading (the OS error: EBADF, or
 * ERROR_INVALID_HANDLE), BM_EISDIR.
 * read: waits up to ms milliseconds for bytes, then reads up to n of them (n <= 1 GiB): *got
 * > 0, or 0 at the end of the stream. BM_ETIMEDOUT when none came in time (or a signal
 * came: the caller looks at its cancel flag and calls again); BM_EINVAL (EBADF), BM_EISDIR,
 * BM_EIO. Windows waits so only on a pipe (PeekNamedPipe): a console or a file is read
 * as it comes.
 * open: path opened for reading as a stream, whatever it is but a directory (a FIFO opens
 * at once, writer or not, and is then waited on by read); *size gets a regular file's
 * size, UINT64_MAX for anything else. Kept open until read: closing a FIFO its writer has
 * just opened would end that writer (EPIPE). close: closes what open gave. */
int bm__os_stream_check(bm_os_handle_t h);
int bm__os_stream_read(bm_os_handle_t h, void *buf, size_t n, unsigned ms, size_t *got);
int bm__os_stream_open(const char *path, bm_os_handle_t *h, uint64_t *size);
void bm__os_stream_close(bm_os_handle_t h);

/* Writes n bytes of buf into the section dst at offset through the file (pwrite): on a
 * virtual machine that traps every first touch of a page, several times faster than a
 * copy through a mapping. BM_ENOTSUP where the section takes no writes so (hugetlbfs,
 * Windows: the caller copies through a view), BM_ETRUNCATED (a page of buf could not be
 * read: its backing file shrank), BM_ENOSPC, BM_EIO. */
int bm__os_write_at(bm_source_t *dst, uint64_t offset, const void *buf, size_t n);

/* The page cache of a file source (one copy in RAM, src/cache.c): vec[i] bit 0 set when
 * page i of [offset, offset+length) is resident (offset a multiple of the page size,
 * length > 0; one byte a page of bm_page_size()), found without reading anything. Drop:
 * asks the OS to drop the clean cached pages of [offset, offset+length). BM_ENOTSUP where
 * the OS cannot (Windows, a section). */
int bm__os_cache_resident(bm_source_t *src, uint64_t offset, size_t length, unsigned char *vec);
int bm__os_cache_drop(bm_source_t *src, uint64_t offset, uint64_t length);
/* How many of the file's pages are in the page cache now, in one call (Linux 6.5+:
 * cachestat, a walk of the file's cache, no mapping). BM_ENOTSUP where the OS has no such
 * call (the caller then counts with bm__os_cache_resident). */
int bm__os_cache_count(bm_source_t *src, uint64_t *pages);

#endif
