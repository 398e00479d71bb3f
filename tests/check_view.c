/* Views at any offset: bytes compared with a pattern the test wrote itself, at offsets on
 * and around the granularity; flush, copy-on-write, advice, prefetch and every error. */
#include <string.h>
#include "testutil.h"
#include "internal.h" /* bm__view_priv: where the OS mapped a view */
#include <stdlib.h>
#ifndef _WIN32
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

static void check_view_bytes(bm_source_t *src, uint64_t off, uint64_t len) {
  bm_view_t v;
  uint64_t i;
  ck_assert_bm_ok(bm_view_map(&v, src, off, len, BM_ACCESS_READ));
  ck_assert_ptr_nonnull(v.data);
  ck_assert_uint_eq(v.length, len);
  ck_assert_uint_eq(v.offset, off);
  /* A file's view is mapped from the granule below its offset to its last byte. */
  ck_assert_uint_eq(bm_view_mapped(&v), off % bm_source_granularity(src) + len);
  for (i = 0; i < len; i++)
    if (((unsigned char *)v.data)[i] != bm_test_byte(off + i))
      ck_abort_msg("byte %llu of view at %llu differs", (unsigned long long)i,
                   (unsigned long long)off);
  ck_assert_bm_ok(bm_view_unmap(&v));
  ck_assert_uint_eq(bm_view_mapped(&v), 0);
}

START_TEST(offsets_around_granularity) {
  const uint64_t g = bm_granularity();
  const uint64_t sizes[] = {1, 2, g - 1, g, g + 1, 2 * g - 1, 2 * g, 2 * g + 1, 3 * g + 5};
  size_t s;
  for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    const uint64_t size = sizes[s];
    const uint64_t offs[] = {0, 1, g - 1, g, g + 1, size - 1};
    const char *path = bm_test_path("pattern");
    bm_source_t *src;
    uint64_t got;
    size_t k;
    bm_test_write_pattern(path, size);
    ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
    ck_assert_bm_ok(bm_source_size(src, &got));
    ck_assert_uint_eq(got, size);
    for (k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
      if (offs[k] >= size) continue;
      check_view_bytes(src, offs[k], size - offs[k]); /* to the end */
      check_view_bytes(src, offs[k], 1);              /* one byte */
      if (size - offs[k] > 2) check_view_bytes(src, offs[k], size - offs[k] - 1);
    }
    /* BM_TO_END from the last byte. */
    {
      bm_view_t v;
      ck_assert_bm_ok(bm_view_map(&v, src, size - 1, BM_TO_END, BM_ACCESS_READ));
      ck_assert_uint_eq(v.length, 1);
      ck_assert_uint_eq(*(unsigned char *)v.data, bm_test_byte(size - 1));
      ck_assert_uint_eq((uintptr_t)bm__view_priv(&v)->base % bm_page_size(), 0);
      bm_view_unmap(&v);
    }
    bm_source_close(src);
  }
}
END_TEST

START_TEST(empty_sources) {
  const char *path = bm_test_path("empty");
  bm_source_t *src;
  bm_view_t v;
  bm_test_write_pattern(path, 0);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(&v, src, 0, BM_TO_END, BM_ACCESS_READ));
  ck_assert_ptr_nonnull(v.data);
  ck_assert_uint_eq(v.length, 0);
  ck_assert_uint_eq(bm_view_mapped(&v), 0); /* nothing mapped */
  ck_assert_bm_ok(bm_view_prefetch(&v));
  ck_assert_bm_ok(bm_view_advise(&v, BM_ADVICE_SEQUENTIAL));
  ck_assert_bm_ok(bm_view_unmap(&v));
  ck_assert_bm_ok(bm_view_map(&v, src, 0, 0, BM_ACCESS_READ));
  ck_assert_uint_eq(v.length, 0);
  bm_view_unmap(&v);
  ck_assert_bm_err(bm_view_map(&v, src, 1, 0, BM_ACCESS_READ), BM_ERANGE);
  bm_source_close(src);
}
END_TEST

