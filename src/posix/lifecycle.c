/* POSIX backend of the lifecycle calls (src/lifecycle.c): waiting on a name through
 * inotify, the watcher that removes a process-bound dataset when its process ends, and
 * whether systemd-logind's RemoveIPC applies to the caller. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif
#include "../os.h"
#include "posix.h"

#define SHM_DIR "/dev/shm"

/* ---- Waiting. One inotify instance watches /dev/shm and every hugetlbfs mount directory
 * for what may change a name's answer: made (IN_CREATE), renamed in or out (a replace's
 * IN_MOVED_TO), given its mode by its creator or touched at publish (IN_ATTRIB: see
 * bm__os_writer_release), closed by a writer that died (IN_CLOSE_WRITE: the kernel closes
 * a dead process's descriptors, and the writer's is the one opened for writing), removed
 * (IN_DELETE). Events about other names are read and passed over. Without inotify (or
 * none of the directories could be watched) the fallback re-checks every 100 ms. */
struct bm__os_waiter_s {
  int fd;
  char name[256];
};

int bm__os_wait_begin(bm__os_waiter_t **out, const char *name) {
  bm__os_waiter_t *w = calloc(1, sizeof(*w));
  if (w == NULL) return BM_ENOMEM;
  snprintf(w->name, sizeof(w->name), "%s", name);
  w->fd = -1;
#ifdef __linux__
  {
    bm_mount_t *mv;
    size_t i, nm;
    int watched = 0;
    const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_CLOSE_WRITE |
                          IN_DELETE | IN_MODIFY | IN_ONLYDIR;
    if ((w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) >= 0) {
      watched += inotify_add_watch(w->fd, SHM_DIR, mask) >= 0;
      if (bm__posix_hugetlbfs_mounts(&mv, &nm) == 0) {
        for (i = 0; i < nm; i++) watched += inotify_add_watch(w->fd, mv[i].path, mask) >= 0;
        free(mv);
      }
      if (watched == 0) {
        close(w->fd);
        w->fd = -1;
      }
    }
  }
#endif
  *out = w;
  return 0;
}

static void wait_sleep(double s) {
  struct timespec ts;
  if (s <= 0) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

int bm__os_wait(bm__os_waiter_t *w, double seconds) {
  double end = bm__os_now() + seconds;
  if (seconds > 2.0) seconds = 2.0; /* a re-check now and then: a mount made meanwhile */
  if (w->fd < 0) {
    wait_sleep(seconds < 0.1 ? seconds : 0.1);
    return 0;
  }
#ifdef __linux__
  for (;;) {
    double left = end - bm__os_now();
    struct pollfd pfd;
    int ms, r;
    if (left > 2.0) left = 2.0;
    if (left <= 0) return 0;
    ms = (int)(left * 1000.0) + 1;
    pfd.fd = w->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    r = poll(&pfd, 1, ms);
    if (r < 0 && errno == EINTR) return 0; /* the caller looks at its signal, then again */
    if (r <= 0) return 0;
    {
      /* Drain every queued event; any about NAME ends the wait. */
      char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
      ssize_t n;
      int hit = 0;
      while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
        char *p = buf;
        while (p < buf + n) {
          struct inotify_event *ev = (struct inotify_event *)p;
          /* NAME, or its companion bulkmap#NAME (records appended, the writer's close). */
          if ((ev->mask & IN_Q_OVERFLOW) ||
              (ev->len > 0 && (strcmp(ev->name, w->name) == 0 ||
                               (strncmp(ev->name, "bulkmap#", 8) == 0 && strcmp(ev->name + 8, w->name) == 0))))
            hit = 1;
          p += sizeof(*ev) + ev->len;
        }
      }
      if (hit) return 0;
    }
  }
#else
  return 0;
#endif
}

void bm__os_wait_end(bm__os_waiter_t *w) {
  if (w == NULL) return;
  if (w->fd >= 0) close(w->fd);
  free(w);
}

/* ---- The process-bound dataset. */

