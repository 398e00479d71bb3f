/* POSIX backend: named and anonymous sections. Normal pages live in /dev/shm (shm_open) or a
 * memfd; large pages are a file NAME on a hugetlbfs mount or a memfd(MFD_HUGETLB), with
 * transparent huge pages as the fallback only where the kernel really gives them. Every
 * page size reported comes from /proc/self/smaps for a mapping of the section. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/statfs.h>
#endif
#include "../os.h"
#include "posix.h"
#include "smaps.h"

#define SHM_DIR "/dev/shm"

#ifdef __linux__
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#endif

/* What one attempt at a kind of page came to: made (0), not had for `reason` (1, the
 * caller may fall back), or a hard error (< 0) that no other kind of page would fix. */
enum { POSIX_MADE = 0, POSIX_NOT_HAD = 1 };

/* A hugetlbfs mount, opened once per call so that names resolve inside it and nowhere
 * else. */
typedef struct {
  int dirfd;
  size_t page_size;
  char path[BM_PATH_MAX];
} posix_mount_t;

typedef struct {
  int n;
  posix_mount_t m[BM_MAX_MOUNTS];
  size_t default_size; /* the OS default huge page size */
  int n_sizes;
  size_t sizes[BM_MAX_LARGE_SIZES];
  int err; /* errno of a listed mount that could not be opened (0: none) */
} posix_mounts_t;

static void mounts_close(posix_mounts_t *ms) {
  int i;
  for (i = 0; i < ms->n; i++) close(ms->m[i].dirfd);
  ms->n = 0;
}

/* Opens every hugetlbfs mount /proc/mounts lists, keeping one per filesystem (a bind
 * mount of the same one would otherwise make every name on it look ambiguous). */
