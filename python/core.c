/* The extension's core (no Python here): a window pipeline on a few POSIX threads, the
 * scan and the load on top of it, and the literal phase functions (see core.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pread, pthread clocks */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "internal.h" /* interim: the library kernels */
#define count_byte bm__count_byte
#define find_literal bm__find_literal
#include "core.h"

double bmpy_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

/* ---------------------------------------------------------------------------------------
 * Phase functions. */

void bmpy_phases_free(bmpy_phases_t *f) {
  free(f->v);
  memset(f, 0, sizeof(*f));
}

static int phases_push(bmpy_phases_t *f, uint64_t lo, uint64_t hi, uint64_t count,
                       uint64_t value, int shift) {
  bmpy_phase_t *last = f->n ? &f->v[f->n - 1] : NULL;
  if (lo > hi) return 0;
  /* Neighbours that say the same thing become one entry (a constant next phase only: a
   * shifted one is the same only for the same shift, which this covers too). */
  if (last != NULL && last->hi + 1 == lo && last->count == count && last->shift == shift &&
      last->value == value) {
    last->hi = hi;
    return 0;
  }
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 8;
    bmpy_phase_t *v = realloc(f->v, cap * sizeof(*v));
    if (v == NULL) return BM_ENOMEM;
    f->v = v;
    f->cap = cap;
  }
  f->v[f->n++] = (bmpy_phase_t){lo, hi, count, value, shift};
  return 0;
}

static size_t phases_find(const bmpy_phases_t *f, uint64_t k) {
  size_t lo = 0, hi = f->n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->v[mid].lo <= k) lo = mid;
    else hi = mid;
  }
  return lo;
}

void bmpy_phases_eval(const bmpy_phases_t *f, uint64_t k, uint64_t *count, uint64_t *next) {
  const bmpy_phase_t *e = &f->v[phases_find(f, k)];
  *count = e->count;
  *next = e->shift ? k - e->value : e->value;
}

/* out = f after g (g's range comes first). */
static int phases_compose(const bmpy_phases_t *g, const bmpy_phases_t *f, bmpy_phases_t *out) {
  size_t i, j;
  int err = 0;
  out->n = 0;
  for (i = 0; i < g->n && err == 0; i++) {
    const bmpy_phase_t *a = &g->v[i];
    if (!a->shift) {
      uint64_t c, next;
      bmpy_phases_eval(f, a->value, &c, &next);
      err = phases_push(out, a->lo, a->hi, a->count + c, next, 0);
      continue;
    }
    /* Phases k in [lo, hi] arrive at f as k - value: split them along f's entries. */
    for (j = phases_find(f, a->lo - a->value); j < f->n && err == 0; j++) {
      const bmpy_phase_t *b = &f->v[j];
      uint64_t lo = a->lo - a->value, hi = a->hi - a->value;
      if (b->lo > hi) break;
      if (b->lo > lo) lo = b->lo;
      if (b->hi < hi) hi = b->hi;
      err = phases_push(out, lo + a->value, hi + a->value, a->count + b->count,
                        b->shift ? b->value + a->value : b->value, b->shift);
    }
  }
  return err;
}

/* The greedy search from every phase at once. States are resume points; the phases no match
 * has reached yet are kept as one run [u_lo, L), and the others as a queue sorted by resume
 * point: a match at p is taken by every state whose resume point is <= p (they had no
 * match in between, or they would have taken it), and those states are one from then on,
 * resuming at p + L, after every other. Merged states become a node whose parent links
 * carry each one's count so far, so the work is one greedy scan plus one step a merge. */
typedef struct {
  uint64_t r;
  size_t node;
} state_t;

typedef struct {
  uint64_t count, total;
  size_t parent, root; /* SIZE_MAX: none */
  uint64_t next;
} node_t;

typedef struct {
  uint64_t lo, hi;
  size_t node;
} run_t;

typedef struct {
  state_t *q;
  size_t head, tail, qcap;
  node_t *nodes;
  size_t nn, ncap;
  run_t *runs;
  size_t nr, rcap;
} machine_t;

