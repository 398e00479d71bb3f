/* Helpers shared by the files of the POSIX backend, and the table every OS call that can
 * fail goes through (src/posix/syscall.c) so that tests can make it fail. */
#ifndef BULKMAP_POSIX_INTERNAL_H
#define BULKMAP_POSIX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Records errno e and returns the BM_E* code it maps to. */
int bm__posix_error(int e);
/* fstat()s fd: BM_EISDIR, BM_ENOTREG unless a regular file; *size gets its size. */
int bm__posix_check_regular(int fd, uint64_t *size);
/* The room for `size` bytes of normal pages (src/posix/room.c): /dev/shm's free space
 * (named) and the memory cgroup's headroom into *out (which it fills but for `large`).
 * 0 fits, BM_ENOROOM when short (out->limit says which). */
struct bm_preflight_s;
int bm__posix_room(int named, uint64_t size, struct bm_preflight_s *out);
/* Every hugetlbfs mount /proc/mounts lists (src/posix/sysinfo.c), however many: *out
 * malloc'd (free() it; NULL when none), *n of them. BM_ENOMEM; no /proc/mounts is none. */
struct bm_mount_s;
int bm__posix_hugetlbfs_mounts(struct bm_mount_s **out, size_t *n);
/* Every large page size the kernel offers (a /sys/kernel/mm/hugepages/hugepages-<N>kB
 * directory each; src/posix/sysinfo.c), however many, ascending, each with its pool's free
 * and reserved pages (UINT64_MAX when unreadable): *out malloc'd (free() it; NULL when
 * none), *n of them. BM_ENOMEM; no such directory is none. */
struct bm_large_size_s;
int bm__posix_large_sizes(struct bm_large_size_s **out, size_t *n);

/* ---- Between the files of sections (src/posix/section.c: pages and locks; places.c;
 * maps.c: who maps what) and src/posix/store.c (where a dataset's bytes and metadata live). */
struct bm_source_s;
struct bm_section_opts_s;
struct bm_large_s;
/* The writer lock: an OFD lock (type F_WRLCK or F_UNLCK) on byte 0 of fd's file;
 * writer_held: 1 when another descriptor holds it for writing, 0 when none, < 0 error. */
int bm__posix_writer_lock(int fd, int type);
int bm__posix_writer_held(int fd);
int bm__posix_resolve_group(const char *group, unsigned *gid);
/* A dataset's bytes: an anonymous file of exactly opts->size bytes in the place the opts
 * and the pages had choose (/dev/shm, or a trusted hugetlbfs mount); *place_fd and place
 * get that directory. src->gen_name holds a fallback file name when O_TMPFILE was not to
 * be had. */
int bm__posix_data_create(struct bm_source_s *src, const struct bm_section_opts_s *opts,
                          struct bm_large_s *out, int *place_fd, char *place, size_t n);
/* An anonymous file in dfd (O_TMPFILE, else 128 random bits in a name put into tmp). */
int bm__posix_anon_open(int dfd, unsigned mode, char *tmp, size_t n);
int bm__posix_unlink_identity(int dfd, const char *name, uint64_t dev, uint64_t ino);
void bm__posix_comp_name(char *buf, size_t n, const char *name);
int bm__store_exists(const char *name); /* NAME has a companion */
/* The remove_on_exit watcher (src/posix/lifecycle.c): an exec'd program that removes
 * three names by identity when the caller is gone or the watcher is told to stop: NAME and
 * the keep link, then the metadata (only with the bytes). asides: random names to move
 * each aside to. */
int bm__posix_remove_on_exit3(const char *const *dirs, const char *const *names,
                              const char *const *asides, const uint64_t *dev, const uint64_t *ino);
/* Processes mapping (dev, ino), between begin and end (one /proc scan); -1 unseen. */
void bm__posix_maps_begin(void);
int64_t bm__posix_maps_count(uint64_t dev, uint64_t ino, unsigned mode, unsigned uid);
/* Bytes still mapped of NAME's retired generations on dev (not cur_ino): files deleted by
 * a replace or remove that processes still map (freed at their last unmap). */
uint64_t bm__posix_retired_bytes(const char *name, uint64_t dev, uint64_t cur_ino);
void bm__posix_maps_end(void);

/* The OS calls of the backend that can fail, X(name). SQLite's aSyscall[] is the model: the
 * backend calls each one as bm__sys_NAME(...), never by its own name. Built with
 * BULKMAP_FAULT_INJECTION (tests only), each call is counted in a table that a test can
 * arm by name to fail the nth call with a chosen errno (the call is then not made: as when
 * the OS refuses it); built without, bm__sys_NAME is the call itself, at no cost.
 * Left out on purpose: close() (Linux releases the descriptor even when it reports an
 * error, so there is no failure path to drive) and the one-time capability probe in
 * os.c's posix_config_init (its failure only means "no MADV_POPULATE_READ", for the
 * whole process). */
