"""bulkmap.dask.scan on a distributed.LocalCluster of 2 worker processes against the
single-process scan, xxhsum of each range, and Python's count of the literal (also for
literals that overlap themselves, cut at every kind of range edge)."""
import random

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


def test_self_overlapping_literals_at_range_edges(client, tmp_path):
    rnd = random.Random(7)
    files, datas = [], []
    for i in range(4):
        n = rnd.randint(40, 120)
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
            r = bd.scan(files[:1] + files, chunk=chunk, client=client, count=lit, hash=False)
            want = sum(d.count(lit) for d in datas[:1] + datas)
            assert r["total"]["count"] == want, (lit, chunk)
            assert r["total"]["count"] == sum(bulkmap.scan(f, count=lit)["count"]
                                              for f in files[:1] + files)
            assert sum(x["count"] for x in r["ranges"]) == want
            assert "xxh3" not in r["ranges"][0]


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
    data = b"aaab\n" * 1000
    f.write_bytes(data)
    r = bd.scan(str(f), chunk=7, count="aa")  # the client fixture may exist: either way
    assert r["total"] == {"bytes": len(data), "lines": 1000, "count": data.count(b"aa")}


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
    """Without a cluster: ranges of a few bytes, each scanned in windows of a few bytes
    (so each task composes its windows' phase functions), folded in order."""
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
               for _, off, ln in bd.plan(str(f), chunk)]
        r = bd.fold(res, lit)
        assert r["total"]["count"] == data.count(lit), (data, lit, chunk, window)
        assert r["total"]["bytes"] == n