static void machine_free(machine_t *m) {
  free(m->q);
  free(m->nodes);
  free(m->runs);
  memset(m, 0, sizeof(*m));
}

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
  size_t c;
  void *v;
  if (n < *cap) return 0;
  c = *cap ? *cap * 2 : 16;
  if ((v = realloc(*p, c * elem)) == NULL) return BM_ENOMEM;
  *p = v;
  *cap = c;
  return 0;
}

static int machine_node(machine_t *m, size_t *id) {
  if (grow((void **)&m->nodes, &m->ncap, m->nn, sizeof(node_t))) return BM_ENOMEM;
  m->nodes[m->nn] = (node_t){1, 0, SIZE_MAX, SIZE_MAX, 0};
  *id = m->nn++;
  return 0;
}

static int machine_push(machine_t *m, uint64_t r, size_t node) {
  /* Compacted only when half is free, so that each push is O(1) amortized. */
  if (m->tail == m->qcap && m->head > 0 && m->head >= m->qcap / 2) {
    memmove(m->q, m->q + m->head, (m->tail - m->head) * sizeof(state_t));
    m->tail -= m->head;
    m->head = 0;
  }
  if (grow((void **)&m->q, &m->qcap, m->tail, sizeof(state_t))) return BM_ENOMEM;
  m->q[m->tail++] = (state_t){r, node};
  return 0;
}

/* Match p for every state that resumes at or before it (none: it is skipped). */
static int machine_take(machine_t *m, uint64_t p, uint64_t L, uint64_t *u_lo) {
  uint64_t pops = 0;
  size_t node;
  int err, untouched = *u_lo < L && *u_lo <= p;
  while (m->head + pops < m->tail && m->q[m->head + pops].r <= p) pops++;
  if (pops == 0 && !untouched) return 0;
  if (pops == 1 && !untouched) {
    /* One state takes it alone: no merge. */
    state_t s = m->q[m->head++];
    m->nodes[s.node].count++;
    return machine_push(m, p + L, s.node);
  }
  if ((err = machine_node(m, &node)) != 0) return err;
  if (untouched) {
    uint64_t hi = p < L - 1 ? p : L - 1;
    if ((err = grow((void **)&m->runs, &m->rcap, m->nr, sizeof(run_t))) != 0) return err;
    m->runs[m->nr++] = (run_t){*u_lo, hi, node};
    *u_lo = hi + 1;
  }
  for (; pops > 0; pops--) m->nodes[m->q[m->head++].node].parent = node;
  return machine_push(m, p + L, node);
}

/* The phase function of d[0, n) for a literal of len L, where bytes up to d[avail) may be
 * read (a match must start before n). fail: the literal's KMP border table (NULL: none).
 *
 * Matches are found with find_literal; while several states live, the matches that
 * overlap the last one are found by running the KMP automaton on from it (each byte once)
 * until no partial match is left: periodic data ("aaaa" for "aa") then costs one step a
 * byte, not one search (and a compare of the literal) a match. */
