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
#include <sys/syscall.h>
#include <sys/sysmacros.h>
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

/* The name a dataset's bytes are made under: none. They are anonymous (O_TMPFILE) in
 * their place until the dataset is published (src/posix/store.c), and sized exactly. */
static const char posix_anon[] = "";
#define IS_ANON(name) ((name) == posix_anon)

/* What one attempt at a kind of page came to: made (0), not had for `reason` (1, the
 * caller may fall back), or a hard error (< 0) that no other kind of page would fix. */
enum { POSIX_MADE = 0, POSIX_NOT_HAD = 1 };

/* A hugetlbfs mount, opened once per call so that names resolve inside it and nowhere
 * else. */
typedef struct {
  int dirfd;
  size_t page_size;
  uint64_t dev; /* its file system: ranks places for creators (see claim) */
  char path[BM_PATH_MAX];
} posix_mount_t;

typedef struct {
  int n;
  posix_mount_t m[BM_MAX_MOUNTS];
  size_t default_size; /* the OS default huge page size */
  int n_sizes;
  size_t sizes[BM_MAX_LARGE_SIZES];
  int err; /* errno of a listed mount that could not be opened (0: none) */
  int shm_fd;       /* SHM_DIR, or -1 (names there are then resolved by path) */
  int shm_err;      /* why it could not be opened */
  uint64_t shm_dev; /* its file system (0 when it could not be opened) */
} posix_mounts_t;

static void mounts_close(posix_mounts_t *ms) {
  int i;
  for (i = 0; i < ms->n; i++) close(ms->m[i].dirfd);
  ms->n = 0;
  if (ms->shm_fd >= 0) close(ms->shm_fd);
  ms->shm_fd = -1;
}

/* Opens every hugetlbfs mount /proc/mounts lists, keeping one per filesystem (a bind
 * mount of the same one would otherwise make every name on it look ambiguous). */
static void mounts_open(posix_mounts_t *ms) {
  bm_sysinfo_t info;
  dev_t devs[BM_MAX_MOUNTS];
  int i, k, fd;

  memset(ms, 0, sizeof(*ms));
  memset(&info, 0, sizeof(info));
  ms->shm_fd = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ms->shm_fd < 0) ms->shm_err = errno;
  if (ms->shm_fd >= 0) {
    struct stat st;
    if (bm__sys_fstat(ms->shm_fd, &st) == 0) ms->shm_dev = (uint64_t)st.st_dev;
  }
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
    ms->m[ms->n].dev = (uint64_t)st.st_dev;
    snprintf(ms->m[ms->n].path, sizeof(ms->m[0].path), "%s", info.mounts[i].path);
    ms->n++;
  }
}

/* Where NAME lives: -1 in /dev/shm, k on mount k. When several places have it and exactly
 * one of them is the caller's own, that one: another user's object never locks you out of
 * your own. A replace across places (bm__os_section_commit) marks the old generation
 * superseded (its sticky bit: meaningless on a regular file, and only its owner or root can
 * set it) before it makes the new one NAME in the other place, then removes the old: an
 * object marked so is passed over when another of the same owner is not marked.
 * BM_ENOENT, BM_EAMBIGUOUS, or an error. */
static int place_stat(const posix_mounts_t *ms, int where, const char *name, struct stat *st);

static int locate(const posix_mounts_t *ms, const char *name, int *where) {
  struct {
    int at, marked, gone;
    uid_t uid;
  } c[BM_MAX_MOUNTS + 1];
  int i, k, n = 0, left = 0, mine = 0, mine_at = -2;
  uid_t me = geteuid();
  for (i = -1; i < ms->n; i++) {
    struct stat st;
    if (place_stat(ms, i, name, &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return bm__posix_error(errno);
    }
    c[n].at = i;
    c[n].uid = st.st_uid;
    c[n].marked = S_ISREG(st.st_mode) && (st.st_mode & S_ISVTX) != 0;
    c[n].gone = 0;
    n++;
  }
  for (i = 0; i < n; i++)
    for (k = 0; k < n && c[i].marked; k++)
      if (k != i && !c[k].marked && c[k].uid == c[i].uid) c[i].gone = 1;
  for (i = 0; i < n; i++) {
    if (c[i].gone) continue;
    *where = c[i].at, left++;
    if (c[i].uid == me) mine++, mine_at = c[i].at;
  }
  if (left == 0 && ms->err != 0) return bm__posix_error(ms->err);
  if (left == 0) return bm__set_os_error(ENOENT), BM_ENOENT;
  if (left > 1) {
    if (mine != 1) return bm__set_os_error(0), BM_EAMBIGUOUS;
    *where = mine_at;
  }
  return 0;
}

/* ---- Places by index: -1 is SHM_DIR, k >= 0 mount k. A name there is resolved in the
 * place's directory descriptor (or by its path under SHM_DIR when that could not be
 * opened): *dfd and the name to pass to the *at calls. */
static const char *place_at(const posix_mounts_t *ms, int where, const char *name, int *dfd,
                            char *buf, size_t n) {
  if (where >= 0) {
    *dfd = ms->m[where].dirfd;
    return name;
  }
  if (ms->shm_fd >= 0) {
    *dfd = ms->shm_fd;
    return name;
  }
  *dfd = AT_FDCWD;
  snprintf(buf, n, SHM_DIR "/%s", name);
  return buf;
}

static int place_stat(const posix_mounts_t *ms, int where, const char *name, struct stat *st) {
  char buf[BM_PATH_MAX];
  int dfd;
  const char *at = place_at(ms, where, name, &dfd, buf, sizeof(buf));
  return bm__sys_fstatat(dfd, at, st, AT_SYMLINK_NOFOLLOW);
}

/* The file system a place is on: creators of one name in two places defer to the lower. */
static uint64_t place_rank(const posix_mounts_t *ms, int where) {
  return where >= 0 ? ms->m[where].dev : ms->shm_dev;
}

/* ---- The writer lock: an open-file-description lock for writing on byte 0 of the section
 * (fcntl F_OFD_SETLK, Linux 3.15), which the kernel drops with the writer's last descriptor
 * of the object, however it dies. Why nobody else can hold it: a write lock needs a
 * descriptor opened for writing (EBADF otherwise), and a section is made with no permission
 * bits, so until its creator has taken the lock and given it its mode nobody but root can
 * open it at all; afterwards a reader's descriptor can take at most a read lock, which
 * writer_held does not count. (flock, which any descriptor takes, read-only ones included,
 * is not used for this.) Only a section whose mode lets others write (0666) can be spoofed,
 * by those it lets. Where there are no OFD locks (not Linux) the process-associated F_SETLK
 * serves; it is dropped when the writer closes any descriptor of the file.
 * fcntl is called directly: it is not in the fault table (posix.h) that check_fault lists
 * its errnos for. */
#ifdef F_OFD_SETLK
#define POSIX_SETLK F_OFD_SETLK
#define POSIX_GETLK F_OFD_GETLK
#else
#define POSIX_SETLK F_SETLK
#define POSIX_GETLK F_GETLK
#endif

static int writer_lock(int fd, short type) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (fcntl(fd, POSIX_SETLK, &fl) != 0) return bm__posix_error(errno);
  return 0;
}

