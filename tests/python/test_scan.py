"""bulkmap.scan against independent sources: xxhsum -H3, wc -l, Python's bytes.count (which
counts non-overlapping matches left to right, as docs/design.md asks) and the tool's JSON."""
import errno
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

import bulkmap
from conftest import run_tool, xxhsum


def wc_l(path):
    return int(subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def test_scan_matches_xxhsum_wc_and_python(pattern_file):
    p, data = pattern_file(5 * 1024 * 1024 + 123)
    r = bulkmap.scan(p, count="of the")
    assert r["xxh3"] == xxhsum(str(p))
    assert r["lines"] == wc_l(p)
    assert r["count"] == data.count(b"of the")
    assert r["bytes"] == r["length"] == len(data)
    assert r["offset"] == 0 and r["file"] == str(p)


def test_scan_range_and_defaults(pattern_file):
    p, data = pattern_file(3 * 1024 * 1024)
    off, n = 1234567, 777777
    r = bulkmap.scan(str(p), offset=off, length=n, count=b"12", window=65536)
    piece = data[off:off + n]
    assert r["xxh3"] == xxhsum(piece)
    assert r["lines"] == piece.count(b"\n")
    assert r["count"] == piece.count(b"12")
    assert r["bytes"] == n
    # As the tool: only what was asked for; asked for nothing, hash and lines.
    r = bulkmap.scan(p, hash=False, lines=False, count="line")
    assert "xxh3" not in r and "lines" not in r and r["count"] == data.count(b"line")
    r = bulkmap.scan(p, hash=False, lines=False)
    assert "xxh3" in r and "lines" in r and "count" not in r
    r = bulkmap.scan(p, offset=len(data))
    assert r["bytes"] == 0 and r["lines"] == 0 and r["xxh3"] == xxhsum(b"")


def test_scan_keys_and_values_as_the_tool(tool, pattern_file):
    p, _ = pattern_file(2 * 1024 * 1024 + 5)
    mine = bulkmap.scan(p, count="line", offset=10, length=1000000)
    theirs = json.loads(run_tool(tool, "scan", str(p), "--hash", "--lines", "--count", "line",
                                 "--offset", "10", "--length", "1000000", "--json",
                                 "--no-progress").stdout)
    assert set(mine) == set(theirs)
    for k in ("file", "offset", "length", "bytes", "xxh3", "lines", "count", "window"):
        assert mine[k] == theirs[k], k


@pytest.mark.parametrize("seed", range(6))
def test_literal_counts_across_window_edges(tmp_path, seed):
    """Self-overlapping literals on periodic and random data, with windows a few bytes long
    so that matches straddle every edge."""
    rnd = random.Random(seed)
    p = tmp_path / "adv.bin"
    for _ in range(60):
        n = rnd.randint(0, 400)
        if rnd.random() < 0.3:
            data = b"a" * n
        else:
            data = bytes(rnd.choice(b"ab") for _ in range(n))
        p.write_bytes(data)
        lit = rnd.choice([b"a", b"aa", b"aaa", b"ab", b"aba", b"abab", b"aab", b"baab",
                          b"aaaaaaa", b"abaababaab"])
        window = rnd.randint(len(lit) + 1, len(lit) + 24)
        r = bulkmap.scan(p, count=lit, window=window, threads=rnd.randint(1, 4))
        assert r["count"] == data.count(lit), (data, lit, window)
        assert r["lines"] == 0


def test_scan_errors(tmp_path, pattern_file):
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(tmp_path / "missing")
    assert e.value.code == "ENOENT" and e.value.os_error != 0
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(tmp_path)
    assert e.value.code == "EISDIR"
    p, data = pattern_file(1000)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(p, offset=1001)
    assert e.value.code == "ERANGE"
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(p, offset=10, length=991)
    assert e.value.code == "ERANGE"
    with pytest.raises(ValueError):
        bulkmap.scan(p, count="")
    with pytest.raises(ValueError):
        bulkmap.scan(p, offset=-1)
    with pytest.raises(ValueError):
        bulkmap.scan(p, count="abcd", window=4)


def test_scan_releases_the_gil(pattern_file):
    """Another Python thread runs while one scan runs (the C code holds no GIL)."""
    p, data = pattern_file(32 * 1024 * 1024)
    seen = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            seen.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    bulkmap.scan(p, window=4096, threads=1)  # small windows: a slow scan
    t1 = time.monotonic()
    stop.set()
    t.join()
    assert t1 - t0 > 0.1, "the scan was too fast to tell"
    during = [x for x in seen if t0 + 0.03 < x < t1 - 0.03]
    assert len(during) >= 5, (len(during), t1 - t0)


def test_keyboard_interrupt_stops_a_scan(tmp_path):
    p = tmp_path / "sparse"
    with open(p, "wb") as f:
        f.truncate(512 << 20)
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), __import__("signal").SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        bulkmap.scan(p, window=4096, threads=2)  # small windows: seconds of work
    timer.join()
    assert time.monotonic() - t0 < 3


def test_file_shrinking_under_a_scan_is_an_error_not_a_crash(tmp_path):
    p = tmp_path / "shrinks"
    with open(p, "wb") as f:
        f.truncate(256 << 20)

    def shrink():
        time.sleep(0.1)
        os.truncate(p, 1 << 20)

    t = threading.Thread(target=shrink)
    t.start()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(p, window=8192, threads=2)
    t.join()
    assert e.value.code == "ETRUNCATED"


