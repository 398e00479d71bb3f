/* POSIX backend: named and anonymous sections. Normal pages live in /dev/shm (shm_open) or a
 * memfd; large pages are a file NAME on a hugetlbfs mount or a memfd(MFD_HUGETLB)
 * (src/posix/hugetlb.c), with transparent huge pages as the fallback only where the kernel
 * really gives them. Every page size reported comes from /proc/self/smaps for a mapping of
 * the section. Here: creating, opening and removing a section, and its writer lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"
#include "section.h"
#include "smaps.h"

const char bm__posix_anon[] = "";

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

int bm__posix_set_size(int fd, uint64_t size) {
  int r;
  if (size > (uint64_t)INT64_MAX) return BM_EOVERFLOW;
  do r = bm__sys_ftruncate(fd, (off_t)size);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : bm__posix_error(errno);
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
    if ((r = bm__posix_anon_mode(fd, opts, mode)) != 0) {
      bm__posix_anon_close(ms->shm_fd, src, fd);
      return r;
    }
    /* Named later in this very directory: a path opened again could be another mount. */
    src->place_fd = fcntl(ms->shm_fd, F_DUPFD_CLOEXEC, 0);
    snprintf(path, pathlen, SHM_DIR);
    *fdp = fd;
    return 0;
  }
  /* Creating NAME here while a hugetlbfs mount has it would make it ambiguous to open. */
  if ((r = bm__posix_precheck(ms, -1, name)) != 0) return r;
  {
    char oname[BM_NAME_MAX + 2];
    snprintf(oname, sizeof(oname), "/%s", name);
    /* Mode 0: tentative, and nobody else can open it (see claim). */
    fd = bm__sys_shm_open(oname, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) return bm__posix_error(errno);
    if ((r = bm__posix_claim(src, fd, ms, -1, name, opts, mode)) != 0) {
      if (src->ino == 0) {
        close(fd);
        bm__sys_shm_unlink(oname);
      } else {
        bm__posix_unmake(ms, -1, name, src, fd);
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
    bm__posix_anon_close(ms->shm_fd, src, fd);
    return;
  }
  bm__posix_unmake(ms, -1, name, src, fd);
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
  size_t base = bm__os_config()->page_size, pmd = bm__posix_pmd_size();
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
  if ((r = bm__posix_set_size(fd, size)) != 0) goto fail;
  want_thp = want_thp && size >= pmd && is_pow2(pmd) && thp_allowed(name != NULL);
  if (size == 0) {
    memset(&sm, 0, sizeof(sm));
    r = 0;
  } else if (want_thp) {
    r = bm__posix_probe(fd, pmd, pmd, 1, 1, &sm);
  } else if (!thp_allowed(name != NULL)) {
    /* The kernel gives this object no large folio at all (shmem_enabled, the tmpfs mount's
     * huge=): its pages are base pages, with no need to map one and read this process's
     * whole /proc/self/smaps (a millisecond and more in a process with many mappings,
     * most of a small publish's time). */
    memset(&sm, 0, sizeof(sm));
    r = 0;
  } else {
    r = bm__posix_probe(fd, base, base, 1, 0, &sm);
  }
  if (r != 0) goto fail;
  got = bm__posix_probe_page_size(&sm, &transparent);
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
  size_t pmd = bm__posix_pmd_size();
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

int bm__os_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                          bm_large_t *outcome) {
  int r;
  /* Exclusive across places with no lock (see claim): of two racing creators (one for
   * huge pages, one not) exactly one wins. */
  r = bm__posix_section_create(src, name, opts, outcome);
  return r;
}

int bm__posix_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                             bm_large_t *outcome) {
  posix_mounts_t ms;
  unsigned mode = opts->mode != 0 ? opts->mode : 0600;
  int r = POSIX_NOT_HAD;

  bm__posix_mounts_open(&ms);
  if (opts->transparent && opts->large != BM_LARGE_OFF) {
    r = try_transparent(src, &ms, name, opts, mode, outcome);
    if (r == POSIX_NOT_HAD && opts->large == BM_LARGE_ON) {
      bm__posix_mounts_close(&ms);
      return outcome->reason == BM_REASON_SIZE_NOT_MULTIPLE ? BM_EALIGN : BM_ENOLARGE;
    }
    /* AUTO: normal pages, the reason kept. */
    if (r == POSIX_NOT_HAD) r = make_normal(src, &ms, name, opts, mode, 0, outcome);
    bm__posix_mounts_close(&ms);
    return r;
  }
  if (opts->large != BM_LARGE_OFF) {
    r = bm__posix_try_hugetlb(src, &ms, name, opts, mode, outcome);
    if (r == POSIX_NOT_HAD && opts->large == BM_LARGE_ON) {
      bm__posix_mounts_close(&ms);
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
  bm__posix_mounts_close(&ms);
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
  bm__posix_mounts_open(&ms);
  if (opts->large != BM_LARGE_OFF && !opts->transparent) {
    const posix_mount_t *mnt = NULL;
    size_t H = 0;
    uint64_t size = 0;
    r = bm__posix_huge_target(&ms, "", opts, &mnt, &H, &size, &out->large);
    if (r == 0) r = bm__posix_huge_room(mnt, H, size, &out->large);
    if (r == 0) {
      /* Hugetlb pages are not charged to the memory cgroup; the pool and mount are it. */
      out->needed = size;
      out->large.page_size = H;
      out->shm_free = out->shm_total = out->cgroup_free = out->cgroup_limit = UINT64_MAX;
      bm__posix_mounts_close(&ms);
      return 0;
    }
    if (r < 0 || opts->large == BM_LARGE_ON) {
      bm__posix_mounts_close(&ms);
      if (r < 0) return r;
      return out->large.reason == BM_REASON_SIZE_NOT_MULTIPLE ? BM_EALIGN : BM_ENOLARGE;
    }
  }
  bm__posix_mounts_close(&ms);
  {
    uint64_t size = bm__align_up(opts->size, base);
    if (size == 0) return BM_EOVERFLOW;
    return bm__posix_room(1, size, out);
  }
}

/* Opens NAME in place `where` (-1: /dev/shm, else mount k) into src: a regular file only,
 * never through a symlink, never waiting on a FIFO planted under the name. */
int bm__posix_open_place(const posix_mounts_t *ms, int where, const char *name, unsigned access,
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
    bm__posix_path_join(src->path, sizeof(src->path), ms->m[where].path, name);
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

  bm__posix_mounts_open(&ms);
  /* A replace removes the old generation after the new one has the name (in its place): an
   * object gone between the look and the open is looked for again. */
  for (tries = 0;; tries++) {
    if ((r = bm__posix_locate(&ms, name, &where)) != 0) goto out;
    if ((r = bm__posix_open_place(&ms, where, name, access, src)) == 0) break;
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
  bm__posix_mounts_close(&ms);
  return r;
}



int bm__os_section_remove_name(const char *name, int force) {
  posix_mounts_t ms;
  int where = -1, r, tries;
  /* A dataset (its metadata beside its bytes) goes whole: names, keep links, metadata. */
  r = bm__store_remove_name(name, force);
  if (r != BM_ENOENT) return r;
  bm__posix_mounts_open(&ms);
  /* The name can change between the judging and the removing: what is removed is always
   * what was judged (remove_identity), and a name swapped meanwhile is judged again. */
  for (tries = 0; tries < 8; tries++) {
    struct stat st;
    if ((r = bm__posix_locate(&ms, name, &where)) != 0) break;
    if (bm__posix_place_stat(&ms, where, name, &st) != 0) {
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
      if (bm__posix_open_place(&ms, where, name, BM_ACCESS_READ, &probe) == 0) {
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
    r = bm__posix_remove_identity(&ms, where, name, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (r != BM_EREPLACED && r != BM_ENOENT) break;
  }
  if (tries == 8) {
    /* Swapped under every look: someone keeps replacing it. */
    bm__set_os_error(0);
    r = BM_EBUSY;
  }
  bm__posix_mounts_close(&ms);
  return r;
}

int bm__os_section_remove_own(bm_source_t *src, const char *name) {
  posix_mounts_t ms;
  int q, r = BM_ENOENT;
  if (src == NULL || src->ino == 0) return BM_EINVAL;
  /* A replace's generation not yet made NAME is removed under its hidden name. */
  if (src->gen_name[0] != '\0') name = src->gen_name;
  bm__posix_mounts_open(&ms);
  for (q = -1; q < ms.n && r != 0; q++) {
    struct stat st;
    if (bm__posix_place_stat(&ms, q, name, &st) != 0) continue;
    if (bm__posix_is_object(&ms, q, name, src)) r = bm__posix_remove_identity(&ms, q, name, src->dev, src->ino);
    else if (r == BM_ENOENT) r = BM_EREPLACED;
  }
  if (r == BM_EREPLACED || r == BM_ENOENT) bm__set_os_error(0);
  bm__posix_mounts_close(&ms);
  return r;
}

int bm__os_writer_alive(bm_source_t *src, const char *token) {
  (void)token; /* the lock is on the object: nothing to name */
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
  } else if (src->size >= bm__posix_pmd_size() && is_pow2(bm__posix_pmd_size())) {
    /* A PMD can only show up in a PMD-sized, PMD-aligned mapping. */
    len = align = bm__posix_pmd_size();
  } else {
    len = align = base;
  }
  if ((r = bm__posix_probe(src->fd, len, align, 0, src->thp, &sm)) != 0) return r;
  got = bm__posix_probe_page_size(&sm, &transparent);
  outcome->page_size = got;
  outcome->transparent = transparent;
  outcome->obtained = got > base;
  if (outcome->requested == BM_LARGE_OFF && outcome->reason != BM_REASON_NONE)
    outcome->reason = outcome->obtained ? BM_REASON_NONE : BM_REASON_NOT_REQUESTED;
  return 0;
}

/* ---- What src/posix/store.c uses of this file. */

int bm__posix_writer_lock(int fd, int type) { return writer_lock(fd, (short)type); }
int bm__posix_writer_held(int fd) { return writer_held(fd); }

int bm__posix_data_create(bm_source_t *src, const bm_section_opts_t *opts, bm_large_t *out,
                          int *place_fd, char *place, size_t n) {
  posix_mounts_t ms;
  struct stat st;
  int r;
  r = bm__posix_section_create(src, bm__posix_anon, opts, out);
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

