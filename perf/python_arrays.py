#!/usr/bin/env python3
"""One float32 .npy and N worker processes, three ways side by side in one run (issue 21):
bulkmap (load the file once, each worker opens the dataset and takes ds.array()),
numpy.load(path, mmap_mode='r') in each worker, and multiprocessing.shared_memory (the
parent copies the array into a SharedMemory block, each worker attaches to it).

    PYTHONPATH=build/h-py21/python python3 perf/python_arrays.py [--size 2G] [--workers 4]
        [--dir /var/tmp] [--epoch-batch 256] [--json]

For each way it reports: the lines of user code (the parent's and a worker's, as written
below), the parent's setup time, the time from "go" until all workers hold the array (the
workers are started and have imported numpy and bulkmap before), the sum of the workers'
Pss (/proc/PID/smaps_rollup, read by each worker once every worker has read the whole
array, all still alive), what is left of the file in the page cache (fincore) and the
memory the way holds in all (the file's cached pages plus the shared copy). Before each
way the file's pages are dropped from the page cache (posix_fadvise DONTNEED; the file is
written and synced first), so each starts cold. Then torch.utils.data.DataLoader epochs
(N workers, batches of --epoch-batch rows, torch.from_numpy of each slice, the batches
sent to the parent) over the bulkmap dataset and over numpy.load(mmap_mode='r'), both
warm: one warm-up epoch, then --epoch-rounds rounds of one epoch each, interleaved (the
order swapped every round); the median is reported.
"""
import argparse
import inspect
import json
import multiprocessing as mp
from multiprocessing import shared_memory
import os
import subprocess
import sys
import time
import uuid
import warnings

import numpy as np

import bulkmap

COLS = 1024


# --- The three ways, as a user writes them. Each parent returns what the workers need. ---

def bulkmap_parent(path, name):
    bulkmap.load(path, name)
    return name


def bulkmap_worker(name):
    ds = bulkmap.open(name)
    return ds.array()


def numpy_parent(path, name):
    return path


def numpy_worker(path):
    return np.load(path, mmap_mode="r")


def shm_parent(path, name):
    src = np.load(path, mmap_mode="r")
    shm = shared_memory.SharedMemory(name=name, create=True, size=src.nbytes)
    np.ndarray(src.shape, src.dtype, buffer=shm.buf)[:] = src
    shm.close()
    return (name, src.shape, src.dtype.str)


def shm_worker(arg):
    name, shape, dtype = arg
    shm = shared_memory.SharedMemory(name=name)
    return np.ndarray(shape, dtype, buffer=shm.buf), shm


WAYS = [("bulkmap", bulkmap_parent, bulkmap_worker),
        ("numpy.load(mmap_mode='r')", numpy_parent, numpy_worker),
        ("multiprocessing.shared_memory", shm_parent, shm_worker)]


def code_lines(fn):
    """Lines of a function's body (not its def line), blank lines not counted."""
    src = inspect.getsource(fn).splitlines()[1:]
    return sum(1 for line in src if line.strip())


# --- Measurement. ---

def rollup_pss_kib():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def worker(fn, arg, go, barrier, q):
    q.put(("base", rollup_pss_kib()))
    go.wait()
    held = fn(arg)
    a = held[0] if isinstance(held, tuple) else held
    q.put(("held", time.monotonic()))
    a.sum(dtype=np.float64)  # every page read once
    barrier.wait(600)
    q.put(("pss", rollup_pss_kib()))
    barrier.wait(600)


def cached_bytes(path):
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def make_npy(path, size):
    rows = size // 4 // COLS
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, COLS))
    step = 1 << 16
    for r in range(0, rows, step):
        n = min(step, rows - r)
        a[r:r + n] = (np.arange(r * COLS, (r + n) * COLS, dtype=np.float64) % 4099).reshape(n, COLS)
    a.flush()
    del a
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return rows


