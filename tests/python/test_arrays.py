"""Typed datasets from Python (docs/design.md section 6): ds.array() of an npy dataset (files made by
numpy.save), ds.arrays() of a safetensors file written here, zero copy, pickling into another
process, publish() from memory, create() + publish(), the context manager on an exception,
copy-on-write isolation, and a PyTorch DataLoader of 4 workers over one copy in RAM."""
import gc
import json
import os
import pickle
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

import bulkmap
from conftest import run_tool, xxhsum


def in_mapping(a, ds):
    """The array's bytes lie inside the dataset's mapping (a view, not a copy)."""
    addr = a.__array_interface__["data"][0]
    return ds.address <= addr and addr + a.nbytes <= ds.address + ds.size


def tool_stat(tool, name):
    return json.loads(run_tool(tool, "stat", name, "--json").stdout)


def write_safetensors(path, tensors, metadata=None):
    """The format: an 8-byte little-endian header length N, N bytes of JSON, the data.
    tensors: [(name, dtype, shape, bytes)], laid out in this order."""
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


# ---------------------------------------------------------------------------------------
# npy

@pytest.mark.parametrize("arr", [
    np.arange(3 * 5 * 7, dtype=np.float32).reshape(3, 5, 7),
    np.asfortranarray(np.arange(12, dtype="<i8").reshape(3, 4)),
    np.arange(10, dtype=">i4"),
    np.array([True, False, True]),
    np.array(3.5, dtype=np.float64),  # 0-d
    np.zeros((0, 4), dtype=np.uint16),
    (np.arange(6) + 1j).astype(np.complex64),
], ids=["f4-3d", "i8-fortran", "i4-big-endian", "bool", "scalar", "empty", "c8"])
def test_npy_array_is_a_view(tmp_path, names, tool, arr):
    p = tmp_path / "a.npy"
    np.save(p, arr)
    name = names("npy")
    r = bulkmap.load(p, name, large_pages="off")
    assert r["format"] == "npy" and r["layout"]["shape"] == list(arr.shape)
    with bulkmap.open(name) as ds:
        a = ds.array()
        assert a.dtype == arr.dtype and a.shape == arr.shape
        assert np.array_equal(a, arr)
        fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous  # as numpy.save says
        assert r["layout"]["order"] == ("F" if fortran else "C")
        assert a.flags.f_contiguous if fortran else a.flags.c_contiguous
        assert not a.flags.writeable
        if a.size:
            assert in_mapping(a, ds)
            with pytest.raises(ValueError):
                a.flat[0] = a.flat[0]
        assert ds.format == "npy" and ds.dtype == r["layout"]["dtype"]
        info = ds.info
        assert info["layout"] == r["layout"]
        assert info == tool_stat(tool, name)
        # numpy reads the section as it is, at offset 0
        assert np.array_equal(np.load("/dev/shm/" + name, mmap_mode="r"), arr)
        del a


def test_array_keeps_the_dataset_open(tmp_path, names):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(1 << 20, dtype=np.float32))
    name = names("keep")
    bulkmap.load(p, name, large_pages="off")
    ds = bulkmap.open(name)
    a = ds.array()[10:20]  # a view of the view: it holds the export as well
    with pytest.raises(BufferError):
        ds.close()
    del ds
    gc.collect()
    assert a[0] == 10.0  # the mapping lives while the array does
    base = a.base
    while getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, bulkmap.Dataset)
    del a, base
    gc.collect()


def test_raw_dataset_array_needs_a_dtype(pattern_file, names, tool):
    p, data = pattern_file(1 << 16)
    name = names("raw")
    r = bulkmap.load(p, name, large_pages="off")
    assert r["format"] == "raw" and r["layout"] is None
    with bulkmap.open(name) as ds:
        with pytest.raises(ValueError, match="holds no array"):
            ds.array()
        with pytest.raises(ValueError, match="not safetensors"):
            ds.arrays()
        a = ds.array("uint32")
        assert a.tobytes() == data and in_mapping(a, ds)
        b = ds.array(np.uint8, shape=(16, 16), offset=4096)
        assert b.tobytes() == data[4096:4096 + 256]
        with pytest.raises(ValueError):
            ds.array("f4", shape=(1 << 20,))  # more than the payload
        assert ds.dtype is None and ds.dtypes is None
        del a, b
    assert bulkmap.stat(name) == tool_stat(tool, name)