/* The watcher of a dataset whose metadata is beside its bytes: a small program of its own
 * (exec'd /bin/sh with the script below, so it holds none of the caller's memory, keeps
 * none of its command line and is in a session of its own). It blocks reading a pipe whose
 * only write end the caller holds; when the caller is gone (EOF) or the watcher itself is
 * told to stop (SIGTERM, SIGHUP, SIGINT: `systemctl stop` of the caller's unit, `kill`), it
 * removes the names by identity, in order: NAME and the keep link in the place, then the
 * metadata, which goes only with the bytes (a dataset replaced since it was bound keeps it).
 * Each is moved aside (mv -n: renameat2 RENAME_NOREPLACE) under a random name, checked
 * there (device:inode) and unlinked; another object found there is put back. The call
 * returns once the watcher says "armed" (its trap set): a SIGTERM from then on removes the
 * dataset, and a watcher that died before (a SIGTERM in its first milliseconds) is an
 * error of the call, never a binding that silently is not there. */
static const char watcher_script[] =
    "rm_one() {\n"
    "  p=\"$1/$2\"; a=\"$1/bulkmap#rm#$4\"\n"
    "  [ \"$(stat -c %d:%i -- \"$p\" 2>/dev/null)\" = \"$3\" ] || return 1\n"
    "  mv -n -T -- \"$p\" \"$a\" 2>/dev/null || return 1\n"
    "  if [ \"$(stat -c %d:%i -- \"$a\" 2>/dev/null)\" = \"$3\" ]; then rm -f -- \"$a\"; return 0; fi\n"
    "  mv -n -T -- \"$a\" \"$p\" 2>/dev/null; return 1\n"
    "}\n"
    "go() {\n"
    "  trap '' TERM HUP INT\n"
    "  r=1\n"
    "  rm_one \"$1\" \"$2\" \"$3\" \"$4\" && r=0\n"
    "  rm_one \"$5\" \"$6\" \"$7\" \"$8\" && r=0\n"
    "  [ $r = 0 ] && rm_one \"$9\" \"${10}\" \"${11}\" \"${12}\"\n"
    "  exit 0\n"
    "}\n"
    "trap 'go \"$@\"' TERM HUP INT\n"
    "echo armed; exec >/dev/null\n"
    "while IFS= read -r _; do :; done\n"
    "go \"$@\"\n";

int bm__posix_remove_on_exit3(const char *const *dirs, const char *const *names,
                              const char *const *asides, const uint64_t *dev, const uint64_t *ino) {
  char di[3][48];
  const char *argv[17];
  static const char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
  int p[2], armed[2], status, i, k = 0;
  char said[8];
  ssize_t got;
  size_t have = 0;
  pid_t pid;
  for (i = 0; i < 3; i++) snprintf(di[i], sizeof(di[i]), "%llu:%llu", (unsigned long long)dev[i], (unsigned long long)ino[i]);
  argv[k++] = "sh";
  argv[k++] = "-c";
  argv[k++] = watcher_script;
  argv[k++] = "bulkmap-watch";
  for (i = 0; i < 3; i++) {
    argv[k++] = dirs[i];
    argv[k++] = names[i];
    argv[k++] = di[i];
    argv[k++] = asides[i];
  }
  argv[k] = NULL;
  if (pipe2(p, O_CLOEXEC) != 0) return bm__posix_error(errno);
  if (pipe2(armed, O_CLOEXEC) != 0) {
    int e = bm__posix_error(errno);
    close(p[0]), close(p[1]);
    return e;
  }
  pid = fork();
  if (pid < 0) {
    int e = bm__posix_error(errno);
    close(p[0]), close(p[1]), close(armed[0]), close(armed[1]);
    return e == BM_ENOMEM ? BM_EAGAIN : e;
  }
  if (pid == 0) {
    /* Only async-signal-safe calls until the exec (the caller may have threads). Forked
     * twice: the watcher is not the caller's child. */
    if (fork() == 0) {
      struct sigaction sa;
      sigset_t none;
      int null = open("/dev/null", O_RDWR | O_CLOEXEC);
      setsid();
      memset(&sa, 0, sizeof(sa));
      sa.sa_handler = SIG_DFL;
      /* Ignored signals stay ignored across exec, and a shell cannot trap them then. */
      for (i = 1; i < 32; i++) sigaction(i, &sa, NULL);
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (dup2(p[0], 0) < 0 || null < 0 || dup2(armed[1], 1) < 0 || dup2(null, 2) < 0) _exit(127);
#ifdef SYS_close_range
      if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
      {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536) max = 65536;
        for (i = 3; i < max; i++) close(i);
      }
      if (chdir("/") != 0) _exit(127);
      execve("/bin/sh", (char *const *)argv, (char *const *)envp);
      _exit(127);
    }
    _exit(0);
  }
  close(p[0]);
  close(armed[1]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  /* "armed\n", or EOF: the watcher died before its trap was set (or never ran). */
  while (have < sizeof(said)) {
    got = read(armed[0], said + have, sizeof(said) - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += (size_t)got;
    if (memchr(said, '\n', have) != NULL) break;
  }
  close(armed[0]);
  if (have < 6 || memcmp(said, "armed\n", 6) != 0) {
    close(p[1]); /* a watcher that is there after all sees EOF and removes the dataset */
    return bm__set_os_error(0), BM_EAGAIN;
  }
  /* p[1] stays open for the life of the process, on purpose: its close is the signal. */
  return 0;
}

/* Every dataset here has its metadata beside its bytes: bm__store_remove_on_exit binds it
 * (src/posix/store.c, the watcher above). */
int bm__os_remove_on_exit(bm_source_t *src, const char *name) {
  (void)src, (void)name;
  return BM_EINVAL;
}

/* ---- systemd-logind's RemoveIPC (logind.conf(5)): "yes" by default; a user's IPC objects
 * are removed when their last session ends, except for system users (uid <= SYS_UID_MAX)
 * and root. The setting is the main file's, then drop-ins in logind.conf.d directories,
 * later ones (by file name) overriding. */

static int parse_bool(const char *v, int *out) {
  if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
    return *out = 1, 1;
  if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
    return *out = 0, 1;
  return 0;
}

static void removeipc_file(const char *path, bm_removeipc_t *out) {
  FILE *f = fopen(path, "re");
  char line[512];
  if (f == NULL) return;
  while (fgets(line, sizeof(line), f) != NULL) {
    char *p = line, *e;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "RemoveIPC", 9) != 0) continue;
    p += 9;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '=') continue;
    while (*p == ' ' || *p == '\t') p++;
    for (e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');)
      *--e = '\0';
    if (parse_bool(p, &out->remove_ipc)) snprintf(out->source, sizeof(out->source), "%s", path);
  }
  fclose(f);
}

