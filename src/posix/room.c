/* POSIX backend: the room a new section of normal pages has, before it is made: the free
 * space of the tmpfs on /dev/shm (its size=) and the caller's memory cgroup headroom (cgroup
 * v2 memory.max - memory.current, v1 memory.limit_in_bytes - memory.usage_in_bytes, for
 * the caller's cgroup and every ancestor, the tightest kept). Shared memory pages are
 * charged to the memory cgroup of the process that first touches them, so a load larger
 * than its cgroup allows is killed midway by the cgroup's OOM killer (SIGKILL, nothing to
 * catch): that is what this check is for. Page cache the cgroup could drop (active_file +
 * inactive_file of memory.stat) counts as free. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/statfs.h>
#endif
#include "../os.h"
#include "posix.h"

#define SHM_DIR "/dev/shm"
#define NO_LIMIT UINT64_MAX
/* cgroup v1 says "no limit" with PAGE_COUNTER_MAX pages (about 2^63 bytes). */
#define V1_UNLIMITED (1ull << 62)

/* The first number in file dir/name; "max" reads as NO_LIMIT. 0 read, -1 not. */
static int read_value(const char *dir, const char *name, uint64_t *v) {
  char path[BM_PATH_MAX + 64], buf[64];
  unsigned long long x;
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if ((f = bm__sys_fopen(path, "re")) == NULL) return -1;
  if (fgets(buf, sizeof(buf), f) == NULL) buf[0] = '\0';
  fclose(f);
  if (strncmp(buf, "max", 3) == 0) {
    *v = NO_LIMIT;
    return 0;
  }
  if (sscanf(buf, "%llu", &x) != 1) return -1;
  *v = x;
  return 0;
}

/* Page cache the cgroup can drop: active_file + inactive_file (v1: the hierarchical
 * total_ ones) of dir/memory.stat; 0 when it cannot be read. */
static uint64_t droppable(const char *dir, int v1) {
  char path[BM_PATH_MAX + 64], key[64];
  unsigned long long x;
  uint64_t sum = 0;
  FILE *f;
  snprintf(path, sizeof(path), "%s/memory.stat", dir);
  if ((f = bm__sys_fopen(path, "re")) == NULL) return 0;
  while (fscanf(f, "%63s %llu", key, &x) == 2) {
    const char *k = key;
    if (v1) {
      if (strncmp(k, "total_", 6) != 0) continue;
      k += 6;
    }
    if (strcmp(k, "active_file") == 0 || strcmp(k, "inactive_file") == 0) sum += x;
  }
  fclose(f);
  return sum;
}

/* Where the cgroup file systems are mounted: v2 (cgroup2) and v1's memory controller. */
static void cgroup_mounts(char *v2, char *v1, size_t n) {
  FILE *f = bm__sys_fopen("/proc/mounts", "re");
  char line[1024], dev[256], dir[BM_PATH_MAX], type[64], opts[512];
  v2[0] = v1[0] = '\0';
  if (f == NULL) return;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%255s %511s %63s %511s", dev, dir, type, opts) != 4) continue;
    if (strchr(dir, '\\') != NULL) continue; /* an escaped path: not misread */
    if (strcmp(type, "cgroup2") == 0 && v2[0] == '\0') snprintf(v2, n, "%s", dir);
    if (strcmp(type, "cgroup") == 0 && v1[0] == '\0') {
      char *o, *save = NULL;
      for (o = strtok_r(opts, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save))
        if (strcmp(o, "memory") == 0) snprintf(v1, n, "%s", dir);
    }
  }
  fclose(f);
}

/* The caller's cgroup path for v2 ("0::/path") and for v1's memory controller
 * ("N:...memory...:/path"), from /proc/self/cgroup. */
static void cgroup_paths(char *p2, char *p1, size_t n) {
  FILE *f = bm__sys_fopen("/proc/self/cgroup", "re");
  char line[BM_PATH_MAX + 128];
  p2[0] = p1[0] = '\0';
  if (f == NULL) return;
  while (fgets(line, sizeof(line), f)) {
    char *a = strchr(line, ':'), *b = a != NULL ? strchr(a + 1, ':') : NULL, *e;
    if (b == NULL) continue;
    if ((e = strchr(b, '\n')) != NULL) *e = '\0';
    *b = '\0';
    if (strcmp(a + 1, "") == 0 && strncmp(line, "0", 1) == 0) {
      snprintf(p2, n, "%s", b + 1);
    } else {
      char *o, *save = NULL;
      for (o = strtok_r(a + 1, ",", &save); o != NULL; o = strtok_r(NULL, ",", &save))
        if (strcmp(o, "memory") == 0) snprintf(p1, n, "%s", b + 1);
    }
  }
  fclose(f);
}

