"""Dataset.tensors() and Dataset.tensor() (docs/design.md section 6; Dataset.metadata is the
library's bm_dataset_metadata, in python/src/arrays.c): the torch side of a typed dataset,
over what the library says of its payload (the tensor list and layout of Dataset.info,
judged by the library; nothing of the header is judged here).

torch 1.13 has no read-only tensors, and a write through a read-only mapping is SIGSEGV:
the tensors of one call share a private copy-on-write mapping of the payload of their own
(Dataset._private_view()), writable, whose writes stay in this process; it lives as long
as the tensors do, after Dataset.close() too. torch is imported here only, when a tensor
is asked for."""

# The library's dtype names (safetensors' names) and the torch dtypes that hold them, in
# order of preference: the first that this torch has. A name whose list torch has none of
# comes as the signed integers of its width (_SAME_WIDTH), named in Dataset.dtypes.
_TORCH = {
    "F64": ("float64",), "F32": ("float32",), "F16": ("float16",), "BF16": ("bfloat16",),
    "I64": ("int64",), "I32": ("int32",), "I16": ("int16",), "I8": ("int8",),
    "U8": ("uint8",), "BOOL": ("bool",),
    "C64": ("complex64",), "C128": ("complex128",),
    # torch 2.3 has these as limited types; 1.13 has none of them.
    "U16": ("uint16",), "U32": ("uint32",), "U64": ("uint64",),
    # torch 2.1 on; safetensors' F8_E4M3 is torch's float8_e4m3fn.
    "F8_E4M3": ("float8_e4m3fn",), "F8_E5M2": ("float8_e5m2",),
    "F8_E4M3FNUZ": ("float8_e4m3fnuz",), "F8_E5M2FNUZ": ("float8_e5m2fnuz",),
    "F8_E8M0": ("float8_e8m0fnu",),
}
_SAME_WIDTH = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("Dataset.tensors() needs torch (Debian: apt-get install python3-torch; "
                          "or pip install torch); arrays() gives numpy views without it") from e
    return torch


def torch_dtype(name, width=None, torch=None):
    """The torch dtype for the library's dtype NAME ('F32', 'BF16', 'U16'): its own where
    this torch has it, else the signed integers of its width in bytes (None when the
    elements are not whole bytes: F4, F6_*)."""
    torch = torch or _torch()
    for attr in _TORCH.get(name, ()):
        dt = getattr(torch, attr, None)
        if isinstance(dt, torch.dtype):
            return dt
    if width in _SAME_WIDTH:
        return getattr(torch, _SAME_WIDTH[width])
    return None


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _tensor_at(torch, buf, dtype_name, shape, offset, length, order="C", byteorder="<",
               who="tensor"):
    """A tensor over buf[offset, offset + length): zero copy (torch.frombuffer keeps buf
    alive); the element type from the library's dtype name."""
    shape = tuple(int(d) for d in shape)
    n = _numel(shape)
    width = length // n if n and length % n == 0 else None
    dt = torch_dtype(dtype_name, width, torch)
    if dt is None:
        # Elements that are not whole bytes (F4, F6_E2M3, F6_E3M2): the bytes as they are.
        shape, n, dt, order = (length,), length, torch.uint8, "C"
    if byteorder == ">" and torch.tensor([], dtype=dt).element_size() > 1:
        raise ValueError("%s: big-endian %s: torch has no byte order of its own (array() gives "
                         "it as numpy reads it)" % (who, dtype_name))
    if n == 0:
        return torch.empty(shape, dtype=dt)
    item = torch.tensor([], dtype=dt).element_size()
    flat = torch.frombuffer(buf, dtype=dt, count=length // item, offset=offset)
    if order == "F" and len(shape) > 1:
        # Column-major: the reversed shape in row-major order, its axes reversed again.
        return flat.reshape(shape[::-1]).permute(*range(len(shape) - 1, -1, -1))
    return flat.reshape(shape)


def _buffer(ds):
    """What the tensors are made over: a dataset from create() not yet published is its
    own shared-writable view (tensors then fill it; a memoryview holds the export, so
    publish() and close() refuse while they live); anything else a private mapping."""
    if ds.writable and not ds.copy_on_write:
        return memoryview(ds)
    return ds._private_view()


def tensors(ds):
    """{name: torch.Tensor} of a safetensors dataset, in payload order."""
    if ds.closed:
        raise ValueError("the dataset is closed")
    if ds.format != "safetensors":
        raise ValueError("%s is not safetensors (format %s)%s" % (
            ds.name, ds.format, ": tensor() gives its one array" if ds.dtype is not None else ""))
    torch = _torch()
    listed = ds.info.get("tensors") or []
    buf = _buffer(ds) if listed else None
    out = {}
    for t in listed:
        out[t["name"]] = _tensor_at(torch, buf, t["dtype"], t["shape"], t["offset"], t["length"],
                                    who="%s: %s" % (ds.name, t["name"]))
    return out


def tensor(ds):
    """The payload's one array (npy, or an array published from memory) as a torch.Tensor."""
    if ds.closed:
        raise ValueError("the dataset is closed")
    layout = ds._layout
    if layout is None:
        if ds.format == "safetensors":
            raise ValueError("%s is safetensors: tensors() gives its tensors by name" % ds.name)
        raise ValueError("%s holds no array (format %s)" % (ds.name, ds.format))
    torch = _torch()
    descr = layout.get("descr") or "<"
    return _tensor_at(torch, _buffer(ds), layout["dtype"], layout["shape"], layout["data_offset"],
                      layout["data_length"], order=layout["order"], byteorder=descr[0],
                      who=ds.name)
