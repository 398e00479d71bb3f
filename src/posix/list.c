/* POSIX backend: the listing of every place's entries with a section's name (plain
 * sections and what is planted under such a name; datasets are listed by their store,
 * src/posix/store.c), each with who maps it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"
#include "section.h"

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
    e.maps = bm__posix_maps_count_in(c->maps, &st);
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
    e.open_error = S_ISREG(st.st_mode) ? bm__posix_open_place(ms, where, de->d_name, BM_ACCESS_READ, src)
                                       : BM_ENOTREG;
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
  int r;
  memset(&c, 0, sizeof(c));
  c.fn = fn;
  c.arg = arg;
  c.only = name;
  bm__posix_mounts_open(&ms);
  c.maps = bm__posix_maps_scan(&ms);
  r = bm__posix_list_places(&ms, &c);
  bm__posix_maps_free(c.maps);
  bm__posix_mounts_close(&ms);
  return r;
}

int bm__posix_list_places(const posix_mounts_t *ms, list_ctx_t *c) {
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

