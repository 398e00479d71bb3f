/* Typed datasets (docs/design.md section 6): every malformed header refused with BM_EFORMAT, a
 * reason, and nothing published; good npy files (made by numpy itself, the independent
 * source) and a safetensors file written here byte by byte loaded with the right layout;
 * numpy.load(mmap_mode='r') reading an npy dataset from /dev/shm; an array published from
 * memory; and one copy in RAM: a load from a cold file leaves it cold, a file resident
 * before stays resident. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "internal.h"
#ifdef _WIN32
#include <windows.h> /* GetCurrentProcessId */
#endif
#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

static char nm_buf[4][96];
static int nm_i;
/* A dataset name of this run's. */
static const char *nm(const char *what) {
  char *b = nm_buf[nm_i++ & 3];
#ifdef _WIN32
  snprintf(b, sizeof(nm_buf[0]), "bmfmt-%lu-%s", (unsigned long)GetCurrentProcessId(), what);
#else
  snprintf(b, sizeof(nm_buf[0]), "bmfmt-%ld-%s", (long)getpid(), what);
#endif
  return b;
}

static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  if (na) ck_assert_uint_eq(fwrite(a, 1, na, f), na);
  if (nb) ck_assert_uint_eq(fwrite(b, 1, nb, f), nb);
  ck_assert_int_eq(fclose(f), 0);
}

/* An npy file: magic, version 1.0, the dict as given (padded to 64 with '\n' last), then
 * `data` bytes of the pattern. */
static void write_npy(const char *path, const char *dict, size_t data) {
  unsigned char h[4096];
  size_t k = strlen(dict), total = 10 + k + 1, i;
  unsigned char *d = malloc(data + 1);
  total += (64 - total % 64) % 64;
  ck_assert(total <= sizeof(h));
  memcpy(h, "\x93NUMPY\x01\x00", 8);
  h[8] = (unsigned char)((total - 10) & 0xff);
  h[9] = (unsigned char)((total - 10) >> 8);
  memcpy(h + 10, dict, k);
  memset(h + 10 + k, ' ', total - 10 - k);
  h[total - 1] = '\n';
  for (i = 0; i < data; i++) d[i] = bm_test_byte(i);
  write_file(path, h, total, d, data);
  free(d);
}

/* A safetensors file: the 8-byte little-endian length, the JSON, then `data` bytes. */
static void write_st(const char *path, const char *json, size_t data) {
  unsigned char len[8], *d = malloc(data + 1);
  uint64_t n = strlen(json);
  size_t i;
  for (i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
  {
    unsigned char *all = malloc(8 + n + data + 1);
    memcpy(all, len, 8);
    memcpy(all + 8, json, n);
    for (i = 0; i < data; i++) all[8 + n + i] = bm_test_byte(i);
    write_file(path, all, 8 + n + data, NULL, 0);
    free(all);
  }
  free(d);
}

/* Loads path as NAME with format; returns the error, the result in *r. */
static int load(const char *name, const char *path, int format, bm_dataset_t **ds,
                bm_load_result_t *r) {
  bm_load_opts_t o;
  memset(&o, 0, sizeof(o));
  o.dataset.large = BM_LARGE_OFF;
  o.threads = 2;
  o.format = format;
  return bm_dataset_load(ds, name, path, &o, r);
}

/* The file at path is refused with BM_EFORMAT and a reason holding `want`, and nothing is
 * left under the name. */
static void refused(const char *what, const char *path, int format, const char *want) {
  bm_load_result_t r;
  bm_dataset_t *ds = NULL, *rd = NULL;
  const char *name = nm(what);
  int err = load(name, path, format, &ds, &r);
  ck_assert_msg(err == BM_EFORMAT, "%s: load returned %s, expected EFORMAT (why: %s)", what,
                bm_err_name(err), r.why);
  ck_assert_ptr_null(ds);
  ck_assert_int_eq(r.failed_at, BM_LOAD_AT_FORMAT);
  ck_assert_int_eq(r.removed, 0); /* nothing was made */
  ck_assert_msg(strstr(r.why, want) != NULL, "%s: why '%s' lacks '%s'", what, r.why, want);
  ck_assert_bm_err(bm_dataset_open(&rd, name, BM_OPEN_ANY_STATE, NULL), BM_ENOENT);
}

START_TEST(malformed_npy) {
  const char *p = bm_test_path("bad.npy");
  unsigned char h[64];
  /* A header length past the end of the file. */
  memcpy(h, "\x93NUMPY\x01\x00\xe8\x03{'descr': '<f4'", 26);
  write_file(p, h, 26, NULL, 0);
  refused("longer", p, BM_FORMAT_AUTO, "longer than the file");
  /* The shape's product overflows 64 bits. */
  write_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", 64);
  refused("overflow", p, BM_FORMAT_AUTO, "overflows");
  /* The shape disagrees with the data's length. */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", 36);
  refused("size", p, BM_FORMAT_AUTO, "need 40 bytes of data, the file has 36");
  /* Bytes after the array are numpy's to ignore (numpy.load reads them, mmap or not). */
  /* Object (pickled) and unknown dtypes, and structured ones. */
  write_npy(p, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16);
  refused("object", p, BM_FORMAT_AUTO, "object dtype");
  write_npy(p, "{'descr': '<x4', 'fortran_order': False, 'shape': (2,), }", 8);
  refused("unknown", p, BM_FORMAT_AUTO, "unknown");
  write_npy(p, "{'descr': [('a', '<f4'), ('b', '|O')], 'fortran_order': False, 'shape': (2,), }", 8);
  refused("objfield", p, BM_FORMAT_AUTO, "object dtype");
  /* Python 3 refuses leading zeros; (3) is an int, not a tuple. */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (03,), }", 12);
  refused("zeros", p, BM_FORMAT_AUTO, "leading zeros");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 004), }", 48);
  refused("zeros2", p, BM_FORMAT_AUTO, "leading zeros");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12);
  refused("paren", p, BM_FORMAT_AUTO, "not a tuple");
  /* A zero among the dimensions hides no overflow (numpy: "array is too big"). */
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4611686018427387904), }", 0);
  refused("zero", p, BM_FORMAT_AUTO, "too big");
  /* A dict that is not one, keys missing or repeated, junk after it. */
  write_npy(p, "{'descr': '<f4', 'shape': (2,), }", 8);
  refused("nokey", p, BM_FORMAT_AUTO, "lacks fortran_order");
  write_npy(p, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  refused("twice", p, BM_FORMAT_AUTO, "twice");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8);
  refused("junk", p, BM_FORMAT_AUTO, "not a Python literal");
  write_npy(p, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }", 8);
  refused("fortran", p, BM_FORMAT_AUTO, "not a Python literal");
  write_npy(p, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8);
  refused("fortran2", p, BM_FORMAT_AUTO, "True or False");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8);
  refused("negative", p, BM_FORMAT_AUTO, "negative");
  /* Asked for npy, and it is not. */
  write_file(p, "hello, world", 12, NULL, 0);
  refused("notnpy", p, BM_FORMAT_NPY, "magic");
  /* --format raw takes any bytes as they are. */
  {
    bm_load_result_t r;
    bm_dataset_t *ds = NULL;
    write_npy(p, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16);
    ck_assert_bm_ok(load(nm("raw"), p, BM_FORMAT_RAW, &ds, &r));
    ck_assert_int_eq(r.info.format, BM_FORMAT_RAW);
    ck_assert_int_eq(r.info.has_layout, 0);
    bm_dataset_remove(ds);
    bm_dataset_close(ds);
  }
}
END_TEST

