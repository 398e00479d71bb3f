#!/usr/bin/env python3
"""Ctrl-C latency of the Python binding: a child python3 runs bulkmap.scan or bulkmap.load
of a file; this process sends it SIGINT once it is well into the work and measures the time
from the kill to the child seeing KeyboardInterrupt (both read CLOCK_MONOTONIC, which the
processes of one machine share). For a load that includes removing the half-made section
(the library does that before the call returns).

    PYTHONPATH=build/h-py/python python3 perf/python_interrupt.py [--size 2G] [--runs 10]
        [--file PATH] [--json]

The file is made (random bytes, not sparse, so the scan and load read real pages) unless
--file is given, and read once before the runs so that it is in the page cache.
"""
import argparse
import json
import os
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
print("go", time.monotonic(), flush=True)
try:
    if what == "scan":
        bulkmap.scan(path, count="needle")
    else:
        bulkmap.load(path, name, large_pages="off")
except KeyboardInterrupt:
    t = time.monotonic()
    print("interrupted", t, flush=True)
    sys.exit(0)
print("finished", time.monotonic(), flush=True)
sys.exit(3)
"""


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


def one(what, path, delay):
    name = "perf-intr-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    env = dict(os.environ)
    p = subprocess.Popen([sys.executable, "-c", CHILD, what, path, name], stdout=subprocess.PIPE,
                         text=True, env=env)
    line = p.stdout.readline().split()
    assert line and line[0] == "go", line
    # Well into the work: the child's call started before "go" was read, plus delay.
    time.sleep(delay)
    t_kill = time.monotonic()
    p.send_signal(signal.SIGINT)
    out = p.stdout.readline().split()
    p.wait()
    left = os.path.exists("/dev/shm/" + name)
    if left:
        subprocess.run([sys.executable, "-c", "import bulkmap,sys; bulkmap.rm(sys.argv[1], force=True)",
                        name])
    if not out or out[0] != "interrupted":
        return None, False  # finished before the signal: its section was published
    return float(out[1]) - t_kill, left


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="2G")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--file")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import bulkmap
    size = bulkmap.parse_size(a.size)
    tmp = None
    path = a.file
    if path is None:
        tmp = tempfile.mkdtemp(prefix="bulkmap-intr-")
        path = os.path.join(tmp, "data.bin")
        make_file(path, size)
    warm(path)
    # How long each takes uninterrupted, to send the signal in the middle of the work.
    t0 = time.monotonic()
    bulkmap.scan(path, count="needle")
    scan_s = time.monotonic() - t0
    n = "perf-intr-probe-%d" % os.getpid()
    t0 = time.monotonic()
    bulkmap.load(path, n, large_pages="off")
    load_s = time.monotonic() - t0
    bulkmap.rm(n)
    res = {"file_bytes": os.path.getsize(path), "scan_seconds": scan_s, "load_seconds": load_s}
    for what, total in (("scan", scan_s), ("load", load_s)):
        lat, missed, leftover = [], 0, 0
        for i in range(a.runs):
            # Spread over 15-45% of the uninterrupted time (a load's time varies 2x here:
            # the kernel may have to take memory back from the host for the section).
            delay = total * (0.15 + 0.3 * i / max(a.runs - 1, 1))
            warm(path)
            ms, left = one(what, path, delay)
            leftover += left
            if ms is None:
                missed += 1
            else:
                lat.append(ms * 1000)
        # left_sections: interrupted runs that left their section behind (must be 0).
        res[what] = {"runs": len(lat), "missed": missed, "left_sections": leftover,
                     "median_ms": statistics.median(lat) if lat else None,
                     "max_ms": max(lat) if lat else None,
                     "min_ms": min(lat) if lat else None,
                     "all_ms": [round(x, 1) for x in lat]}
    if tmp:
        os.unlink(path)
        os.rmdir(tmp)
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        print("file: %d bytes; uninterrupted: scan %.3f s, load %.3f s"
              % (res["file_bytes"], scan_s, load_s))
        for what in ("scan", "load"):
            r = res[what]
            print("%s: median %.1f ms, max %.1f ms, min %.1f ms over %d runs (%d finished first, "
                  "%d sections left): %s" % (what, r["median_ms"], r["max_ms"], r["min_ms"],
                                             r["runs"], r["missed"], r["left_sections"],
                                             r["all_ms"]))


if __name__ == "__main__":
    main()
