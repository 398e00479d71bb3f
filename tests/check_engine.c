/* The scan engine and the load against independent oracles, run as child processes on the
 * same file and range: Python's bytes.count (non-overlapping, left to right), xxhsum -H3 and
 * wc -l. Random files (sparse past 4 GiB too), windows, threads, ranges and literals
 * (periodic ones, long ones, up to 16 in a pass); the stages driven by the test in an odd
 * order; parts cut at random and folded; the errors; a source cut short; the load. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "testutil.h"
#ifdef _WIN32
#include <process.h>
#define test_pid() ((long)_getpid())
#else
#include <unistd.h>
#define test_pid() ((long)getpid())
#endif

#define MiB (1ull << 20)
#define GiB (1ull << 30)
/* bm_test_path's buffers are reused after a few calls: a test keeps its own copy. */
#define TMP_PATH(var, name) \
  char var[768];            \
  snprintf(var, sizeof(var), "%s", bm_test_path(name))

/* ---------------------------------------------------------------------------------------
 * Random numbers: one seed a test, printed, and taken from BM_TEST_SEED to repeat a run. */
static uint64_t seed, rs;

static uint64_t rnd(void) {
  uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void seed_rng(const char *test) {
  const char *e = getenv("BM_TEST_SEED");
  seed = e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)test_pid();
  rs = seed;
  printf("engine.%s: seed %llu (BM_TEST_SEED=%llu repeats it)\n", test, (unsigned long long)seed,
         (unsigned long long)seed);
  fflush(stdout);
}

/* ---------------------------------------------------------------------------------------
 * Contents: runs of "a", "abab...", text of a, b, space and newline (aaa, aabaa), binary
 * bytes, words, "aabaa" repeated: every literal of the pool below has many matches and many
 * near misses. */
static void gen(unsigned char *p, size_t n) {
  static const char *words[] = {"aabaa ", "ERROR ", "aaa", "abab", "\n", "ba", "aab", "a", " "};
  size_t i = 0, k;
  while (i < n) {
    size_t seg = 1 + (size_t)below(below(4) == 0 ? 20000 : 700);
    if (seg > n - i) seg = n - i;
    switch (below(7)) {
    case 0:
      memset(p + i, 'a', seg);
      if (below(2)) p[i + seg - 1] = (unsigned char)"b\n"[below(2)];
      break;
    case 1:
      for (k = 0; k < seg; k++) p[i + k] = (unsigned char)"ab"[k & 1];
      if (below(2)) p[i + (size_t)below(seg)] = 'a';
      break;
    case 2:
      for (k = 0; k < seg; k++) p[i + k] = (unsigned char)"aab \n"[below(5)];
      break;
    case 3:
      for (k = 0; k < seg; k++) p[i + k] = (unsigned char)rnd();
      break;
    case 4:
      for (k = 0; k < seg;) {
        const char *w = words[below(sizeof(words) / sizeof(words[0]))];
        size_t l = strlen(w);
        if (l > seg - k) l = seg - k;
        memcpy(p + i + k, w, l);
        k += l;
      }
      break;
    case 5:
      for (k = 0; k < seg; k++) p[i + k] = (unsigned char)"aabaa"[k % 5];
      break;
    default:
      memset(p + i, 0, seg);
      break;
    }
    i += seg;
  }
}