# ---------------------------------------------------------------------------------------
# safetensors

def test_safetensors_arrays(tmp_path, names, tool):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 8), dtype=np.float32)
    b = np.arange(8, dtype=np.int64)
    bf16 = rng.integers(0, 1 << 16, size=(3, 5), dtype=np.uint16)  # BF16 bit patterns
    f8 = rng.integers(0, 256, size=7, dtype=np.uint8)
    flag = np.array([True, False])
    p = tmp_path / "model.safetensors"
    hdr = write_safetensors(p, [("w", "F32", w.shape, w.tobytes()), ("b", "I64", b.shape, b.tobytes()),
                                ("h.bf16", "BF16", bf16.shape, bf16.tobytes()),
                                ("q", "F8_E4M3", f8.shape, f8.tobytes()),
                                ("flag", "BOOL", flag.shape, flag.tobytes())],
                            metadata={"format": "pt"})
    name = names("st")
    r = bulkmap.load(p, name, large_pages="off")
    assert r["format"] == "safetensors" and r["layout"] is None
    with bulkmap.open(name) as ds:
        arrs = ds.arrays()
        assert list(arrs) == ["w", "b", "h.bf16", "q", "flag"]  # payload order
        assert np.array_equal(arrs["w"], w) and np.array_equal(arrs["b"], b)
        assert arrs["h.bf16"].dtype == np.uint16 and np.array_equal(arrs["h.bf16"], bf16)
        assert arrs["q"].dtype == np.uint8 and np.array_equal(arrs["q"], f8)
        assert arrs["flag"].dtype == np.bool_ and np.array_equal(arrs["flag"], flag)
        assert ds.dtypes == {"w": "F32", "b": "I64", "h.bf16": "BF16", "q": "F8_E4M3", "flag": "BOOL"}
        for a in arrs.values():
            assert not a.flags.writeable and in_mapping(a, ds)
        assert arrs["w"].__array_interface__["data"][0] == ds.address + hdr
        with pytest.raises(ValueError, match="arrays"):
            ds.array()
        info = ds.info
        assert [t["name"] for t in info["tensors"]] == list(arrs)
        assert info["tensors"][0] == {"name": "w", "dtype": "F32", "shape": [4, 8], "offset": hdr,
                                      "length": w.nbytes}
        with pytest.raises(BufferError):
            ds.close()
        del arrs, a
    s = bulkmap.stat(name)
    assert s == tool_stat(tool, name)
    listed = [x for x in bulkmap.ls()["sections"] if x["name"] == name]
    theirs = [x for x in json.loads(run_tool(tool, "ls", "--json").stdout)["sections"]
              if x["name"] == name]
    assert listed == theirs and listed[0]["format"] == "safetensors"


# ---------------------------------------------------------------------------------------
# pickling

CHILD_UNPICKLE = r"""
import pickle, sys
import numpy as np
ds = pickle.loads(sys.stdin.buffer.read())
a = ds.array()
if ds.copy_on_write:
    a[0] = -1.0  # private: the parent's check below sees the original
print(ds.name, ds.copy_on_write, float(a[1:].sum()), a.flags.writeable, a[0])
"""


@pytest.mark.parametrize("cow", [False, True])
def test_pickle_reopens_in_another_process(names, cow):
    arr = np.arange(1000, dtype=np.float64)
    name = names("pkl")
    bulkmap.publish(name, arr, large_pages="off")
    ds = bulkmap.open(name, copy_on_write=cow)
    blob = pickle.dumps(ds)
    assert len(blob) < 200 and name.encode() in blob  # the name and options, no bytes
    out = subprocess.run([sys.executable, "-c", CHILD_UNPICKLE], input=blob, capture_output=True,
                         check=True, timeout=60).stdout.decode().split()
    assert out == [name, str(cow), repr(float(arr[1:].sum())), str(cow), "-1.0" if cow else "0.0"]
    assert bulkmap.open(name).array()[0] == 0.0
    again = pickle.loads(blob)  # here too: a new handle of its own
    assert again is not ds and again.copy_on_write == cow and np.array_equal(again.array(), arr)


