"""bulkmap's npy header check against the reference itself: numpy 1.24 (Debian 12),
numpy.load(mmap_mode='r') with max_header_size raised to bulkmap's 100 MB cap.

Files written by numpy.save for a wide set of dtypes, shapes and orders, and headers written
by hand for each rule (tests/vectors/npy_headers.txt), are judged by both; they must agree
on acceptance, and on an accepted file on the item size, the shape and the data offset.
The cases where bulkmap refuses on purpose what numpy takes (docs/formats.md: duplicate
keys, descr forms numpy never writes) are listed in the vectors file as `divergent`.

Run: BULKMAP_LIB=build/fmt/libbulkmap.so /usr/bin/python3 -m pytest tests/python/test_format_oracle.py
(or as a script, which prints the counts)."""
import ctypes
import glob
import os
import struct
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
VECTORS = os.path.join(TOP, "tests", "vectors", "npy_headers.txt")
MAXDIMS = 32


class Layout(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("byteorder", ctypes.c_char), ("order", ctypes.c_char),
                ("item_size", ctypes.c_uint32), ("ndim", ctypes.c_uint32),
                ("shape", ctypes.c_uint64 * MAXDIMS), ("data_offset", ctypes.c_uint64),
                ("data_length", ctypes.c_uint64), ("flags", ctypes.c_uint32),
                ("descr", ctypes.c_char * 32)]


class Info(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("has_layout", ctypes.c_int), ("layout", Layout),
                ("header_bytes", ctypes.c_uint64), ("n_tensors", ctypes.c_uint32),
                ("n_metadata", ctypes.c_uint32), ("payload_size", ctypes.c_uint64)]


def library():
    cands = [os.environ.get("BULKMAP_LIB", "")] + sorted(glob.glob(os.path.join(TOP, "build", "*", "libbulkmap.so")))
    for c in cands:
        if c and os.path.exists(c):
            try:
                lib = ctypes.CDLL(c)
            except OSError:  # a stale build of another tree
                continue
            lib.bm_format_check.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_int,
                                            ctypes.POINTER(Info), ctypes.c_char_p, ctypes.c_size_t]
            return lib
    raise RuntimeError("libbulkmap.so not found (set BULKMAP_LIB)")


def bulkmap_judge(lib, data):
    fi = Info()
    why = ctypes.create_string_buffer(256)
    err = lib.bm_format_check(data, len(data), len(data), 2, ctypes.byref(fi), why, 256)
    if err != 0:
        return None, why.value.decode("utf-8", "replace")
    lay = fi.layout
    return (lay.item_size, tuple(lay.shape[i] for i in range(lay.ndim)), lay.data_offset), ""


def numpy_judge(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.load(path, mmap_mode="r", max_header_size=100_000_000)
        off = a.offset if hasattr(a, "offset") else None
        return (a.dtype.itemsize, tuple(a.shape), off), ""
    except Exception as e:  # any refusal
        return None, "%s: %s" % (type(e).__name__, str(e)[:80])


def saved_cases():
    """(label, bytes) of files numpy.save writes."""
    dtypes = ["<f2", "<f4", ">f4", "<f8", ">f8", "<f16", "|b1", "|i1", "|u1", "<i2", ">i2", "<u2", "<i4", "<u4",
              "<i8", ">i8", "<u8", "<c8", "<c16", ">c16", "<c32", "|S1", "|S7", "<U1", "<U5", ">U3", "|V3", "|V16",
              "<M8[ns]", "<M8[D]", ">M8[s]", "<M8", "<m8[us]", "<m8[10ms]",
              [("a", "<i4"), ("b", "<f8")],
              [("x", "|u1"), ("y", ">i2", (2, 3))],
              [("outer", [("in1", "<f4"), ("in2", "|S3")]), ("n", "<u8")],
              {"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 8], "itemsize": 24},
              {"names": ["p", "q"], "formats": ["<i2", "<i2"], "titles": ["title p", "title q"]},
              [("é", "<i4"), ("名前", "<f8")],
              [("a", "<i4", (0,))],
              {"names": ["a" * 40 + str(i) for i in range(300)], "formats": ["|u1"] * 300}]
    shapes = [(), (0,), (1,), (5,), (2, 3), (3, 0, 2), (1, 1, 1, 1), (4, 5)]
    out = []
    for dt in dtypes:
        t = np.dtype(dt)
        for sh in shapes:
            for order in ("C", "F"):
                a = np.zeros(sh, dtype=t, order=order)
                if order == "F" and a.ndim < 2:
                    continue
                import io
                b = io.BytesIO()
                np.save(b, a)
                out.append(("save %s %s %s" % (t.str if t.names is None else "record", sh, order), b.getvalue()))
    return out


def header_file(text, version=(1, 0), data=64):
    h = text.encode("latin1" if version < (3, 0) else "utf8")
    pre = b"\x93NUMPY" + bytes(version)
    lenb = 2 if version == (1, 0) else 4
    total = len(pre) + lenb + len(h) + 1
    pad = (64 - total % 64) % 64
    h = h + b" " * pad + b"\n"
    return pre + struct.pack("<H" if lenb == 2 else "<I", len(h)) + h + b"\0" * data


def vector_cases():
    """(label, bytes, divergent) from tests/vectors/npy_headers.txt: `[divergent] VERSION DATA HEADER`."""
    out = []
    with open(VECTORS, encoding="utf8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            div = line.startswith("divergent ")
            if div:
                line = line[len("divergent "):]
            ver, data, text = line.split(" ", 2)
            major = int(ver)
            text = text.encode("latin1" if major < 3 else "utf8").decode("unicode_escape") if "\\" in text and major < 3 else text
            out.append((text, header_file(text, (major, 0), int(data)), div))
    return out


def run():
    lib = library()
    agree = disagree = acc = ref = 0
    bad = []
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.npy")
        cases = [(l, b, False) for l, b in saved_cases()] + vector_cases()
        for label, data, div in cases:
            with open(p, "wb") as f:
                f.write(data)
            ref_v, ref_why = numpy_judge(p)
            bm_v, bm_why = bulkmap_judge(lib, data)
            acc += ref_v is not None
            ref += ref_v is None
            same = (ref_v is None) == (bm_v is None) and (ref_v is None or ref_v == bm_v)
            if div:
                same = not same
            if same:
                agree += 1
            else:
                disagree += 1
                bad.append((label[:100], ref_v, ref_why, bm_v, bm_why))
    return agree, disagree, acc, ref, bad


def test_npy_agrees_with_numpy():
    agree, disagree, acc, ref, bad = run()
    assert not bad, "\n".join(repr(b) for b in bad[:20])


if __name__ == "__main__":
    agree, disagree, acc, ref, bad = run()
    for b in bad:
        print("DISAGREE", b)
    print("cases: %d (numpy accepts %d, refuses %d); bulkmap agrees on %d, disagrees on %d" %
          (agree + disagree, acc, ref, agree, disagree))
    sys.exit(1 if bad else 0)