static void mounts_open(posix_mounts_t *ms) {
  bm_sysinfo_t info;
  dev_t devs[BM_MAX_MOUNTS];
  int i, k, fd;

  memset(ms, 0, sizeof(*ms));
  memset(&info, 0, sizeof(info));
  if (bm__os_sysinfo(&info) != 0) return;
  ms->default_size = info.default_large_size;
  ms->n_sizes = info.n_large_sizes;
  memcpy(ms->sizes, info.large_sizes, sizeof(ms->sizes));
  for (i = 0; i < info.n_mounts; i++) {
    struct stat st;
    int dup = 0;
    fd = bm__sys_open(info.mounts[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      /* Gone since /proc/mounts was read: nothing to search. Unreadable: remembered, so
       * that a name not found elsewhere is not reported missing from where we could not
       * look. */
      if (errno != ENOENT && errno != ENOTDIR && ms->err == 0) ms->err = errno;
      continue;
    }
#ifdef __linux__
    {
      /* /proc/mounts may name a path that something else now covers: trust the inode. */
      struct statfs sf;
      if (bm__sys_fstatfs(fd, &sf) != 0) {
        if (ms->err == 0) ms->err = errno;
        close(fd);
        continue;
      }
      if ((unsigned long)sf.f_type != (unsigned long)HUGETLBFS_MAGIC || sf.f_bsize <= 0) {
        close(fd);
        continue;
      }
      ms->m[ms->n].page_size = (size_t)sf.f_bsize;
    }
#else
    ms->m[ms->n].page_size = info.mounts[i].page_size;
#endif
    if (bm__sys_fstat(fd, &st) != 0) {
      if (ms->err == 0) ms->err = errno;
      close(fd);
      continue;
    }
    for (k = 0; k < ms->n; k++) dup |= devs[k] == st.st_dev;
    if (dup) {
      close(fd);
      continue;
    }
    devs[ms->n] = st.st_dev;
    ms->m[ms->n].dirfd = fd;
    snprintf(ms->m[ms->n].path, sizeof(ms->m[0].path), "%s", info.mounts[i].path);
    ms->n++;
  }
}

/* 1 when an entry NAME (of any type) exists in dirfd, 0 when not, < 0 on error. */
static int entry_exists(int dirfd, const char *name) {
  struct stat st;
  if (bm__sys_fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) return 1;
  if (errno == ENOENT) return 0;
  return bm__posix_error(errno);
}

static int shm_exists(const char *name) {
  char path[BM_PATH_MAX];
  struct stat st;
  snprintf(path, sizeof(path), SHM_DIR "/%s", name);
  if (bm__sys_lstat(path, &st) == 0) return 1;
  if (errno == ENOENT || errno == ENOTDIR) return 0;
  return bm__posix_error(errno);
}

/* uid of entry NAME in dirfd (AT_FDCWD with a full path in name); -1 when it is gone. */
static long long entry_uid(int dirfd, const char *name) {
  struct stat st;
  if (bm__sys_fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
  return (long long)st.st_uid;
}

/* Where NAME lives: -1 in /dev/shm, k on mount k. When several places have it and exactly
 * one of them is the caller's own, that one: another user's object never locks you out of
 * your own. BM_ENOENT, BM_EAMBIGUOUS, or an error. */
static int locate(const posix_mounts_t *ms, const char *name, int *where) {
  int i, r, n = 0, mine = 0, mine_at = -2;
  uid_t me = geteuid();
  char path[BM_PATH_MAX];
  if ((r = shm_exists(name)) < 0) return r;
  if (r) {
    *where = -1, n++;
    snprintf(path, sizeof(path), SHM_DIR "/%s", name);
    if (entry_uid(AT_FDCWD, path) == (long long)me) mine++, mine_at = -1;
  }
  for (i = 0; i < ms->n; i++) {
    if ((r = entry_exists(ms->m[i].dirfd, name)) < 0) return r;
    if (r) {
      *where = i, n++;
      if (entry_uid(ms->m[i].dirfd, name) == (long long)me) mine++, mine_at = i;
    }
  }
  if (n == 0 && ms->err != 0) return bm__posix_error(ms->err);
  if (n == 0) return bm__set_os_error(ENOENT), BM_ENOENT;
  if (n > 1) {
    if (mine != 1) return bm__set_os_error(0), BM_EAMBIGUOUS;
    *where = mine_at;
  }
  return 0;
}

/* ---- The lock that serializes creators (and removers by identity): flock on the /dev/shm
 * directory, which every user can open and nobody can plant or replace. Waits up to about
 * 10 s for a holder, then BM_EBUSY: a process that holds it longer is stuck or hostile. */
static int create_lock(int *fdp) {
  int fd, i;
  *fdp = -1;
  fd = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : bm__posix_error(errno); /* no /dev/shm: no race */
  for (i = 0; i < 1000; i++) {
    if (bm__sys_flock(fd, LOCK_EX | LOCK_NB) == 0) {
      *fdp = fd;
      return 0;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      close(fd);
      return bm__posix_error(e);
    }
    {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  close(fd);
  return bm__set_os_error(EWOULDBLOCK), BM_EBUSY;
}

static void create_unlock(int fd) {
  if (fd >= 0) close(fd); /* the last descriptor of the description: the flock goes */
}

/* The group a section is given: a name, or a number. */
static int resolve_group(const char *group, gid_t *gid) {
  struct group gr, *res = NULL;
  char buf[4096], *end;
  unsigned long v;
  int e;
  if (group[0] == '\0') return BM_EINVAL;
  e = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
  if (e == 0 && res != NULL) {
    *gid = res->gr_gid;
    return 0;
  }
  v = strtoul(group, &end, 10);
  if (*end == '\0' && group[0] >= '0' && group[0] <= '9' && v == (unsigned long)(gid_t)v) {
    *gid = (gid_t)v;
    return 0;
  }
  return bm__set_os_error(e != 0 ? e : ENOENT), BM_ENOENT;
}

/* What a new section's creator does to the object it just made exclusively, before anyone
 * can see it unlocked: takes the writer lock, gives it the group and the exact mode (the
 * umask must not widen or narrow them), and remembers its identity. */
static int claim(bm_source_t *src, int fd, const bm_section_opts_t *opts, unsigned mode) {
  struct stat st;
  int r;
  if (bm__sys_flock(fd, LOCK_EX | LOCK_NB) != 0) return bm__posix_error(errno);
  src->writer = 1;
  if (opts->group != NULL) {
    gid_t gid;
    if ((r = resolve_group(opts->group, &gid)) != 0) return r;
    if (bm__sys_fchown(fd, (uid_t)-1, gid) != 0) return bm__posix_error(errno);
  }
  if (bm__sys_fchmod(fd, (mode_t)mode) != 0) return bm__posix_error(errno);
  if (bm__sys_fstat(fd, &st) != 0) return bm__posix_error(errno);
  src->dev = (uint64_t)st.st_dev;
  src->ino = (uint64_t)st.st_ino;
  return 0;
}

static size_t pmd_size(void) {
  static size_t cached;
  FILE *f;
  unsigned long long v;
  if (cached != 0) return cached;
  v = 2u << 20;
  f = bm__sys_fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
  if (f != NULL) {
    if (fscanf(f, "%llu", &v) != 1 || v == 0) v = 2u << 20;
    fclose(f);
  }
  cached = (size_t)v;
  return cached;
}

/* dir/name into buf; the path is for people to read (names resolve through the mount's
 * directory descriptor), so one too long to keep is shortened to the name alone. */
static void path_join(char *buf, size_t n, const char *dir, const char *name) {
  int k = snprintf(buf, n, "%s/%s", dir, name);
  if (k < 0 || (size_t)k >= n) snprintf(buf, n, "%s", name);
}

static int is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

/* Free pages of the pool of huge pages of size H (0 when it cannot be read). */
static uint64_t pool_free(size_t H) {
  char path[128];
  unsigned long long v = 0;
  FILE *f;
  snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/free_hugepages",
           (unsigned long)(H >> 10));
  if ((f = bm__sys_fopen(path, "re")) == NULL) return 0;
  if (fscanf(f, "%llu", &v) != 1) v = 0;
  fclose(f);
  return (uint64_t)v;
}

/* Maps [0, len) of fd at an address aligned to `align` (a PMD or a huge page can only be
 * mapped whole at an aligned address), faults it in and reads what smaps says of it. */
static int probe(int fd, size_t len, size_t align, int writable, int thp, bm__smaps_t *sm) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0), err = 0;
  unsigned char *res, *p;
  uintptr_t a;

  bm__set_os_error(0);
  if (len + align < len) return BM_EOVERFLOW;
  res = bm__sys_mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (res == MAP_FAILED) return bm__posix_error(errno);
  a = ((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1);
  p = bm__sys_mmap((void *)a, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    err = bm__posix_error(errno);
    bm__sys_munmap(res, len + align);
    return err;
  }
  /* Give back the parts of the reservation around the probe. */
  if (p > res) bm__sys_munmap(res, (size_t)(p - res));
  if (res + len + align > p + len) bm__sys_munmap(p + len, (size_t)(res + len + align - (p + len)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (thp) bm__sys_madvise(p, len, MADV_HUGEPAGE);
#else
  (void)thp;
#endif
#ifdef __linux__
  while (bm__sys_madvise(p, len, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0) {
    if (errno == EINTR || errno == EAGAIN) continue;
    if (errno == EINVAL) {
      /* Before Linux 5.14: the pages were reserved or allocated already (fallocate or
       * mmap's hugetlb reservation), so a plain touch cannot fault. */
      volatile unsigned char *q = p;
      size_t i;
      for (i = 0; i < len; i += 4096) (void)q[i];
      break;
    }
    err = bm__posix_error(errno);
    break;
  }
#endif
  if (err == 0) err = bm__posix_smaps(p, sm);
  bm__sys_munmap(p, len);
  return err;
}

/* The page size a probe saw: the hugetlb page size, the PMD size when transparent huge
 * pages are mapped, or the base page. */
static size_t probe_page_size(const bm__smaps_t *sm, int *transparent) {
  size_t base = bm__os_config()->page_size;
  *transparent = 0;
  if (sm->kernel_page_size > base) return sm->kernel_page_size;
  if (sm->shmem_pmd > 0 || sm->file_pmd > 0 || sm->anon_huge > 0) {
    *transparent = 1;
    return pmd_size();
  }
  return sm->kernel_page_size != 0 ? sm->kernel_page_size : base;
}

static int set_size(int fd, uint64_t size) {
  int r;
  if (size > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  do r = bm__sys_ftruncate(fd, (off_t)size);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : bm__posix_error(errno);
}

static int pool_errno(int e) { return e == ENOMEM || e == ENOSPC; }

/* Reason for an OS refusal while making huge pages; 0 when it is a hard error. */
static int huge_reason(int e) {
  if (pool_errno(e)) return BM_REASON_POOL_EMPTY;
  if (e == EACCES || e == EPERM) return BM_REASON_NO_PRIVILEGE;
  if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ENODEV) return BM_REASON_UNSUPPORTED;
  return 0;
}

/* Creates the shared-memory object of a normal-page (or transparent) section. */
static int make_shm(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                    const bm_section_opts_t *opts, unsigned mode, int *fdp, char *path,
                    size_t pathlen) {
  int fd, i, r;
  if (name == NULL) {
#ifdef __linux__
    fd = bm__sys_memfd_create("bulkmap", MFD_CLOEXEC);
    if (fd < 0) return bm__posix_error(errno);
    snprintf(path, pathlen, "memfd:bulkmap");
    *fdp = fd;
    return 0;
#else
    return bm__set_os_error(0), BM_ENOTSUP;
#endif
  }
  /* Creating NAME here while a hugetlbfs mount has it would make it ambiguous to open. */
  for (i = 0; i < ms->n; i++) {
    if ((r = entry_exists(ms->m[i].dirfd, name)) < 0) return r;
    if (r) return bm__set_os_error(EEXIST), BM_EEXIST;
  }
  {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    fd = bm__sys_shm_open(oname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) return bm__posix_error(errno);
    if ((r = claim(src, fd, opts, mode)) != 0) {
      close(fd);
      bm__sys_shm_unlink(oname);
      return r;
    }
  }
  snprintf(path, pathlen, SHM_DIR "/%s", name);
  *fdp = fd;
  return 0;
}

static void unmake_shm(const char *name, int fd) {
  close(fd);
  if (name != NULL) {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    bm__sys_shm_unlink(oname);
  }
}

/* The hugetlb attempt: a file NAME on the mount of page size `want` (0: the default
 * size, else any mount), or an anonymous memfd(MFD_HUGETLB). The pages are allocated
 * now (fallocate), so a pool that runs dry is an error here and never a SIGBUS later. */
static int try_hugetlb(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                       const bm_section_opts_t *opts, unsigned mode, bm_large_t *out) {
#ifdef __linux__
  const posix_mount_t *mnt = NULL;
  size_t H = opts->large_page_size, probe_len;
  uint64_t size = opts->size;
  bm__smaps_t sm;
  int fd, i, r, e, transparent;

  if (name != NULL && opts->mount != NULL) {
    /* The caller named the mount: that one or none (compared by device, so that any path
     * to the same mount does). */
    struct stat want, have;
    if (bm__sys_stat(opts->mount, &want) == 0)
      for (i = 0; i < ms->n && mnt == NULL; i++)
        if (bm__sys_fstat(ms->m[i].dirfd, &have) == 0 && have.st_dev == want.st_dev &&
            have.st_ino == want.st_ino)
          mnt = &ms->m[i];
    if (mnt == NULL || (H != 0 && mnt->page_size != H))
      return out->reason = BM_REASON_NO_MOUNT, POSIX_NOT_HAD;
    H = mnt->page_size;
  } else if (name != NULL) {
    for (i = 0; i < ms->n && mnt == NULL; i++)
      if (H != 0 ? ms->m[i].page_size == H : ms->m[i].page_size == ms->default_size)
        mnt = &ms->m[i];
    if (mnt == NULL && H == 0 && ms->n > 0) mnt = &ms->m[0];
    if (mnt == NULL) return out->reason = BM_REASON_NO_MOUNT, POSIX_NOT_HAD;
    H = mnt->page_size;
  } else {
    int ok = 0;
    if (H == 0) H = ms->default_size;
    for (i = 0; i < ms->n_sizes; i++) ok |= ms->sizes[i] == H;
    if (!ok || !is_pow2(H)) return out->reason = BM_REASON_UNSUPPORTED, POSIX_NOT_HAD;
  }

  /* Sizes of a hugetlb section are whole huge pages: round when allowed, else refuse. */
  if (size % H != 0) {
    if (!opts->round) return out->reason = BM_REASON_SIZE_NOT_MULTIPLE, POSIX_NOT_HAD;
    size = bm__align_up(size, H);
    if (size == 0) return BM_EOVERFLOW;
  }

  if (name != NULL) {
    if ((r = shm_exists(name)) != 0) return r < 0 ? r : (bm__set_os_error(EEXIST), BM_EEXIST);
    for (i = 0; i < ms->n; i++) {
      if (&ms->m[i] == mnt) continue;
      if ((r = entry_exists(ms->m[i].dirfd, name)) < 0) return r;
      if (r) return bm__set_os_error(EEXIST), BM_EEXIST;
    }
    /* O_NOFOLLOW and a bare name resolved in the mount's directory: never a path
     * outside the mount, even if someone plants a symlink there. */
    fd = bm__sys_openat(mnt->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                (mode_t)mode);
    if (fd < 0) {
      e = errno;
      if (e == EEXIST || huge_reason(e) == 0) return bm__posix_error(e);
      bm__set_os_error(e);
      return out->reason = huge_reason(e), POSIX_NOT_HAD;
    }
    if ((r = claim(src, fd, opts, mode)) != 0) goto hard;
    path_join(src->path, sizeof(src->path), mnt->path, name);
  } else {
    int lg = 0;
    while (((size_t)1 << lg) < H) lg++;
    fd = bm__sys_memfd_create("bulkmap",
                              MFD_CLOEXEC | MFD_HUGETLB | ((unsigned)lg << MFD_HUGE_SHIFT));
    if (fd < 0) {
      e = errno;
      if (huge_reason(e) == 0) return bm__posix_error(e);
      bm__set_os_error(e);
      return out->reason = huge_reason(e), POSIX_NOT_HAD;
    }
    snprintf(src->path, sizeof(src->path), "memfd:bulkmap (hugetlb)");
  }

  if ((r = set_size(fd, size)) != 0) {
    e = bm_last_os_error();
    if (huge_reason(e) != 0) goto not_had_e;
    goto hard;
  }
  /* Allocate every huge page now. Without fallocate (kernels before 4.3) the probe maps
   * the whole section instead: a shared hugetlb mapping reserves all its pages at mmap. */
  probe_len = H;
  while (bm__sys_fallocate(fd, 0, 0, (off_t)size) != 0) {
    e = errno;
    if (e == EINTR) continue;
    if (e == EOPNOTSUPP || e == ENOSYS) {
      /* Only this fallback maps the section whole: a section past the address space (a
       * 32-bit process) cannot have its pages made sure of, so it gets none. */
      if (size > (uint64_t)SIZE_MAX) goto not_had;
      probe_len = (size_t)size;
      break;
    }
    if (huge_reason(e) != 0) goto not_had;
    r = bm__posix_error(e);
    goto hard;
  }
  if ((r = probe(fd, probe_len, H, 1, 0, &sm)) != 0) {
    e = bm_last_os_error();
    if (huge_reason(e) != 0) goto not_had_e;
    goto hard;
  }
  if (probe_page_size(&sm, &transparent) != H || transparent) {
    /* The kernel mapped something else than asked: do not pretend. */
    bm__set_os_error(0);
    out->reason = BM_REASON_UNSUPPORTED;
    r = POSIX_NOT_HAD;
    goto undo;
  }
  src->fd = fd;
  src->size = size;
  src->hugetlb = 1;
  src->granularity = H;
  src->page_size = H;
  out->obtained = 1;
  out->transparent = 0;
  out->page_size = sm.kernel_page_size;
  out->reason = BM_REASON_NONE;
  return POSIX_MADE;

not_had:
  bm__set_os_error(e);
not_had_e:
  out->reason = huge_reason(e);
  r = POSIX_NOT_HAD;
  goto undo;
hard:
undo:
  close(fd);
  src->writer = 0;
  if (name != NULL) bm__sys_unlinkat(mnt->dirfd, name, 0);
  if (r == POSIX_NOT_HAD && out->reason == BM_REASON_POOL_EMPTY) {
    /* Say what is short, counted after the pages this attempt held went back. */
    out->pages_needed = size / H;
    out->pages_free = pool_free(H);
    if (out->pages_free > 0) out->reason = BM_REASON_POOL_TOO_SMALL;
  }
  return r;
#else
  (void)src, (void)ms, (void)name, (void)opts, (void)mode;
  out->reason = BM_REASON_UNSUPPORTED;
  return POSIX_NOT_HAD;
#endif
}

/* Reads a "[mode]" knob of /sys/kernel/mm/transparent_hugepage into buf. */
static int read_knob(const char *path, char *buf, size_t n) {
  FILE *f = bm__sys_fopen(path, "re");
  char line[256], *a, *b;
  if (f == NULL) return -1;
  if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
  fclose(f);
  a = strchr(line, '[');
  b = a != NULL ? strchr(a, ']') : NULL;
  if (b == NULL || (size_t)(b - a) > n) return -1;
  memcpy(buf, a + 1, (size_t)(b - a - 1));
  buf[b - a - 1] = '\0';
  return 0;
}

/* The huge= option of the tmpfs mounted at SHM_DIR (the last mount there wins). */
static void shm_huge_option(char *buf, size_t n) {
  FILE *f = bm__sys_fopen("/proc/mounts", "re");
  char line[1024], dev[256], dir[BM_PATH_MAX], type[64], opts[512], *p;
  snprintf(buf, n, "never");
  if (f == NULL) return;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%255s %511s %63s %511s", dev, dir, type, opts) != 4) continue;
    if (strcmp(dir, SHM_DIR) != 0 || strcmp(type, "tmpfs") != 0) continue;
    snprintf(buf, n, "never");
    if ((p = strstr(opts, "huge=")) != NULL) snprintf(buf, n, "%.*s", (int)strcspn(p + 5, ","), p + 5);
  }
  fclose(f);
}

/* Whether the kernel would give transparent huge pages to this shmem object at all: a
 * memfd follows shmem_enabled; a /dev/shm file follows the huge= option of that tmpfs
 * mount, unless shmem_enabled says force or deny (Documentation/admin-guide/mm/transhuge). */
static int thp_allowed(int named) {
  char top[32], opt[32];
  if (read_knob("/sys/kernel/mm/transparent_hugepage/shmem_enabled", top, sizeof(top)) != 0)
    return 0;
  if (strcmp(top, "deny") == 0) return 0;
  if (strcmp(top, "force") == 0) return 1;
  if (named) {
    shm_huge_option(opt, sizeof(opt));
    return strcmp(opt, "always") == 0 || strcmp(opt, "within_size") == 0 ||
           strcmp(opt, "advise") == 0;
  }
  return strcmp(top, "always") == 0 || strcmp(top, "within_size") == 0 ||
         strcmp(top, "advise") == 0;
}

/* Normal pages, with transparent huge pages when `want_thp` and the kernel really maps
 * them: checked by mapping the first PMD of the section and asking smaps. */
static int make_normal(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                       const bm_section_opts_t *opts, unsigned mode, int want_thp,
                       bm_large_t *out) {
  size_t base = bm__os_config()->page_size, pmd = pmd_size();
  uint64_t size = bm__align_up(opts->size, base);
  bm__smaps_t sm;
  int fd = -1, r, transparent = 0;
  size_t got;

  if (size == 0) return BM_EOVERFLOW;
  if ((r = make_shm(src, ms, name, opts, mode, &fd, src->path, sizeof(src->path))) != 0)
    return r;
  if ((r = set_size(fd, size)) != 0) goto fail;
  want_thp = want_thp && size >= pmd && is_pow2(pmd) && thp_allowed(name != NULL);
  if (want_thp) r = probe(fd, pmd, pmd, 1, 1, &sm);
  else r = probe(fd, base, base, 1, 0, &sm);
  if (r != 0) goto fail;
  got = probe_page_size(&sm, &transparent);
  src->fd = fd;
  src->size = size;
  src->page_size = got;
  src->granularity = bm__os_config()->granularity;
  out->page_size = got;
  if (transparent) {
    /* Views get MADV_HUGEPAGE and start on PMD boundaries, where a PMD can be mapped. */
    src->thp = 1;
    src->granularity = got;
    out->obtained = 1;
    out->transparent = 1;
    if (opts->large != BM_LARGE_OFF) out->reason = BM_REASON_TRANSPARENT_ONLY;
  }
  return 0;
fail:
  unmake_shm(name, fd);
  return r;
}

/* The transparent request (opts->transparent): normal pages with MADV_HUGEPAGE, kept as
 * such only when the kernel really maps PMDs for them (smaps); never hugetlb pages. A size
 * that is not a whole number of PMDs is rounded up when allowed, as for hugetlb. When the
 * kernel allows them but gives none (no free huge page), AUTO keeps the normal pages made. */
static int try_transparent(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                           const bm_section_opts_t *opts, unsigned mode, bm_large_t *out) {
  bm_section_opts_t o = *opts;
  size_t pmd = pmd_size();
  int r;

  if (!is_pow2(pmd)) return out->reason = BM_REASON_UNSUPPORTED, POSIX_NOT_HAD;
  if (o.size % pmd != 0) {
    if (!o.round) return out->reason = BM_REASON_SIZE_NOT_MULTIPLE, POSIX_NOT_HAD;
    if ((o.size = bm__align_up(o.size, pmd)) == 0) return BM_EOVERFLOW;
  }
  /* shmem_enabled (and /dev/shm's huge= option) decide for shared memory. */
  if (!thp_allowed(name != NULL)) return out->reason = BM_REASON_UNSUPPORTED, POSIX_NOT_HAD;
  if ((r = make_normal(src, ms, name, &o, mode, 1, out)) != 0) return r;
  if (out->transparent) {
    out->reason = BM_REASON_NONE;
    return POSIX_MADE;
  }
  out->reason = BM_REASON_POOL_EMPTY;
  if (opts->large == BM_LARGE_AUTO) return POSIX_MADE;
  unmake_shm(name, src->fd);
  src->fd = -1;
  return POSIX_NOT_HAD;
}

static int section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome);

int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome) {
  int lock = -1, r;
  /* Creators are serialized: looking in every place for the name and making it in one is
   * then atomic, so of two racing creators (one for huge pages, one not) exactly one wins. */
  if (name != NULL && (r = create_lock(&lock)) != 0) return r;
  r = section_create(src, name, opts, outcome);
  create_unlock(lock);
  return r;
}

static int section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome) {
  posix_mounts_t ms;
  unsigned mode = opts->mode != 0 ? opts->mode : 0600;
  int r = POSIX_NOT_HAD;

  mounts_open(&ms);
  if (opts->transparent && opts->large != BM_LARGE_OFF) {
    r = try_transparent(src, &ms, name, opts, mode, outcome);
    if (r == POSIX_NOT_HAD && opts->large == BM_LARGE_ON) {
      mounts_close(&ms);
      return outcome->reason == BM_REASON_SIZE_NOT_MULTIPLE ? BM_EALIGN : BM_ENOLARGE;
    }
    /* AUTO: normal pages, the reason kept. */
    if (r == POSIX_NOT_HAD) r = make_normal(src, &ms, name, opts, mode, 0, outcome);
    mounts_close(&ms);
    return r;
  }
  if (opts->large != BM_LARGE_OFF) {
    r = try_hugetlb(src, &ms, name, opts, mode, outcome);
    if (r == POSIX_NOT_HAD && opts->large == BM_LARGE_ON) {
      mounts_close(&ms);
      return outcome->reason == BM_REASON_SIZE_NOT_MULTIPLE ? BM_EALIGN : BM_ENOLARGE;
    }
  }
  /* AUTO tries transparent huge pages only when the size allows hugetlb pages at all:
   * a size that is not a multiple was a request for normal pages. */
  if (r == POSIX_NOT_HAD)
    r = make_normal(src, &ms, name, opts, mode,
                    opts->large == BM_LARGE_AUTO &&
                        outcome->reason != BM_REASON_SIZE_NOT_MULTIPLE,
                    outcome);
  mounts_close(&ms);
  return r;
}

/* Opens NAME in place `where` (-1: /dev/shm, else mount k) into src: a regular file only,
 * never through a symlink, never waiting on a FIFO planted under the name. */
static int open_place(const posix_mounts_t *ms, int where, const char *name, unsigned access,
                      bm_source_t *src) {
  int oflags =
      ((access & BM_ACCESS_WRITE) ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  struct stat st;
  int fd, r;
  if (where < 0) {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    fd = bm__sys_shm_open(oname, oflags, 0);
    snprintf(src->path, sizeof(src->path), SHM_DIR "/%s", name);
  } else {
    fd = bm__sys_openat(ms->m[where].dirfd, name, oflags);
    path_join(src->path, sizeof(src->path), ms->m[where].path, name);
  }
  if (fd < 0) return bm__posix_error(errno);
  if ((r = bm__posix_check_regular(fd, &src->size)) != 0 ||
      (bm__sys_fstat(fd, &st) != 0 && (r = bm__posix_error(errno)) != 0)) {
    close(fd);
    return r;
  }
  src->fd = fd;
  src->dev = (uint64_t)st.st_dev;
  src->ino = (uint64_t)st.st_ino;
  src->hugetlb = where >= 0;
  if (src->hugetlb) src->granularity = src->page_size = ms->m[where].page_size;
  return 0;
}

int bm__os_section_open(bm_source_t *src, const char *name, unsigned access) {
  posix_mounts_t ms;
  int where = -1, r;

  mounts_open(&ms);
  if ((r = locate(&ms, name, &where)) != 0 || (r = open_place(&ms, where, name, access, src)) != 0)
    goto out;
  /* The opener asked for nothing: requested reads OFF; the rest is what the kernel says. */
  src->large.requested = BM_LARGE_OFF;
  r = bm__os_section_large(src, &src->large);
  if (r == 0 && src->large.transparent) {
    src->thp = 1;
    src->granularity = src->page_size = src->large.page_size;
  }
  if (r != 0) {
    close(src->fd);
    src->fd = -1;
  }
out:
  mounts_close(&ms);
  return r;
}

/* Unlinks NAME from place `where`. */
static int unlink_place(const posix_mounts_t *ms, int where, const char *name) {
  if (where < 0) {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    if (bm__sys_shm_unlink(oname) != 0) return bm__posix_error(errno);
  } else if (bm__sys_unlinkat(ms->m[where].dirfd, name, 0) != 0) {
    return bm__posix_error(errno);
  }
  return 0;
}

/* 1 when another open file description holds a lock on fd's file, 0 when none does. */
static int locked_by_other(int fd) {
  if (bm__sys_flock(fd, LOCK_SH | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);
    return 0;
  }
  if (errno == EWOULDBLOCK) return 1;
  return bm__posix_error(errno);
}

int bm__os_section_remove_name(const char *name, int force) {
  posix_mounts_t ms;
  int where = -1, r, lock = -1;
  if ((r = create_lock(&lock)) != 0) return r;
  mounts_open(&ms);
  if ((r = locate(&ms, name, &where)) == 0 && !force) {
    /* A dataset whose writer still holds its lock is being loaded: not removed unless
     * forced (the loader would fail at its end anyway). */
    bm_source_t probe;
    memset(&probe, 0, sizeof(probe));
    probe.fd = -1;
    if (open_place(&ms, where, name, BM_ACCESS_READ, &probe) == 0) {
      r = locked_by_other(probe.fd);
      close(probe.fd);
      if (r == 1) {
        bm__set_os_error(EWOULDBLOCK);
        r = BM_EBUSY;
      }
    }
    /* One we may not open we may still be allowed to remove: the directory decides. */
  }
  if (r == 0) r = unlink_place(&ms, where, name);
  mounts_close(&ms);
  create_unlock(lock);
  return r;
}

int bm__os_section_remove_own(bm_source_t *src, const char *name) {
  posix_mounts_t ms;
  struct stat st;
  char path[BM_PATH_MAX];
  int i, r = BM_ENOENT, lock = -1, e;
  if (src == NULL || src->ino == 0) return BM_EINVAL;
  /* Under the creators' lock: between the check and the unlink, no bulkmap creator can
   * put a new object under the name. */
  if ((e = create_lock(&lock)) != 0) return e;
  mounts_open(&ms);
  snprintf(path, sizeof(path), SHM_DIR "/%s", name);
  if (bm__sys_lstat(path, &st) == 0) {
    r = BM_EREPLACED;
    if ((uint64_t)st.st_dev == src->dev && (uint64_t)st.st_ino == src->ino)
      r = unlink_place(&ms, -1, name);
  }
  for (i = 0; i < ms.n && r != 0; i++) {
    if (bm__sys_fstatat(ms.m[i].dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if ((uint64_t)st.st_dev == src->dev && (uint64_t)st.st_ino == src->ino)
      r = unlink_place(&ms, i, name);
    else if (r == BM_ENOENT)
      r = BM_EREPLACED;
  }
  if (r == BM_EREPLACED || r == BM_ENOENT) bm__set_os_error(0);
  mounts_close(&ms);
  create_unlock(lock);
  return r;
}

int bm__os_writer_alive(bm_source_t *src) {
  if (src->writer) return 1; /* this very handle holds it */
  return locked_by_other(src->fd);
}

void bm__os_writer_release(bm_source_t *src) {
  if (src->writer && src->fd >= 0) flock(src->fd, LOCK_UN);
  src->writer = 0;
}

/* ---- Listing. */

typedef struct {
  int (*fn)(void *arg, const bm__os_entry_t *e);
  void *arg;
  const char *only;
} list_ctx_t;

static int list_dir(const posix_mounts_t *ms, int where, int dirfd, const char *place,
                    size_t page, list_ctx_t *c) {
  DIR *d;
  struct dirent *de;
  int dfd, r = 0;
  if ((dfd = dup(dirfd)) < 0) return bm__posix_error(errno);
  if ((d = fdopendir(dfd)) == NULL) {
    close(dfd);
    return bm__posix_error(errno);
  }
  rewinddir(d);
  while (r == 0 && (de = readdir(d)) != NULL) {
    bm__os_entry_t e;
    bm_source_t *src;
    struct stat st;
    struct passwd pw, *pwr = NULL;
    char pwbuf[1024], owner[32];
    if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.')) continue;
    if (c->only != NULL && strcmp(de->d_name, c->only) != 0) continue;
    if (bm_name_check(de->d_name) != 0) continue; /* no name a section can have */
    if (bm__sys_fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    memset(&e, 0, sizeof(e));
    e.name = de->d_name;
    e.place = place;
    e.size = (uint64_t)st.st_size;
    e.place_page_size = page;
    e.uid = (uint32_t)st.st_uid;
    e.mode = (unsigned)st.st_mode & 07777u;
    e.mine = st.st_uid == geteuid();
    if (getpwuid_r(st.st_uid, &pw, pwbuf, sizeof(pwbuf), &pwr) == 0 && pwr != NULL) {
      e.owner = pwr->pw_name;
    } else {
      snprintf(owner, sizeof(owner), "%lu", (unsigned long)st.st_uid);
      e.owner = owner;
    }
    src = bm__source_new(BM__SRC_SECTION, BM_FILE_READ);
    if (src == NULL) {
      r = BM_ENOMEM;
      break;
    }
    e.open_error = open_place(ms, where, de->d_name, BM_ACCESS_READ, src);
    if (e.open_error == 0) e.size = src->size;
    e.src = e.open_error == 0 ? src : NULL;
    r = c->fn(c->arg, &e);
    bm_source_close(src);
  }
  closedir(d);
  return r;
}

int bm__os_section_list(const char *name, int (*fn)(void *arg, const bm__os_entry_t *e),
                        void *arg) {
  posix_mounts_t ms;
  list_ctx_t c;
  int i, r = 0, shm;
  c.fn = fn;
  c.arg = arg;
  c.only = name;
  mounts_open(&ms);
  shm = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (shm >= 0) {
    r = list_dir(&ms, -1, shm, SHM_DIR, 0, &c);
    close(shm);
  }
  for (i = 0; i < ms.n && r == 0; i++) r = list_dir(&ms, i, ms.m[i].dirfd, ms.m[i].path, ms.m[i].page_size, &c);
  mounts_close(&ms);
  return r;
}

int bm__os_section_large(bm_source_t *src, bm_large_t *outcome) {
  size_t base = bm__os_config()->page_size, len, align, got;
  bm__smaps_t sm;
  int transparent, r;

  if (src->size == 0) {
    outcome->obtained = 0;
    outcome->transparent = 0;
    outcome->page_size = base;
    return 0;
  }
  if (src->hugetlb) {
    len = align = src->granularity;
  } else if (src->size >= pmd_size() && is_pow2(pmd_size())) {
    /* A PMD can only show up in a PMD-sized, PMD-aligned mapping. */
    len = align = pmd_size();
  } else {
    len = align = base;
  }
  if ((r = probe(src->fd, len, align, 0, src->thp, &sm)) != 0) return r;
  got = probe_page_size(&sm, &transparent);
  outcome->page_size = got;
  outcome->transparent = transparent;
  outcome->obtained = got > base;
  if (outcome->requested == BM_LARGE_OFF && outcome->reason != BM_REASON_NONE)
    outcome->reason = outcome->obtained ? BM_REASON_NONE : BM_REASON_NOT_REQUESTED;
  return 0;
}
