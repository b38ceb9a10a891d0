"""Pyramid writes run on an executor or a cluster: block tasks that each write whole chunks.

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
import pickle
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core import downsample as core_downsample
from .._core import downsample_levels
from .._executors import check_executor, is_client, is_dask
from ..errors import InvalidArgumentError, UnsupportedError
from ..images.blocks import grow, nbytes, open_ref, read_block, ref_of, slices

# A pyramid block (level-0 voxels of one task) grows by doublings while it stays under this; a
# level whose alignment would push a block past it starts a new stage.
BLOCK_BUDGET_BYTES = 64 << 20


class _Lazy:
    """Slices of an array-like read where the task runs (or by the driver, for a cluster)."""

    def __init__(self, obj: Any, index: tuple[slice, ...]):
        self.obj, self.index = obj, index

    def read(self) -> np.ndarray:
        return read_block(self.obj, self.index)


def _pickles_small(obj: Any) -> bool:
    """True when obj travels to a worker as a small reference (a zarr array, a voxcore Image
    over a shareable store), so the worker reads its own blocks; else the driver reads them."""
    if isinstance(obj, np.ndarray) or is_dask(obj):
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
        self.client = executor if is_client(executor) else None
        if self.client is not None:
            workers = sum(self.client.nthreads().values()) or 4
        else:
            workers = getattr(executor, "_max_workers", None) or 4
        self.window = max(4, 4 * int(workers))
        self.ship_lazy = False  # a cluster: send _Lazy sources as they are (they pickle small)

    def _submit(self, task: _BlockTask, data: Any):
        if self.client is None:
            if is_dask(data) and not isinstance(self.executor, concurrent.futures.ThreadPoolExecutor):
                import dask

                (data,) = dask.optimize(data)  # culled: a process pool pickles only this block's graph
            return self.executor.submit(_run_block, task, data), None
        c = self.client
        if isinstance(data, _Lazy) and not self.ship_lazy:
            data = data.read()
        if isinstance(data, np.ndarray):
            data = c.scatter(np.ascontiguousarray(data), hash=False)
        elif is_dask(data):
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
    index = slices(first.need_lo, first.need_hi)
    if data is None:
        block = read_block(open_ref(task.src), index)
    elif isinstance(data, _Lazy):
        block = data.read()
    elif is_dask(data):
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
                full = core_downsample(cur, list(part.step), "gaussian")
                base = tuple(a // s for a, s in zip(prev.need_lo, part.step))
                cur = full[slices([a - b for a, b in zip(part.need_lo, base)],
                                   [a - b for a, b in zip(part.need_hi, base)])]
            _write_part(part, cur)
    else:
        _write_part(first, block)
        if len(task.parts) > 1:
            outs = downsample_levels(block, [list(p.step) for p in task.parts[1:]], task.method or "nearest")
            for part, out in zip(task.parts[1:], outs):
                _write_part(part, out)
    return int(block.size)


def _write_part(part: _Part, data: np.ndarray) -> None:
    """Write the part's own voxels [lo, hi) of data (which covers [need_lo, need_hi))."""
    if part.ref is None:
        return
    own = data[slices([a - b for a, b in zip(part.lo, part.need_lo)],
                       [a - b for a, b in zip(part.hi, part.need_lo)])]
    open_ref(part.ref).write(own, part.lo, allow_unaligned=True)  # parts are cut by voxcore


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
            if has_reduced and nbytes(_stage_block(specs, src, trial), specs[src].shape, itemsize) > budget:
                break
            written = trial
            nxt += 1
        block = grow(_stage_block(specs, src, written), specs[src].shape, itemsize, budget, dims)
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
        yield task, slices(need[0][0], need[0][1])


def write_pyramid(executor: Any, arrays: list, specs: list, source: Any, dims: Sequence[str], dtype: Any,
                  method: str | None, progress: Any) -> None:
    """Write every level of a pyramid into `arrays` (created, local) with block tasks on executor;
    workers reopen each array as it was created (durable or not).

    source: level 0 (numpy, a voxcore Image, a dask array or any sliceable array). progress:
    a Progress counting blocks (its total is set here).
    """
    dtype = np.dtype(dtype)
    if hasattr(source, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    token = uuid.uuid4().hex
    refs = []
    for arr in arrays:
        ref = ref_of(arr, token)
        if ref is None:
            raise UnsupportedError("executor= writes local directories only (the target is a store object)")
        refs.append(ref)
    src_ref = ref_of(source, token)
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
                elif isinstance(source, np.ndarray) or is_dask(source):
                    data = source[index]
                else:
                    data = _Lazy(source, index)
            jobs.append((task, data))
        runner.run(jobs, progress.advance)
