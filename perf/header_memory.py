"""Memory and time of a large safetensors header (issue 25): a file whose header is about
26 MB (400,000 tensors) and one near the 100 MB cap (the safetensors crate's), loaded with
`bulkmap load`, then `bulkmap stat --json` of the dataset, each under /usr/bin/time -v (peak
resident set, wall time). Then the load again under `ulimit -v` below what it needs: it must
say out of memory, not "not valid JSON". Prints a Markdown table.

    python3 perf/header_memory.py BULKMAP [DIR]
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile


def write_safetensors(path, n):
    """n tensors of one F32 each, names t000000.., offsets in order."""
    parts, off = ['{'], 0
    for i in range(n):
        parts.append('"t%07d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]},' % (i, off, off + 4))
        off += 4
    parts.append('"__metadata__":{"format":"pt"}}')
    h = "".join(parts).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(b"\0" * off)
    return len(h)


def timed(cmd, limit_kib=None):
    pre = "ulimit -v %d; " % limit_kib if limit_kib else ""
    p = subprocess.run(["sh", "-c", pre + 'exec /usr/bin/time -v "$@"', "sh", *cmd],
                       capture_output=True, text=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return p.returncode, rss, wall, p.stderr.splitlines()[0] if p.stderr else ""


def main():
    tool = sys.argv[1]
    d = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp()
    rows = []
    for label, n in (("26 MB", 400000), ("near the 100 MB cap", 1300000)):
        path = os.path.join(d, "h%d.safetensors" % n)
        hlen = write_safetensors(path, n)
        name = "bmperf-header-%d-%d" % (os.getpid(), n)
        rc, rss, wall, _ = timed([tool, "load", path, "--name", name, "--large-pages", "off",
                                  "--no-progress", "--json"])
        assert rc == 0, rc
        rows.append((label, hlen, n, "load", rss, wall))
        rc, rss, wall, _ = timed([tool, "stat", name, "--json"])
        assert rc == 0, rc
        rows.append((label, hlen, n, "stat", rss, wall))
        subprocess.run([tool, "rm", name], check=True)
        # Under a limit below what the load needs: out of memory, said so.
        limit = max(rows[-2][4] // 2, 65536)
        rc, _, _, first = timed([tool, "load", path, "--name", name, "--large-pages", "off",
                                 "--no-progress"], limit_kib=limit)
        subprocess.run([tool, "rm", name], capture_output=True)
        rows.append((label, hlen, n, "load under ulimit -v %d KiB: exit %d, %s" % (limit, rc, first),
                     None, None))
        os.unlink(path)
    print("| header | bytes | tensors | command | peak RSS | wall |")
    print("|---|---|---|---|---|---|")
    for label, hlen, n, what, rss, wall in rows:
        print("| %s | %d | %d | %s | %s | %s |" % (label, hlen, n, what,
              "%.0f MiB" % (rss / 1024) if rss else "", "%.2f s" % wall if wall else ""))


if __name__ == "__main__":
    main()
