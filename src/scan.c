/* The scan engine: XXH3, newlines and literal counts over windows counted on any thread and
 * merged in order (bulkmap.h). A literal's count over a window is a function of where the
 * greedy search may resume when the window begins (its "phase", in [0, L)); composing the
 * windows' functions in order gives the exact count over any number of windows, ranges and
 * processes, for every literal, self-overlapping ones ("aa") included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "os.h"
#include "pool.h"

/* ---------------------------------------------------------------------------------------
 * Phase functions. Each entry covers phases [lo, hi]: `count` matches begin in the range,
 * and the phase handed on is `value` (shift 0) or k - value (shift 1). Entries are sorted
 * and cover [0, L) without gaps. */
typedef struct {
  uint64_t lo, hi, count, value;
  int shift;
} phase_t;

typedef struct {
  phase_t *v;
  size_t n, cap;
} phases_t;

static void phases_free(phases_t *f) {
  free(f->v);
  memset(f, 0, sizeof(*f));
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

static int phases_push(phases_t *f, uint64_t lo, uint64_t hi, uint64_t count, uint64_t value,
                       int shift) {
  phase_t *last = f->n ? &f->v[f->n - 1] : NULL;
  if (lo > hi) return 0;
  /* Neighbours that say the same thing become one entry. */
  if (last != NULL && last->hi + 1 == lo && last->count == count && last->shift == shift &&
      last->value == value) {
    last->hi = hi;
    return 0;
  }
  if (grow((void **)&f->v, &f->cap, f->n, sizeof(phase_t))) return BM_ENOMEM;
  f->v[f->n++] = (phase_t){lo, hi, count, value, shift};
  return 0;
}

static size_t phases_find(const phases_t *f, uint64_t k) {
  size_t lo = 0, hi = f->n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->v[mid].lo <= k) lo = mid;
    else hi = mid;
  }
  return lo;
}

static void phases_eval(const phases_t *f, uint64_t k, uint64_t *count, uint64_t *next) {
  const phase_t *e = &f->v[phases_find(f, k)];
  *count = e->count;
  *next = e->shift ? k - e->value : e->value;
}