static int name_cmp(const void *a, const void *b) {
  const char *x = strrchr(*(char *const *)a, '/'), *y = strrchr(*(char *const *)b, '/');
  return strcmp(x, y);
}

int bm__os_removeipc(bm_removeipc_t *out) {
  static const char *const dirs[] = {"/usr/lib/systemd/logind.conf.d", "/run/systemd/logind.conf.d",
                                     "/etc/systemd/logind.conf.d"};
  char *files[96];
  int nf = 0, i, k;
  FILE *f;

  out->remove_ipc = 1;
  out->uid = (uint32_t)geteuid();
  out->sys_uid_max = 999;
  if ((f = fopen("/etc/login.defs", "re")) != NULL) {
    char line[256];
    unsigned long v;
    while (fgets(line, sizeof(line), f) != NULL)
      if (sscanf(line, " SYS_UID_MAX %lu", &v) == 1) out->sys_uid_max = (uint32_t)v;
    fclose(f);
  }
  out->logind = (access("/lib/systemd/systemd-logind", F_OK) == 0 ||
                 access("/usr/lib/systemd/systemd-logind", F_OK) == 0) &&
                access("/run/systemd/system", F_OK) == 0;
  removeipc_file("/etc/systemd/logind.conf", out);
  for (i = 0; i < 3; i++) {
    DIR *d = opendir(dirs[i]);
    struct dirent *de;
    if (d == NULL) continue;
    while ((de = readdir(d)) != NULL && nf < 96) {
      size_t l = strlen(de->d_name);
      char *pth;
      if (l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0) continue;
      if ((pth = malloc(strlen(dirs[i]) + l + 2)) == NULL) continue;
      sprintf(pth, "%s/%s", dirs[i], de->d_name);
      /* A later directory's file of the same name masks an earlier one's. */
      for (k = 0; k < nf; k++)
        if (strcmp(strrchr(files[k], '/'), strrchr(pth, '/')) == 0) {
          free(files[k]);
          files[k] = pth;
          pth = NULL;
          break;
        }
      if (pth != NULL) files[nf++] = pth;
    }
    closedir(d);
  }
  qsort(files, (size_t)nf, sizeof(files[0]), name_cmp);
  for (i = 0; i < nf; i++) {
    removeipc_file(files[i], out);
    free(files[i]);
  }
  out->applies = out->logind && out->remove_ipc && out->uid > out->sys_uid_max;
  return 0;
}