static void write_file(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  if (n) ck_assert_uint_eq(fwrite(p, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

/* ---------------------------------------------------------------------------------------
 * Literals: a pool of periodic and plain ones, and substrings of the data. */
typedef struct {
  bm_literal_t lit[BM_SCAN_MAX_LITERALS];
  unsigned n;
  unsigned char store[BM_SCAN_MAX_LITERALS][48];
  size_t maxlen;
} litset_t;

static const char *const pool[] = {
    "a",   "aa",   "aaa",  "aaaa",       "ab",          "abab",         "ababab",
    "aabaa", "aab", "ba",  "b",          "\n",          " ",            "ERROR",
    "aabaaabaa", "aaaaaaaaaaaaaaaaa", "ababababababababab", "aabaa aabaa", "a\n", "\n\n"};

static void lit_add(litset_t *ls, const void *bytes, size_t len) {
  unsigned i = ls->n++;
  ck_assert_uint_le(len, sizeof(ls->store[0]));
  memcpy(ls->store[i], bytes, len);
  ls->lit[i].bytes = ls->store[i];
  ls->lit[i].length = len;
  if (len > ls->maxlen) ls->maxlen = len;
}

/* n literals (0: a random number, 1 to 16), from the pool, the data and zeros. */
static void pick_literals(litset_t *ls, unsigned n, const unsigned char *data, size_t size) {
  memset(ls, 0, sizeof(*ls));
  if (n == 0) n = below(3) == 0 ? 1 : below(4) == 0 ? BM_SCAN_MAX_LITERALS : 1 + (unsigned)below(16);
  while (ls->n < n) {
    uint64_t k = below(10);
    if (k < 6) {
      const char *s = pool[below(sizeof(pool) / sizeof(pool[0]))];
      lit_add(ls, s, strlen(s));
    } else if (k < 9 && data != NULL && size > 0) {
      size_t len = 1 + (size_t)below(k == 6 ? 3 : 40), at;
      if (len > size) len = size;
      at = (size_t)below(size - len + 1);
      lit_add(ls, data + at, len);
    } else {
      static const unsigned char zeros[48];
      lit_add(ls, zeros, 1 + (size_t)below(4));
    }
  }
}

/* ---------------------------------------------------------------------------------------
 * The oracles. A query: the bytes [off, off+len) of a file; the count of each literal is
 * that of the matches a greedy left-to-right search begins in the range, reading up to mend
 * (a part's match_end; off+len for a plain scan), which is Python's
 * data[off:min(mend, off+len+L-1)].count(lit). */
typedef struct {
  uint64_t off, len, mend;
  const bm_literal_t *lits;
  unsigned n;
  int want_hash; /* also xxhsum -H3 and wc -l of the range */
  /* answers */
  uint64_t counts[BM_SCAN_MAX_LITERALS];
  uint64_t xxh3, lines;
  int hash_known;
} query_t;

/* The greedy count written plainly: a match is tried at every position, and one found
 * skips its length. Matches begin before `starts` and end by `avail`. */
static uint64_t naive_count(const unsigned char *d, size_t starts, size_t avail,
                            const unsigned char *lit, size_t L) {
  /* Every occurrence, found by Knuth-Morris-Pratt (each byte once, so long literals over
   * long periodic runs stay quick under Wine too), taken greedily: one that begins at or
   * after the end of the last one taken counts. */
  size_t *fail = malloc((L + 1) * sizeof(size_t)), i, j = 0, k = 0, next = 0;
  uint64_t c = 0;
  ck_assert_ptr_nonnull(fail);
  fail[0] = 0;
  if (L > 0) fail[1] = 0;
  for (i = 1; i < L; i++) {
    while (k > 0 && lit[i] != lit[k]) k = fail[k];
    if (lit[i] == lit[k]) k++;
    fail[i + 1] = k;
  }
  for (i = 0; i < avail; i++) {
    while (j > 0 && (j == L || lit[j] != d[i])) j = fail[j];
    if (lit[j] == d[i]) j++;
    if (j == L) {
      size_t at = i + 1 - L;
      if (at >= starts) break;
      if (at >= next) c++, next = at + L;
    }
  }
  free(fail);
  return c;
}

#ifndef _WIN32
static const char oracle_py[] =
    "import sys, re, subprocess\n"
    "f = open(sys.argv[1], 'rb')\n"
    "seen = {}\n"
    "for line in open(sys.argv[2]):\n"
    "    w = line.split()\n"
    "    off, ln, mend, want = int(w[0]), int(w[1]), int(w[2]), w[3] == '1'\n"
    "    f.seek(off)\n"
    "    d = f.read(mend - off)\n"
    "    assert len(d) == mend - off, 'short read'\n"
    "    counts = []\n"
    "    for h in w[4:]:\n"
    "        lit = bytes.fromhex(h)\n"
    "        counts.append(str(d[:min(len(d), ln + len(lit) - 1)].count(lit)))\n"
    "    x, n = '-', '-'\n"
    "    if want and (off, ln) in seen:\n"
    "        x, n = seen[(off, ln)]\n"
    "    elif want:\n"
    "        body = d[:ln]\n"
    "        o = subprocess.run(['xxhsum', '-H3'], input=body, capture_output=True, check=True)\n"
    "        m = re.search(r'(?:XXH3_)?\\b([0-9a-fA-F]{16})\\b', o.stdout.decode())\n"
    "        x = m.group(1)\n"
    "        o = subprocess.run(['wc', '-l'], input=body, capture_output=True, check=True)\n"
    "        n = o.stdout.split()[0].decode()\n"
    "        seen[(off, ln)] = (x, n)\n"
    "    print(x, n, *counts)\n";

static int have_oracles(void) {
  return access("/usr/bin/python3", X_OK) == 0 &&
         system("command -v xxhsum >/dev/null 2>&1 && command -v wc >/dev/null 2>&1") == 0;
}
#define NEED_ORACLES()                                                                     \
  do {                                                                                     \
    if (!have_oracles())                                                                   \
      BM_TEST_SKIP("needs /usr/bin/python3, xxhsum (package xxhash) and wc as oracles");   \
  } while (0)
#else
/* Under Wine there is no Python or xxhsum: the counts come from the test's own greedy
 * count and lines from its own loop; hashes are not compared (hash_known 0). */
#define NEED_ORACLES() ((void)0)
#endif

static void oracle(const char *path, query_t *q, size_t nq) {
#ifndef _WIN32
  char script[800], queries[800], cmd[2600], line[2048];
  FILE *f, *p;
  size_t i;
  unsigned k;
  snprintf(script, sizeof(script), "%s", bm_test_path("oracle.py"));
  snprintf(queries, sizeof(queries), "%s", bm_test_path("queries.txt"));
  f = fopen(script, "w");
  ck_assert_ptr_nonnull(f);
  fputs(oracle_py, f);
  ck_assert_int_eq(fclose(f), 0);
  f = fopen(queries, "w");
  ck_assert_ptr_nonnull(f);
  for (i = 0; i < nq; i++) {
    fprintf(f, "%llu %llu %llu %d", (unsigned long long)q[i].off, (unsigned long long)q[i].len,
            (unsigned long long)q[i].mend, q[i].want_hash);
    for (k = 0; k < q[i].n; k++) {
      size_t b;
      fputc(' ', f);
      for (b = 0; b < q[i].lits[k].length; b++)
        fprintf(f, "%02x", ((const unsigned char *)q[i].lits[k].bytes)[b]);
    }
    fputc('\n', f);
  }
  ck_assert_int_eq(fclose(f), 0);
  snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s' '%s'", script, path, queries);
  p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  for (i = 0; i < nq; i++) {
    char *s = line, *e;
    ck_assert_msg(fgets(line, sizeof(line), p) != NULL, "oracle: no answer for query %zu", i);
    q[i].hash_known = 0;
    if (*s != '-') {
      q[i].xxh3 = strtoull(s, &e, 16);
      ck_assert_msg(e == s + 16, "oracle: bad hash in '%s'", line);
      q[i].hash_known = 1;
    }
    s = strchr(s, ' ');
    ck_assert_ptr_nonnull(s);
    s++;
    q[i].lines = *s == '-' ? 0 : strtoull(s, NULL, 10);
    for (k = 0; k < q[i].n; k++) {
      s = strchr(s, ' ');
      ck_assert_msg(s != NULL, "oracle: %u counts wanted in '%s'", q[i].n, line);
      q[i].counts[k] = strtoull(++s, NULL, 10);
    }
  }
  ck_assert_msg(pclose(p) == 0, "the oracle (python3, xxhsum, wc) failed");
#else
  size_t i;
  unsigned k;
  for (i = 0; i < nq; i++) {
    size_t n = (size_t)(q[i].mend - q[i].off), j;
    unsigned char *d = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(bm_test_pread(path, q[i].off, d, n), n);
    for (k = 0; k < q[i].n; k++)
      q[i].counts[k] = naive_count(d, (size_t)q[i].len, n, q[i].lits[k].bytes, q[i].lits[k].length);
    q[i].lines = 0;
    for (j = 0; j < q[i].len; j++) q[i].lines += d[j] == '\n';
    q[i].hash_known = 0;
    free(d);
  }
#endif
}

/* A description of a case for failure messages. */
static const char *describe(const bm_scan_opts_t *o) {
  static char b[512];
  size_t n = 0;
  unsigned i;
  n += (size_t)snprintf(b + n, sizeof(b) - n,
                        "seed %llu: offset %llu length %lld window %llu threads %u max_mapped %llu "
                        "flags 0x%x match_end %lld literals",
                        (unsigned long long)seed, (unsigned long long)o->offset,
                        o->length == BM_TO_END ? -1ll : (long long)o->length,
                        (unsigned long long)o->window, o->threads,
                        (unsigned long long)o->max_mapped, o->flags,
                        o->match_end == BM_TO_END ? -1ll : (long long)o->match_end);
  for (i = 0; i < o->n_literals && n < sizeof(b) - 40; i++) {
    const unsigned char *p = o->literals[i].bytes;
    size_t L = o->literals[i].length, j;
    n += (size_t)snprintf(b + n, sizeof(b) - n, " [%zu:", L);
    for (j = 0; j < L && j < 6 && n < sizeof(b) - 8; j++)
      n += (size_t)snprintf(b + n, sizeof(b) - n, p[j] >= 32 && p[j] < 127 ? "%c" : "\\x%02x", p[j]);
    n += (size_t)snprintf(b + n, sizeof(b) - n, L > 6 ? "...]" : "]");
  }
  return b;
}

/* The result of a scan against its query. */
static void expect_result(const query_t *q, const bm_scan_opts_t *o, const bm_scan_result_t *r,
                          const char *what) {
  unsigned flags = o->flags, k;
  if (!(flags & (BM_SCAN_HASH | BM_SCAN_LINES)) && o->n_literals == 0) flags |= BM_SCAN_HASH | BM_SCAN_LINES;
  ck_assert_msg(r->offset == q->off && r->length == q->len && r->bytes == q->len,
                "%s: range %llu+%llu (%llu bytes), want %llu+%llu; %s", what,
                (unsigned long long)r->offset, (unsigned long long)r->length,
                (unsigned long long)r->bytes, (unsigned long long)q->off,
                (unsigned long long)q->len, describe(o));
  for (k = 0; k < q->n; k++)
    ck_assert_msg(r->counts[k] == q->counts[k], "%s: literal %u counted %llu, oracle %llu; %s",
                  what, k + 1, (unsigned long long)r->counts[k],
                  (unsigned long long)q->counts[k], describe(o));
  if ((flags & BM_SCAN_HASH) && q->hash_known)
    ck_assert_msg(r->xxh3 == q->xxh3, "%s: xxh3 %016llx, xxhsum -H3 %016llx; %s", what,
                  (unsigned long long)r->xxh3, (unsigned long long)q->xxh3, describe(o));
  if ((flags & BM_SCAN_LINES) && q->want_hash)
    ck_assert_msg(r->lines == q->lines, "%s: %llu lines, wc -l %llu; %s", what,
                  (unsigned long long)r->lines, (unsigned long long)q->lines, describe(o));
}

static void query_of(query_t *q, const bm_scan_opts_t *o, uint64_t size) {
  memset(q, 0, sizeof(*q));
  q->off = o->offset;
  q->len = o->length == BM_TO_END ? size - o->offset : o->length;
  q->mend = q->off + q->len;
  if (o->flags & BM_SCAN_PART) {
    uint64_t end = q->mend, longest = 0;
    size_t i;
    q->mend = o->match_end == 0 ? q->mend : o->match_end == BM_TO_END ? size : o->match_end;
    /* A match that starts in the range ends within the longest literal past its end: the
     * oracle reads no further (a match_end at the end of a 4 GiB file had it read GiBs of
     * holes, minutes under Wine on a loaded machine). The counts are the same. */
    for (i = 0; i < o->n_literals; i++)
      if (o->literals[i].length > longest) longest = o->literals[i].length;
    if (longest > 0 && q->mend > end + longest - 1) q->mend = end + longest - 1;
  }
  q->lits = o->literals;
  q->n = o->n_literals;
  q->want_hash = 1;
}

/* ---------------------------------------------------------------------------------------
 * Random scans of files. */
typedef struct {
  bm_scan_opts_t o;
  litset_t ls;
  query_t q;
  bm_scan_result_t r;
} scase_t;

/* Random options over a source of `size` bytes with granularity g (data: the bytes, for
 * literals taken from them; NULL for none). */
static void random_opts(scase_t *c, uint64_t size, uint64_t g, const unsigned char *data,
                        size_t dsize) {
  bm_scan_opts_t *o = &c->o;
  memset(c, 0, sizeof(*c));
  o->threads = 1 + (unsigned)below(4);
  o->window = g * (1 + below(8));
  switch (below(4)) {
  case 0:
    o->offset = 0, o->length = BM_TO_END;
    break;
  case 1:
    o->offset = below(size + 1), o->length = BM_TO_END;
    break;
  case 2:
    o->offset = below(size + 1);
    o->length = below(size - o->offset + 1);
    break;
  default: /* edges of windows */
    o->offset = below(size / g + 1) * g;
    if (o->offset > 0 && below(2)) o->offset -= below(o->offset < 64 ? o->offset + 1 : 64);
    if (o->offset > size) o->offset = size;
    o->length = size - o->offset;
    if (o->length > 0 && below(2)) o->length -= below(o->length < 64 ? o->length + 1 : 64);
    break;
  }
  if (below(10) == 0) {
    c->ls.n = 0; /* nothing asked for: hash and lines */
  } else {
    pick_literals(&c->ls, 0, data, dsize);
  }
  o->literals = c->ls.lit;
  o->n_literals = c->ls.n;
  o->flags = c->ls.n == 0 ? 0 : (unsigned[]){BM_SCAN_HASH | BM_SCAN_LINES, 0, BM_SCAN_LINES, BM_SCAN_HASH}[below(4)];
  if (c->ls.n > 0 && below(4) == 0) {
    /* a part, its matches running past the range, up to match_end */
    uint64_t end = o->offset + (o->length == BM_TO_END ? size - o->offset : o->length);
    o->flags |= BM_SCAN_PART;
    o->match_end = below(3) == 0 ? 0 : below(2) ? BM_TO_END : end + below(size - end + 1);
  }
  if (below(3) == 0) {
    /* A bound that shrinks the window to s (the scan keeps threads + 2 windows mapped,
     * each of the overlap, s and a granule of alignment slack), when s > the overlap. */
    uint64_t ovl = c->ls.maxlen ? c->ls.maxlen - 1 : 0, s = g * (1 + below(2));
    if (s > ovl) o->max_mapped = (o->threads + 2) * (s + ovl + g) + below(g);
  }
}

/* Scans path with each case's options, then asks the oracle about them all at once. */
static void run_cases(const char *path, uint64_t size, scase_t *c, size_t n, unsigned *shrunk) {
  bm_source_t *src;
  query_t *q = calloc(n, sizeof(*q));
  size_t i;
  ck_assert_ptr_nonnull(q);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  for (i = 0; i < n; i++) {
    int err = bm_scan(src, &c[i].o, &c[i].r);
    uint64_t g = bm_source_granularity(src);
    ck_assert_msg(err == 0, "bm_scan: %s; %s", bm_err_name(err), describe(&c[i].o));
    ck_assert_msg(c[i].r.window > 0 && c[i].r.window % g == 0 &&
                      c[i].r.window <= c[i].o.window,
                  "window %llu used for %llu asked; %s", (unsigned long long)c[i].r.window,
                  (unsigned long long)c[i].o.window, describe(&c[i].o));
    ck_assert_msg(c[i].r.threads >= 1 && c[i].r.threads <= c[i].o.threads,
                  "%u threads used; %s", c[i].r.threads, describe(&c[i].o));
    if (c[i].o.max_mapped) {
      ck_assert_msg(c[i].r.peak_mapped <= c[i].o.max_mapped, "peak %llu mapped; %s",
                    (unsigned long long)c[i].r.peak_mapped, describe(&c[i].o));
      if (shrunk != NULL && c[i].r.window < c[i].o.window) (*shrunk)++;
    }
    if (c[i].o.flags & BM_SCAN_PART) {
      uint64_t counts[BM_SCAN_MAX_LITERALS];
      unsigned nl, k;
      ck_assert_ptr_nonnull(c[i].r.part);
      ck_assert_bm_ok(bm_scan_part_counts(c[i].r.part, counts, &nl));
      ck_assert_uint_eq(nl, c[i].o.n_literals);
      for (k = 0; k < nl; k++) ck_assert_uint_eq(counts[k], c[i].r.counts[k]);
      bm_scan_part_free(c[i].r.part);
      c[i].r.part = NULL;
    } else {
      ck_assert_ptr_null(c[i].r.part);
    }
    query_of(&q[i], &c[i].o, size);
  }
  bm_source_close(src);
  oracle(path, q, n);
  for (i = 0; i < n; i++) expect_result(&q[i], &c[i].o, &c[i].r, "bm_scan");
  free(q);
}

/* Small and middling files of every kind, many scans of each. */
START_TEST(scan_random_files) {
  const uint64_t g = bm_granularity();
  TMP_PATH(path, "random");
  unsigned f, shrunk = 0, bounded = 0;
  NEED_ORACLES();
  seed_rng("scan_random_files");
  for (f = 0; f < 8; f++) {
    const uint64_t sizes[] = {0, 1, g - 1, g, g + 1, 3 * g + 7, 16 * g, 2 * g * 8 + 1};
    uint64_t size = f < 3 ? sizes[below(8)] : f < 7 ? below(2 * MiB) : 4 * MiB + below(MiB);
    unsigned char *d = malloc(size ? size : 1);
    scase_t c[10];
    size_t i;
    ck_assert_ptr_nonnull(d);
    gen(d, size);
    write_file(path, d, size);
    for (i = 0; i < 10; i++) {
      random_opts(&c[i], size, g, d, size);
      bounded += c[i].o.max_mapped != 0;
    }
    run_cases(path, size, c, 10, &shrunk);
    /* The oracle itself, against the test's own greedy count. */
    for (i = 0; i < 10 && size <= 256 * 1024; i++) {
      uint64_t off = c[i].r.offset, len = c[i].r.length, avail = len;
      unsigned k;
      if (c[i].o.flags & BM_SCAN_PART)
        avail = (c[i].o.match_end == 0 ? off + len : c[i].o.match_end == BM_TO_END ? size : c[i].o.match_end) - off;
      for (k = 0; k < c[i].o.n_literals; k++)
        ck_assert_uint_eq(c[i].r.counts[k],
                          naive_count(d + off, len, avail, c[i].o.literals[k].bytes,
                                      c[i].o.literals[k].length));
    }
    free(d);
  }
  printf("engine.scan_random_files: %u of %u bounded scans had their window shrunk\n", shrunk,
         bounded);
  ck_assert_msg(bounded == 0 || shrunk > 0, "max_mapped never shrank a window (seed %llu)",
                (unsigned long long)seed);
}
END_TEST

/* Literals nearly as long as a window's step (the overlap is then most of every window),
 * periodic or not, over long runs of "a" and "ab". */
START_TEST(scan_long_literals) {
  const uint64_t g = bm_granularity();
  TMP_PATH(path, "long");
  unsigned round;
  NEED_ORACLES();
  seed_rng("scan_long_literals");
  /* Under Wine two rounds, six elsewhere, and files of 10-29 windows there instead of
   * 20-79: a 64 KiB granule makes these literals 64-128 KiB long, so a window steps only
   * 2-101 bytes past the one before, each mapped anew (MapViewOfFile under Wine is the
   * cost). Natively 1 s, since the search gives way to Two-Way where the packed pair's
   * compares would cost a literal's length a byte (7 s before; under Wine 41 s). */
#ifdef _WIN32
  const unsigned rounds = 2, least = 10, windows = 20;
#else
  const unsigned rounds = 6, least = 20, windows = 60;
#endif
  for (round = 0; round < rounds; round++) {
    uint64_t W = g * (1 + below(2)), L = W - 1 - below(100), size = W * (least + below(windows)), i;
    unsigned char *d = malloc(size), *lit[4];
    bm_literal_t lits[6];
    scase_t c[6];
    unsigned k, j;
    ck_assert_ptr_nonnull(d);
    /* Runs of a's of every length about L, broken by a b; runs of ab. */
    for (i = 0; i < size;) {
      uint64_t run = below(3) == 0 ? below(5 * L) : L - 2 + below(5), e = i + run < size ? i + run : size;
      int ab = below(4) == 0;
      for (; i < e; i++) d[i] = ab ? (unsigned char)"ab"[i & 1] : 'a';
      if (i < size) d[i++] = below(3) ? 'b' : '\n';
    }
    write_file(path, d, (size_t)size);
    for (k = 0; k < 4; k++) {
      lit[k] = malloc((size_t)L);
      ck_assert_ptr_nonnull(lit[k]);
    }
    memset(lit[0], 'a', (size_t)L);
    for (i = 0; i < L; i++) lit[1][i] = (unsigned char)"ab"[i & 1];
    memset(lit[2], 'a', (size_t)L), lit[2][L - 1] = 'b';
    memcpy(lit[3], d + below(size - L), (size_t)L);
    for (k = 0; k < 4; k++) lits[k].bytes = lit[k], lits[k].length = (size_t)L;
    lits[4].bytes = "aa", lits[4].length = 2;
    lits[5].bytes = "ab", lits[5].length = 2;
    for (j = 0; j < 6; j++) {
      memset(&c[j], 0, sizeof(c[j]));
      c[j].o.window = W;
      c[j].o.threads = 1 + (unsigned)below(4);
      c[j].o.flags = BM_SCAN_LINES;
      c[j].o.offset = below(3) ? 0 : below(size / 2);
      c[j].o.length = below(2) ? BM_TO_END : size - c[j].o.offset - below(W);
      c[j].o.literals = j < 4 ? &lits[j] : lits;
      c[j].o.n_literals = j < 4 ? 1 : 6;
    }
    run_cases(path, size, c, 6, NULL);
    for (k = 0; k < 4; k++) free(lit[k]);
    free(d);
  }
}
END_TEST

/* A sparse file past 4 GiB: text at the 1 GiB and 4 GiB edges and at the end, zeros
 * elsewhere (where a literal of zeros is one long periodic stretch). */
START_TEST(scan_sparse_large) {
  const uint64_t g = bm_granularity(), size = 4 * GiB + 3 * MiB + 123;
  const uint64_t at[] = {0, GiB - 100 * 1024, 4 * GiB - 200 * 1024, size - 256 * 1024};
  TMP_PATH(path, "sparse");
  unsigned char *seg = malloc(256 * 1024);
  scase_t c[8];
  unsigned i;
  NEED_ORACLES();
  seed_rng("scan_sparse_large");
  ck_assert_ptr_nonnull(seg);
  bm_test_make_sparse(path, size);
  for (i = 0; i < 4; i++) {
    gen(seg, 256 * 1024);
    bm_test_pwrite(path, at[i], seg, 256 * 1024);
  }
  for (i = 0; i < 8; i++) {
    random_opts(&c[i], size, g, seg, 256 * 1024);
    switch (i % 4) {
    case 0: /* across 4 GiB */
      c[i].o.offset = 4 * GiB - MiB - below(g);
      c[i].o.length = 2 * MiB + below(g);
      break;
    case 1: /* across 1 GiB */
      c[i].o.offset = GiB - 300 * 1024 + below(100);
      c[i].o.length = 600 * 1024;
      break;
    case 2: /* the tail, to the end */
      c[i].o.offset = size - MiB - below(g);
      c[i].o.length = BM_TO_END;
      break;
    default: /* 96 MiB of zeros, then the text at 4 GiB */
      c[i].o.offset = 4 * GiB - 96 * MiB;
      c[i].o.length = 96 * MiB + below(MiB);
      c[i].o.window = (1 + below(4)) * MiB;
      break;
    }
    if (c[i].o.flags & BM_SCAN_PART) { /* match_end again, for the range set here */
      uint64_t end = c[i].o.length == BM_TO_END ? size : c[i].o.offset + c[i].o.length;
      c[i].o.match_end = below(3) == 0 ? 0 : below(2) ? BM_TO_END : end + below(size - end + 1 < MiB ? size - end + 1 : MiB);
    }
  }
  run_cases(path, size, c, 8, NULL);
  free(seg);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Buffers. */
START_TEST(buffer_random) {
  TMP_PATH(path, "buffer");
  unsigned round;
  NEED_ORACLES();
  seed_rng("buffer_random");
  for (round = 0; round < 6; round++) {
    size_t n = round == 0 ? 0 : (size_t)below(300 * 1024), i;
    unsigned char *d = malloc(n ? n : 1);
    scase_t c[12];
    query_t q[12];
    ck_assert_ptr_nonnull(d);
    gen(d, n);
    write_file(path, d, n);
    for (i = 0; i < 12; i++) {
      random_opts(&c[i], n, 4096, d, n);
      c[i].o.window = c[i].o.max_mapped = 0;
      c[i].o.threads = 0;
      if (i % 2) { /* a part, its matches running up to match_end */
        uint64_t end = c[i].o.offset + (c[i].o.length == BM_TO_END ? n - c[i].o.offset : c[i].o.length);
        c[i].o.flags |= BM_SCAN_PART;
        c[i].o.match_end = below(3) == 0 ? 0 : below(2) ? BM_TO_END : end + below(n - end + 1);
      }
      ck_assert_msg(bm_scan_buffer(d, n, &c[i].o, &c[i].r) == 0, "bm_scan_buffer; %s",
                    describe(&c[i].o));
      ck_assert_uint_eq(c[i].r.threads, 1);
      query_of(&q[i], &c[i].o, n);
      if (c[i].o.flags & BM_SCAN_PART) {
        uint64_t counts[BM_SCAN_MAX_LITERALS], off, len, lines;
        unsigned nl, k;
        ck_assert_ptr_nonnull(c[i].r.part);
        ck_assert_bm_ok(bm_scan_part_counts(c[i].r.part, counts, &nl));
        ck_assert_uint_eq(nl, c[i].o.n_literals);
        for (k = 0; k < nl; k++) ck_assert_uint_eq(counts[k], c[i].r.counts[k]);
        bm_scan_part_range(c[i].r.part, &off, &len, &lines);
        ck_assert_uint_eq(off, q[i].off);
        ck_assert_uint_eq(len, q[i].len);
        bm_scan_part_free(c[i].r.part);
        c[i].r.part = NULL;
      } else {
        ck_assert_ptr_null(c[i].r.part);
      }
    }
    oracle(path, q, 12);
    for (i = 0; i < 12; i++) {
      unsigned k;
      expect_result(&q[i], &c[i].o, &c[i].r, "bm_scan_buffer");
      for (k = 0; k < q[i].n; k++)
        ck_assert_uint_eq(q[i].counts[k],
                          naive_count(d + q[i].off, (size_t)q[i].len, (size_t)(q[i].mend - q[i].off),
                                      q[i].lits[k].bytes, q[i].lits[k].length));
    }
    free(d);
  }
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * The stages, driven here: the range cut at random (windows of any size from one byte, the
 * first at least the overlap long), every window counted in a random order on its own
 * work, then merged in order. */
typedef struct {
  bm_scan_chunk_t c;
  bm_scan_work_t *w;
} win_t;

static int drive_stages(const unsigned char *d, size_t n, const bm_scan_opts_t *o,
                        bm_scan_result_t *out) {
  bm_scan_t *s;
  win_t *v;
  size_t *order, nw = 0, i, ovl, cap;
  uint64_t off = o->offset, end = o->offset + o->length, b, mend = end;
  int err, stream = 0;
  if (o->flags & BM_SCAN_PART)
    mend = o->match_end == 0 ? end : o->match_end == BM_TO_END ? n : o->match_end;
  {
    /* a third of the plain scans as a stream: begun without a length, ended by the final
     * window */
    bm_scan_opts_t bo = *o;
    if (!(o->flags & BM_SCAN_PART) && below(3) == 0) bo.length = BM_TO_END, stream = 1;
    ck_assert_bm_ok(bm_scan_begin(&s, &bo));
  }
  ovl = bm_scan_overlap(s);
  cap = (size_t)o->length + 2;
  v = calloc(cap, sizeof(*v));
  order = calloc(cap, sizeof(*order));
  ck_assert(v != NULL && order != NULL);
  for (b = off; nw == 0 || b < end; nw++) {
    uint64_t lo = nw ? b - ovl : off, nb;
    /* new bytes of this window: the first at least the overlap (else it covers no match
     * start), the others 1 .. a few overlaps, or large */
    nb = below(4) == 0 ? 1 + below(3) : 1 + below(ovl * 3 + 64);
    if (nw == 0 && nb < ovl) nb = ovl;
    if (below(8) == 0) nb = end - b;
    if (nb > end - b) nb = end - b;
    v[nw].c.data = d + lo;
    v[nw].c.offset = lo;
    v[nw].c.overlap = (size_t)(b - lo);
    v[nw].c.length = (size_t)(b + nb - lo);
    v[nw].c.avail = v[nw].c.length;
    b += nb;
    v[nw].c.final = b == end;
    if (v[nw].c.final) v[nw].c.avail = (size_t)(mend - lo);
    ck_assert_bm_ok(bm_scan_work_new(s, &v[nw].w));
    order[nw] = nw;
  }
  for (i = nw; i > 1; i--) { /* a random order */
    size_t j = (size_t)below(i), t = order[i - 1];
    order[i - 1] = order[j], order[j] = t;
  }
  if (nw > 1 && v[0].c.length > 0) {
    /* counted out of order is fine; merged out of order is refused */
    ck_assert_bm_ok(bm_scan_work_run(s, v[1].w, &v[1].c));
    ck_assert_bm_err(bm_scan_merge(s, v[1].w, &v[1].c), BM_EINVAL);
    if (!stream) ck_assert_bm_err(bm_scan_finish(s, out), BM_EINVAL);
  }
  for (i = 0; i < nw; i++)
    ck_assert_msg(bm_scan_work_run(s, v[order[i]].w, &v[order[i]].c) == 0, "work_run %zu", order[i]);
  for (i = 0; i < nw; i++) {
    ck_assert_msg((err = bm_scan_merge(s, v[i].w, &v[i].c)) == 0, "merge %zu of %zu: %s; %s", i,
                  nw, bm_err_name(err), describe(o));
    if (i + 1 < nw && i == nw / 2 && !stream) ck_assert_bm_err(bm_scan_finish(s, out), BM_EINVAL);
  }
  err = bm_scan_finish(s, out);
  for (i = 0; i < nw; i++) bm_scan_work_free(v[i].w);
  free(v);
  free(order);
  bm_scan_free(s);
  return err;
}

START_TEST(stages_out_of_order) {
  TMP_PATH(path, "stages");
  unsigned round;
  NEED_ORACLES();
  seed_rng("stages_out_of_order");
  for (round = 0; round < 8; round++) {
    size_t n = 1 + (size_t)below(60 * 1024), i;
    unsigned char *d = malloc(n);
    scase_t c[8];
    query_t q[8];
    ck_assert_ptr_nonnull(d);
    gen(d, n);
    write_file(path, d, n);
    for (i = 0; i < 8; i++) {
      random_opts(&c[i], n, 4096, d, n);
      c[i].o.window = c[i].o.max_mapped = 0;
      if (c[i].o.length == BM_TO_END) c[i].o.length = n - c[i].o.offset;
      if (i % 2) {
        uint64_t end = c[i].o.offset + c[i].o.length;
        c[i].o.flags |= BM_SCAN_PART;
        c[i].o.match_end = below(3) == 0 ? 0 : end + below(n - end + 1);
      }
      ck_assert_msg(drive_stages(d, n, &c[i].o, &c[i].r) == 0, "stages; %s", describe(&c[i].o));
      bm_scan_part_free(c[i].r.part);
      c[i].r.part = NULL;
      query_of(&q[i], &c[i].o, n);
    }
    oracle(path, q, 8);
    for (i = 0; i < 8; i++) expect_result(&q[i], &c[i].o, &c[i].r, "stages");
    free(d);
  }
}
END_TEST

/* A chunk that breaks the rule is refused. */
START_TEST(stages_errors) {
  static const unsigned char d[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", t[] = "aaaa\naaaaa\naa\n";
  bm_literal_t lit = {"aaaa", 4};
  bm_scan_opts_t o;
  bm_scan_t *s;
  bm_scan_work_t *w;
  bm_scan_chunk_t c;
  bm_scan_result_t r;
  memset(&o, 0, sizeof(o));
  o.literals = &lit;
  o.n_literals = 1;
  o.length = 32;
  ck_assert_bm_ok(bm_scan_begin(&s, &o));
  ck_assert_uint_eq(bm_scan_overlap(s), 3);
  ck_assert_bm_ok(bm_scan_work_new(s, &w));
  memset(&c, 0, sizeof(c));
  c.data = d;
  c.length = c.avail = 2; /* not final and shorter than the overlap */
  ck_assert_bm_err(bm_scan_work_run(s, w, &c), BM_EINVAL);
  c.length = 10, c.avail = 9; /* avail < length */
  ck_assert_bm_err(bm_scan_work_run(s, w, &c), BM_EINVAL);
  c.avail = 10, c.overlap = 11;
  ck_assert_bm_err(bm_scan_work_run(s, w, &c), BM_EINVAL);
  c.overlap = 0;
  ck_assert_bm_ok(bm_scan_work_run(s, w, &c));
  ck_assert_bm_ok(bm_scan_merge(s, w, &c));
  /* the next window must begin at 10 - 3 with 3 bytes of overlap */
  c.data = d + 10, c.offset = 10, c.length = c.avail = 22, c.final = 1;
  ck_assert_bm_err(bm_scan_merge(s, w, &c), BM_EINVAL);
  c.data = d + 7, c.offset = 7, c.overlap = 3, c.length = c.avail = 25;
  ck_assert_bm_ok(bm_scan_work_run(s, w, &c));
  ck_assert_bm_ok(bm_scan_merge(s, w, &c));
  ck_assert_bm_ok(bm_scan_finish(s, &r));
  ck_assert_uint_eq(r.counts[0], 8);
  bm_scan_work_free(w);
  bm_scan_free(s);
  /* a stream (length not known): it ends with the window merged as final. Python:
   * b"aaaa\naaaaa\naa\n".count(b"aaaa") == 2, 3 lines */
  o.length = BM_TO_END;
  o.flags = BM_SCAN_LINES;
  ck_assert_bm_ok(bm_scan_begin(&s, &o));
  ck_assert_bm_ok(bm_scan_work_new(s, &w));
  memset(&c, 0, sizeof(c));
  c.data = t, c.length = c.avail = 9;
  ck_assert_bm_ok(bm_scan_work_run(s, w, &c));
  ck_assert_bm_ok(bm_scan_merge(s, w, &c));
  c.data = t + 6, c.offset = 6, c.overlap = 3, c.length = c.avail = 8, c.final = 1;
  ck_assert_bm_ok(bm_scan_work_run(s, w, &c));
  ck_assert_bm_ok(bm_scan_merge(s, w, &c));
  ck_assert_bm_ok(bm_scan_finish(s, &r));
  ck_assert_uint_eq(r.length, 14);
  ck_assert_uint_eq(r.counts[0], 2);
  ck_assert_uint_eq(r.lines, 3);
  bm_scan_work_free(w);
  bm_scan_free(s);
  /* a stream finished with none merged is empty */
  ck_assert_bm_ok(bm_scan_begin(&s, &o));
  ck_assert_bm_ok(bm_scan_finish(s, &r));
  ck_assert_uint_eq(r.length, 0);
  ck_assert_uint_eq(r.lines, 0);
  bm_scan_free(s);
  bm_scan_free(NULL);
  bm_scan_work_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Parts: a file cut at random, each piece scanned with BM_SCAN_PART (its matches running
 * into the next piece), saved and loaded, and folded: the counts of the whole file, in order
 * left to right and as a tree. */
static bm_scan_part_t *roundtrip(bm_scan_part_t *p) {
  size_t need, need2;
  unsigned char *b;
  bm_scan_part_t *q;
  ck_assert_bm_ok(bm_scan_part_save(p, NULL, 0, &need));
  b = malloc(need);
  ck_assert_ptr_nonnull(b);
  if (need > 0) ck_assert_bm_err(bm_scan_part_save(p, b, need - 1, &need2), BM_ENOSPC);
  ck_assert_bm_ok(bm_scan_part_save(p, b, need, &need2));
  ck_assert_uint_eq(need, need2);
  ck_assert_bm_ok(bm_scan_part_load(&q, b, need));
  {
    /* the loaded part saves to the same bytes */
    unsigned char *b2 = malloc(need);
    ck_assert_ptr_nonnull(b2);
    ck_assert_bm_ok(bm_scan_part_save(q, b2, need, &need2));
    ck_assert_uint_eq(need2, need);
    ck_assert_int_eq(memcmp(b, b2, need), 0);
    free(b2);
  }
  bm_scan_part_free(q);
  ck_assert_bm_err(bm_scan_part_load(&q, b, need - 1), BM_EINVAL); /* cut short */
  ck_assert_ptr_null(q);
  ck_assert_bm_ok(bm_scan_part_load(&q, b, need));
  free(b);
  bm_scan_part_free(p);
  return q;
}

START_TEST(parts_fold) {
  const uint64_t g = bm_granularity();
  TMP_PATH(path, "parts");
  unsigned round;
  NEED_ORACLES();
  seed_rng("parts_fold");
  for (round = 0; round < 8; round++) {
    uint64_t size = round == 0 ? 0 : round < 6 ? below(MiB) : 3 * MiB + below(MiB);
    unsigned char *d = malloc(size ? size : 1);
    unsigned np = 1 + (unsigned)below(12), i, k, tree;
    uint64_t cuts[14], lines = 0, total[BM_SCAN_MAX_LITERALS];
    bm_scan_part_t *parts[13], *acc = NULL;
    bm_source_t *src;
    litset_t ls;
    scase_t *c = calloc(np, sizeof(*c));
    query_t *q = calloc(np + 1, sizeof(*q));
    ck_assert(d != NULL && c != NULL && q != NULL);
    gen(d, size);
    write_file(path, d, size);
    pick_literals(&ls, round == 7 ? BM_SCAN_MAX_LITERALS : 0, d, size);
    /* cuts: sorted random points (some equal: empty parts) */
    cuts[0] = 0, cuts[np] = size;
    for (i = 1; i < np; i++) cuts[i] = below(size + 1);
    for (i = 1; i < np; i++)
      for (k = i + 1; k < np; k++)
        if (cuts[k] < cuts[i]) { uint64_t t = cuts[k]; cuts[k] = cuts[i], cuts[i] = t; }
    ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
    for (i = 0; i < np; i++) {
      bm_scan_opts_t *o = &c[i].o;
      uint64_t reach = cuts[i + 1] + (ls.maxlen ? ls.maxlen - 1 : 0);
      int err;
      o->flags = BM_SCAN_PART | BM_SCAN_LINES;
      o->literals = ls.lit;
      o->n_literals = ls.n;
      o->offset = cuts[i];
      o->length = cuts[i + 1] - cuts[i];
      /* far enough for the matches that begin in the piece */
      o->match_end = i + 1 == np ? (below(2) ? 0 : BM_TO_END)
                                 : below(2) ? BM_TO_END : reach < size ? reach + below(size - reach + 1) : size;
      o->window = g * (1 + below(4));
      o->threads = 1 + (unsigned)below(4);
      err = bm_scan(src, o, &c[i].r);
      ck_assert_msg(err == 0, "bm_scan part %u: %s; %s", i, bm_err_name(err), describe(o));
      ck_assert_ptr_nonnull(c[i].r.part);
      query_of(&q[i], o, size);
      q[i].want_hash = 0;
      parts[i] = below(2) ? roundtrip(c[i].r.part) : c[i].r.part;
      c[i].r.part = NULL;
    }
    bm_source_close(src);
    /* the whole file */
    memset(&q[np], 0, sizeof(q[np]));
    q[np].len = q[np].mend = size;
    q[np].lits = ls.lit;
    q[np].n = ls.n;
    q[np].want_hash = 1;
    oracle(path, q, np + 1);
    for (i = 0; i < np; i++) {
      uint64_t off, len, l;
      unsigned nl;
      uint64_t counts[BM_SCAN_MAX_LITERALS];
      expect_result(&q[i], &c[i].o, &c[i].r, "part");
      ck_assert_bm_ok(bm_scan_part_counts(parts[i], counts, &nl));
      ck_assert_uint_eq(nl, ls.n);
      for (k = 0; k < nl; k++) ck_assert_uint_eq(counts[k], q[i].counts[k]);
      bm_scan_part_range(parts[i], &off, &len, &l);
      ck_assert_uint_eq(off, cuts[i]);
      ck_assert_uint_eq(len, cuts[i + 1] - cuts[i]);
      ck_assert_uint_eq(l, c[i].r.lines);
      lines += l;
    }
    ck_assert_msg(lines == q[np].lines, "parts' lines %llu, wc -l %llu (seed %llu)",
                  (unsigned long long)lines, (unsigned long long)q[np].lines,
                  (unsigned long long)seed);
    for (tree = 0; tree < 2; tree++) {
      bm_scan_part_t *v[13];
      unsigned nv = np, nl;
      uint64_t off, len, l;
      for (i = 0; i < np; i++) ck_assert_bm_ok(bm_scan_part_copy(&v[i], parts[i]));
      if (tree) {
        /* neighbours in pairs, then pairs of pairs */
        while (nv > 1) {
          unsigned w = 0;
          for (i = 0; i + 1 < nv; i += 2) {
            ck_assert_bm_ok(bm_scan_part_fold(v[i], v[i + 1]));
            bm_scan_part_free(v[i + 1]);
            v[w++] = v[i];
          }
          if (i < nv) v[w++] = v[i];
          nv = w;
        }
      } else {
        for (i = 1; i < np; i++) {
          ck_assert_bm_ok(bm_scan_part_fold(v[0], v[i]));
          bm_scan_part_free(v[i]);
        }
      }
      acc = v[0];
      ck_assert_bm_ok(bm_scan_part_counts(acc, total, &nl));
      ck_assert_uint_eq(nl, ls.n);
      for (k = 0; k < ls.n; k++)
        ck_assert_msg(total[k] == q[np].counts[k],
                      "%s fold of %u parts: literal %u counted %llu, oracle %llu (seed %llu)",
                      tree ? "tree" : "in-order", np, k + 1, (unsigned long long)total[k],
                      (unsigned long long)q[np].counts[k], (unsigned long long)seed);
      bm_scan_part_range(acc, &off, &len, &l);
      ck_assert_uint_eq(off, 0);
      ck_assert_uint_eq(len, size);
      ck_assert_uint_eq(l, q[np].lines);
      acc = roundtrip(acc);
      ck_assert_bm_ok(bm_scan_part_counts(acc, total, NULL));
      for (k = 0; k < ls.n; k++) ck_assert_uint_eq(total[k], q[np].counts[k]);
      bm_scan_part_free(acc);
    }
    for (i = 0; i < np; i++) bm_scan_part_free(parts[i]);
    free(c);
    free(q);
    free(d);
  }
}
END_TEST

START_TEST(parts_errors) {
  static const char text[] = "aaaaabaaaaab\naaab";
  bm_literal_t a[2] = {{"aa", 2}, {"ab", 2}}, b[2] = {{"aa", 2}, {"ba", 2}};
  bm_scan_opts_t o;
  bm_scan_result_t r;
  bm_scan_part_t *p0, *p1, *p2, *pb, *p1one, *x;
  size_t n = sizeof(text) - 1, need;
  unsigned char junk[64];
  memset(&o, 0, sizeof(o));
  o.flags = BM_SCAN_PART;
  o.literals = a, o.n_literals = 2;
  o.match_end = BM_TO_END;
#define PART(dst, off, len, lits, nl)                                          \
  do {                                                                         \
    o.offset = (off), o.length = (len), o.literals = (lits), o.n_literals = (nl); \
    ck_assert_bm_ok(bm_scan_buffer(text, n, &o, &r));                          \
    (dst) = r.part;                                                            \
  } while (0)
  PART(p0, 0, 5, a, 2);
  PART(p1, 5, 6, a, 2);
  PART(p2, 11, n - 11, a, 2);
  PART(pb, 5, 6, b, 2);     /* same lengths, other bytes */
  PART(p1one, 5, 6, a, 1);  /* fewer literals */
  ck_assert_bm_err(bm_scan_part_fold(p0, p2), BM_EINVAL);    /* a gap */
  ck_assert_bm_err(bm_scan_part_fold(p1, p0), BM_EINVAL);    /* out of order */
  ck_assert_bm_err(bm_scan_part_fold(p0, pb), BM_EINVAL);    /* other literals */
  ck_assert_bm_err(bm_scan_part_fold(p0, p1one), BM_EINVAL); /* fewer literals */
  ck_assert_bm_err(bm_scan_part_fold(p0, p0), BM_EINVAL);
  ck_assert_bm_err(bm_scan_part_fold(NULL, p0), BM_EINVAL);
  ck_assert_bm_err(bm_scan_part_fold(p0, NULL), BM_EINVAL);
  ck_assert_bm_err(bm_scan_part_counts(NULL, NULL, NULL), BM_EINVAL);
  ck_assert_bm_ok(bm_scan_part_fold(p0, p1));
  ck_assert_bm_ok(bm_scan_part_fold(p0, p2));
  {
    uint64_t counts[2];
    ck_assert_bm_ok(bm_scan_part_counts(p0, counts, NULL));
    /* Python: b"aaaaabaaaaab\naaab".count(b"aa") == 5, .count(b"ab") == 3 */
    ck_assert_uint_eq(counts[0], 5);
    ck_assert_uint_eq(counts[1], 3);
  }
  /* bytes that are not a part */
  memset(junk, 0, sizeof(junk));
  ck_assert_bm_err(bm_scan_part_load(&x, junk, sizeof(junk)), BM_EINVAL);
  ck_assert_ptr_null(x);
  ck_assert_bm_err(bm_scan_part_load(&x, NULL, 0), BM_EINVAL);
  ck_assert_bm_err(bm_scan_part_load(NULL, junk, sizeof(junk)), BM_EINVAL);
  ck_assert_bm_err(bm_scan_part_save(p0, NULL, 0, NULL), BM_EINVAL);
  ck_assert_bm_ok(bm_scan_part_save(p0, NULL, 0, &need));
  ck_assert_uint_gt(need, 40);
  bm_scan_part_free(p0);
  bm_scan_part_free(p1);
  bm_scan_part_free(p2);
  bm_scan_part_free(pb);
  bm_scan_part_free(p1one);
  bm_scan_part_free(NULL);
#undef PART
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Errors: the argument rules, ranges. */
START_TEST(check_rules) {
  bm_literal_t lits[BM_SCAN_MAX_LITERALS + 1];
  static unsigned char big[BM_SCAN_MAX_LITERAL + 1];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  unsigned i;
  for (i = 0; i <= BM_SCAN_MAX_LITERALS; i++) lits[i].bytes = "ab", lits[i].length = 2;
  memset(&o, 0, sizeof(o));
  ck_assert_bm_ok(bm_scan_check(&o)); /* defaults: hash and lines of the whole source */
  ck_assert_bm_err(bm_scan_check(NULL), BM_EINVAL);
  o.literals = lits;
  o.n_literals = BM_SCAN_MAX_LITERALS;
  ck_assert_bm_ok(bm_scan_check(&o));
  o.n_literals = BM_SCAN_MAX_LITERALS + 1; /* 17 */
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.n_literals = 1;
  o.literals = NULL;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.literals = lits;
  lits[0].length = 0; /* empty */
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  lits[0].length = 2, lits[0].bytes = NULL;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  lits[0].bytes = big;
  lits[0].length = 4096, o.window = 4096; /* as long as the window */
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  lits[0].length = 4097;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  lits[0].length = 4095;
  ck_assert_bm_ok(bm_scan_check(&o));
  o.window = 0; /* 64 MiB */
  lits[0].length = BM_SCAN_MAX_LITERAL;
  ck_assert_bm_ok(bm_scan_check(&o));
  lits[0].length = BM_SCAN_MAX_LITERAL + 1;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  lits[0].length = 2;
  o.window = (sizeof(size_t) > 4 ? 4 * GiB : 256 * MiB) + 1;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.window = 0;
  o.threads = BM_SCAN_MAX_THREADS;
  ck_assert_bm_ok(bm_scan_check(&o));
  o.threads = BM_SCAN_MAX_THREADS + 1;
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.threads = 0;
  o.offset = UINT64_MAX - 10, o.length = 11; /* wraps */
  ck_assert_bm_err(bm_scan_check(&o), BM_EOVERFLOW);
  o.length = 10;
  ck_assert_bm_ok(bm_scan_check(&o));
  o.offset = 0, o.length = BM_TO_END;
  o.flags = 1u << 9; /* unknown */
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.flags = BM_SCAN_PART;
  o.offset = 10, o.length = 10, o.match_end = 19; /* before the range's end */
  ck_assert_bm_err(bm_scan_check(&o), BM_EINVAL);
  o.match_end = 20;
  ck_assert_bm_ok(bm_scan_check(&o));
  /* the calls check the same rules */
  o.flags = 0, o.offset = 0, o.length = BM_TO_END, o.threads = 300;
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, &r), BM_EINVAL);
  o.threads = 0;
  o.n_literals = BM_SCAN_MAX_LITERALS + 1;
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, &r), BM_EINVAL);
  ck_assert_ptr_null(r.part);
}
END_TEST

START_TEST(range_errors) {
  TMP_PATH(path, "range");
  bm_literal_t lit = {"ab", 2};
  bm_scan_opts_t o;
  bm_scan_result_t r;
  bm_source_t *src;
  bm_test_write_pattern(path, 10000);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  memset(&o, 0, sizeof(o));
  o.literals = &lit, o.n_literals = 1;
  o.offset = 10001, o.length = BM_TO_END;
  ck_assert_bm_err(bm_scan(src, &o, &r), BM_ERANGE);
  o.offset = 9000, o.length = 1001;
  ck_assert_bm_err(bm_scan(src, &o, &r), BM_ERANGE);
  o.offset = 0, o.length = UINT64_MAX - 1;
  ck_assert_bm_err(bm_scan(src, &o, &r), BM_ERANGE);
  o.offset = 2, o.length = UINT64_MAX - 1;
  ck_assert_bm_err(bm_scan(src, &o, &r), BM_EOVERFLOW);
  o.offset = 10000, o.length = BM_TO_END; /* empty, at the end */
  ck_assert_bm_ok(bm_scan(src, &o, &r));
  ck_assert_uint_eq(r.bytes, 0);
  ck_assert_uint_eq(r.counts[0], 0);
  o.offset = 9000, o.length = 1000;
  ck_assert_bm_ok(bm_scan(src, &o, &r));
  ck_assert_bm_err(bm_scan(NULL, &o, &r), BM_EINVAL);
  ck_assert_bm_err(bm_scan(src, NULL, &r), BM_EINVAL);
  ck_assert_bm_err(bm_scan(src, &o, NULL), BM_EINVAL);
  /* max_mapped too small for a window longer than the literal */
  o.offset = 0, o.length = BM_TO_END, o.window = 4096, o.max_mapped = 4096;
  ck_assert_int_lt(bm_scan(src, &o, &r), 0);
  bm_source_close(src);
  /* buffers */
  memset(&o, 0, sizeof(o));
  o.offset = 4, o.length = BM_TO_END;
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, &r), BM_ERANGE);
  o.offset = 1, o.length = 3;
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, &r), BM_ERANGE);
  o.offset = 3, o.length = 0;
  ck_assert_bm_ok(bm_scan_buffer("abc", 3, &o, &r));
  o.flags = BM_SCAN_PART, o.offset = 0, o.length = 2, o.match_end = 4;
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, &r), BM_ERANGE);
  ck_assert_ptr_null(r.part);
  ck_assert_bm_err(bm_scan_buffer(NULL, 3, &o, &r), BM_EINVAL);
  ck_assert_bm_err(bm_scan_buffer("abc", 3, &o, NULL), BM_EINVAL);
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * Cancel and progress, a source cut short. The work is a sparse file with windows small
 * enough that the scan takes many progress periods (20 ms). */
