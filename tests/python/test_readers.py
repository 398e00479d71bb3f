"""A dataset is the file (docs/datasets.md): every reader opens /dev/shm/NAME as it opens the
source, through the real reader (numpy, zipfile, torch, safetensors' length rule,
multiprocessing.shared_memory), and a third party that unlinks NAME (Python's resource
tracker) does not take the dataset from bulkmap's readers."""
import json
import os
import struct
import zipfile
from multiprocessing import resource_tracker, shared_memory

import numpy as np
import pytest

import bulkmap

SHM = "/dev/shm"


def published(path, name):
    bulkmap.load(str(path), name, large_pages="off")
    pub = os.path.join(SHM, name)
    with open(path, "rb") as a, open(pub, "rb") as b:
        assert a.read() == b.read(), "the published file is not byte-for-byte the source"
    assert os.path.getsize(pub) == os.path.getsize(path)
    return pub


def test_npy_with_mmap_mode(tmp_path, names):
    a = np.arange(12345, dtype=np.float32).reshape(15, 823)
    np.save(tmp_path / "a.npy", a)
    pub = published(tmp_path / "a.npy", names("npy"))
    got = np.load(pub, mmap_mode="r")
    assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)


def test_npz_and_zipfile(tmp_path, names):
    np.savez(tmp_path / "z.npz", x=np.arange(10), y=np.ones((3, 4)))
    pub = published(tmp_path / "z.npz", names("npz"))
    z = np.load(pub)
    assert np.array_equal(z["x"], np.arange(10)) and np.array_equal(z["y"], np.ones((3, 4)))
    with zipfile.ZipFile(pub) as zf:
        assert sorted(zf.namelist()) == ["x.npy", "y.npy"] and zf.testzip() is None


def test_torch_load_of_a_pt(tmp_path, names):
    torch = pytest.importorskip("torch")
    state = {"w": torch.arange(24, dtype=torch.float32).reshape(4, 6), "b": torch.ones(6)}
    torch.save(state, tmp_path / "m.pt")
    pub = published(tmp_path / "m.pt", names("pt"))
    got = torch.load(pub)
    assert set(got) == {"w", "b"} and torch.equal(got["w"], state["w"]) and torch.equal(got["b"], state["b"])


def test_safetensors_length_rule(tmp_path, names):
    # The reference reader refuses a buffer that is not exactly 8 + N + the data's end.
    data = np.arange(6, dtype=np.float32).tobytes()
    header = json.dumps({"t": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, len(data)]}}).encode()
    blob = struct.pack("<Q", len(header)) + header + data
    (tmp_path / "m.safetensors").write_bytes(blob)
    pub = published(tmp_path / "m.safetensors", names("st"))
    raw = open(pub, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])
    assert len(raw) == 8 + n + meta["t"]["data_offsets"][1]
    assert np.array_equal(np.frombuffer(raw[8 + n:], np.float32), np.arange(6, dtype=np.float32))


def test_shared_memory_size_and_the_tracker(tmp_path, names):
    src = tmp_path / "b.bin"
    src.write_bytes(os.urandom(100003))
    name = names("shm")
    published(src, name)
    shm = shared_memory.SharedMemory(name)
    try:
        assert shm.size == 100003 and bytes(shm.buf[:100003]) == src.read_bytes()
    finally:
        shm.close()
    # What Python 3.11's resource tracker does when such a reader exits: unlink NAME.
    shm.unlink()
    resource_tracker.unregister(shm._name, "shared_memory")
    assert not os.path.exists(os.path.join(SHM, name))
    with bulkmap.open(name, verify=True) as ds:
        assert bytes(memoryview(ds)) == src.read_bytes()


def test_replace_keeps_plain_readers_whole(tmp_path, names):
    # A plain reader of the path sees the old bytes or the new, never a missing file.
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a" * 65536)
    b.write_bytes(b"b" * 70000)
    name = names("rep")
    published(a, name)
    bulkmap.load(str(b), name, large_pages="off", replace=True)
    pub = os.path.join(SHM, name)
    assert open(pub, "rb").read() == b.read_bytes()
    left = [e for e in os.listdir(SHM) if e.startswith("bulkmap#" + name + "#")]
    assert len(left) == 1, left
