/* POSIX backend: reclaim of sections of the previous layout (the trailer in the section)
 * and of a replace's hidden generations: the listing's entries the caller may remove,
 * judged by the portable code (src/lifecycle.c), removed by identity. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../os.h"
#include "posix.h"
#include "section.h"

/* ---- Reclaim: every entry the caller may remove, judged by the portable code, removed by
 * identity (what was judged). */
static int reclaim_one(void *arg, const bm__os_entry_t *e) {
  list_ctx_t *c = arg;
  uid_t me = geteuid();
  int err;
  if (e->src == NULL || (e->uid != (uint32_t)me && me != 0)) return 0;
  if (c->judge(c->judge_arg, e) != 1) return 0;
  err = bm__posix_remove_identity(c->ms, c->where, e->name, e->src->dev, e->src->ino);
  c->done(c->judge_arg, e, err);
  return 0;
}

int bm__os_section_reclaim(int (*judge)(void *arg, const bm__os_entry_t *e),
                           void (*done)(void *arg, const bm__os_entry_t *e, int err), void *arg) {
  posix_mounts_t ms;
  list_ctx_t c;
  int r;
  memset(&c, 0, sizeof(c));
  c.fn = reclaim_one;
  c.arg = &c;
  c.hidden = 1;
  c.judge = judge;
  c.done = done;
  c.judge_arg = arg;
  bm__posix_mounts_open(&ms);
  r = bm__posix_list_places(&ms, &c);
  bm__posix_mounts_close(&ms);
  return r;
}

