/* POSIX backend: who maps what, from /proc/PID/maps of every process, read once a listing:
 * the processes mapping each object of the places, and the bytes of retired generations
 * (deleted files) that processes still map. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"
#include "section.h"

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

struct posix_maps_s {
  posix_map_t *v;
  size_t n, cap;
  posix_gone_t *gone;
  size_t ngone, capgone;
  int ok;           /* /proc could be read */
  int hidden_other; /* some other user's process could not be inspected */
};

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

int64_t bm__posix_maps_count_in(const posix_maps_t *m, const struct stat *st) {
  size_t i;
  int64_t k = 0;
  if (m == NULL || !m->ok) return -1;
  if ((st->st_mode & 0044) != 0 && m->hidden_other) return -1;
  for (i = 0; i < m->n; i++)
    k += m->v[i].maj == major(st->st_dev) && m->v[i].min == minor(st->st_dev) &&
         m->v[i].ino == (uint64_t)st->st_ino;
  return k;
}

posix_maps_t *bm__posix_maps_scan(const posix_mounts_t *ms) {
  posix_maps_t *m = calloc(1, sizeof(*m));
  if (m != NULL) maps_scan(ms, m);
  return m;
}

void bm__posix_maps_free(posix_maps_t *m) {
  if (m != NULL) free(m->v), free(m->gone);
  free(m);
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
  bm__posix_mounts_open(ms);
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
  return bm__posix_maps_count_in(posix_maps_now, &st);
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
  if (posix_maps_ms != NULL) bm__posix_mounts_close(posix_maps_ms);
  free(posix_maps_ms);
  posix_maps_now = NULL;
  posix_maps_ms = NULL;
}

