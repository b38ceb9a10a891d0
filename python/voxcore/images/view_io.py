"""Buffered plane I/O on a view (slice reader and writer), and running chunk maps on executors."""

from __future__ import annotations

import concurrent.futures as cf
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._executors import is_client
from .._progress import Progress
from ..errors import InvalidArgumentError


def ints(value: Any, n: int, name: str) -> tuple[int, ...]:
    """value as n integers (InvalidArgumentError naming `name` otherwise)."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a sequence of {n} integers (got={value!r:.60})") from None
    if len(out) != n:
        raise InvalidArgumentError(f"{name} rank differs from the array (expected={n}, got={len(out)})")
    return out


def _slabs(lo: int, hi: int, depth: int) -> Iterator[tuple[int, int]]:
    """[start, stop) pieces of [lo, hi) cut at multiples of depth (level voxels)."""
    pos = lo
    while pos < hi:
        end = min(hi, (pos // depth + 1) * depth)
        yield pos, end
        pos = end


class SliceReader:
    """Planes of a view along one axis, read `buffer` planes (one slab) at a time.

    Iterate it (or use it in a with-block and iterate). Slabs are cut at multiples of buffer
    in the level's voxels, so with the default buffer every read covers whole chunks. The
    planes are numpy views of the current slab.
    """

    def __init__(self, view: Any, axis: int, buffer: int):
        if buffer < 1:
            raise InvalidArgumentError(f"buffer must be >= 1 plane (got={buffer})")
        self.view, self.axis, self.buffer = view, axis, buffer

    def __iter__(self) -> Iterator[np.ndarray]:
        v, a = self.view, self.axis
        f = v.factors[a]
        lo = v.level_offset[a]
        for start, stop in _slabs(lo, lo + v.shape[a], self.buffer):
            off = list(v.offset)
            size = list(v.size)
            off[a], size[a] = start * f, (stop - start) * f
            slab = v.read(absolute_offset=off, size=size)
            index: list[Any] = [slice(None)] * v.ndim
            for i in range(stop - start):
                index[a] = i
                yield slab[tuple(index)]

    def __len__(self) -> int:
        return self.view.shape[self.axis]

    def __enter__(self) -> SliceReader:
        return self

    def __exit__(self, *exc) -> None:
        return None


class SliceWriter:
    """Takes a view's planes in order along one axis and writes them a slab at a time.

    ``send(plane)`` copies the plane (the view's shape without the axis, in the level's voxels)
    into the current slab; a slab is written when it reaches a multiple of `buffer` planes (in
    the level's voxels, so with the default buffer each write covers whole write units along
    the axis). Leaving the with-block (or ``close()``) writes the remainder, **also when the
    block raised**: every plane that send() accepted reaches storage, as with a file's buffer;
    the exception then propagates. Sending more planes than the view holds, or a plane of the
    wrong shape, raises InvalidArgumentError. Memory: one slab.
    """

    def __init__(self, view: Any, axis: int, buffer: int):
        if buffer < 1:
            raise InvalidArgumentError(f"buffer must be >= 1 plane (got={buffer})")
        self.view, self.axis, self.buffer = view, axis, buffer
        self.plane_shape = tuple(s for i, s in enumerate(view.shape) if i != axis)
        self._lo = view.level_offset[axis]
        self._hi = self._lo + view.shape[axis]
        self._next = self._lo  # level index of the next plane
        self._slab: np.ndarray | None = None
        self._slab_start = self._lo
        self._closed = False

    @property
    def written(self) -> int:
        """Planes accepted so far."""
        return self._next - self._lo

    def __enter__(self) -> SliceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def send(self, plane: Any) -> None:
        """Append the next plane along the axis."""
        if self._closed:
            raise InvalidArgumentError("send() on a closed slice writer")
        p = np.asarray(plane)
        if p.shape != self.plane_shape:
            raise InvalidArgumentError(
                f"plane has the wrong shape (expected={self.plane_shape}, got={p.shape})")
        if self._next >= self._hi:
            raise InvalidArgumentError(
                f"more planes than the view holds along axis {self.axis} "
                f"(expected={self._hi - self._lo})")
        if self._slab is None:
            self._slab_start = self._next
            stop = min(self._hi, (self._next // self.buffer + 1) * self.buffer)
            shape = list(self.view.shape)
            shape[self.axis] = stop - self._next
            self._slab = np.empty(shape, dtype=self.view.dtype)
        index: list[Any] = [slice(None)] * self.view.ndim
        index[self.axis] = self._next - self._slab_start
        self._slab[tuple(index)] = p
        self._next += 1
        if self._next - self._slab_start == self._slab.shape[self.axis]:
            self._flush()

    def _flush(self) -> None:
        slab, self._slab = self._slab, None
        if slab is None:
            return
        n = self._next - self._slab_start
        if n < slab.shape[self.axis]:
            index: list[Any] = [slice(None)] * slab.ndim
            index[self.axis] = slice(0, n)
            slab = slab[tuple(index)]
        off = list(self.view.offset)
        off[self.axis] = self._slab_start * self.view.factors[self.axis]
        self.view.write(slab, absolute_offset=off)

    def close(self) -> None:
        """Write the planes still buffered; later send() calls raise."""
        if not self._closed:
            self._closed = True
            self._flush()


# ---- running one function per chunk ---------------------------------------------------------

def dispatch(fn: Callable, jobs: list[tuple], executor: Any, progress: bool, label: str,
             want_results: bool, weights: list[int] | None = None, desc: str | None = None) -> list | None:
    """fn(*job) for every job, in order or on executor; a progress bar counts weights (default
    1 per job): shown on a terminal when progress, and always (one line in a log) with desc,
    its label."""
    weights = [1] * len(jobs) if weights is None else weights
    live = sys.stderr.isatty()
    bar = Progress(sum(weights), label if desc is None else str(desc),
                   desc is not None or (bool(progress) and live), live)
    try:
        if executor is None:
            results = []
            for job, w in zip(jobs, weights):
                r = fn(*job)
                if want_results:
                    results.append(r)
                bar.advance(w)
            return results if want_results else None
        if is_client(executor):
            return _run_dask(fn, jobs, executor, bar, want_results, weights)
        if isinstance(executor, cf.Executor):
            return _run_futures(fn, jobs, executor, bar, want_results, weights)
        raise InvalidArgumentError(
            "executor must be None, a concurrent.futures.Executor or a dask.distributed.Client "
            f"(got={type(executor).__name__})")
    finally:
        bar.close()


def _run_futures(fn, jobs, executor, bar, want_results, weights):
    futures = [executor.submit(fn, *job) for job in jobs]
    weight = dict(zip(futures, weights))
    try:
        for f in cf.as_completed(futures):
            f.result()  # the first failure raises here
            bar.advance(weight[f])
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return [f.result() for f in futures] if want_results else None


def _run_dask(fn, jobs, client, bar, want_results, weights):
    from distributed import as_completed  # a Client exists, so distributed is installed

    if not jobs:
        return [] if want_results else None
    futures = client.map(fn, *zip(*jobs), pure=False)
    weight = {f.key: w for f, w in zip(futures, weights)}
    try:
        for f in as_completed(futures, loop=client.loop):  # this client, default or not
            if f.status == "error":
                f.result()  # raises the worker's exception
            bar.advance(weight.get(f.key, 1))
        return client.gather(futures) if want_results else None
    except BaseException:
        client.cancel(futures)
        raise