def test_periodic_data_and_a_long_self_overlapping_literal(tmp_path):
    """Every byte starts a match of 'a' * 64 in 'aaaa...': 64 search phases that never meet.
    The count stays exact and the cost one step a byte (this finishes in well under a
    second, not in minutes)."""
    p = tmp_path / "aaaa"
    data = b"a" * (8 << 20) + b"b" + b"a" * 1000
    p.write_bytes(data)
    for lit in (b"a" * 64, b"aa", b"a" * 63 + b"b"):
        r = bulkmap.scan(p, count=lit, window="1M")
        assert r["count"] == data.count(lit), lit


def test_limits_are_the_librarys_and_name_the_argument(pattern_file):
    """bm_scan_check decides; the ValueError says which argument. The dict's window is the
    one the library used (rounded up to the granularity)."""
    p, data = pattern_file(100000)
    for kw, word in ((dict(threads=bulkmap.SCAN_MAX_THREADS + 1), "threads"),
                     (dict(threads=0), "threads"),
                     (dict(window="5G"), "window"),
                     (dict(window=0), "window"),
                     (dict(count="x" * ((1 << 20) + 1), window="1G"), "count"),
                     (dict(count="abcd", window=4), "count")):
        with pytest.raises(ValueError, match=word):
            bulkmap.scan(p, **kw)
    r = bulkmap.scan(p, window=5000, threads=bulkmap.SCAN_MAX_THREADS, count="line")
    page = os.sysconf("SC_PAGESIZE")
    assert r["window"] >= 5000 and r["window"] % page == 0
    assert r["count"] == data.count(b"line")
    with pytest.raises(ValueError, match="threads"):
        bulkmap.load(p, "pytest-never-made", threads=bulkmap.SCAN_MAX_THREADS + 1)


# ---------------------------------------------------------------------------------------
# Streams and many files (bm_scan_fd, bm_scan_files): what the tool scans, Python scans.


def _feed(w, data, pieces):
    """Writes data to the pipe's end w in pieces of random sizes (short reads for the
    reader), then closes it."""
    rng = random.Random(len(data))
    at = 0
    while at < len(data):
        k = rng.randint(1, pieces)
        at += os.write(w, data[at:at + k])
    os.close(w)


def test_scan_of_a_pipe_a_descriptor_and_standard_input(tmp_path):
    data = b"".join(b"line %d ERROR%s\n" % (i, b"x" * (i % 13)) for i in range(40000))
    path = tmp_path / "d.txt"
    path.write_bytes(data)
    want = xxhsum(str(path))
    for pieces in (1, 4096, 1 << 20):
        r, w = os.pipe()
        t = threading.Thread(target=_feed, args=(w, data, pieces))
        t.start()
        got = bulkmap.scan(r, count="ERROR", window=4096)
        t.join()
        os.close(r)
        assert got["xxh3"] == want and got["lines"] == data.count(b"\n")
        assert got["count"] == data.count(b"ERROR") and got["bytes"] == len(data) and got["file"] == r
    # "-": this process's standard input, as the tool reads it (a child with a pipe on it).
    code = ("import bulkmap, json; r = bulkmap.scan('-', count='ERROR'); "
            "print(json.dumps([r['xxh3'], r['lines'], r['count'], r['file']]))")
    p = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True,
                       env=dict(os.environ))
    assert json.loads(p.stdout) == [want, data.count(b"\n"), data.count(b"ERROR"), "-"]
    # A file object: read from where it stands (its read-ahead is not lost), named.
    with open(path, "rb") as f:
        f.read(100)
        got = bulkmap.scan(f)
        assert got["bytes"] == len(data) - 100 and got["file"] == str(path)
    with open(tmp_path / "tail", "wb") as t:
        t.write(data[100:])
    assert got["xxh3"] == xxhsum(str(tmp_path / "tail"))
    # Empty input, and a descriptor that is not open: a clear error, not a crash.
    r, w = os.pipe()
    os.close(w)
    assert bulkmap.scan(r)["bytes"] == 0
    os.close(r)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.scan(r)
    assert e.value.code == "EINVAL" and e.value.os_error == errno.EBADF


def test_scan_of_many_files_as_the_tool(tmp_path, tool):
    paths = []
    for i in range(150):
        p = tmp_path / ("f%03d" % i)
        p.write_bytes(b"ab\nERROR\n" * (i * 37 % 500) + b"x" * i)
        paths.append(str(p))
    big = tmp_path / "big"
    big.write_bytes(b"ERROR\n" * 200000)
    paths.append(str(big))
    got = bulkmap.scan(paths, count="ERROR")
    want = json.loads(run_tool(tool, "scan", *paths, "--count", "ERROR", "--hash", "--lines", "--json",
                               "--no-progress").stdout)
    assert [f["file"] for f in got["files"]] == [f["file"] for f in want["files"]] == paths
    for g, t in zip(got["files"], want["files"]):
        assert (g["xxh3"], g["lines"], g["count"], g["bytes"]) == (t["xxh3"], t["lines"], t["count"], t["bytes"])
        assert g["xxh3"] == xxhsum(g["file"])
    assert {k: got["total"][k] for k in ("bytes", "lines", "count")} == want["total"]
    assert "error" not in got
    # A missing file is left out and named under "error"; the others are scanned.
    got = bulkmap.scan([paths[0], str(tmp_path / "missing"), paths[1]])
    assert [f["file"] for f in got["files"]] == [paths[0], paths[1]]
    assert got["error"]["code"] == "ENOENT" and got["error"]["context"] == str(tmp_path / "missing")
