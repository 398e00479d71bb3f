"""One copy in RAM: worker processes reading one dataset through numpy (the README's
example, python/examples/shared_numpy.py), measured by the kernel's Pss."""
import json
import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "python", "examples",
                       "shared_numpy.py")


def test_four_processes_share_one_copy():
    size = 64 << 20
    out = subprocess.run([sys.executable, EXAMPLE, "--size", str(size), "--workers", "4",
                          "--json"], capture_output=True, text=True, check=True, timeout=300)
    r = json.loads(out.stdout)
    assert r["sums_ok"]
    assert r["bytes"] == size
    kib = size // 1024
    # Every worker sees the whole section resident...
    assert all(rss >= 0.99 * kib for rss in r["rss_kib"]), r
    # ...and the proportional shares add up to one copy, not four.
    assert 0.95 * kib <= r["total_pss_kib"] <= 1.10 * kib, r
