/* POSIX backend: configuration, errno translation, files and views (open, mmap, msync,
 * madvise, MADV_POPULATE_READ), processes and time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

#ifdef __linux__
#include <sys/statfs.h>
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef SYSFS_MAGIC
#define SYSFS_MAGIC 0x62656572
#endif

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

static bm__os_config_t posix_config;
static pthread_once_t posix_once = PTHREAD_ONCE_INIT;
static const char *const posix_no_prefixes[] = {NULL};

/* Direct calls, not bm__sys_*: see posix.h. */
static void posix_config_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  void *p;

  posix_config.page_size = ps > 0 ? (size_t)ps : 4096;
  /* mmap offsets need only be page aligned on POSIX. */
  posix_config.granularity = posix_config.page_size;
  posix_config.names_persist = 1; /* shm_unlink / unlink removes a name */
  posix_config.meta_beside = 1;   /* src/posix/store.c */
  posix_config.name_prefixes = posix_no_prefixes; /* a backslash is no name character */
  posix_config.map_offset_limit = UINT64_MAX;
#if defined(__linux__) && ULONG_MAX == 0xffffffffUL
  /* A 32-bit process maps through mmap2, whose offset is an unsigned long counted in
   * 4096-byte units: glibc's mmap64 refuses offsets of 2^44 (16 TiB) and past (EINVAL). */
  posix_config.map_offset_limit = (uint64_t)ULONG_MAX * 4096 + 4096;
#endif
#ifdef __linux__
  /* Probe MADV_POPULATE_READ once: kernels before 5.14 answer EINVAL. */
  p = mmap(NULL, posix_config.page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) {
    posix_config.has_populate = madvise(p, posix_config.page_size, MADV_POPULATE_READ) == 0;
    munmap(p, posix_config.page_size);
  }
#else
  (void)p;
#endif
}

const bm__os_config_t *bm__os_config(void) {
  pthread_once(&posix_once, posix_config_init);
  return &posix_config;
}

int bm__posix_error(int e) {
  bm__set_os_error(e);
  switch (e) {
  case 0: return 0;
  case EINVAL: return BM_EINVAL;
  case ENOMEM: return BM_ENOMEM;
  case ENOENT: case ENOTDIR: return BM_ENOENT;
  case EEXIST: return BM_EEXIST;
  case EACCES: return BM_EACCES;
  case EPERM: return BM_EPERM;
  case EISDIR: return BM_EISDIR;
  case ENODEV: case ENXIO: return BM_ENOTREG;
  case EOVERFLOW: return BM_EOVERFLOW;
  case EFBIG: return BM_EFBIG;
  case EMFILE: case ENFILE: return BM_EMFILE;
  case EAGAIN: return BM_EAGAIN;
  case EIO: return BM_EIO;
  case ENOSPC: case EDQUOT: return BM_ENOSPC;
  case EROFS: return BM_EREADONLY;
  case ENAMETOOLONG: return BM_EINVAL; /* the OS error (36) says which */
  case ELOOP: return BM_ELOOP; /* O_NOFOLLOW met a symlink: refused */
  case ENOSYS: case EOPNOTSUPP: return BM_ENOTSUP;
  case EBUSY: case ETXTBSY: return BM_EBUSY;
  case EFAULT: return BM_ETRUNCATED;
  }
  return BM_EOS;
}

int bm__posix_check_regular(int fd, uint64_t *size) {
  struct stat st;
  if (bm__sys_fstat(fd, &st) != 0) return bm__posix_error(errno);
  if (S_ISDIR(st.st_mode)) return bm__set_os_error(0), BM_EISDIR;
  if (!S_ISREG(st.st_mode)) return bm__set_os_error(0), BM_ENOTREG;
  *size = (uint64_t)st.st_size;
  return 0;
}

