/* POSIX backend: a replace's new generation, made under a hidden name and then made NAME
 * for openers atomically: in one place by an exchange of names, across places by marking
 * the old one superseded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"
#include "section.h"

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
  bm__posix_mounts_open(&ms);
  r = bm__posix_locate(&ms, name, &where);
  if (r == 0 && bm__posix_place_stat(&ms, where, name, &st) == 0) {
    if (!may_replace(&st)) r = (bm__set_os_error(EPERM), BM_EPERM);
    else if (!S_ISREG(st.st_mode)) r = (bm__set_os_error(EEXIST), BM_EEXIST); /* planted */
  } else if (r == BM_ENOENT) {
    r = 0;
  }
  bm__posix_mounts_close(&ms);
  if (r != 0) return r;
  snprintf(src->gen_name, sizeof(src->gen_name), GEN_PREFIX "%s#%ld#%lu", name, (long)getpid(),
           __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
  r = bm__posix_section_create(src, src->gen_name, opts, outcome);
  if (r != 0) src->gen_name[0] = '\0';
  return r;
}

/* Swaps the new generation (gen) with NAME in place p, where the old one (*old) is; the
 * old one, now under gen, is checked and unlinked. */
static int commit_swap(const posix_mounts_t *ms, int p, const char *gen, const char *name) {
  char nbuf[BM_PATH_MAX], gbuf[BM_PATH_MAX];
  int dfd, gfd;
  const char *at = bm__posix_place_at(ms, p, name, &dfd, nbuf, sizeof(nbuf));
  const char *g = bm__posix_place_at(ms, p, gen, &gfd, gbuf, sizeof(gbuf));
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
  bm__posix_mounts_open(&ms);
  for (i = -1; i < ms.n && p == -2; i++)
    if (bm__posix_is_object(&ms, i, src->gen_name, src)) p = i;
  if (p == -2) {
    r = (bm__set_os_error(0), BM_EREPLACED); /* our hidden generation is gone */
    goto out;
  }
  r = bm__posix_locate(&ms, name, &q);
  if (r == BM_ENOENT) q = -2, r = 0;
  if (r != 0) goto out;
  if (q != -2) {
    if (bm__posix_place_stat(&ms, q, name, &old) != 0) {
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
  at = bm__posix_place_at(&ms, p, name, &dfd, nbuf, sizeof(nbuf));
  g = bm__posix_place_at(&ms, p, src->gen_name, &gfd, gbuf, sizeof(gbuf));
  if (q == p) {
    r = commit_swap(&ms, p, src->gen_name, name);
  } else if (q == -2) {
    /* A new name: made exclusively, and given back when a creator made it elsewhere
     * meanwhile (as a creator's postcheck would step back). */
    if (bm__posix_rename_noreplace(gfd, g, at) != 0) {
      r = errno == EINVAL || errno == ENOSYS ? (renameat(gfd, g, dfd, at) == 0 ? 0 : bm__posix_error(errno))
                                             : bm__posix_error(errno);
      if (r != 0) goto out;
    }
    for (i = -1; i < ms.n; i++)
      if (i != p && bm__posix_look(&ms, i, name) != LOOK_NONE) {
        bm__posix_rename_noreplace(dfd, at, g);
        r = (bm__set_os_error(EEXIST), BM_EEXIST);
        goto out;
      }
  } else {
    /* Across places there is no atomic rename: the old one is marked superseded, the new
     * one made NAME in its place (openers that see both take it: locate), then the old one
     * removed (openers that lost it look again: bm__os_section_open). */
    char obuf[BM_PATH_MAX];
    int odfd;
    const char *o = bm__posix_place_at(&ms, q, name, &odfd, obuf, sizeof(obuf));
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
    if (bm__posix_rename_noreplace(gfd, g, at) != 0) {
      r = bm__posix_error(errno);
      bm__sys_fchmod(ofd, old.st_mode & 07777); /* as it was */
      goto out;
    }
    /* Not removed (taken away by someone else meanwhile): the marked one is passed over. */
    (void)bm__posix_remove_identity(&ms, q, name, (uint64_t)old.st_dev, (uint64_t)old.st_ino);
    r = 0;
  }
  if (r == 0) {
    if (p >= 0) bm__posix_path_join(src->path, sizeof(src->path), ms.m[p].path, name);
    else snprintf(src->path, sizeof(src->path), SHM_DIR "/%s", name);
    src->gen_name[0] = '\0';
  }
out:
  if (ofd >= 0) close(ofd);
  bm__posix_mounts_close(&ms);
  return r;
}