START_TEST(flush_visible_to_read) {
  const char *path = bm_test_path("rw");
  const uint64_t g = bm_granularity();
  bm_source_t *src;
  bm_view_t v;
  unsigned char buf[8];
  bm_test_write_pattern(path, 3 * g);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_WRITE));
  ck_assert_bm_ok(bm_view_map(&v, src, g + 3, 8, BM_ACCESS_READ | BM_ACCESS_WRITE));
  memcpy(v.data, "FLUSHED!", 8);
  ck_assert_bm_ok(bm_view_flush(&v));
  ck_assert_uint_eq(bm_test_pread(path, g + 3, buf, 8), 8);
  ck_assert_mem_eq(buf, "FLUSHED!", 8);
  /* Bytes around it are untouched. */
  ck_assert_uint_eq(bm_test_pread(path, g + 2, buf, 1), 1);
  ck_assert_uint_eq(buf[0], bm_test_byte(g + 2));
  ck_assert_bm_ok(bm_view_unmap(&v));
  bm_source_close(src);
}
END_TEST

START_TEST(create_and_extend) {
  const char *path = bm_test_path("new");
  bm_source_t *src;
  bm_view_t v;
  uint64_t size;
  unsigned char b;
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_WRITE | BM_FILE_CREATE | BM_FILE_EXCL));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 0);
  ck_assert_bm_ok(bm_file_extend(src, 100000));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 100000);
  ck_assert_bm_err(bm_file_extend(src, 10), BM_EINVAL);
  ck_assert_bm_ok(bm_view_map(&v, src, 99999, 1, BM_ACCESS_WRITE));
  *(unsigned char *)v.data = 0xAB;
  ck_assert_bm_ok(bm_view_flush(&v));
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_uint_eq(bm_test_pread(path, 99999, &b, 1), 1);
  ck_assert_uint_eq(b, 0xAB);
  ck_assert_bm_err(bm_file_open(&src, path, BM_FILE_WRITE | BM_FILE_CREATE | BM_FILE_EXCL),
                   BM_EEXIST);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_WRITE | BM_FILE_TRUNC));
  ck_assert_bm_ok(bm_source_size(src, &size));
  ck_assert_uint_eq(size, 0);
  bm_source_close(src);
}
END_TEST

START_TEST(copy_on_write_leaves_file) {
  const char *path = bm_test_path("cow");
  const uint64_t g = bm_granularity();
  bm_source_t *src;
  bm_view_t v, w;
  unsigned char buf[16];
  size_t i;
  bm_test_write_pattern(path, 2 * g);
  /* A file opened copy-on-write: every view is private. */
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_COW));
  ck_assert_bm_ok(bm_view_map(&v, src, g - 8, 16, BM_ACCESS_READ));
  memset(v.data, 'X', 16);
  ck_assert_bm_err(bm_view_map(&w, src, 0, 1, BM_ACCESS_WRITE), BM_EREADONLY);
  bm_view_unmap(&v);
  bm_source_close(src);
  /* A copy view of a file opened read-only. */
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(&v, src, 1, 16, BM_ACCESS_COPY));
  memset(v.data, 'Y', 16);
  ck_assert_bm_ok(bm_view_flush(&v));
  ck_assert_uint_eq(((unsigned char *)v.data)[0], 'Y');
  bm_view_unmap(&v);
  bm_source_close(src);
  ck_assert_uint_eq(bm_test_pread(path, g - 8, buf, 16), 16);
  for (i = 0; i < 16; i++) ck_assert_uint_eq(buf[i], bm_test_byte(g - 8 + i));
  ck_assert_uint_eq(bm_test_pread(path, 1, buf, 16), 16);
  for (i = 0; i < 16; i++) ck_assert_uint_eq(buf[i], bm_test_byte(1 + i));
}
END_TEST

