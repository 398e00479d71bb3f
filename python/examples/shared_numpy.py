#!/usr/bin/env python3
"""N worker processes read one loaded dataset through numpy: one copy in RAM.

    python3 shared_numpy.py [--size 1G] [--workers 4] [--json]

Writes a file of SIZE (uint64 0, 1, 2, ...), loads it as a dataset (4 KiB pages, so that
the kernel counts it in Rss/Pss), and starts WORKERS processes that each open it, view it
with numpy.frombuffer (no copy) and sum every element. While all of them hold it mapped,
each reads its own /proc/self/smaps: Rss is the whole section in every process, and Pss
(each page's size divided by the number of processes mapping it) adds up to one copy.
The dataset and the file are removed at the end.
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time

import numpy as np

import bulkmap


def mapping_kib(name):
    """Rss and Pss (KiB) of this process's mappings of the section NAME, from smaps."""
    rss = pss = 0
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
                # NAME, or the keep link bulkmap maps it through (bulkmap#NAME#<hex>)
                base = os.path.basename(head[5]) if len(head) >= 6 else ""
                inside = base == name or base.startswith("bulkmap#" + name + "#")
            elif inside and head[0] == "Rss:":
                rss += int(head[1])
            elif inside and head[0] == "Pss:":
                pss += int(head[1])
    return rss, pss


def process_pss_kib():
    """This whole process's Pss (KiB), from smaps_rollup: the section's share plus Python."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def worker(name, barrier, out):
    with bulkmap.open(name) as ds:
        a = np.frombuffer(ds, dtype=np.uint64)
        t0 = time.monotonic()
        total = int(a.sum())
        secs = time.monotonic() - t0
        barrier.wait()  # every worker has it mapped and faulted in
        rss, pss = mapping_kib(name)
        whole = process_pss_kib()
        barrier.wait()  # nobody unmaps before everyone has measured
        out.put({"pid": os.getpid(), "sum": total, "seconds": secs, "rss_kib": rss,
                 "pss_kib": pss, "process_pss_kib": whole})
        del a


def run(size, workers, name=None):
    name = name or "shared-numpy-%d" % os.getpid()
    n = size // 8
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.u64")
        np.arange(n, dtype=np.uint64).tofile(path)
        loaded = bulkmap.load(path, name, large_pages="off")
    try:
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(workers), ctx.Queue()
        procs = [ctx.Process(target=worker, args=(name, barrier, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit("a worker failed")
    finally:
        bulkmap.rm(name)
    expect = n * (n - 1) // 2
    return {
        "bytes": loaded["bytes"],
        "workers": workers,
        "sums_ok": all(r["sum"] == expect for r in results),
        "rss_kib": [r["rss_kib"] for r in results],
        "pss_kib": [r["pss_kib"] for r in results],
        "total_pss_kib": sum(r["pss_kib"] for r in results),
        "total_rss_kib": sum(r["rss_kib"] for r in results),
        "total_process_pss_kib": sum(r["process_pss_kib"] for r in results),
        "sum_seconds": [round(r["seconds"], 3) for r in results],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1G")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(bulkmap.parse_size(args.size), args.workers)
    if args.json:
        print(json.dumps(r))
        return
    print("dataset: %d bytes (%.0f KiB), %d workers" % (r["bytes"], r["bytes"] / 1024, r["workers"]))
    for rss, pss in zip(r["rss_kib"], r["pss_kib"]):
        print("  worker: Rss %d KiB  Pss %d KiB" % (rss, pss))
    print("total Pss of the section: %d KiB = %.2f copies (total Rss %.2f copies); sums %s"
          % (r["total_pss_kib"], r["total_pss_kib"] * 1024 / r["bytes"],
             r["total_rss_kib"] * 1024 / r["bytes"], "ok" if r["sums_ok"] else "WRONG"))
    print("total Pss of the %d processes (smaps_rollup, Python and numpy included): %d KiB"
          % (r["workers"], r["total_process_pss_kib"]))


if __name__ == "__main__":
    sys.exit(main())