typedef struct {
  int calls, ret;
  uint64_t first_done, first_total, last_done, last_total;
  volatile sig_atomic_t *cancel; /* set on the first call */
  const char *truncate_path;     /* cut to truncate_to on the first call */
  uint64_t truncate_to;
  const char *touch_path;        /* a byte rewritten (touch_grow: bytes appended) */
  int touch_grow;
} prog_t;

static int progress(uint64_t done, uint64_t total, void *arg) {
  prog_t *p = arg;
  if (p->calls++ == 0) {
    p->first_done = done, p->first_total = total;
    if (p->cancel) *p->cancel = 1;
    if (p->truncate_path) bm_test_truncate(p->truncate_path, p->truncate_to);
    if (p->touch_path) {
      unsigned char b[16] = "changed.changed";
      uint64_t size = 0;
      FILE *f = fopen(p->touch_path, "rb");
      if (f != NULL) {
        fseek(f, 0, SEEK_END);
        size = (uint64_t)ftell(f);
        fclose(f);
      }
      bm_test_pwrite(p->touch_path, p->touch_grow ? size : size / 2, b, sizeof(b));
    }
  }
  ck_assert_uint_le(done, total);
  ck_assert_uint_ge(done, p->last_done);
  p->last_done = done, p->last_total = total;
  return p->ret;
}

