#!/usr/bin/env python3
"""Ctrl-C latency of the Python binding: a child python3 runs one bulkmap call; this process
sends it SIGINT at a random point of the work and measures the time from the kill to the
child seeing KeyboardInterrupt (both read CLOCK_MONOTONIC, which the processes of one machine
share). Median and max over --runs interrupts for each workload:

    hash    bulkmap.scan(SPARSE, hash=True, lines=False)          XXH3 of a large sparse file
    count   bulkmap.scan(SPARSE, hash=False, lines=False, count="needle")   a literal over it
    lines   bulkmap.scan(SPARSE, hash=False, lines=True)          its lines
    scan    bulkmap.scan(DENSE, count="needle")     (hash, lines and a literal, random bytes)
    load    bulkmap.load(DENSE, NAME, large_pages="off")   (includes removing the half-made
            section, which the library does before the call returns)

    PYTHONPATH=BUILD/python python3 perf/python_interrupt.py [--workloads hash,count,lines]
        [--sparse-size 30G] [--size 2G] [--runs 10] [--seed N] [--file PATH] [--json]

SPARSE is made with truncate (one hole: the scan reads zero pages, no disk); DENSE (random
bytes, not sparse, so the scan and load read real pages) is made unless --file is given and
read before every run so that it is in the page cache. Each workload is first run
uninterrupted (SPARSE: twice, the first filling the page cache with the holes' zero pages);
the signal then comes at a uniformly random point between 10% and 90% of that time after the
child's call began (the child says "go" just before the call). A run that finishes before its
signal is counted as missed and another is made, until --runs interrupts.
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

CHILD = r"""
import os, sys, time, bulkmap
what, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
calls = {
    "hash": lambda: bulkmap.scan(path, hash=True, lines=False),
    "count": lambda: bulkmap.scan(path, hash=False, lines=False, count="needle"),
    "lines": lambda: bulkmap.scan(path, hash=False, lines=True),
    "scan": lambda: bulkmap.scan(path, count="needle"),
    "load": lambda: bulkmap.load(path, name, large_pages="off"),
}
call = calls[what]
if len(sys.argv) > 4:  # the uninterrupted run: its time
    t0 = time.monotonic()
    call()
    print("took", time.monotonic() - t0, flush=True)
    if what == "load":
        bulkmap.rm(name)
    sys.exit(0)
print("go", time.monotonic(), flush=True)
try:
    call()
except KeyboardInterrupt:
    t = time.monotonic()
    print("interrupted", t, flush=True)
    sys.exit(0)
print("finished", time.monotonic(), flush=True)
sys.exit(3)
"""

SPARSE = ("hash", "count", "lines")
DENSE = ("scan", "load")


def make_file(path, size):
    block = os.urandom(64 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def name_for():
    return "perf-intr-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])


def uninterrupted(what, path):
    out = subprocess.run([sys.executable, "-c", CHILD, what, path, name_for(), "time"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    assert out[0] == "took", out
    return float(out[1])


def one(what, path, delay):
    name = name_for()
    p = subprocess.Popen([sys.executable, "-c", CHILD, what, path, name], stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "go", line
    # The call began just after "go" was printed; the time to read that line counts.
    time.sleep(max(0.0, float(line[1]) + delay - time.monotonic()))
    t_kill = time.monotonic()
    p.send_signal(signal.SIGINT)
    out = p.stdout.readline().split()
    p.wait()
    left = os.path.exists("/dev/shm/" + name)
    if left:
        subprocess.run([sys.executable, "-c", "import bulkmap,sys; bulkmap.rm(sys.argv[1], force=True)",
                        name])
    if not out or out[0] != "interrupted":
        return None, t_kill - float(line[1]), False  # finished before the signal
    return float(out[1]) - t_kill, t_kill - float(line[1]), left


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="hash,count,lines",
                    help="comma-separated, of: " + ",".join(SPARSE + DENSE))
    ap.add_argument("--sparse-size", default="30G")
    ap.add_argument("--size", default="2G", help="the dense file's size (scan, load)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--file", help="the dense file to use instead of making one")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import bulkmap
    works = [w for w in a.workloads.split(",") if w]
    for w in works:
        if w not in SPARSE + DENSE:
            ap.error("unknown workload %r" % w)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="bulkmap-intr-")
    sparse = dense = None
    res = {"seed": seed, "runs": a.runs, "python": sys.version.split()[0],
           "bulkmap": getattr(bulkmap, "__version__", None), "workloads": {}}
    try:
        if any(w in SPARSE for w in works):
            sparse = os.path.join(tmp, "sparse.bin")
            with open(sparse, "wb") as f:
                f.truncate(bulkmap.parse_size(a.sparse_size))
            res["sparse_bytes"] = os.path.getsize(sparse)
        if any(w in DENSE for w in works):
            dense = a.file
            if dense is None:
                dense = os.path.join(tmp, "dense.bin")
                make_file(dense, bulkmap.parse_size(a.size))
            res["dense_bytes"] = os.path.getsize(dense)
        for what in works:
            path = sparse if what in SPARSE else dense
            if path is dense:
                warm(path)
            else:
                # The first scan of the holes fills the page cache with zero pages (several
                # times slower); the runs measure the steady state after it.
                uninterrupted(what, path)
            total = uninterrupted(what, path)
            lat, at, missed, leftover = [], [], 0, 0
            # Until --runs interrupts (a run that finished before its signal does not count),
            # at most 3 x --runs attempts.
            for _ in range(3 * a.runs):
                if len(lat) == a.runs:
                    break
                delay = total * rng.uniform(0.10, 0.90)
                if path is dense:
                    warm(path)
                s, when, left = one(what, path, delay)
                leftover += left
                if s is None:
                    missed += 1
                else:
                    lat.append(s * 1000)
                    at.append(when)
            # left_sections: interrupted runs that left their section behind (must be 0).
            res["workloads"][what] = {
                "uninterrupted_s": round(total, 3), "runs": len(lat), "missed": missed,
                "left_sections": leftover,
                "median_ms": round(statistics.median(lat), 1) if lat else None,
                "max_ms": round(max(lat), 1) if lat else None,
                "min_ms": round(min(lat), 1) if lat else None,
                "all_ms": [round(x, 1) for x in lat],
                "kill_at_s": [round(x, 2) for x in at]}
    finally:
        for f in (sparse, None if a.file else dense):
            if f and os.path.exists(f):
                os.unlink(f)
        os.rmdir(tmp)
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print("seed %d; sparse %s bytes; dense %s bytes; load average at the end %s"
          % (seed, res.get("sparse_bytes"), res.get("dense_bytes"), " ".join(res["loadavg_end"])))
    for what in works:
        r = res["workloads"][what]
        if not r["runs"]:
            print("%s: every run finished before the signal (uninterrupted %.3f s)"
                  % (what, r["uninterrupted_s"]))
            continue
        print("%s: median %.1f ms, max %.1f ms, min %.1f ms over %d interrupts (uninterrupted "
              "%.3f s; %d finished first, %d sections left): %s"
              % (what, r["median_ms"], r["max_ms"], r["min_ms"], r["runs"], r["uninterrupted_s"],
                 r["missed"], r["left_sections"], r["all_ms"]))


if __name__ == "__main__":
    main()
