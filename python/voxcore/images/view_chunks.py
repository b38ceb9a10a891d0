"""Chunk maps of a view: sub-views on an absolute grid, run in order or on an executor."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .view_io import dispatch, ints

View = Any  # a voxcore.View (this mixin's subclass)


class ChunkMaps:
    """for_each_chunk, map_chunk, for_zipped_chunks and chunks() of :class:`voxcore.View`."""

    def _check_chunk_shape(self, chunk_shape, read_only: bool, name: str = "chunk_shape") -> tuple[int, ...]:
        if chunk_shape is None:
            return self.write_shape
        cs = ints(chunk_shape, self.ndim, name)
        if any(c <= 0 for c in cs):
            raise InvalidArgumentError(f"{name} must be positive on every axis (got={cs})")
        bad = [i for i, (c, f) in enumerate(zip(cs, self._factors)) if c % f]
        if bad:
            raise InvalidArgumentError(
                f"{name} is not a multiple of level {self._level}'s factors "
                f"(axis={bad[0]}, factors={self._factors}, got={cs})")
        if not read_only and not self._allow_unaligned:
            unit = self.write_shape
            bad = [i for i, (c, u) in enumerate(zip(cs, unit)) if c % u]
            if bad:
                raise InvalidArgumentError(
                    f"{name} of a writable view must be a multiple of its write unit, so that no "
                    f"two chunks share a stored chunk or shard (axis={bad[0]}, expected a multiple "
                    f"of {unit}, got={cs}); use a read-only view or allow_unaligned=True")
        return cs

    def _grid(self, chunk_shape) -> list[list[tuple[int, int]]]:
        """Per axis: the [start, stop) pieces of the view on the absolute grid of chunk_shape."""
        out = []
        for o, s, c in zip(self._offset, self._size, chunk_shape):
            cuts = [o] + list(range((o // c + 1) * c, o + s, c)) + [o + s]
            out.append(list(itertools.pairwise(cuts)))
        return out

    def _pieces(self, chunk_shape, read_only: bool) -> list[View]:
        views = []
        for box in itertools.product(*self._grid(chunk_shape)):
            views.append(self._derive(tuple(a for a, _ in box), tuple(b - a for a, b in box),
                                      read_only, self._allow_unaligned))
        return views

    def chunks(self, chunk_shape: Sequence[int] | None = None) -> Iterator[View]:
        """Sub-views on the absolute grid of chunk_shape (level-0 voxels; default the write
        unit: shards when sharded, else chunks), in C order; edge pieces may be partial."""
        cs = self._check_chunk_shape(chunk_shape, self._read_only)
        for box in itertools.product(*self._grid(cs)):
            yield self._derive(tuple(a for a, _ in box), tuple(b - a for a, b in box),
                               self._read_only, self._allow_unaligned)

    def for_each_chunk(self, fn: Callable[[View], Any], chunk_shape: Sequence[int] | None = None,
                       executor: Any = None, progress: bool = True, *, progress_desc: str | None = None,
                       with_index: bool = False) -> None:
        """Call fn(sub_view) for every chunk of the view (see :meth:`chunks`), through executor
        (None: this thread, in order). The first error is raised; pending chunks are cancelled.
        with_index: fn((sub_view, i)) instead, the one tuple webknossos passes (i: the chunk's
        number in C order; the sub-view's ``bounding_box`` is its box). progress: a bar on
        stderr when it is a terminal; progress_desc: a bar with that label, always (one line
        when stderr is a log), counting level-0 voxels as webknossos does."""
        views = self._pieces(self._check_chunk_shape(chunk_shape, self._read_only), self._read_only)
        jobs = [((v, i),) for i, v in enumerate(views)] if with_index else [(v,) for v in views]
        dispatch(fn, jobs, executor, progress, "for_each_chunk", False, _volumes(views), progress_desc)

    def map_chunk(self, fn: Callable[[View], Any], chunk_shape: Sequence[int] | None = None,
                  executor: Any = None, progress: bool = True, *,
                  progress_desc: str | None = None) -> list:
        """fn(sub_view) for every chunk of the view, like :meth:`for_each_chunk`; returns the
        results in chunk order (C order over the grid)."""
        views = self._pieces(self._check_chunk_shape(chunk_shape, self._read_only), self._read_only)
        return dispatch(fn, [(v,) for v in views], executor, progress, "map_chunk", True,
                        _volumes(views), progress_desc)

    def content_is_equal(self, other: View, chunk_shape: Sequence[int] | None = None,
                         executor: Any = None, *, progress_desc: str | None = None) -> bool:
        """Whether other holds the same values as this view (webknossos' content_is_equal): the
        same data shape, and equal values chunk by chunk (chunk_shape in level-0 voxels of this
        view; default its write unit), each pair of chunks read at the same place relative to
        the views' offsets. Sequential comparison stops at the first difference."""
        if not isinstance(other, ChunkMaps):
            raise InvalidArgumentError(f"other must be a voxcore View (got={type(other).__name__})")
        if other.shape != self.shape or other._factors != self._factors:
            return False
        views = self._pieces(self._check_chunk_shape(chunk_shape, True), True)
        delta = tuple(b - a for a, b in zip(self._offset, other._offset))
        jobs = [(v, other._derive(tuple(o + d for o, d in zip(v._offset, delta)), v._size, True,
                                  other._allow_unaligned)) for v in views]
        try:
            dispatch(_check_equal, jobs, executor, False, "content_is_equal", False, _volumes(views),
                     progress_desc)
        except ContentDiffers:
            return False
        return True

    def for_zipped_chunks(self, fn: Callable[[View, View], Any], target_view: View,
                          source_chunk_shape: Sequence[int] | None = None,
                          target_chunk_shape: Sequence[int] | None = None, executor: Any = None,
                          progress: bool = True, *, progress_desc: str | None = None,
                          with_index: bool = False) -> None:
        """Call fn(source_chunk, target_chunk) for the k-th chunk of this view (read-only
        sub-views) and the k-th chunk of target_view, e.g. to downsample into another level;
        with_index: fn((source_chunk, target_chunk, k)), webknossos' one tuple. progress and
        progress_desc: as :meth:`for_each_chunk`.

        Both views are cut on their own absolute grids. Per axis, the chunk shapes must be in
        the ratio of the view sizes (k = round(larger / smaller)) and give the same number of
        chunks. Missing shapes follow from the other one; with neither, the target's write
        unit (grown to cover the source's write unit where that is larger) is used.
        """
        if not isinstance(target_view, ChunkMaps):
            raise InvalidArgumentError(f"target_view must be a voxcore View (got={type(target_view).__name__})")
        if target_view.ndim != self.ndim:
            raise InvalidArgumentError(
                f"target_view rank differs (expected={self.ndim}, got={target_view.ndim})")
        ratio = []  # per axis: (k, source is the larger)
        for s, t in zip(self._size, target_view._size):
            ratio.append((max(1, round(max(s, t) / min(s, t))), s >= t))

        def to_target(cs):
            out = []
            for axis, (c, (k, down)) in enumerate(zip(cs, ratio)):
                if not down:
                    out.append(c * k)
                elif c % k:
                    raise InvalidArgumentError(
                        f"source_chunk_shape does not divide by the view size ratio "
                        f"(axis={axis}, ratio={k}, got={tuple(cs)}); give target_chunk_shape")
                else:
                    out.append(c // k)
            return tuple(out)

        def to_source(cs):
            out = []
            for axis, (c, (k, down)) in enumerate(zip(cs, ratio)):
                if down:
                    out.append(c * k)
                elif c % k:
                    raise InvalidArgumentError(
                        f"target_chunk_shape does not divide by the view size ratio "
                        f"(axis={axis}, ratio={k}, got={tuple(cs)}); give source_chunk_shape")
                else:
                    out.append(c // k)
            return tuple(out)

        if source_chunk_shape is None and target_chunk_shape is None:
            tw = target_view.write_shape
            want = [max(1, sw // k) if down else sw * k
                    for sw, (k, down) in zip(self.write_shape, ratio)]
            target_chunk_shape = tuple(-(-max(u, w) // u) * u for u, w in zip(tw, want))
        if target_chunk_shape is None:
            source_chunk_shape = ints(source_chunk_shape, self.ndim, "source_chunk_shape")
            target_chunk_shape = to_target(source_chunk_shape)
        elif source_chunk_shape is None:
            target_chunk_shape = ints(target_chunk_shape, self.ndim, "target_chunk_shape")
            source_chunk_shape = to_source(target_chunk_shape)
        scs = self._check_chunk_shape(source_chunk_shape, True, "source_chunk_shape")
        tcs = target_view._check_chunk_shape(target_chunk_shape, target_view._read_only,
                                             "target_chunk_shape")
        for axis, (a, b, (k, down)) in enumerate(zip(scs, tcs, ratio)):
            if (a != b * k) if down else (b != a * k):
                raise InvalidArgumentError(
                    f"source and target chunk shapes are not in the ratio of the view sizes "
                    f"(axis={axis}, source size={self._size[axis]}, target size="
                    f"{target_view._size[axis]}, source_chunk_shape={scs}, target_chunk_shape={tcs})")
        sg, tg = self._grid(scs), target_view._grid(tcs)
        counts = ([len(g) for g in sg], [len(g) for g in tg])
        if counts[0] != counts[1]:
            raise InvalidArgumentError(
                f"source and target split into different numbers of chunks per axis "
                f"(source={tuple(counts[0])} with {scs}, target={tuple(counts[1])} with {tcs})")
        sources = self._pieces(scs, True)
        jobs = list(zip(sources, target_view._pieces(tcs, target_view._read_only)))
        if with_index:
            jobs = [((a, b, k),) for k, (a, b) in enumerate(jobs)]
        dispatch(fn, jobs, executor, progress, "for_zipped_chunks", False, _volumes(sources), progress_desc)


def _volumes(views: list) -> list[int]:
    """Level-0 voxels of each view: what a progress bar counts."""
    return [math.prod(v._size) for v in views]


class ContentDiffers(Exception):
    """Two chunks compared by content_is_equal differ (stops the comparison)."""


def _check_equal(a: View, b: View) -> None:
    """ContentDiffers unless two views of one shape hold equal values (NaN equal to NaN)."""
    x, y = a.read(), b.read()
    if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc"):
        raise ContentDiffers(f"{a.offset} and {b.offset}")