static void slow_opts(bm_scan_opts_t *o, bm_literal_t *lits, prog_t *pg) {
  static const char *const l[] = {"xy", "aa", "\n\n", "ERROR", "abab", "q", "zz", "ab"};
  unsigned i;
  memset(o, 0, sizeof(*o));
  for (i = 0; i < 8; i++) lits[i].bytes = l[i], lits[i].length = strlen(l[i]);
  o->flags = BM_SCAN_HASH | BM_SCAN_LINES;
  o->literals = lits;
  o->n_literals = 8;
  o->length = BM_TO_END;
  o->window = 256 * 1024;
  o->threads = 2;
  o->progress = progress;
  o->progress_arg = pg;
}

START_TEST(cancel_and_progress) {
  TMP_PATH(path, "big");
  const uint64_t size = 384 * MiB;
  volatile sig_atomic_t flag = 0;
  bm_literal_t lits[8];
  bm_scan_opts_t o;
  bm_scan_result_t r;
  bm_source_t *src;
  prog_t pg;
  int err;
  bm_test_make_sparse(path, size);
  bm_test_pwrite(path, size / 2, "xy\n", 3);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  /* set before: nothing is scanned */
  memset(&pg, 0, sizeof(pg));
  slow_opts(&o, lits, &pg);
  flag = 1;
  o.cancel = &flag;
  ck_assert_bm_err(bm_scan(src, &o, &r), BM_ECANCELED);
  ck_assert_ptr_null(r.part);
  /* set midway (on the calling thread, as a signal handler would). The counts start again:
   * on a loaded machine the scan above can outlast one progress period (20 ms) before its
   * workers see the flag, and its progress call would be taken for this scan's first. */
  memset(&pg, 0, sizeof(pg));
  flag = 0;
  pg.cancel = &flag;
  o.flags |= BM_SCAN_PART;
  err = bm_scan(src, &o, &r);
  ck_assert_msg(pg.calls >= 1 && pg.first_done < pg.first_total,
                "the scan ended before the first progress call (%d calls, %llu of %llu): a "
                "bigger file is needed", pg.calls, (unsigned long long)pg.first_done,
                (unsigned long long)pg.first_total);
  ck_assert_msg(err == BM_ECANCELED, "cancel midway gave %s", bm_err_name(err));
  ck_assert_ptr_null(r.part);
  /* progress returning non-zero */
  memset(&pg, 0, sizeof(pg));
  pg.ret = 1;
  slow_opts(&o, lits, &pg);
  err = bm_scan(src, &o, &r);
  ck_assert_msg(err == BM_ECANCELED, "progress returning 1 gave %s", bm_err_name(err));
  ck_assert_int_eq(pg.calls, 1); /* asked once, then it stops */
  /* a whole scan: progress reaches the total, the counts are right */
  memset(&pg, 0, sizeof(pg));
  slow_opts(&o, lits, &pg);
  o.window = 4 * MiB;
  ck_assert_bm_ok(bm_scan(src, &o, &r));
  ck_assert_int_ge(pg.calls, 1);
  ck_assert_uint_eq(pg.last_done, size);
  ck_assert_uint_eq(pg.last_total, size);
  ck_assert_uint_eq(r.counts[0], 1); /* xy */
  ck_assert_uint_eq(r.lines, 1);
  bm_source_close(src);
}
END_TEST