static int window_phases(const unsigned char *d, size_t n, size_t avail,
                         const unsigned char *lit, size_t L, const size_t *fail, machine_t *m,
                         bmpy_phases_t *f) {
  uint64_t u_lo = 0, search_end, pos = 0;
  size_t i, j = 0;
  int err, kmp = 0;

  f->n = 0;
  if (L == 1) {
    /* Every phase is 0 and a match never reaches past its byte. */
    return phases_push(f, 0, 0, count_byte(d, n, lit[0]), 0, 0);
  }
  m->head = m->tail = m->nn = m->nr = 0;
  search_end = (uint64_t)n - 1 + L < avail ? (uint64_t)n - 1 + L : avail;
  for (;;) {
    uint64_t min_r = u_lo < L ? u_lo : m->head < m->tail ? m->q[m->head].r : UINT64_MAX;
    uint64_t start, p;
    const unsigned char *q;
    if (min_r >= n) break;
    if (kmp && !(u_lo >= L && m->tail - m->head == 1)) {
      int found = 0;
      while (pos < search_end) {
        unsigned char c = d[pos++];
        while (j > 0 && lit[j] != c) j = fail[j];
        if (lit[j] == c) j++;
        if (j == L) {
          found = 1;
          j = fail[L];
          break;
        }
        if (j == 0) break;
      }
      if (!found) {
        if (pos >= search_end) break; /* no match starts in what is left */
        kmp = 0;                      /* none in progress: search from here */
        start = pos > min_r ? pos : min_r;
        goto search;
      }
      p = pos - L;
      if (p >= n) break;
      if ((err = machine_take(m, p, L, &u_lo)) != 0) return err;
      continue;
    }
    start = min_r;
  search:
    if (search_end < start + L) break;
    q = find_literal(d + start, (size_t)(search_end - start), lit, L);
    if (q == NULL) break;
    p = (uint64_t)(q - d);
    if ((err = machine_take(m, p, L, &u_lo)) != 0) return err;
    if (fail != NULL) {
      kmp = 1;
      j = fail[L];
      pos = p + L;
    }
  }
  for (i = m->head; i < m->tail; i++) m->nodes[m->q[i].node].next = m->q[i].r > n ? m->q[i].r - n : 0;
  /* Parents are made after their children: totals and roots from the last node down. */
  for (i = m->nn; i-- > 0;) {
    node_t *x = &m->nodes[i];
    if (x->parent == SIZE_MAX) {
      x->total = x->count;
      x->root = i;
    } else {
      x->total = x->count + m->nodes[x->parent].total;
      x->root = m->nodes[x->parent].root;
    }
  }
  for (i = 0; i < m->nr; i++) {
    const node_t *x = &m->nodes[m->runs[i].node];
    if ((err = phases_push(f, m->runs[i].lo, m->runs[i].hi, x->total, m->nodes[x->root].next, 0)))
      return err;
  }
  /* Phases no match reached: they resume where they were, past this window when k > n. */
  if (u_lo < L) {
    if (u_lo <= n && (err = phases_push(f, u_lo, (uint64_t)n < L - 1 ? n : L - 1, 0, 0, 0)))
      return err;
    if (L - 1 > n &&
        (err = phases_push(f, u_lo > n + 1 ? u_lo : (uint64_t)n + 1, L - 1, 0, n, 1)))
      return err;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * The pipeline: window k is mapped, faulted in and given to `parallel` on any thread, then
 * to `ordered` in window order, one at a time, then unmapped. At most `inflight` windows
 * are mapped at once. The calling thread waits, polling every 100 ms. */
enum { SLOT_FREE = 0, SLOT_PARALLEL, SLOT_READY, SLOT_ORDERED };

typedef struct pipe_s pipe_t;
typedef struct {
  pipe_t *p;
  uint64_t index, start, end; /* new bytes [start, end) */
  bm_view_t view;
  int state;
  void *user;
} win_t;

struct pipe_s {
  bm_source_t *src;
  unsigned access;
  int prefault;
  uint64_t start, end, limit, window, extra, nwin;
  unsigned inflight, nthreads;
  int (*parallel)(win_t *w, void *ctx);
  int (*ordered)(win_t *w, void *ctx);
  void *ctx;
  int (*poll)(void *arg);
  void *poll_arg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t next_map, next_ordered;
  int ordering, status, os_error;
  unsigned exited;
  _Atomic uint64_t mapped, peak;
  win_t *slots;
};

static void pipe_account(pipe_t *p, int64_t delta) {
  uint64_t now = atomic_fetch_add(&p->mapped, (uint64_t)delta) + (uint64_t)delta;
  uint64_t peak = atomic_load(&p->peak);
  while (now > peak && !atomic_compare_exchange_weak(&p->peak, &peak, now)) {
  }
}

static void pipe_unmap(win_t *w) {
  size_t len = w->view.map_length;
  if (w->view.src == NULL) return;
  bm_view_unmap(&w->view);
  pipe_account(w->p, -(int64_t)len);
}

static int pipe_call_parallel(void *arg) {
  win_t *w = arg;
  return w->p->parallel(w, w->p->ctx);
}

static int pipe_call_ordered(void *arg) {
  win_t *w = arg;
  return w->p->ordered(w, w->p->ctx);
}

static int pipe_map(pipe_t *p, win_t *w, int *os) {
  uint64_t me;
  int err;
  w->start = p->start + w->index * p->window;
  w->end = p->end - w->start < p->window ? p->end : w->start + p->window;
  me = p->limit - w->end < p->extra ? p->limit : w->end + p->extra;
  memset(&w->view, 0, sizeof(w->view));
  err = bm_view_map(&w->view, p->src, w->start, me - w->start, p->access);
  if (err == BM_ERANGE) err = BM_ETRUNCATED; /* checked before: the source shrank */
  if (err != 0) {
    *os = bm_last_os_error();
    memset(&w->view, 0, sizeof(w->view));
    return err;
  }
  pipe_account(p, (int64_t)w->view.map_length);
  if (p->prefault) err = bm_view_prefetch(&w->view);
  /* The callbacks touch mapped bytes: a source cut short since the prefetch would raise
   * SIGBUS there, so they run guarded. */
  if (err == 0 && p->parallel != NULL) err = bm_guard_call(pipe_call_parallel, w);
  if (err != 0) {
    *os = bm_last_os_error();
    pipe_unmap(w);
  }
  return err;
}

static void *pipe_worker(void *arg) {
  pipe_t *p = arg;
  int err, os = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    win_t *w;
    if (p->status != 0 || p->next_ordered == p->nwin) break;
    /* The ordered stage first: it is the one sequential stage (the hash). */
    w = &p->slots[p->next_ordered % p->inflight];
    if (!p->ordering && w->state == SLOT_READY && w->index == p->next_ordered) {
      w->state = SLOT_ORDERED;
      p->ordering = 1;
      pthread_mutex_unlock(&p->mu);
      err = p->ordered ? bm_guard_call(pipe_call_ordered, w) : 0;
      if (err != 0) os = bm_last_os_error();
      pipe_unmap(w);
      pthread_mutex_lock(&p->mu);
      p->ordering = 0;
      w->state = SLOT_FREE;
      if (err != 0 && p->status == 0) p->status = err, p->os_error = os;
      if (err == 0) p->next_ordered++;
      pthread_cond_broadcast(&p->cv);
      continue;
    }
    w = &p->slots[p->next_map % p->inflight];
    if (p->next_map < p->nwin && w->state == SLOT_FREE) {
      w->index = p->next_map++;
      w->state = SLOT_PARALLEL;
      pthread_mutex_unlock(&p->mu);
      err = pipe_map(p, w, &os);
      pthread_mutex_lock(&p->mu);
      w->state = err == 0 ? SLOT_READY : SLOT_FREE;
      if (err != 0 && p->status == 0) p->status = err, p->os_error = os;
      pthread_cond_broadcast(&p->cv);
      continue;
    }
    pthread_cond_wait(&p->cv, &p->mu);
  }
  p->exited++;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Runs the pipeline to the end; returns its status. Slot i gets scratch + i * user_size
 * (the caller's: p->inflight of them). */
static int pipe_run(pipe_t *p, char *scratch, size_t user_size) {
  pthread_t tid[64];
  pthread_condattr_t ca;
  struct timespec next;
  unsigned i, started = 0;
  int polled = 0;

  if (p->nwin == 0) return 0;
  if ((p->slots = calloc(p->inflight, sizeof(win_t))) == NULL) return BM_ENOMEM;
  for (i = 0; i < p->inflight; i++) {
    p->slots[i].p = p;
    p->slots[i].user = scratch ? scratch + (size_t)i * user_size : NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  for (i = 0; i < p->nthreads && i < 64; i++)
    if (pthread_create(&tid[i], NULL, pipe_worker, p) == 0) started++;
    else break;
  pthread_mutex_lock(&p->mu);
  if (started == 0) p->status = BM_ENOMEM;
  /* Workers wake us often (every window); poll on a clock, not on quiet. */
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (p->exited < started) {
    struct timespec now;
    next.tv_nsec += 100 * 1000 * 1000;
    if (next.tv_nsec >= 1000000000L) next.tv_sec++, next.tv_nsec -= 1000000000L;
    do {
      pthread_cond_timedwait(&p->cv, &p->mu, &next);
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while (p->exited < started &&
             (now.tv_sec < next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec < next.tv_nsec)));
    if (p->exited < started && p->poll && !polled) {
      int stop;
      pthread_mutex_unlock(&p->mu);
      stop = p->poll(p->poll_arg);
      pthread_mutex_lock(&p->mu);
      if (stop) {
        polled = 1; /* once: the caller has its reason (a Python exception) */
        if (p->status == 0) p->status = BM_EBUSY;
        pthread_cond_broadcast(&p->cv);
      }
    }
  }
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < started; i++) pthread_join(tid[i], NULL);
  for (i = 0; i < p->inflight; i++) pipe_unmap(&p->slots[i]);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p->slots);
  p->slots = NULL;
  return p->status;
}

/* ---------------------------------------------------------------------------------------
 * Scan. */

/* fail[j]: the length of the longest proper border of lit[0, j) (Knuth-Morris-Pratt). */
static void kmp_borders(const unsigned char *lit, size_t L, size_t *fail) {
  size_t i, k = 0;
  fail[0] = fail[1] = 0;
  for (i = 1; i < L; i++) {
    while (k > 0 && lit[i] != lit[k]) k = fail[k];
    if (lit[i] == lit[k]) k++;
    fail[i + 1] = k;
  }
}
typedef struct {
  uint64_t lines;
  machine_t m;
  bmpy_phases_t fn;
} scan_slot_t;

typedef struct {
  bmpy_scan_t *s;
  bm_xxh3_t *h;
  size_t *fail;           /* the literal's KMP border table, or NULL */
  uint64_t phase;         /* plain scan: where the next window's search resumes */
  bmpy_phases_t acc, tmp; /* range scan: the function so far */
} scan_ctx_t;

static int scan_parallel(win_t *w, void *ctx) {
  scan_ctx_t *c = ctx;
  scan_slot_t *u = w->user;
  size_t n = (size_t)(w->end - w->start);
  const unsigned char *d = w->view.data;
  if (c->s->lines) u->lines = count_byte(d, n, '\n');
  if (c->s->lit)
    return window_phases(d, n, w->view.length, c->s->lit, c->s->litlen, c->fail, &u->m, &u->fn);
  return 0;
}

static int scan_ordered(win_t *w, void *ctx) {
  scan_ctx_t *c = ctx;
  scan_slot_t *u = w->user;
  int err;
  if (c->h) bm_xxh3_update(c->h, w->view.data, (size_t)(w->end - w->start));
  c->s->line_count += u->lines;
  if (c->s->lit && !c->s->phases) {
    uint64_t n, next;
    bmpy_phases_eval(&u->fn, c->phase, &n, &next);
    c->s->count += n;
    c->phase = next;
  } else if (c->s->lit) {
    bmpy_phases_t t;
    if ((err = phases_compose(&c->acc, &u->fn, &c->tmp)) != 0) return err;
    t = c->acc, c->acc = c->tmp, c->tmp = t;
  }
  c->s->bytes += w->end - w->start;
  return 0;
}

int bmpy_scan(bm_source_t *src, bmpy_scan_t *s, int (*poll)(void *), void *poll_arg) {
  pipe_t p;
  scan_ctx_t c;
  scan_slot_t *slots;
  uint64_t window = s->window ? s->window : (64u << 20), dummy;
  unsigned i, threads = s->threads ? s->threads : cpu_count();
  int err;

  memset(&p, 0, sizeof(p));
  memset(&c, 0, sizeof(c));
  s->xxh3 = s->line_count = s->count = s->bytes = s->peak_mapped = 0;
  memset(&s->fn, 0, sizeof(s->fn));
  c.s = s;
  p.nthreads = threads > 64 ? 64 : threads;
  /* One window a thread being counted, one being mapped ahead, one being hashed. */
  p.inflight = p.nthreads + 2;
  if ((slots = calloc(p.inflight, sizeof(*slots))) == NULL) return BM_ENOMEM;
  if (s->hash && (c.h = bm_xxh3_new()) == NULL) {
    free(slots);
    return BM_ENOMEM;
  }
  err = 0;
  if (s->lit && s->phases) err = phases_push(&c.acc, 0, s->litlen - 1, 0, 0, 1);
  /* A border table for literals up to 1 MiB (8 bytes a byte); longer ones go without. */
  if (err == 0 && s->lit && s->litlen > 1 && s->litlen <= (1u << 20)) {
    if ((c.fail = malloc((s->litlen + 1) * sizeof(size_t))) == NULL) err = BM_ENOMEM;
    else kmp_borders(s->lit, s->litlen, c.fail);
  }
  p.src = src;
  p.access = BM_ACCESS_READ;
  p.prefault = 1;
  p.start = s->offset;
  p.end = s->offset + s->length;
  p.limit = s->limit < p.end ? p.end : s->limit;
  p.window = window;
  p.extra = s->lit ? s->litlen - 1 : 0;
  p.nwin = s->length == 0 ? 0 : (s->length - 1) / window + 1;
  p.parallel = (s->lines || s->lit) ? scan_parallel : NULL;
  p.ordered = scan_ordered;
  p.ctx = &c;
  p.poll = poll;
  p.poll_arg = poll_arg;
  if (err == 0) err = pipe_run(&p, (char *)slots, sizeof(*slots));
  s->os_error = p.os_error;
  s->peak_mapped = atomic_load(&p.peak);
  s->window_used = window;
  s->threads_used = p.nthreads;
  if (c.h) s->xxh3 = bm_xxh3_digest(c.h);
  if (err == 0 && s->lit && s->phases) {
    s->fn = c.acc;
    memset(&c.acc, 0, sizeof(c.acc));
    bmpy_phases_eval(&s->fn, 0, &s->count, &dummy);
  }
  bm_xxh3_free(c.h);
  free(c.fail);
  bmpy_phases_free(&c.acc);
  bmpy_phases_free(&c.tmp);
  for (i = 0; i < p.inflight; i++) {
    machine_free(&slots[i].m);
    bmpy_phases_free(&slots[i].fn);
  }
  free(slots);
  return err;
}

/* ---------------------------------------------------------------------------------------
 * Load: the file's bytes read straight into the section on every thread, the section
 * hashed in payload order by the library (so the checksum is the section's, never a
 * buffer's). */
static int fill_parallel(win_t *w, void *ctx) {
  bmpy_fill_t *l = ctx;
  size_t done = 0, len = (size_t)(w->end - w->start);
  while (done < len) {
    size_t want = len - done > (1u << 30) ? (1u << 30) : len - done;
    ssize_t n = pread(l->fd, (char *)w->view.data + done, want, (off_t)(w->start + done));
    if (n < 0 && errno == EINTR) continue;
    /* EFAULT: the kernel could not get a page of the section to copy into (shared memory
     * full); the read itself was fine. */
    if (n < 0 && errno == EFAULT) return BM_ENOSPC;
    if (n < 0) return BM_EIO;
    if (n == 0) return BM_ETRUNCATED; /* the file ended early: it shrank */
    done += (size_t)n;
  }
  return 0;
}

static int fill_ordered(win_t *w, void *ctx) {
  bmpy_fill_t *l = ctx;
  return bm_dataset_hash_view(l->ds, &w->view);
}

int bmpy_fill(bmpy_fill_t *l, int (*poll)(void *), void *poll_arg) {
  pipe_t p;
  int err;
  memset(&p, 0, sizeof(p));
  p.src = bm_dataset_source(l->ds);
  p.access = BM_ACCESS_WRITE;
  p.start = 0;
  p.end = p.limit = l->size;
  p.window = 64u << 20;
  p.nwin = l->size == 0 ? 0 : (l->size - 1) / p.window + 1;
  p.nthreads = l->threads ? (l->threads > 64 ? 64 : l->threads) : cpu_count();
  p.inflight = p.nthreads + 2;
  p.parallel = fill_parallel;
  p.ordered = fill_ordered;
  p.ctx = l;
  p.poll = poll;
  p.poll_arg = poll_arg;
  err = pipe_run(&p, NULL, 0);
  l->os_error = p.os_error;
  return err;
}
