"""Streaming pyramid writer: one pass over level 0, bounded memory, every level written as it fills.

Level 0 arrives in order along its first space axis (z for z,y,x; y for y,x), slab by slab or
plane by plane, separately for each (t, c) volume. Each volume keeps one working slab of level 0
(S0 planes) and one pending slab per coarser level (one chunk or shard deep). When the level-0
slab is full it is written, reduced through every level in one C++ call (downsample_levels) and
the results are appended to the coarser slabs, each written when it reaches a chunk (or shard)
boundary. S0 is a multiple of the total factor along the stream axis, so each slab reduces
exactly as the whole volume would. Memory is therefore about one level-0 slab plus one chunk-deep
slab per level, per volume in flight, whatever the volume's depth.

gaussian's taps reach across slab edges: it runs level by level (_GaussianStep), keeping a halo
of 2f planes of the previous slab and waiting for 2f planes of the next before emitting.
"""

from __future__ import annotations

import dataclasses

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._core import downsample_levels
from .._progress import Progress
from .._resources import SLAB_BUDGET_BYTES
from ..errors import InvalidArgumentError
from ..formats import ngff
from ..operations.downsample import downsample
from ..operations.pyramid import LevelSpec


class _Pending:
    """The planes of one level of one volume not yet written; written `width` planes at a time."""

    def __init__(self, arr, prefix: tuple[int, ...], extent: int, width: int, plane: tuple[int, ...],
                 dtype: np.dtype):
        self.arr, self.prefix, self.extent, self.width = arr, prefix, extent, width
        self.plane, self.dtype = plane, dtype
        self.buf: np.ndarray | None = None
        self.start = 0  # first plane held in buf
        self.count = 0

    def _write(self, planes: np.ndarray, at: int) -> None:
        block = planes.reshape((1,) * len(self.prefix) + planes.shape)
        # voxcore cuts these blocks itself (write units, or a level's end): no warning
        self.arr.write(block, self.prefix + (at,) + (0,) * len(self.plane), allow_unaligned=True)

    def append(self, planes: np.ndarray) -> None:
        i, n = 0, len(planes)
        while i < n:
            room = min(self.width, self.extent - self.start)
            if room <= 0:
                raise RuntimeError(f"internal: planes past the end of a level (extent={self.extent})")
            if self.count == 0 and n - i >= room:  # a whole write unit: no copy
                self._write(planes[i:i + room], self.start)
                self.start += room
                i += room
                continue
            if self.buf is None:
                self.buf = np.empty((self.width,) + self.plane, self.dtype)
            k = min(n - i, room - self.count)
            self.buf[self.count:self.count + k] = planes[i:i + k]
            self.count += k
            i += k
            if self.count == room:
                self.flush()

    def flush(self) -> None:
        if self.count:
            self._write(self.buf[:self.count], self.start)
            self.start += self.count
            self.count = 0

    def overlay(self, lo: int, hi: int, out: np.ndarray) -> None:
        """Copy held planes in [lo, hi) into out (whose first plane is lo)."""
        a, b = max(lo, self.start), min(hi, self.start + self.count)
        if a < b:
            out[a - lo:b - lo] = self.buf[a - self.start:b - self.start]