/* Progress returning non-zero when the scan is quick: the contract says the call then
 * returns BM_ECANCELED ("a non-zero return cancels"), also when the only call is the last
 * (found by this test: the last report's answer was ignored). */
START_TEST(progress_cancels_quick_scan) {
  TMP_PATH(path, "small");
  bm_scan_opts_t o;
  bm_scan_result_t r;
  bm_source_t *src;
  prog_t pg;
  int err;
  bm_test_write_pattern(path, 5000);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  memset(&o, 0, sizeof(o));
  memset(&pg, 0, sizeof(pg));
  pg.ret = 1;
  o.length = BM_TO_END;
  o.progress = progress;
  o.progress_arg = &pg;
  err = bm_scan(src, &o, &r);
  ck_assert_msg(err == BM_ECANCELED,
                "progress returned 1 on its only call (done %llu of %llu) "
                "and bm_scan gave %d (%s), not ECANCELED",
                (unsigned long long)pg.first_done, (unsigned long long)pg.first_total, err,
                err ? bm_err_name(err) : "success");
  bm_source_close(src);
}
END_TEST

#ifndef _WIN32
/* The file cut to a few granules while windows are in flight: BM_ETRUNCATED, never SIGBUS
 * (this process would die of it), whatever the stages touch (hash only: the ordered stage;
 * lines or literals: the parallel one). */