START_TEST(advice_and_prefetch) {
  const char *path = bm_test_path("adv");
  bm_source_t *src;
  bm_view_t v;
  int a;
  bm_test_write_pattern(path, 1 << 20);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_ok(bm_view_map(&v, src, 12345, 500000, BM_ACCESS_READ));
  for (a = BM_ADVICE_NORMAL; a <= BM_ADVICE_DONTNEED; a++) ck_assert_bm_ok(bm_view_advise(&v, a));
  ck_assert_bm_err(bm_view_advise(&v, 99), BM_EINVAL);
  ck_assert_bm_ok(bm_view_prefetch(&v));
  /* After DONTNEED the bytes are still the file's. */
  ck_assert_uint_eq(((unsigned char *)v.data)[499999], bm_test_byte(12345 + 499999));
  bm_view_unmap(&v);
  bm_source_close(src);
}
END_TEST

START_TEST(view_errors) {
  const char *path = bm_test_path("err");
  bm_source_t *src;
  bm_view_t v;
  bm_test_write_pattern(path, 5000);
  ck_assert_bm_ok(bm_file_open(&src, path, BM_FILE_READ));
  ck_assert_bm_err(bm_view_map(&v, src, 5001, 0, BM_ACCESS_READ), BM_ERANGE);
  ck_assert_bm_err(bm_view_map(&v, src, UINT64_MAX, 1, BM_ACCESS_READ), BM_ERANGE);
  ck_assert_bm_err(bm_view_map(&v, src, 4000, 1001, BM_ACCESS_READ), BM_ERANGE);
  ck_assert_bm_err(bm_view_map(&v, src, 10, UINT64_MAX - 5, BM_ACCESS_READ), BM_EOVERFLOW);
  ck_assert_bm_err(bm_view_map(&v, src, 0, 1, BM_ACCESS_WRITE), BM_EREADONLY);
  ck_assert_bm_err(bm_view_map(&v, src, 0, 1, BM_ACCESS_WRITE | BM_ACCESS_COPY), BM_EINVAL);
  ck_assert_bm_err(bm_view_map(&v, src, 0, 1, 64), BM_EINVAL);
  ck_assert_bm_err(bm_view_map(&v, NULL, 0, 1, BM_ACCESS_READ), BM_EINVAL);
  ck_assert_bm_err(bm_view_map(NULL, src, 0, 1, BM_ACCESS_READ), BM_EINVAL);
  ck_assert_bm_err(bm_file_extend(src, 6000), BM_EREADONLY);
  ck_assert_bm_ok(bm_view_map(&v, src, 5000, 0, BM_ACCESS_READ)); /* offset == size: empty */
  ck_assert_uint_eq(v.length, 0);
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_view_unmap(&v)); /* twice is fine */
  ck_assert_uint_eq(bm_view_mapped(NULL), 0);
  bm_source_close(src);
  bm_source_close(NULL);
}
END_TEST

START_TEST(open_errors) {
  bm_source_t *src = (bm_source_t *)1;
  ck_assert_bm_err(bm_file_open(&src, bm_test_path("missing"), BM_FILE_READ), BM_ENOENT);
  ck_assert_ptr_null(src);
  ck_assert_bm_err(bm_file_open(&src, bm_test_tmpdir(), BM_FILE_READ), BM_EISDIR);
  ck_assert_bm_err(bm_file_open(&src, "", BM_FILE_READ), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, NULL, BM_FILE_READ), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(NULL, "x", BM_FILE_READ), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, "x", 0), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, "x", BM_FILE_READ | BM_FILE_WRITE), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, "x", BM_FILE_READ | BM_FILE_CREATE), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, "x", BM_FILE_WRITE | BM_FILE_EXCL), BM_EINVAL);
  ck_assert_bm_err(bm_file_open(&src, "x", BM_FILE_READ | 1024), BM_EINVAL);
