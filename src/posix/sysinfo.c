/* POSIX backend: system facts from sysconf, /sys/kernel/mm and /proc/mounts. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"

static int read_u64(const char *path, uint64_t *out) {
  FILE *f = bm__sys_fopen(path, "re");
  unsigned long long v;
  int ok;
  if (f == NULL) return -1;
  ok = fscanf(f, "%llu", &v) == 1;
  fclose(f);
  if (!ok) return -1;
  *out = v;
  return 0;
}

static size_t default_huge_size(void) {
  FILE *f = bm__sys_fopen("/proc/meminfo", "re");
  char line[256];
  unsigned long kb;
  size_t r = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1) r = (size_t)kb << 10;
  fclose(f);
  return r;
}

/* The page size a hugepages-<N>kB directory entry names; 0 for any other entry. */
static size_t large_size_of(const char *entry) {
  unsigned long kb;
  return sscanf(entry, "hugepages-%lukB", &kb) == 1 ? (size_t)kb << 10 : 0;
}

static int cmp_large_size(const void *a, const void *b) {
  size_t x = ((const bm_large_size_t *)a)->size, y = ((const bm_large_size_t *)b)->size;
  return x < y ? -1 : x > y;
}

int bm__posix_large_sizes(bm_large_size_t **out, size_t *n) {
  DIR *d = opendir(HUGEPAGES_DIR);
  struct dirent *e;
  bm_large_size_t *v = NULL;
  size_t cap = 0, i, size;
  unsigned long kb;
  char path[512];

  *out = NULL;
  *n = 0;
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL) {
    if ((size = large_size_of(e->d_name)) == 0) continue;
    if (*n == cap) {
      bm_large_size_t *w = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
      if (w == NULL) {
        closedir(d);
        free(v);
        *n = 0;
        return bm__set_os_error(ENOMEM), BM_ENOMEM;
      }
      v = w;
    }
    v[(*n)++].size = size;
  }
  closedir(d);
  if (*n > 0) qsort(v, *n, sizeof(*v), cmp_large_size);
  for (i = 0; i < *n; i++) {
    kb = (unsigned long)(v[i].size >> 10);
    snprintf(path, sizeof(path), HUGEPAGES_DIR "/hugepages-%lukB/free_hugepages", kb);
    if (read_u64(path, &v[i].free) != 0) v[i].free = UINT64_MAX;
    snprintf(path, sizeof(path), HUGEPAGES_DIR "/hugepages-%lukB/nr_hugepages", kb);
    if (read_u64(path, &v[i].total) != 0) v[i].total = UINT64_MAX;
  }
  *out = v;
  return 0;
}

int bm__os_large_size(int i, bm_large_size_t *out) {
  bm_large_size_t *v;
  size_t n;
  int r = bm__posix_large_sizes(&v, &n);
  if (r != 0) return r;
  if ((size_t)i < n) *out = v[i];
  else r = (bm__set_os_error(0), BM_ENOENT);
  free(v);
  return r;
}

/* How many large page sizes the kernel offers (no pool figures read, nothing allocated). */
static int count_large_sizes(void) {
  DIR *d = opendir(HUGEPAGES_DIR);
  struct dirent *e;
  int n = 0;
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL)
    if (large_size_of(e->d_name) != 0) n++;
  closedir(d);
  return n;
}

/* Parses a "pagesize=2M" mount option; 0 when absent. */
static size_t mount_page_size(const char *opts) {
  const char *p = strstr(opts, "pagesize=");
  uint64_t v;
  char buf[32];
  size_t n;
  if (p == NULL) return 0;
  p += 9;
  n = strcspn(p, ",");
  if (n == 0 || n >= sizeof(buf)) return 0;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return bm_size_parse(buf, &v) == 0 ? (size_t)v : 0;
}