int bm__os_file_open(bm_source_t *src, const char *path, unsigned flags) {
  int oflags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK, fd, err;

  /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is refused
   * below anyway, and the flag means nothing for regular files. */
  if (flags & BM_FILE_WRITE) {
    oflags |= O_RDWR;
    if (flags & BM_FILE_CREATE) oflags |= O_CREAT;
    if (flags & BM_FILE_EXCL) oflags |= O_EXCL;
    if (flags & BM_FILE_TRUNC) oflags |= O_TRUNC;
  } else {
    oflags |= O_RDONLY;
  }
  do fd = bm__sys_open(path, oflags, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return bm__posix_error(errno);
  if ((err = bm__posix_check_regular(fd, &src->size)) != 0) {
    close(fd);
    /* An exclusive create made the file: take it back, or a retry meets BM_EEXIST. */
    if ((oflags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) bm__sys_unlink(path);
    return err;
  }
#ifdef __linux__
  {
    /* A file on hugetlbfs maps only in whole huge pages at huge-page offsets, so views of
     * it align to that; procfs and sysfs files say they are empty when they are not, so
     * they cannot be read by mapping. (fstatfs failing leaves an ordinary file.) */
    struct statfs sf;
    if (bm__sys_fstatfs(fd, &sf) == 0) {
      if ((unsigned long)sf.f_type == (unsigned long)HUGETLBFS_MAGIC && sf.f_bsize > 0) {
        src->hugetlb = 1;
        src->granularity = src->page_size = (size_t)sf.f_bsize;
      } else if ((unsigned long)sf.f_type == (unsigned long)PROC_SUPER_MAGIC ||
                 (unsigned long)sf.f_type == (unsigned long)SYSFS_MAGIC) {
        close(fd);
        bm__set_os_error(0);
        return BM_ENOTREG;
      }
    }
  }
#endif
  src->fd = fd;
  return 0;
}

int bm__os_file_extend(bm_source_t *src, uint64_t size) {
  int r;
  if (size > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  do r = bm__sys_ftruncate(src->fd, (off_t)size);
  while (r != 0 && errno == EINTR);
  if (r != 0) return bm__posix_error(errno);
  src->size = size;
  return 0;
}

int bm__os_source_size(bm_source_t *src, uint64_t *size) {
  struct stat st;
  if (bm__sys_fstat(src->fd, &st) != 0) return bm__posix_error(errno);
  *size = (uint64_t)st.st_size;
  return 0;
}

void bm__os_source_close(bm_source_t *src) {
  if (src->fd >= 0) close(src->fd);
  src->fd = -1;
}

int bm__os_map(bm_source_t *src, uint64_t offset, size_t length, unsigned access, void **base) {
  int prot = PROT_READ, flags = MAP_SHARED;
  void *p;

  if (offset > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  if (access & BM_ACCESS_WRITE) prot |= PROT_WRITE;
  if (access & BM_ACCESS_COPY) {
    prot |= PROT_WRITE;
    flags = MAP_PRIVATE;
  }
  if (src->hugetlb && (prot & PROT_WRITE)) {
    /* hugetlbfs grows a file to whole pages when a mapping of it is writable at mmap time
     * (even a private one): mapped read-only, then made writable, a dataset of the source's
     * exact size stays so (docs/datasets.md). */
    p = bm__sys_mmap(NULL, length, PROT_READ, flags, src->fd, (off_t)offset);
    if (p == MAP_FAILED) return bm__posix_error(errno);
    if (mprotect(p, length, prot) != 0) {
      int e = errno;
      bm__sys_munmap(p, length);
      return bm__posix_error(e);
    }
  } else {
    p = bm__sys_mmap(NULL, length, prot, flags, src->fd, (off_t)offset);
    if (p == MAP_FAILED) return bm__posix_error(errno);
  }
#ifdef MADV_HUGEPAGE
  if (src->thp) bm__sys_madvise(p, length, MADV_HUGEPAGE);
#endif
  *base = p;
  return 0;
}

int bm__os_unmap(void *base, size_t length) {
  if (bm__sys_munmap(base, length) != 0) return bm__posix_error(errno);
  return 0;
}

int bm__os_flush(bm_source_t *src, void *base, size_t length) {
  if (bm__sys_msync(base, length, MS_SYNC) != 0) return bm__posix_error(errno);
  if (bm__sys_fsync(src->fd) != 0 && errno != EINVAL && errno != EROFS)
    return bm__posix_error(errno);
  return 0;
}

int bm__os_advise(void *base, size_t length, int advice) {
  int a;
  switch (advice) {
  case BM_ADVICE_SEQUENTIAL: a = POSIX_MADV_SEQUENTIAL; break;
  case BM_ADVICE_RANDOM: a = POSIX_MADV_RANDOM; break;
  case BM_ADVICE_WILLNEED: a = POSIX_MADV_WILLNEED; break;
#ifdef MADV_DONTNEED
  /* posix_madvise's DONTNEED is a no-op on glibc; madvise's drops the pages (and for a
   * shared mapping they are read back from the source, so nothing is lost). */
  case BM_ADVICE_DONTNEED:
    if (bm__sys_madvise(base, length, MADV_DONTNEED) != 0) return bm__posix_error(errno);
    return 0;
#else
  case BM_ADVICE_DONTNEED: a = POSIX_MADV_DONTNEED; break;
#endif
  default: a = POSIX_MADV_NORMAL; break;
  }
  a = bm__sys_posix_madvise(base, length, a);
  return a == 0 ? 0 : bm__posix_error(a);
}

int bm__os_populate(void *base, size_t length) {
  if (!bm__os_config()->has_populate) return BM_ENOTSUP;
  for (;;) {
    if (bm__sys_madvise(base, length, MADV_POPULATE_READ) == 0) return 0;
    if (errno == EINTR || errno == EAGAIN) continue;
    /* EFAULT: a page could not be had where a touch would raise SIGBUS (past the end). */
    if (errno == EFAULT) return bm__set_os_error(errno), BM_ETRUNCATED;
    if (errno == EINVAL) return BM_ENOTSUP;
    if (errno == ENOMEM) return bm__posix_error(errno);
    return bm__set_os_error(errno), BM_EIO;
  }
}

int bm__os_populate_write(void *base, size_t length) {
#ifdef MADV_POPULATE_WRITE
  if (!bm__os_config()->has_populate) return BM_ENOTSUP;
  for (;;) {
    if (bm__sys_madvise(base, length, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno == EINTR || errno == EAGAIN) continue;
    /* A page that cannot be had (tmpfs full, a pool short): said here, never a SIGBUS. */
    if (errno == EFAULT || errno == ENOMEM || errno == ENOSPC) return bm__set_os_error(errno), BM_ENOSPC;
    if (errno == EINVAL) return BM_ENOTSUP;
    return bm__set_os_error(errno), BM_EIO;
  }
#else
  (void)base, (void)length;
  return BM_ENOTSUP;
#endif
}

int64_t bm__os_pid(void) { return (int64_t)getpid(); }

int bm__os_identity(bm_source_t *src, const char *path, bm__identity_t *id) {
  struct stat st;
  if (path != NULL ? bm__sys_stat(path, &st) != 0 : bm__sys_fstat(src->fd, &st) != 0)
    return bm__posix_error(errno);
  id->dev = (uint64_t)st.st_dev;
  id->ino = (uint64_t)st.st_ino;
  id->size = (uint64_t)st.st_size;
  id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  id->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
  return 0;
}

int64_t bm__os_time(void) { return (int64_t)time(NULL); }