def test_unpublished_writer_does_not_pickle(names):
    with bulkmap.create(names("wpkl"), size=4096) as w:
        with pytest.raises(TypeError, match="once published"):
            pickle.dumps(w)
        w.publish()
        assert pickle.loads(pickle.dumps(w)).size == 4096


# ---------------------------------------------------------------------------------------
# publish from memory

def test_publish_ndarray_as_npy(names, tool):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    name = names("pub")
    r = bulkmap.publish(name, arr, large_pages="off")
    assert r["state"] == "ready" and r["format"] == "npy"
    assert r["layout"] == {"dtype": "F32", "shape": [2, 3, 4], "order": "C", "data_offset": 128,
                           "data_length": arr.nbytes, "descr": "<f4"}
    assert r["bytes"] == 128 + arr.nbytes
    # The checksum is the library's, of the section's payload, as xxhsum sees the file.
    with open("/dev/shm/" + name, "rb") as f:
        payload = f.read(r["bytes"])
    assert r["xxh3"] == xxhsum(payload)
    assert np.array_equal(np.load("/dev/shm/" + name), arr)  # plain numpy reads it
    with bulkmap.open(name, verify=True) as ds:
        assert np.array_equal(ds.array(), arr)
    assert bulkmap.stat(name) == tool_stat(tool, name)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.publish(name, arr)
    assert e.value.code == "EEXIST"


@pytest.mark.parametrize("n", [4095, (4 << 20) - 129, (4 << 20) - 128, (9 << 20) + 7],
                         ids=["small", "just-under-threaded", "threaded-from", "threaded-odd"])
def test_publish_sizes_hash_as_xxhsum(names, n):
    """The payload written from the caller's memory and hashed there beside the writes
    (one thread under 4 MiB, two from there): the checksum is xxhsum's of the file, and
    numpy reads the array back, across piece edges and odd lengths."""
    arr = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    name = names("pubn")
    r = bulkmap.publish(name, arr, large_pages="off")
    assert r["bytes"] == 128 + n
    with open("/dev/shm/" + name, "rb") as f:
        payload = f.read(r["bytes"])
    assert r["xxh3"] == xxhsum(payload)
    assert np.array_equal(np.load("/dev/shm/" + name), arr)
    with bulkmap.open(name, verify=True) as ds:
        ds.verify()


@pytest.mark.parametrize("arr", [
    np.asfortranarray(np.arange(20, dtype=np.int16).reshape(4, 5)),  # kept in F order
    np.arange(40, dtype=np.float64).reshape(5, 8)[:, ::2],  # not contiguous: copied to C
    np.arange(5, dtype=">u8"),
], ids=["fortran", "strided", "big-endian"])
def test_publish_keeps_dtype_shape_order(names, arr):
    name = names("pub2")
    r = bulkmap.publish(name, arr, large_pages="off")
    with bulkmap.open(name) as ds:
        a = ds.array()
        assert a.dtype == arr.dtype and np.array_equal(a, arr)
        assert r["layout"]["order"] == ("F" if arr.flags.f_contiguous and not arr.flags.c_contiguous
                                        else "C")
        del a


def test_publish_buffers(tmp_path, names):
    raw = bytes(range(256)) * 100
    name = names("bytes")
    r = bulkmap.publish(name, raw, large_pages="off", mode=0o640)
    assert r["format"] == "raw" and r["bytes"] == len(raw) and r["xxh3"] == xxhsum(raw)
    assert oct(os.stat("/dev/shm/" + name).st_mode & 0o777) == "0o640"
    with bulkmap.open(name) as ds:
        assert bytes(memoryview(ds)) == raw
    # The bytes of an npy file are judged by their magic: an npy dataset.
    p = tmp_path / "x.npy"
    np.save(p, np.eye(3))
    name = names("npybytes")
    assert bulkmap.publish(name, bytearray(p.read_bytes()))["format"] == "npy"
    assert np.array_equal(bulkmap.open(name).array(), np.eye(3))
    # A type numpy lacks, named for its unsigned view: recorded as BF16.
    name = names("bf16")
    bits = np.arange(6, dtype=np.uint16).reshape(2, 3)
    r = bulkmap.publish(name, bits, dtype="BF16")
    assert r["layout"]["dtype"] == "BF16" and r["layout"]["descr"] == "<u2"
    with bulkmap.open(name) as ds:
        assert ds.dtype == "BF16" and np.array_equal(ds.array(), bits)
    # Raw bytes given a layout.
    name = names("typed")
    r = bulkmap.publish(name, np.arange(8, dtype=np.int32).tobytes(), dtype="int32")
    assert r["layout"]["shape"] == [8] and list(bulkmap.open(name).array()) == list(range(8))