/* 1 when some other descriptor holds the writer lock of fd's file, 0 when none does (a read
 * lock, which any reader may take, is no writer), < 0 on error. */
static int writer_held(int fd) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (fcntl(fd, POSIX_GETLK, &fl) != 0) return bm__posix_error(errno);
  return fl.l_type == F_WRLCK;
}

/* ---- Exclusive creation without a shared lock. A lock every creator takes would be a
 * lock anyone can take (and hold, stalling every load: the flock on /dev/shm that this
 * replaces). Instead the kernel arbitrates:
 * - within a place, O_CREAT | O_EXCL: one creator makes the name;
 * - across places, each creator makes its object with no permission bits (`tentative`),
 *   takes its writer lock, then looks at the other places (postcheck): a name on a file
 *   system of lower rank (device number) makes it step back; one of higher rank that is
 *   tentative is waited for (it steps back or commits within microseconds), and one that
 *   is committed makes it step back. Committing is giving the object its mode.
 * Of two creators in two places, the higher-ranked one looks after it made its object; if
 * it saw nothing, the lower one's look comes after both objects exist and sees the higher
 * one, tentative (it waits until it commits, then steps back) or committed: exactly one
 * stands. A tentative object whose creator died (older than POSIX_TENTATIVE_S seconds) is
 * judged as any object: the name is taken (bulkmap rm removes it). */
#define POSIX_TENTATIVE_S 5

enum { LOOK_NONE = 0, LOOK_TENTATIVE = 1, LOOK_THERE = 2 };

