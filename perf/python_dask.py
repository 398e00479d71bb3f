#!/usr/bin/env python3
"""bulkmap.dask.scan on a distributed.LocalCluster of 2 worker processes against
bulkmap.scan in one process, on the same file (warm: re-read before each run).

    PYTHONPATH=build/default/python python3 perf/python_dask.py FILE [--chunk 1G]
        [--count LITERAL] [--runs 5] [--scheduler ADDRESS]

Checks that the totals are equal and that each range's XXH3 is bulkmap.scan's of that
range; prints the medians of the wall-clock times (the cluster started beforehand).
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import bulkmap
import bulkmap.dask


def warm(path):
    subprocess.run("cat '%s' > /dev/null" % path, shell=True, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--chunk", default="1G")
    ap.add_argument("--count", default="12345")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scheduler", default=None, help="a scheduler's address instead of a LocalCluster")
    a = ap.parse_args()
    import distributed
    if a.scheduler:
        cluster, client = None, distributed.Client(a.scheduler)
    else:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        client = distributed.Client(cluster)
    one_t, dask_t = [], []
    for i in range(a.runs + 1):
        warm(a.file)
        t0 = time.monotonic()
        one = bulkmap.scan(a.file, count=a.count)
        t1 = time.monotonic()
        warm(a.file)
        t2 = time.monotonic()
        d = bulkmap.dask.scan(a.file, chunk=a.chunk, client=client, count=a.count)
        t3 = time.monotonic()
        assert d["total"] == {"bytes": one["bytes"], "lines": one["lines"], "count": one["count"]}, (d["total"], one)
        if i > 0:
            one_t.append(t1 - t0)
            dask_t.append(t3 - t2)
    for r in d["ranges"]:
        s = bulkmap.scan(a.file, offset=r["offset"], length=r["length"], lines=False)
        assert s["xxh3"] == r["xxh3"]
    print(json.dumps({"file": a.file, "bytes": one["bytes"], "chunk": a.chunk,
                      "ranges": len(d["ranges"]), "total": d["total"],
                      "single_process_seconds": statistics.median(one_t),
                      "dask_seconds": statistics.median(dask_t),
                      "single_all": one_t, "dask_all": dask_t,
                      "loadavg": os.getloadavg()}, indent=1))
    client.close()
    if cluster:
        cluster.close()


if __name__ == "__main__":
    main()