def test_publish_refusals_leave_nothing(names):
    name = names("bad")
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.publish(name, b"\x93NUMPY\x01\x00garbage", format="npy")
    assert e.value.code == "EFORMAT" and "nothing published" in str(e.value)
    with pytest.raises(ValueError, match="not one a dataset can hold"):
        bulkmap.publish(name, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="not one a dataset can hold"):
        bulkmap.publish(name, np.array([object()]))
    with pytest.raises(TypeError):
        bulkmap.publish(name, 12)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.publish(name, b"x" * 12, dtype="F32", shape=(4,))  # 12 bytes, not 16
    assert e.value.code == "EFORMAT"
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.publish("no/slash", b"x")
    assert e.value.code == "ENAME"
    assert not os.path.exists("/dev/shm/" + name)


def test_publish_replace_and_remove_on_exit(names):
    name = names("repl")
    bulkmap.publish(name, np.zeros(4))
    old = bulkmap.open(name)
    a_old = old.array()
    bulkmap.publish(name, np.ones(8), replace=True)
    assert np.array_equal(bulkmap.open(name).array(), np.ones(8))
    assert np.array_equal(a_old, np.zeros(4))  # the old readers keep their bytes
    del a_old
    old.close()
    child = ("import bulkmap, numpy as np, sys; bulkmap.publish(sys.argv[1], np.arange(3), "
             "remove_on_exit=True); print(bulkmap.stat(sys.argv[1])['state'])")
    gone = names("roe")
    out = subprocess.run([sys.executable, "-c", child, gone], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "ready"
    # The watcher removes the name once the child has ended.
    for _ in range(200):
        if not os.path.exists("/dev/shm/" + gone):
            break
        import time
        time.sleep(0.05)
    assert not os.path.exists("/dev/shm/" + gone)


# ---------------------------------------------------------------------------------------
# create + publish

def test_create_fill_publish(names, tool):
    name = names("create")
    src = np.random.default_rng(1).standard_normal((64, 33)).astype(np.float32)
    w = bulkmap.create(name, dtype=np.float32, shape=src.shape, large_pages="off")
    assert w.writable and w.format == "npy"
    assert bulkmap.stat(name)["state"] == "loading"
    a = w.array()
    assert a.flags.writeable and in_mapping(a, w)
    a[:] = src
    with pytest.raises(BufferError, match="del it first"):
        w.publish()  # the array could still write into it
    del a
    r = w.publish()
    assert r["state"] == "ready" and r["layout"]["shape"] == [64, 33]
    assert not w.writable and not w.array().flags.writeable  # now a reader
    with pytest.raises(ValueError):
        w.publish()
    with bulkmap.open(name, verify=True) as ds:
        assert np.array_equal(ds.array(), src)
    assert np.array_equal(np.load("/dev/shm/" + name), src)
    assert bulkmap.stat(name) == tool_stat(tool, name)
    w.close()

    # Raw bytes, filled through the buffer protocol; the library hashes the section.
    name = names("createraw")
    data = os.urandom(100000)
    with bulkmap.create(name, size=len(data)) as w:
        memoryview(w)[:] = data
        r = w.publish()
    assert r["format"] == "raw" and r["xxh3"] == xxhsum(data)
    # ...or through array(dtype): still raw, nothing recorded.
    name = names("createraw2")
    with bulkmap.create(name, size=4096) as w:
        w.array("u4")[:] = 7
        assert w.publish()["layout"] is None
    assert set(bulkmap.open(name).array("u4")) == {7}
    with pytest.raises(TypeError):
        bulkmap.create(names(), dtype="f4")  # shape needed
    with pytest.raises(ValueError):
        bulkmap.create(names(), size=10, dtype="f4", shape=3)  # 10 != header + 12


def test_context_manager_exception_removes_it(names):
    name = names("ctx")
    with pytest.raises(RuntimeError, match="boom"):
        with bulkmap.create(name, dtype="f8", shape=(1000,)) as w:
            a = w.array()  # alive in the frame when the exception leaves the block
            a[:] = 1.0
            # loading: the bytes are anonymous, the claim is bulkmap#NAME (docs/datasets.md)
            assert os.path.exists("/dev/shm/bulkmap#" + name)
            raise RuntimeError("boom")
    assert not os.path.exists("/dev/shm/" + name)
    assert not os.path.exists("/dev/shm/bulkmap#" + name)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.stat(name)
    assert e.value.code == "ENOENT"
    with pytest.raises(ValueError):
        w.publish()
    assert a[0] == 1.0  # the view lived on; it goes with the array
    del a
    gc.collect()
    # Left normally without publish(): removed too.
    name = names("ctx2")
    with bulkmap.create(name, size=100):
        pass
    assert not os.path.exists("/dev/shm/" + name)


# ---------------------------------------------------------------------------------------
# copy on write

CHILD_READ = r"""
import sys, bulkmap
ds = bulkmap.open(sys.argv[1], verify=True)
print(ds.array()[:4].tolist())
"""


def test_copy_on_write_is_private(names):
    name = names("cow")
    bulkmap.publish(name, np.arange(1 << 20, dtype=np.int32))
    ds = bulkmap.open(name, copy_on_write=True)
    assert ds.copy_on_write and ds.writable
    a = ds.array()
    assert a.flags.writeable and in_mapping(a, ds)
    a[:4] = -7
    a[-1] = 5
    assert a[:4].tolist() == [-7] * 4
    # Another process, and another reader here, see the original bytes; the section verifies.
    out = subprocess.run([sys.executable, "-c", CHILD_READ, name], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert out.strip() == "[0, 1, 2, 3]"
    with bulkmap.open(name) as other:
        assert other.array()[:4].tolist() == [0, 1, 2, 3] and other.array()[-1] == (1 << 20) - 1
    with open("/dev/shm/" + name, "rb") as f:
        f.seek(128)
        assert f.read(16) == np.arange(4, dtype=np.int32).tobytes()
    ds.verify()  # hashes the section's pages, not this process's copies
    del a
    ds.close()


# ---------------------------------------------------------------------------------------
# PyTorch

READONLY_TENSOR_WRITE = r"""
import sys, warnings, bulkmap, torch
ds = bulkmap.open(sys.argv[1])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    t = torch.from_numpy(ds.array())
print("warned:", [str(x.category.__name__) for x in w], flush=True)
t[0] = 1.0
print("wrote", flush=True)
"""


def _section_pss_kib(name):
    """Pss (KiB) of this process's mappings of /dev/shm/NAME (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                # bulkmap maps a dataset's bytes through its keep link, bulkmap#NAME#<hex>
                path = line.rstrip().split()[-1] if len(line.split()) >= 6 else ""
                inside = path == "/dev/shm/" + name or path.startswith("/dev/shm/bulkmap#" + name + "#")
            elif inside and first == "Pss:":
                total += int(line.split()[1])
    return total


def _rollup_pss_kib():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class _Workers:
    """A torch Dataset of 4 items, one a worker: each worker maps the whole dataset through
    torch.from_numpy, touches every page, writes its own row of a copy-on-write array, waits
    for the other workers, and reports what it saw and its Pss."""

    def __init__(self, torch, ds, cow, barrier):
        self.torch, self.ds, self.cow, self.barrier = torch, ds, cow, barrier

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import warnings
        torch = self.torch
        before = _rollup_pss_kib()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # from_numpy of a read-only array warns
            t = torch.from_numpy(self.ds.array())
        total = float(t.sum(dtype=torch.float64))
        c = torch.from_numpy(self.cow.array())
        c[i] = -(i + 1)  # this worker's row, private to it
        csum = float(c.sum(dtype=torch.float64))
        self.barrier.wait(120)  # every worker holds both now
        others = [float(c[j, 0]) for j in range(4) if j != i]
        out = (i, total, csum, others, float(c[i, 0]), _section_pss_kib(self.ds.name),
               _rollup_pss_kib() - before)
        self.barrier.wait(120)  # nobody exits (dropping its share) before all have measured
        return out


def test_torch_dataloader_four_workers_one_copy(names):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian python3-torch)")
    import multiprocessing as mp
    rows, cols = 1024, 16384  # 64 MiB of float32
    arr = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) % 1000
    name = names("torch")
    bulkmap.publish(name, arr, large_pages="off")
    ds = bulkmap.open(name)
    cow = bulkmap.open(name, copy_on_write=True)
    want = float(arr.sum(dtype=np.float64))
    del arr
    barrier = mp.get_context("fork").Barrier(4)
    loader = torch.utils.data.DataLoader(_Workers(torch, ds, cow, barrier), batch_size=None,
                                         num_workers=4, multiprocessing_context="fork")
    got = sorted(loader, key=lambda r: r[0])
    size_kib = rows * cols * 4 // 1024
    assert [r[0] for r in got] == [0, 1, 2, 3]
    for i, total, csum, others, mine, pss, rollup in got:
        assert total == want
        assert mine == -(i + 1)
        # no worker sees another's private write
        assert others == [float((j * cols) % 1000) for j in range(4) if j != i]
        assert csum == want - sum(float(v) for v in np.arange(i * cols, (i + 1) * cols) % 1000) \
            - (i + 1) * cols
    # Every worker mapped all 64 MiB twice (shared and private); together they hold one copy
    # (the private rows are 4 x 64 KiB).
    pss_total = sum(r[5] for r in got)
    assert 0.95 * size_kib <= pss_total <= 1.10 * size_kib, (pss_total, size_kib)
    rollup_total = sum(r[6] for r in got)
    assert rollup_total <= 1.25 * size_kib + 4 * 16384, (rollup_total, size_kib)
    # The section itself was never written.
    assert float(ds.array()[:4, 0].sum()) == float(np.arange(4 * cols, step=cols) % 1000 @ np.ones(4))
    ds.verify()
    ds.close()
    cow.close()


def test_torch_write_to_read_only_tensor_crashes(names):
    """What README says: torch.from_numpy of a read-only array warns (UserWarning), and an
    in-place write through the tensor is a write to a read-only mapping: SIGSEGV."""
    pytest.importorskip("torch", reason="PyTorch is not installed (Debian python3-torch)")
    name = names("torchro")
    bulkmap.publish(name, np.zeros(1024, dtype=np.float32))
    p = subprocess.run([sys.executable, "-c", READONLY_TENSOR_WRITE, name], capture_output=True,
                       text=True, timeout=120)
    assert "warned: ['UserWarning']" in p.stdout, p
    assert "wrote" not in p.stdout
    assert p.returncode == -signal.SIGSEGV, p


def test_close_while_another_thread_publishes(names):
    """publish() releases the GIL with the dataset in use: a close() from another thread
    waits for it (or the publish sees a closed dataset), never frees the dataset under it.
    Each round ends with the name either ready and whole, or gone: never left loading."""
    import threading
    data = np.arange(1 << 18, dtype=np.uint8)
    for i in range(60):
        name = names("pubrace%d" % i)
        w = bulkmap.create(name, size=len(data), large_pages="off")
        memoryview(w)[:] = data.tobytes()
        errors = []

        def pub():
            try:
                w.publish()
            except (ValueError, BufferError, bulkmap.Error) as e:
                errors.append(e)

        t = threading.Thread(target=pub)
        t.start()
        w.close()
        t.join()
        try:
            st = bulkmap.stat(name)
        except bulkmap.Error as e:
            assert e.code == "ENOENT"
            continue
        assert st["state"] == "ready", st
        with bulkmap.open(name, verify=True) as ds:
            assert bytes(memoryview(ds)) == data.tobytes()
        bulkmap.rm(name, force=True)
