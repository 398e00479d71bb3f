/* POSIX backend: where a dataset lives (docs/datasets.md, "The layout"). The bytes are a
 * file in their place (/dev/shm or a trusted hugetlbfs mount) that is byte-for-byte the
 * source; the metadata is beside it, in the companion /dev/shm/bulkmap#NAME, the one name
 * besides NAME that bulkmap takes first come (it is also the claim that holds NAME while a
 * dataset loads). Every other object is anonymous (O_TMPFILE, then linkat through
 * /proc/self/fd) or carries 128 random bits in its name.
 *
 * The companion (integers little-endian):
 *      0   8  magic "BMCOMP01"
 *      8   8  zero
 *     16  24  pointer slot 0: seq (8), record offset (8), record length (4), check (4)
 *     40  24  pointer slot 1
 *     64 ...  records, appended, never rewritten
 * A record is the 4096-byte trailer block of src/trailer.c (state, sizes, XXH3, request,
 * format) followed by an extension (see rec_encode): kind (current, or pending: a replace
 * between its two renames), the data's device and inode, the previous record, the keep
 * link's random name, the place, the compact layout. The writer appends a whole record,
 * then writes the pointer slot (seq & 1) with seq + 1: a reader takes the valid slot of the
 * highest seq, and a record is complete before any slot names it, so a torn slot (the one
 * being written) is never chosen and the other one is always whole.
 *
 * Liveness: the writer holds an OFD write lock on byte 0 of the companion (it needs a
 * descriptor opened for writing: only the owner, since the companion is never writable by
 * others). Pairing: a reader opens the bytes through the keep link the record names and
 * checks the inode the record names, so it never pairs one generation's bytes with
 * another's metadata; NAME is for everyone else (and a third party may unlink it). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"

#define SHM_DIR "/dev/shm"
#define COMP_PREFIX "bulkmap#"
#define COMP_MAGIC "BMCOMP01"
#define COMP_HEAD 64
#define EXT_MAGIC "BMEXT001"
#define EXT_FIXED 344
#define REC_MAX (BM_TRAILER_SIZE + EXT_FIXED + (256u << 20))
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

enum { KIND_CURRENT = 1, KIND_PENDING = 2 };

typedef struct {
  bm__trailer_t t;
  int kind;
  uint64_t dev, ino;    /* the generation's bytes (0: none yet) */
  uint64_t prev;        /* pending: the record it supersedes */
  char keep[40];        /* hex of the keep link bulkmap#NAME#<keep> ("": none) */
  char place[BM_PATH_MAX];
  uint64_t off;         /* where this record is (read back) */
  uint32_t len;         /* its length */
  uint32_t blob_n;      /* the compact layout's bytes, at off + BLOB_AT */
  int bound;            /* bound to its process (remove_on_exit): see BIND_BYTE */
} rec_t;

#define BLOB_AT (BM_TRAILER_SIZE + EXT_FIXED)

struct bm__store_s {
  char name[BM_NAME_MAX + 1];
  int shm;              /* /dev/shm */
  int cfd;              /* the companion, opened by its name (so that what is written
                           and the writer's last close are inotify events of the name) */
  int lfd;              /* a new dataset's writer: the anonymous descriptor the lock was
                           taken on before the companion had its name (-1: the lock, if
                           held, is on cfd) */
  uint64_t cdev, cino;
  int locked;           /* this handle holds the writer lock */
  int readlocked;       /* it could not take it for others' read locks (no writer lives) */
  int writer, published;
  bm_source_t *src;     /* the bytes (NULL: none to open, e.g. loading) */
  int pfd;              /* the place's directory */
  rec_t cur;            /* what this handle wrote or read */
  int have_old;         /* a replace: the generation it supersedes */
  rec_t old;
  uint64_t seq;
  unsigned char *blob;  /* writer: the compact layout its records carry (src/format.c) */
  size_t blob_n;
  int handoff;          /* the next fork's child becomes the writer (bm_dataset_handoff) */
  int given_away;       /* this process forked it away: no longer its writer */
  bm__store_t *next;    /* in the list of writers (fork_writers) */
};

/* ---- A fork of a writer is not its writer (docs/datasets.md, liveness and fork). The lock
 * lives on an open file description, which a fork shares: a child that lives on would keep
 * a dead writer's dataset `loading`. So the child closes every writer's descriptors at once
 * (pthread_atfork), unless the writer role was handed to it (bm_dataset_handoff): then the
 * parent gives it up instead. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static bm__store_t *fork_writers;

static void fork_drop(bm__store_t *st) {
  /* The process's descriptors of it; the OFD (and its lock) stays with the other process. */
  if (st->cfd >= 0) close(st->cfd);
  if (st->lfd >= 0) close(st->lfd);
  if (st->src != NULL && st->src->fd >= 0) close(st->src->fd), st->src->fd = -1;
  st->cfd = st->lfd = -1;
  st->locked = st->readlocked = 0;
  st->given_away = 1;
}

