"""bulkmap.dask: one scan spread over a Dask cluster (docs/design.md section 5), and one load on
every host of a cluster (docs/design.md section 7).

    bulkmap.dask.load(path, name, client, large_pages="auto", mode=0o600, replace=False)
      -> {"hosts": [{"host", "state", "xxh3", "page_size", "error"}, ...]}

    bulkmap.dask.scan(paths, chunk="1G", client=None, hash=True, lines=True, count=None)
      -> {"total": {"bytes", "lines", "count"},
          "ranges": [{"file", "offset", "length", "xxh3", "lines", "count"}, ...]}

Each file is cut into byte ranges of `chunk` bytes, and each range is scanned by one task
(the library's bm_scan, threads and all, on whichever worker gets it). The workers must see
the files at the same paths (a shared or replicated file system).

Bounds: `chunk` is at least MIN_CHUNK (1 MiB; a smaller one is a ValueError), and a scan
makes at most MAX_RANGES (10,000) ranges, or one a file when there are more files: when the
files would need more, the chunk grows (to a multiple of 1 MiB) until they fit.

Line counts and byte counts add up. A literal count does not simply add up: the matches are
found left to right without overlap, so where the search resumes in a range depends on the
last match of the ranges before it (think of "aa" in "aaaa" cut after the first "a"). Each
task therefore hands back its range's part (the library's bm_scan_part_t, as bytes: the
range's count for every place the search could resume in it), and the client folds the
parts of a file in order with the library's own fold (bm_scan_part_fold): the total equals
a single-process scan of the file. Hashes do not combine: each range has its own XXH3-64
of its bytes, and the XXH3 of a whole file cannot be made from them (XXH3 is not a
composable hash); scan the whole file as one range (chunk at least the file's size) to get it.
"""
import os

from . import _bulkmap

__all__ = ["scan", "plan", "fold", "scan_range", "load", "hosts", "MIN_CHUNK", "MAX_RANGES"]

MIN_CHUNK = 1 << 20
MAX_RANGES = 10000


def _chunk_bytes(chunk, min_chunk):
    n = _bulkmap.parse_size(chunk)
    if n < max(min_chunk, 1):
        raise ValueError("chunk %r: at least %d bytes (a task a range: smaller ranges only "
                         "add tasks)" % (chunk, max(min_chunk, 1)))
    return n


def plan(paths, chunk="1G", min_chunk=MIN_CHUNK, max_ranges=MAX_RANGES):
    """The ranges a scan of paths is cut into: [(file, offset, length), ...], in file order.
    An empty file is one empty range. Sizes are read here, on the client. chunk below
    min_chunk is a ValueError; more than max(max_ranges, number of files) ranges make the
    chunk grow until they fit. (min_chunk and max_ranges are for tests of the fold.)"""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    step = _chunk_bytes(chunk, min_chunk)
    files = [(os.fsdecode(p), os.stat(p).st_size) for p in paths]

    def count(step):
        return sum(max(1, -(-size // step)) for _, size in files)

    if count(step) > max(max_ranges, len(files)):
        # Each file's ranges are at most size/step + 1: this step fits them all.
        room = max(max_ranges - len(files), 1)
        total = sum(size for _, size in files)
        grain = min(MIN_CHUNK, step)
        step = max(step, -(-total // room))
        step = -(-step // grain) * grain
    out = []
    for p, size in files:
        if size == 0:
            out.append((p, 0, 0))
        for off in range(0, size, step):
            out.append((p, off, min(step, size - off)))
    return out


def scan_range(path, offset, length, hash=True, lines=True, count=None, threads=None,
               window=None):
    """One task: the scan of [offset, offset+length) of path; with count, its "part" (bytes)
    for fold, whose matches may run on past the range's end."""
    return _bulkmap._scan_range(path, offset, length, hash=hash, lines=lines, count=count,
                                threads=threads, window=window)


def fold(results, count=None):
    """Folds task results (in plan order) into {"total": ..., "ranges": [...]}: the literal
    count of each range given the ranges before it in the same file (the library's fold)."""
    total = {"bytes": 0}
    ranges = []
    counts = []
    if count is not None:
        # A file's ranges, in order from its start: matches never run from one file into
        # the next.
        group = []
        for r in results:
            if r["offset"] == 0 and group:
                counts += [c[0] for c in _bulkmap._fold(group)]
                group = []
            group.append(r["part"])
        if group:
            counts += [c[0] for c in _bulkmap._fold(group)]
    for i, r in enumerate(results):
        out = {"file": r["file"], "offset": r["offset"], "length": r["length"]}
        for key in ("xxh3", "lines"):
            if key in r:
                out[key] = r[key]
        if count is not None:
            out["count"] = counts[i]
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
    "256M"; at least MIN_CHUNK, 1 MiB: a smaller one is a ValueError), one Dask task a
    range, at most MAX_RANGES (10,000) ranges or one a file (the chunk grows to fit), on
    `client` (a distributed.Client), else on the client this process already has
    (distributed.get_client()), else on Dask's local threaded scheduler (the C code releases
    the GIL). Keys as in the module's doc; xxh3 is left out with hash=False, lines with
    lines=False, count without count (as the tool's JSON)."""
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


def hosts(client):
    """The cluster's workers grouped by host: {host address: [worker address, ...]}, each
    list sorted (the scheduler's view: workers on one machine share a host address)."""
    out = {}
    for addr, info in client.scheduler_info()["workers"].items():
        out.setdefault(info.get("host") or addr, []).append(addr)
    return {h: sorted(w) for h, w in sorted(out.items())}


def _load_here(path, name, large_pages, mode, replace, host):
    """One host's load, run on one of its workers: the host's result, or its error text."""
    try:
        r = _bulkmap.load(path, name, large_pages=large_pages, mode=mode, replace=replace)
    except Exception as e:  # the host's error goes back as text, not as a failed task
        code = getattr(e, "code", None)
        return {"host": host, "state": None, "xxh3": None, "page_size": None,
                "error": "%s (%s)" % (e, code) if code else "%s: %s" % (type(e).__name__, e)}
    return {"host": host, "state": r["state"], "xxh3": r["xxh3"], "page_size": r["page_size"],
            "error": None}


def load(path, name, client=None, large_pages="auto", mode=0o600, replace=False):
    """Loads the file at `path` into dataset `name` once on every distinct host of the
    cluster (workers grouped by their host address; one task a host, pinned to the host's
    first worker), as bulkmap.load would there, with replace passed through. The file must
    be reachable at the same path from every host (a shared or replicated file system): each
    host reads its own copy of the bytes. client: a distributed.Client, else the one this
    process has (distributed.get_client()); with none, this machine alone is loaded.
    Returns {"hosts": [{"host", "state", "xxh3", "page_size", "error"}, ...]} sorted by
    host: "error" is None on success, else the host's error text (state, xxh3 and page_size
    then None); a host failing does not stop the others."""
    path = os.fsdecode(path)
    if client is None:
        client = _default_client()
    if client is None:
        import socket
        return {"hosts": [_load_here(path, name, large_pages, mode, replace, socket.gethostname())]}
    futures = []
    for host, workers in hosts(client).items():
        futures.append((host, client.submit(_load_here, path, name, large_pages, mode, replace,
                                            host, workers=[workers[0]],
                                            allow_other_workers=False, pure=False)))
    out = []
    for host, f in futures:
        try:
            out.append(f.result())
        except Exception as e:  # the worker died or the task could not run there
            out.append({"host": host, "state": None, "xxh3": None, "page_size": None,
                        "error": "%s: %s" % (type(e).__name__, e)})
    return {"hosts": out}