#ifndef _WIN32
  ck_assert_bm_err(bm_file_open(&src, "/dev/null", BM_FILE_READ), BM_ENOTREG);
  {
    const char *fifo = bm_test_path("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* Must not block waiting for a writer, and must be refused. */
    ck_assert_bm_err(bm_file_open(&src, fifo, BM_FILE_READ), BM_ENOTREG);
  }
  {
    const char *ro = bm_test_path("readonly");
    bm_test_write_pattern(ro, 10);
    ck_assert_int_eq(chmod(ro, 0400), 0);
    if (geteuid() != 0) ck_assert_bm_err(bm_file_open(&src, ro, BM_FILE_WRITE), BM_EACCES);
  }
#endif
}
END_TEST

START_TEST(error_table) {
  int e;
  for (e = -1; e > BM__ERR_MIN; e--) {
    ck_assert_str_ne(bm_err_name(e), "UNKNOWN");
    ck_assert_str_ne(bm_strerror(e), "unknown error");
  }
  ck_assert_str_eq(bm_err_name(BM_ETRUNCATED), "ETRUNCATED");
  ck_assert_str_eq(bm_err_name(BM__ERR_MIN), "UNKNOWN");
  ck_assert_str_eq(bm_err_name(BM_OK), "OK"); /* success has a name */
  ck_assert_str_eq(bm_strerror(12345), "unknown error");
  ck_assert_str_eq(bm_large_reason_str(BM_REASON_POOL_EMPTY), "pool empty");
  ck_assert_str_eq(bm_version(), BM_VERSION_STRING);
}
END_TEST

START_TEST(os_error_kept) {
  bm_source_t *src;
  ck_assert_bm_err(bm_file_open(&src, bm_test_path("nope"), BM_FILE_READ), BM_ENOENT);
#ifdef _WIN32
  ck_assert_int_eq(bm_last_os_error(), 2); /* ERROR_FILE_NOT_FOUND */
#else
  ck_assert_int_eq(bm_last_os_error(), ENOENT);
#endif
}
END_TEST

