/* Test-side helpers for section and large-page tests (POSIX): the test's own reading of
 * /proc/self/smaps (independent of the library's), the huge page pool knobs, a lock that
 * serializes every test that changes them, and per-run section names.
 *
 * Lock protocol: a test that changes the huge page pool, mounts hugetlbfs or writes
 * shmem_enabled holds HT_LOCK_PATH exclusively (flock) for as long as the change lasts; a
 * test that only depends on them not changing holds it shared. */
#ifndef BULKMAP_HUGETEST_H
#define BULKMAP_HUGETEST_H

#include <stdio.h>
#ifdef _WIN32
#include <process.h>
static inline long ht_getpid(void) { return (long)_getpid(); }
#else
#include <unistd.h>
static inline long ht_getpid(void) { return (long)getpid(); }
#endif

/* The pid of the runner (set by a suite's unchecked setup, inherited by the forked tests),
 * so that names of one run share a prefix and its teardown can sweep leftovers. */
static long ht_runner_pid;

static inline void ht_init_run(void) {
  if (ht_runner_pid == 0) ht_runner_pid = ht_getpid();
}

/* "bmtest-RUNNER-PID-what": unique per test process, removable by prefix. */
static inline const char *ht_name(const char *what) {
  static char bufs[4][128];
  static int next;
  char *b = bufs[next++ & 3];
  ht_init_run();
  snprintf(b, sizeof(bufs[0]), "bmtest-%ld-%ld-%s", ht_runner_pid, ht_getpid(), what);
  return b;
}

#ifndef _WIN32
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HT_LOCK_PATH "/tmp/bulkmap-hugepages.lock"
#define HT_HUGE_DIR "/sys/kernel/mm/hugepages"
#define HT_SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/* Removes every entry of dir named with this run's prefix. */
static inline void ht_sweep_dir(const char *dir) {
  char prefix[64], p[1024];
  DIR *d;
  struct dirent *e;
  if (ht_runner_pid == 0) return;
  snprintf(prefix, sizeof(prefix), "bmtest-%ld-", ht_runner_pid);
  if ((d = opendir(dir)) == NULL) return;
  while ((e = readdir(d)) != NULL) {
    /* the dataset's name, its metadata bulkmap#NAME and its keep links bulkmap#NAME#... */
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 &&
        !(strncmp(e->d_name, "bulkmap#", 8) == 0 && strncmp(e->d_name + 8, prefix, strlen(prefix)) == 0))
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    if (unlink(p) == 0) fprintf(stderr, "note: removed leftover %s\n", p);
  }
  closedir(d);
}

/* The test's own reading of smaps: field (e.g. "KernelPageSize") of the mapping holding
 * addr, in kB; -1 when there is no such mapping or field. */
static inline long long ht_smaps_kb(const void *addr, const char *field) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[4096];
  unsigned long long lo, hi, kb;
  long long r = -1;
  int in = 0;
  size_t n = strlen(field);
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, ':') != NULL &&
        strchr(line, '-') < strchr(line, ' ')) {
      if (in) break;
      in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
      continue;
    }
    if (in && strncmp(line, field, n) == 0 && line[n] == ':' &&
        sscanf(line + n + 1, "%llu", &kb) == 1)
      r = (long long)kb;
  }
  fclose(f);
  return r;
}

static inline long long ht_read_ll(const char *path) {
  FILE *f = fopen(path, "r");
  long long v = -1;
  if (f == NULL) return -1;
  if (fscanf(f, "%lld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static inline int ht_write_str(const char *path, const char *s) {
  int fd = open(path, O_WRONLY), ok;
  if (fd < 0) return -1;
  ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
  close(fd);
  return ok ? 0 : -1;
}

static inline int ht_write_ll(const char *path, long long v) {
  char b[32];
  snprintf(b, sizeof(b), "%lld", v);
  return ht_write_str(path, b);
}

/* The bracketed value of a sysfs mode knob ("never"), into buf. */
static inline int ht_read_knob(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  char line[256], *a, *b;
  if (f == NULL) return -1;
  if (fgets(line, sizeof(line), f) == NULL) line[0] = '\0';
  fclose(f);
  a = strchr(line, '[');
  b = a ? strchr(a, ']') : NULL;
  if (b == NULL || (size_t)(b - a) > n) return -1;
  memcpy(buf, a + 1, (size_t)(b - a - 1));
  buf[b - a - 1] = '\0';
  return 0;
}

/* Path of a per-size pool file, e.g. ht_pool(2048, "free_hugepages"). */
static inline const char *ht_pool(long kb, const char *file) {
  static char bufs[4][160];
  static int next;
  char *b = bufs[next++ & 3];
  snprintf(b, sizeof(bufs[0]), HT_HUGE_DIR "/hugepages-%ldkB/%s", kb, file);
  return b;
}

/* Takes the pool lock (LOCK_EX or LOCK_SH); returns the descriptor or -1. Waits at most
 * about 60 s, so that a stuck holder turns into a skip, not a hung suite. */
static inline int ht_lock(int how) {
  int fd = open(HT_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666), i;
  if (fd < 0) return -1;
  for (i = 0; i < 6000; i++) {
    if (flock(fd, how | LOCK_NB) == 0) return fd;
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    usleep(10000);
  }
  close(fd);
  return -1;
}

static inline void ht_unlock(int *fd) {
  if (*fd >= 0) close(*fd); /* closing the last descriptor releases the flock */
  *fd = -1;
}

/* 1 when path (a name in a directory) exists. */
static inline int ht_exists(const char *dir, const char *name) {
  char p[1024];
  struct stat st;
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  return lstat(p, &st) == 0;
}

/* Number of hugetlbfs mounts in /proc/mounts. */
static inline int ht_hugetlbfs_mounts(void) {
  FILE *f = fopen("/proc/mounts", "r");
  char line[1024], dev[256], dir[512], type[64];
  int n = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "%255s %511s %63s", dev, dir, type) == 3 && strcmp(type, "hugetlbfs") == 0)
      n++;
  fclose(f);
  return n;
}
#endif /* !_WIN32 */

#endif
