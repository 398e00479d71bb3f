"""Python as complete as the tool (issue 25, docs/design.md section 6):
- bulkmap.load takes the tool's `load` options (format=, replace=, mode=, group=,
  large_pages=, place=) and its errors carry the tool's wording and figures: each case is
  run through the tool and through Python and the messages compared (the same words, from
  the library: bm_errmsg); a full /dev/shm and a missing hugetlbfs mount in a private mount
  namespace (a 1 MiB tmpfs on /dev/shm), so the figures are the same in both;
- ds.tensors() / ds.tensor(): torch tensors with the file's dtypes (bfloat16 included),
  checked against tensors torch and numpy build from the same values, zero copy (the
  bytes lie in a private mapping of /dev/shm/NAME, /proc/self/maps says so), writable with
  no warning, writes private (the section verifies, another call sees the file's values),
  valid after close(); dtypes torch lacks as same-width signed integers named in
  ds.dtypes; a DataLoader whose workers write to their tensors; on hugetlbfs with no free
  pool page, a clear error at the call (root: a pool of its own size, in a namespace);
- ds.metadata: the header's __metadata__, checked against json."""
import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import bulkmap
from conftest import run_tool

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors, metadata=None):
    """An 8-byte little-endian header length N, N bytes of JSON, the data (written here,
    from the format's description). tensors: [(name, dtype, shape, bytes)], in order."""
    header, off, blobs = {}, 0, []
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return 8 + len(h)


CODE = re.compile(r" \((E[A-Z0-9]+)(; OS error [^)]*\)?[^)]*)?\)$")