START_TEST(parse_sizes) {
  uint64_t v;
  ck_assert_bm_ok(bm_size_parse("0", &v));
  ck_assert_uint_eq(v, 0);
  ck_assert_bm_ok(bm_size_parse("64M", &v));
  ck_assert_uint_eq(v, 67108864);
  ck_assert_bm_ok(bm_size_parse("3k", &v));
  ck_assert_uint_eq(v, 3072);
  ck_assert_bm_ok(bm_size_parse("2G", &v));
  ck_assert_uint_eq(v, 2147483648ull);
  ck_assert_bm_ok(bm_size_parse("16T", &v));
  ck_assert_uint_eq(v, 16ull << 40);
  ck_assert_bm_ok(bm_size_parse("18446744073709551615", &v));
  ck_assert_uint_eq(v, UINT64_MAX);
  ck_assert_bm_err(bm_size_parse("18446744073709551616", &v), BM_EOVERFLOW);
  ck_assert_bm_err(bm_size_parse("16777216T", &v), BM_EOVERFLOW);
  ck_assert_bm_err(bm_size_parse("", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("M", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("12Q", &v), BM_EINVAL);
  /* As coreutils: KB MB GB TB are powers of 1000, KiB ... TiB of 1024; "iB"/"B" only as written. */
  ck_assert_bm_ok(bm_size_parse("12MB", &v));
  ck_assert_uint_eq(v, 12000000u);
  ck_assert_bm_ok(bm_size_parse("64MiB", &v));
  ck_assert_uint_eq(v, 64u << 20);
  ck_assert_bm_ok(bm_size_parse("1kB", &v));
  ck_assert_uint_eq(v, 1000u);
  ck_assert_bm_ok(bm_size_parse("2TiB", &v));
  ck_assert_uint_eq(v, 2ull << 40);
  ck_assert_bm_err(bm_size_parse("18446745TB", &v), BM_EOVERFLOW);
  ck_assert_bm_err(bm_size_parse("12mib", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("12Mb", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("12B", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("-1", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse(" 1", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse("1 ", &v), BM_EINVAL);
  ck_assert_bm_err(bm_size_parse(NULL, &v), BM_EINVAL);
}
END_TEST

START_TEST(sysinfo_facts) {
  bm_sysinfo_t si;
  int i;
  ck_assert_bm_ok(bm_sysinfo_get(&si));
  ck_assert_uint_gt(si.page_size, 0);
  ck_assert_uint_eq(si.page_size & (si.page_size - 1), 0);
  ck_assert_uint_ge(si.granularity, si.page_size);
  ck_assert_uint_eq(si.granularity % si.page_size, 0);
  ck_assert_uint_eq(bm_granularity(), si.granularity);
  ck_assert_str_ne(si.os, "");
  {
    bm_large_size_t ls;
    size_t prev = si.page_size;
    for (i = 0; bm_sysinfo_large_size(i, &ls) == 0; i++) {
      ck_assert_uint_gt(ls.size, prev); /* ascending, and larger than the base page */
      prev = ls.size;
    }
    ck_assert_int_eq(i, si.n_large_sizes);
  }
#ifdef _WIN32
  ck_assert_str_eq(si.os, "windows");
  ck_assert_uint_eq(si.granularity, 65536);
#elif defined(__linux__)
  ck_assert_str_eq(si.os, "linux");
  ck_assert_int_eq(si.granularity, sysconf(_SC_PAGESIZE));
  {
    /* Compare with what the kernel says, read independently. */
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long kb = 0;
    while (f && fgets(line, sizeof(line), f)) sscanf(line, "Hugepagesize: %lu kB", &kb);
    if (f) fclose(f);
    ck_assert_uint_eq(si.default_large_size, (size_t)kb << 10);
  }
#endif
  ck_assert_bm_err(bm_sysinfo_get(NULL), BM_EINVAL);
}
END_TEST

#ifdef __linux__
/* The kernel's huge page sizes and pools as the test reads them itself: one
 * hugepages-<N>kB directory a size, ascending, its free_hugepages and nr_hugepages. */
typedef struct {
  size_t n;
  bm_large_size_t *v;
} sys_sizes_t;

static uint64_t sys_u64(unsigned long kb, const char *file) {
  char path[256];
  unsigned long long v;
  FILE *f;
  int ok;
  snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/%s", kb, file);
  if ((f = fopen(path, "r")) == NULL) return UINT64_MAX;
  ok = fscanf(f, "%llu", &v) == 1;
  fclose(f);
  return ok ? (uint64_t)v : UINT64_MAX;
}

static int sys_size_cmp(const void *a, const void *b) {
  size_t x = ((const bm_large_size_t *)a)->size, y = ((const bm_large_size_t *)b)->size;
  return x < y ? -1 : x > y;
}

static void sys_sizes_read(sys_sizes_t *out) {
  DIR *d = opendir("/sys/kernel/mm/hugepages");
  struct dirent *e;
  unsigned long kb;
  size_t i;
  out->n = 0;
  out->v = NULL;
  if (d == NULL) return; /* a kernel without hugetlb pages: no sizes */
  while ((e = readdir(d)) != NULL)
    if (sscanf(e->d_name, "hugepages-%lukB", &kb) == 1) {
      out->v = realloc(out->v, (out->n + 1) * sizeof(*out->v));
      ck_assert_ptr_nonnull(out->v);
      out->v[out->n++].size = (size_t)kb << 10;
    }
  closedir(d);
  if (out->n > 0) qsort(out->v, out->n, sizeof(*out->v), sys_size_cmp);
  for (i = 0; i < out->n; i++) {
    out->v[i].free = sys_u64((unsigned long)(out->v[i].size >> 10), "free_hugepages");
    out->v[i].total = sys_u64((unsigned long)(out->v[i].size >> 10), "nr_hugepages");
  }
}

static int sys_sizes_same(const sys_sizes_t *a, const sys_sizes_t *b) {
  size_t i;
  if (a->n != b->n) return 0;
  for (i = 0; i < a->n; i++)
    if (a->v[i].size != b->v[i].size || a->v[i].free != b->v[i].free ||
        a->v[i].total != b->v[i].total)
      return 0;
  return 1;
}
#endif

/* bm_sysinfo_large_size against the kernel's own listing, read by the test: every size,
 * ascending, with its pool; BM_ENOENT past the last. */
START_TEST(sysinfo_large_sizes) {
  bm_sysinfo_t si;
  bm_large_size_t ls;
  ck_assert_bm_ok(bm_sysinfo_get(&si));
  ck_assert_bm_err(bm_sysinfo_large_size(-1, &ls), BM_EINVAL);
  ck_assert_bm_err(bm_sysinfo_large_size(0, NULL), BM_EINVAL);
  ck_assert_bm_err(bm_sysinfo_large_size(si.n_large_sizes, &ls), BM_ENOENT);
  ck_assert_bm_err(bm_sysinfo_large_size(si.n_large_sizes + 1000, &ls), BM_ENOENT);
#ifdef __linux__
  {
    sys_sizes_t before, after, lib;
    int tries, same = 0;
    size_t i;
    /* Other processes may take or free huge pages meanwhile (other tests grow the pool):
     * the library's figures are compared with readings the same before and after them. */
    for (tries = 0; tries < 50 && !same; tries++) {
      sys_sizes_read(&before);
      lib.n = 0;
      lib.v = NULL;
      for (i = 0; bm_sysinfo_large_size((int)i, &ls) == 0; i++) {
        lib.v = realloc(lib.v, (i + 1) * sizeof(*lib.v));
        ck_assert_ptr_nonnull(lib.v);
        lib.v[i] = ls;
        lib.n = i + 1;
      }
      ck_assert_bm_err(bm_sysinfo_large_size((int)lib.n, &ls), BM_ENOENT);
      sys_sizes_read(&after);
      /* The sizes themselves do not change while the system runs. */
      ck_assert_uint_eq(lib.n, before.n);
      ck_assert_uint_eq(lib.n, (size_t)si.n_large_sizes);
      for (i = 0; i < lib.n; i++) ck_assert_uint_eq(lib.v[i].size, before.v[i].size);
      if ((same = sys_sizes_same(&before, &after)) != 0)
        for (i = 0; i < lib.n; i++) {
          ck_assert_uint_eq(lib.v[i].free, before.v[i].free);
          ck_assert_uint_eq(lib.v[i].total, before.v[i].total);
        }
      free(before.v);
      free(after.v);
      free(lib.v);
    }
    ck_assert_msg(same, "the huge page pools changed under every one of %d readings", tries);
    fprintf(stderr, "sysinfo: %d large page sizes, default %zu\n", si.n_large_sizes,
            si.default_large_size);
  }
#else
  BM_TEST_SKIP("the kernel's own listing is Linux's /sys/kernel/mm/hugepages "
               "(check_win.sysinfo_windows checks GetLargePageMinimum)");
#endif
}
END_TEST

Suite *view_suite(void) {
  Suite *s = suite_create("view");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, offsets_around_granularity);
  tcase_add_test(tc, empty_sources);
  tcase_add_test(tc, flush_visible_to_read);
  tcase_add_test(tc, create_and_extend);
  tcase_add_test(tc, copy_on_write_leaves_file);
  tcase_add_test(tc, advice_and_prefetch);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, NULL, bm_test_tmp_cleanup);
  tcase_add_test(tc, view_errors);
  tcase_add_test(tc, open_errors);
  tcase_add_test(tc, error_table);
  tcase_add_test(tc, os_error_kept);
  tcase_add_test(tc, parse_sizes);
  tcase_add_test(tc, sysinfo_facts);
  suite_add_tcase(s, tc);
  tc = tcase_create("sysinfo");
  tcase_add_test(tc, sysinfo_large_sizes);
  suite_add_tcase(s, tc);
  return s;
}