class _GaussianStep:
    """Level k -> k+1 with gaussian taps along the stream axis, fed in order, slab by slab."""

    def __init__(self, factors: tuple[int, ...]):
        self.factors = factors
        self.f = factors[0]
        # The taps reach 3 sigma = 1.5 f around a window centre: 2 f planes of context per side.
        self.halo = 2 * self.f if self.f > 1 else 0
        self.hist: np.ndarray | None = None
        self.g0 = 0  # global index of hist[0]
        self.done = 0  # outputs emitted

    def feed(self, planes: np.ndarray, final: bool) -> np.ndarray | None:

        # Always a copy: planes may be a reused slab buffer.
        self.hist = planes.copy() if self.hist is None or len(self.hist) == 0 else np.concatenate([self.hist, planes])
        end = self.g0 + len(self.hist)
        f, h = self.f, self.halo
        o_max = -(-end // f) if final else max(self.done, (end - h) // f)
        if o_max <= self.done:
            return None
        a = max(0, self.done * f - h)
        b = end if final else min(end, o_max * f + h)
        out = downsample(self.hist[a - self.g0:b - self.g0], self.factors, "gaussian")
        res = out[self.done - a // f:o_max - a // f]
        self.done = o_max
        keep_from = max(self.g0, self.done * f - h)
        self.hist = self.hist[keep_from - self.g0:].copy()
        self.g0 = keep_from
        return res


class _Volume:
    """One (t, c) volume of a pyramid in progress."""

    def __init__(self, writer: PyramidWriter, prefix: tuple[int, ...]):
        self.w = writer
        self.prefix = prefix
        p = len(prefix)
        lv = writer.levels
        self.extent = lv[0].shape[p]
        self.next = 0  # next level-0 plane expected
        self.slab: np.ndarray | None = None
        self.slab_start = 0
        self.slab_count = 0
        self.pending = [_Pending(writer.arrays[k], prefix, lv[k].shape[p], writer.widths[k], lv[k].shape[p + 1:],
                                 writer.dtype) for k in range(len(lv))]
        self.gauss = [_GaussianStep(lv[k].step[p:]) for k in range(1, len(lv))] \
            if writer.method == "gaussian" else None

    def push(self, planes: np.ndarray, z: int) -> None:
        if z != self.next:
            raise InvalidArgumentError(
                f"planes must arrive in order along the first space axis (volume={self.prefix}, "
                f"expected={self.next}, got={z})")
        n = len(planes)
        if z + n > self.extent:
            raise InvalidArgumentError(f"planes beyond the end (extent={self.extent}, got={z}..{z + n})")
        self.next += n
        s0 = self.w.slab_depth
        i = 0
        while i < n:
            room = min(s0, self.extent - self.slab_start)
            if self.slab_count == 0 and n - i >= room:
                self._process(planes[i:i + room])
                i += room
                continue
            if self.slab is None:
                self.slab = np.empty((s0,) + planes.shape[1:], self.w.dtype)
            k = min(n - i, room - self.slab_count)
            self.slab[self.slab_count:self.slab_count + k] = planes[i:i + k]
            self.slab_count += k
            i += k
            if self.slab_count == room:
                self._process(self.slab[:room])

    def _process(self, data: np.ndarray) -> None:
        """Write one level-0 slab (starting at slab_start) and reduce it into every level."""
        w = self.w
        self.pending[0].append(data)
        end = self.slab_start + len(data)
        self.slab_start = end
        self.slab_count = 0
        if len(w.levels) > 1:
            if self.gauss is None:
                outs = downsample_levels(data, [list(lv.step[len(self.prefix):]) for lv in w.levels[1:]],
                                               w.method)
                for k, o in enumerate(outs, start=1):
                    self.pending[k].append(o)
            else:
                planes = data
                for k, step in enumerate(self.gauss, start=1):
                    planes = step.feed(planes, end >= self.extent)
                    if planes is None:
                        break
                    self.pending[k].append(planes)
        w._advance(len(data))

    def finish(self) -> None:
        """Write everything held. Planes never received are the fill value, as on disk."""
        w = self.w
        if self.next < self.extent:
            # Reduce as if fill planes followed, up to where no computed voxel can depend on a
            # received plane (gaussian reaches under 4x the total factor; window methods stop at
            # the slab edge); beyond that every level is the fill value, which unwritten chunks are.
            reach = 4 * w.total_factor if self.gauss is not None else 0
            stop = min(self.extent, -(-(self.next + reach) // w.slab_depth) * w.slab_depth)
            self.extent = stop
            if self.next < stop:
                plane = w.levels[0].shape[len(self.prefix) + 1:]
                fill = np.full((min(w.slab_depth, stop - self.next),) + plane, w.fill_value, w.dtype)
                while self.next < stop:
                    self.push(fill[:min(len(fill), stop - self.next)], self.next)
        for p in self.pending:
            p.flush()
        self.slab = None

    def overlay(self, level: int, lo: int, hi: int, out: np.ndarray) -> None:
        if level == 0 and self.slab is not None:
            a, b = max(lo, self.slab_start), min(hi, self.slab_start + self.slab_count)
            if a < b:
                out[a - lo:b - lo] = self.slab[a - self.slab_start:b - self.slab_start]
        self.pending[level].overlay(lo, hi, out)


class PyramidWriter:
    """Writes a multiscale image level 0 first, plane by plane or slab by slab, in bounded memory.

    Made by :func:`voxcore.create` (acquisition) and used by :func:`voxcore.save` for sources
    that are not in memory. Use as a context manager or call :meth:`close`. Feed it from one
    thread at a time (the reductions and writes inside are parallel).
    """

    def __init__(self, arrays: list, levels: list[LevelSpec], dims: tuple[str, ...], dtype: np.dtype,
                 method: str, fill_value: Any = 0, on_close: Callable[[], None] | None = None,
                 progress: Progress | None = None, open_time: bool = False):
        self.arrays, self.levels, self.dims = arrays, levels, dims
        # open_time: the t axis (first) grows as time points arrive (create(shape=(None, ...)))
        self.open_time = open_time and bool(dims) and dims[0] == "t"
        self.dtype, self.method, self.fill_value = np.dtype(dtype), method, fill_value
        self._on_close = on_close
        self._progress = progress
        self.axis = next(i for i, d in enumerate(dims) if ngff.AXIS_TYPES[d] == "space")
        p = self.axis
        self.total_factor = levels[-1].factors[p]
        plane_bytes = [int(np.prod(lv.shape[p + 1:], dtype=np.int64)) * self.dtype.itemsize for lv in levels]
        # Each level's write unit along the stream axis: a shard when it fits the budget, else a chunk.
        self.widths = []
        for lv, pb in zip(levels, plane_bytes):
            unit = lv.chunks[p]
            if lv.shards is not None and lv.shards[p] * pb <= SLAB_BUDGET_BYTES:
                unit = lv.shards[p]
            self.widths.append(unit)
        # The level-0 slab: whole write units and a multiple of the total factor (so each slab
        # reduces exactly), or the whole extent when that is smaller.
        depth = self.widths[0] * self.total_factor // math.gcd(self.widths[0], self.total_factor)
        self.slab_depth = max(1, min(depth, levels[0].shape[p]))
        self._volumes: dict[tuple[int, ...], _Volume] = {}
        self._finished: set[tuple[int, ...]] = set()
        self._closed = False

    # -- feeding --------------------------------------------------------------------------
    def _prefix(self, t: int | None, c: int | None, grow: bool = False) -> tuple[int, ...]:
        out = []
        for i, d in enumerate(self.dims[:self.axis]):
            v = t if d == "t" else c
            if v is None:
                raise InvalidArgumentError(f"{d}= is required (dims={self.dims})")
            v = int(v)
            if grow and i == 0 and self.open_time and v >= self.levels[0].shape[0]:
                self._grow(v + 1)
            if not 0 <= v < self.levels[0].shape[i]:
                raise InvalidArgumentError(f"{d} out of range (extent={self.levels[0].shape[i]}, got={v})")
            out.append(v)
        return tuple(out)

    def _grow(self, n: int) -> None:
        """Every level's t extent to n, metadata first (each document one atomic replace): a
        reader, and the disk after a crash, sees the time points up to the newest one, whose
        planes not yet written read as the fill value."""
        if self._closed:
            raise InvalidArgumentError("the writer is closed")
        for k, arr in enumerate(self.arrays):
            arr.resize((n,) + tuple(arr.shape[1:]))
            self.levels[k] = dataclasses.replace(self.levels[k], shape=(n,) + tuple(self.levels[k].shape[1:]))

    @property
    def time_points(self) -> int:
        """The t extent written so far (the shape's first axis)."""
        return self.levels[0].shape[0] if self.dims and self.dims[0] == "t" else 1

    def _volume(self, prefix: tuple[int, ...]) -> _Volume:
        if self._closed:
            raise InvalidArgumentError("the writer is closed")
        if prefix in self._finished:
            raise InvalidArgumentError(f"volume {prefix} is already complete")
        vol = self._volumes.get(prefix)
        if vol is None:
            vol = self._volumes[prefix] = _Volume(self, prefix)
        return vol

    def push(self, planes: np.ndarray, prefix: tuple[int, ...], z: int) -> None:
        """Level-0 planes [z, z + len(planes)) of volume `prefix`, in order."""
        want = self.levels[0].shape[self.axis + 1:]
        planes = np.asarray(planes)
        if planes.shape[1:] != want:
            raise InvalidArgumentError(f"plane shape mismatch (expected={want}, got={planes.shape[1:]})")
        if planes.dtype != self.dtype:
            planes = planes.astype(self.dtype, casting="same_kind")
        vol = self._volume(prefix)
        vol.push(np.ascontiguousarray(planes), int(z))
        if vol.next == vol.extent:
            vol.finish()
            del self._volumes[prefix]
            self._finished.add(prefix)

    def write_plane(self, plane: Any, t: int | None = None, c: int | None = None, z: int | None = None) -> None:
        """Add one plane of level 0 (shape: the axes after z), in acquisition order per (t, c).

        Planes of one (t, c) volume must come in increasing z, each once; volumes may
        interleave. Coarser levels are computed and written as their slabs fill.
        """
        plane = np.asarray(plane)
        if self.dims[self.axis] != "z":  # 2-D images: the plane is the whole (y, x) image
            self.push(plane, self._prefix(t, c, grow=True), 0)
            return
        if z is None:
            raise InvalidArgumentError("z= is required")
        self.push(plane[None], self._prefix(t, c, grow=True), int(z))

    def write(self, block: Any, t: int | None = None, c: int | None = None, z: int = 0) -> None:
        """Add consecutive planes [z, z + len(block)) of level 0 at once (same rules as write_plane)."""
        self.push(np.asarray(block), self._prefix(t, c, grow=True), int(z))

    def _advance(self, planes: int) -> None:
        if self._progress is not None:
            self._progress.advance(planes)

    # -- reading back ---------------------------------------------------------------------
    def get_data(self, t: int | None = None, c: int | None = None, z: int | None = None,
                 level: int = 0) -> np.ndarray:
        """Read back what was written so far (planes still held in memory included).

        z is a plane index of that level; None returns the whole volume of that level.
        """
        if not 0 <= level < len(self.levels):
            raise InvalidArgumentError(f"level out of range (levels={len(self.levels)}, got={level})")
        prefix = self._prefix(t, c)
        extent = self.levels[level].shape[self.axis]
        if z is not None and not 0 <= int(z) < extent:
            raise InvalidArgumentError(f"z out of range (extent={extent}, got={z})")
        lo, hi = (0, extent) if z is None else (int(z), int(z) + 1)
        region = tuple(slice(v, v + 1) for v in prefix) + (slice(lo, hi),)
        out = self.arrays[level].read(region)
        out = out.reshape(out.shape[len(prefix):])
        vol = self._volumes.get(prefix)
        if vol is not None:
            vol.overlay(level, lo, hi, out)
        return out[0] if z is not None else out

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        """Finish every volume (planes never written stay the fill value) and the metadata."""
        if self._closed:
            return
        try:
            for prefix in list(self._volumes):
                self._volumes.pop(prefix).finish()
                self._finished.add(prefix)
            if self._on_close is not None:
                self._on_close()
        finally:
            self._closed = True
            if self._progress is not None:
                self._progress.close()

    def __enter__(self) -> PyramidWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<voxcore.PyramidWriter levels={[lv.shape for lv in self.levels]} method={self.method}>"
