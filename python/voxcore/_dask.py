"""Scale-out: voxcore images as dask arrays, and pyramid writes run on an executor or a cluster.

to_dask: one task per block; a task carries a small picklable reference to the array (its local
path, or a NIfTI file's path) and the block's slices, never voxels. A worker process opens the
array once per graph (a small per-process cache) and reads the block with the C++ core (GIL
released).

write_pyramid (behind ``save(..., executor=)`` and ``build_pyramid(..., executor=)``): level 0
is cut into blocks aligned to every level's write unit (a shard, else a chunk) times that
level's cumulative factor, so each block's reduced outputs cover whole chunks/shards of every
level and no two tasks touch the same file. A task reads its block (an on-disk image by path,
or the block's voxels sent with it), reduces it with the core and writes every level's part
into the level arrays the driver created. Deep pyramids run in stages: once a block would
exceed BLOCK_BUDGET_BYTES, the next stage reads the last level written back from disk and
reduces it further (reductions are level by level, so this gives the same values). gaussian's
taps cross block edges: each task reads a halo (2 steps per level, per side), computes level by
level and keeps only voxels whose taps lay inside what it read, which are the same values as
one pass over the whole image. The output's bytes equal a local save's.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from .errors import InvalidArgumentError, UnsupportedError
from .formats import ngff

# A pyramid block (level-0 voxels of one task) grows by doublings while it stays under this; a
# level whose alignment would push a block past it starts a new stage.
BLOCK_BUDGET_BYTES = 64 << 20
# to_dask without chunks= and without a dask config: blocks grow to at most this.
DEFAULT_DASK_BLOCK_BYTES = 128 << 20

_OPEN_CACHE: OrderedDict = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_CACHE_SIZE = 32


# ---- references: what a task carries instead of voxels ---------------------------------------

def _open_ref(ref: tuple) -> Any:
    """The array a reference names, opened once per process (an LRU of a few handles).

    ref: ("zarr", abspath, durable, token) or ("nifti", abspath, caching, affine_source, token).
    token is fresh per graph or save, so a rewritten path is never served from a stale handle.
    """
    with _OPEN_LOCK:
        obj = _OPEN_CACHE.get(ref)
        if obj is not None:
            _OPEN_CACHE.move_to_end(ref)
            return obj
    if ref[0] == "zarr":
        from .image import open as vc_open

        obj = vc_open(ref[1], durable=ref[2])
    elif ref[0] == "nifti":
        from .formats.nifti import NiftiImage

        obj = NiftiImage(ref[1], caching=ref[2], affine_source=ref[3])
    else:
        raise InvalidArgumentError(f"unknown array reference (got={ref[0]!r:.20})")
    with _OPEN_LOCK:
        _OPEN_CACHE[ref] = obj
        while len(_OPEN_CACHE) > _OPEN_CACHE_SIZE:
            _OPEN_CACHE.popitem(last=False)
    return obj


def _local_path(img: Any) -> str | None:
    """The local directory of a voxcore Image (None for one opened through a store object)."""
    src = getattr(img, "_source", None)
    if not isinstance(src, str) or not os.path.isdir(src):
        return None
    if not any(os.path.exists(os.path.join(src, k)) for k in ("zarr.json", ".zarray")):
        return None
    return os.path.abspath(src)


def _zarr_ref(path: str, durable: bool, token: str) -> tuple:
    return ("zarr", path, bool(durable), token)


def _slices(lo: Sequence[int], hi: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _read(obj: Any, index: tuple[slice, ...]) -> np.ndarray:
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
            self._obj = _open_ref(self.ref)
        return self._obj

    def __reduce__(self):
        if self.ref is None:  # opened through a store: the array itself must pickle
            return (_BlockSource, (None, self.shape, self.dtype.str, self._obj))
        return (_BlockSource, (self.ref, self.shape, self.dtype.str))

    def __repr__(self) -> str:
        return f"<voxcore block source {self.ref[1] if self.ref else self._obj!r} shape={self.shape}>"


def _get_block(src: _BlockSource, index: tuple[slice, ...]) -> np.ndarray:
    """One dask block: read by the core from the array src names."""
    return _read(src.array(), tuple(index))


# ---- block shapes -----------------------------------------------------------------------------

def _nbytes(block: Sequence[int], shape: Sequence[int], itemsize: int) -> int:
    return math.prod(min(b, s) for b, s in zip(block, shape)) * itemsize


def _grow(block: Sequence[int], shape: Sequence[int], itemsize: int, budget: int,
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
        if _nbytes(trial, shape, itemsize) > budget:
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
        block = _grow(start, shape, itemsize, budget, dims)
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
    """A dask array of one level of a voxcore Image (or of a NIfTI image).

    Each block is read by the C++ core from the array's files; a task holds the array's path
    and its block's slices, so the graph is small and runs on the threaded scheduler or on a
    dask.distributed cluster (workers open the array by path: a local directory, visible to
    the workers).

    chunks: None/"auto" aligns blocks to storage: each starts as one shard (sharded arrays) or
    one chunk and is doubled along the space axes (then time/channel) while it stays within
    dask's "array.chunk-size" (default 128 MiB). Else an int, or per axis an int, -1 (whole
    axis) or a tuple of block sizes; block edges must fall on storage-chunk edges except at the
    array's end (InvalidArgumentError otherwise). NIfTI files have no chunks: blocks default to
    slabs along the file's slowest axis and hold the stored values (as NiftiImage.read()).
    """
    import dask.array as da

    from .formats.nifti import NiftiArray, NiftiImage
    from .image import Image

    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise InvalidArgumentError(f"level must be an int (got={level!r:.20})")
    level = int(level)
    token = uuid.uuid4().hex
    if isinstance(img, Image):
        levels = img.levels
        if not 0 <= level < len(levels):
            raise InvalidArgumentError(f"level out of range (levels={len(levels)}, got={level})")
        arr = levels[level].image
        shape, dtype = arr.shape, arr.dtype
        unit = tuple(arr.chunks)
        prefer = tuple(arr.shards) if arr.shards else unit
        dims = img.dims
        path = _local_path(arr)
        ref = _zarr_ref(path, True, token) if path else None
        what = "to_dask"
    elif isinstance(img, NiftiImage):
        if level != 0:
            raise InvalidArgumentError(f"a NIfTI image has one level (got={level})")
        shape, dtype = img.shape, img.dtype
        unit = (1,) * len(shape)
        last = max([i for i, s in enumerate(shape) if s > 1] or [0])
        prefer = tuple(1 if i == last else s for i, s in enumerate(shape))
        dims = None
        if isinstance(img, NiftiArray):  # reoriented in memory: no file to point at
            blocks = _block_chunks(chunks, shape, unit, prefer, dtype.itemsize, dims, "to_dask")
            return da.from_array(np.asarray(img.data), chunks=blocks)
        ref = ("nifti", os.path.abspath(str(img.path)), img.caching, img.affine_source, token)
        arr = img
        what = "to_dask"
    else:
        raise InvalidArgumentError(f"to_dask takes a voxcore Image or NiftiImage (got={type(img).__name__})")
    blocks = _block_chunks(chunks, shape, unit, prefer, np.dtype(dtype).itemsize, dims, what)
    src = _BlockSource(ref, shape, dtype, obj=arr)
    name = f"voxcore-read-{token}"
    return da.from_array(src, chunks=blocks, name=name, lock=False, asarray=False, getitem=_get_block,
                         meta=np.empty((0,) * len(shape), dtype=dtype))


# ---- executors --------------------------------------------------------------------------------

def _client_type():
    try:
        from distributed import Client
    except ImportError:  # without distributed there is no Client to accept
        return None
    return Client


def check_executor(executor: Any) -> None:
    """InvalidArgumentError unless executor is None, a concurrent.futures.Executor or a
    dask.distributed.Client."""
    if executor is None or isinstance(executor, concurrent.futures.Executor):
        return
    if type(executor).__module__.split(".")[0] == "distributed":
        client = _client_type()
        if client is not None and isinstance(executor, client):
            return
    raise InvalidArgumentError(
        f"executor must be None, a concurrent.futures.Executor or a dask.distributed.Client "
        f"(got={type(executor).__name__})")


def _is_dask(x: Any) -> bool:
    return hasattr(x, "__dask_graph__") and hasattr(x, "compute")


class _Lazy:
    """Slices of an array-like read where the task runs (or by the driver, for a cluster)."""

    def __init__(self, obj: Any, index: tuple[slice, ...]):
        self.obj, self.index = obj, index

    def read(self) -> np.ndarray:
        return _read(self.obj, self.index)


def _pickles_small(obj: Any) -> bool:
    """True when obj travels to a worker as a small reference (a zarr array, a voxcore Image
    over a shareable store), so the worker reads its own blocks; else the driver reads them."""
    if isinstance(obj, np.ndarray) or _is_dask(obj):
        return False
    try:
        return len(pickle.dumps(obj)) <= 1 << 20
    except Exception:  # noqa: BLE001 - h5py, open files, in-memory stores: read by the driver
        return False


class _Runner:
    """Submits block tasks to an Executor or a Client, a bounded number in flight; the first
    failure cancels the rest and is raised."""

    def __init__(self, executor: Any):
        check_executor(executor)
        self.executor = executor
        client = _client_type()
        self.client = executor if client is not None and isinstance(executor, client) else None
        if self.client is not None:
            workers = sum(self.client.nthreads().values()) or 4
        else:
            workers = getattr(executor, "_max_workers", None) or 4
        self.window = max(4, 4 * int(workers))
        self.ship_lazy = False  # a cluster: send _Lazy sources as they are (they pickle small)

    def _submit(self, task: _BlockTask, data: Any):
        if self.client is None:
            if _is_dask(data) and not isinstance(self.executor, concurrent.futures.ThreadPoolExecutor):
                import dask

                (data,) = dask.optimize(data)  # culled: a process pool pickles only this block's graph
            return self.executor.submit(_run_block, task, data), None
        c = self.client
        if isinstance(data, _Lazy) and not self.ship_lazy:
            data = data.read()
        if isinstance(data, np.ndarray):
            data = c.scatter(np.ascontiguousarray(data), hash=False)
        elif _is_dask(data):
            data = c.compute(data)
        return c.submit(_run_block, task, data, pure=False), data

    def run(self, jobs: list[tuple[_BlockTask, Any]], advance) -> None:
        if self.client is not None:
            from distributed import as_completed

            done_iter = as_completed(loop=self.client.loop)
        jobs_iter = iter(jobs)
        inflight: dict[Any, Any] = {}

        def fill() -> None:
            while len(inflight) < self.window:
                nxt = next(jobs_iter, None)
                if nxt is None:
                    return
                fut, held = self._submit(*nxt)
                inflight[fut] = held
                if self.client is not None:
                    done_iter.add(fut)

        try:
            fill()
            while inflight:
                if self.client is not None:
                    finished = [next(done_iter)]
                else:
                    finished, _ = concurrent.futures.wait(list(inflight),
                                                          return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in finished:
                    inflight.pop(fut)
                    fut.result()  # raises the task's own exception
                    advance(1)
                fill()
        except BaseException:
            for fut in inflight:
                fut.cancel()
            if self.client is not None and inflight:
                self.client.cancel(list(inflight))
            elif inflight:
                concurrent.futures.wait(list(inflight), timeout=30)
            raise


# ---- pyramid blocks ---------------------------------------------------------------------------

@dataclass
class _Part:
    """One level of a block task: the array written (None: not written), the step from the
    previous level, the voxels written ([lo, hi), this level's coordinates) and, for gaussian,
    the wider range computed so the next level's taps find their inputs."""

    ref: tuple | None
    step: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    need_lo: tuple[int, ...]
    need_hi: tuple[int, ...]


@dataclass
class _BlockTask:
    src: tuple | None  # reference to the array read; None: the voxels come with the task
    parts: list[_Part]  # parts[0]: the level read (its need range is the box read)
    method: str | None
    dtype: str


def _run_block(task: _BlockTask, data: Any = None) -> int:
    """Read one block, reduce it through its levels and write each level's part; returns the
    number of voxels read."""
    first = task.parts[0]
    index = _slices(first.need_lo, first.need_hi)
    if data is None:
        block = _read(_open_ref(task.src), index)
    elif isinstance(data, _Lazy):
        block = data.read()
    elif _is_dask(data):
        block = np.asarray(data.compute(scheduler="sync"))
    else:
        block = np.asarray(data)
    want = tuple(b - a for a, b in zip(first.need_lo, first.need_hi))
    if block.shape != want:
        raise InvalidArgumentError(f"a source block has the wrong shape (expected={want}, got={block.shape})")
    dtype = np.dtype(task.dtype)
    if block.dtype != dtype:
        block = block.astype(dtype, casting="same_kind")
    if not block.flags.c_contiguous:
        block = np.ascontiguousarray(block)
    if task.method == "gaussian":
        cur = block
        for k, part in enumerate(task.parts):
            if k:
                prev = task.parts[k - 1]
                full = _core.downsample(cur, list(part.step), "gaussian")
                base = tuple(a // s for a, s in zip(prev.need_lo, part.step))
                cur = full[_slices([a - b for a, b in zip(part.need_lo, base)],
                                   [a - b for a, b in zip(part.need_hi, base)])]
            _write_part(part, cur)
    else:
        _write_part(first, block)
        if len(task.parts) > 1:
            outs = _core.downsample_levels(block, [list(p.step) for p in task.parts[1:]], task.method or "nearest")
            for part, out in zip(task.parts[1:], outs):
                _write_part(part, out)
    return int(block.size)


def _write_part(part: _Part, data: np.ndarray) -> None:
    """Write the part's own voxels [lo, hi) of data (which covers [need_lo, need_hi))."""
    if part.ref is None:
        return
    own = data[_slices([a - b for a, b in zip(part.lo, part.need_lo)],
                       [a - b for a, b in zip(part.hi, part.need_lo)])]
    _open_ref(part.ref).write(own, part.lo, allow_unaligned=True)  # parts are cut by voxcore


@dataclass
class _Stage:
    src: int  # the level read (0: the source image)
    levels: list[int]  # the levels written (the first stage also writes level 0)
    block: tuple[int, ...]  # in voxels of the level read


def _units(spec: Any) -> tuple[int, ...]:
    return tuple(spec.shards) if spec.shards is not None else tuple(spec.chunks)


def _stage_block(specs: list, src: int, levels: list[int]) -> tuple[int, ...]:
    """The smallest block (voxels of level src) whose outputs are whole write units of every
    level in `levels`."""
    n = len(specs[src].shape)
    out = [1] * n
    for k in levels:
        for a in range(n):
            rel = specs[k].factors[a] // specs[src].factors[a]
            v = rel * _units(specs[k])[a]
            out[a] = out[a] * v // math.gcd(out[a], v)
    return tuple(out)


def plan_stages(specs: list, itemsize: int, dims: Sequence[str], budget: int | None = None) -> list[_Stage]:
    """Stages of a distributed pyramid write: each reads one level (0: the source) and writes as
    many following levels as keep an aligned block within budget bytes (always at least one)."""
    budget = BLOCK_BUDGET_BYTES if budget is None else budget
    stages: list[_Stage] = []
    src, written = 0, [0]
    while True:
        nxt = (written[-1] if written else src) + 1
        while nxt < len(specs):
            trial = written + [nxt]
            has_reduced = any(k > src for k in written)
            if has_reduced and _nbytes(_stage_block(specs, src, trial), specs[src].shape, itemsize) > budget:
                break
            written = trial
            nxt += 1
        block = _grow(_stage_block(specs, src, written), specs[src].shape, itemsize, budget, dims)
        stages.append(_Stage(src, written, block))
        if written[-1] == len(specs) - 1:
            return stages
        src, written = written[-1], []


def _stage_tasks(stage: _Stage, specs: list, refs: list[tuple], method: str | None, dtype: np.dtype):
    """(task, index) per block of a stage; index: the source box read (halo included)."""
    src = stage.src
    shape = specs[src].shape
    grid = [max(1, -(-s // b)) for s, b in zip(shape, stage.block)]
    gauss = method == "gaussian"
    chain = [src] + [k for k in stage.levels if k > src]
    for idx in np.ndindex(*grid):
        lo = tuple(i * b for i, b in zip(idx, stage.block))
        hi = tuple(min(s, a + b) for s, a, b in zip(shape, lo, stage.block))
        if any(a >= b for a, b in zip(lo, hi)):
            continue
        own = []
        for k in chain:
            rel = [f // g for f, g in zip(specs[k].factors, specs[src].factors)]
            own.append((tuple(a // r for a, r in zip(lo, rel)), tuple(-(-b // r) for b, r in zip(hi, rel))))
        need = list(own)
        if gauss:  # widen from the coarsest level down: 2 steps per side (taps span [i*s - s, i*s + 2s))
            for i in range(len(chain) - 1, 0, -1):
                step = specs[chain[i]].step
                prev_shape = specs[chain[i - 1]].shape
                nlo, nhi = need[i]
                wlo = tuple(a if s == 1 else max(0, (a - 2) * s) for a, s in zip(nlo, step))
                whi = tuple(b if s == 1 else min(n, (b + 2) * s) for b, s, n in zip(nhi, step, prev_shape))
                olo, ohi = own[i - 1]
                need[i - 1] = (tuple(min(a, b) for a, b in zip(wlo, olo)), tuple(max(a, b) for a, b in zip(whi, ohi)))
        parts = []
        for i, k in enumerate(chain):
            written = k in stage.levels
            parts.append(_Part(refs[k] if written else None, tuple(specs[k].step), own[i][0], own[i][1],
                               need[i][0], need[i][1]))
        task = _BlockTask(None if src == 0 else refs[src], parts, method, np.dtype(dtype).str)
        yield task, _slices(need[0][0], need[0][1])


def write_pyramid(executor: Any, arrays: list, specs: list, source: Any, dims: Sequence[str], dtype: Any,
                  method: str | None, durable: bool, progress: Any) -> None:
    """Write every level of a pyramid into `arrays` (created, local) with block tasks on executor.

    source: level 0 (numpy, a voxcore Image, a dask array or any sliceable array). progress:
    a Progress counting blocks (its total is set here).
    """
    from .image import Image

    dtype = np.dtype(dtype)
    if hasattr(source, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    token = uuid.uuid4().hex
    refs = []
    for arr in arrays:
        path = _local_path(arr)
        if path is None:
            raise UnsupportedError("executor= writes local directories only (the target is a store object)")
        refs.append(_zarr_ref(path, durable, token))
    src_path = _local_path(source) if isinstance(source, Image) else None
    src_ref = _zarr_ref(src_path, True, token) if src_path else None
    runner = _Runner(executor)
    runner.ship_lazy = src_ref is None and _pickles_small(source)
    stages = plan_stages(specs, dtype.itemsize, dims)
    totals = [math.prod(max(1, -(-s // b)) for s, b in zip(specs[st.src].shape, st.block)) for st in stages]
    progress.total = max(1, sum(totals))
    for stage in stages:
        jobs = []
        for task, index in _stage_tasks(stage, specs, refs, method, dtype):
            data = None
            if stage.src == 0:
                if src_ref is not None:
                    task.src = src_ref
                elif isinstance(source, np.ndarray) or _is_dask(source):
                    data = source[index]
                else:
                    data = _Lazy(source, index)
            jobs.append((task, data))
        runner.run(jobs, progress.advance)
