/* bulkmap load: parse, call bm_dataset_load (the library reads, hashes, watches and
 * publishes, or fails and removes), print. A result that cannot be written undoes the
 * load: nobody learnt of the dataset, and a retry would meet "exists already". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif
#include "datasets.h"
#include "plat.h"

static int load_parse_large(const char *text, int *mode) {
  if (text == NULL || strcmp(text, "auto") == 0) *mode = BM_LARGE_AUTO;
  else if (strcmp(text, "on") == 0) *mode = BM_LARGE_ON;
  else if (strcmp(text, "off") == 0) *mode = BM_LARGE_OFF;
  else return cli_usage("load", "--large-pages '%s': expected auto, on or off", text);
  return 0;
}

/* Calling thread, every 20 ms: the bar, and a noted signal cancels. */
static int load_progress(uint64_t done, uint64_t total, void *arg) {
  progress_draw(arg, done);
  return cli_signal_caught() != 0;
}

int cmd_load(int argc, char **argv) {
  const char *o_replace = NULL; /* the new generation becomes NAME atomically (docs/design.md section 7) */
  const char *o_name = NULL, *o_large = NULL, *o_hold = NULL, *o_json = NULL, *o_noprog = NULL,
             *o_mode = NULL, *o_group = NULL, *o_format = NULL, *o_place = NULL, *pos[1];
  const cli_opt_t opts[] = {{"--name", 1, &o_name},     {"--large-pages", 1, &o_large},
                            {"--hold", 0, &o_hold},     {"--json", 0, &o_json},
                            {"--no-progress", 0, &o_noprog}, {"--mode", 1, &o_mode},
                            {"--group", 1, &o_group}, {"--format", 1, &o_format},
                            {"--replace", 0, &o_replace}, {"--place", 1, &o_place}};
  bm_load_opts_t lo;
  bm_load_result_t r;
  bm_preflight_t room;
  bm_dataset_t *ds = NULL;
  cli_progress_t bar;
  unsigned mode = 0; /* not given: 0600 for a new dataset, the old one's for a replace */
  int npos, rc, err = 0, werr, large = BM_LARGE_AUTO;
  bm_format_t format = BM_FORMAT_AUTO;
  unsigned char *in = NULL; /* load -: standard input, whole (where it cannot be a file) */
  size_t in_n = 0;
  int in_fd = -1; /* load -: standard input as a file (plat_stdin_as_file) */
  char in_path[64] = "";
  cli_out_t out;

  rc = cli_parse("load", argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), pos, 1, &npos);
  if (rc != 0) return rc < 0 ? EXIT_DONE : rc;
  if (npos != 1) return cli_usage("load", "missing FILE");
  if (pos[0][0] == '\0') return cli_usage("load", "FILE is an empty string");
  if (o_name == NULL) return cli_usage("load", "missing --name NAME");
  if (bm_name_check(o_name) != 0)
    return cli_usage("load", "--name '%s': %s", o_name, bm_errmsg(BM_ENAME));
  if ((rc = load_parse_large(o_large, &large)) != 0) return rc;
  if (o_mode != NULL && (rc = ds_parse_mode("load", o_mode, &mode)) != 0) return rc;
  if (o_group != NULL && o_group[0] == '\0') return cli_usage("load", "--group is an empty string");
  if ((rc = ds_parse_format("load", o_format, &format)) != 0) return rc;
  /* load -: standard input becomes a file first (itself when it is one, else a copy in an
   * unnamed file on disk), so its size is known and the room checked before anything is
   * made, as for FILE; where the OS cannot name such a file it is read whole into memory.
   * An interrupt meanwhile leaves nothing. */
  if (strcmp(pos[0], "-") == 0) {
    err = plat_stdin_as_file(&in_fd, in_path, sizeof(in_path));
    if (err == ENOTSUP) err = ds_read_stdin(&in, &in_n);
  }
  if (err != 0) {
    cli_error_code(err == ENOMEM ? "ENOMEM" : err == ENOSPC ? "ENOSPC" : "EIO");
    cli_error("-", "cannot read standard input: %s", strerror(err));
    return EXIT_FAILED;
  }

  bm_load_opts_init(&lo);
  memset(&room, 0, sizeof(room));
  lo.dataset.large = large;
  lo.dataset.mode = mode;
  lo.dataset.group = o_group;
  lo.dataset.preflight = &room;
  lo.dataset.replace = o_replace != NULL;
  if (o_place != NULL) {
    /* /dev/shm: normal pages; any other directory: the hugetlbfs mount to use. */
    if (o_place[0] == '\0') return cli_usage("load", "--place is an empty string");
    if (strcmp(o_place, "/dev/shm") == 0 || strcmp(o_place, "/dev/shm/") == 0) {
      if (large == BM_LARGE_ON) return cli_usage("load", "--place /dev/shm has no large pages (--large-pages on)");
      lo.dataset.large = BM_LARGE_OFF;
    } else {
      lo.dataset.mount = o_place;
      if (o_large == NULL) lo.dataset.large = BM_LARGE_ON;
    }
  }
  lo.progress = load_progress;
  lo.progress_arg = &bar;
  progress_init(&bar, o_noprog == NULL, 0);
  /* From before the section exists until it is published or removed, a terminating signal
   * is only noted (cli.h): the library stops at its next step and removes what it made. */
  cli_signals_defer(1);
  lo.format = format;
  if (in != NULL) {
    bm_publish_opts_t po;
    bm_publish_opts_init(&po);
    po.dataset = lo.dataset;
    po.dataset.source = "-";
    po.format = format;
    err = bm_dataset_publish_buffer(&ds, o_name, in, in_n, &po, &r);
    free(in);
  } else {
    if (in_fd >= 0) lo.dataset.source = "-"; /* recorded, and named in errors */
    err = bm_dataset_load(&ds, o_name, in_fd >= 0 ? in_path : pos[0], &lo, &r);
    if (in_fd >= 0) close(in_fd);
  }
  progress_clear(&bar);
  if (err == BM_ECANCELED || (err == 0 && cli_signal_caught() != 0)) {
    int sig = cli_signal_caught();
    if (err == 0) r.removed = bm_dataset_fail(ds) == 0 ? 1 : -1;
    bm_dataset_close(ds);
    cli_error("load", "interrupted by %s: nothing published%s", cli_signal_name(sig),
              r.removed > 0 ? ", the section removed"
              : r.removed < 0 ? " (the name now refers to another section: left alone)" : "");
    return cli_signal_status(sig);
  }
  if (err != 0) {
    cli_lib_error(pos[0], err); /* the library's words: what, why, the figures, the remedy */
    return EXIT_FAILED;
  }

  out_begin(&out, o_json != NULL);
  ds_out_info(&out, &r.info);
  out_f(&out, "seconds", r.seconds, 6);
  out_f(&out, "bytes_per_second", r.seconds > 0 ? (double)r.info.bytes / r.seconds : 0, 0);
  /* One copy in RAM: what is left of the file in the page cache (null: cannot be seen). */
  if (r.has_source_cached) out_u64(&out, "source_cached_bytes", r.source_cached_bytes);
  else out_str(&out, "source_cached_bytes", NULL);
  /* Whether anyone could have written the file unseen during the load (docs/datasets.md). */
  if (in == NULL) {
    out_bool(&out, "source_stable", r.source_stable);
    if (!r.source_stable) out_str(&out, "source_unstable_why", r.unstable_why);
  }
  out_i64(&out, "writer_pid", r.info.writer_pid);
  out_i64(&out, "created", r.info.created);
  out_end(&out);
  rc = EXIT_DONE;
  if ((werr = cli_out_failed()) != 0) {
    cli_error("load", "cannot write the result: %s; %s removed", strerror(werr), o_name);
    rc = EXIT_FAILED;
  } else if (o_hold != NULL || !bm_section_names_persist()) {
    /* Windows: a section dies with its last handle, so load always holds. */
    fprintf(stderr, "bulkmap: load: holding %s until interrupted\n", o_name);
    cli_wait_for_signal();
  } else {
    bm_dataset_close(ds);
    return rc;
  }
  /* Only what this load made: a name removed and made again by anyone since is left. */
  if ((err = bm_dataset_remove(ds)) == BM_EREPLACED)
    cli_error(o_name, "now names another section: left alone");
  bm_dataset_close(ds);
  return rc;
}
