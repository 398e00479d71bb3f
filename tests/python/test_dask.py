"""bulkmap.dask.scan on a distributed.LocalCluster of 2 worker processes against the
single-process scan, the tool, xxhsum of each range, and Python's count of the literal (also
for literals that overlap themselves, cut at every kind of range edge), folded by the
library's fold; and the bounds on chunk and on the number of tasks."""
import json
import os
import random
import subprocess
import time

import pytest

import bulkmap
import bulkmap.dask as bd
from conftest import xxhsum

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_equals_single_process_scan(client, pattern_file):
    p, data = pattern_file(5 * 1024 * 1024 + 99)
    q, data2 = pattern_file(777777, name="second.txt", seed=b"aaaa")
    r = bd.scan([str(p), str(q)], chunk="1M", client=client, count="aa")
    one = bulkmap.scan(p, count="aa")
    two = bulkmap.scan(q, count="aa")
    assert r["total"] == {"bytes": len(data) + len(data2),
                          "lines": one["lines"] + two["lines"],
                          "count": one["count"] + two["count"]}
    assert two["count"] == data2.count(b"aa")
    assert len(r["ranges"]) == 6 + 1
    assert [x["offset"] for x in r["ranges"][:6]] == [i << 20 for i in range(6)]
    for x in r["ranges"]:
        assert set(x) == {"file", "offset", "length", "xxh3", "lines", "count"}
    # One XXH3 a range, of that range's bytes.
    for x in (r["ranges"][0], r["ranges"][5], r["ranges"][6]):
        src = data if x["file"] == str(p) else data2
        assert x["xxh3"] == xxhsum(src[x["offset"]:x["offset"] + x["length"]])
    # A file that is one range gives the file's own hash.
    whole = bd.scan(str(q), chunk="1G", client=client)
    assert whole["ranges"][0]["xxh3"] == xxhsum(str(q)) == two["xxh3"]
    assert "count" not in whole["total"]


def _cluster_fold(client, files, chunk, lit):
    """The tasks of bd.scan for ranges of `chunk` bytes, below bd.scan's minimum (to cut at
    every kind of edge), on the cluster, folded by bd.fold."""
    ranges = bd.plan(files, chunk, min_chunk=1)
    futures = [client.submit(bd.scan_range, p, off, n, count=lit, hash=False, pure=False)
               for p, off, n in ranges]
    return bd.fold(client.gather(futures), lit)