static void fork_prepare(void) { pthread_mutex_lock(&fork_lock); }
static void fork_parent(void) {
  bm__store_t *st;
  for (st = fork_writers; st != NULL; st = st->next)
    if (st->handoff) fork_drop(st);
  pthread_mutex_unlock(&fork_lock);
}
static void fork_child(void) {
  bm__store_t *st;
  for (st = fork_writers; st != NULL; st = st->next)
    if (!st->handoff) fork_drop(st);
    else st->handoff = 0;
  pthread_mutex_unlock(&fork_lock);
}
static void fork_init(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static void writers_add(bm__store_t *st) {
  pthread_once(&fork_once, fork_init);
  pthread_mutex_lock(&fork_lock);
  st->next = fork_writers;
  fork_writers = st;
  pthread_mutex_unlock(&fork_lock);
}

static void writers_remove(bm__store_t *st) {
  bm__store_t **p;
  pthread_mutex_lock(&fork_lock);
  for (p = &fork_writers; *p != NULL; p = &(*p)->next)
    if (*p == st) {
      *p = st->next;
      break;
    }
  pthread_mutex_unlock(&fork_lock);
}

int bm__store_handoff(bm__store_t *st) {
  if (!st->writer || st->given_away) return BM_EINVAL;
  pthread_mutex_lock(&fork_lock);
  st->handoff = 1;
  pthread_mutex_unlock(&fork_lock);
  return 0;
}

int bm__store_given_away(bm__store_t *st) { return st->given_away; }

/* ---- Small things. */

static void put64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static void put32(unsigned char *p, uint32_t v) {
  int i;
  for (i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Which fallbacks the tests force (BULKMAP_TEST_FALLBACK=tmpfile,proclink,renameat2). */
static int forced(const char *what) {
  const char *v = getenv("BULKMAP_TEST_FALLBACK");
  return v != NULL && strstr(v, what) != NULL;
}

/* 128 random bits as 32 hex digits. */
static int random_hex(char out[33]) {
  unsigned char b[16];
  size_t got = 0;
  int i;
#ifdef SYS_getrandom
  while (got < sizeof(b)) {
    long k = syscall(SYS_getrandom, b + got, sizeof(b) - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
#endif
  if (got < sizeof(b)) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bm__posix_error(errno);
    while (got < sizeof(b)) {
      ssize_t k = read(fd, b + got, sizeof(b) - got);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      got += (size_t)k;
    }
    close(fd);
    if (got < sizeof(b)) return bm__set_os_error(EIO), BM_EIO;
  }
  for (i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
  return 0;
}

static int rename_noreplace(int dfd, const char *from, int tfd, const char *to) {
#ifdef SYS_renameat2
  if (!forced("renameat2")) return (int)syscall(SYS_renameat2, dfd, from, tfd, to, RENAME_NOREPLACE);
#endif
  errno = ENOSYS;
  return -1;
}

void bm__posix_comp_name(char *buf, size_t n, const char *name) {
  snprintf(buf, n, COMP_PREFIX "%s", name);
}

static void keep_name(char *buf, size_t n, const char *name, const char *keep) {
  snprintf(buf, n, COMP_PREFIX "%s#%s", name, keep);
}

/* An anonymous file in directory dfd (O_TMPFILE); where the file system or kernel has none,
 * a file with 128 random bits in its name, whose name goes back into tmp (else ""). */
int bm__posix_anon_open(int dfd, unsigned mode, char *tmp, size_t n) {
  int fd;
  tmp[0] = '\0';
  if (!forced("tmpfile")) {
    fd = bm__sys_openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
    if (fd >= 0) return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
      return bm__posix_error(errno);
  }
  for (;;) {
    char hex[33];
    int r = random_hex(hex);
    if (r != 0) return r;
    snprintf(tmp, n, COMP_PREFIX "tmp#%s", hex);
    fd = bm__sys_openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd >= 0) return fd;
    if (errno != EEXIST) {
      tmp[0] = '\0';
      return bm__posix_error(errno);
    }
  }
}

/* Gives the file fd (anonymous, or named tmp in dfd) the name `to` in dfd, exclusively
 * (EEXIST when taken; nothing is ever created through a link someone planted). */
static int give_name(int fd, int dfd, const char *tmp, const char *to) {
  char proc[64];
  if (tmp != NULL && tmp[0] != '\0') return linkat(dfd, tmp, dfd, to, 0);
  if (!forced("proclink")) {
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dfd, to, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != ENOENT && errno != ENOTDIR) return -1;
  }
  /* No /proc: AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH). */
  return linkat(fd, "", dfd, to, AT_EMPTY_PATH);
}

/* Removes dfd/name only while it is (dev, ino): moved aside under a random name, checked
 * there, unlinked; another object found there is put back. */
int bm__posix_unlink_identity(int dfd, const char *name, uint64_t dev, uint64_t ino) {
  char aside[BM_PATH_MAX + 64], hex[33];
  const char *slash = strrchr(name, '/');
  struct stat st;
  int r, flags;
  if (bm__sys_fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return bm__posix_error(errno);
  if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) return bm__set_os_error(0), BM_EREPLACED;
  flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  if ((r = random_hex(hex)) != 0) return r;
  /* Beside the name, in its own directory (name may be a path). */
  snprintf(aside, sizeof(aside), "%.*s" COMP_PREFIX "rm#%s", slash != NULL ? (int)(slash - name + 1) : 0,
           name, hex);
  if (rename_noreplace(dfd, name, dfd, aside) != 0) {
    if (errno != EINVAL && errno != ENOSYS) return bm__posix_error(errno);
    /* No RENAME_NOREPLACE: unlink what was judged a moment ago. */
    if (bm__sys_unlinkat(dfd, name, flags) != 0)
      return errno == ENOTEMPTY || errno == EEXIST ? (bm__set_os_error(errno), BM_EISDIR) : bm__posix_error(errno);
    return 0;
  }
  if (bm__sys_fstatat(dfd, aside, &st, AT_SYMLINK_NOFOLLOW) == 0 && (uint64_t)st.st_dev == dev &&
      (uint64_t)st.st_ino == ino) {
    int e;
    if (bm__sys_unlinkat(dfd, aside, flags) == 0) return 0;
    e = errno;
    rename_noreplace(dfd, aside, dfd, name); /* nothing hidden: back where it was */
    if (e == ENOTEMPTY || e == EEXIST) return bm__set_os_error(e), BM_EISDIR;
    return bm__posix_error(e);
  }
  rename_noreplace(dfd, aside, dfd, name);
  return bm__set_os_error(0), BM_EREPLACED;
}

/* ---- Records. */

/* Encodes r and its compact layout into buf (rec_size bytes). */
static size_t rec_size(size_t blob_n) { return BM_TRAILER_SIZE + EXT_FIXED + blob_n + 8; }

static size_t rec_encode(const rec_t *r, const unsigned char *blob, size_t blob_n, unsigned char *buf) {
  unsigned char *e = buf + BM_TRAILER_SIZE;
  size_t n = rec_size(blob_n);
  bm__trailer_encode(buf, &r->t);
  memset(e, 0, EXT_FIXED);
  memcpy(e, EXT_MAGIC, 8);
  put32(e + 8, (uint32_t)r->kind);
  put32(e + 12, (uint32_t)n);
  put64(e + 16, r->dev);
  put64(e + 24, r->ino);
  put64(e + 32, r->prev);
  /* flags: 1 the source's stability is recorded, 2 it was under a read lease throughout */
  put32(e + 40, (r->t.source_stable < 0 ? 0u : 1u | (r->t.source_stable > 0 ? 2u : 0u)) |
                    (r->bound ? 4u : 0u));
  put32(e + 44, (uint32_t)blob_n); /* the compact layout (src/format.c), after the fixed part */
  memcpy(e + 48, r->keep, strnlen(r->keep, 39));
  memcpy(e + 88, r->place, strnlen(r->place, 255));
  if (blob_n > 0 && blob != buf + BLOB_AT) memcpy(buf + BLOB_AT, blob, blob_n);
  put64(buf + n - 8, bm__xxh3_64(buf, n - 8));
  return n;
}

static int rec_decode(const unsigned char *buf, size_t n, rec_t *r) {
  const unsigned char *e = buf + BM_TRAILER_SIZE;
  size_t len;
  int err;
  if (n < BM_TRAILER_SIZE + EXT_FIXED + 8) return BM_ECORRUPT;
  len = get32(e + 12);
  if (len != n || memcmp(e, EXT_MAGIC, 8) != 0 || rec_size(get32(e + 44)) != n) return BM_ECORRUPT;
  if (get64(buf + n - 8) != bm__xxh3_64(buf, n - 8)) return BM_ECORRUPT;
  memset(r, 0, sizeof(*r));
  if ((err = bm__trailer_decode(buf, (uint64_t)1 << 62, &r->t)) != 0) return BM_ECORRUPT;
  r->kind = (int)get32(e + 8);
  r->dev = get64(e + 16);
  r->ino = get64(e + 24);
  r->prev = get64(e + 32);
  r->len = (uint32_t)n;
  r->blob_n = get32(e + 44);
  r->t.source_stable = (get32(e + 40) & 1u) ? (get32(e + 40) & 2u) != 0 : -1;
  r->bound = (get32(e + 40) & 4u) != 0;
  memcpy(r->keep, e + 48, 39);
  memcpy(r->place, e + 88, 255);
  if (r->kind != KIND_CURRENT && r->kind != KIND_PENDING) return BM_ECORRUPT;
  if (r->keep[0] != '\0' && strspn(r->keep, "0123456789abcdef") != 32) return BM_ECORRUPT;
  return 0;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return bm__posix_error(errno);
    if (k == 0) return BM_ECORRUPT;
    got += (size_t)k;
  }
  return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
  size_t put = 0;
  while (put < n) {
    ssize_t k = pwrite(fd, (const char *)buf + put, n - put, (off_t)(off + put));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return errno == ENOSPC || errno == EFBIG ? (bm__set_os_error(errno), BM_ENOSPC)
                                                       : bm__posix_error(errno);
    put += (size_t)k;
  }
  return 0;
}

static uint32_t slot_check(const unsigned char *s) { return (uint32_t)bm__xxh3_64(s, 20); }

/* Reads the record at off of length len. */
static int rec_read_at(int cfd, uint64_t off, size_t len, rec_t *r) {
  unsigned char *buf;
  int err;
  if (len == 0) {
    /* Its length is in its extension (a previous record, named by offset only). */
    unsigned char l4[4];
    if ((err = pread_all(cfd, l4, 4, off + BM_TRAILER_SIZE + 12)) != 0) return err;
    len = get32(l4);
  }
  if (len < BM_TRAILER_SIZE + EXT_FIXED + 8 || len > REC_MAX) return BM_ECORRUPT;
  if ((buf = malloc(len)) == NULL) return BM_ENOMEM;
  err = pread_all(cfd, buf, len, off);
  if (err == 0) err = rec_decode(buf, len, r);
  if (err == 0) r->off = off;
  free(buf);
  return err;
}

/* The record the newest valid slot names, and its seq. */
static int rec_read_last(int cfd, rec_t *r, uint64_t *seqp) {
  unsigned char h[COMP_HEAD];
  int tries, err = BM_ECORRUPT;
  for (tries = 0; tries < 100; tries++) {
    int best = -1, i;
    uint64_t seq[2];
    if ((err = pread_all(cfd, h, sizeof(h), 0)) != 0) {
      if (err != BM_ECORRUPT) return err;
    } else if (memcmp(h, COMP_MAGIC, 8) != 0) {
      return BM_ECORRUPT;
    } else {
      for (i = 0; i < 2; i++) {
        const unsigned char *s = h + 16 + 24 * i;
        seq[i] = get64(s);
        if (seq[i] != 0 && get32(s + 20) == slot_check(s) && (best < 0 || seq[i] > seq[(size_t)best])) best = i;
      }
      if (best >= 0) {
        const unsigned char *s = h + 16 + 24 * best;
        err = rec_read_at(cfd, get64(s + 8), get32(s + 16), r);
        if (err == 0) {
          if (seqp != NULL) *seqp = seq[best];
          return 0;
        }
        if (err != BM_ECORRUPT) return err;
      }
    }
    /* A slot being written: look again in a moment. */
    {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
  }
  return err;
}

/* Appends r (at the companion's end) and points the next slot at it. */
static int rec_append(bm__store_t *st, rec_t *r) {
  unsigned char *buf, s[24];
  struct stat sb;
  size_t n, blob_n = r->t.state == BM_STATE_READY ? st->blob_n : 0;
  uint64_t off;
  int err;
  if (bm__sys_fstat(st->cfd, &sb) != 0) return bm__posix_error(errno);
  off = (uint64_t)sb.st_size < COMP_HEAD ? COMP_HEAD : (uint64_t)sb.st_size;
  if (rec_size(blob_n) > REC_MAX) return BM_EOVERFLOW;
  if ((buf = malloc(rec_size(blob_n))) == NULL) return BM_ENOMEM;
  if (st->blob == NULL && r->blob_n > 0 && r->off != 0) {
    /* A record written again (a replace finished or undone): its layout comes along. */
    blob_n = r->blob_n;
    free(buf);
    if ((buf = malloc(rec_size(blob_n))) == NULL) return BM_ENOMEM;
    if ((err = pread_all(st->cfd, buf + BLOB_AT, blob_n, r->off + BLOB_AT)) != 0) {
      free(buf);
      return err;
    }
    n = rec_encode(r, buf + BLOB_AT, blob_n, buf);
  } else {
    n = rec_encode(r, st->blob, blob_n, buf);
  }
  err = pwrite_all(st->cfd, buf, n, off);
  free(buf);
  if (err != 0) return err;
  st->seq++;
  put64(s, st->seq);
  put64(s + 8, off);
  put32(s + 16, (uint32_t)n);
  put32(s + 20, slot_check(s));
  if ((err = pwrite_all(st->cfd, s, 24, 16 + 24 * (st->seq & 1))) != 0) return err;
  r->off = off;
  r->len = (uint32_t)n;
  r->blob_n = (uint32_t)blob_n;
  return 0;
}

/* ---- Judging what a companion says. */

static int lock_held(bm__store_t *st) {
  if (st->locked) return 1;
  return bm__posix_writer_held(st->cfd);
}

/* The record that is the dataset now, from the last one written: a pending replace is
 * the new generation once NAME is its bytes and its writer is gone, else the old one. */
static int rec_resolve_as(bm__store_t *st, rec_t *last, rec_t *out, int writer_gone) {
  if (last->kind == KIND_PENDING) {
    int held = writer_gone ? 0 : lock_held(st), committed = 0;
    if (held < 0) return held;
    if (!held) {
      int dfd = open(last->place, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      struct stat sb;
      if (dfd >= 0) {
        committed = fstatat(dfd, st->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                    (uint64_t)sb.st_dev == last->dev && (uint64_t)sb.st_ino == last->ino;
        close(dfd);
      }
    }
    if (committed) {
      *out = *last;
      out->kind = KIND_CURRENT;
      return 0;
    }
    return rec_read_at(st->cfd, last->prev, 0, out);
  }
  *out = *last;
  return 0;
}

static int rec_resolve(bm__store_t *st, rec_t *last, rec_t *out) {
  return rec_resolve_as(st, last, out, 0);
}

static int judge_state(bm__store_t *st, rec_t *r) {
  int held;
  if (r->t.state != BM_STATE_LOADING) return (int)r->t.state;
  held = lock_held(st);
  if (held != 0) return BM_STATE_LOADING;
  {
    /* `loading`, and the lock free now: the writer died, or it published (or failed) and
     * let the lock go between our two looks (the record comes before the unlock). The
     * record read again tells. */
    rec_t last, now;
    if (!st->writer && rec_read_last(st->cfd, &last, NULL) == 0 && rec_resolve(st, &last, &now) == 0 &&
        (now.off != r->off || now.t.state != BM_STATE_LOADING)) {
      *r = now;
      if (now.t.state != BM_STATE_LOADING) return (int)now.t.state;
    }
  }
  return BM_STATE_ABANDONED;
}

/* ---- Opening the bytes of a record. */

static int open_bytes(bm__store_t *st, const rec_t *r) {
  char kn[BM_NAME_MAX + 64];
  struct stat sb;
  struct statfs sf;
  bm_source_t *src;
  int dfd, fd;
  if (r->keep[0] == '\0' || r->ino == 0) return BM_ENOENT;
  if ((dfd = open(r->place, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return bm__posix_error(errno);
  keep_name(kn, sizeof(kn), st->name, r->keep);
  fd = bm__sys_openat(dfd, kn, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    close(dfd);
    return bm__posix_error(e);
  }
  if (bm__sys_fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_dev != r->dev ||
      (uint64_t)sb.st_ino != r->ino) {
    close(fd), close(dfd);
    return bm__set_os_error(0), BM_EREPLACED;
  }
  if ((src = bm__source_new(BM__SRC_SECTION, BM_FILE_READ)) == NULL) {
    close(fd), close(dfd);
    return BM_ENOMEM;
  }
  src->fd = fd;
  src->size = (uint64_t)sb.st_size;
  src->dev = r->dev;
  src->ino = r->ino;
  if (fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)HUGETLBFS_MAGIC) {
    src->hugetlb = 1;
    src->granularity = src->page_size = (size_t)sf.f_bsize;
  }
  /* What the pages are is in the record (the writer probed them): no mapping and no
   * /proc/self/smaps read at open. */
  src->large = r->t.large;
  src->large.requested = BM_LARGE_OFF;
  if (!src->hugetlb && r->t.large.transparent && r->t.large.page_size > src->page_size) {
    src->thp = 1;
    src->granularity = src->page_size = (size_t)r->t.large.page_size;
  }
  snprintf(src->path, sizeof(src->path), "%.255s/%s", r->place, st->name);
  if (st->pfd >= 0) close(st->pfd);
  st->pfd = dfd;
  bm_source_close(st->src);
  st->src = src;
  return 0;
}

/* ---- The store. */

static bm__store_t *store_new(const char *name) {
  bm__store_t *st = calloc(1, sizeof(*st));
  if (st == NULL) return NULL;
  snprintf(st->name, sizeof(st->name), "%s", name);
  st->shm = st->cfd = st->pfd = st->lfd = -1;
  return st;
}

void bm__store_close(bm__store_t *st) {
  if (st == NULL) return;
  if (st->writer) writers_remove(st);
  bm_source_close(st->src);
  if (st->cfd >= 0) close(st->cfd); /* the lock goes with it */
  if (st->lfd >= 0) close(st->lfd);
  if (st->pfd >= 0) close(st->pfd);
  if (st->shm >= 0) close(st->shm);
  free(st->blob);
  free(st);
}

bm_source_t *bm__store_source(bm__store_t *st) { return st->src; }

static int open_shm(bm__store_t *st) {
  st->shm = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return st->shm < 0 ? bm__posix_error(errno) : 0;
}

/* Opens the companion (write: for a writer or remover) and checks what it is. */
static int comp_open(bm__store_t *st, int write) {
  char cn[BM_NAME_MAX + 16];
  struct stat sb;
  bm__posix_comp_name(cn, sizeof(cn), st->name);
  st->cfd = bm__sys_openat(st->shm, cn, (write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (st->cfd < 0) {
    int e = errno;
    if (e == ELOOP || e == ENXIO) return bm__set_os_error(e), BM_ENOTDATASET;
    if (write && e == EACCES) {
      /* Another user's dataset (its metadata is writable by its owner only): EPERM, as
       * for any object one may not remove; else the OS's word. */
      struct stat ob;
      if (fstatat(st->shm, cn, &ob, AT_SYMLINK_NOFOLLOW) == 0 && ob.st_uid != geteuid())
        return bm__set_os_error(e), BM_EPERM;
    }
    return bm__posix_error(e);
  }
  if (bm__sys_fstat(st->cfd, &sb) != 0) return bm__posix_error(errno);
  if (!S_ISREG(sb.st_mode)) return bm__set_os_error(0), BM_ENOTDATASET;
  st->cdev = (uint64_t)sb.st_dev;
  st->cino = (uint64_t)sb.st_ino;
  return 0;
}

/* Takes the writer lock (BM_EBUSY when a writer lives) and checks that the companion is
 * still the name's (a remover may have taken it away meanwhile). */
static int comp_lock(bm__store_t *st) {
  char cn[BM_NAME_MAX + 16];
  struct stat sb;
  int r = bm__posix_writer_lock(st->cfd, F_WRLCK);
  if (r == BM_EAGAIN || r == BM_EACCES) {
    /* Refused: by a live writer's write lock (busy), or only by read locks, which anyone
     * who may read the metadata can take and which say nothing of a writer: those never
     * stop the owner (it goes on without the lock; docs/datasets.md). */
    if (bm__posix_writer_held(st->cfd) != 0) return bm__set_os_error(EWOULDBLOCK), BM_EBUSY;
    st->readlocked = 1;
    r = 0;
  } else if (r != 0) {
    return r;
  } else {
    st->locked = 1;
  }
  bm__posix_comp_name(cn, sizeof(cn), st->name);
  if (bm__sys_fstatat(st->shm, cn, &sb, AT_SYMLINK_NOFOLLOW) != 0 || (uint64_t)sb.st_dev != st->cdev ||
      (uint64_t)sb.st_ino != st->cino)
    return bm__set_os_error(0), BM_EBUSY;
  return 0;
}

static void comp_unlock(bm__store_t *st) {
  if (!st->locked) return;
  futimens(st->cfd, NULL); /* an IN_ATTRIB for waiters */
  bm__posix_writer_lock(st->lfd >= 0 ? st->lfd : st->cfd, F_UNLCK);
  st->locked = 0;
}

/* Whether the metadata under the companion's name is still the one we hold open: 1 yes,
 * 0 gone or another one, or a negative BM_E* code when the OS could not say. */
static int comp_still_ours(bm__store_t *st) {
  char cn[BM_NAME_MAX + 16];
  struct stat sb;
  bm__posix_comp_name(cn, sizeof(cn), st->name);
  if (bm__sys_fstatat(st->shm, cn, &sb, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? 0 : bm__posix_error(errno);
  return (uint64_t)sb.st_dev == st->cdev && (uint64_t)sb.st_ino == st->cino;
}

/* Everything a record names, taken away (NAME only while it is the record's bytes). */
static void remove_record_objects(bm__store_t *st, const rec_t *r, int with_name) {
  char kn[BM_NAME_MAX + 64];
  int dfd;
  if (r->place[0] == '\0' || (dfd = open(r->place, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return;
  if (with_name && r->ino != 0) bm__posix_unlink_identity(dfd, st->name, r->dev, r->ino);
  if (r->keep[0] != '\0') {
    keep_name(kn, sizeof(kn), st->name, r->keep);
    bm__sys_unlinkat(dfd, kn, 0);
  }
  close(dfd);
}

/* Finishes what a dead replacer left between its two renames (the lock is ours). */
static int finish_pending(bm__store_t *st, rec_t *last) {
  rec_t now;
  int err;
  if (last->kind != KIND_PENDING) return 0;
  /* The lock is ours now: the writer of the pending record is gone. */
  if ((err = rec_resolve_as(st, last, &now, 1)) != 0) return err;
  if (now.off == last->off) {
    /* Committed: the old generation's keep link goes. */
    rec_t old;
    if (rec_read_at(st->cfd, last->prev, 0, &old) == 0)
      remove_record_objects(st, &old, 0);
  } else {
    remove_record_objects(st, last, 0);
  }
  now.kind = KIND_CURRENT;
  now.prev = 0;
  if ((err = rec_append(st, &now)) != 0) return err;
  *last = now;
  return 0;
}

/* The place a dataset of opts goes to, or went to (replace). */
static int store_make_bytes(bm__store_t *st, const bm_section_opts_t *so, bm_large_t *outcome) {
  bm_source_t *src = bm__source_new(BM__SRC_SECTION, BM_FILE_WRITE);
  int err;
  if (src == NULL) return BM_ENOMEM;
  src->large = *outcome;
  err = bm__posix_data_create(src, so, outcome, &st->pfd, st->cur.place, sizeof(st->cur.place));
  if (err != 0) {
    free(src);
    return err;
  }
  src->large = *outcome;
  snprintf(src->path, sizeof(src->path), "%.255s/%s", st->cur.place, st->name);
  st->src = src;
  st->cur.dev = src->dev;
  st->cur.ino = src->ino;
  return 0;
}

int bm__store_create(bm__store_t **out, const char *name, const bm_section_opts_t *so_in,
                     int replace, const bm__trailer_t *t, bm_large_t *outcome) {
  bm_section_opts_t so = *so_in;
  bm__store_t *st;
  char cn[BM_NAME_MAX + 16], tmp[80];
  unsigned mode = so.mode != 0 ? so.mode : 0600;
  int err;

  *out = NULL;
  if ((st = store_new(name)) == NULL) return BM_ENOMEM;
  st->writer = 1;
  writers_add(st);
  st->cur.t = *t;
  st->cur.kind = KIND_CURRENT;
  if ((err = open_shm(st)) != 0) goto fail;
  bm__posix_comp_name(cn, sizeof(cn), name);

  if (replace && (err = comp_open(st, 1)) != BM_ENOENT) {
    rec_t last;
    struct stat sb;
    if (err != 0) goto fail;
    if (bm__sys_fstat(st->cfd, &sb) != 0) {
      err = bm__posix_error(errno);
      goto fail;
    }
    if (sb.st_uid != geteuid() && geteuid() != 0) {
      err = (bm__set_os_error(EPERM), BM_EPERM);
      goto fail;
    }
    if ((err = comp_lock(st)) != 0) goto fail;
    if ((err = rec_read_last(st->cfd, &last, &st->seq)) != 0) goto fail;
    if ((err = finish_pending(st, &last)) != 0) goto fail;
    st->old = last;
    st->have_old = last.ino != 0;
    if (st->have_old) {
      /* A replace keeps the place: the bytes are swapped under NAME there. */
      struct statfs sf;
      int huge = statfs(last.place, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)HUGETLBFS_MAGIC;
      if ((huge && so.large == BM_LARGE_OFF) || (!huge && so.large == BM_LARGE_ON)) {
        outcome->reason = huge ? BM_REASON_NOT_REQUESTED : BM_REASON_NO_MOUNT;
        err = (bm__set_os_error(0), BM_EPLACE);
        goto fail;
      }
      so.large = huge ? BM_LARGE_ON : BM_LARGE_OFF;
      so.mount = huge ? last.place : NULL;
    }
    if ((err = store_make_bytes(st, &so, outcome)) != 0) goto fail;
    if (st->have_old) {
      /* The new generation keeps the old one's mode and group unless given. */
      struct stat ob;
      char kn[BM_NAME_MAX + 64];
      int dfd = open(last.place, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      keep_name(kn, sizeof(kn), name, last.keep);
      if (dfd >= 0 && fstatat(dfd, kn, &ob, AT_SYMLINK_NOFOLLOW) == 0) {
        if (so_in->group == NULL && ob.st_gid != getegid()) fchown(st->src->fd, (uid_t)-1, ob.st_gid);
        if (so_in->mode == 0) fchmod(st->src->fd, ob.st_mode & 0777);
      }
      if (dfd >= 0) close(dfd);
    }

    st->cur.t.large = *outcome;
    st->cur.t.page_size = outcome->obtained ? outcome->page_size : bm_page_size();
    *out = st;
    return 0;
  }
  if (replace && st->cfd < 0) bm__set_os_error(0);

  /* A new dataset: the claim first (exclusive, in /dev/shm whatever the place), made
   * whole and locked before it has its name. */
  st->cfd = bm__posix_anon_open(st->shm, 0600, tmp, sizeof(tmp));
  if (st->cfd < 0) {
    err = st->cfd;
    st->cfd = -1;
    goto fail;
  }
  if ((err = bm__posix_writer_lock(st->cfd, F_WRLCK)) != 0) goto fail_tmp;
  st->locked = 1;
  {
    unsigned char h[COMP_HEAD];
    memset(h, 0, sizeof(h));
    memcpy(h, COMP_MAGIC, 8);
    if ((err = pwrite_all(st->cfd, h, sizeof(h), 0)) != 0) goto fail_tmp;
  }
  st->cur.t.state = BM_STATE_LOADING;
  st->cur.place[0] = '\0';
  if ((err = rec_append(st, &st->cur)) != 0) goto fail_tmp;
  if (so.group != NULL) {
    gid_t gid;
    if ((err = bm__posix_resolve_group(so.group, &gid)) != 0) goto fail_tmp;
    if (bm__sys_fchown(st->cfd, (uid_t)-1, gid) != 0) {
      err = bm__posix_error(errno);
      goto fail_tmp;
    }
  }
  /* Readable by whom the bytes are, never writable by anyone but the owner. */
  if (bm__sys_fchmod(st->cfd, (mode_t)((mode & 0644u) | 0600u)) != 0) {
    err = bm__posix_error(errno);
    goto fail_tmp;
  }
  if (give_name(st->cfd, st->shm, tmp, cn) != 0) {
    err = errno == EEXIST ? (bm__set_os_error(EEXIST), BM_EEXIST) : bm__posix_error(errno);
    goto fail_tmp;
  }
  if (tmp[0] != '\0') bm__sys_unlinkat(st->shm, tmp, 0);
  {
    struct stat sb, nb;
    int nfd;
    memset(&nb, 0, sizeof(nb));
    if (bm__sys_fstat(st->cfd, &sb) != 0) {
      /* Named already: what is ours under the name is found by its descriptor. */
      err = bm__posix_error(errno);
      bm__sys_unlinkat(st->shm, cn, 0);
      goto fail;
    }
    st->cdev = (uint64_t)sb.st_dev;
    st->cino = (uint64_t)sb.st_ino;
    /* From now on written through its name; the lock stays where it was taken. */
    nfd = bm__sys_openat(st->shm, cn, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (nfd < 0) {
      err = bm__posix_error(errno);
      goto fail_claimed;
    }
    if (bm__sys_fstat(nfd, &nb) != 0 || nb.st_ino != sb.st_ino || nb.st_dev != sb.st_dev) {
      err = nb.st_ino == 0 && errno != 0 ? bm__posix_error(errno) : (bm__set_os_error(0), BM_EREPLACED);
      close(nfd);
      goto fail_claimed;
    }
    st->lfd = st->cfd;
    st->cfd = nfd;
  }
  so.mode = mode;
  if ((err = store_make_bytes(st, &so, outcome)) != 0) goto fail_claimed;
  {
    /* NAME in the place is anyone's first: one there already (a file of another program,
     * or a dataset of the previous layout) is in the way. */
    struct stat sb;
    if (bm__sys_fstatat(st->pfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
      err = (bm__set_os_error(EEXIST), BM_EEXIST);
      goto fail_claimed;
    }
  }
  st->cur.t.large = *outcome;
  st->cur.t.page_size = outcome->obtained ? outcome->page_size : bm_page_size();
  if ((err = random_hex(st->cur.keep)) != 0) goto fail_claimed;
  /* The bytes are anonymous until publish: a writer killed now leaves only the claim,
   * judged abandoned (its lock is free), which rm --abandoned takes away. */
  if ((err = rec_append(st, &st->cur)) != 0) goto fail_claimed;
  *out = st;
  return 0;

fail_tmp:
  if (tmp[0] != '\0') bm__sys_unlinkat(st->shm, tmp, 0);
  goto fail;
fail_claimed: {
    /* The cleanup's own OS errors are not the caller's: the first failure's is kept. */
    int os = bm_last_os_error();
    bm__posix_unlink_identity(st->shm, cn, st->cdev, st->cino);
    bm__set_os_error(os);
  }
fail:
  bm__store_close(st);
  return err;
}

int bm__store_record(bm__store_t *st, const bm__trailer_t *t) {
  rec_t r;
  if (!st->writer) return BM_EINVAL;
  if (st->have_old || (st->published && t->state != BM_STATE_READY)) return 0; /* a replace records at publish only */
  r = st->cur;
  r.t = *t;
  r.kind = KIND_CURRENT;
  if (t->state == BM_STATE_FAILED && !st->published) {
    /* Nothing of a failed generation stays but the record. */
    r.dev = r.ino = 0;
    r.keep[0] = '\0';
  }
  return rec_append(st, &r);
}

int bm__store_publish(bm__store_t *st, const bm__trailer_t *t) {
  char kn[BM_NAME_MAX + 64], tn[BM_NAME_MAX + 64], hex[33];
  const char *tmp = st->src->gen_name;
  rec_t r;
  int err;
  if (!st->writer || st->src == NULL) return BM_EINVAL;
  if (!st->locked && !st->readlocked) return bm__set_os_error(0), BM_EBUSY;
  if (st->cur.keep[0] == '\0' && (err = random_hex(st->cur.keep)) != 0) return err;
  keep_name(kn, sizeof(kn), st->name, st->cur.keep);
  if (give_name(st->src->fd, st->pfd, tmp, kn) != 0) return bm__posix_error(errno);
  r = st->cur;
  r.t = *t;
  if (!st->have_old) {
    /* NAME appears with the whole bytes; the record says ready right after. */
    if (give_name(st->src->fd, st->pfd, tmp, st->name) != 0) {
      err = errno == EEXIST ? (bm__set_os_error(EEXIST), BM_EEXIST) : bm__posix_error(errno);
      bm__sys_unlinkat(st->pfd, kn, 0);
      return err;
    }
  } else {
    /* The pending record first, then NAME swapped in one rename (plain readers see the
     * old bytes or the new, never ENOENT), then the new record current. */
    r.kind = KIND_PENDING;
    r.prev = st->old.off;
    if ((err = rec_append(st, &r)) != 0) goto undo_keep;
    if ((err = random_hex(hex)) != 0) goto undo_pending;
    keep_name(tn, sizeof(tn), st->name, hex);
    if (give_name(st->src->fd, st->pfd, tmp, tn) != 0) {
      err = bm__posix_error(errno);
      goto undo_pending;
    }
    if (renameat(st->pfd, tn, st->pfd, st->name) != 0) {
      err = bm__posix_error(errno);
      bm__sys_unlinkat(st->pfd, tn, 0);
      goto undo_pending;
    }
    r.kind = KIND_CURRENT;
    r.prev = 0;
  }
  if ((err = rec_append(st, &r)) != 0) {
    if (!st->have_old) {
      bm__posix_unlink_identity(st->pfd, st->name, st->cur.dev, st->cur.ino);
      bm__sys_unlinkat(st->pfd, kn, 0);
    }
    return err; /* a replace past its rename is done: the pending record says so */
  }
  if (tmp[0] != '\0') bm__sys_unlinkat(st->pfd, tmp, 0), st->src->gen_name[0] = '\0';
  if (!st->have_old && (err = comp_still_ours(st)) != 1) {
    /* A forced remove took the metadata away while we published (it does not wait for the
     * writer): our NAME would be bytes nobody can judge. Taken away again; the remover,
     * for its part, looks at the record once more after it (store_remove), so whichever
     * looks last removes NAME. (The OS could not say: taken away too, and its error.) */
    int os = bm_last_os_error();
    bm__posix_unlink_identity(st->pfd, st->name, r.dev, r.ino);
    bm__sys_unlinkat(st->pfd, kn, 0);
    comp_unlock(st);
    if (err < 0) return bm__set_os_error(os), err;
    return bm__set_os_error(0), BM_ENOENT;
  }
  if (st->have_old) remove_record_objects(st, &st->old, 0);
  st->cur = r;
  st->published = 1;
  comp_unlock(st);
  return 0;

undo_pending:
  {
    rec_t back = st->old;
    back.kind = KIND_CURRENT;
    rec_append(st, &back);
  }
undo_keep:
  bm__sys_unlinkat(st->pfd, kn, 0);
  return err;
}

int bm__store_open(bm__store_t **out, const char *name, bm__trailer_t *t, int *state) {
  bm__store_t *st;
  int err, tries;
  *out = NULL;
  if ((st = store_new(name)) == NULL) return BM_ENOMEM;
  if ((err = open_shm(st)) != 0 || (err = comp_open(st, 0)) != 0) {
    bm__store_close(st);
    return err;
  }
  /* A replace or remove between reading the record and opening its bytes: read again. */
  for (tries = 0;; tries++) {
    rec_t last;
    if ((err = rec_read_last(st->cfd, &last, NULL)) != 0 || (err = rec_resolve(st, &last, &st->cur)) != 0)
      break;
    *state = judge_state(st, &st->cur);
    *t = st->cur.t;
    if (st->cur.ino == 0 || *state != BM_STATE_READY) {
      /* Loading (the bytes are anonymous), failed or abandoned: nothing to map. */
      err = 0;
      break;
    }
    err = open_bytes(st, &st->cur);
    if (err == 0 || (err != BM_ENOENT && err != BM_EREPLACED) || tries == 50) break;
    {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
  if (err != 0) {
    bm__store_close(st);
    return err;
  }
  *out = st;
  return 0;
}

int bm__store_reread(bm__store_t *st, bm__trailer_t *t, int *state) {
  rec_t last, now;
  int err;
  if (st->writer) {
    *t = st->cur.t;
    *state = (int)st->cur.t.state;
    return 0;
  }
  if ((err = rec_read_last(st->cfd, &last, NULL)) != 0 || (err = rec_resolve(st, &last, &now)) != 0)
    return err;
  /* A reader keeps its generation: another one is not this handle's any more. */
  if (st->src != NULL && (now.ino != st->cur.ino || now.dev != st->cur.dev)) {
    *t = st->cur.t;
    *state = (int)st->cur.t.state;
    return 0;
  }
  *state = judge_state(st, &now); /* may read the record again: judged first */
  if (st->src != NULL && (now.ino != st->cur.ino || now.dev != st->cur.dev)) {
    *t = st->cur.t;
    *state = (int)st->cur.t.state;
    return 0;
  }
  st->cur = now;
  *t = now.t;
  return 0;
}

const char *bm__store_place(bm__store_t *st) { return st->cur.place; }

/* Removes the dataset NAME: its bytes' names, keep links and companion. own: only while the
 * companion is (cdev, cino). force: also while a writer lives. */
static int store_remove(bm__store_t *st, int force) {
  char cn[BM_NAME_MAX + 16];
  rec_t last, cur;
  int err;
  if (!st->locked && !st->readlocked) {
    err = comp_lock(st);
    if (err == BM_EBUSY && !force) return err;
    if (err != 0 && err != BM_EBUSY) return err;
  }
  bm__posix_comp_name(cn, sizeof(cn), st->name);
  if (rec_read_last(st->cfd, &last, NULL) == 0) {
    if (last.kind == KIND_PENDING) {
      rec_t old;
      remove_record_objects(st, &last, 1);
      if (rec_read_at(st->cfd, last.prev, 0, &old) == 0)
        remove_record_objects(st, &old, 1);
    } else {
      cur = last;
      remove_record_objects(st, &cur, 1);
    }
  }
  /* A writer's own generation not published yet has no names. */
  if (st->writer && st->src != NULL && !st->published && st->src->gen_name[0] != '\0' && st->pfd >= 0)
    bm__sys_unlinkat(st->pfd, st->src->gen_name, 0);
  err = bm__posix_unlink_identity(st->shm, cn, st->cdev, st->cino);
  /* Forced past a live writer: it may have published between our look at the record and
   * the metadata's going. What the record says now goes too (the writer, for its part,
   * checks the metadata after it publishes: bm__store_publish). */
  if (err == 0 && force && rec_read_last(st->cfd, &last, NULL) == 0 && last.kind == KIND_CURRENT)
    remove_record_objects(st, &last, 1);
  comp_unlock(st);
  return err;
}

int bm__store_remove(bm__store_t *st) {
  if (st->cfd < 0) return BM_EINVAL;
  if (!st->writer) return BM_EINVAL;
  if (st->have_old && !st->published) {
    /* A replace that never published: its generation was anonymous, the old one stays. */
    comp_unlock(st);
    return 0;
  }
  return store_remove(st, 1);
}

/* bm_section_remove of a dataset: BM_ENOENT when NAME has no companion (the caller then
 * looks for a plain section or one of the previous layout). */
int bm__store_remove_name(const char *name, int force) {
  bm__store_t *st = store_new(name);
  int err;
  if (st == NULL) return BM_ENOMEM;
  if ((err = open_shm(st)) == 0 && (err = comp_open(st, 1)) == 0) {
    struct stat sb;
    if (bm__sys_fstat(st->cfd, &sb) == 0 && sb.st_uid != geteuid() && geteuid() != 0)
      err = (bm__set_os_error(EPERM), BM_EPERM);
    else
      err = store_remove(st, force);
  }
  /* comp_open says EPERM for metadata this user may not write (another user's dataset). */
  bm__store_close(st);
  return err;
}

/* ---- Listing and reclaim: every companion in /dev/shm. */

static void fill_entry(bm__store_t *st, const struct stat *cs, bm_section_info_t *si) {
  struct passwd pw, *pwr = NULL;
  char pwbuf[1024];
  rec_t last;
  memset(si, 0, sizeof(*si));
  snprintf(si->name, sizeof(si->name), "%s", st->name);
  si->uid = (uint32_t)cs->st_uid;
  si->mine = cs->st_uid == geteuid();
  si->mode = (unsigned)cs->st_mode & 0777u;
  if (getpwuid_r(cs->st_uid, &pw, pwbuf, sizeof(pwbuf), &pwr) == 0 && pwr != NULL)
    snprintf(si->owner, sizeof(si->owner), "%s", pwr->pw_name);
  else
    snprintf(si->owner, sizeof(si->owner), "%lu", (unsigned long)cs->st_uid);
  snprintf(si->type, sizeof(si->type), "file");
  si->maps = -1;
  if (st->cfd < 0) {
    si->state = BM_STATE_UNREADABLE;
    snprintf(si->place, sizeof(si->place), SHM_DIR);
    return;
  }
  if (rec_read_last(st->cfd, &last, NULL) != 0 || rec_resolve(st, &last, &st->cur) != 0) {
    si->state = BM_STATE_CORRUPT;
    snprintf(si->place, sizeof(si->place), SHM_DIR);
    return;
  }
  si->state = judge_state(st, &st->cur);
  snprintf(si->place, sizeof(si->place), "%s", st->cur.place[0] ? st->cur.place : SHM_DIR);
  si->bytes = st->cur.t.payload_size;
  si->page_size = st->cur.t.page_size;
  si->writer_pid = st->cur.t.writer_pid;
  si->created = st->cur.t.created;
  si->format = st->cur.t.format != 0 ? st->cur.t.format : BM_FORMAT_RAW;
  si->has_layout = st->cur.t.has_layout;
  si->layout = st->cur.t.layout;
  if (st->cur.ino != 0) {
    /* The mode and maps of the bytes themselves. */
    struct stat ds;
    char kn[BM_NAME_MAX + 64];
    int dfd = open(st->cur.place, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    keep_name(kn, sizeof(kn), st->name, st->cur.keep);
    if (dfd >= 0 && fstatat(dfd, kn, &ds, AT_SYMLINK_NOFOLLOW) == 0 && (uint64_t)ds.st_ino == st->cur.ino) {
      si->mode = (unsigned)ds.st_mode & 0777u;
      si->maps = bm__posix_maps_count((uint64_t)ds.st_dev, (uint64_t)ds.st_ino, (unsigned)ds.st_mode,
                                      (unsigned)ds.st_uid);
      si->retired_bytes = bm__posix_retired_bytes(st->name, (uint64_t)ds.st_dev, (uint64_t)ds.st_ino);
    }
    if (dfd >= 0) close(dfd);
  }
}

/* A companion's name: bulkmap#NAME with NAME a dataset name. */
static int comp_entry(const char *d_name, const char **name) {
  size_t k = strlen(COMP_PREFIX);
  if (strncmp(d_name, COMP_PREFIX, k) != 0) return 0;
  if (bm_name_check(d_name + k) != 0) return 0;
  *name = d_name + k;
  return 1;
}

int bm__store_list(const char *only, int (*fn)(void *arg, const bm_section_info_t *si, bm__store_t *st),
                   void *arg) {
  DIR *d;
  struct dirent *de;
  int shm, r = 0;
  if ((shm = bm__sys_open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return 0;
  if ((d = fdopendir(shm)) == NULL) {
    close(shm);
    return bm__posix_error(errno);
  }
  bm__posix_maps_begin();
  while (r == 0 && (de = readdir(d)) != NULL) {
    const char *name;
    bm__store_t *st;
    bm_section_info_t si;
    struct stat cs;
    if (!comp_entry(de->d_name, &name)) continue;
    if (only != NULL && strcmp(name, only) != 0) continue;
    if (fstatat(shm, de->d_name, &cs, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(cs.st_mode)) continue;
    if ((st = store_new(name)) == NULL) {
      r = BM_ENOMEM;
      break;
    }
    st->shm = dup(shm);
    if (comp_open(st, 0) != 0 && st->cfd >= 0) close(st->cfd), st->cfd = -1;
    fill_entry(st, &cs, &si);
    r = fn(arg, &si, st);
    bm__store_close(st);
  }
  bm__posix_maps_end();
  closedir(d);
  return r;
}

/* 1 when NAME has a companion (its bytes are listed through it, not as a plain file). */
int bm__store_exists(const char *name) {
  char p[BM_NAME_MAX + 32];
  struct stat sb;
  snprintf(p, sizeof(p), SHM_DIR "/" COMP_PREFIX "%s", name);
  return fstatat(AT_FDCWD, p, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Reclaim: datasets abandoned or failed (removed whole), replaces a dead writer left
 * between its renames (finished), keep links no companion names (removed). */
typedef struct {
  void (*done)(void *arg, const bm_section_info_t *si, uint64_t freed);
  void *arg;
} reclaim_ctx_t;

static int byte_locked(int fd, off_t at);

/* A dataset bound to a process that is gone, whose watcher was killed too. */
static int bound_orphan(bm__store_t *st, const bm_section_info_t *si) {
  rec_t last;
  return si->state == BM_STATE_READY && rec_read_last(st->cfd, &last, NULL) == 0 && last.bound &&
         byte_locked(st->cfd, 1) == 0;
}

static int reclaim_one(void *arg, const bm_section_info_t *si, bm__store_t *st) {
  reclaim_ctx_t *c = arg;
  uid_t me = geteuid();
  rec_t last;
  int orphan;
  if (st->cfd < 0 || (si->uid != (uint32_t)me && me != 0)) return 0;
  orphan = bound_orphan(st, si);
  if (si->state != BM_STATE_ABANDONED && si->state != BM_STATE_FAILED && !orphan &&
      !(rec_read_last(st->cfd, &last, NULL) == 0 && last.kind == KIND_PENDING))
    return 0;
  close(st->cfd);
  st->cfd = -1;
  if (comp_open(st, 1) != 0 || comp_lock(st) != 0) return 0; /* a writer lives after all */
  if (si->state == BM_STATE_ABANDONED || si->state == BM_STATE_FAILED || orphan) {
    bm_section_info_t x = *si;
    if (orphan) x.state = BM_STATE_ABANDONED; /* its process is gone: what it bound goes */
    if (store_remove(st, 0) == 0) c->done(c->arg, &x, x.state == BM_STATE_FAILED ? 0 : si->bytes);
  } else if (rec_read_last(st->cfd, &last, &st->seq) == 0 && finish_pending(st, &last) == 0) {
    bm_section_info_t x = *si;
    x.state = BM_STATE_ABANDONED;
    c->done(c->arg, &x, 0);
  }
  comp_unlock(st);
  return 0;
}

/* Keep links (bulkmap#NAME#<32 hex>) and fallback temporaries in a place that nothing
 * names any more. */
static void reclaim_orphans(const char *place, reclaim_ctx_t *c) {
  DIR *d;
  struct dirent *de;
  int dfd = open(place, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uid_t me = geteuid();
  if (dfd < 0) return;
  if ((d = fdopendir(dfd)) == NULL) {
    close(dfd);
    return;
  }
  while ((de = readdir(d)) != NULL) {
    char nm[BM_NAME_MAX + 1];
    const char *hash, *base = de->d_name + strlen(COMP_PREFIX);
    struct stat sb;
    bm__store_t *st;
    rec_t last;
    int orphan = 1;
    if (strncmp(de->d_name, COMP_PREFIX, strlen(COMP_PREFIX)) != 0) continue;
    hash = strrchr(base, '#');
    if (hash == NULL || strlen(hash + 1) != 32 || strspn(hash + 1, "0123456789abcdef") != 32) continue;
    if ((size_t)(hash - base) > BM_NAME_MAX || hash == base) continue;
    memcpy(nm, base, (size_t)(hash - base));
    nm[hash - base] = '\0';
    if (bm_name_check(nm) != 0) continue; /* bulkmap#tmp# / #rm# of a writer: below */
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || (sb.st_uid != me && me != 0)) continue;
    if ((st = store_new(nm)) == NULL) break;
    if (open_shm(st) == 0 && comp_open(st, 1) == 0) {
      if (lock_held(st) != 0) orphan = 0; /* a writer lives: it may be about to name it */
      else if (rec_read_last(st->cfd, &last, NULL) == 0) {
        rec_t prev;
        orphan = strcmp(last.keep, hash + 1) != 0;
        if (orphan && last.kind == KIND_PENDING &&
            rec_read_at(st->cfd, last.prev, 0, &prev) == 0)
          orphan = strcmp(prev.keep, hash + 1) != 0;
      } else {
        orphan = 0;
      }
    } else if (st->cfd < 0 && errno != ENOENT) {
      orphan = 0;
    }
    bm__store_close(st);
    if (orphan && bm__posix_unlink_identity(dirfd(d), de->d_name, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino) == 0) {
      bm_section_info_t x;
      memset(&x, 0, sizeof(x));
      snprintf(x.name, sizeof(x.name), "%s", nm);
      snprintf(x.place, sizeof(x.place), "%s", place);
      x.state = BM_STATE_ABANDONED;
      x.uid = (uint32_t)sb.st_uid;
      x.bytes = (uint64_t)sb.st_size;
      c->done(c->arg, &x, sb.st_nlink <= 1 ? (uint64_t)sb.st_size : 0);
    }
  }
  closedir(d);
}

int bm__store_reclaim(void (*done)(void *arg, const bm_section_info_t *si, uint64_t freed), void *arg) {
  reclaim_ctx_t c;
  bm_mount_t *mv;
  size_t i, nm;
  int r;
  c.done = done;
  c.arg = arg;
  r = bm__store_list(NULL, reclaim_one, &c);
  reclaim_orphans(SHM_DIR, &c);
  if (bm__posix_hugetlbfs_mounts(&mv, &nm) == 0) {
    for (i = 0; i < nm; i++) reclaim_orphans(mv[i].path, &c);
    free(mv);
  }
  return r;
}

/* For the remove_on_exit watcher: the companion's identity and what it names. */
int bm__store_identity(bm__store_t *st, uint64_t *cdev, uint64_t *cino) {
  if (st->cfd < 0) return BM_EINVAL;
  *cdev = st->cdev;
  *cino = st->cino;
  return 0;
}

/* Removes NAME's dataset if its companion is still (cdev, cino) (remove_on_exit). */
int bm__store_remove_identity(const char *name, uint64_t cdev, uint64_t cino) {
  bm__store_t *st = store_new(name);
  int err;
  if (st == NULL) return BM_ENOMEM;
  if ((err = open_shm(st)) == 0 && (err = comp_open(st, 1)) == 0) {
    if (st->cdev != cdev || st->cino != cino) err = (bm__set_os_error(0), BM_EREPLACED);
    else err = store_remove(st, 1);
  }
  bm__store_close(st);
  return err;
}

/* A write lock on byte `at` of fd's file: cmd F_OFD_GETLK (1 when some descriptor holds
 * one, 0 when none, -1 error) or F_OFD_SETLK (0 taken, -1 errno set). */
static int byte_lock(int fd, off_t at, int cmd) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = at;
  fl.l_len = 1;
#ifndef F_OFD_GETLK
  cmd = cmd == 1 ? F_GETLK : F_SETLK;
#else
  cmd = cmd == 1 ? F_OFD_GETLK : F_OFD_SETLK;
#endif
  if (fcntl(fd, cmd, &fl) != 0) return -1;
  return fl.l_type == F_WRLCK;
}

static int byte_locked(int fd, off_t at) { return byte_lock(fd, at, 1); }

/* A dataset bound to its process (remove_on_exit): the process holds a write lock on byte
 * 1 of the metadata for as long as it lives (a descriptor of its own, never closed; its
 * children share it as they share the watcher's pipe), and the record says so; a bound
 * dataset whose lock is free outlived its process (its watcher was killed too) and is
 * reclaimed by rm --abandoned. */
#define BIND_BYTE 1

/* The metadata files this process has bound already (one lock each, for its life). */
static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bound_s {
  uint64_t dev, ino;
  struct bound_s *next;
} *bound_list;

static int bound_here(uint64_t dev, uint64_t ino, int add) {
  struct bound_s *b;
  int found = 0;
  pthread_mutex_lock(&bind_lock);
  for (b = bound_list; b != NULL && !found; b = b->next) found = b->dev == dev && b->ino == ino;
  if (!found && add && (b = malloc(sizeof(*b))) != NULL) {
    b->dev = dev, b->ino = ino, b->next = bound_list;
    bound_list = b;
  }
  pthread_mutex_unlock(&bind_lock);
  return found;
}

int bm__store_remove_on_exit(bm__store_t *st) {
  char names[3][BM_NAME_MAX + 64], asides[3][40], cn[BM_NAME_MAX + 16];
  const char *dirs[3], *np[3], *ap[3];
  uint64_t dev[3], ino[3];
  rec_t r;
  int i, err, bfd, had_lock;
  if (!st->writer || st->cfd < 0 || st->pfd < 0 || st->cur.place[0] == '\0') return BM_EINVAL;
  bm__posix_comp_name(cn, sizeof(cn), st->name);
  /* The binding: a lock of this process's own on byte 1 (once per metadata file). */
  bfd = -1;
  if (bound_here(st->cdev, st->cino, 0)) goto locked;
  bfd = bm__sys_openat(st->shm, cn, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (bfd < 0) return bm__posix_error(errno);
  if (byte_lock(bfd, BIND_BYTE, 0) < 0) {
    err = bm__posix_error(errno);
    close(bfd);
    return err == BM_EAGAIN || err == BM_EACCES ? BM_EBUSY : err;
  }
  bound_here(st->cdev, st->cino, 1);
locked:
  /* The record says it is bound (under the writer lock: a replace may be under way). */
  had_lock = st->locked || st->readlocked;
  if (!had_lock && (err = comp_lock(st)) != 0) return err;
  if ((err = rec_read_last(st->cfd, &r, &st->seq)) == 0) {
    r.t.source_stable = r.t.source_stable; /* as it was */
    r.bound = 1;
    err = rec_append(st, &r);
  }
  if (!had_lock) comp_unlock(st);
  if (err != 0) return err;
  /* bfd stays open for the life of the process, on purpose (and the lock with it). */
  (void)bfd;
  dirs[0] = dirs[1] = st->cur.place;
  dirs[2] = SHM_DIR;
  snprintf(names[0], sizeof(names[0]), "%s", st->name);
  keep_name(names[1], sizeof(names[1]), st->name, st->cur.keep);
  snprintf(names[2], sizeof(names[2]), "%s", cn);
  dev[0] = dev[1] = st->cur.dev;
  ino[0] = ino[1] = st->cur.ino;
  dev[2] = st->cdev;
  ino[2] = st->cino;
  for (i = 0; i < 3; i++) {
    if ((err = random_hex(asides[i])) != 0) return err;
    np[i] = names[i];
    ap[i] = asides[i];
  }
  return bm__posix_remove_on_exit3(dirs, np, ap, dev, ino);
}

/* ---- The compact layout (src/format.c's blob) of the generation this handle has. */

int bm__store_set_layout(bm__store_t *st, unsigned char *blob, size_t n) {
  if (!st->writer) {
    free(blob);
    return BM_EINVAL;
  }
  free(st->blob);
  st->blob = blob;
  st->blob_n = n;
  return 0;
}

int bm__store_layout(bm__store_t *st, unsigned char **blob, size_t *n) {
  unsigned char *b;
  int err;
  *blob = NULL;
  *n = 0;
  if (st->writer) {
    if (st->blob_n == 0) return 0;
    if ((b = malloc(st->blob_n)) == NULL) return BM_ENOMEM;
    memcpy(b, st->blob, st->blob_n);
    *blob = b;
    *n = st->blob_n;
    return 0;
  }
  if (st->cur.blob_n == 0) return 0;
  if ((b = malloc(st->cur.blob_n)) == NULL) return BM_ENOMEM;
  /* Records are never rewritten: what this record said is there still; its checksum was
   * checked when it was read, and the decoder checks every length again. */
  if ((err = pread_all(st->cfd, b, st->cur.blob_n, st->cur.off + BLOB_AT)) != 0) {
    free(b);
    return err;
  }
  *blob = b;
  *n = st->cur.blob_n;
  return 0;
}

int bm__store_unsettled(const char *name) {
  char cn[BM_NAME_MAX + 16], path[BM_NAME_MAX + 32];
  struct stat sb;
  struct timespec ts = {0, 200000};
  bm__posix_comp_name(cn, sizeof(cn), name);
  snprintf(path, sizeof(path), SHM_DIR "/%s", cn);
  if (fstatat(AT_FDCWD, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) return 1;
  /* No metadata, and NAME has a second link: a dataset's bytes (their keep link) in the
   * microseconds a publish or a remove takes them away; a moment later it is settled. */
  snprintf(path, sizeof(path), SHM_DIR "/%s", name);
  if (fstatat(AT_FDCWD, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink >= 2) {
    nanosleep(&ts, NULL);
    return 1;
  }
  /* NAME alone, no metadata: a foreign object, or a dataset's bytes in the instant a forced
   * remove has taken their metadata and not yet them, or a publisher that lost its metadata
   * to such a remove has linked them and not yet taken them back (src/posix/store.c,
   * store_remove and bm__store_publish). Those instants end with NAME gone or metadata
   * there; a foreign object stays as it is. Watched for up to 20 ms (a loaded machine can
   * hold the other process that long between two of its calls); only a foreign object
   * costs that. */
  if (fstatat(AT_FDCWD, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
    struct stat now;
    struct timespec ms = {0, 1000000};
    int i;
    for (i = 0; i < 20; i++) {
      nanosleep(&ms, NULL);
      snprintf(path, sizeof(path), SHM_DIR "/%s", cn);
      if (fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) == 0) return 1;
      snprintf(path, sizeof(path), SHM_DIR "/%s", name);
      if (fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_ino != sb.st_ino ||
          now.st_dev != sb.st_dev || now.st_nlink != sb.st_nlink)
        return 1;
    }
  }
  return 0;
}