START_TEST(truncated_while_scanned) {
  const uint64_t g = bm_granularity(), size = 384 * MiB;
  TMP_PATH(path, "shrinking");
  unsigned round;
  for (round = 0; round < 3; round++) {
    bm_literal_t lits[8];
    bm_scan_opts_t o;
    bm_scan_result_t r;
    bm_source_t *src;
    prog_t pg;
    int err;
    bm_test_make_sparse(path, size);
    ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
    memset(&pg, 0, sizeof(pg));
    pg.truncate_path = path;
    pg.truncate_to = 3 * g + 5;
    slow_opts(&o, lits, &pg);
    o.threads = 1 + round;
    if (round == 0) o.flags = BM_SCAN_HASH, o.n_literals = 0;
    if (round == 1) o.flags = BM_SCAN_LINES, o.n_literals = 0;
    if (round == 2) o.flags |= BM_SCAN_PART;
    err = bm_scan(src, &o, &r);
    ck_assert_msg(pg.first_done < pg.first_total, "the scan ended before it could be cut");
    ck_assert_msg(err == BM_ETRUNCATED, "round %u: a file cut short gave %s", round, bm_err_name(err));
    ck_assert_ptr_null(r.part);
    bm_source_close(src);
  }
}
END_TEST

/* ---------------------------------------------------------------------------------------
 * The load. Names are this run's (pid), removed at the end. */