#define BM__POSIX_SYSCALLS(X)                                                              \
  X(open) X(openat) X(fstat) X(fstatat) X(lstat) X(fstatfs) X(ftruncate) X(fallocate)      \
  X(fchmod) X(mmap) X(munmap) X(msync) X(fsync) X(madvise) X(posix_madvise) X(shm_open)    \
  X(shm_unlink) X(memfd_create) X(unlink) X(unlinkat) X(fopen) X(sigaction) X(stat)       \
  X(flock) X(fchown) X(pwrite) X(pthread_create)

#ifdef BULKMAP_FAULT_INJECTION
enum {
#define BM__SYS_ENUM(name) BM__SYS_##name,
  BM__POSIX_SYSCALLS(BM__SYS_ENUM)
#undef BM__SYS_ENUM
  BM__SYS_COUNT
};
/* Counts a call of table entry `call`; returns 1 (errno set to the armed error) when this
 * call is the one to fail, else 0. */
int bm__fault_hit(int call);
#define BM__FAULT(name) bm__fault_hit(BM__SYS_##name)

/* The test-side interface (not thread-safe: one test thread drives it).
 * bm__fault_reset: zeroes every count and disarms.
 * bm__fault_set: zeroes every count and arms call `call` (a table name, e.g. "mmap") to
 *   fail its nth call from now (nth >= 1) with errno err; 0, or -1 for an unknown name.
 * bm__fault_count: calls of `call` counted since the last reset or set (NULL: all calls).
 * bm__fault_fired: failures injected since the last reset or set.
 * bm__fault_name: the i-th name of the table, NULL past its end. */
void bm__fault_reset(void);
int bm__fault_set(const char *call, unsigned long nth, int err);
unsigned long bm__fault_count(const char *call);
unsigned long bm__fault_fired(void);
const char *bm__fault_name(int i);
#else
#define BM__FAULT(name) 0
#endif

/* The calls. Each fails the way the real one does: -1, MAP_FAILED, NULL, or (posix_madvise)
 * the error number itself. */
#define bm__sys_open(...) (BM__FAULT(open) ? -1 : open(__VA_ARGS__))
#define bm__sys_openat(...) (BM__FAULT(openat) ? -1 : openat(__VA_ARGS__))
#define bm__sys_fstat(...) (BM__FAULT(fstat) ? -1 : fstat(__VA_ARGS__))
#define bm__sys_fstatat(...) (BM__FAULT(fstatat) ? -1 : fstatat(__VA_ARGS__))
#define bm__sys_lstat(...) (BM__FAULT(lstat) ? -1 : lstat(__VA_ARGS__))
#define bm__sys_fstatfs(...) (BM__FAULT(fstatfs) ? -1 : fstatfs(__VA_ARGS__))
#define bm__sys_ftruncate(...) (BM__FAULT(ftruncate) ? -1 : ftruncate(__VA_ARGS__))
#define bm__sys_fallocate(...) (BM__FAULT(fallocate) ? -1 : fallocate(__VA_ARGS__))
#define bm__sys_fchmod(...) (BM__FAULT(fchmod) ? -1 : fchmod(__VA_ARGS__))
#define bm__sys_mmap(...) (BM__FAULT(mmap) ? MAP_FAILED : mmap(__VA_ARGS__))
#define bm__sys_munmap(...) (BM__FAULT(munmap) ? -1 : munmap(__VA_ARGS__))
#define bm__sys_msync(...) (BM__FAULT(msync) ? -1 : msync(__VA_ARGS__))
#define bm__sys_fsync(...) (BM__FAULT(fsync) ? -1 : fsync(__VA_ARGS__))
#define bm__sys_madvise(...) (BM__FAULT(madvise) ? -1 : madvise(__VA_ARGS__))
#define bm__sys_posix_madvise(...) \
  (BM__FAULT(posix_madvise) ? errno : posix_madvise(__VA_ARGS__))
#define bm__sys_shm_open(...) (BM__FAULT(shm_open) ? -1 : shm_open(__VA_ARGS__))
#define bm__sys_pwrite(...) (BM__FAULT(pwrite) ? -1 : pwrite(__VA_ARGS__))
#define bm__sys_pthread_create(...) \
  (BM__FAULT(pthread_create) ? errno : pthread_create(__VA_ARGS__))
#define bm__sys_shm_unlink(...) (BM__FAULT(shm_unlink) ? -1 : shm_unlink(__VA_ARGS__))
#define bm__sys_memfd_create(...) (BM__FAULT(memfd_create) ? -1 : memfd_create(__VA_ARGS__))
#define bm__sys_unlink(...) (BM__FAULT(unlink) ? -1 : unlink(__VA_ARGS__))
#define bm__sys_unlinkat(...) (BM__FAULT(unlinkat) ? -1 : unlinkat(__VA_ARGS__))
#define bm__sys_fopen(...) (BM__FAULT(fopen) ? NULL : fopen(__VA_ARGS__))
#define bm__sys_stat(...) (BM__FAULT(stat) ? -1 : stat(__VA_ARGS__))
#define bm__sys_flock(...) (BM__FAULT(flock) ? -1 : flock(__VA_ARGS__))
#define bm__sys_fchown(...) (BM__FAULT(fchown) ? -1 : fchown(__VA_ARGS__))
#define bm__sys_sigaction(...) (BM__FAULT(sigaction) ? -1 : sigaction(__VA_ARGS__))

#endif