/* The tightest headroom of the cgroup at mnt + path and its ancestors up to mnt: *free and
 * *limit of that level and its directory; 0 when some level has a limit, -1 when none. */
static int cgroup_room(const char *mnt, const char *path, int v1, uint64_t *free,
                       uint64_t *limit, char *where, size_t n) {
  char dir[BM_PATH_MAX];
  size_t len;
  int found = -1;
  if (mnt[0] == '\0' || path[0] != '/') return -1;
  if (snprintf(dir, sizeof(dir), "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path) >=
      (int)sizeof(dir))
    return -1;
  for (;;) {
    uint64_t max, cur;
    if (read_value(dir, v1 ? "memory.limit_in_bytes" : "memory.max", &max) == 0 &&
        max != NO_LIMIT && !(v1 && max >= V1_UNLIMITED) &&
        read_value(dir, v1 ? "memory.usage_in_bytes" : "memory.current", &cur) == 0) {
      uint64_t f = (cur < max ? max - cur : 0) + droppable(dir, v1);
      if (f > max) f = max;
      if (found != 0 || f < *free) {
        *free = f;
        *limit = max;
        snprintf(where, n, "%s", dir);
        found = 0;
      }
    }
    len = strlen(dir);
    if (len <= strlen(mnt)) break;
    while (len > strlen(mnt) && dir[len - 1] != '/') len--;
    if (len > strlen(mnt)) len--; /* the slash */
    dir[len] = '\0';
  }
  return found;
}

static void cgroup_figures(bm_preflight_t *out) {
  char m2[BM_PATH_MAX], m1[BM_PATH_MAX], p2[BM_PATH_MAX], p1[BM_PATH_MAX];
  out->cgroup_free = out->cgroup_limit = NO_LIMIT;
  out->cgroup[0] = '\0';
  cgroup_mounts(m2, m1, sizeof(m2));
  cgroup_paths(p2, p1, sizeof(p2));
  /* v1's memory controller when it is mounted and the caller is in it (a hybrid system
   * has both, and memory is then v1's); else v2. */
  if (cgroup_room(m1, p1, 1, &out->cgroup_free, &out->cgroup_limit, out->cgroup,
                  sizeof(out->cgroup)) == 0)
    return;
  cgroup_room(m2, p2, 0, &out->cgroup_free, &out->cgroup_limit, out->cgroup,
              sizeof(out->cgroup));
}

static void shm_figures(bm_preflight_t *out) {
  out->shm_free = out->shm_total = NO_LIMIT;
#ifdef __linux__
  {
    int fd = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct statfs sf;
    if (fd < 0) return;
    /* tmpfs with size=0 has no limit and says so with no blocks at all. */
    if (bm__sys_fstatfs(fd, &sf) == 0 && sf.f_blocks != 0 && sf.f_bsize > 0) {
      out->shm_free = (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize;
      out->shm_total = (uint64_t)sf.f_blocks * (uint64_t)sf.f_bsize;
    }
    close(fd);
  }
#endif
}

int bm__posix_room(int named, uint64_t size, bm_preflight_t *out) {
  int shm_short, cg_short;
  out->needed = size;
  out->limit = BM_LIMIT_NONE;
  out->free = out->total = 0;
  out->where[0] = '\0';
  if (named) shm_figures(out);
  else out->shm_free = out->shm_total = NO_LIMIT; /* a memfd is on no mount of ours */
  cgroup_figures(out);
  shm_short = out->shm_free != NO_LIMIT && out->shm_free < size;
  cg_short = out->cgroup_free != NO_LIMIT && out->cgroup_free < size;
  if (!shm_short && !cg_short) return 0;
  /* Both short: the tighter one is named (easing the other alone would not do). */
  if (shm_short && (!cg_short || out->shm_free <= out->cgroup_free)) {
    out->limit = BM_LIMIT_SHM;
    out->free = out->shm_free;
    out->total = out->shm_total;
    snprintf(out->where, sizeof(out->where), SHM_DIR);
  } else {
    out->limit = BM_LIMIT_CGROUP;
    out->free = out->cgroup_free;
    out->total = out->cgroup_limit;
    snprintf(out->where, sizeof(out->where), "%s", out->cgroup);
  }
  bm__set_os_error(0);
  return BM_ENOROOM;
}