static char names[8][64];
static unsigned nnames;

/* A failed check ends the test's process at once (_exit), without its teardown: a test
 * removes what it made before it checks what could fail. */
static const char *ds_name(void) {
  char *n = names[nnames++ % 8];
  snprintf(n, sizeof(names[0]), "bmtest-engine-%ld-%u", test_pid(), nnames);
  return n;
}

static void remove_names(void) {
  unsigned i;
  for (i = 0; i < nnames && i < 8; i++) (void)bm_section_remove_force(names[i]);
  nnames = 0;
  bm_test_tmp_cleanup();
}

static void expect_gone(const char *name) {
  bm_dataset_t *ds = NULL;
  bm_source_t *s = NULL;
  int err = bm_dataset_open(&ds, name, 0, NULL);
  ck_assert_msg(err == BM_ENOENT, "dataset %s after a failed load: %s", name, bm_err_name(err));
  ck_assert_ptr_null(ds);
  ck_assert_bm_err(bm_section_open(&s, name, BM_ACCESS_READ), BM_ENOENT);
}

START_TEST(load_verify) {
  TMP_PATH(path, "load");
  unsigned round;
  NEED_ORACLES();
  seed_rng("load_verify");
  for (round = 0; round < 4; round++) {
    uint64_t size = round == 0 ? 0 : round == 1 ? 1 + below(5000) : 3 * MiB + below(3 * MiB);
    unsigned char *d = malloc(size ? size : 1);
    const char *name = ds_name();
    bm_load_opts_t lo;
    bm_load_result_t res, res2;
    bm_dataset_t *w = NULL, *ds;
    bm_dataset_info_t info;
    int err_open, err_again, err_rm;
    bm_view_t v;
    query_t q;
    ck_assert_ptr_nonnull(d);
    gen(d, size);
    write_file(path, d, size);
    memset(&q, 0, sizeof(q));
    q.len = q.mend = size;
    q.want_hash = 1;
    oracle(path, &q, 1);
    memset(&lo, 0, sizeof(lo));
    lo.threads = 1 + round;
    lo.dataset.large = BM_LARGE_OFF;
    ck_assert_bm_ok(bm_dataset_load(round % 2 ? &w : NULL, name, path, &lo, &res));
    /* Opened, then the name removed at once: a dataset removed while open stays readable,
     * and a failed check below leaves nothing behind. */
    err_open = bm_dataset_open(&ds, name, BM_OPEN_VERIFY, &info);
    err_again = bm_dataset_load(NULL, name, path, &lo, &res2); /* the name is taken */
    err_rm = w != NULL ? bm_dataset_remove(w) : bm_section_remove(name);
    bm_dataset_close(w);
    w = NULL;
    ck_assert_bm_ok(err_open);
    ck_assert_bm_err(err_again, BM_EEXIST);
    ck_assert_int_eq(res2.removed, 0);
    ck_assert_bm_ok(err_rm);
    expect_gone(name);
    ck_assert_int_eq(res.info.state, BM_STATE_READY);
    ck_assert_uint_eq(res.info.bytes, size);
    ck_assert_int_eq(res.info.has_xxh3, 1);
    ck_assert_msg(res.info.xxh3 == q.xxh3, "load: xxh3 %016llx, xxhsum -H3 %016llx",
                  (unsigned long long)res.info.xxh3, (unsigned long long)q.xxh3);
    ck_assert_str_eq(res.info.source, "load"); /* the file's base name */
    ck_assert_int_eq(info.state, BM_STATE_READY);
    ck_assert_uint_eq(info.bytes, size);
    ck_assert_uint_eq(info.xxh3, q.xxh3);
    ck_assert_bm_ok(bm_dataset_view(ds, &v));
    ck_assert_uint_eq(v.length, size);
    ck_assert_msg(size == 0 || memcmp(v.data, d, (size_t)size) == 0, "the dataset's bytes differ");
    {
      /* and against the file read again */
      unsigned char *f = malloc(size ? size : 1);
      ck_assert_ptr_nonnull(f);
      ck_assert_uint_eq(bm_test_pread(path, 0, f, (size_t)size), size);
      ck_assert(size == 0 || memcmp(v.data, f, (size_t)size) == 0);
      free(f);
    }
    ck_assert_bm_ok(bm_view_unmap(&v));
    ck_assert_bm_ok(bm_dataset_verify(ds));
    bm_dataset_close(ds);
    expect_gone(name);
    free(d);
  }
}
END_TEST

