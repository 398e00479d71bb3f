/* POSIX backend: large pages from the hugetlbfs pools: which mount a section goes to (a
 * trusted one, or the one named), the room its limits and the pool leave, and the section
 * made there (a file on the mount, or a memfd(MFD_HUGETLB)) with its pages allocated now. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/statfs.h>
#endif
#include "../os.h"
#include "posix.h"
#include "section.h"
#include "smaps.h"

#ifdef __linux__
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#endif

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

static int pool_errno(int e) { return e == ENOMEM || e == ENOSPC; }

/* Reason for an OS refusal while making huge pages; 0 when it is a hard error. */
static int huge_reason(int e) {
  if (pool_errno(e)) return BM_REASON_POOL_EMPTY;
  if (e == EACCES || e == EPERM) return BM_REASON_NO_PRIVILEGE;
  if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ENODEV) return BM_REASON_UNSUPPORTED;
  return 0;
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
int bm__posix_huge_room(const posix_mount_t *mnt, size_t H, uint64_t size, bm_large_t *out) {
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
int bm__posix_huge_target(const posix_mounts_t *ms, const char *name, const bm_section_opts_t *opts,
                          const posix_mount_t **mntp, size_t *Hp, uint64_t *sizep,
                          bm_large_t *out) {
  const posix_mount_t *mnt = NULL;
  size_t H = opts->large_page_size, j;
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
    for (j = 0; j < ms->n_sizes; j++) ok |= ms->sizes[j].size == H;
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
int bm__posix_try_hugetlb(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                          const bm_section_opts_t *opts, unsigned mode, bm_large_t *out) {
#ifdef __linux__
  const posix_mount_t *mnt = NULL;
  size_t H = 0, probe_len;
  uint64_t size = 0;
  bm__smaps_t sm;
  int fd, r, e, transparent;

  if ((r = bm__posix_huge_target(ms, name, opts, &mnt, &H, &size, out)) != 0) return r;

  /* What is short is known before anything is made: the mount's limits, the pool. */
  if ((r = bm__posix_huge_room(mnt, H, size, out)) != 0) return r;

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
    if ((r = bm__posix_anon_mode(fd, opts, mode)) != 0) goto hard;
    src->place_fd = fcntl(mnt->dirfd, F_DUPFD_CLOEXEC, 0);
    snprintf(src->path, sizeof(src->path), "%s", mnt->path);
  } else if (name != NULL) {
    int at = (int)(mnt - ms->m);
    if ((r = bm__posix_precheck(ms, at, name)) != 0) return r;
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
    if ((r = bm__posix_claim(src, fd, ms, at, name, opts, mode)) != 0) goto hard;
    bm__posix_path_join(src->path, sizeof(src->path), mnt->path, name);
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
    if (size > 0 && (r = bm__posix_probe(fd, H, H, 0, 0, &sm)) != 0) {
      e = bm_last_os_error();
      if (huge_reason(e) != 0) goto not_had_e;
      goto hard;
    }
    if (size == 0) sm.kernel_page_size = H;
    goto probed;
  }
  if ((r = bm__posix_set_size(fd, size)) != 0) {
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
  if ((r = bm__posix_probe(fd, probe_len, H, 1, 0, &sm)) != 0) {
    e = bm_last_os_error();
    if (huge_reason(e) != 0) goto not_had_e;
    goto hard;
  }
probed:
  if (bm__posix_probe_page_size(&sm, &transparent) != H || transparent) {
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
    bm__posix_anon_close(mnt->dirfd, src, fd);
  } else if (name != NULL && src->ino != 0) {
    bm__posix_unmake(ms, (int)(mnt - ms->m), name, src, fd);
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