static int look(const posix_mounts_t *ms, int where, const char *name) {
  struct stat st;
  time_t now;
  if (place_stat(ms, where, name, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? LOOK_NONE : bm__posix_error(errno);
  if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0) return LOOK_THERE;
  now = time(NULL);
  if (now - st.st_ctime > POSIX_TENTATIVE_S || st.st_ctime - now > POSIX_TENTATIVE_S)
    return LOOK_THERE;
  return LOOK_TENTATIVE;
}

/* What NAME in place `where` is once a tentative creator there is done (or gave up
 * waiting for it: taken). */
static int settle(const posix_mounts_t *ms, int where, const char *name) {
  int i, r;
  for (i = 0; i < POSIX_TENTATIVE_S * 1000; i++) {
    struct timespec ts = {0, 1000 * 1000};
    if ((r = look(ms, where, name)) != LOOK_TENTATIVE) return r;
    nanosleep(&ts, NULL);
  }
  return LOOK_THERE;
}

/* Before making NAME in place p: BM_EEXIST when another place has it. */
static int precheck(const posix_mounts_t *ms, int p, const char *name) {
  int q, r;
  for (q = -1; q < ms->n; q++) {
    if (q == p) continue;
    if ((r = settle(ms, q, name)) < 0) return r;
    if (r == LOOK_THERE) return bm__set_os_error(EEXIST), BM_EEXIST;
  }
  return 0;
}

/* After making NAME tentatively in place p: 0 when it stands, BM_EEXIST when it must step
 * back. */
static int postcheck(const posix_mounts_t *ms, int p, const char *name) {
  int q, r;
  for (q = -1; q < ms->n; q++) {
    if (q == p) continue;
    if (place_rank(ms, q) < place_rank(ms, p)) r = look(ms, q, name);
    else r = settle(ms, q, name);
    if (r < 0) return r;
    if (r == LOOK_THERE || (r == LOOK_TENTATIVE && place_rank(ms, q) < place_rank(ms, p)))
      return bm__set_os_error(EEXIST), BM_EEXIST;
  }
  return 0;
}

/* ---- Removing exactly the object judged, with no lock: NAME is moved aside under a name
 * no section can have (renameat2 RENAME_NOREPLACE), checked there to be (dev, ino), and
 * removed; one that turned out to be another is put back. So a remove never takes away an
 * object made under the name after it looked (a holder ending after `rm X; load X`).
 * renameat2 is called directly, as fcntl. */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static int rename_noreplace(int dfd, const char *from, const char *to) {
#ifdef SYS_renameat2
  return (int)syscall(SYS_renameat2, dfd, from, dfd, to, RENAME_NOREPLACE);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static int remove_identity(const posix_mounts_t *ms, int where, const char *name, uint64_t dev,
                           uint64_t ino) {
  char nbuf[BM_PATH_MAX];
  const char *at;
  int dfd;
  /* Moved aside under 128 random bits (src/posix/store.c): a name nobody can plant first. */
  at = place_at(ms, where, name, &dfd, nbuf, sizeof(nbuf));
  return bm__posix_unlink_identity(dfd, at, dev, ino);
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
static int claim(bm_source_t *src, int fd, const posix_mounts_t *ms, int where,
                 const char *name, const bm_section_opts_t *opts, unsigned mode) {
  struct stat st;
  int r;
  /* Made with no permission bits: nobody else has it open, so this cannot be refused. */
  if ((r = writer_lock(fd, F_WRLCK)) != 0) return r;
  src->writer = 1;
  if (bm__sys_fstat(fd, &st) != 0) return bm__posix_error(errno);
  src->dev = (uint64_t)st.st_dev;
  src->ino = (uint64_t)st.st_ino;
  if ((r = postcheck(ms, where, name)) != 0) return r;
  if (opts->group != NULL) {
    gid_t gid;
    if ((r = resolve_group(opts->group, &gid)) != 0) return r;
    if (bm__sys_fchown(fd, (uid_t)-1, gid) != 0) return bm__posix_error(errno);
  }
  /* Committed: the mode asked for (never 0: that means 0600). */
  if (bm__sys_fchmod(fd, (mode_t)mode) != 0) return bm__posix_error(errno);
  return 0;
}

/* Takes back what a creator made under NAME in place `where` (and only that). */
static void unmake(const posix_mounts_t *ms, int where, const char *name, bm_source_t *src,
                   int fd) {
  if (fd >= 0) close(fd);
  if (name != NULL && src->ino != 0) remove_identity(ms, where, name, src->dev, src->ino);
  src->dev = src->ino = 0;
  src->writer = 0;
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

/* An anonymous data file's group and exact mode (the umask must not change them). */
static int anon_mode(int fd, const bm_section_opts_t *opts, unsigned mode) {
  struct stat st;
  int r;
  if (opts->group != NULL) {
    gid_t gid;
    if ((r = resolve_group(opts->group, &gid)) != 0) return r;
    if (bm__sys_fchown(fd, (uid_t)-1, gid) != 0) return bm__posix_error(errno);
  }
  if (bm__sys_fchmod(fd, (mode_t)mode) != 0) return bm__posix_error(errno);
  (void)st;
  return 0;
}

/* Takes back an anonymous data file (its fallback name too, when it has one). */
static void anon_close(int dfd, bm_source_t *src, int fd) {
  if (fd >= 0) close(fd);
  if (src->place_fd >= 0) close(src->place_fd);
  src->place_fd = -1;
  if (src->gen_name[0] != '\0' && dfd >= 0) bm__sys_unlinkat(dfd, src->gen_name, 0);
  src->gen_name[0] = '\0';
}

/* Creates the shared-memory object of a normal-page (or transparent) section. */
static int make_shm(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                    const bm_section_opts_t *opts, unsigned mode, int *fdp, char *path,
                    size_t pathlen) {
  int fd, r;
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
  if (IS_ANON(name)) {
    if (ms->shm_fd < 0) return bm__posix_error(ms->shm_err != 0 ? ms->shm_err : ENOENT);
    fd = bm__posix_anon_open(ms->shm_fd, 0600, src->gen_name, sizeof(src->gen_name));
    if (fd < 0) return fd;
    if ((r = anon_mode(fd, opts, mode)) != 0) {
      anon_close(ms->shm_fd, src, fd);
      return r;
    }
    /* Named later in this very directory: a path opened again could be another mount. */
    src->place_fd = fcntl(ms->shm_fd, F_DUPFD_CLOEXEC, 0);
    snprintf(path, pathlen, SHM_DIR);
    *fdp = fd;
    return 0;
  }
  /* Creating NAME here while a hugetlbfs mount has it would make it ambiguous to open. */
  if ((r = precheck(ms, -1, name)) != 0) return r;
  {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    /* Mode 0: tentative, and nobody else can open it (see claim). */
    fd = bm__sys_shm_open(oname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return bm__posix_error(errno);
    if ((r = claim(src, fd, ms, -1, name, opts, mode)) != 0) {
      if (src->ino == 0) {
        close(fd);
        bm__sys_shm_unlink(oname);
      } else {
        unmake(ms, -1, name, src, fd);
      }
      return r;
    }
  }
  snprintf(path, pathlen, SHM_DIR "/%s", name);
  *fdp = fd;
  return 0;
}

static void unmake_shm(const posix_mounts_t *ms, const char *name, bm_source_t *src, int fd) {
  if (IS_ANON(name)) {
    anon_close(ms->shm_fd, src, fd);
    return;
  }
  unmake(ms, -1, name, src, fd);
}

/* A numeric option ("nr_inodes=") of the mount at mnt->path in /proc/mounts; 0 when none. */
static uint64_t mount_option(const posix_mount_t *mnt, const char *key) {
  FILE *f = bm__sys_fopen("/proc/mounts", "re");
  char line[1024], dev[256], dir[BM_PATH_MAX], type[64], opts[512], *p;
  uint64_t v = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%255s %511s %63s %511s", dev, dir, type, opts) != 4) continue;
    if (strcmp(dir, mnt->path) != 0 || strcmp(type, "hugetlbfs") != 0) continue;
    if ((p = strstr(opts, key)) != NULL) v = strtoull(p + strlen(key), NULL, 10);
  }
  fclose(f);
  return v;
}

/* The figures of a hugetlbfs mount's limits into out (mount, mount_limit and, for size=,
 * pages_free): 1 when its size= leaves fewer than `pages` free (pages 0: reads the
 * nr_inodes= figures only), 0 otherwise or when they cannot be read. */
static int mount_figures(const posix_mount_t *mnt, uint64_t pages, bm_large_t *out) {
#ifdef __linux__
  struct statfs sf;
  if (mnt == NULL || bm__sys_fstatfs(mnt->dirfd, &sf) != 0) return 0;
  snprintf(out->mount, sizeof(out->mount), "%s", mnt->path);
  if (pages == 0) {
    /* statfs counts inodes only on a mount with size= too; the option says it always. */
    out->mount_limit = sf.f_files != 0 ? (uint64_t)sf.f_files : mount_option(mnt, "nr_inodes=");
    return 0;
  }
  /* Without size= (and min_size=) hugetlbfs reports no blocks at all. */
  if (sf.f_blocks == 0 || (uint64_t)sf.f_bfree >= pages) {
    out->mount[0] = '\0';
    return 0;
  }
  out->pages_needed = pages;
  out->pages_free = (uint64_t)sf.f_bfree;
  out->mount_limit = (uint64_t)sf.f_blocks;
  return 1;
#else
  (void)mnt, (void)pages, (void)out;
  return 0;
#endif
}

/* Huge pages of size H the pool can give now: free ones not promised to a mapping
 * (free_hugepages - resv_hugepages), and surplus ones nr_overcommit_hugepages still allows;
 * UINT64_MAX when it cannot be read. */
static uint64_t pool_avail(size_t H) {
  static const char *const f[4] = {"free_hugepages", "resv_hugepages", "nr_overcommit_hugepages",
                                   "surplus_hugepages"};
  unsigned long long v[4];
  int i;
  for (i = 0; i < 4; i++) {
    char path[160];
    FILE *fp;
    snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/%s",
             (unsigned long)(H >> 10), f[i]);
    v[i] = 0;
    if ((fp = bm__sys_fopen(path, "re")) == NULL) {
      if (i < 2) return UINT64_MAX;
      continue;
    }
    if (fscanf(fp, "%llu", &v[i]) != 1) v[i] = 0;
    fclose(fp);
  }
  return (v[0] > v[1] ? v[0] - v[1] : 0) + (v[2] > v[3] ? v[2] - v[3] : 0);
}

/* The room for a hugetlb section of `size` bytes (whole pages of H) on mnt (NULL: a memfd)
 * before anything is made: POSIX_NOT_HAD with the reason and its figures when the mount's
 * nr_inodes= or size= or the pool is short, else 0. */
static int huge_room(const posix_mount_t *mnt, size_t H, uint64_t size, bm_large_t *out) {
  uint64_t pages = size / H, avail;
#ifdef __linux__
  if (mnt != NULL) {
    struct statfs sf;
    /* nr_inodes= counts the root directory too: f_ffree 0 is no room for a new name. */
    if (bm__sys_fstatfs(mnt->dirfd, &sf) == 0 && sf.f_files != 0 && sf.f_ffree == 0) {
      bm__set_os_error(ENOSPC);
      snprintf(out->mount, sizeof(out->mount), "%s", mnt->path);
      out->mount_limit = (uint64_t)sf.f_files;
      return out->reason = BM_REASON_MOUNT_INODES, POSIX_NOT_HAD;
    }
    if (mount_figures(mnt, pages, out)) {
      bm__set_os_error(ENOSPC);
      return out->reason = BM_REASON_MOUNT_LIMIT, POSIX_NOT_HAD;
    }
  }
#endif
  avail = pool_avail(H);
  if (avail != UINT64_MAX && avail < pages) {
    bm__set_os_error(ENOMEM);
    out->pages_needed = pages;
    out->pages_free = avail;
    return out->reason = avail > 0 ? BM_REASON_POOL_TOO_SMALL : BM_REASON_POOL_EMPTY,
           POSIX_NOT_HAD;
  }
  return 0;
}

/* A hugetlbfs mount bulkmap may use without being told: its root owned by root or the
 * caller and writable by nobody else (what `bulkmap setup` mounts: root's, mode 1770 with
 * --group), or the one BULKMAP_HUGETLBFS names. */
static int mount_trusted(const posix_mount_t *m) {
  struct stat st, want;
  const char *env = getenv("BULKMAP_HUGETLBFS");
  if (bm__sys_fstat(m->dirfd, &st) != 0) return 0;
  if (env != NULL && env[0] != '\0' && stat(env, &want) == 0 && want.st_dev == st.st_dev &&
      want.st_ino == st.st_ino)
    return 1;
  if (st.st_uid != 0 && st.st_uid != geteuid()) return 0;
  return (st.st_mode & S_IWOTH) == 0;
}

/* Where a hugetlb section would go and its size: the mount (named: the one asked for, or
 * the default-size one; NULL for a memfd), the page size H, and the size in whole pages.
 * 0, POSIX_NOT_HAD with out->reason, or an error. */
static int huge_target(const posix_mounts_t *ms, const char *name, const bm_section_opts_t *opts,
                       const posix_mount_t **mntp, size_t *Hp, uint64_t *sizep,
                       bm_large_t *out) {
  const posix_mount_t *mnt = NULL;
  size_t H = opts->large_page_size;
  uint64_t size = opts->size;
  int i;

  /* BULKMAP_HUGETLBFS names the mount the user trusts for every call that names none: it
   * comes before any other trusted one (/dev/hugepages among them). */
  const char *named = opts->mount;
  if (named == NULL && name != NULL && getenv("BULKMAP_HUGETLBFS") != NULL && getenv("BULKMAP_HUGETLBFS")[0] != '\0')
    named = getenv("BULKMAP_HUGETLBFS");
  if (name != NULL && named != NULL) {
    /* The caller named the mount: that one or none (compared by device, so that any path
     * to the same mount does). */
    struct stat want, have;
    if (bm__sys_stat(named, &want) == 0)
      for (i = 0; i < ms->n && mnt == NULL; i++)
        if (bm__sys_fstat(ms->m[i].dirfd, &have) == 0 && have.st_dev == want.st_dev &&
            have.st_ino == want.st_ino)
          mnt = &ms->m[i];
    if (mnt == NULL || (H != 0 && mnt->page_size != H))
      return out->reason = BM_REASON_NO_MOUNT, POSIX_NOT_HAD;
    H = mnt->page_size;
  } else if (name != NULL) {
    /* Only a mount the user trusts (docs/datasets.md): never another user's
     * world-writable one, where its owner may take the pages or the mount away. */
    for (i = 0; i < ms->n && mnt == NULL; i++)
      if ((H != 0 ? ms->m[i].page_size == H : ms->m[i].page_size == ms->default_size) &&
          mount_trusted(&ms->m[i]))
        mnt = &ms->m[i];
    for (i = 0; i < ms->n && mnt == NULL && H == 0; i++)
      if (mount_trusted(&ms->m[i])) mnt = &ms->m[i];
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

  *mntp = mnt;
  *Hp = H;
  *sizep = size;
  return 0;
}

/* The hugetlb attempt: a file NAME on the mount of page size `want` (0: the default
 * size, else any mount), or an anonymous memfd(MFD_HUGETLB). The pages are allocated
 * now (fallocate), so a pool that runs dry is an error here and never a SIGBUS later. */
static int try_hugetlb(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                       const bm_section_opts_t *opts, unsigned mode, bm_large_t *out) {
#ifdef __linux__
  const posix_mount_t *mnt = NULL;
  size_t H = 0, probe_len;
  uint64_t size = 0;
  bm__smaps_t sm;
  int fd, r, e, transparent;

  if ((r = huge_target(ms, name, opts, &mnt, &H, &size, out)) != 0) return r;

  /* What is short is known before anything is made: the mount's limits, the pool. */
  if ((r = huge_room(mnt, H, size, out)) != 0) return r;

  if (IS_ANON(name)) {
    fd = bm__posix_anon_open(mnt->dirfd, 0600, src->gen_name, sizeof(src->gen_name));
    if (fd < 0) {
      e = bm_last_os_error();
      if (fd == BM_ENOSPC || e == ENOSPC) {
        mount_figures(mnt, 0, out);
        return out->reason = BM_REASON_MOUNT_INODES, POSIX_NOT_HAD;
      }
      if (huge_reason(e) == 0) return fd;
      return out->reason = huge_reason(e), POSIX_NOT_HAD;
    }
    if ((r = anon_mode(fd, opts, mode)) != 0) goto hard;
    src->place_fd = fcntl(mnt->dirfd, F_DUPFD_CLOEXEC, 0);
    snprintf(src->path, sizeof(src->path), "%s", mnt->path);
  } else if (name != NULL) {
    int at = (int)(mnt - ms->m);
    if ((r = precheck(ms, at, name)) != 0) return r;
    /* O_NOFOLLOW and a bare name resolved in the mount's directory: never a path
     * outside the mount, even if someone plants a symlink there. Mode 0: tentative (see
     * claim). */
    fd = bm__sys_openat(mnt->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
      e = errno;
      if (e == ENOSPC) {
        /* hugetlbfs says ENOSPC for a new inode only when nr_inodes= has none left. */
        bm__set_os_error(e);
        mount_figures(mnt, 0, out);
        return out->reason = BM_REASON_MOUNT_INODES, POSIX_NOT_HAD;
      }
      if (e == EEXIST || huge_reason(e) == 0) return bm__posix_error(e);
      bm__set_os_error(e);
      return out->reason = huge_reason(e), POSIX_NOT_HAD;
    }
    if ((r = claim(src, fd, ms, at, name, opts, mode)) != 0) goto hard;
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

  if (IS_ANON(name)) {
    /* Exactly the source's size: fallocate sets it (ftruncate takes only whole pages), and
     * the probe maps read-only (a writable mapping would grow the file to whole pages). */
    size = opts->size;
    while (size > 0 && bm__sys_fallocate(fd, 0, 0, (off_t)size) != 0) {
      e = errno;
      if (e == EINTR) continue;
      if (huge_reason(e) != 0 || e == EOPNOTSUPP || e == ENOSYS) goto not_had;
      r = bm__posix_error(e);
      goto hard;
    }
    if (size > 0 && (r = probe(fd, H, H, 0, 0, &sm)) != 0) {
      e = bm_last_os_error();
      if (huge_reason(e) != 0) goto not_had_e;
      goto hard;
    }
    if (size == 0) sm.kernel_page_size = H;
    goto probed;
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
probed:
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
  if (IS_ANON(name)) {
    anon_close(mnt->dirfd, src, fd);
  } else if (name != NULL && src->ino != 0) {
    unmake(ms, (int)(mnt - ms->m), name, src, fd);
  } else {
    close(fd);
    src->writer = 0;
    if (name != NULL) bm__sys_unlinkat(mnt->dirfd, name, 0);
  }
  if (r == POSIX_NOT_HAD && out->reason == BM_REASON_POOL_EMPTY) {
    /* Say what is short, counted after the pages this attempt held went back: the kernel
     * says ENOSPC or ENOMEM alike for the mount's size= and for the pool. */
    out->pages_needed = size / H;
    if (name != NULL && mount_figures(mnt, size / H, out)) {
      out->reason = BM_REASON_MOUNT_LIMIT;
    } else {
      out->pages_free = pool_free(H);
      if (out->pages_free > 0) out->reason = BM_REASON_POOL_TOO_SMALL;
    }
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

  if (size == 0 && !(IS_ANON(name) && opts->size == 0)) return BM_EOVERFLOW;
  {
    /* Before anything is made: a section larger than /dev/shm or the memory cgroup allows
     * would die midway (a SIGBUS on a full tmpfs, the cgroup's OOM killer). */
    bm_preflight_t local, *pf = opts->preflight != NULL ? opts->preflight : &local;
    if ((r = bm__posix_room(name != NULL, size, pf)) != 0) return r;
  }
  if ((r = make_shm(src, ms, name, opts, mode, &fd, src->path, sizeof(src->path))) != 0)
    return r;
  /* A dataset's bytes are exactly the source's: no rounding. */
  if (IS_ANON(name)) size = opts->size;
  if ((r = set_size(fd, size)) != 0) goto fail;
  want_thp = want_thp && size >= pmd && is_pow2(pmd) && thp_allowed(name != NULL);
  if (size == 0) {
    memset(&sm, 0, sizeof(sm));
    r = 0;
  } else if (want_thp) {
    r = probe(fd, pmd, pmd, 1, 1, &sm);
  } else {
    r = probe(fd, base, base, 1, 0, &sm);
  }
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
  unmake_shm(ms, name, src, fd);
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
  if (o.size % pmd != 0 && !IS_ANON(name)) {
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
  unmake_shm(ms, name, src, src->fd);
  src->fd = -1;
  return POSIX_NOT_HAD;
}

static int section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome);

int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome) {
  int r;
  /* Exclusive across places with no lock (see claim): of two racing creators (one for
   * huge pages, one not) exactly one wins. */
  r = section_create(src, name, opts, outcome);
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

int bm__os_preflight(const bm_section_opts_t *opts, bm_preflight_t *out) {
  size_t base = bm__os_config()->page_size;
  posix_mounts_t ms;
  int r;
  memset(out, 0, sizeof(*out));
  out->large.requested = opts->large;
  out->large.page_size = base;
  out->large.reason = opts->large == BM_LARGE_OFF ? BM_REASON_NOT_REQUESTED : BM_REASON_NONE;
  mounts_open(&ms);
  if (opts->large != BM_LARGE_OFF && !opts->transparent) {
    const posix_mount_t *mnt = NULL;
    size_t H = 0;
    uint64_t size = 0;
    r = huge_target(&ms, "", opts, &mnt, &H, &size, &out->large);
    if (r == 0) r = huge_room(mnt, H, size, &out->large);
    if (r == 0) {
      /* Hugetlb pages are not charged to the memory cgroup; the pool and mount are it. */
      out->needed = size;
      out->large.page_size = H;
      out->shm_free = out->shm_total = out->cgroup_free = out->cgroup_limit = UINT64_MAX;
      mounts_close(&ms);
      return 0;
    }
    if (r < 0 || opts->large == BM_LARGE_ON) {
      mounts_close(&ms);
      if (r < 0) return r;
      return out->large.reason == BM_REASON_SIZE_NOT_MULTIPLE ? BM_EALIGN : BM_ENOLARGE;
    }
  }
  mounts_close(&ms);
  {
    uint64_t size = bm__align_up(opts->size, base);
    if (size == 0) return BM_EOVERFLOW;
    return bm__posix_room(1, size, out);
  }
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
  int where = -1, r, tries;

  mounts_open(&ms);
  /* A replace removes the old generation after the new one has the name (in its place): an
   * object gone between the look and the open is looked for again. */
  for (tries = 0;; tries++) {
    if ((r = locate(&ms, name, &where)) != 0) goto out;
    if ((r = open_place(&ms, where, name, access, src)) == 0) break;
    if (r != BM_ENOENT || tries == 8) goto out;
  }
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

/* 1 when NAME in place `where` is the object src refers to (device and inode). */
static int is_object(const posix_mounts_t *ms, int where, const char *name,
                     const bm_source_t *src) {
  struct stat st;
  return place_stat(ms, where, name, &st) == 0 && (uint64_t)st.st_dev == src->dev &&
         (uint64_t)st.st_ino == src->ino;
}

int bm__os_section_remove_name(const char *name, int force) {
  posix_mounts_t ms;
  int where = -1, r, tries;
  /* A dataset (its metadata beside its bytes) goes whole: names, keep links, metadata. */
  r = bm__store_remove_name(name, force);
  if (r != BM_ENOENT) return r;
  mounts_open(&ms);
  /* The name can change between the judging and the removing: what is removed is always
   * what was judged (remove_identity), and a name swapped meanwhile is judged again. */
  for (tries = 0; tries < 8; tries++) {
    struct stat st;
    if ((r = locate(&ms, name, &where)) != 0) break;
    if (place_stat(&ms, where, name, &st) != 0) {
      r = bm__posix_error(errno);
      if (r == BM_ENOENT) continue;
      break;
    }
    if (S_ISREG(st.st_mode) && !force) {
      /* A dataset whose writer still holds its lock is being loaded: not removed unless
       * forced (the loader would fail at its end anyway). One we may not open we may still
       * be allowed to remove: the directory decides. */
      bm_source_t probe;
      memset(&probe, 0, sizeof(probe));
      probe.fd = -1;
      if (open_place(&ms, where, name, BM_ACCESS_READ, &probe) == 0) {
        int same = probe.dev == (uint64_t)st.st_dev && probe.ino == (uint64_t)st.st_ino;
        int held = same ? writer_held(probe.fd) : 0;
        close(probe.fd);
        if (!same) continue; /* another object by now: judge that one */
        if (held < 0) {
          r = held;
          break;
        }
        if (held == 1) {
          bm__set_os_error(EWOULDBLOCK);
          r = BM_EBUSY;
          break;
        }
      }
    }
    r = remove_identity(&ms, where, name, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (r != BM_EREPLACED && r != BM_ENOENT) break;
  }
  if (tries == 8) {
    /* Swapped under every look: someone keeps replacing it. */
    bm__set_os_error(0);
    r = BM_EBUSY;
  }
  mounts_close(&ms);
  return r;
}

int bm__os_section_remove_own(bm_source_t *src, const char *name) {
  posix_mounts_t ms;
  int q, r = BM_ENOENT;
  if (src == NULL || src->ino == 0) return BM_EINVAL;
  /* A replace's generation not yet made NAME is removed under its hidden name. */
  if (src->gen_name[0] != '\0') name = src->gen_name;
  mounts_open(&ms);
  for (q = -1; q < ms.n && r != 0; q++) {
    struct stat st;
    if (place_stat(&ms, q, name, &st) != 0) continue;
    if (is_object(&ms, q, name, src)) r = remove_identity(&ms, q, name, src->dev, src->ino);
    else if (r == BM_ENOENT) r = BM_EREPLACED;
  }
  if (r == BM_EREPLACED || r == BM_ENOENT) bm__set_os_error(0);
  mounts_close(&ms);
  return r;
}

int bm__os_writer_alive(bm_source_t *src) {
  if (src->writer) return 1; /* this very handle holds it */
  return writer_held(src->fd);
}

void bm__os_writer_release(bm_source_t *src) {
  /* Touching the times is an inotify IN_ATTRIB event in the place's directory: what a
   * waiter (bm_dataset_wait_open) wakes on, since the trailer's state is written through a
   * mapping, which no event reports. */
  if (src->writer && src->fd >= 0) futimens(src->fd, NULL);
  if (src->writer && src->fd >= 0) writer_lock(src->fd, F_UNLCK);
  src->writer = 0;
}

/* ---- Listing. */

typedef struct {
  int (*fn)(void *arg, const bm__os_entry_t *e);
  void *arg;
  const char *only;
  int hidden;                /* also a replace's hidden generations (reclaim) */
  const posix_mounts_t *ms;  /* the place being listed, for reclaim's removals */
  int where;
  struct posix_maps_s *maps; /* who maps what, or NULL */
  int (*judge)(void *arg, const bm__os_entry_t *e);
  void (*done)(void *arg, const bm__os_entry_t *e, int err);
  void *judge_arg;
} list_ctx_t;

/* ---- Who maps what: /proc/PID/maps of every process read once a listing, keeping the
 * mappings of objects on the places' file systems (device and inode, as maps prints them),
 * one entry a process and object. A process whose maps cannot be read (another user's,
 * unless root) is noted: a section others may read could be mapped by it. */
typedef struct {
  unsigned maj, min;
  uint64_t ino;
} posix_map_t;

/* A mapping of a file that is deleted (a dataset's generation retired by a replace or a
 * remove, kept alive by the processes that still map it). */
typedef struct {
  uint64_t dev, ino, extent;
  char name[BM_NAME_MAX + 48];
} posix_gone_t;

typedef struct posix_maps_s {
  posix_map_t *v;
  size_t n, cap;
  posix_gone_t *gone;
  size_t ngone, capgone;
  int ok;           /* /proc could be read */
  int hidden_other; /* some other user's process could not be inspected */
} posix_maps_t;

static int maps_add(posix_maps_t *m, unsigned maj, unsigned min, uint64_t ino, size_t from) {
  size_t i;
  for (i = from; i < m->n; i++)
    if (m->v[i].maj == maj && m->v[i].min == min && m->v[i].ino == ino) return 0;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    posix_map_t *v = realloc(m->v, cap * sizeof(*v));
    if (v == NULL) return -1;
    m->v = v, m->cap = cap;
  }
  m->v[m->n].maj = maj, m->v[m->n].min = min, m->v[m->n].ino = ino;
  m->n++;
  return 0;
}

static void maps_scan(const posix_mounts_t *ms, posix_maps_t *m) {
  DIR *d;
  struct dirent *de;
  uid_t me = geteuid();
  memset(m, 0, sizeof(*m));
  if ((d = opendir("/proc")) == NULL) return;
  m->ok = 1;
  while ((de = readdir(d)) != NULL) {
    char path[300], line[1024];
    size_t from = m->n;
    FILE *f;
    if (de->d_name[0] < '1' || de->d_name[0] > '9' || strspn(de->d_name, "0123456789") != strlen(de->d_name))
      continue;
    snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
    if ((f = fopen(path, "re")) == NULL) {
      struct stat st;
      snprintf(path, sizeof(path), "/proc/%s", de->d_name);
      if (errno != ENOENT && me != 0 && stat(path, &st) == 0 && st.st_uid != me) m->hidden_other = 1;
      continue;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
      unsigned maj, min;
      unsigned long long ino, lo, hi, off;
      int i, keep, at = 0;
      if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu %n", &lo, &hi, &off, &maj, &min, &ino, &at) != 6 || ino == 0)
        continue;
      keep = ms->shm_dev != 0 && maj == major((dev_t)ms->shm_dev) && min == minor((dev_t)ms->shm_dev);
      for (i = 0; i < ms->n && !keep; i++)
        keep = maj == major((dev_t)ms->m[i].dev) && min == minor((dev_t)ms->m[i].dev);
      if (keep && maps_add(m, maj, min, (uint64_t)ino, from) != 0) m->ok = 0;
      if (keep && at > 0) {
        /* "PATH (deleted)": a retired generation still mapped here. */
        char *mp = line + at, *slash, *del;
        mp[strcspn(mp, "\n")] = '\0';
        del = strstr(mp, " (deleted)");
        slash = strrchr(mp, '/');
        if (del != NULL && del[10] == '\0' && slash != NULL && slash < del) {
          posix_gone_t *g;
          size_t k;
          *del = '\0';
          for (k = 0; k < m->ngone; k++)
            if (m->gone[k].ino == ino && m->gone[k].dev == (uint64_t)makedev(maj, min)) break;
          if (k == m->ngone) {
            if (m->ngone == m->capgone) {
              size_t cap = m->capgone ? m->capgone * 2 : 16;
              posix_gone_t *v = realloc(m->gone, cap * sizeof(*v));
              if (v == NULL) continue;
              m->gone = v, m->capgone = cap;
            }
            g = &m->gone[m->ngone++];
            memset(g, 0, sizeof(*g));
            g->dev = (uint64_t)makedev(maj, min);
            g->ino = ino;
            snprintf(g->name, sizeof(g->name), "%s", slash + 1);
          }
          g = &m->gone[k];
          if (off + (hi - lo) > g->extent) g->extent = off + (hi - lo);
        }
      }
    }
    fclose(f);
  }
  closedir(d);
}

static int64_t maps_count(const posix_maps_t *m, const struct stat *st) {
  size_t i;
  int64_t k = 0;
  if (m == NULL || !m->ok) return -1;
  if ((st->st_mode & 0044) != 0 && m->hidden_other) return -1;
  for (i = 0; i < m->n; i++)
    k += m->v[i].maj == major(st->st_dev) && m->v[i].min == minor(st->st_dev) &&
         m->v[i].ino == (uint64_t)st->st_ino;
  return k;
}

#define GEN_PREFIX "bulkmap#gen#"

static const char *entry_type(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "device";
}

static int list_dir(const posix_mounts_t *ms, int where, int dirfd, const char *place,
                    size_t page, list_ctx_t *c) {
  DIR *d;
  struct dirent *de;
  int dfd, r = 0;
  c->ms = ms;
  c->where = where;
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
    memset(&e, 0, sizeof(e));
    e.hidden = c->hidden && strncmp(de->d_name, GEN_PREFIX, strlen(GEN_PREFIX)) == 0;
    if (!e.hidden && bm_name_check(de->d_name) != 0) continue; /* no name a section can have */
    if (!e.hidden && bm__store_exists(de->d_name)) continue; /* a dataset's: listed with it */
    if (bm__sys_fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    e.maps = maps_count(c->maps, &st);
    e.name = de->d_name;
    e.place = place;
    e.type = entry_type(st.st_mode);
    e.size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
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
    /* Anything but a regular file (planted under a name: it blocks the name all the same)
     * is listed as it is, never opened or followed. */
    e.open_error = S_ISREG(st.st_mode) ? open_place(ms, where, de->d_name, BM_ACCESS_READ, src)
                                       : BM_ENOTREG;
    if (e.open_error == 0) e.size = src->size;
    e.src = e.open_error == 0 ? src : NULL;
    r = c->fn(c->arg, &e);
    bm_source_close(src);
  }
  closedir(d);
  return r;
}

static int list_places(const posix_mounts_t *ms, list_ctx_t *c);

int bm__os_section_list(const char *name, int (*fn)(void *arg, const bm__os_entry_t *e),
                        void *arg) {
  posix_mounts_t ms;
  posix_maps_t maps;
  list_ctx_t c;
  int r;
  memset(&c, 0, sizeof(c));
  c.fn = fn;
  c.arg = arg;
  c.only = name;
  mounts_open(&ms);
  maps_scan(&ms, &maps);
  c.maps = &maps;
  r = list_places(&ms, &c);
  free(maps.v);
  free(maps.gone);
  mounts_close(&ms);
  return r;
}

static int list_places(const posix_mounts_t *ms, list_ctx_t *c) {
  int i, r = 0, shm;
  shm = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (shm >= 0) {
    r = list_dir(ms, -1, shm, SHM_DIR, 0, c);
    close(shm);
  }
  for (i = 0; i < ms->n && r == 0; i++)
    r = list_dir(ms, i, ms->m[i].dirfd, ms->m[i].path, ms->m[i].page_size, c);
  return r;
}

/* ---- Reclaim: every entry the caller may remove, judged by the portable code, removed by
 * identity (what was judged). */
static int reclaim_one(void *arg, const bm__os_entry_t *e) {
  list_ctx_t *c = arg;
  uid_t me = geteuid();
  int err;
  if (e->src == NULL || (e->uid != (uint32_t)me && me != 0)) return 0;
  if (c->judge(c->judge_arg, e) != 1) return 0;
  err = remove_identity(c->ms, c->where, e->name, e->src->dev, e->src->ino);
  c->done(c->judge_arg, e, err);
  return 0;
}

int bm__os_section_reclaim(int (*judge)(void *arg, const bm__os_entry_t *e),
                           void (*done)(void *arg, const bm__os_entry_t *e, int err), void *arg) {
  posix_mounts_t ms;
  list_ctx_t c;
  int r;
  memset(&c, 0, sizeof(c));
  c.fn = reclaim_one;
  c.arg = &c;
  c.hidden = 1;
  c.judge = judge;
  c.done = done;
  c.judge_arg = arg;
  mounts_open(&ms);
  r = list_places(&ms, &c);
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

/* ---- Replace (docs/design.md section 7). The new generation is made as NAME would be, under a
 * hidden name no dataset can have ('#' is no name character: never listed, opened or
 * taken by a creator), filled and published there, and then made NAME by commit. */

/* The caller may replace what it found: its own object, or any as root. */
static int may_replace(const struct stat *st) {
  uid_t me = geteuid();
  return me == 0 || st->st_uid == me;
}

int bm__os_section_create_hidden(bm_source_t *src, const char *name,
                                 const bm_section_opts_t *opts, bm_large_t *outcome) {
  static unsigned long serial;
  posix_mounts_t ms;
  struct stat st;
  int where = -1, r;

  /* Refused before anything is made: another user's dataset is not ours to replace. */
  mounts_open(&ms);
  r = locate(&ms, name, &where);
  if (r == 0 && place_stat(&ms, where, name, &st) == 0) {
    if (!may_replace(&st)) r = (bm__set_os_error(EPERM), BM_EPERM);
    else if (!S_ISREG(st.st_mode)) r = (bm__set_os_error(EEXIST), BM_EEXIST); /* planted */
  } else if (r == BM_ENOENT) {
    r = 0;
  }
  mounts_close(&ms);
  if (r != 0) return r;
  snprintf(src->gen_name, sizeof(src->gen_name), GEN_PREFIX "%s#%ld#%lu", name, (long)getpid(),
           __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
  r = section_create(src, src->gen_name, opts, outcome);
  if (r != 0) src->gen_name[0] = '\0';
  return r;
}

/* Swaps the new generation (gen) with NAME in place p, where the old one (*old) is; the
 * old one, now under gen, is checked and unlinked. */
static int commit_swap(const posix_mounts_t *ms, int p, const char *gen, const char *name) {
  char nbuf[BM_PATH_MAX], gbuf[BM_PATH_MAX];
  int dfd, gfd;
  const char *at = place_at(ms, p, name, &dfd, nbuf, sizeof(nbuf));
  const char *g = place_at(ms, p, gen, &gfd, gbuf, sizeof(gbuf));
  struct stat st;
#ifdef SYS_renameat2
  if (syscall(SYS_renameat2, gfd, g, dfd, at, 2 /* RENAME_EXCHANGE */) == 0) {
    /* NAME is the new one. What came back is what NAME was at the exchange: one we may
     * replace (it may have been replaced meanwhile by another of ours), else put back. */
    if (bm__sys_fstatat(gfd, g, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (!may_replace(&st) || !S_ISREG(st.st_mode))) {
      syscall(SYS_renameat2, gfd, g, dfd, at, 2);
      return bm__set_os_error(EPERM), BM_EPERM;
    }
    bm__sys_unlinkat(gfd, g, 0);
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) return bm__posix_error(errno);
#endif
  /* No RENAME_EXCHANGE (a file system or kernel without it): rename(2) over NAME is just
   * as atomic for openers; the old one is unlinked by it. */
  if (renameat(gfd, g, dfd, at) != 0) return bm__posix_error(errno);
  return 0;
}

int bm__os_section_commit(bm_source_t *src, const char *name) {
  posix_mounts_t ms;
  char nbuf[BM_PATH_MAX], gbuf[BM_PATH_MAX];
  const char *at, *g;
  struct stat old;
  int p = -2, q, i, r, dfd, gfd, ofd = -1;

  if (src->gen_name[0] == '\0') return 0;
  mounts_open(&ms);
  for (i = -1; i < ms.n && p == -2; i++)
    if (is_object(&ms, i, src->gen_name, src)) p = i;
  if (p == -2) {
    r = (bm__set_os_error(0), BM_EREPLACED); /* our hidden generation is gone */
    goto out;
  }
  r = locate(&ms, name, &q);
  if (r == BM_ENOENT) q = -2, r = 0;
  if (r != 0) goto out;
  if (q != -2) {
    if (place_stat(&ms, q, name, &old) != 0) {
      r = bm__posix_error(errno);
      goto out;
    }
    if (!may_replace(&old)) {
      r = (bm__set_os_error(EPERM), BM_EPERM);
      goto out;
    }
    if (!S_ISREG(old.st_mode)) {
      r = (bm__set_os_error(EEXIST), BM_EEXIST);
      goto out;
    }
  }
  at = place_at(&ms, p, name, &dfd, nbuf, sizeof(nbuf));
  g = place_at(&ms, p, src->gen_name, &gfd, gbuf, sizeof(gbuf));
  if (q == p) {
    r = commit_swap(&ms, p, src->gen_name, name);
  } else if (q == -2) {
    /* A new name: made exclusively, and given back when a creator made it elsewhere
     * meanwhile (as a creator's postcheck would step back). */
    if (rename_noreplace(gfd, g, at) != 0) {
      r = errno == EINVAL || errno == ENOSYS ? (renameat(gfd, g, dfd, at) == 0 ? 0 : bm__posix_error(errno))
                                             : bm__posix_error(errno);
      if (r != 0) goto out;
    }
    for (i = -1; i < ms.n; i++)
      if (i != p && look(&ms, i, name) != LOOK_NONE) {
        rename_noreplace(dfd, at, g);
        r = (bm__set_os_error(EEXIST), BM_EEXIST);
        goto out;
      }
  } else {
    /* Across places there is no atomic rename: the old one is marked superseded, the new
     * one made NAME in its place (openers that see both take it: locate), then the old one
     * removed (openers that lost it look again: bm__os_section_open). */
    char obuf[BM_PATH_MAX];
    int odfd;
    const char *o = place_at(&ms, q, name, &odfd, obuf, sizeof(obuf));
    struct stat st;
    ofd = bm__sys_openat(odfd, o, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (ofd < 0 || bm__sys_fstat(ofd, &st) != 0 || st.st_dev != old.st_dev || st.st_ino != old.st_ino) {
      r = (bm__set_os_error(ofd < 0 ? errno : 0), BM_EBUSY); /* changed under us: try again */
      goto out;
    }
    if (bm__sys_fchmod(ofd, (old.st_mode & 07777) | S_ISVTX) != 0) {
      r = bm__posix_error(errno);
      goto out;
    }
    if (rename_noreplace(gfd, g, at) != 0) {
      r = bm__posix_error(errno);
      bm__sys_fchmod(ofd, old.st_mode & 07777); /* as it was */
      goto out;
    }
    /* Not removed (taken away by someone else meanwhile): the marked one is passed over. */
    (void)remove_identity(&ms, q, name, (uint64_t)old.st_dev, (uint64_t)old.st_ino);
    r = 0;
  }
  if (r == 0) {
    if (p >= 0) path_join(src->path, sizeof(src->path), ms.m[p].path, name);
    else snprintf(src->path, sizeof(src->path), SHM_DIR "/%s", name);
    src->gen_name[0] = '\0';
  }
out:
  if (ofd >= 0) close(ofd);
  mounts_close(&ms);
  return r;
}

/* ---- What src/posix/store.c uses of this file. */

int bm__posix_writer_lock(int fd, int type) { return writer_lock(fd, (short)type); }
int bm__posix_writer_held(int fd) { return writer_held(fd); }
int bm__posix_resolve_group(const char *group, unsigned *gid) {
  gid_t g;
  int r = resolve_group(group, &g);
  if (r == 0) *gid = (unsigned)g;
  return r;
}

int bm__posix_data_create(bm_source_t *src, const bm_section_opts_t *opts, bm_large_t *out,
                          int *place_fd, char *place, size_t n) {
  posix_mounts_t ms;
  struct stat st;
  int r;
  r = section_create(src, posix_anon, opts, out);
  if (r != 0) return r;
  /* src->path is the place's directory (set by make_shm / try_hugetlb). */
  snprintf(place, n, "%s", src->path);
  (void)ms;
  if (bm__sys_fstat(src->fd, &st) != 0) {
    r = bm__posix_error(errno);
    goto undo;
  }
  src->dev = (uint64_t)st.st_dev;
  src->ino = (uint64_t)st.st_ino;
  src->size = opts->size;
  *place_fd = src->place_fd; /* the directory the bytes were made in */
  src->place_fd = -1;
  if (*place_fd < 0 && (*place_fd = bm__sys_open(place, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    r = bm__posix_error(errno);
    goto undo;
  }
  return 0;
undo:
  if (src->gen_name[0] != '\0') {
    int d = src->place_fd >= 0 ? src->place_fd : open(place, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) bm__sys_unlinkat(d, src->gen_name, 0);
    if (d >= 0 && d != src->place_fd) close(d);
  }
  if (src->place_fd >= 0) close(src->place_fd);
  src->place_fd = -1;
  close(src->fd);
  src->fd = -1;
  return r;
}

/* Who maps what, for the listing of datasets: one scan of /proc a listing. */
static __thread posix_maps_t *posix_maps_now;
static __thread posix_mounts_t *posix_maps_ms;

void bm__posix_maps_begin(void) {
  posix_maps_t *m = calloc(1, sizeof(*m));
  posix_mounts_t *ms = calloc(1, sizeof(*ms));
  if (m == NULL || ms == NULL) {
    free(m), free(ms);
    return;
  }
  mounts_open(ms);
  maps_scan(ms, m);
  posix_maps_now = m;
  posix_maps_ms = ms;
}

int64_t bm__posix_maps_count(uint64_t dev, uint64_t ino, unsigned mode, unsigned uid) {
  struct stat st;
  if (posix_maps_now == NULL) return -1;
  /* Another user's dataset, whose processes could not all be looked at: not seen. */
  if (geteuid() != 0 && uid != (unsigned)geteuid() && posix_maps_now->hidden_other) return -1;
  memset(&st, 0, sizeof(st));
  st.st_dev = (dev_t)dev;
  st.st_ino = (ino_t)ino;
  st.st_mode = (mode_t)mode;
  return maps_count(posix_maps_now, &st);
}

uint64_t bm__posix_retired_bytes(const char *name, uint64_t dev, uint64_t cur_ino) {
  char keep[BM_NAME_MAX + 16];
  uint64_t sum = 0;
  size_t k, kl;
  if (posix_maps_now == NULL) return 0;
  kl = (size_t)snprintf(keep, sizeof(keep), "bulkmap#%s#", name);
  for (k = 0; k < posix_maps_now->ngone; k++) {
    const posix_gone_t *g = &posix_maps_now->gone[k];
    if (g->dev != dev || g->ino == cur_ino) continue;
    if (strcmp(g->name, name) == 0 || strncmp(g->name, keep, kl) == 0) sum += g->extent;
  }
  return sum;
}

void bm__posix_maps_end(void) {
  if (posix_maps_now != NULL) free(posix_maps_now->v), free(posix_maps_now->gone);
  free(posix_maps_now);
  if (posix_maps_ms != NULL) mounts_close(posix_maps_ms);
  free(posix_maps_ms);
  posix_maps_now = NULL;
  posix_maps_ms = NULL;
}