/* out = f after g (g's range comes first). */
static int phases_compose(const phases_t *g, const phases_t *f, phases_t *out) {
  size_t i, j;
  int err = 0;
  out->n = 0;
  for (i = 0; i < g->n && err == 0; i++) {
    const phase_t *a = &g->v[i];
    if (!a->shift) {
      uint64_t c, next;
      phases_eval(f, a->value, &c, &next);
      err = phases_push(out, a->lo, a->hi, a->count + c, next, 0);
      continue;
    }
    /* Phases k in [lo, hi] arrive at f as k - value: split them along f's entries. */
    for (j = phases_find(f, a->lo - a->value); j < f->n && err == 0; j++) {
      const phase_t *b = &f->v[j];
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

static int phases_copy(phases_t *dst, const phases_t *src) {
  dst->n = 0;
  if (src->n > dst->cap) {
    phase_t *v = realloc(dst->v, src->n * sizeof(*v));
    if (v == NULL) return BM_ENOMEM;
    dst->v = v;
    dst->cap = src->n;
  }
  if (src->n) memcpy(dst->v, src->v, src->n * sizeof(*src->v));
  dst->n = src->n;
  return 0;
}

/* The identity over a range of no bytes: every phase k is handed on as k. */
static int phases_identity(phases_t *f, uint64_t L) {
  f->n = 0;
  return phases_push(f, 0, L - 1, 0, 0, 1);
}

/* ---------------------------------------------------------------------------------------
 * The greedy search from every phase at once. States are resume points; the phases no
 * match has reached yet are kept as one run [u_lo, L), and the others as a queue sorted by
 * resume point: a match at p is taken by every state whose resume point is <= p (they had
 * no match in between, or they would have taken it), and those states are one from then
 * on, resuming at p + L. Merged states become a node whose parent links carry each one's
 * count so far, so the work is one greedy scan plus one step a merge. */
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

/* A participant of a periodic stretch: enters the lattice at point a. */
typedef struct {
  uint64_t a, lo, hi; /* untouched phases [lo, hi], or a queue state (lo > hi) */
  size_t node;
} entry_t;

typedef struct {
  state_t *q;
  size_t head, tail, qcap;
  node_t *nodes;
  size_t nn, ncap;
  run_t *runs;
  size_t nr, rcap;
  entry_t *e;
  size_t ecap;
} machine_t;

static void machine_free(machine_t *m) {
  free(m->q);
  free(m->nodes);
  free(m->runs);
  free(m->e);
  memset(m, 0, sizeof(*m));
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

static int machine_run_push(machine_t *m, uint64_t lo, uint64_t hi, size_t node) {
  if (grow((void **)&m->runs, &m->rcap, m->nr, sizeof(run_t))) return BM_ENOMEM;
  m->runs[m->nr++] = (run_t){lo, hi, node};
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
    if ((err = machine_run_push(m, *u_lo, hi, node)) != 0) return err;
    *u_lo = hi + 1;
  }
  for (; pops > 0; pops--) m->nodes[m->q[m->head++].node].parent = node;
  return machine_push(m, p + L, node);
}

static int entry_cmp_q;
static int entry_cmp(const void *x, const void *y) {
  const entry_t *a = x, *b = y;
  uint64_t ra = a->a % (uint64_t)entry_cmp_q, rb = b->a % (uint64_t)entry_cmp_q;
  if (ra != rb) return ra < rb ? -1 : 1;
  return a->a < b->a ? -1 : a->a > b->a;
}

static int state_cmp(const void *x, const void *y) {
  const state_t *a = x, *b = y;
  return a->r < b->r ? -1 : a->r > b->r;
}

/* A periodic stretch: the literal (period per < L) occurs at p + j*per for j = 0..J and,
 * inside the stretch, nowhere else (an occurrence between two lattice points would give
 * the literal a period shorter than per). Every state that resumes at or before p + J*per
 * enters the lattice at its first point at or after its resume point and then takes every
 * q-th point (q = ceil(L/per)); states entering on the same residue mod q merge where the
 * later one enters. So the stretch costs one step a state, not one a match. */
static int machine_stretch(machine_t *m, uint64_t p, uint64_t J, uint64_t per, uint64_t L,
                           uint64_t *u_lo) {
  uint64_t q = (L + per - 1) / per, last = p + J * per, k;
  size_t ne = 0, i, keep;
  int err;

  /* Untouched phases k <= last, grouped by entry point. */
  for (k = *u_lo; k < L && k <= last;) {
    uint64_t a = k <= p ? 0 : (k - p + per - 1) / per, hi;
    /* the phases entering at a: up to p + a*per */
    hi = p + a * per;
    if (hi > L - 1) hi = L - 1;
    if (hi > last) hi = last;
    if (grow((void **)&m->e, &m->ecap, ne, sizeof(entry_t))) return BM_ENOMEM;
    m->e[ne++] = (entry_t){a, k, hi, SIZE_MAX};
    k = hi + 1;
  }
  *u_lo = k < L ? k : L;
  /* Queue states that resume by the last point (the queue is sorted by r). */
  for (i = m->head; i < m->tail && m->q[i].r <= last; i++) {
    uint64_t r = m->q[i].r, a = r <= p ? 0 : (r - p + per - 1) / per;
    if (grow((void **)&m->e, &m->ecap, ne, sizeof(entry_t))) return BM_ENOMEM;
    m->e[ne++] = (entry_t){a, 1, 0, m->q[i].node};
  }
  keep = i; /* states from here on are not in the stretch */
  entry_cmp_q = (int)q;
  if (ne > 1) qsort(m->e, ne, sizeof(entry_t), entry_cmp);
  /* The states that stay, then one chain a residue class. */
  if (m->tail > keep) memmove(m->q, m->q + keep, (m->tail - keep) * sizeof(state_t));
  m->tail -= keep;
  m->head = 0;
  for (i = 0; i < ne;) {
    uint64_t a = m->e[i].a, res = a % q, end_a;
    size_t chain = SIZE_MAX;
    while (i < ne && m->e[i].a % q == res) {
      size_t j = i, n_here = 0, node;
      int single;
      a = m->e[i].a;
      while (j < ne && m->e[j].a == a) j++, n_here++;
      single = chain == SIZE_MAX && n_here == 1 && m->e[i].lo > m->e[i].hi;
      if (single) {
        node = m->e[i].node;
        m->nodes[node].count++;
      } else {
        if ((err = machine_node(m, &node)) != 0) return err;
        if (chain != SIZE_MAX) m->nodes[chain].parent = node;
        for (; i < j; i++) {
          if (m->e[i].lo > m->e[i].hi) m->nodes[m->e[i].node].parent = node;
          else if ((err = machine_run_push(m, m->e[i].lo, m->e[i].hi, node)) != 0) return err;
        }
      }
      i = j;
      chain = node;
      /* The points strictly between this entry and the next of the class (or the end). */
      end_a = (i < ne && m->e[i].a % q == res) ? m->e[i].a : J + q;
      {
        uint64_t upto = end_a - q; /* the last point before end_a this chain takes */
        if (upto > J) upto = J;
        if (upto >= a + q) m->nodes[chain].count += (upto - a) / q;
        if (!(i < ne && m->e[i].a % q == res)) {
          uint64_t lastp = a + ((J - a) / q) * q;
          if ((err = machine_push(m, p + lastp * per + L, chain)) != 0) return err;
        }
      }
    }
  }
  if (m->tail > 1) qsort(m->q, m->tail, sizeof(state_t), state_cmp);
  return 0;
}

/* The first i in [from, limit) with d[i] != d[i - per] (limit when none). */
static uint64_t stretch_end(const unsigned char *d, uint64_t from, uint64_t per,
                            uint64_t limit) {
  uint64_t i = from, blk = 16;
  while (i < limit) {
    uint64_t n = limit - i < blk ? limit - i : blk;
    if (memcmp(d + i, d + i - per, (size_t)n) != 0) {
      while (d[i] == d[i - per]) i++;
      return i;
    }
    i += n;
    if (blk < (64u << 10)) blk *= 2;
  }
  return limit;
}

typedef struct {
  const unsigned char *lit;
  size_t L;
  size_t *fail;   /* KMP border table (NULL: none, L == 1 or too long) */
  uint64_t per;   /* the literal's smallest period (L when not self-overlapping) */
} literal_t;

/* Takes match p, or the whole periodic stretch that begins at p when it is long. Returns the
 * position the search goes on from (just past the last match taken into account). */
static int machine_match(machine_t *m, const unsigned char *d, uint64_t n, uint64_t search_end,
                         const literal_t *lt, uint64_t p, uint64_t *u_lo, uint64_t *resume) {
  uint64_t L = lt->L, per = lt->per;
  *resume = p + L;
  if (per < L && p + L + per <= search_end && d[p + L] == d[p + L - per]) {
    uint64_t e = stretch_end(d, p + L, per, search_end), J, Jn;
    J = (e - L - p) / per;
    Jn = (n - 1 - p) / per;
    if (Jn < J) J = Jn;
    if (J >= 2 * ((L + per - 1) / per)) {
      *resume = p + J * per + L;
      return machine_stretch(m, p, J, per, L, u_lo);
    }
  }
  return machine_take(m, p, L, u_lo);
}

/* The phase function of d[0, n) for the literal, where bytes up to d[avail) may be read (a
 * match must begin before n). Matches are found with bm__find_literal; while several states
 * live, the matches that overlap the last one are found by running the KMP automaton on
 * from it (each byte once) until no partial match is left, and a periodic stretch of
 * matches is taken whole. */
static int window_phases(const unsigned char *d, size_t n, size_t avail, const literal_t *lt,
                         machine_t *m, phases_t *f) {
  const unsigned char *lit = lt->lit;
  const size_t *fail = lt->fail;
  uint64_t L = lt->L, u_lo = 0, search_end, pos = 0, resume;
  size_t i, j = 0;
  int err, kmp = 0;

  f->n = 0;
  if (L == 1) /* every phase is 0 and a match never reaches past its byte */
    return phases_push(f, 0, 0, bm__count_byte(d, n, lit[0]), 0, 0);
  m->head = m->tail = m->nn = m->nr = 0;
  search_end = (uint64_t)n - 1 + L < avail ? (uint64_t)n - 1 + L : avail;
  if (n == 0) search_end = 0;
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
        if (pos >= search_end) break; /* no match begins in what is left */
        kmp = 0;                      /* none in progress: search from here */
        start = pos > min_r ? pos : min_r;
        goto search;
      }
      p = pos - L;
      if (p >= n) break;
      if ((err = machine_match(m, d, n, search_end, lt, p, &u_lo, &resume)) != 0) return err;
      if (resume > pos) pos = resume, j = fail[L];
      continue;
    }
    start = min_r;
  search:
    if (search_end < start + L) break;
    q = bm__find_literal(d + start, (size_t)(search_end - start), lit, L);
    if (q == NULL) break;
    p = (uint64_t)(q - d);
    if (p >= n) break;
    if ((err = machine_match(m, d, n, search_end, lt, p, &u_lo, &resume)) != 0) return err;
    if (fail != NULL) {
      kmp = 1;
      j = fail[L];
      pos = resume;
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
  /* Runs are made in phase order, but a stretch may add them out of order: sort. */
  for (i = 1; i < m->nr; i++) {
    run_t r = m->runs[i];
    size_t k = i;
    while (k > 0 && m->runs[k - 1].lo > r.lo) m->runs[k] = m->runs[k - 1], k--;
    m->runs[k] = r;
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
    if (L - 1 > n && (err = phases_push(f, u_lo > n + 1 ? u_lo : (uint64_t)n + 1, L - 1, 0, n, 1)))
      return err;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * Literals, scans and works. */

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

struct bm_scan_part_s {
  uint64_t offset, length, lines;
  unsigned nlit;
  uint64_t len[BM_SCAN_MAX_LITERALS];
  uint64_t id[BM_SCAN_MAX_LITERALS]; /* XXH3 of each literal: "the same literals" */
  phases_t fn[BM_SCAN_MAX_LITERALS];
};

struct bm_scan_s {
  unsigned flags, nlit;
  literal_t lit[BM_SCAN_MAX_LITERALS];
  uint64_t id[BM_SCAN_MAX_LITERALS];
  size_t ovl;
  uint64_t offset, length, end, match_end;
  bm_xxh3_t *h;
  uint64_t next_new; /* the first new byte the next merged window must begin with */
  uint64_t cov;      /* the first match start the next merged window must cover */
  uint64_t lines;
  int finished;
  int stream; /* the length is not known: the range ends with the final window */
  uint64_t phase[BM_SCAN_MAX_LITERALS]; /* plain scan: where each literal's search resumes */
  uint64_t count[BM_SCAN_MAX_LITERALS];
  phases_t acc[BM_SCAN_MAX_LITERALS], tmp; /* BM_SCAN_PART: the function so far */
};

struct bm_scan_work_s {
  uint64_t lines;
  machine_t m;
  phases_t fn[BM_SCAN_MAX_LITERALS];
};

static unsigned scan_flags(const bm_scan_opts_t *o) {
  unsigned f = o->flags;
  if (!(f & (BM_SCAN_HASH | BM_SCAN_LINES)) && o->n_literals == 0) f |= BM_SCAN_HASH | BM_SCAN_LINES;
  return f;
}

uint64_t bm__scan_max_window(void) {
  return sizeof(size_t) > 4 ? (4ull << 30) : (256u << 20);
}

#define WHY(...) (why != NULL && n > 0 ? snprintf(why, n, __VA_ARGS__) : 0, BM_EINVAL)

int bm_scan_check_why(const bm_scan_opts_t *o, char *why, size_t n) {
  unsigned i;
  uint64_t window, max = bm__scan_max_window();
  if (why != NULL && n > 0) why[0] = '\0';
  if (o == NULL) return WHY("no options");
  if (o->flags & ~(unsigned)(BM_SCAN_HASH | BM_SCAN_LINES | BM_SCAN_PART))
    return WHY("flags 0x%x: unknown bits", o->flags);
  if (o->n_literals > BM_SCAN_MAX_LITERALS)
    return WHY("%u literals: at most %d in one pass", o->n_literals, BM_SCAN_MAX_LITERALS);
  if (o->n_literals > 0 && o->literals == NULL) return WHY("literals: NULL");
  window = o->window ? o->window : BM__DEFAULT_WINDOW;
  if (window > max)
    return WHY("window %llu: at most %llu bytes (%s)", (unsigned long long)window,
               (unsigned long long)max, sizeof(size_t) > 4 ? "4 GiB" : "256 MiB in a 32-bit process");
  for (i = 0; i < o->n_literals; i++) {
    size_t L = o->literals[i].length;
    if (L == 0 || o->literals[i].bytes == NULL) return WHY("literal %u is empty", i + 1);
    if (L > BM_SCAN_MAX_LITERAL)
      return WHY("literal %u: %llu bytes, at most %u (1 MiB)", i + 1, (unsigned long long)L,
                 BM_SCAN_MAX_LITERAL);
    if (L >= window)
      return WHY("literal %u (%llu bytes) must be shorter than the window (%llu bytes)", i + 1,
                 (unsigned long long)L, (unsigned long long)window);
  }
  if (o->threads > BM_SCAN_MAX_THREADS)
    return WHY("threads %u: at most %d", o->threads, BM_SCAN_MAX_THREADS);
  if (o->length != BM_TO_END && o->offset + o->length < o->offset)
  {
    (void)WHY("offset plus length overflows 64 bits");
    return BM_EOVERFLOW;
  }
  if ((o->flags & BM_SCAN_PART) && o->match_end != 0 && o->match_end != BM_TO_END &&
      o->length != BM_TO_END && o->match_end < o->offset + o->length)
    return WHY("match_end %llu lies before the range's end", (unsigned long long)o->match_end);
  return 0;
}

int bm_scan_check(const bm_scan_opts_t *o) { return bm_scan_check_why(o, NULL, 0); }

void bm_scan_free(bm_scan_t *s) {
  unsigned i;
  if (s == NULL) return;
  for (i = 0; i < s->nlit; i++) {
    free((void *)s->lit[i].lit);
    free(s->lit[i].fail);
    phases_free(&s->acc[i]);
  }
  phases_free(&s->tmp);
  bm_xxh3_free(s->h);
  free(s);
}

int bm_scan_begin(bm_scan_t **out, const bm_scan_opts_t *o) {
  bm_scan_t *s;
  unsigned i;
  int err;
  if (out == NULL) return BM_EINVAL;
  *out = NULL;
  if ((err = bm_scan_check(o)) != 0) return err;
  if ((s = calloc(1, sizeof(*s))) == NULL) return BM_ENOMEM;
  s->flags = scan_flags(o);
  s->offset = s->next_new = s->cov = o->offset;
  s->stream = o->length == BM_TO_END;
  s->length = s->stream ? 0 : o->length;
  s->end = s->stream ? UINT64_MAX : o->offset + o->length;
  s->match_end = (s->flags & BM_SCAN_PART) ? o->match_end : s->end;
  if (s->match_end == 0) s->match_end = s->end;
  if ((s->flags & BM_SCAN_HASH) && (s->h = bm_xxh3_new()) == NULL) goto nomem;
  for (i = 0; i < o->n_literals; i++) {
    literal_t *lt = &s->lit[i];
    size_t L = o->literals[i].length;
    unsigned char *copy = malloc(L);
    if (copy == NULL) goto nomem;
    memcpy(copy, o->literals[i].bytes, L);
    lt->lit = copy;
    lt->L = L;
    lt->per = L;
    s->nlit = i + 1;
    if (L > 1) {
      if ((lt->fail = malloc((L + 1) * sizeof(size_t))) == NULL) goto nomem;
      kmp_borders(copy, L, lt->fail);
      lt->per = L - lt->fail[L];
    }
    if (L - 1 > s->ovl) s->ovl = L - 1;
    {
      bm_xxh3_t *h = bm_xxh3_new();
      if (h == NULL) goto nomem;
      bm_xxh3_update(h, copy, L);
      s->id[i] = bm_xxh3_digest(h);
      bm_xxh3_free(h);
    }
    if ((s->flags & BM_SCAN_PART) && phases_identity(&s->acc[i], L) != 0) goto nomem;
  }
  *out = s;
  return 0;
nomem:
  bm_scan_free(s);
  return BM_ENOMEM;
}

size_t bm_scan_overlap(const bm_scan_t *s) { return s ? s->ovl : 0; }

int bm_scan_work_new(const bm_scan_t *s, bm_scan_work_t **out) {
  if (s == NULL || out == NULL) return BM_EINVAL;
  return (*out = calloc(1, sizeof(**out))) == NULL ? BM_ENOMEM : 0;
}

void bm_scan_work_free(bm_scan_work_t *w) {
  unsigned i;
  if (w == NULL) return;
  machine_free(&w->m);
  for (i = 0; i < BM_SCAN_MAX_LITERALS; i++) phases_free(&w->fn[i]);
  free(w);
}

/* The match starts a chunk covers: [0, n). */
static int chunk_starts(const bm_scan_t *s, const bm_scan_chunk_t *c, size_t *n) {
  if (c == NULL || (c->data == NULL && c->length > 0) || c->overlap > c->length ||
      c->avail < c->length)
    return BM_EINVAL;
  if (c->final) *n = c->length;
  else if (c->length < s->ovl) return BM_EINVAL;
  else *n = c->length - s->ovl;
  return 0;
}

int bm_scan_work_run(const bm_scan_t *s, bm_scan_work_t *w, const bm_scan_chunk_t *c) {
  size_t n;
  unsigned i;
  int err;
  if (s == NULL || w == NULL) return BM_EINVAL;
  if ((err = chunk_starts(s, c, &n)) != 0) return err;
  w->lines = (s->flags & BM_SCAN_LINES) ? bm__count_byte(c->data + c->overlap, c->length - c->overlap, '\n') : 0;
  for (i = 0; i < s->nlit; i++)
    if ((err = window_phases(c->data, n, c->avail, &s->lit[i], &w->m, &w->fn[i])) != 0) return err;
  return 0;
}

int bm_scan_merge(bm_scan_t *s, bm_scan_work_t *w, const bm_scan_chunk_t *c) {
  size_t n;
  unsigned i;
  int err;
  if (s == NULL || w == NULL || s->finished) return BM_EINVAL;
  if ((err = chunk_starts(s, c, &n)) != 0) return err;
  if (c->offset + c->overlap != s->next_new || c->offset != s->cov ||
      c->offset + c->length > s->end ||
      (c->final && !s->stream && c->offset + c->length != s->end))
    return BM_EINVAL;
  if (s->h) bm_xxh3_update(s->h, c->data + c->overlap, c->length - c->overlap);
  s->lines += w->lines;
  for (i = 0; i < s->nlit; i++) {
    if (s->flags & BM_SCAN_PART) {
      phases_t t;
      if ((err = phases_compose(&s->acc[i], &w->fn[i], &s->tmp)) != 0) return err;
      t = s->acc[i], s->acc[i] = s->tmp, s->tmp = t;
    } else {
      uint64_t cnt, next;
      phases_eval(&w->fn[i], s->phase[i], &cnt, &next);
      s->phase[i] = next;
      s->count[i] += cnt;
    }
  }
  s->next_new = c->offset + c->length;
  s->cov = c->offset + n;
  if (c->final) s->finished = 1;
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * Finishing, parts. */
static int part_new(const bm_scan_t *s, bm_scan_part_t **out) {
  bm_scan_part_t *pt = calloc(1, sizeof(*pt));
  unsigned i;
  if (pt == NULL) return BM_ENOMEM;
  pt->offset = s->offset;
  pt->length = s->length;
  pt->lines = s->lines;
  pt->nlit = s->nlit;
  for (i = 0; i < s->nlit; i++) {
    pt->len[i] = s->lit[i].L;
    pt->id[i] = s->id[i];
    if (phases_copy(&pt->fn[i], &s->acc[i]) != 0) {
      bm_scan_part_free(pt);
      return BM_ENOMEM;
    }
  }
  *out = pt;
  return 0;
}

int bm_scan_finish(bm_scan_t *s, bm_scan_result_t *out) {
  unsigned i;
  int err;
  if (s == NULL || out == NULL) return BM_EINVAL;
  /* A stream ends where its final window did (or where it began, when it had none). */
  if (s->stream && (s->finished || s->cov == s->next_new)) {
    s->end = s->next_new;
    s->length = s->end - s->offset;
    s->stream = 0;
  }
  if (s->next_new != s->end) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  out->offset = s->offset;
  out->length = s->length;
  out->bytes = s->length;
  if (s->h) out->xxh3 = bm_xxh3_digest(s->h);
  out->lines = s->lines;
  out->threads = 1;
  for (i = 0; i < s->nlit; i++) {
    if (s->flags & BM_SCAN_PART) {
      uint64_t next;
      phases_eval(&s->acc[i], 0, &out->counts[i], &next);
    } else {
      out->counts[i] = s->count[i];
    }
  }
  if ((s->flags & BM_SCAN_PART) && (err = part_new(s, &out->part)) != 0) return err;
  s->finished = 1;
  return 0;
}

void bm_scan_part_free(bm_scan_part_t *p) {
  unsigned i;
  if (p == NULL) return;
  for (i = 0; i < BM_SCAN_MAX_LITERALS; i++) phases_free(&p->fn[i]);
  free(p);
}

int bm_scan_part_fold(bm_scan_part_t *acc, const bm_scan_part_t *next) {
  phases_t out[BM_SCAN_MAX_LITERALS];
  unsigned i;
  int err = 0;
  if (acc == NULL || next == NULL || acc == next) return BM_EINVAL;
  if (acc->offset + acc->length != next->offset || acc->nlit != next->nlit ||
      next->offset + next->length < next->offset)
    return BM_EINVAL;
  for (i = 0; i < acc->nlit; i++)
    if (acc->len[i] != next->len[i] || acc->id[i] != next->id[i]) return BM_EINVAL;
  memset(out, 0, sizeof(out));
  for (i = 0; i < acc->nlit && err == 0; i++) err = phases_compose(&acc->fn[i], &next->fn[i], &out[i]);
  if (err != 0) {
    for (i = 0; i < acc->nlit; i++) phases_free(&out[i]);
    return err;
  }
  for (i = 0; i < acc->nlit; i++) {
    phases_free(&acc->fn[i]);
    acc->fn[i] = out[i];
  }
  acc->length += next->length;
  acc->lines += next->lines;
  return 0;
}

int bm_scan_part_counts(const bm_scan_part_t *p, uint64_t *counts, unsigned *n_literals) {
  unsigned i;
  if (p == NULL) return BM_EINVAL;
  for (i = 0; i < p->nlit && counts != NULL; i++) {
    uint64_t next;
    phases_eval(&p->fn[i], 0, &counts[i], &next);
  }
  if (n_literals) *n_literals = p->nlit;
  return 0;
}

void bm_scan_part_range(const bm_scan_part_t *p, uint64_t *offset, uint64_t *length,
                        uint64_t *lines) {
  if (offset) *offset = p ? p->offset : 0;
  if (length) *length = p ? p->length : 0;
  if (lines) *lines = p ? p->lines : 0;
}

int bm_scan_part_copy(bm_scan_part_t **out, const bm_scan_part_t *p) {
  bm_scan_part_t *c;
  unsigned i;
  if (out == NULL || p == NULL) return BM_EINVAL;
  if ((c = malloc(sizeof(*c))) == NULL) return BM_ENOMEM;
  *c = *p;
  for (i = 0; i < BM_SCAN_MAX_LITERALS; i++) memset(&c->fn[i], 0, sizeof(c->fn[i]));
  for (i = 0; i < p->nlit; i++)
    if (phases_copy(&c->fn[i], &p->fn[i]) != 0) {
      bm_scan_part_free(c);
      return BM_ENOMEM;
    }
  *out = c;
  return 0;
}

/* The bytes of a part: "BMSP", version 1, then little-endian u64s: offset, length, lines,
 * nlit, and for each literal its length, id, entry count and entries (lo hi count value
 * shift). */
#define PART_MAGIC 0x50534d42u /* "BMSP" */

static void put64(unsigned char **q, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++) (*q)[i] = (unsigned char)(v >> (8 * i));
  *q += 8;
}

static uint64_t get64(const unsigned char *q) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | q[i];
  return v;
}

int bm_scan_part_save(const bm_scan_part_t *p, void *buf, size_t n, size_t *need) {
  size_t total = 16 + 8 * 3;
  unsigned i;
  size_t k;
  unsigned char *q = buf;
  if (p == NULL || need == NULL) return BM_EINVAL;
  for (i = 0; i < p->nlit; i++) total += 24 + p->fn[i].n * 40;
  *need = total;
  if (buf == NULL) return 0;
  if (n < total) return BM_ENOSPC;
  put64(&q, PART_MAGIC | (1ull << 32));
  put64(&q, p->offset);
  put64(&q, p->length);
  put64(&q, p->lines);
  put64(&q, p->nlit);
  for (i = 0; i < p->nlit; i++) {
    put64(&q, p->len[i]);
    put64(&q, p->id[i]);
    put64(&q, p->fn[i].n);
    for (k = 0; k < p->fn[i].n; k++) {
      const phase_t *e = &p->fn[i].v[k];
      put64(&q, e->lo);
      put64(&q, e->hi);
      put64(&q, e->count);
      put64(&q, e->value);
      put64(&q, (uint64_t)e->shift);
    }
  }
  return 0;
}

int bm_scan_part_load(bm_scan_part_t **out, const void *buf, size_t n) {
  const unsigned char *q = buf, *end;
  bm_scan_part_t *p;
  unsigned i;
  uint64_t nlit;
  if (out == NULL) return BM_EINVAL;
  *out = NULL;
  if (buf == NULL || n < 40 || get64(q) != (PART_MAGIC | (1ull << 32))) return BM_EINVAL;
  end = q + n;
  if ((p = calloc(1, sizeof(*p))) == NULL) return BM_ENOMEM;
  p->offset = get64(q + 8);
  p->length = get64(q + 16);
  p->lines = get64(q + 24);
  nlit = get64(q + 32);
  q += 40;
  if (nlit > BM_SCAN_MAX_LITERALS || p->offset + p->length < p->offset || p->lines > p->length)
    goto bad;
  p->nlit = (unsigned)nlit;
  for (i = 0; i < p->nlit; i++) {
    uint64_t L, cnt, k, expect = 0;
    if ((size_t)(end - q) < 24) goto bad;
    L = get64(q);
    p->len[i] = L;
    p->id[i] = get64(q + 8);
    cnt = get64(q + 16);
    q += 24;
    if (L == 0 || L > BM_SCAN_MAX_LITERAL || cnt == 0 || cnt > L || cnt > (uint64_t)(end - q) / 40)
      goto bad;
    if ((p->fn[i].v = malloc((size_t)cnt * sizeof(phase_t))) == NULL) {
      bm_scan_part_free(p);
      return BM_ENOMEM;
    }
    p->fn[i].cap = (size_t)cnt;
    /* Entries must cover [0, L) in order, hand on phases inside [0, L), and count no more
     * matches than the range could hold. */
    for (k = 0; k < cnt; k++, q += 40) {
      phase_t e;
      uint64_t sh;
      e.lo = get64(q);
      e.hi = get64(q + 8);
      e.count = get64(q + 16);
      e.value = get64(q + 24);
      sh = get64(q + 32);
      if (sh > 1 || e.lo != expect || e.hi < e.lo || e.hi >= L || e.count > p->length) goto bad;
      e.shift = (int)sh;
      if (e.shift ? (e.value > e.lo || e.hi - e.value >= L) : e.value >= L) goto bad;
      p->fn[i].v[p->fn[i].n++] = e;
      expect = e.hi + 1;
    }
    if (expect != L) goto bad;
  }
  if (q != end) goto bad;
  *out = p;
  return 0;
bad:
  bm_scan_part_free(p);
  return BM_EINVAL;
}

/* ---------------------------------------------------------------------------------------
 * A buffer: one final window on the calling thread. */
int bm_scan_buffer(const void *data, size_t n, const bm_scan_opts_t *opts, bm_scan_result_t *out) {
  bm_scan_opts_t o;
  bm_scan_t *s = NULL;
  bm_scan_work_t *w = NULL;
  bm_scan_chunk_t c;
  uint64_t length, mend;
  int err;
  if (out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  if (opts == NULL || (data == NULL && n > 0)) return BM_EINVAL;
  if ((err = bm_scan_check(opts)) != 0) return err;
  o = *opts;
  if (o.offset > n) return BM_ERANGE;
  length = o.length == BM_TO_END ? n - o.offset : o.length;
  if (length > n - o.offset) return BM_ERANGE;
  o.length = length;
  mend = o.offset + length;
  if (o.flags & BM_SCAN_PART) {
    mend = o.match_end == 0 ? mend : o.match_end == BM_TO_END ? n : o.match_end;
    if (mend > n) return BM_ERANGE;
    o.match_end = mend;
  }
  if ((err = bm_scan_begin(&s, &o)) != 0) return err;
  if ((err = bm_scan_work_new(s, &w)) != 0) goto out;
  memset(&c, 0, sizeof(c));
  c.data = (const unsigned char *)data + o.offset;
  c.length = (size_t)length;
  c.avail = (size_t)(mend - o.offset);
  c.offset = o.offset;
  c.final = 1;
  if ((err = bm_scan_work_run(s, w, &c)) != 0) goto out;
  if ((err = bm_scan_merge(s, w, &c)) != 0) goto out;
  err = bm_scan_finish(s, out);
  out->window = length;
out:
  bm_scan_work_free(w);
  bm_scan_free(s);
  return err;
}

/* ---------------------------------------------------------------------------------------
 * bm_scan: the stages on the core's window scheduler. */
static bm_scan_chunk_t scan_chunk(const bm__pool_win_t *w) {
  bm_scan_chunk_t c;
  c.data = w->data;
  c.length = w->length;
  c.overlap = w->overlap;
  c.avail = w->avail;
  c.offset = w->offset;
  c.final = w->final;
  return c;
}

static int scan_parallel(void *ctx, bm__pool_win_t *w) {
  bm_scan_chunk_t c = scan_chunk(w);
  return bm_scan_work_run(ctx, w->user, &c);
}

static int scan_ordered(void *ctx, bm__pool_win_t *w) {
  bm_scan_chunk_t c = scan_chunk(w);
  return bm_scan_merge(ctx, w->user, &c);
}

int bm_scan(bm_source_t *src, const bm_scan_opts_t *opts, bm_scan_result_t *out) {
  bm_scan_opts_t o;
  bm_window_opts_t wo;
  bm__pool_t p;
  bm_scan_t *s = NULL;
  void **works = NULL;
  uint64_t size, asl;
  unsigned i, threads;
  int err;

  if (out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  if (src == NULL || opts == NULL) return BM_EINVAL;
  if ((err = bm_scan_check(opts)) != 0) return err;
  if ((err = bm_source_size(src, &size)) != 0) return err;
  o = *opts;
  if (o.offset > size) return BM_ERANGE;
  if (o.length == BM_TO_END) o.length = size - o.offset;
  if (o.length > size - o.offset) return BM_ERANGE;
  if (o.flags & BM_SCAN_PART) {
    uint64_t mend = o.match_end == 0 ? o.offset + o.length : o.match_end == BM_TO_END ? size : o.match_end;
    if (mend > size) mend = size;
    o.match_end = mend;
  }
  threads = o.threads ? o.threads : bm__os_cpu_count();
  memset(&wo, 0, sizeof(wo));
  wo.window = o.window ? o.window : BM__DEFAULT_WINDOW;
  wo.start = o.offset;
  wo.length = o.length;
  wo.max_mapped = o.max_mapped;
  /* Under an address-space limit (ulimit -v) the windows in flight keep to a quarter of
   * it, leaving the rest to the threads' stacks, the heap and the program. */
  if (wo.max_mapped == 0 && (asl = bm__os_as_limit()) != 0) wo.max_mapped = asl / 4;
  if ((err = bm_scan_begin(&s, &o)) != 0) return err;
  wo.overlap = bm_scan_overlap(s);
  memset(&p, 0, sizeof(p));
  /* One window a worker being counted, one being mapped ahead, one being merged. */
  p.inflight = threads + 2;
  if ((err = bm_window_plan(src, &wo, p.inflight, &p.plan)) != 0) goto out;
  if (p.plan.count > 1 && p.plan.step <= wo.overlap) {
    err = BM_EINVAL; /* max_mapped leaves windows no longer than the literal */
    goto out;
  }
  if ((works = calloc(p.inflight, sizeof(*works))) == NULL) {
    err = BM_ENOMEM;
    goto out;
  }
  for (i = 0; i < p.inflight; i++)
    if ((err = bm_scan_work_new(s, (bm_scan_work_t **)&works[i])) != 0) goto out;
  p.src = src;
  p.access = BM_ACCESS_READ;
  p.prefault = 1;
  p.tail = (o.flags & BM_SCAN_PART) ? o.match_end - (o.offset + o.length) : 0;
  if (p.tail > wo.overlap) p.tail = wo.overlap;
  p.threads = threads;
  p.user = works;
  p.parallel = (s->flags & BM_SCAN_LINES) || s->nlit ? scan_parallel : NULL;
  p.ordered = scan_ordered;
  p.ctx = s;
  p.progress = o.progress;
  p.progress_arg = o.progress_arg;
  p.cancel = o.cancel;
  err = bm__pool_run(&p);
  out->os_error = p.os_error;
  if (err == 0) err = bm_scan_finish(s, out);
  out->window = p.plan.step;
  out->threads = p.threads_used;
  out->peak_mapped = p.peak_mapped;
  out->os_error = p.os_error;
out:
  if (works)
    for (i = 0; i < p.inflight; i++) bm_scan_work_free(works[i]);
  free(works);
  bm_scan_free(s);
  return err;
}

/* ---------------------------------------------------------------------------------------
 * bm_scan_fd: a stream read into the pool's buffers, one window at a time and in order,
 * through the same stages. */

/* A stream's buffers are allocated, not views of the page cache: smaller windows, and few
 * threads by default (a pipe feeds no more than a few counting threads can take). */
#define SCAN_STREAM_WINDOW (8u << 20)
#define SCAN_STREAM_THREADS 4
/* How long a read waits before it looks at the cancel flag again. */
#define SCAN_STREAM_WAIT_MS 20

typedef struct {
  bm_scan_t *s;
  bm__pool_t *p;
  bm_os_handle_t fd;
  uint64_t start;       /* the range: bytes before start are read and dropped */
  uint64_t end;         /* UINT64_MAX: the stream's end */
  uint64_t tail;        /* BM_SCAN_PART: bytes past end the final window may read */
  size_t step, ovl;
  uint64_t pos;         /* bytes read from fd */
  unsigned char *keep;  /* the last ovl bytes read: the next window's overlap */
  size_t keep_len;
} stream_t;

static int stream_parallel(void *ctx, bm__pool_win_t *w) {
  return scan_parallel(((stream_t *)ctx)->s, w);
}

static int stream_ordered(void *ctx, bm__pool_win_t *w) {
  return scan_ordered(((stream_t *)ctx)->s, w);
}

/* Reads up to want bytes (fewer only at the end of the stream), looking at the cancel flag
 * and the run's state while it waits. */
static int stream_fill(stream_t *st, unsigned char *dst, size_t want, size_t *got, int *os) {
  *got = 0;
  while (*got < want) {
    size_t n, chunk = want - *got > (1u << 30) ? (1u << 30) : want - *got;
    int err;
    if (bm__pool_cancelled(st->p)) return BM_ECANCELED;
    err = bm__os_stream_read(st->fd, dst + *got, chunk, SCAN_STREAM_WAIT_MS, &n);
    if (err == BM_ETIMEDOUT) {
      if (bm__pool_stopped(st->p)) return BM_ECANCELED;
      continue;
    }
    if (err != 0) {
      *os = bm_last_os_error();
      return err;
    }
    if (n == 0) break;
    *got += n;
  }
  return 0;
}

/* The pool's read stage: the overlap kept from the previous window, then up to a window of
 * new bytes; the final window (the stream or the range ended) also reads the tail. */
static int stream_read(void *ctx, bm__pool_win_t *w) {
  stream_t *st = ctx;
  size_t got, want, ovl, keep;
  int err, final = 0;
  while (st->pos < st->start) {
    uint64_t skip = st->start - st->pos;
    if ((err = stream_fill(st, w->buf, skip < st->step ? (size_t)skip : st->step, &got, &w->os_error)) != 0)
      return err;
    if (got == 0) return BM_ERANGE; /* the stream ended before the range began */
    st->pos += got;
  }
  ovl = st->keep_len;
  if (ovl > 0) memcpy(w->buf, st->keep, ovl);
  want = st->step;
  if (st->end != UINT64_MAX && st->end - st->pos < want) want = (size_t)(st->end - st->pos);
  if ((err = stream_fill(st, w->buf + ovl, want, &got, &w->os_error)) != 0) return err;
  st->pos += got;
  if (got < want) {
    if (st->end != UINT64_MAX) return BM_ERANGE; /* the stream ended before the range */
    final = 1;
  } else if (st->pos == st->end) {
    final = 1;
  }
  w->length = ovl + got;
  w->overlap = ovl;
  w->offset = st->pos - got - ovl;
  w->avail = w->length;
  w->final = final;
  if (final && st->tail > 0) {
    if ((err = stream_fill(st, w->buf + w->length, (size_t)st->tail, &got, &w->os_error)) != 0)
      return err;
    w->avail += got;
  }
  keep = w->length < st->ovl ? w->length : st->ovl;
  if (keep > 0) memcpy(st->keep, w->buf + w->length - keep, keep);
  st->keep_len = keep;
  return 0;
}

int bm_scan_fd(bm_os_handle_t fd, const bm_scan_opts_t *opts, bm_scan_result_t *out) {
  bm_scan_opts_t o;
  bm__pool_t p;
  stream_t st;
  void **works = NULL;
  uint64_t window, budget;
  unsigned i, threads;
  int err;

  if (out == NULL) return BM_EINVAL;
  memset(out, 0, sizeof(*out));
  if (opts == NULL) return BM_EINVAL;
  if ((err = bm_scan_check(opts)) != 0) return err;
  if ((err = bm__os_stream_check(fd)) != 0) {
    out->os_error = bm_last_os_error();
    return err;
  }
  o = *opts;
  threads = o.threads ? o.threads : bm__os_cpu_count();
  if (o.threads == 0 && threads > SCAN_STREAM_THREADS) threads = SCAN_STREAM_THREADS;
  memset(&st, 0, sizeof(st));
  memset(&p, 0, sizeof(p));
  st.fd = fd;
  st.start = o.offset;
  st.end = o.length == BM_TO_END ? UINT64_MAX : o.offset + o.length;
  if ((err = bm_scan_begin(&st.s, &o)) != 0) return err;
  st.ovl = bm_scan_overlap(st.s);
  /* A match beginning in the range may run past it, up to match_end (the final window
   * reads those bytes: they are consumed from the stream). */
  if ((o.flags & BM_SCAN_PART) && st.end != UINT64_MAX && o.match_end != 0)
    st.tail = o.match_end == BM_TO_END || o.match_end - st.end > st.ovl ? st.ovl : o.match_end - st.end;
  window = o.window ? o.window : SCAN_STREAM_WINDOW;
  /* One buffer a worker being counted, one being read, one being merged; max_mapped (or
   * a quarter of the address-space limit) bounds them all: the window shrinks to fit. */
  p.inflight = threads + 2;
  budget = o.max_mapped ? o.max_mapped : bm__os_as_limit() / 4;
  if (budget != 0 && (window + 2 * st.ovl) * p.inflight > budget) {
    uint64_t per = budget / p.inflight;
    if (per <= 3 * (uint64_t)st.ovl + 1) {
      err = BM_EINVAL; /* max_mapped leaves windows no longer than the literal */
      goto out;
    }
    window = per - 2 * st.ovl;
  }
  st.step = (size_t)window;
  if (st.ovl > 0 && (st.keep = malloc(st.ovl)) == NULL) {
    err = BM_ENOMEM;
    goto out;
  }
  if ((works = calloc(p.inflight, sizeof(*works))) == NULL) {
    err = BM_ENOMEM;
    goto out;
  }
  for (i = 0; i < p.inflight; i++)
    if ((err = bm_scan_work_new(st.s, (bm_scan_work_t **)&works[i])) != 0) goto out;
  st.p = &p;
  p.plan.count = UINT64_MAX; /* known once the stream ends */
  p.read = stream_read;
  p.bufsize = st.step + 2 * st.ovl;
  p.total = o.length == BM_TO_END ? 0 : o.length;
  p.threads = threads;
  p.user = works;
  p.parallel = (st.s->flags & BM_SCAN_LINES) || st.s->nlit ? stream_parallel : NULL;
  p.ordered = stream_ordered;
  p.ctx = &st;
  p.progress = o.progress;
  p.progress_arg = o.progress_arg;
  p.cancel = o.cancel;
  err = bm__pool_run(&p);
  if (err == 0) err = bm_scan_finish(st.s, out);
  out->window = st.step;
  out->threads = p.threads_used;
  out->peak_mapped = p.peak_mapped;
  out->os_error = p.os_error;
  if (err != 0 && p.os_error != 0) bm__set_os_error(p.os_error);
out:
  if (works)
    for (i = 0; i < p.inflight; i++) bm_scan_work_free(works[i]);
  free(works);
  free(st.keep);
  bm_scan_free(st.s);
  return err;
}

/* ---------------------------------------------------------------------------------------
 * bm_scan_files: many files. A small regular file is read whole into a buffer and scanned
 * there (bm_scan_buffer), 64 files a job on the pool's threads: for many small files the
 * hops between threads, and mapping, cost more than the work (10,000 files of 4 KiB: see
 * perf/RESULTS.md). The others follow one by one: bm_scan for the larger files, bm_scan_fd
 * for what is not a regular file (a FIFO, a device, a /proc file). */
#define SCAN_SMALL (256u << 10)
#define SCAN_BATCH 64

enum { FILE_UNTRIED = 0, FILE_DONE, FILE_LARGE, FILE_STREAM };

typedef struct {
  bm_scan_file_t *files;
  size_t n;
  const bm_scan_opts_t *o;
  unsigned char *state;
  bm_os_handle_t *handles; /* FILE_STREAM: open since the first look */
  bm__pool_t *pool;
  uint64_t base; /* bytes scanned before the current step, for progress */
  int (*progress)(uint64_t done, uint64_t total, void *arg);
  void *progress_arg;
} files_t;

/* Progress across the files: done adds up, the total is not known (0). */
static int files_progress(uint64_t done, uint64_t total, void *arg) {
  files_t *fs = arg;
  (void)total;
  return fs->progress(fs->base + done, 0, fs->progress_arg);
}

/* Scans path if it is a small regular file, into f (FILE_DONE); else says which way it
 * goes: a stream keeps its handle open in *h (a FIFO's writer that has just opened it
 * would get EPIPE if it were closed). A file that changes size meanwhile, or a /proc file
 * (which claims a size it does not have), is left to bm_scan, which reports it. */
static int scan_small(bm_scan_file_t *f, const bm_scan_opts_t *opts, unsigned char *buf,
                      bm_os_handle_t *h) {
  bm_scan_opts_t o = *opts;
  uint64_t size;
  size_t got = 0, n;
  int err;
  if ((err = bm__os_stream_open(f->path, h, &size)) != 0) {
    f->status = err;
    f->result.os_error = bm_last_os_error();
    return FILE_DONE;
  }
  if (size == UINT64_MAX) return FILE_STREAM;
  if (size == 0 || size > SCAN_SMALL) {
    bm__os_stream_close(*h);
    return FILE_LARGE;
  }
  /* One byte more than the size, to see a file that grew. */
  while (got <= size) {
    err = bm__os_stream_read(*h, buf + got, (size_t)size + 1 - got, 0, &n);
    if (err == BM_ETIMEDOUT) continue; /* (a regular file is always readable) */
    if (err != 0 || n == 0) break;
    got += n;
  }
  bm__os_stream_close(*h);
  if (got != size) return FILE_LARGE;
  /* As bm_scan takes them: a match_end past the file's end is its end. */
  if ((o.flags & BM_SCAN_PART) && o.match_end != 0 && o.match_end != BM_TO_END && o.match_end > size)
    o.match_end = size;
  f->status = bm_scan_buffer(buf, (size_t)size, &o, &f->result);
  return FILE_DONE;
}

static int files_job(void *ctx, bm__pool_win_t *w) {
  files_t *fs = ctx;
  size_t i, end = (size_t)(w->index + 1) * SCAN_BATCH;
  uint64_t bytes = 0;
  for (i = (size_t)w->index * SCAN_BATCH; i < end && i < fs->n; i++) {
    bm_scan_file_t *f = &fs->files[i];
    if (bm__pool_cancelled(fs->pool)) return BM_ECANCELED;
    if (fs->state[i] == FILE_DONE) continue; /* no path */
    fs->state[i] = (unsigned char)scan_small(f, fs->o, w->user, &fs->handles[i]);
    if (fs->state[i] == FILE_DONE && f->status == 0) bytes += f->result.bytes;
  }
  w->length = (size_t)bytes; /* for the progress */
  return 0;
}

int bm_scan_files(bm_scan_file_t *files, size_t n, const bm_scan_opts_t *opts) {
  files_t fs;
  bm__pool_t p;
  bm_scan_opts_t o;
  void **bufs = NULL;
  size_t i;
  unsigned k;
  int err = 0, first = 0;

  if ((files == NULL && n > 0) || opts == NULL) return BM_EINVAL;
  if ((err = bm_scan_check(opts)) != 0) return err;
  for (i = 0; i < n; i++) {
    memset(&files[i].result, 0, sizeof(files[i].result));
    files[i].status = files[i].path == NULL || files[i].path[0] == '\0' ? BM_EINVAL : 0;
  }
  memset(&fs, 0, sizeof(fs));
  memset(&p, 0, sizeof(p));
  fs.files = files;
  fs.n = n;
  fs.o = opts;
  fs.pool = &p;
  fs.progress = opts->progress;
  fs.progress_arg = opts->progress_arg;
  if ((fs.state = calloc(n ? n : 1, 1)) == NULL ||
      (fs.handles = malloc((n ? n : 1) * sizeof(*fs.handles))) == NULL) {
    free(fs.state);
    return BM_ENOMEM;
  }
  for (i = 0; i < n; i++)
    if (files[i].status != 0) fs.state[i] = FILE_DONE;

  /* The small files, on the pool's threads: a job a batch, a buffer a slot. */
  p.threads = opts->threads ? opts->threads : bm__os_cpu_count();
  p.plan.count = (n + SCAN_BATCH - 1) / SCAN_BATCH;
  if (p.threads > p.plan.count) p.threads = (unsigned)(p.plan.count ? p.plan.count : 1);
  p.inflight = p.threads + 2;
  if ((bufs = calloc(p.inflight, sizeof(*bufs))) == NULL) {
    err = BM_ENOMEM;
    goto out;
  }
  for (k = 0; k < p.inflight; k++)
    if ((bufs[k] = malloc(SCAN_SMALL + 1)) == NULL) {
      err = BM_ENOMEM;
      goto out;
    }
  p.user = bufs;
  p.parallel = files_job;
  p.ctx = &fs;
  p.progress = fs.progress != NULL ? files_progress : NULL;
  p.progress_arg = &fs;
  p.cancel = opts->cancel;
  if (n > 0 && (err = bm__pool_run(&p)) != 0) goto out;
  fs.base = p.done;

  /* The others, one by one, each on the pool's threads. */
  o = *opts;
  if (fs.progress != NULL) {
    o.progress = files_progress;
    o.progress_arg = &fs;
  }
  for (i = 0; i < n && err == 0; i++) {
    bm_scan_file_t *f = &files[i];
    if (fs.state[i] == FILE_DONE) continue;
    if (opts->cancel != NULL && *opts->cancel) {
      err = BM_ECANCELED;
      break;
    }
    if (fs.state[i] == FILE_LARGE) {
      bm_source_t *src;
      if ((f->status = bm_file_open(&src, f->path, BM_FILE_READ)) == 0) {
        f->status = bm_scan(src, &o, &f->result);
        bm_source_close(src);
      } else if (f->status == BM_ENOTREG) {
        /* /proc and /sys files: read, not mapped */
        uint64_t size;
        if ((f->status = bm__os_stream_open(f->path, &fs.handles[i], &size)) == 0)
          fs.state[i] = FILE_STREAM;
      }
      if (fs.state[i] != FILE_STREAM && f->status != 0) f->result.os_error = bm_last_os_error();
    }
    if (fs.state[i] == FILE_STREAM) {
      f->status = bm_scan_fd(fs.handles[i], &o, &f->result);
      bm__os_stream_close(fs.handles[i]);
    }
    if (f->status == BM_ECANCELED) err = BM_ECANCELED;
    else if (f->status == 0) fs.base += f->result.bytes;
    fs.state[i] = FILE_DONE;
  }
  if (err == 0 && fs.progress != NULL && fs.progress(fs.base, fs.base, fs.progress_arg))
    err = BM_ECANCELED;
out:
  /* A cancel: the files not scanned say so (and the streams kept open are closed). */
  for (i = 0; i < n; i++) {
    if (fs.state[i] == FILE_STREAM) bm__os_stream_close(fs.handles[i]);
    if (fs.state[i] != FILE_DONE && files[i].status == 0) files[i].status = err ? err : BM_ECANCELED;
  }
  for (i = 0; i < n && err == 0 && first == 0; i++) first = files[i].status;
  if (bufs != NULL)
    for (k = 0; k < p.inflight; k++) free(bufs[k]);
  free(bufs);
  free(fs.handles);
  free(fs.state);
  return err != 0 ? err : first;
}

void bm_scan_opts_init(bm_scan_opts_t *o) {
  if (o == NULL) return;
  memset(o, 0, sizeof(*o));
  o->length = BM_TO_END;
}
