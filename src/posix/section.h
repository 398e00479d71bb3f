/* What the files of the POSIX backend's named sections share: the places (places.c), the
 * kinds of pages (section.c, hugetlb.c, and the probe in smaps.c), the listing (list.c,
 * reclaim.c, maps.c) and the replace (replace.c). Private to src/posix/. */
#ifndef BULKMAP_POSIX_SECTION_H
#define BULKMAP_POSIX_SECTION_H

#include <sys/stat.h>
#include "../os.h"

#define SHM_DIR "/dev/shm"

/* The name a dataset's bytes are made under: none. They are anonymous (O_TMPFILE) in
 * their place until the dataset is published (src/posix/store.c), and sized exactly. */
extern const char bm__posix_anon[];
#define IS_ANON(name) ((name) == bm__posix_anon)

/* What one attempt at a kind of page came to: made (0), not had for `reason` (1, the
 * caller may fall back), or a hard error (< 0) that no other kind of page would fix. */
enum { POSIX_MADE = 0, POSIX_NOT_HAD = 1 };

static inline int is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

/* ---- Places (places.c): -1 is SHM_DIR, k >= 0 hugetlbfs mount k. */

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
  posix_mount_t *m;    /* every hugetlbfs mount, however many (malloc'd) */
  size_t default_size; /* the OS default huge page size */
  size_t n_sizes;
  bm_large_size_t *sizes; /* every huge page size the kernel offers, ascending (malloc'd) */
  int err; /* errno of a listed mount that could not be opened (0: none) */
  int shm_fd;       /* SHM_DIR, or -1 (names there are then resolved by path) */
  int shm_err;      /* why it could not be opened */
  uint64_t shm_dev; /* its file system (0 when it could not be opened) */
} posix_mounts_t;

void bm__posix_mounts_open(posix_mounts_t *ms);
void bm__posix_mounts_close(posix_mounts_t *ms);
int bm__posix_locate(const posix_mounts_t *ms, const char *name, int *where);
const char *bm__posix_place_at(const posix_mounts_t *ms, int where, const char *name, int *dfd,
                               char *buf, size_t n);
int bm__posix_place_stat(const posix_mounts_t *ms, int where, const char *name, struct stat *st);
/* 1 when NAME in place `where` is the object src refers to (device and inode). */
int bm__posix_is_object(const posix_mounts_t *ms, int where, const char *name,
                        const bm_source_t *src);
void bm__posix_path_join(char *buf, size_t n, const char *dir, const char *name);

/* Exclusive creation across places (places.c). */
enum { LOOK_NONE = 0, LOOK_TENTATIVE = 1, LOOK_THERE = 2 };
int bm__posix_look(const posix_mounts_t *ms, int where, const char *name);
int bm__posix_precheck(const posix_mounts_t *ms, int p, const char *name);
int bm__posix_claim(bm_source_t *src, int fd, const posix_mounts_t *ms, int where,
                    const char *name, const bm_section_opts_t *opts, unsigned mode);
void bm__posix_unmake(const posix_mounts_t *ms, int where, const char *name, bm_source_t *src,
                      int fd);
int bm__posix_anon_mode(int fd, const bm_section_opts_t *opts, unsigned mode);
void bm__posix_anon_close(int dfd, bm_source_t *src, int fd);
int bm__posix_rename_noreplace(int dfd, const char *from, const char *to);
int bm__posix_remove_identity(const posix_mounts_t *ms, int where, const char *name,
                              uint64_t dev, uint64_t ino);

/* ---- Pages (section.c, hugetlb.c). */
int bm__posix_set_size(int fd, uint64_t size);
int bm__posix_section_create(bm_source_t *src, const char *name, const bm_section_opts_t *opts,
                             bm_large_t *outcome);
int bm__posix_open_place(const posix_mounts_t *ms, int where, const char *name, unsigned access,
                         bm_source_t *src);
int bm__posix_huge_target(const posix_mounts_t *ms, const char *name,
                          const bm_section_opts_t *opts, const posix_mount_t **mntp, size_t *Hp,
                          uint64_t *sizep, bm_large_t *out);
int bm__posix_huge_room(const posix_mount_t *mnt, size_t H, uint64_t size, bm_large_t *out);
int bm__posix_try_hugetlb(bm_source_t *src, const posix_mounts_t *ms, const char *name,
                          const bm_section_opts_t *opts, unsigned mode, bm_large_t *out);

/* ---- Listing (list.c, reclaim.c) and who maps what (maps.c). */

/* A replace's hidden generation: '#' is no name character. */
#define GEN_PREFIX "bulkmap#gen#"

typedef struct posix_maps_s posix_maps_t;

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

int bm__posix_list_places(const posix_mounts_t *ms, list_ctx_t *c);

/* One read of every process's /proc/PID/maps (NULL when out of memory; free with
 * bm__posix_maps_free), and how many of them map the object st describes (-1: cannot be
 * seen). */
posix_maps_t *bm__posix_maps_scan(const posix_mounts_t *ms);
void bm__posix_maps_free(posix_maps_t *m);
int64_t bm__posix_maps_count_in(const posix_maps_t *m, const struct stat *st);

#endif