def test_self_overlapping_literals_at_range_edges(client, tmp_path):
    rnd = random.Random(7)
    files, datas = [], []
    for i in range(4):
        # Short files (a range a byte at chunk 1 is a task each): every edge is still cut.
        n = rnd.randint(14, 40)
        if i == 0:
            data = b"a" * n
        elif i == 1:
            data = b"ab" * (n // 2) + b"a"
        else:
            data = bytes(rnd.choice(b"ab") for _ in range(n))
        f = tmp_path / ("f%d" % i)
        f.write_bytes(data)
        files.append(str(f))
        datas.append(data)
    # The first file twice in a row: each copy is counted from its own start.
    for lit in (b"aa", b"aaa", b"aba", b"abab", b"aab", b"aaaaaaa", b"a", b"abaababaab"):
        for chunk in (1, 3, 8, 1 << 30):
            r = _cluster_fold(client, files[:1] + files, chunk, lit)
            want = sum(d.count(lit) for d in datas[:1] + datas)
            assert r["total"]["count"] == want, (lit, chunk)
            assert r["total"]["count"] == sum(bulkmap.scan(f, count=lit)["count"]
                                              for f in files[:1] + files)
            assert sum(x["count"] for x in r["ranges"]) == want
            assert "xxh3" not in r["ranges"][0]


def _greedy_before(data, lit, e):
    """Matches (left to right, no overlap) that begin before e: those of data[:e+len-1],
    since a match beginning at e or later needs bytes past that."""
    return data[:e + len(lit) - 1].count(lit) if e > 0 else 0


@pytest.fixture(scope="module")
def periodic_files(tmp_path_factory):
    """Files of a few MiB whose periods do not divide the range edges: runs of "a", "ab"
    repeated, "aab" repeated, random a/b, and one with a line structure."""
    d = tmp_path_factory.mktemp("periodic")
    rnd = random.Random(17)
    made = []
    for name, data in (("a", b"a" * (3 * 2**20 + 5)),
                       ("ab", b"ab" * (2**20 + 3) + b"a"),
                       ("aab", (b"aab" * (2**20))[:3 * 2**20 - 1]),
                       ("rand", bytes(rnd.choice(b"ab") for _ in range(2**21 + 77))),
                       ("lines", b"aaaa\naab\n" * (2**18 + 1))):
        f = d / name
        f.write_bytes(data)
        made.append((str(f), data))
    return made


@pytest.mark.parametrize("chunk", [2**20, 2**20 + 1, 1234567])
def test_periodic_literals_equal_scan_and_tool(client, periodic_files, chunk):
    """Dask folds with the library's fold: for literals that overlap themselves on periodic
    data, cut where a match straddles the edge, every range's count, the totals, each
    range's hash and lines equal Python's count, bulkmap.scan and the tool's scan --json."""
    tool = os.environ.get("BULKMAP_TOOL")
    files = [f for f, _ in periodic_files]
    datas = {f: d for f, d in periodic_files}
    for lit in (b"aa", b"aaa", b"aba", b"abab", b"aab", b"a" * 7, b"a", b"aaaa\naab"):
        r = bd.scan(files, chunk=chunk, client=client, count=lit)
        one = {f: bulkmap.scan(f, count=lit) for f in files}
        assert r["total"] == {"bytes": sum(len(d) for d in datas.values()),
                              "lines": sum(one[f]["lines"] for f in files),
                              "count": sum(one[f]["count"] for f in files)}, lit
        assert r["total"]["count"] == sum(d.count(lit) for d in datas.values()), lit
        for x in r["ranges"]:
            data = datas[x["file"]]
            lo, hi = x["offset"], x["offset"] + x["length"]
            assert x["count"] == _greedy_before(data, lit, hi) - _greedy_before(data, lit, lo), \
                (lit, x)
            assert x["lines"] == data[lo:hi].count(b"\n")
        if tool:
            for f in files:
                theirs = json.loads(subprocess.run(
                    [tool, "scan", f, "--hash", "--lines", "--count", lit.decode(), "--json",
                     "--no-progress"], capture_output=True, text=True, check=True).stdout)
                assert (theirs["count"], theirs["lines"], theirs["xxh3"]) == \
                    (one[f]["count"], one[f]["lines"], one[f]["xxh3"]), (f, lit)
    # Each range's XXH3 is bulkmap.scan's of that range.
    for x in r["ranges"][:3]:
        piece = bulkmap.scan(x["file"], offset=x["offset"], length=x["length"])
        assert x["xxh3"] == piece["xxh3"]


def test_periodic_literals_equal_the_tool(tool, periodic_files):
    """The same files through the tool (skipped without it, so the test above still runs):
    bulkmap.scan and `bulkmap scan --json` agree."""
    for f, data in periodic_files:
        for lit in ("aa", "aba", "aaaaaaa"):
            theirs = json.loads(subprocess.run(
                [tool, "scan", f, "--count", lit, "--hash", "--lines", "--json",
                 "--no-progress"], capture_output=True, text=True, check=True).stdout)
            mine = bulkmap.scan(f, count=lit)
            assert theirs["count"] == mine["count"] == data.count(lit.encode())
            assert theirs["xxh3"] == mine["xxh3"] and theirs["lines"] == mine["lines"]


def test_chunk_and_task_count_are_bounded(tmp_path):
    """chunk="1" used to make one task a byte: now a chunk below MIN_CHUNK is refused at
    once (a ValueError naming chunk), and a plan never has more than MAX_RANGES ranges (or
    one a file): the chunk grows to fit."""
    f = tmp_path / "small"
    f.write_bytes(b"x" * (256 << 10))
    t0 = time.monotonic()
    for chunk in ("1", 1, 4096, bd.MIN_CHUNK - 1):
        with pytest.raises(ValueError, match="chunk"):
            bd.scan(str(f), chunk=chunk)
    assert time.monotonic() - t0 < 5
    assert bd.plan(str(f), bd.MIN_CHUNK) == [(str(f), 0, 256 << 10)]
    # A sparse 64 GiB file in 1 MiB chunks would be 65,536 tasks: 10,000 at most.
    big = tmp_path / "big"
    with open(big, "wb") as w:
        w.truncate(64 << 30)
    for chunk in ("1M", "3M", bd.MIN_CHUNK + 1):
        ranges = bd.plan([str(big), str(f)], chunk)
        assert len(ranges) <= bd.MAX_RANGES
        assert ranges[0] == (str(big), 0, ranges[0][2]) and ranges[-1][0] == str(f)
        step = ranges[0][2]
        assert step > bulkmap.parse_size(chunk) and step % bd.MIN_CHUNK == 0  # grown
        # The ranges tile each file exactly, in order.
        pos = 0
        for p, off, n in ranges[:-1]:
            assert p == str(big) and off == pos and 0 < n <= step
            pos += n
        assert pos == 64 << 30
    # A chunk that fits is kept as given.
    assert len(bd.plan(str(big), "1G")) == 64 and bd.plan(str(big), "1G")[1][1] == 1 << 30
    # More files than MAX_RANGES: one range a file, never fewer.
    many = [str(f)] * 12000
    assert len(bd.plan(many, "1M", max_ranges=bd.MAX_RANGES)) == 12000
    assert len(bd.plan([str(big)] * 3, "1M", max_ranges=100)) <= 100


def test_empty_file_and_errors(client, tmp_path):
    e = tmp_path / "empty"
    e.write_bytes(b"")
    r = bd.scan(str(e), client=client, count="x")
    assert r["total"] == {"bytes": 0, "lines": 0, "count": 0}
    assert r["ranges"] == [{"file": str(e), "offset": 0, "length": 0,
                            "xxh3": xxhsum(b""), "lines": 0, "count": 0}]
    with pytest.raises(FileNotFoundError):
        bd.scan(str(tmp_path / "missing"), client=client)
    with pytest.raises(ValueError):
        bd.scan(str(e), chunk=0, client=client)
    with pytest.raises(ValueError):
        bd.scan(str(e), chunk="12Q", client=client)


def test_without_a_client_runs_locally(tmp_path):
    f = tmp_path / "x"
    data = b"aaab\n" * (500 * 1024 + 1)  # 2.4 MiB: three ranges of 1 MiB
    f.write_bytes(data)
    r = bd.scan(str(f), chunk="1M", count="aa")  # the client fixture may exist: either way
    assert r["total"] == {"bytes": len(data), "lines": len(data) // 5,
                          "count": data.count(b"aa")}
    assert len(r["ranges"]) == 3


def test_a_worker_error_arrives_as_bulkmap_error(client, tmp_path):
    """A file cut short after the ranges were planned: the task's bulkmap.Error travels
    back (pickled) with its code."""
    f = tmp_path / "short"
    f.write_bytes(b"x" * 100)
    fut = client.submit(bd.scan_range, str(f), 50, 100, pure=False)
    with pytest.raises(bulkmap.Error) as e:
        fut.result()
    assert e.value.code == "ERANGE" and e.value.context == str(f)


@pytest.mark.parametrize("seed", range(4))
def test_range_functions_fold_to_python_count(tmp_path, seed):
    """Without a cluster: ranges of a few bytes (below bd.scan's minimum chunk, through
    plan's min_chunk), each a part, folded in order by the library (bd.fold)."""
    rnd = random.Random(100 + seed)
    f = tmp_path / "r.bin"
    for _ in range(80):
        n = rnd.randint(0, 300)
        alpha = rnd.choice([b"ab", b"abc", b"a", b"aab"])
        if rnd.random() < 0.3:
            data = (rnd.choice([b"a", b"ab", b"aab", b"abaab"]) * n)[:n]
        else:
            data = bytes(rnd.choice(alpha) for _ in range(n))
        f.write_bytes(data)
        lit = rnd.choice([b"a", b"aa", b"aaa", b"aba", b"abab", b"ab", b"aab", b"aaaaa",
                          b"baab", b"aaaaaaaaaaa", b"abaababaab", b"abcab", b"abaab"])
        chunk = rnd.randint(1, 40)
        window = rnd.randint(len(lit) + 1, len(lit) + 20)
        res = [bd.scan_range(str(f), off, ln, count=lit, window=window, hash=False)
               for _, off, ln in bd.plan(str(f), chunk, min_chunk=1)]
        r = bd.fold(res, lit)
        assert r["total"]["count"] == data.count(lit), (data, lit, chunk, window)
        assert r["total"]["bytes"] == n
