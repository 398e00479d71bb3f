#!/usr/bin/env python3
"""bulkmap.scan (Python) against `bulkmap scan` (the tool) on the same file, interleaved.

    PYTHONPATH=build/default/python python3 perf/python_scan.py FILE [--tool PATH]
        [--runs 7] [--count LITERAL]

Each round re-reads the file (cat FILE > /dev/null: the page cache here is evicted when
idle) before each of the two, then runs the tool (`scan --json --no-progress`) and a fresh
python3 calling bulkmap.scan. Reported: the medians of the scan's own `seconds`, of the
bulkmap.scan() call as Python times it (opening the file and making the dict included), of
the wall-clock time of the whole command, and of `python3 -c "import bulkmap"` alone.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def warm(path):
    subprocess.run("cat '%s' > /dev/null" % path, shell=True, check=True)


def timed(cmd, env=None):
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return time.monotonic() - t0, json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--tool", default=os.path.join(HERE, "..", "build", "default", "tools", "bulkmap"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--count", default=None)
    a = ap.parse_args()
    tool_cmd = [a.tool, "scan", a.file, "--json", "--no-progress"]
    if a.count:
        tool_cmd += ["--hash", "--lines", "--count", a.count]
    py = ("import bulkmap, json, sys, time; t = time.monotonic(); "
          "r = bulkmap.scan(sys.argv[1], count=%r); r['call'] = time.monotonic() - t; "
          "print(json.dumps(r))" % a.count)
    py_cmd = [sys.executable, "-c", py, a.file]
    rows = {"tool": [], "python": []}
    ref = None
    for i in range(a.runs + 1):
        order = [("tool", tool_cmd), ("python", py_cmd)]
        if i % 2:
            order.reverse()
        for who, cmd in order:
            warm(a.file)
            wall, r = timed(cmd)
            key = (r.get("xxh3"), r.get("lines"), r.get("count"))
            assert ref is None or key == ref, (who, key, ref)
            ref = key
            if i > 0:  # the first round is a warm-up
                rows[who].append((r["seconds"], wall, r.get("call")))
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import bulkmap"], check=True)
        if i > 0:
            rows.setdefault("python_start", []).append(time.monotonic() - t0)
    med = {w: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
               statistics.median(x[2] for x in v) if v[0][2] is not None else None)
           for w, v in rows.items() if w != "python_start"}
    size = os.path.getsize(a.file)
    print(json.dumps({"file": a.file, "bytes": size, "runs": a.runs, "result": ref,
                      "loadavg": os.getloadavg(),
                      "tool": {"seconds": med["tool"][0], "wall": med["tool"][1]},
                      "python": {"seconds": med["python"][0], "call": med["python"][2],
                                 "wall": med["python"][1],
                                 "start_and_import": statistics.median(rows["python_start"])},
                      "ratio_seconds": med["python"][0] / med["tool"][0],
                      "ratio_wall": med["python"][1] / med["tool"][1],
                      "all": rows}, indent=1))


if __name__ == "__main__":
    main()