int bm__posix_hugetlbfs_mounts(bm_mount_t **out, size_t *n) {
  FILE *f = bm__sys_fopen("/proc/mounts", "re");
  char line[1024], dev[256], dir[BM_PATH_MAX], type[64], opts[512];
  bm_mount_t *v = NULL;
  size_t cap = 0, dflt = 0;
  *out = NULL;
  *n = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%255s %511s %63s %511s", dev, dir, type, opts) != 4) continue;
    if (strcmp(type, "hugetlbfs") != 0) continue;
    /* /proc/mounts escapes spaces as \040; such a mount is skipped, not misread. */
    if (strchr(dir, '\\') != NULL) continue;
    if (*n == cap) {
      bm_mount_t *w = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
      if (w == NULL) {
        fclose(f);
        free(v);
        *n = 0;
        return bm__set_os_error(ENOMEM), BM_ENOMEM;
      }
      v = w;
    }
    snprintf(v[*n].path, sizeof(v[*n].path), "%s", dir);
    v[*n].page_size = mount_page_size(opts);
    if (v[*n].page_size == 0) v[*n].page_size = dflt != 0 ? dflt : (dflt = default_huge_size());
    (*n)++;
  }
  fclose(f);
  *out = v;
  return 0;
}

int bm__os_mount(int i, bm_mount_t *out) {
  bm_mount_t *v;
  size_t n;
  int r = bm__posix_hugetlbfs_mounts(&v, &n);
  if (r != 0) return r;
  if ((size_t)i < n) *out = v[i];
  else r = (bm__set_os_error(0), BM_ENOENT);
  free(v);
  return r;
}

static int read_thp(void) {
  FILE *f = bm__sys_fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
  char buf[128];
  int r = BM_THP_UNSUPPORTED;
  if (f == NULL) return r;
  if (fgets(buf, sizeof(buf), f)) {
    if (strstr(buf, "[always]")) r = BM_THP_ALWAYS;
    else if (strstr(buf, "[madvise]")) r = BM_THP_MADVISE;
    else if (strstr(buf, "[never]")) r = BM_THP_NEVER;
  }
  fclose(f);
  return r;
}

int bm__os_sysinfo(bm_sysinfo_t *info) {
  const bm__os_config_t *cfg = bm__os_config();
  struct utsname u;

  if (uname(&u) == 0) {
    size_t i;
    snprintf(info->os, sizeof(info->os), "%.63s", u.sysname);
    for (i = 0; info->os[i]; i++)
      if (info->os[i] >= 'A' && info->os[i] <= 'Z') info->os[i] = (char)(info->os[i] + 32);
  } else {
    snprintf(info->os, sizeof(info->os), "posix");
  }
  info->page_size = cfg->page_size;
  info->granularity = cfg->granularity;
  info->has_populate = cfg->has_populate;
  info->default_large_size = default_huge_size();
  info->n_large_sizes = count_large_sizes();
  {
    bm_mount_t *v;
    size_t n;
    if (bm__posix_hugetlbfs_mounts(&v, &n) == 0) info->n_mounts = (int)n;
    free(v);
  }
  info->thp = read_thp();
  {
    /* shmem_enabled decides transparent huge pages for shared memory (memfd, and /dev/shm
     * with its huge= option): "[never]" style, the bracketed word is the mode. */
    FILE *f = bm__sys_fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
    char line[256], *a, *b;
    info->shmem_enabled[0] = '\0';
    if (f != NULL) {
      if (fgets(line, sizeof(line), f) != NULL && (a = strchr(line, '[')) != NULL &&
          (b = strchr(a, ']')) != NULL && (size_t)(b - a - 1) < sizeof(info->shmem_enabled)) {
        memcpy(info->shmem_enabled, a + 1, (size_t)(b - a - 1));
        info->shmem_enabled[b - a - 1] = '\0';
      }
      fclose(f);
    }
  }
  /* Linux needs no privilege to map huge pages from the pool; reserving them (writing
   * nr_hugepages, mounting hugetlbfs) needs root. */
  info->privilege = 1;
  return 0;
}
