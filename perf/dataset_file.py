"""The dataset is the file (issue 24): bulkmap's calls against the peers a user would reach
for, in one process, interleaved round by round so that the machine's noise falls on both.

    PYTHONPATH=build/default/python /usr/bin/python3 perf/dataset_file.py [ROUNDS]

1. bulkmap.open(name).array() of a published npy against numpy.load(path, mmap_mode='r')
   of the same file (/dev/shm/NAME itself), each a batch of calls a round.
2. bulkmap.publish(name, a, replace=True) of a 64 MiB float32 array against np.save to a
   temporary file in /dev/shm and os.replace onto the name (what a user would do by hand).
Prints, for each, the per-call medians and the median ratio bulkmap/peer with its spread
(min, max) over the rounds, as one JSON object last."""
import json
import os
import statistics
import sys
import time

import numpy as np

import bulkmap

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 9


def per_call(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def paired(a, b, n):
    """ROUNDS rounds of a batch of n calls of a and of b, alternating which goes first."""
    ta, tb, ratios = [], [], []
    for r in range(ROUNDS):
        if r % 2 == 0:
            x, y = per_call(a, n), per_call(b, n)
        else:
            y, x = per_call(b, n), per_call(a, n)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y)
    return {"bulkmap_s": statistics.median(ta), "peer_s": statistics.median(tb),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "rounds": ROUNDS, "calls_per_round": n}


def main():
    out = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    pid = os.getpid()
    # 1. open + array of a 16 MiB npy.
    name = "perf-open-%d" % pid
    a = np.arange(4 << 20, dtype=np.float32)
    bulkmap.publish(name, a, large_pages="off")
    path = "/dev/shm/" + name

    def bm_open():
        with bulkmap.open(name) as ds:
            x = ds.array()
            x[0]
            del x

    def np_open():
        x = np.load(path, mmap_mode="r")
        x[0]
        del x

    try:
        out["open_array"] = paired(bm_open, np_open, 200)
    finally:
        bulkmap.rm(name)
    # 2. publish(replace=True) of 64 MiB against np.save + os.replace.
    big = np.random.default_rng(1).random(16 << 20, dtype=np.float32)  # 64 MiB
    name = "perf-pub-%d" % pid
    peer = "/dev/shm/perf-peer-%d.npy" % pid
    bulkmap.publish(name, big, large_pages="off")

    def bm_publish():
        bulkmap.publish(name, big, large_pages="off", replace=True)

    def np_publish():
        tmp = peer + ".tmp"
        with open(tmp, "wb") as f:
            np.save(f, big)
        os.replace(tmp, peer)

    try:
        np_publish()
        out["publish_replace_64MiB"] = paired(bm_publish, np_publish, 3)
    finally:
        bulkmap.rm(name)
        for p in (peer, peer + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)
    for k in ("open_array", "publish_replace_64MiB"):
        r = out[k]
        print("%-22s bulkmap %9.3f ms  peer %9.3f ms  ratio median %.2f (min %.2f, max %.2f) over %d rounds"
              % (k, r["bulkmap_s"] * 1e3, r["peer_s"] * 1e3, r["ratio_median"], r["ratio_min"],
                 r["ratio_max"], r["rounds"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