START_TEST(malformed_safetensors) {
  const char *p = bm_test_path("bad.safetensors");
  /* Overlapping and out-of-range data_offsets. */
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
  refused("overlap", p, BM_FORMAT_AUTO, "contiguous");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12);
  refused("range", p, BM_FORMAT_AUTO, "past the data");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 16);
  refused("backwards", p, BM_FORMAT_AUTO, "end before they begin");
  /* The shape disagrees with the range; the product overflows; unknown dtype. */
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
  refused("shape", p, BM_FORMAT_AUTO, "need 12 bytes");
  write_st(p, "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16);
  refused("overflow", p, BM_FORMAT_AUTO, "overflows");
  write_st(p, "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16);
  refused("dtype", p, BM_FORMAT_AUTO, "unknown dtype");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
  refused("fraction", p, BM_FORMAT_AUTO, "non-negative integers");
  /* Bad JSON, a header that is no object, a tensor named twice. */
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],", 4);
  refused("json", p, BM_FORMAT_AUTO, "not valid JSON");
  write_st(p, "[1, 2]", 4);
  refused("array", p, BM_FORMAT_SAFETENSORS, "not a JSON object");
  write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
  refused("twice", p, BM_FORMAT_AUTO, "twice");
  write_st(p, "{\"__metadata__\":{\"k\":1}}", 0);
  refused("metadata", p, BM_FORMAT_AUTO, "__metadata__");
  /* A header longer than the file (auto would take it as raw: asked for). */
  {
    unsigned char h[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_file(p, h, 10, NULL, 0);
    refused("longer", p, BM_FORMAT_SAFETENSORS, "longer than the file");
  }
  /* A header over 100 MB, in a sparse file long enough to hold it. */
  {
    uint64_t n = 100000001ull;
    unsigned char h[9];
    int i;
    for (i = 0; i < 8; i++) h[i] = (unsigned char)(n >> (8 * i));
    h[8] = '{';
    bm_test_make_sparse(p, n + 64);
    bm_test_pwrite(p, 0, h, 9);
    refused("huge", p, BM_FORMAT_AUTO, "over the limit");
  }
}
END_TEST

/* The checker itself on bytes cut short: never reads past n, says truncated. */
START_TEST(truncated_buffers) {
  static const char st[] = "\x35\0\0\0\0\0\0\0{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}xy";
  bm_format_info_t fi;
  char why[BM_WHY_MAX];
  size_t n;
  ck_assert_uint_eq(sizeof(st) - 1, 8 + 0x35 + 2);
  ck_assert_bm_ok(bm_format_check(st, sizeof(st) - 1, sizeof(st) - 1, BM_FORMAT_AUTO, &fi, why, sizeof(why)));
  ck_assert_int_eq(fi.format, BM_FORMAT_SAFETENSORS);
  ck_assert_uint_eq(fi.n_tensors, 1);
  ck_assert_uint_eq(fi.header_bytes, 8 + 0x35);
  for (n = 0; n < 8 + 0x35; n++) {
    char *copy = malloc(n + 1); /* exactly n bytes readable (ASan would see more) */
    memcpy(copy, st, n);
    ck_assert_int_eq(bm_format_check(copy, n, sizeof(st) - 1, BM_FORMAT_SAFETENSORS, &fi, why, sizeof(why)), BM_EFORMAT);
    free(copy);
  }
}
END_TEST

#ifndef _WIN32
static int have_numpy(void) {
  return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* numpy writes the file and says where its data starts (its own header reader). */
static uint64_t numpy_save(const char *path, const char *expr) {
  const char *off = bm_test_path("offset.txt");
  FILE *f;
  unsigned long long v = 0;
  ck_assert_int_eq(run("/usr/bin/python3 -c \"import numpy as np, numpy.lib.format as F\n"
                       "a = %s\nnp.save('%s', a)\nfh = open('%s', 'rb'); ver = F.read_magic(fh)\n"
                       "(F.read_array_header_1_0 if ver == (1, 0) else F.read_array_header_2_0)(fh)\n"
                       "open('%s', 'w').write(str(fh.tell()))\"",
                       expr, path, path, off), 0);
  f = fopen(off, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fscanf(f, "%llu", &v), 1);
  fclose(f);
  return v;
}
#endif

START_TEST(npy_from_numpy) {
#ifdef _WIN32
  BM_TEST_SKIP("numpy runs on the host, not under Wine");
#else
  static const struct {
    const char *expr;
    int dtype;
    char order, byteorder;
    uint32_t ndim;
    uint64_t shape[3];
  } cases[] = {
      {"np.arange(12, dtype='<f4').reshape(3, 4)", BM_DTYPE_F32, 'C', '<', 2, {3, 4}},
      {"np.asfortranarray(np.arange(24, dtype='<i2').reshape(2, 3, 4))", BM_DTYPE_I16, 'F', '<', 3, {2, 3, 4}},
      {"np.array(7.5, dtype='>f8')", BM_DTYPE_F64, 'C', '>', 0, {0}},
      {"np.array([True, False, True])", BM_DTYPE_BOOL, 'C', '|', 1, {3}},
      {"np.zeros((0, 5), dtype='<u8')", BM_DTYPE_U64, 'C', '<', 2, {0, 5}},
      {"np.arange(6, dtype='<c8')", BM_DTYPE_C64, 'C', '<', 1, {6}},
  };
  size_t i;
  if (!have_numpy()) BM_TEST_SKIP("/usr/bin/python3 with numpy is not installed");
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *p = bm_test_path("a.npy"), *name = nm("npy");
    uint64_t off = numpy_save(p, cases[i].expr), size;
    bm_load_result_t r;
    bm_dataset_info_t info;
    bm_dataset_t *ds = NULL, *rd = NULL;
    uint32_t d;
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    size = (uint64_t)st.st_size;
    ck_assert_bm_ok(load(name, p, BM_FORMAT_AUTO, &ds, &r));
    /* What a reader sees on open (the trailer, in O(1)). */
    ck_assert_bm_ok(bm_dataset_open(&rd, name, 0, &info));
    ck_assert_int_eq(info.format, BM_FORMAT_NPY);
    ck_assert_int_eq(info.has_layout, 1);
    ck_assert_int_eq(info.layout.dtype, cases[i].dtype);
    ck_assert_int_eq(info.layout.order, cases[i].order);
    ck_assert_int_eq(info.layout.byteorder, cases[i].byteorder);
    ck_assert_uint_eq(info.layout.ndim, cases[i].ndim);
    for (d = 0; d < cases[i].ndim; d++) ck_assert_uint_eq(info.layout.shape[d], cases[i].shape[d]);
    ck_assert_uint_eq(info.layout.data_offset, off);
    ck_assert_uint_eq(info.header_bytes, off);
    ck_assert_uint_eq(info.layout.data_offset + info.layout.data_length, size);
    ck_assert_uint_eq(info.bytes, size);
    bm_dataset_close(rd);
    /* Plain numpy reads the section as the file it is, mapped. */
    ck_assert_int_eq(run("/usr/bin/python3 -c \"import numpy as np\n"
                         "a = np.load('/dev/shm/%s', mmap_mode='r'); b = np.load('%s')\n"
                         "assert isinstance(a, np.memmap) and a.dtype == b.dtype and a.shape == b.shape\n"
                         "assert (a == b).all() and a.flags.f_contiguous == b.flags.f_contiguous\"",
                         name, p), 0);
    bm_dataset_remove(ds);
    bm_dataset_close(ds);
  }
#endif
}
END_TEST

START_TEST(safetensors_written_here) {
  /* Two tensors and __metadata__, the data in the other order than the header's. */
  static const char json[] =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
      "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]},"
      "\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[0],\"data_offsets\":[36,36]}}";
  const char *p = bm_test_path("m.safetensors"), *name = nm("st");
  uint64_t hdr = 8 + sizeof(json) - 1;
  bm_load_result_t r;
  bm_dataset_info_t info;
  bm_dataset_t *ds = NULL, *rd = NULL;
  bm_tensor_t *t = NULL;
  size_t n = 0;
  write_st(p, json, 36);
  ck_assert_bm_ok(load(name, p, BM_FORMAT_AUTO, &ds, &r));
  ck_assert_bm_ok(bm_dataset_open(&rd, name, 0, &info));
  ck_assert_int_eq(info.format, BM_FORMAT_SAFETENSORS);
  ck_assert_int_eq(info.has_layout, 0);
  ck_assert_uint_eq(info.n_tensors, 4);
  ck_assert_uint_eq(info.header_bytes, hdr);
  ck_assert_bm_ok(bm_dataset_tensors(rd, &t, &n));
  ck_assert_uint_eq(n, 4);
  /* In payload order. */
  ck_assert_str_eq(t[0].name, "b");
  ck_assert_int_eq(t[0].layout.dtype, BM_DTYPE_F32);
  ck_assert_uint_eq(t[0].layout.ndim, 1);
  ck_assert_uint_eq(t[0].layout.shape[0], 4);
  ck_assert_uint_eq(t[0].layout.data_offset, hdr);
  ck_assert_uint_eq(t[0].layout.data_length, 16);
  ck_assert_str_eq(t[1].name, "w");
  ck_assert_int_eq(t[1].layout.dtype, BM_DTYPE_BF16);
  ck_assert_str_eq(bm_dtype_name(t[1].layout.dtype), "BF16");
  ck_assert_uint_eq(t[1].layout.ndim, 2);
  ck_assert_uint_eq(t[1].layout.shape[1], 3);
  ck_assert_uint_eq(t[1].layout.data_offset, hdr + 16);
  ck_assert_uint_eq(t[1].layout.data_length, 12);
  {
    char d[8];
    ck_assert_str_eq(bm_dtype_descr(&t[1].layout, d, sizeof(d)), "<u2"); /* numpy's view */
  }
  ck_assert_str_eq(t[2].name, "s");
  ck_assert_uint_eq(t[2].layout.ndim, 0);
  ck_assert_uint_eq(t[2].layout.data_length, 8);
  ck_assert_str_eq(t[3].name, "e");
  ck_assert_uint_eq(t[3].layout.data_length, 0);
  bm_tensors_free(t);
  ck_assert_bm_err(bm_dataset_tensors(rd, &t, &n), 0);
  bm_tensors_free(t);
  bm_dataset_close(rd);
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
}
END_TEST

START_TEST(publish_from_memory) {
  float a[2][3] = {{1, 2, 3}, {4, 5, 6.5f}};
  bm_layout_t l;
  bm_publish_opts_t po;
  bm_load_result_t r;
  bm_dataset_info_t info;
  bm_dataset_t *ds = NULL, *rd = NULL;
  const char *name = nm("pub"), *bad = nm("pubbad"), *raw = nm("pubraw");
  size_t hlen = 0;
  memset(&l, 0, sizeof(l));
  l.dtype = BM_DTYPE_F32;
  l.ndim = 2;
  l.shape[0] = 2;
  l.shape[1] = 3;
  memset(&po, 0, sizeof(po));
  po.dataset.large = BM_LARGE_OFF;
  po.layout = &l;
  ck_assert_bm_ok(bm_npy_header(&l, NULL, 0, &hlen));
  ck_assert_uint_eq(hlen % 64, 0);
  ck_assert_bm_ok(bm_dataset_publish_buffer(&ds, name, a, sizeof(a), &po, &r));
  ck_assert_bm_ok(bm_dataset_open(&rd, name, BM_OPEN_VERIFY, &info));
  ck_assert_int_eq(info.format, BM_FORMAT_NPY);
  ck_assert_int_eq(info.layout.dtype, BM_DTYPE_F32);
  ck_assert_uint_eq(info.layout.data_offset, hlen);
  ck_assert_uint_eq(info.bytes, hlen + sizeof(a));
  bm_dataset_close(rd);
#ifndef _WIN32
  if (have_numpy())
    ck_assert_int_eq(run("/usr/bin/python3 -c \"import numpy as np\n"
                         "a = np.load('/dev/shm/%s', mmap_mode='r')\n"
                         "assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 2] == 6.5 and a[0, 1] == 2\"",
                         name), 0);
  else
    bm_test_note_skip(__func__, "numpy check skipped: /usr/bin/python3 with numpy is not installed");
#endif
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
  /* A layout that disagrees with the buffer: refused, nothing made. */
  l.shape[1] = 4;
  ck_assert_bm_err(bm_dataset_publish_buffer(&ds, bad, a, sizeof(a), &po, &r), BM_EFORMAT);
  ck_assert_ptr_null(ds);
  ck_assert_int_eq(r.failed_at, BM_LOAD_AT_FORMAT);
  ck_assert_ptr_nonnull(strstr(r.why, "need 32 bytes"));
  ck_assert_bm_err(bm_dataset_open(&rd, bad, BM_OPEN_ANY_STATE, NULL), BM_ENOENT);
  /* Plain bytes. */
  po.layout = NULL;
  po.format = BM_FORMAT_RAW;
  ck_assert_bm_ok(bm_dataset_publish_buffer(&ds, raw, "abc", 3, &po, &r));
  ck_assert_int_eq(r.info.format, BM_FORMAT_RAW);
  ck_assert_uint_eq(r.info.bytes, 3);
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
}
END_TEST

/* A writer that fills a section itself says what it holds (bm_dataset_set_format), judged
 * from the section. */
START_TEST(set_format_from_section) {
  static const char json[] = "{\"x\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
  unsigned char buf[8 + sizeof(json) - 1 + 4];
  bm_dataset_opts_t o;
  bm_dataset_t *ds;
  bm_view_t v;
  bm_dataset_info_t info;
  char why[BM_WHY_MAX];
  size_t i;
  uint64_t n = sizeof(json) - 1;
  for (i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
  memcpy(buf + 8, json, n);
  memset(buf + 8 + n, 7, 4);
  memset(&o, 0, sizeof(o));
  o.size = sizeof(buf);
  ck_assert_bm_ok(bm_dataset_create(&ds, nm("setfmt"), &o, NULL));
  /* Not filled yet: zeros are no npy header. */
  ck_assert_bm_err(bm_dataset_set_format(ds, BM_FORMAT_NPY, why, sizeof(why)), BM_EFORMAT);
  ck_assert_bm_ok(bm_view_map(&v, bm_dataset_source(ds), 0, sizeof(buf), BM_ACCESS_WRITE));
  memcpy(v.data, buf, sizeof(buf));
  bm_view_unmap(&v);
  ck_assert_bm_ok(bm_dataset_set_format(ds, BM_FORMAT_AUTO, why, sizeof(why)));
  ck_assert_bm_ok(bm_dataset_publish(ds, &info));
  ck_assert_int_eq(info.format, BM_FORMAT_SAFETENSORS);
  ck_assert_uint_eq(info.n_tensors, 1);
  ck_assert_bm_err(bm_dataset_set_format(ds, BM_FORMAT_RAW, NULL, 0), BM_EINVAL); /* published */
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
}
END_TEST

#ifndef _WIN32
/* Fraction of the file's pages resident, by the test's own mincore. */
static double resident(const char *path) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  unsigned char *vec;
  size_t pages, i, n = 0, ps = (size_t)sysconf(_SC_PAGESIZE);
  void *p;
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fstat(fd, &st), 0);
  p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  ck_assert(p != MAP_FAILED);
  pages = ((size_t)st.st_size + ps - 1) / ps;
  vec = malloc(pages);
  ck_assert_int_eq(mincore(p, (size_t)st.st_size, vec), 0);
  for (i = 0; i < pages; i++) n += vec[i] & 1;
  free(vec);
  munmap(p, (size_t)st.st_size);
  close(fd);
  return (double)n / (double)pages;
}

