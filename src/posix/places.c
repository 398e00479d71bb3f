/* POSIX backend: the places a named section can live in (/dev/shm and every hugetlbfs
 * mount), opened once a call so that names resolve inside them; where a name is, its
 * exclusive creation across places with no lock, and removing exactly the object judged. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/statfs.h>
#endif
#include "../os.h"
#include "posix.h"
#include "section.h"

#ifdef __linux__
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#endif

void bm__posix_mounts_close(posix_mounts_t *ms) {
  int i;
  for (i = 0; i < ms->n; i++) close(ms->m[i].dirfd);
  free(ms->m);
  ms->m = NULL;
  ms->n = 0;
  free(ms->sizes);
  ms->sizes = NULL;
  ms->n_sizes = 0;
  if (ms->shm_fd >= 0) close(ms->shm_fd);
  ms->shm_fd = -1;
}

/* Opens every hugetlbfs mount /proc/mounts lists, keeping one per filesystem (a bind
 * mount of the same one would otherwise make every name on it look ambiguous). */
void bm__posix_mounts_open(posix_mounts_t *ms) {
  bm_sysinfo_t info;
  bm_mount_t *mv = NULL;
  size_t i, nm = 0;
  int k, fd, r;

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
  /* Every size, however many (out of memory: none is known to be offered, so a section
   * on them is refused). */
  if (bm__posix_large_sizes(&ms->sizes, &ms->n_sizes) != 0) ms->n_sizes = 0;
  /* Every mount, however many: a name on any of them is seen by every walker. */
  if ((r = bm__posix_hugetlbfs_mounts(&mv, &nm)) == 0 && nm > 0 &&
      (ms->m = malloc(nm * sizeof(*ms->m))) == NULL)
    r = BM_ENOMEM;
  if (r != 0) {
    ms->err = ENOMEM; /* a name not found could be on a mount not looked at */
    free(mv);
    return;
  }
  for (i = 0; i < nm; i++) {
    struct stat st;
    int dup = 0;
    fd = bm__sys_open(mv[i].path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
    ms->m[ms->n].page_size = mv[i].page_size;
#endif
    if (bm__sys_fstat(fd, &st) != 0) {
      if (ms->err == 0) ms->err = errno;
      close(fd);
      continue;
    }
    for (k = 0; k < ms->n; k++) dup |= ms->m[k].dev == (uint64_t)st.st_dev;
    if (dup) {
      close(fd);
      continue;
    }
    ms->m[ms->n].dirfd = fd;
    ms->m[ms->n].dev = (uint64_t)st.st_dev;
    snprintf(ms->m[ms->n].path, sizeof(ms->m[0].path), "%s", mv[i].path);
    ms->n++;
  }
  free(mv);
}

/* Where NAME lives: -1 in /dev/shm, k on mount k. When several places have it and exactly
 * one of them is the caller's own, that one: another user's object never locks you out of
 * your own. A replace across places (bm__os_section_commit) marks the old generation
 * superseded (its sticky bit: meaningless on a regular file, and only its owner or root can
 * set it) before it makes the new one NAME in the other place, then removes the old: an
 * object marked so is passed over when another of the same owner is not marked.
 * BM_ENOENT, BM_EAMBIGUOUS, or an error. */
int bm__posix_locate(const posix_mounts_t *ms, const char *name, int *where) {
  struct posix_seen_s {
    int at, marked, gone;
    uid_t uid;
  } *c = malloc(((size_t)ms->n + 1) * sizeof(*c));
  int i, k, n = 0, left = 0, mine = 0, mine_at = -2;
  uid_t me = geteuid();
  if (c == NULL) return bm__set_os_error(ENOMEM), BM_ENOMEM;
  for (i = -1; i < ms->n; i++) {
    struct stat st;
    if (bm__posix_place_stat(ms, i, name, &st) != 0) {
      int e = errno;
      if (e == ENOENT || e == ENOTDIR) continue;
      free(c);
      return bm__posix_error(e);
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
  free(c);
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
const char *bm__posix_place_at(const posix_mounts_t *ms, int where, const char *name, int *dfd,
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

int bm__posix_place_stat(const posix_mounts_t *ms, int where, const char *name, struct stat *st) {
  char buf[BM_PATH_MAX];
  int dfd;
  const char *at = bm__posix_place_at(ms, where, name, &dfd, buf, sizeof(buf));
  return bm__sys_fstatat(dfd, at, st, AT_SYMLINK_NOFOLLOW);
}

/* The file system a place is on: creators of one name in two places defer to the lower. */
static uint64_t place_rank(const posix_mounts_t *ms, int where) {
  return where >= 0 ? ms->m[where].dev : ms->shm_dev;
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

int bm__posix_look(const posix_mounts_t *ms, int where, const char *name) {
  struct stat st;
  time_t now;
  if (bm__posix_place_stat(ms, where, name, &st) != 0)
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
    if ((r = bm__posix_look(ms, where, name)) != LOOK_TENTATIVE) return r;
    nanosleep(&ts, NULL);
  }
  return LOOK_THERE;
}

/* Before making NAME in place p: BM_EEXIST when another place has it. */
int bm__posix_precheck(const posix_mounts_t *ms, int p, const char *name) {
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
    if (place_rank(ms, q) < place_rank(ms, p)) r = bm__posix_look(ms, q, name);
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

int bm__posix_rename_noreplace(int dfd, const char *from, const char *to) {
#ifdef SYS_renameat2
  return (int)syscall(SYS_renameat2, dfd, from, dfd, to, RENAME_NOREPLACE);
#else
  errno = ENOSYS;
  return -1;
#endif
}

int bm__posix_remove_identity(const posix_mounts_t *ms, int where, const char *name, uint64_t dev,
                              uint64_t ino) {
  char nbuf[BM_PATH_MAX];
  const char *at;
  int dfd;
  /* Moved aside under 128 random bits (src/posix/store.c): a name nobody can plant first. */
  at = bm__posix_place_at(ms, where, name, &dfd, nbuf, sizeof(nbuf));
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
int bm__posix_claim(bm_source_t *src, int fd, const posix_mounts_t *ms, int where,
                    const char *name, const bm_section_opts_t *opts, unsigned mode) {
  struct stat st;
  int r;
  /* Made with no permission bits: nobody else has it open, so this cannot be refused. */
  if ((r = bm__posix_writer_lock(fd, F_WRLCK)) != 0) return r;
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
void bm__posix_unmake(const posix_mounts_t *ms, int where, const char *name, bm_source_t *src,
                      int fd) {
  if (fd >= 0) close(fd);
  if (name != NULL && src->ino != 0) bm__posix_remove_identity(ms, where, name, src->dev, src->ino);
  src->dev = src->ino = 0;
  src->writer = 0;
}

/* An anonymous data file's group and exact mode (the umask must not change them). */
int bm__posix_anon_mode(int fd, const bm_section_opts_t *opts, unsigned mode) {
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
void bm__posix_anon_close(int dfd, bm_source_t *src, int fd) {
  if (fd >= 0) close(fd);
  if (src->place_fd >= 0) close(src->place_fd);
  src->place_fd = -1;
  if (src->gen_name[0] != '\0' && dfd >= 0) bm__sys_unlinkat(dfd, src->gen_name, 0);
  src->gen_name[0] = '\0';
}

/* 1 when NAME in place `where` is the object src refers to (device and inode). */
int bm__posix_is_object(const posix_mounts_t *ms, int where, const char *name,
                        const bm_source_t *src) {
  struct stat st;
  return bm__posix_place_stat(ms, where, name, &st) == 0 && (uint64_t)st.st_dev == src->dev &&
                              (uint64_t)st.st_ino == src->ino;
}

/* dir/name into buf; the path is for people to read (names resolve through the mount's
 * directory descriptor), so one too long to keep is shortened to the name alone. */
void bm__posix_path_join(char *buf, size_t n, const char *dir, const char *name) {
  int k = snprintf(buf, n, "%s/%s", dir, name);
  if (k < 0 || (size_t)k >= n) snprintf(buf, n, "%s", name);
}

int bm__posix_resolve_group(const char *group, unsigned *gid) {
  gid_t g;
  int r = resolve_group(group, &g);
  if (r == 0) *gid = (unsigned)g;
  return r;
}

