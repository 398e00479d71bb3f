"""Fixtures of the Python suite: the tool (for its JSON, an independent reader), dataset
names that are removed after each test, and files written by the tests."""
import os
import shutil
import subprocess
import uuid

import pytest

import bulkmap


@pytest.fixture
def tool():
    path = os.environ.get("BULKMAP_TOOL")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("BULKMAP_TOOL (the bulkmap tool) is not set: the tool was not built")
    return path


def run_tool(tool, *args, check=True):
    return subprocess.run([tool, *args], capture_output=True, text=True, check=check)


def xxhsum(path_or_bytes, tmp_path=None):
    """XXH3-64 from xxhsum -H3 (an implementation that is not ours)."""
    if shutil.which("xxhsum") is None:
        pytest.skip("xxhsum is not installed (Debian package xxhash)")
    if isinstance(path_or_bytes, bytes):
        out = subprocess.run(["xxhsum", "-H3", "-"], input=path_or_bytes, capture_output=True,
                             check=True).stdout.decode()
    else:
        out = subprocess.run(["xxhsum", "-H3", path_or_bytes], capture_output=True, text=True,
                             check=True).stdout
    # "XXH3 (FILE) = 0123456789abcdef" (--tag style) or "0123456789abcdef  FILE"
    if "=" in out.split("\n")[0]:
        return out.split("=")[-1].strip()
    return out.split()[0].strip()


@pytest.fixture
def names():
    """Makes unique dataset names; removes whatever of them is left at the end."""
    made = []

    def make(stem="t"):
        n = "pytest-%s-%d-%s" % (stem, os.getpid(), uuid.uuid4().hex[:8])
        made.append(n)
        return n

    yield make
    for n in made:
        try:
            bulkmap.rm(n, force=True)
        except bulkmap.Error:
            pass


@pytest.fixture
def pattern_file(tmp_path):
    """Writes a file of `size` bytes: lines of text with a counter, so every byte is known."""
    def make(size, name="data.txt", seed=b""):
        block = b"".join(b"%s line %08d of the test pattern\n" % (seed, i) for i in range(4096))
        reps = size // len(block) + 1
        data = (block * reps)[:size]
        p = tmp_path / name
        p.write_bytes(data)
        return p, data
    return make