def run_way(label, parent, wfn, path, nworkers):
    ctx = mp.get_context("fork")
    name = "perf-arrays-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6])
    drop_cache(path)
    go, barrier, q = ctx.Event(), ctx.Barrier(nworkers), ctx.Queue()
    t0 = time.monotonic()
    arg = parent(path, name)
    setup = time.monotonic() - t0
    shared = 0
    if label == "bulkmap":
        shared = bulkmap.stat(name)["section_bytes"]
    elif label.startswith("multiprocessing"):
        shared = os.stat("/dev/shm/" + name).st_size
    procs = [ctx.Process(target=worker, args=(wfn, arg, go, barrier, q)) for _ in range(nworkers)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every worker forked and waiting
    t1 = time.monotonic()
    go.set()
    got = {"base": [], "held": [], "pss": []}
    while len(got["pss"]) < nworkers:
        kind, v = q.get(timeout=600)
        got[kind].append(v)
    held, pss = got["held"], got["pss"]
    for p in procs:
        p.join(600)
    cached = cached_bytes(path)
    r = {"way": label, "lines": code_lines(parent) + code_lines(wfn),
         "setup_seconds": round(setup, 3), "workers_hold_seconds": round(max(held) - t1, 3),
         "total_seconds": round(setup + max(held) - t1, 3),
         "workers_pss_mib": round(sum(pss) / 1024, 1),
         "workers_pss_added_mib": round((sum(pss) - sum(got["base"])) / 1024, 1),
         "file_cached_mib": round(cached / 2**20, 1),
         "ram_mib": round((cached + shared) / 2**20, 1)}
    return r, name


def epoch(torch, make_array, rows, batch, nworkers):
    class Rows(torch.utils.data.Dataset):
        def __init__(self):
            self.a = None

        def __len__(self):
            return -(-rows // batch)

        def __getitem__(self, i):
            if self.a is None:
                self.a = make_array()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # from_numpy of a read-only array
                return torch.from_numpy(self.a[i * batch:(i + 1) * batch])

    loader = torch.utils.data.DataLoader(Rows(), batch_size=None, num_workers=nworkers,
                                         multiprocessing_context="fork")
    t0 = time.monotonic()
    total = 0.0
    for t in loader:
        total += float(t[:, 0].sum())
    return time.monotonic() - t0, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="2G")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--epoch-batch", type=int, default=256)
    ap.add_argument("--epoch-rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = bulkmap.parse_size(args.size)
    path = os.path.join(args.dir, "perf-arrays-%d.npy" % os.getpid())
    names = []
    try:
        rows = make_npy(path, size)
        results = []
        for label, parent, wfn in WAYS:
            r, name = run_way(label, parent, wfn, path, args.workers)
            names.append((label, name))
            results.append(r)
        out = {"bytes": os.path.getsize(path), "workers": args.workers, "ways": results}
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            bm_name = names[0][1]
            e = {}
            makers = [("bulkmap", lambda: bulkmap.open(bm_name).array()),
                      ("numpy.load(mmap_mode='r')", lambda: np.load(path, mmap_mode="r"))]
            epoch(torch, makers[1][1], rows, args.epoch_batch, args.workers)  # warm-up
            for k in range(args.epoch_rounds):  # interleaved, the order swapped each round
                for label, make in makers[::1 if k % 2 == 0 else -1]:
                    secs, total = epoch(torch, make, rows, args.epoch_batch, args.workers)
                    e.setdefault(label, {"runs": [], "check": total})["runs"].append(round(secs, 3))
            for v in e.values():
                v["seconds"] = sorted(v["runs"])[len(v["runs"]) // 2]  # the median
            out["epoch"] = {"batch_rows": args.epoch_batch, "ways": e}
    finally:
        for label, name in names:
            try:
                if label == "bulkmap":
                    bulkmap.rm(name)
                elif label.startswith("multiprocessing"):
                    os.unlink("/dev/shm/" + name)
            except (OSError, bulkmap.Error):
                pass
        if os.path.exists(path):
            os.unlink(path)
    if args.json:
        print(json.dumps(out))
        return
    print("%d bytes, %d workers" % (out["bytes"], out["workers"]))
    print("| way | lines | setup | workers hold | total | workers' Pss (added) | file cached "
          "| RAM in all |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %d | %.3f s | %.3f s | %.3f s | %.0f MiB (%.0f) | %.0f MiB | %.0f MiB |" % (
            r["way"], r["lines"], r["setup_seconds"], r["workers_hold_seconds"],
            r["total_seconds"], r["workers_pss_mib"], r["workers_pss_added_mib"],
            r["file_cached_mib"], r["ram_mib"]))
    if "epoch" in out:
        for label, e in out["epoch"]["ways"].items():
            print("epoch %s: median %.2f s of %s" % (label, e["seconds"], e["runs"]))


if __name__ == "__main__":
    main()
