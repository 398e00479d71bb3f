"""bulkmap from Python: scan files, load them into named shared sections and map those
read-only with zero copies (docs/design.md section 5).

    bulkmap.scan(path, offset=0, length=None, hash=True, lines=True, count=None) -> dict
    bulkmap.load(path, name, large_pages="auto", mode=0o600, group=None, threads=None,
                 replace=False, remove_on_exit=False, format="auto", place=None) -> dict
                                   (the options of `bulkmap load`; its errors' words)
    bulkmap.open(name, verify=False, wait=None, copy_on_write=False) -> Dataset
                                   (read-only, buffer protocol, context manager;
                                    wait=SECONDS: until it is ready)
    bulkmap.stat(name) -> dict      bulkmap.ls() -> {"sections": [...]}   bulkmap.rm(name)
    bulkmap.rm(abandoned=True) -> {"removed": [...], "freed_bytes": N}

Typed datasets (docs/design.md section 6): a dataset holding an npy file (or an array published
from memory) gives ds.array(), one holding safetensors ds.arrays() ({name: array}), numpy
views of the section (zero copy, read-only; the dataset stays open while they live). BF16
and F8 tensors come as uint16 / uint8 views; ds.dtype / ds.dtypes name the real type.
ds.tensors() ({name: torch.Tensor}) and ds.tensor() give torch tensors with the file's
dtypes (bfloat16 included) over a private copy-on-write mapping (zero copy; writes stay in
the process); dtypes torch lacks come as the signed integers of their width. ds.metadata
is a safetensors header's __metadata__ ({} when none).

    bulkmap.open(name, copy_on_write=True)      private, writable arrays (MAP_PRIVATE)
    bulkmap.publish(name, obj, ...) -> dict      any buffer; an ndarray keeps dtype/shape
    bulkmap.create(name, size | dtype=, shape=) -> writable Dataset, then ds.publish()

A Dataset pickles as its name and options and opens again where it is unpickled.

Dicts carry the keys of the tool's --json output; scan and load are the library's bm_scan
and bm_dataset_load, with its limits (threads 1..SCAN_MAX_THREADS). Failures raise
bulkmap.Error with .code ("ENOENT", "EINCOMPLETE", ...) and .os_error. bulkmap.dask.scan
spreads a scan over a Dask cluster (import bulkmap.dask).
"""
from ._bulkmap import SCAN_MAX_THREADS, Dataset, Error, library_version, parse_size
from ._bulkmap import load, ls, rm, scan, stat
from ._bulkmap import open  # noqa: A004 (bulkmap.open, as docs/design.md names it)
from ._bulkmap import create
import sys as _sys
from . import _bulkmap

# What an Error made by hand carries (the library's always set all three).
Error.code = None
Error.os_error = 0
Error.context = None



def publish(name, obj, mode=0o600, group=None, large_pages="auto", replace=False,
            remove_on_exit=False, dtype=None, shape=None, order="C", format="auto"):
    """Publishes the bytes of obj (any buffer: bytes, bytearray, memoryview, mmap, an
    ndarray) as a new dataset NAME, ready when this returns; returns a dict as load() does.
    A numpy array keeps its dtype, shape and order: the payload is an npy file (the
    library's header, then the bytes), so ds.array() and plain numpy.load read it (a
    non-contiguous array is copied to C order first). dtype= names a type numpy lacks for
    an array of its unsigned view (dtype="BF16" for a uint16 array), or gives raw bytes a
    layout (shape= and order= with it; shape None: 1-D). Other buffers are judged by their magic as a file is (format="auto": the bytes
    of an npy or safetensors file give that format; "raw" takes them as they are). The
    library computes the checksum from the section; on failure nothing is left.
    replace=True swaps a new generation in under readers; remove_on_exit=True removes the
    name when this process (and the children it forks) have ended."""
    np = _sys.modules.get("numpy")
    kw = dict(mode=mode, group=group, large_pages=large_pages, replace=replace,
              remove_on_exit=remove_on_exit)
    if np is not None and isinstance(obj, np.ndarray):
        a = obj
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            a = np.ascontiguousarray(a)
        order = "C" if a.flags.c_contiguous else "F"
        return _bulkmap._publish(name, a, dtype=a.dtype.str if dtype is None else dtype,
                                 shape=a.shape, order=order, **kw)
    if dtype is None and shape is not None:
        raise TypeError("publish(shape=...) of a buffer needs dtype= too")
    if dtype is None:
        return _bulkmap._publish(name, obj, format=format, **kw)
    return _bulkmap._publish(name, obj, dtype=dtype, shape=shape, order=order, **kw)


def _reopen(name, verify, copy_on_write):
    """What a pickled Dataset calls where it is unpickled."""
    return open(name, verify=verify, copy_on_write=copy_on_write)


__version__ = library_version
__all__ = ["SCAN_MAX_THREADS", "Dataset", "Error", "create", "load", "ls", "open", "parse_size",
           "publish", "rm", "scan", "stat"]
