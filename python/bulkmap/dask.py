"""bulkmap.dask: one scan spread over a Dask cluster (DESIGN section 5).

    bulkmap.dask.scan(paths, chunk="1G", client=None, hash=True, lines=True, count=None)
      -> {"total": {"bytes", "lines", "count"},
          "ranges": [{"file", "offset", "length", "xxh3", "lines", "count"}, ...]}

Each file is cut into byte ranges of `chunk` bytes, and each range is scanned by one task
(bulkmap.scan's C code, threads and all, on whichever worker gets it). The workers must see
the files at the same paths (a shared or replicated file system).

Line counts and byte counts add up. A literal count does not simply add up: the matches are
found left to right without overlap, so where the search resumes in a range depends on the
last match of the ranges before it (think of "aa" in "aaaa" cut after the first "a"). Each
task therefore returns its range's count for every place the search could resume there
(the "phases" 0..len(literal)-1 past the range's start, grouped into a few intervals), and
the client folds the ranges of a file in order, starting at phase 0: the total equals a
single-process scan of the file. Hashes do not combine: each range has its own XXH3-64 of
its bytes, and the XXH3 of a whole file cannot be made from them (XXH3 is not a
composable hash); scan the whole file as one range (chunk at least the file's size) to get it.
"""
import os

from . import _bulkmap

__all__ = ["scan", "plan", "fold"]


def _chunk_bytes(chunk):
    n = _bulkmap.parse_size(chunk)
    if n == 0:
        raise ValueError("chunk must be at least one byte")
    return n


def plan(paths, chunk="1G"):
    """The ranges a scan of paths is cut into: [(file, offset, length), ...], in file order.
    An empty file is one empty range. Sizes are read here, on the client."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    step = _chunk_bytes(chunk)
    out = []
    for p in paths:
        p = os.fsdecode(p)
        size = os.stat(p).st_size
        if size == 0:
            out.append((p, 0, 0))
        for off in range(0, size, step):
            out.append((p, off, min(step, size - off)))
    return out


def scan_range(path, offset, length, hash=True, lines=True, count=None, threads=None,
               window=None):
    """One task: the scan of [offset, offset+length) of path, with the literal's count as a
    function of the phase ("phases": [(lo, hi, count, value, shift), ...])."""
    return _bulkmap._scan_range(path, offset, length, hash=hash, lines=lines, count=count,
                                threads=threads, window=window)


def _eval(phases, k):
    for lo, hi, n, value, shift in phases:
        if lo <= k <= hi:
            return n, (k - value if shift else value)
    raise AssertionError("phase %d outside the range's function" % k)


def fold(results, count=None):
    """Folds task results (in plan order) into {"total": ..., "ranges": [...]}: the literal
    count of each range for the phase the ranges before it in the same file leave."""
    total = {"bytes": 0}
    ranges = []
    phase = 0
    for r in results:
        if r["offset"] == 0:
            phase = 0  # a file's first range: matches never run from one file into another
        out = {"file": r["file"], "offset": r["offset"], "length": r["length"]}
        for key in ("xxh3", "lines"):
            if key in r:
                out[key] = r[key]
        if count is not None:
            n, phase = _eval(r["phases"], phase)
            out["count"] = n
        ranges.append(out)
        total["bytes"] += r["bytes"]
        if "lines" in r:
            total["lines"] = total.get("lines", 0) + r["lines"]
        if count is not None:
            total["count"] = total.get("count", 0) + out["count"]
    return {"total": total, "ranges": ranges}


def _default_client():
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def scan(paths, chunk="1G", client=None, hash=True, lines=True, count=None, threads=None):
    """Scans paths (one path or a list) as byte ranges of `chunk` (bytes, or a SIZE such as
    "256M"), one Dask task a range, on `client` (a distributed.Client), else on the client
    this process already has (distributed.get_client()), else on Dask's local threaded
    scheduler (the C code releases the GIL). Keys as in the module's doc; xxh3 is left out
    with hash=False, lines with lines=False, count without count (as the tool's JSON)."""
    if count is not None and len(count) == 0:
        raise ValueError("count: the literal is empty")
    if not hash and not lines and count is None:
        hash = lines = True  # as the tool: asked for nothing, it hashes and counts lines
    ranges = plan(paths, chunk)
    if client is None:
        client = _default_client()
    args = [(p, off, n, hash, lines, count, threads) for p, off, n in ranges]
    if client is not None:
        futures = [client.submit(scan_range, *a, pure=False) for a in args]
        results = client.gather(futures)
    else:
        import dask
        results = dask.compute(*[dask.delayed(scan_range, pure=False)(*a) for a in args])
    return fold(results, count)