def tool_message(stderr):
    """The tool's message: 'bulkmap: CONTEXT: MESSAGE' less the prefix (and the error's
    code and OS error at the end, which Python carries as .code and .os_error)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("bulkmap: ")]
    assert lines, stderr
    return CODE.sub("", lines[0][len("bulkmap: "):])


def py_message(err, name):
    """Python's message (the library's words, bm_errmsg, as the tool prints them) less a
    code at its end."""
    return CODE.sub("", str(err))


def tool_load_error(tool, path, name, *args):
    p = run_tool(tool, "load", str(path), "--name", name, "--no-progress", *args, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    return tool_message(p.stderr)


def py_load_error(path, name, **kw):
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.load(str(path), name, **kw)
    return e.value


# ---------------------------------------------------------------------------------------
# load: the tool's options


def _st_file(tmp_path, name="x.safetensors", metadata=None):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_safetensors(tmp_path / name, [("w", "F32", w.shape, w.tobytes())], metadata)
    return tmp_path / name, w


def test_load_format_option(tmp_path, names, tool):
    path, w = _st_file(tmp_path)
    for fmt, want in [(None, "safetensors"), ("auto", "safetensors"),
                      ("safetensors", "safetensors"), ("raw", "raw")]:
        n = names("fmt")
        r = bulkmap.load(path, n, **({} if fmt is None else {"format": fmt}))
        assert r["format"] == want
        assert bulkmap.stat(n)["format"] == json.loads(run_tool(tool, "stat", n, "--json").stdout)["format"]
        bulkmap.rm(n)
    # npy asked of a safetensors file: refused with the library's reason, as the tool says it.
    n = names("fmtnpy")
    e = py_load_error(path, n, format="npy")
    assert e.code == "EFORMAT" and e.context == str(path)
    assert "nothing published" in str(e) and "the raw format loads the bytes" in str(e)
    assert py_message(e, n) == tool_load_error(tool, path, n, "--format", "npy")
    assert not os.path.exists("/dev/shm/" + n)
    with pytest.raises(ValueError, match="expected"):
        bulkmap.load(path, n, format="pickle")


def test_load_broken_header_auto_parity(tmp_path, names, tool):
    """A file that starts as safetensors and fails its checks: whatever the library decides
    for --format auto (refuse with the reason; docs/design.md section 6), Python decides
    the same, in the same words."""
    path, _ = _st_file(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:-5])  # the data ends before the header says
    n1, n2 = names("bad"), names("bad")
    p = run_tool(tool, "load", str(bad), "--name", n1, "--no-progress", "--json", check=False)
    try:
        r = bulkmap.load(bad, n2)
    except bulkmap.Error as e:
        assert p.returncode == 1, "Python refused what the tool published: %s" % e
        assert e.code == "EFORMAT"
        assert py_message(e, n2) == tool_message(p.stderr)
    else:
        assert p.returncode == 0 and json.loads(p.stdout)["format"] == r["format"]


def test_load_replace_mode_group(tmp_path, names, tool):
    path, w = _st_file(tmp_path)
    n = names("opts")
    bulkmap.load(path, n, mode=0o640)
    st = os.stat("/dev/shm/" + n)
    assert st.st_mode & 0o777 == 0o640
    # EEXIST: the tool's words.
    e = py_load_error(path, n)
    assert e.code == "EEXIST"
    assert py_message(e, n) == tool_load_error(tool, path, n)
    # replace=True: the new bytes under the name.
    w2 = w + 100
    write_safetensors(tmp_path / "y.safetensors", [("w", "F32", w2.shape, w2.tobytes())])
    bulkmap.load(tmp_path / "y.safetensors", n, replace=True)
    with bulkmap.open(n) as ds:
        a = ds.arrays()["w"]
        assert np.array_equal(a, w2)
        del a
    # group=: a group that exists (this process's own) and one that does not.
    import grp
    g = grp.getgrgid(os.getgid()).gr_name
    n2 = names("grp")
    bulkmap.load(path, n2, group=g)
    assert os.stat("/dev/shm/" + n2).st_gid == os.getgid()
    n3 = names("nogrp")
    e = py_load_error(path, n3, group="no-such-group-bm")
    assert py_message(e, n3) == \
        tool_load_error(tool, path, n3, "--group", "no-such-group-bm")


def test_load_missing_file_words(tmp_path, names, tool):
    n = names("nofile")
    path = tmp_path / "absent.bin"
    e = py_load_error(path, n)
    assert e.code == "ENOENT" and e.context == str(path)
    assert py_message(e, n) == tool_load_error(tool, path, n)


def test_load_place(tmp_path, names):
    path, _ = _st_file(tmp_path)
    n = names("place")
    r = bulkmap.load(path, n, place="/dev/shm")
    assert r["large_pages"]["requested"] == "off" and not r["large_pages"]["obtained"]
    assert os.path.exists("/dev/shm/" + n)
    with pytest.raises(ValueError, match="hugetlbfs"):
        bulkmap.load(path, names("place"), place="/dev/shm", large_pages="on")
    with pytest.raises(FileNotFoundError):
        bulkmap.load(path, names("place"), place=str(tmp_path / "nowhere"))
    # A directory that is no hugetlbfs mount: the library's reason.
    n2 = names("place")
    e = py_load_error(path, n2, place=str(tmp_path))
    assert e.code == "ENOLARGE" and "no hugetlbfs mount" in str(e)
    assert not os.path.exists("/dev/shm/" + n2)


# The same failures in a private mount namespace: /dev/shm a 1 MiB tmpfs holding 256 KiB
# (so "needs 2.0 MiB, /dev/shm has 768.0 KiB free of 1.0 MiB"), no hugetlbfs mount.
NS_ROOM = r"""
mount -t tmpfs -o size=1m,mode=1777 tmpfs /dev/shm || exit 77
for m in $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts); do umount "$m" || exit 77; done
head -c 262144 /dev/zero > /dev/shm/filler || exit 77
exec "$0" "$@"
"""


def child_room(tool, tmp):
    big = os.path.join(tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(2 << 20))
    small, _ = _st_file(__import__("pathlib").Path(tmp))
    out = {}
    for key, path, targs, kw in [
            ("room_off", big, ["--large-pages", "off"], {"large_pages": "off"}),
            ("room_auto", big, [], {}),
            ("large_on", small, ["--large-pages", "on"], {"large_pages": "on"})]:
        name = "py-parity-%s-%d" % (key.replace("_", "-"), os.getpid())
        p = subprocess.run([tool, "load", path, "--name", name, "--no-progress", *targs],
                           capture_output=True, text=True)
        try:
            bulkmap.load(path, name, **kw)
            py = None
        except bulkmap.Error as e:
            py = {"str": str(e), "code": e.code, "norm": py_message(e, name)}
        out[key] = {"rc": p.returncode, "tool": p.stderr, "py": py,
                    "left": os.path.exists("/dev/shm/" + name)}
    print(json.dumps(out))


def _namespace(script, what, *args, timeout=300):
    try:
        p = subprocess.run(["unshare", "-m", "sh", "-c", script, sys.executable,
                            os.path.abspath(__file__), what, *args],
                           capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                               [HERE, os.environ.get("PYTHONPATH", "")])))
    except FileNotFoundError:
        pytest.skip("unshare(1) is not installed (util-linux)")
    if p.returncode == 77 or "unshare failed" in p.stderr:
        pytest.skip("no private mount namespace here (needs root): " + p.stderr.strip())
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_full_dev_shm_and_no_mount_words_as_the_tool(tool, tmp_path):
    out = _namespace(NS_ROOM, "room", tool, str(tmp_path))
    for key in ("room_off", "room_auto"):
        r = out[key]
        assert r["rc"] == 1 and r["py"] is not None and not r["left"], r
        assert r["py"]["code"] == "ENOROOM"
        # The library's figures and remedy (bm_preflight_describe), word for word.
        assert r["py"]["norm"] == tool_message(r["tool"]), r
        # The figures: a 2 MiB file (auto: sized for large pages, as the library counts it)
        # into a 1 MiB /dev/shm of which the filler takes 256 KiB and the dataset's metadata
        # (bulkmap#NAME, made first: it is the claim) a few KiB more.
        assert re.search(r"not loaded: needs (2\.0|4\.0) MiB, /dev/shm has 7[0-6]\d\.0 KiB free of "
                         r"1\.0 MiB", r["py"]["str"]), r
        if key == "room_off":
            assert "needs 2.0 MiB" in r["py"]["str"], r
        assert "mount a larger /dev/shm" in r["py"]["str"] and "bulkmap ls" in r["py"]["str"]
    r = out["large_on"]
    assert r["rc"] == 1 and r["py"]["code"] == "ENOLARGE" and not r["left"], r
    assert r["py"]["norm"] == tool_message(r["tool"]), r
    assert "large pages required but not had: no hugetlbfs mount" in r["py"]["str"]
    assert "bulkmap setup --large-pages SIZE mounts hugetlbfs" in r["py"]["str"]


# ---------------------------------------------------------------------------------------
# tensors()

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (Debian python3-torch)")

# (library dtype, numpy dtype of the values, torch dtype or None: torch builds it from
# the same values; the bytes otherwise, as the same-width signed integers, or as torch's
# own type where a newer torch has one: uint16, float8_e4m3fn ...)
DTYPES = [
    ("F64", np.float64, "float64"), ("F32", np.float32, "float32"),
    ("F16", np.float16, "float16"), ("BF16", None, "bfloat16"),
    ("I64", np.int64, "int64"), ("I32", np.int32, "int32"),
    ("I16", np.int16, "int16"), ("I8", np.int8, "int8"),
    ("U8", np.uint8, "uint8"), ("BOOL", np.bool_, "bool"),
    ("U16", np.uint16, None), ("U32", np.uint32, None), ("U64", np.uint64, None),
    ("F8_E4M3", np.uint8, None), ("F8_E5M2", np.uint8, None),
]
NEWER = {"U16": "uint16", "U32": "uint32", "U64": "uint64", "F8_E4M3": "float8_e4m3fn",
         "F8_E5M2": "float8_e5m2"}


def _lacking(dtype, width):
    """What a dtype torch 1.13 lacks comes as: torch's own where this torch has it, else
    the signed integers of its width."""
    own = getattr(torch, NEWER[dtype], None)
    return own if isinstance(own, torch.dtype) else \
        {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[width]


def _values(dtype, np_dtype, shape, seed):
    """(bytes for the file, the tensor torch makes of the same values, or None)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == "BF16":
        t = torch.from_numpy(rng.standard_normal(n).astype(np.float32)).to(torch.bfloat16)
        t = t.reshape(shape)
        # bfloat16's bytes, from torch: the high half of each float32.
        raw = t.to(torch.float32).numpy().view(np.uint32) >> 16
        return raw.astype("<u2").tobytes(), t
    if np_dtype is np.bool_:
        a = rng.integers(0, 2, n).astype(np.bool_).reshape(shape)
    elif np.issubdtype(np_dtype, np.integer):
        info = np.iinfo(np_dtype)
        a = rng.integers(info.min, info.max, n, dtype=np_dtype, endpoint=True).reshape(shape)
    else:
        a = rng.standard_normal(n).astype(np_dtype).reshape(shape)
    return a.tobytes(), a


