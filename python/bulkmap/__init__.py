"""bulkmap from Python: scan files, load them into named shared sections and map those
read-only with zero copies (DESIGN section 5).

    bulkmap.scan(path, offset=0, length=None, hash=True, lines=True, count=None) -> dict
    bulkmap.load(path, name, large_pages="auto", mode=0o600, replace=False,
                 remove_on_exit=False) -> dict
    bulkmap.open(name, wait=None) -> Dataset   (read-only, buffer protocol, context manager;
                                    wait=SECONDS: until it is ready)
    bulkmap.stat(name) -> dict      bulkmap.ls() -> {"sections": [...]}   bulkmap.rm(name)
    bulkmap.rm(abandoned=True) -> {"removed": [...], "freed_bytes": N}

Dicts carry the keys of the tool's --json output; scan and load are the library's bm_scan
and bm_dataset_load, with its limits (threads 1..SCAN_MAX_THREADS). Failures raise
bulkmap.Error with .code ("ENOENT", "EINCOMPLETE", ...) and .os_error. bulkmap.dask.scan
spreads a scan over a Dask cluster (import bulkmap.dask).
"""
from ._bulkmap import SCAN_MAX_THREADS, Dataset, Error, library_version, parse_size
from ._bulkmap import load, ls, rm, scan, stat
from ._bulkmap import open  # noqa: A004 (bulkmap.open, as DESIGN names it)

# What an Error made by hand carries (the library's always set all three).
Error.code = None
Error.os_error = 0
Error.context = None

__version__ = library_version
__all__ = ["SCAN_MAX_THREADS", "Dataset", "Error", "load", "ls", "open", "parse_size", "rm", "scan", "stat"]
