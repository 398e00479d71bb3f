/* The tool's few platform differences, each a small function with one implementation a
 * platform: plat_posix.c and plat_win.c, one of them picked by CMake. Everything else in
 * tools/bulkmap is portable C, the library and libuv. */
#ifndef BULKMAP_PLAT_H
#define BULKMAP_PLAT_H

#include <stddef.h>
#include <stdint.h>

typedef struct plat_signal_s {
  int signum;
  const char *name; /* "SIGTERM" */
} plat_signal_t;
/* The terminating signals that can be caught (POSIX: SIGINT SIGTERM SIGHUP SIGQUIT SIGUSR1
 * SIGUSR2 SIGALRM SIGVTALRM SIGPROF SIGXCPU; Windows: SIGINT SIGBREAK SIGTERM). */
extern const plat_signal_t plat_signals[];
extern const int plat_nsignals;
/* Puts handler on every plat_signals entry, one signal handled at a time, and ignores
 * SIGPIPE and SIGXFSZ (a write to a closed pipe or past ulimit -f becomes an error). A
 * signal ignored by whoever started us stays ignored (POSIX's rule for programs that catch
 * signals), except SIGINT, SIGQUIT and SIGTERM, which a shell ignores in its background
 * jobs though a user who sends them means them. */
void plat_signals_install(void (*handler)(int));
/* 1 when handler is still installed for SIGINT and SIGTERM (0: install again). */
int plat_signals_installed(void (*handler)(int));
/* First thing in the handler: the Windows CRT resets a handler before calling it. */
void plat_signal_rearm(int signum, void (*handler)(int));
/* SIGPIPE ignored, where it exists. */
void plat_ignore_sigpipe(void);
/* Async-signal-safe: n bytes to stderr, and the end of the process with status. */
void plat_write_stderr(const char *s, size_t n);
void plat_write_stdout(const char *s, size_t n); /* the same, async-signal-safe too */
void plat_exit_now(int status);

/* Columns of the terminal on stderr; 0 when it cannot be told. */
int plat_term_width(void);
/* Descriptors 0-2 closed by whoever started us would be taken by the first files opened,
 * and a result written into one of them: keep them taken, by descriptors that fail every
 * read (0) or write (1, 2), as a closed one would. */
void plat_keep_std_fds(void);
/* Standard output in binary mode (no newline translation). */
void plat_binary_stdout(void);
/* Standard input in binary mode (load -). */
void plat_binary_stdin(void);
/* Standard input as a file `load` can load (its size known before the dataset is made, so
 * the room is checked first, as for FILE): standard input itself when it is a regular file
 * read from its start, else its bytes copied into an unnamed file in $TMPDIR (else
 * /var/tmp), on disk, not in memory. *fd: a read-only descriptor of it, path: its name for
 * opening (/proc/self/fd/N). 0, or an errno; ENOTSUP where the OS has no such name (the
 * caller reads standard input into memory). */
int plat_stdin_as_file(int *fd, char *path, size_t n);
/* 0 when n more descriptors can be opened now, else the errno why not (EMFILE). */
int plat_fds_available(int n);

/* The CPU time limit (RLIMIT_CPU): 0 with the soft and hard limit and the CPU time this
 * process has used, in seconds; -1 when there is no finite limit (or no such limit). */
int plat_cpu_limit(uint64_t *soft, uint64_t *hard, double *used);
/* Sets the soft CPU limit (always allowed below the hard one); 0 or the errno. */
int plat_cpu_limit_set_soft(uint64_t soft);

/* setup (Linux): root, a group by name or number, a hugetlbfs mount. */
int plat_is_root(void);
/* 0 with *gid, -1 when there is no such group. */
int plat_group_id(const char *text, unsigned long *gid);
/* Mounts hugetlbfs on dir with opts (nosuid, nodev); 0 or the errno. */
int plat_mount_hugetlbfs(const char *dir, const char *opts);

#endif
