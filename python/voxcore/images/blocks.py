"""Images as dask arrays: one task per block, each read by the core from the image's files.

A task carries a small picklable reference to the image (how to reopen it: see
``ImageModel.reference``) and the block's slices, never voxels. A worker process opens the
image once per graph (a small per-process cache) and reads the block with the C++ core (GIL
released).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..formats import ngff

# to_dask without chunks= and without a dask config: blocks grow to at most this.
DEFAULT_DASK_BLOCK_BYTES = 128 << 20

_OPEN_CACHE: OrderedDict = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_CACHE_SIZE = 32


# ---- references: what a task carries instead of voxels ---------------------------------------

def ref_of(img: Any, token: str) -> tuple | None:
    """(token, function, args) that reopen img in a worker, or None (img has no files to reopen).
    token is fresh per graph or save, so a rewritten path is never served from a stale handle."""
    how = img.reference() if hasattr(img, "reference") else None
    return None if how is None else (token,) + tuple(how)


def open_ref(ref: tuple) -> Any:
    """The image a reference names, opened once per process (an LRU of a few handles)."""
    with _OPEN_LOCK:
        obj = _OPEN_CACHE.get(ref)
        if obj is not None:
            _OPEN_CACHE.move_to_end(ref)
            return obj
    _, fn, args = ref
    obj = fn(*args)
    with _OPEN_LOCK:
        _OPEN_CACHE[ref] = obj
        while len(_OPEN_CACHE) > _OPEN_CACHE_SIZE:
            _OPEN_CACHE.popitem(last=False)
    return obj


def slices(lo: Sequence[int], hi: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def read_block(obj: Any, index: tuple[slice, ...]) -> np.ndarray:
    read = getattr(obj, "read", None)
    out = read(index) if callable(read) else np.asarray(obj[index])
    if not out.flags.writeable:  # a view of a NIfTI cache: blocks are the caller's to modify
        out = out.copy()
    return out


class _BlockSource:
    """What a to_dask graph holds once: shape, dtype and how to reach the array.

    Pickled (to a cluster), it is only the reference; in the process that made it, it keeps the
    open array too.
    """

    def __init__(self, ref: tuple | None, shape: tuple[int, ...], dtype: np.dtype, obj: Any = None):
        self.ref, self.shape, self.dtype, self._obj = ref, tuple(shape), np.dtype(dtype), obj
        self.ndim = len(self.shape)

    def array(self) -> Any:
        if self._obj is None:
            self._obj = open_ref(self.ref)
        return self._obj

    def __reduce__(self):
        if self.ref is None:  # opened through a store: the array itself must pickle
            return (_BlockSource, (None, self.shape, self.dtype.str, self._obj))
        return (_BlockSource, (self.ref, self.shape, self.dtype.str))

    def __repr__(self) -> str:
        return f"<voxcore block source {self.ref[2][0] if self.ref else self._obj!r} shape={self.shape}>"


def _get_block(src: _BlockSource, index: tuple[slice, ...]) -> np.ndarray:
    """One dask block: read by the core from the array src names."""
    return read_block(src.array(), tuple(index))


# ---- block shapes -----------------------------------------------------------------------------

def nbytes(block: Sequence[int], shape: Sequence[int], itemsize: int) -> int:
    return math.prod(min(b, s) for b, s in zip(block, shape)) * itemsize


def grow(block: Sequence[int], shape: Sequence[int], itemsize: int, budget: int,
          dims: Sequence[str] | None) -> tuple[int, ...]:
    """Double the block along one axis at a time while it stays within budget bytes: space axes
    first (the smallest extent first, then the earlier axis), time/channel axes only once the
    space axes span the whole array. Every extent stays a multiple of where it started."""
    out = [max(1, int(b)) for b in block]
    n = len(out)
    space = [dims is None or ngff.AXIS_TYPES.get(d, "space") == "space" for d in (dims or [None] * n)]
    done = [False] * n
    while True:
        open_axes = [a for a in range(n) if not done[a] and out[a] < shape[a]]
        if not open_axes:
            return tuple(out)
        pool = [a for a in open_axes if space[a]] or open_axes
        a = min(pool, key=lambda i: (min(out[i], shape[i]), i))
        trial = list(out)
        trial[a] *= 2
        if nbytes(trial, shape, itemsize) > budget:
            done[a] = True
        else:
            out = trial


def _regular(size: int, n: int) -> tuple[int, ...]:
    if n == 0:
        return (0,)
    size = max(1, min(size, n))
    return (size,) * (n // size) + ((n % size,) if n % size else ())


def _block_chunks(chunks: Any, shape: tuple[int, ...], unit: tuple[int, ...], prefer: tuple[int, ...],
                  itemsize: int, dims: Sequence[str] | None, what: str) -> tuple[tuple[int, ...], ...]:
    """Dask chunks of an array stored in `unit` chunks: given ones checked, else the default."""
    nd = len(shape)
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        try:
            import dask
            from dask.utils import parse_bytes

            budget = parse_bytes(dask.config.get("array.chunk-size", DEFAULT_DASK_BLOCK_BYTES))
        except (ImportError, ValueError, TypeError):
            budget = DEFAULT_DASK_BLOCK_BYTES
        start = tuple(max(1, min(p, s)) for p, s in zip(prefer, shape))
        block = grow(start, shape, itemsize, budget, dims)
        return tuple(_regular(b, s) for b, s in zip(block, shape))
    if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        chunks = (int(chunks),) * nd
    if isinstance(chunks, str) or not isinstance(chunks, Sequence) or len(chunks) != nd:
        raise InvalidArgumentError(f"chunks must be an int, 'auto' or one entry per axis (ndim={nd}, "
                                   f"got={chunks!r:.60})")
    out = []
    for ax, (c, n, u) in enumerate(zip(chunks, shape, unit)):
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            c = int(c)
            if c == -1:
                sizes = (n,)
            elif c < 1:
                raise InvalidArgumentError(f"chunks must be >= 1 or -1 (axis={ax}, got={c})")
            else:
                sizes = _regular(c, n)
        elif isinstance(c, Sequence) and not isinstance(c, str) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in c):
            sizes = tuple(int(v) for v in c)
            if sum(sizes) != n:
                raise InvalidArgumentError(f"chunks along axis {ax} must add up to its extent "
                                           f"(expected={n}, got={sum(sizes)})")
        else:
            raise InvalidArgumentError(f"chunks entries are ints or tuples of ints (axis={ax}, got={c!r:.40})")
        edge = 0
        for s in sizes[:-1]:
            edge += s
            if edge % u:
                raise InvalidArgumentError(
                    f"{what}: blocks must be whole multiples of the storage chunks except at the array's "
                    f"end (axis={ax}, chunk={u}, got block edge at {edge})")
        out.append(sizes)
    return tuple(out)




def to_dask(img: Any, level: int = 0, chunks: Any = None):
    """A dask array of one level of a voxcore image.

    Each block is read by the C++ core from the image's files; a task holds how to reopen the
    image (its path) and its block's slices, so the graph is small and runs on the threaded
    scheduler or on a dask.distributed cluster (workers open the image by path: a local
    directory or file, visible to the workers). An image held in memory becomes a dask array of
    its values.

    chunks: None/"auto" aligns blocks to storage: each starts as one shard (sharded arrays) or
    one chunk and is doubled along the space axes (then time/channel) while it stays within
    dask's "array.chunk-size" (default 128 MiB). Else an int, or per axis an int, -1 (whole
    axis) or a tuple of block sizes; block edges must fall on storage-chunk edges except at the
    array's end (InvalidArgumentError otherwise). NIfTI files have no chunks: blocks default to
    slabs along the file's slowest axis and hold the stored values (as NiftiImage.read()).
    """
    import dask.array as da

    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise InvalidArgumentError(f"level must be an int (got={level!r:.20})")
    if not hasattr(img, "block_unit"):  # not an image of the image model
        raise InvalidArgumentError(f"to_dask takes a voxcore image (an Image or NiftiImage; got={type(img).__name__})")
    level = int(level)
    arr = img._level_image(level) if level else img
    shape, dtype = arr.shape, np.dtype(arr.dtype)
    unit, prefer = img.block_unit(level)
    blocks = _block_chunks(chunks, shape, unit, prefer, dtype.itemsize, img.dims, "to_dask")
    if arr.in_memory:  # no file to point at: the values go into the graph
        return da.from_array(np.asarray(arr.read()), chunks=blocks)
    token = uuid.uuid4().hex
    src = _BlockSource(ref_of(arr, token), shape, dtype, obj=arr)
    return da.from_array(src, chunks=blocks, name=f"voxcore-read-{token}", lock=False, asarray=False,
                         getitem=_get_block, meta=np.empty((0,) * len(shape), dtype=dtype))