def _in_private_mapping_of(t, name):
    """The tensor's bytes lie in a private writable mapping of /dev/shm/NAME (/proc/self/maps):
    zero copy, and copy-on-write."""
    addr = t.data_ptr()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            # NAME, or the keep link bulkmap maps a dataset's bytes through (docs/datasets.md)
            if len(parts) >= 6 and (parts[5].endswith("/" + name) or "/bulkmap#%s#" % name in parts[5]):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo <= addr and addr + t.numel() * t.element_size() <= hi:
                    return parts[1]
    return None


@needs_torch
def test_tensors_dtypes_zero_copy_private(tmp_path, names):
    shape = (3, 5)
    tensors, want = [], {}
    for i, (dtype, np_dtype, _) in enumerate(DTYPES):
        raw, ref = _values(dtype, np_dtype, shape, i)
        tensors.append(("t." + dtype, dtype, shape, raw))
        want[dtype] = (raw, ref)
    tensors.append(("empty", "F32", (0, 4), b""))
    meta = {"format": "pt", "note": "é ü"}
    path = tmp_path / "all.safetensors"
    write_safetensors(path, tensors, meta)
    n = names("dtypes")
    bulkmap.load(path, n, large_pages="off")
    header = json.loads(path.read_bytes()[8:8 + struct.unpack("<Q", path.read_bytes()[:8])[0]])
    with bulkmap.open(n) as ds:
        assert ds.metadata == header["__metadata__"] == meta
        assert ds.dtypes == {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "non-writable buffer" warning
            ts = ds.tensors()
        assert list(ts) == [t[0] for t in tensors]  # payload order
        for dtype, np_dtype, torch_dtype in DTYPES:
            t = ts["t." + dtype]
            raw, ref = want[dtype]
            assert tuple(t.shape) == shape
            if torch_dtype is not None:
                assert t.dtype == getattr(torch, torch_dtype), dtype
                expect = ref if isinstance(ref, torch.Tensor) else torch.from_numpy(ref)
                assert torch.equal(t, expect), dtype
            else:
                width = np.dtype(np_dtype).itemsize
                assert t.dtype == _lacking(dtype, width), (dtype, t.dtype)
                # The same bytes: the file's values, read back through numpy.
                signed = t.view({1: torch.int8, 2: torch.int16, 4: torch.int32,
                                 8: torch.int64}[width])
                assert signed.numpy().tobytes() == raw, dtype
                if dtype.startswith("U"):
                    assert np.array_equal(signed.numpy().view(np_dtype), ref)
            assert _in_private_mapping_of(t, n) == "rw-p", dtype
        assert ts["empty"].shape == (0, 4) and ts["empty"].dtype == torch.float32
        # Writes stay in the tensors: the section, and a new call, see the file's values.
        f32 = ts["t.F32"]
        f32 += 1000
        f32_ref = torch.from_numpy(want["F32"][1])
        assert torch.equal(f32, f32_ref + 1000)
        assert np.array_equal(ds.arrays()["t.F32"], want["F32"][1])
        assert torch.equal(ds.tensors()["t.F32"], f32_ref)
        ds.verify()
    # Valid after close (their own mapping): no BufferError at the with's end, no fault now.
    assert torch.equal(f32, f32_ref + 1000)
    assert bulkmap.open(n, verify=True).closed is False


def test_metadata_none_and_other_formats(tmp_path, names):
    path, _ = _st_file(tmp_path)
    n = names("nometa")
    bulkmap.load(path, n)
    with bulkmap.open(n) as ds:
        assert ds.metadata == {}
    npy = tmp_path / "a.npy"
    np.save(npy, np.arange(4))
    n2 = names("npymeta")
    bulkmap.load(npy, n2)
    with bulkmap.open(n2) as ds:
        assert ds.metadata == {} and ds.format == "npy"


@needs_torch
@pytest.mark.parametrize("arr", [
    np.arange(3 * 5 * 7, dtype=np.float32).reshape(3, 5, 7),
    np.asfortranarray(np.arange(12, dtype="<i8").reshape(3, 4)),
    np.array([True, False, True]),
    np.array(3.5, dtype=np.float64),
    np.zeros((0, 4), dtype=np.int16),
    (np.arange(6) + 1j).astype(np.complex64),
    np.arange(6, dtype=np.uint8),
], ids=["f4-3d", "i8-fortran", "bool", "scalar", "empty", "c8", "u1"])
def test_npy_tensor(tmp_path, names, arr):
    path = tmp_path / "a.npy"
    np.save(path, arr)
    n = names("npyt")
    bulkmap.load(path, n)
    want = torch.from_numpy(np.load(path))
    with bulkmap.open(n) as ds:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t = ds.tensor()
        assert t.dtype == want.dtype and t.shape == want.shape and torch.equal(t, want)
        assert t.stride() == want.stride()  # Fortran order kept
        with pytest.raises(ValueError, match="tensor\\(\\)"):
            ds.tensors()


@needs_torch
def test_npy_big_endian_and_safetensors_tensor_refused(tmp_path, names):
    path = tmp_path / "be.npy"
    np.save(path, np.arange(4, dtype=">i4"))
    n = names("be")
    bulkmap.load(path, n)
    with bulkmap.open(n) as ds:
        with pytest.raises(ValueError, match="big-endian"):
            ds.tensor()
    st, _ = _st_file(tmp_path)
    n2 = names("stt")
    bulkmap.load(st, n2)
    with bulkmap.open(n2) as ds:
        with pytest.raises(ValueError, match="tensors\\(\\)"):
            ds.tensor()


@needs_torch
def test_tensors_of_copy_on_write_dataset(tmp_path, names):
    path, w = _st_file(tmp_path)
    n = names("cowt")
    bulkmap.load(path, n)
    with bulkmap.open(n, copy_on_write=True) as ds:
        t = ds.tensors()["w"]
        t[0, 0] = -1
        assert float(t[0, 0]) == -1
    with bulkmap.open(n, verify=True) as ds:
        assert np.array_equal(ds.arrays()["w"], w)


@needs_torch
def test_tensor_fills_a_created_dataset(names):
    """Before publish, tensor() is over the writer's own view: it fills the dataset, and
    publish() refuses while it lives (a later write would not match the checksum)."""
    n = names("fill")
    ds = bulkmap.create(n, dtype="float32", shape=(2, 3))
    t = ds.tensor()
    t.copy_(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    with pytest.raises(BufferError):
        ds.publish()
    del t
    ds.publish()
    ds.close()
    with bulkmap.open(n, verify=True) as ds:
        assert np.array_equal(ds.array(), np.arange(6, dtype=np.float32).reshape(2, 3))


class _Writers:
    """A torch Dataset of 4 items over a bulkmap dataset (pickled by name into spawned
    workers, inherited by forked ones): each worker writes its tensors and reports."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import warnings as w
        with w.catch_warnings():
            w.simplefilter("error")
            t = self.ds.tensors()["w"]
        before = float(t.sum())
        t[i % 3] = -(i + 1)  # a write, private to this worker
        return i, before, float(t.sum()), float(t[i % 3, 0])


@needs_torch
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_write_to_their_tensors(tmp_path, names, context):
    path, w = _st_file(tmp_path)
    n = names("dl")
    bulkmap.load(path, n)
    ds = bulkmap.open(n)
    loader = torch.utils.data.DataLoader(_Writers(ds), batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    got = sorted(loader, key=lambda r: r[0])
    total = float(w.sum())
    for i, before, after, mine in got:
        assert before == total  # the file's values, whatever the other workers wrote
        assert mine == -(i + 1)
        row = i % 3
        assert after == total - float(w[row].sum()) + 4 * -(i + 1)
    # Nothing reached the section or this process.
    ds.verify()
    assert torch.equal(ds.tensors()["w"], torch.from_numpy(w))
    ds.close()


# On hugetlbfs: a private mapping reserves free pool pages when it is made. The test gives
# the pool exactly 2 free pages (under the lock every huge-page test takes), mounts its own
# hugetlbfs in a private namespace, loads there (1 page), maps tensors (the 2nd page),
# loads again (no page left) and asks for tensors: a clear error at the call.
NS_HUGE = r"""
mkdir -p "$BM_HUGE_DIR" && mount -t hugetlbfs none "$BM_HUGE_DIR" || exit 77
exec "$0" "$@"
"""


def child_huge(tmp):
    from pathlib import Path
    d = os.environ["BM_HUGE_DIR"]
    path, w = _st_file(Path(tmp))
    a, b = "py-parity-huge-a-%d" % os.getpid(), "py-parity-huge-b-%d" % os.getpid()
    out = {}
    r = bulkmap.load(path, a, place=d)
    out["a_large"] = r["large_pages"]["obtained"]
    ds = bulkmap.open(a)
    ts = ds.tensors()
    ts["w"][0, 0] = 99
    out["tensors_ok"] = bool(torch.equal(ts["w"][1:], torch.from_numpy(w)[1:])) and \
        float(ts["w"][0, 0]) == 99
    del ts
    import gc
    gc.collect()
    bulkmap.load(path, b, place=d)
    out["free_after"] = _huge_free()
    try:
        ds.tensors()
        out["error"] = None
    except bulkmap.Error as e:
        out["error"] = str(e)
        out["code"] = e.code
    out["arrays_ok"] = bool(np.array_equal(ds.arrays()["w"], w))
    ds.close()
    bulkmap.rm(a)
    bulkmap.rm(b)
    print(json.dumps(out))


def _huge_free():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return None


@needs_torch
def test_tensors_on_hugetlbfs_without_free_pages(tmp_path):
    pool = "/proc/sys/vm/nr_hugepages"
    if os.geteuid() != 0 or not os.access(pool, os.W_OK) or _huge_free() is None:
        pytest.skip("needs root and a huge page pool to change")
    with open("/tmp/bulkmap-hugepages.lock", "a+") as lock:
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip("the huge page lock stayed taken for 2 minutes")
                time.sleep(0.2)
        with open(pool) as f:
            saved = int(f.read())
        try:
            with open(pool, "w") as f:
                f.write(str(saved - _huge_free() + 2))
            if _huge_free() != 2:
                pytest.skip("the kernel would not give the pool 2 free pages")
            os.environ["BM_HUGE_DIR"] = str(tmp_path / "huge")
            try:
                out = _namespace(NS_HUGE, "huge", str(tmp_path))
            finally:
                del os.environ["BM_HUGE_DIR"]
        finally:
            with open(pool, "w") as f:
                f.write(str(saved))
    print(out["error"])
    assert out["a_large"] and out["tensors_ok"] and out["arrays_ok"], out
    assert out["free_after"] == 0, out
    assert out["error"] is not None, out
    assert "tensors(): the dataset is on large pages" in out["error"], out
    assert "pool empty: 0 of 1 pages free" in out["error"], out
    assert "bulkmap setup --large-pages SIZE grows the pool" in out["error"], out


if __name__ == "__main__":
    if sys.argv[1] == "room":
        child_room(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "huge":
        child_huge(sys.argv[2])