static void make_cold(const char *path) {
  int fd = open(path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

static void make_warm(const char *path) {
  char buf[1 << 16];
  int fd = open(path, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  while (read(fd, buf, sizeof(buf)) > 0) {}
  close(fd);
}
#endif

START_TEST(one_copy_in_ram) {
  const char *p = bm_test_path("cold.bin");
  const uint64_t size = 32u << 20;
  bm_load_result_t r;
  bm_dataset_t *ds = NULL;
  bm_test_write_pattern(p, size);
#ifdef _WIN32
  ck_assert_bm_ok(load(nm("cold"), p, BM_FORMAT_AUTO, &ds, &r));
  ck_assert_int_eq(r.has_source_cached, 0); /* Windows cannot tell: reported unknown */
  bm_dataset_close(ds);
  BM_TEST_SKIP("Windows cannot see or drop one file's cached pages");
#else
  make_cold(p);
  if (resident(p) > 0.01) BM_TEST_SKIP("the file system keeps %s cached (tmpfs?): cannot make it cold", p);
  ck_assert_bm_ok(load(nm("cold"), p, BM_FORMAT_AUTO, &ds, &r));
  ck_assert_int_eq(r.has_source_cached, 1);
  ck_assert_uint_le(r.source_cached_before, size / 100);
  ck_assert_msg(r.source_cached_bytes <= size / 100, "a cold file left %llu of %llu bytes cached",
                (unsigned long long)r.source_cached_bytes, (unsigned long long)size);
  ck_assert(resident(p) <= 0.01); /* the test's own look */
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
  /* Resident before: stays resident. */
  make_warm(p);
  if (resident(p) < 0.99) BM_TEST_SKIP("the file could not be made resident (memory pressure)");
  ck_assert_bm_ok(load(nm("warm"), p, BM_FORMAT_AUTO, &ds, &r));
  ck_assert_uint_ge(r.source_cached_before, size - size / 100);
  ck_assert_uint_ge(r.source_cached_bytes, r.source_cached_before - size / 100);
  ck_assert(resident(p) >= 0.99);
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
  /* Half resident: the other half is dropped again. */
  make_cold(p);
  {
    int fd = open(p, O_RDONLY);
    char buf[1 << 16];
    uint64_t done = 0;
    while (done < size / 2 && read(fd, buf, sizeof(buf)) > 0) done += sizeof(buf);
    close(fd);
  }
  ck_assert_bm_ok(load(nm("half"), p, BM_FORMAT_AUTO, &ds, &r));
  ck_assert_uint_le(r.source_cached_bytes, r.source_cached_before + size / 100);
  ck_assert_uint_ge(r.source_cached_before, size / 2 - size / 100);
  bm_dataset_remove(ds);
  bm_dataset_close(ds);
#endif
}
END_TEST

static void fmt_teardown(void) { bm_test_tmp_cleanup(); }

/* ---- The reference's own vectors (tests/vectors/safetensors.txt: the safetensors crate's
 * tests, and one case a rule), and the compact layout. */

static const char *vec_path(const char *name, char *buf, size_t n) {
  const char *f = __FILE__, *s = strrchr(f, '/'), *b = strrchr(f, '\\');
  size_t k;
  if (b != NULL && (s == NULL || b > s)) s = b;
  k = s ? (size_t)(s - f + 1) : 0;
  snprintf(buf, n, "%.*svectors/%s", (int)k, f, name);
  return buf;
}

static int hexv(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

/* One vector's bytes into a malloc'd buffer (see the file's head for the form). */
static unsigned char *vec_bytes(const char *text, size_t *n) {
  size_t k = strlen(text), i, o = 0;
  unsigned char *b;
  if (strncmp(text, "raw:", 4) == 0) {
    b = malloc(k + 1);
    for (i = 4; i < k; i++) {
      if (text[i] == '\\' && i + 3 < k + 1 && text[i + 1] == 'x' && hexv(text[i + 2]) >= 0 && hexv(text[i + 3]) >= 0) {
        b[o++] = (unsigned char)(hexv(text[i + 2]) * 16 + hexv(text[i + 3]));
        i += 3;
      } else b[o++] = (unsigned char)text[i];
    }
  } else {
    const char *bar = strstr(text, " || ");
    size_t jl, data, j;
    ck_assert_msg(bar != NULL, "vector without ' || ': %s", text);
    jl = (size_t)(bar - text);
    data = (size_t)strtoul(bar + 4, NULL, 10);
    b = calloc(1, 8 + jl + data + 1);
    for (j = 0; j < 8; j++) b[j] = (unsigned char)((uint64_t)jl >> (8 * j));
    memcpy(b + 8, text, jl);
    o = 8 + jl + data;
  }
  *n = o;
  return b;
}

START_TEST(safetensors_vectors) {
  char path[4096], line[8192];
  FILE *f = fopen(vec_path("safetensors.txt", path, sizeof(path)), "r");
  int cases = 0, acc = 0;
#ifdef _WIN32
  if (f == NULL) return; /* the source tree is not where Wine looks */
#endif
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof(line), f) != NULL) {
    char *t, why[BM_WHY_MAX];
    size_t n, k = strlen(line);
    unsigned char *b;
    bm_format_info_t fi;
    int want, err;
    while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = '\0';
    if (k == 0 || line[0] == '#') continue;
    t = strchr(line, ' ');
    ck_assert_ptr_nonnull(t);
    *t++ = '\0';
    want = strcmp(line, "ACCEPT") == 0 ? 0 : BM_EFORMAT;
    b = vec_bytes(t, &n);
    err = bm_format_check(b, n, n, BM_FORMAT_SAFETENSORS, &fi, why, sizeof(why));
    ck_assert_msg(err == want, "%s %s: got %s (%s)", line, t, bm_err_name(err), why);
    if (err == 0) {
      bm_tensor_t *ts = NULL;
      bm_meta_t *ms = NULL;
      size_t nt, nmeta, i;
      ck_assert_int_eq(fi.format, BM_FORMAT_SAFETENSORS);
      ck_assert_bm_ok(bm_format_tensors(b, n, n, &ts, &nt, why, sizeof(why)));
      ck_assert_uint_eq(nt, fi.n_tensors);
      for (i = 1; i < nt; i++) ck_assert(ts[i].layout.data_offset == ts[i - 1].layout.data_offset + ts[i - 1].layout.data_length);
      ck_assert_bm_ok(bm_format_metadata(b, n, n, &ms, &nmeta, why, sizeof(why)));
      ck_assert_uint_eq(nmeta, fi.n_metadata);
      bm_tensors_free(ts);
      bm_metadata_free(ms);
      acc++;
    }
    free(b);
    cases++;
  }
  fclose(f);
  ck_assert_int_ge(cases, 60);
  ck_assert_int_ge(acc, 20);
}
END_TEST

/* Names keep their exact bytes (an embedded NUL included); __metadata__ read back. */
START_TEST(safetensors_names_and_metadata) {
  const char *j = "{\"__metadata__\":{\"format\":\"pt\",\"k\\u00e9\":\"v\\u0000w\"},"
                  "\"a\\u0000x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
  size_t jl = strlen(j), n = 8 + jl + 2, nt, nm, i;
  unsigned char *b = calloc(1, n);
  bm_tensor_t *t;
  bm_meta_t *m;
  char why[BM_WHY_MAX];
  for (i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
  memcpy(b + 8, j, jl);
  ck_assert_msg(bm_format_tensors(b, n, n, &t, &nt, why, sizeof(why)) == 0, "%s", why);
  ck_assert_uint_eq(nt, 2);
  ck_assert_uint_eq(t[0].name_len, 1);
  ck_assert_str_eq(t[0].name, "a");
  ck_assert_uint_eq(t[1].name_len, 3);
  ck_assert(memcmp(t[1].name, "a\0x", 3) == 0);
  ck_assert_uint_eq(t[1].layout.data_offset, 8 + jl + 1);
  bm_tensors_free(t);
  ck_assert_bm_ok(bm_format_metadata(b, n, n, &m, &nm, why, sizeof(why)));
  ck_assert_uint_eq(nm, 2);
  ck_assert_str_eq(m[0].key, "format");
  ck_assert_str_eq(m[0].value, "pt");
  ck_assert_uint_eq(m[1].key_len, 3);
  ck_assert_str_eq(m[1].key, "k\xc3\xa9");
  ck_assert_uint_eq(m[1].value_len, 3);
  ck_assert(memcmp(m[1].value, "v\0w", 3) == 0);
  bm_metadata_free(m);
  free(b);
}
END_TEST

/* bm__layout_encode / _decode: a round trip for each format, and every truncation and
 * every flipped byte of the blob refused with BM_ECORRUPT. */
static void blob_round_trip(const unsigned char *h, size_t n, int format) {
  bm_format_info_t fi, back;
  unsigned char *blob = NULL;
  size_t bn = 0, nt = 0, nm = 0, i, k;
  bm_tensor_t *t = NULL, *t0 = NULL;
  bm_meta_t *m = NULL;
  char *descr = NULL, why[BM_WHY_MAX];
  ck_assert_bm_ok(bm_format_check(h, n, n, format, &fi, why, sizeof(why)));
  ck_assert_bm_ok(bm__layout_encode(&fi, h, n, &blob, &bn));
  ck_assert_bm_ok(bm__layout_decode(blob, bn, &back, &t, &nt, &m, &nm, &descr));
  ck_assert_int_eq(back.format, fi.format);
  ck_assert_int_eq(back.has_layout, fi.has_layout);
  ck_assert_uint_eq(back.header_bytes, fi.header_bytes);
  ck_assert_uint_eq(back.n_tensors, fi.n_tensors);
  ck_assert_uint_eq(back.payload_size, n);
  if (fi.has_layout) {
    ck_assert_int_eq(back.layout.dtype, fi.layout.dtype);
    ck_assert_uint_eq(back.layout.item_size, fi.layout.item_size);
    ck_assert_uint_eq(back.layout.ndim, fi.layout.ndim);
    ck_assert(memcmp(back.layout.shape, fi.layout.shape, sizeof(fi.layout.shape)) == 0);
    ck_assert_uint_eq(back.layout.data_offset, fi.layout.data_offset);
    ck_assert_str_eq(back.layout.descr, fi.layout.descr);
    ck_assert_ptr_nonnull(descr);
  }
  if (format == BM_FORMAT_SAFETENSORS) {
    size_t n0;
    ck_assert_bm_ok(bm_format_tensors(h, n, n, &t0, &n0, why, sizeof(why)));
    ck_assert_uint_eq(n0, nt);
    for (i = 0; i < nt; i++) {
      ck_assert_uint_eq(t[i].name_len, t0[i].name_len);
      ck_assert(memcmp(t[i].name, t0[i].name, t0[i].name_len) == 0);
      ck_assert_int_eq(t[i].layout.dtype, t0[i].layout.dtype);
      ck_assert_uint_eq(t[i].layout.data_offset, t0[i].layout.data_offset);
      ck_assert_uint_eq(t[i].layout.data_length, t0[i].layout.data_length);
      ck_assert(memcmp(t[i].layout.shape, t0[i].layout.shape, sizeof(t0[i].layout.shape)) == 0);
    }
    bm_tensors_free(t0);
  }
  bm_tensors_free(t);
  bm_metadata_free(m);
  free(descr);
  for (k = 0; k < bn; k++) { /* cut short anywhere */
    ck_assert_bm_err(bm__layout_decode(blob, k, &back, &t, &nt, &m, &nm, &descr), k == 0 && 0 ? BM_EINVAL : BM_ECORRUPT);
    ck_assert_ptr_null(t);
  }
  for (k = 0; k < bn; k++) { /* one byte changed anywhere */
    blob[k] ^= 0x41;
    ck_assert_bm_err(bm__layout_decode(blob, bn, &back, &t, &nt, &m, &nm, &descr), BM_ECORRUPT);
    blob[k] ^= 0x41;
  }
  free(blob);
}

START_TEST(layout_blob) {
  static const char npy_hdr[] = "{'descr': [('a', '<i4'), (('t', 'b'), '>f8', (2,)), ('', '|V4')], 'fortran_order': False, 'shape': (3,), }";
  const char *st = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[0,2]},"
                   "\"b\\u0000\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[2,8]}}";
  unsigned char *b;
  size_t n, jl = strlen(st), i;
  const char *p = bm_test_path("blob.npy");
  FILE *f;
  /* npy: a structured dtype with a title, a subarray and padding */
  write_npy(p, npy_hdr, 3 * 24);
  f = fopen(p, "rb");
  b = malloc(4096);
  n = fread(b, 1, 4096, f);
  fclose(f);
  blob_round_trip(b, n, BM_FORMAT_NPY);
  {
    bm_format_info_t fi;
    char why[BM_WHY_MAX];
    ck_assert_bm_ok(bm_format_check(b, n, n, BM_FORMAT_AUTO, &fi, why, sizeof(why)));
    ck_assert_int_eq(fi.layout.dtype, BM_DTYPE_NPY);
    ck_assert_uint_eq(fi.layout.item_size, 24);
    ck_assert_uint_eq(fi.layout.flags, BM_LAYOUT_RECORD);
    ck_assert_str_eq(fi.layout.descr, "|V24");
  }
  free(b);
  /* safetensors: sub-byte, a NUL in a name, metadata */
  n = 8 + jl + 8;
  b = calloc(1, n);
  for (i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
  memcpy(b + 8, st, jl);
  blob_round_trip(b, n, BM_FORMAT_SAFETENSORS);
  free(b);
  /* raw */
  {
    bm_format_info_t fi, back;
    unsigned char *blob;
    size_t bn;
    memset(&fi, 0, sizeof(fi));
    fi.format = BM_FORMAT_RAW;
    fi.payload_size = 12345;
    ck_assert_bm_ok(bm__layout_encode(&fi, NULL, 0, &blob, &bn));
    ck_assert_bm_ok(bm__layout_decode(blob, bn, &back, NULL, NULL, NULL, NULL, NULL));
    ck_assert_int_eq(back.format, BM_FORMAT_RAW);
    ck_assert_uint_eq(back.payload_size, 12345);
    free(blob);
  }
}
END_TEST

/* --format auto: a file that starts with a magic and fails is refused, with the hint. */
START_TEST(auto_refuses_with_hint) {
  const char *p = bm_test_path("trunc.safetensors");
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
  {
    /* cut short: the header is whole, the data is not */
    unsigned char h[8 + 64];
    FILE *f = fopen(p, "rb");
    size_t n = fread(h, 1, sizeof(h), f);
    fclose(f);
    write_file(p, h, n - 4, NULL, 0);
  }
  refused("trunc", p, BM_FORMAT_AUTO, "the raw format loads the bytes as they are");
}
END_TEST

Suite *format_suite(void) {
  Suite *s = suite_create("format");
  TCase *tc = tcase_create("malformed");
  tcase_add_checked_fixture(tc, NULL, fmt_teardown);
  tcase_add_test(tc, malformed_npy);
  tcase_add_test(tc, malformed_safetensors);
  tcase_add_test(tc, truncated_buffers);
  tcase_add_test(tc, safetensors_vectors);
  tcase_add_test(tc, safetensors_names_and_metadata);
  tcase_add_test(tc, layout_blob);
  tcase_add_test(tc, auto_refuses_with_hint);
  suite_add_tcase(s, tc);
  tc = tcase_create("layouts");
  tcase_add_checked_fixture(tc, NULL, fmt_teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, npy_from_numpy);
  tcase_add_test(tc, safetensors_written_here);
  tcase_add_test(tc, publish_from_memory);
  tcase_add_test(tc, set_format_from_section);
  suite_add_tcase(s, tc);
  tc = tcase_create("page_cache");
  tcase_add_checked_fixture(tc, NULL, fmt_teardown);
  tcase_add_test(tc, one_copy_in_ram);
  suite_add_tcase(s, tc);
  return s;
}