START_TEST(load_cancelled) {
  TMP_PATH(path, "bigload");
  const uint64_t size = 256 * MiB;
  volatile sig_atomic_t flag = 0;
  bm_load_opts_t lo;
  bm_load_result_t res;
  bm_dataset_t *w = (bm_dataset_t *)&flag;
  prog_t pg;
  const char *name;
  int err, how;
  bm_test_make_sparse(path, size);
  for (how = 0; how < 3; how++) {
    name = ds_name();
    memset(&lo, 0, sizeof(lo));
    memset(&pg, 0, sizeof(pg));
    lo.dataset.large = BM_LARGE_OFF;
    lo.threads = 2;
    lo.progress = progress;
    lo.progress_arg = &pg;
    lo.cancel = &flag;
    flag = how == 0;           /* 0: set before */
    if (how == 1) pg.cancel = &flag; /* 1: set midway */
    if (how == 2) pg.ret = 1;        /* 2: progress says stop */
    err = bm_dataset_load(&w, name, path, &lo, &res);
    ck_assert_msg(err == BM_ECANCELED, "load cancel %d gave %s", how, bm_err_name(err));
    ck_assert_ptr_null(w);
    if (how > 0) {
      ck_assert_msg(pg.first_done < pg.first_total, "the load ended before the first progress call");
      ck_assert_int_eq(res.removed, 1);
    }
    expect_gone(name);
  }
}
END_TEST

/* As progress_cancels_quick_scan, for the load: a quick load whose progress returns
 * non-zero on its only call must fail with BM_ECANCELED and leave nothing. */
START_TEST(load_progress_cancels_quick) {
  TMP_PATH(path, "quick");
  const char *name = ds_name();
  bm_load_opts_t lo;
  bm_load_result_t res;
  prog_t pg;
  int err;
  bm_test_write_pattern(path, 5000);
  memset(&lo, 0, sizeof(lo));
  memset(&pg, 0, sizeof(pg));
  pg.ret = 1;
  lo.dataset.large = BM_LARGE_OFF;
  lo.progress = progress;
  lo.progress_arg = &pg;
  err = bm_dataset_load(NULL, name, path, &lo, &res);
  if (err == 0) (void)bm_section_remove(name);
  ck_assert_msg(err == BM_ECANCELED,
                "progress returned 1 on its only call (%d calls) and "
                "bm_dataset_load gave %d (%s), not ECANCELED", pg.calls, err,
                err ? bm_err_name(err) : "success");
  expect_gone(name);
}
END_TEST

/* The file changed while loaded: rewritten in place, or grown. */
START_TEST(load_changed) {
  TMP_PATH(path, "changing");
  int how;
  for (how = 0; how < 2; how++) {
    const char *name = ds_name();
    bm_load_opts_t lo;
    bm_load_result_t res;
    bm_dataset_t *w = NULL;
    prog_t pg;
    int err;
    bm_test_make_sparse(path, 128 * MiB);
    memset(&lo, 0, sizeof(lo));
    memset(&pg, 0, sizeof(pg));
    pg.touch_path = path;
    pg.touch_grow = how;
    lo.dataset.large = BM_LARGE_OFF;
    lo.threads = 1 + how;
    lo.progress = progress;
    lo.progress_arg = &pg;
    err = bm_dataset_load(&w, name, path, &lo, &res);
    ck_assert_int_ge(pg.calls, 1);
    ck_assert_msg(err == BM_ECHANGED, "a file %s during the load gave %s",
                  how ? "grown" : "rewritten", bm_err_name(err));
    ck_assert_ptr_null(w);
    ck_assert_int_eq(res.removed, 1);
    expect_gone(name);
  }
}
END_TEST
#else
/* Windows refuses to cut a mapped file short (ERROR_USER_MAPPED_FILE, pinned by
 * check_window), and the load's oracles (xxhsum) are not there under Wine. */
START_TEST(truncated_while_scanned) { BM_TEST_SKIP("Windows cannot shrink a file under a view"); }
END_TEST
START_TEST(load_verify) { BM_TEST_SKIP("no xxhsum under Wine"); }
END_TEST
START_TEST(load_cancelled) { BM_TEST_SKIP("POSIX file changes and names only"); }
END_TEST
START_TEST(load_changed) { BM_TEST_SKIP("POSIX file changes and names only"); }
END_TEST
START_TEST(load_progress_cancels_quick) { BM_TEST_SKIP("POSIX names only"); }
END_TEST
static void remove_names(void) { bm_test_tmp_cleanup(); }
#endif

Suite *engine_suite(void) {
  Suite *s = suite_create("engine");
  TCase *tc = tcase_create("differential");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, scan_random_files);
  tcase_add_test(tc, buffer_random);
  suite_add_tcase(s, tc);
  /* Apart, so that each ctest entry has its own time: under Wine (no fork, so no Check
   * timeout a test) the four took 180-300 s together, nearly all in these two. */
  tc = tcase_create("long_literals");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, scan_long_literals);
  suite_add_tcase(s, tc);
  tc = tcase_create("sparse_large");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, scan_sparse_large);
  suite_add_tcase(s, tc);
  tc = tcase_create("stages");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, stages_out_of_order);
  tcase_add_test(tc, stages_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("parts");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, parts_fold);
  tcase_add_test(tc, parts_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, check_rules);
  tcase_add_test(tc, range_errors);
  tcase_add_test(tc, cancel_and_progress);
  tcase_add_test(tc, progress_cancels_quick_scan);
  tcase_add_test(tc, truncated_while_scanned);
  suite_add_tcase(s, tc);
  tc = tcase_create("load");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, NULL, remove_names);
  tcase_add_test(tc, load_verify);
  tcase_add_test(tc, load_cancelled);
  tcase_add_test(tc, load_changed);
  tcase_add_test(tc, load_progress_cancels_quick);
  suite_add_tcase(s, tc);
  return s;
}
