"""Views: webknossos-style boxes on one level of an image, chunk maps, buffered plane I/O.

A :class:`View` is a box on one resolution level of an :class:`~voxcore.Image` (an OME-Zarr
level, or a plain Zarr array as its own level 0). Get one from ``img.view(...)``,
``img.levels[k].view(...)`` or ``view.get_view(...)``.

Coordinates (as webknossos' "Mag(1)" coordinates):

- Offsets and sizes are in **level-0 voxels**, on **every axis of the array**, in the array's
  axis order (t, c, z, y, x ...). A level whose OME scale is ``f`` times level 0's on an axis
  (f an integer; 1 for axes that are not downsampled, as t and c usually are) stores the box
  ``[offset / f, (offset + size) / f)`` of its own voxels, so a view's offset and size are
  multiples of f. To pick a channel or a time point, give it a size of 1 (times f) there.
- Data going in and out (``read``, ``write``, the planes of the slice reader/writer) is in the
  level's own voxels: ``view.shape == size // factors``.

Rules:

- ``read`` may reach anywhere; what lies outside the array is the fill value.
- ``write`` is confined to the view (:class:`~voxcore.InvalidArgumentError` otherwise) and
  refused on read-only views. A writable view lies inside its parent view (the root: inside
  the level's array); a read-only view may exceed both.
- A write whose box is not aligned to the write unit (the shard of a sharded array, else the
  chunk; the array's edge counts as aligned) emits :class:`UnalignedWriteWarning`: every chunk
  is one file written whole, so a partly covered chunk (or shard) is read, merged and
  rewritten. ``allow_unaligned=True`` on the view or on ``write`` silences it.
- Chunk maps cut a view on the absolute grid of ``chunk_shape`` (level-0 voxels; default the
  write unit), so edge pieces may be partial. For a writable view, chunk_shape must be a
  multiple of the write unit (so that no two workers rewrite the same chunk or shard) unless
  the view allows unaligned writes.

Chunk maps call ``fn(view)`` (``for_each_chunk``, ``map_chunk``) or ``fn(source, target)``
(``for_zipped_chunks``); ``with_index=True`` passes webknossos' one tuple ``(view, i)`` /
``(source, target, i)`` instead. Boxes may be given as :class:`~voxcore.BoundingBox`
(``absolute_bounding_box=``, ``relative_bounding_box=``); ``view.bounding_box`` and
``view.mag`` describe a view as webknossos does, in the array's axis order. A write beyond a
whole-level view grows every level's array with ``allow_resize=True`` (the coarser levels'
new parts read as the fill value until they are written or rebuilt). ``executor`` is None (run in the calling thread, in order: the core is already
multi-threaded inside each read and write), a ``concurrent.futures.Executor`` (thread or
process pool), or a ``dask.distributed.Client``. Views, Images and ImageLevels pickle as a
path (or store) plus a box, never data, so they travel to processes and clusters cheaply.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._resources import SLAB_BUDGET_BYTES
from ..errors import InvalidArgumentError, UnalignedWriteWarning, UnsupportedError
from .bbox import BoundingBox, Mag
from .view_chunks import ChunkMaps
from .view_io import SliceReader, SliceWriter, ints

__all__ = ["SliceReader", "SliceWriter", "UnalignedWriteWarning", "View"]


def _level_factors(image, level: int) -> tuple[int, ...]:
    """Integer downsampling factor of each axis of `level` relative to level 0 (OME scales)."""
    levels = image.levels
    if not 0 <= level < len(levels):
        raise InvalidArgumentError(f"level out of range (levels={len(levels)}, got={level})")
    if level == 0:
        return (1,) * image.ndim
    out = []
    for axis, (s0, sk) in enumerate(zip(levels[0].scale, levels[level].scale)):
        r = sk / s0 if s0 else math.nan
        k = round(r) if math.isfinite(r) else 0
        if k < 1 or abs(r - k) > 1e-6 * k:
            raise UnsupportedError(
                f"level {level} is not an integer downsampling of level 0 "
                f"(axis={axis}, scale0={s0}, scale={sk})")
        out.append(k)
    return tuple(out)


class View(ChunkMaps):
    """A box on one level of an image; offsets and sizes in level-0 voxels on every axis.

    Made by ``Image.view``, ``ImageLevel.view`` or ``View.get_view``. ``View(image, level,
    offset, size)`` is the same as ``image.view(offset, size, level=level)``; offset defaults
    to 0s and size to the level's whole extent (its shape times the level's factors).
    """

    def __init__(self, image, level: int = 0, offset: Sequence[int] | None = None,
                 size: Sequence[int] | None = None, *, read_only: bool = False,
                 allow_unaligned: bool = False):
        level = int(level)
        factors = _level_factors(image, level)
        array = image.levels[level].image
        n = image.ndim
        extent = tuple(s * f for s, f in zip(array.shape, factors))
        off = (0,) * n if offset is None else ints(offset, n, "offset")
        if size is None:
            size = tuple(e - o for e, o in zip(extent, off))
        self._set(image, level, factors, off, ints(size, n, "size"), bool(read_only),
                  bool(allow_unaligned))
        self._check_box(parent=(0,) * n, parent_size=extent, what="the level's array")

    def _set(self, image, level, factors, offset, size, read_only, allow_unaligned) -> None:
        self._image, self._level, self._factors = image, level, factors
        self._offset, self._size = offset, size
        self._read_only, self._allow_unaligned = read_only, allow_unaligned
        self._array = image.levels[level].image

    def _derive(self, offset, size, read_only, allow_unaligned) -> View:
        v = View.__new__(View)
        v._set(self._image, self._level, self._factors, offset, size, read_only, allow_unaligned)
        return v

    def _check_box(self, parent, parent_size, what: str) -> None:
        for name, vec in (("offset", self._offset), ("size", self._size)):
            bad = [i for i, (v, f) in enumerate(zip(vec, self._factors)) if v % f]
            if bad:
                raise InvalidArgumentError(
                    f"view {name} is not a multiple of level {self._level}'s factors "
                    f"(axis={bad[0]}, factors={self._factors}, got={vec})")
        if any(s <= 0 for s in self._size):
            raise InvalidArgumentError(f"view size must be positive on every axis (got={self._size})")
        if not self._read_only:
            outside = any(o < p or o + s > p + ps for o, s, p, ps
                          in zip(self._offset, self._size, parent, parent_size))
            if outside:
                raise InvalidArgumentError(
                    f"a writable view must lie inside {what} (offset={self._offset}, "
                    f"size={self._size}, bounds offset={tuple(parent)}, size={tuple(parent_size)}); "
                    "pass read_only=True to read beyond it")

    # -- description ------------------------------------------------------------------------
    @property
    def image(self):
        """The Image (level 0 of an OME-Zarr group) this view belongs to."""
        return self._image

    @property
    def array(self):
        """The Image of this view's level (its Zarr array)."""
        return self._array

    @property
    def level(self) -> int:
        return self._level

    @property
    def factors(self) -> tuple[int, ...]:
        """Downsampling factor of each axis relative to level 0 (webknossos' mag)."""
        return self._factors

    @property
    def offset(self) -> tuple[int, ...]:
        """Absolute offset in level-0 voxels."""
        return self._offset

    @property
    def size(self) -> tuple[int, ...]:
        """Size in level-0 voxels."""
        return self._size

    @property
    def bounding_box(self) -> BoundingBox:
        """The view's box (offset, size) in level-0 voxels, as webknossos' ``bounding_box``."""
        return BoundingBox(self._offset, self._size)

    @property
    def mag(self) -> Mag:
        """The level's magnification (its factors), as webknossos' ``mag``."""
        return Mag(self._factors)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the view's data in the level's voxels (size // factors)."""
        return tuple(s // f for s, f in zip(self._size, self._factors))

    @property
    def level_offset(self) -> tuple[int, ...]:
        """Offset in the level's voxels (offset // factors)."""
        return tuple(o // f for o, f in zip(self._offset, self._factors))

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def allow_unaligned(self) -> bool:
        return self._allow_unaligned

    @property
    def dims(self) -> tuple[str, ...]:
        return self._image.dims

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return len(self._size)

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """The storage chunk (read unit) in level-0 voxels."""
        return tuple(c * f for c, f in zip(self._array.chunks, self._factors))

    @property
    def write_shape(self) -> tuple[int, ...]:
        """The write unit in level-0 voxels: the shard of a sharded array, else the chunk."""
        unit = self._array.shards or self._array.chunks
        return tuple(c * f for c, f in zip(unit, self._factors))

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "writable"
        return (f"<voxcore.View {self._array.source} level={self._level} offset={self._offset} "
                f"size={self._size} factors={self._factors} {mode}>")

    # -- pickling: the image travels as its path (see Image.__reduce__) ---------------------
    def __getstate__(self) -> dict:
        return {"image": self._image, "level": self._level, "factors": self._factors,
                "offset": self._offset, "size": self._size, "read_only": self._read_only,
                "allow_unaligned": self._allow_unaligned}

    def __setstate__(self, state: dict) -> None:
        self._set(state["image"], state["level"], state["factors"], state["offset"], state["size"],
                  state["read_only"], state["allow_unaligned"])

    # -- sub-views --------------------------------------------------------------------------
    def _box(self, relative_offset, absolute_offset, size, default_to_view: bool,
             relative_bounding_box=None, absolute_bounding_box=None):
        """Absolute offset and size in level-0 voxels from the keyword arguments."""
        n = self.ndim
        given = [k for k, v in (("relative_offset", relative_offset), ("absolute_offset", absolute_offset),
                                ("relative_bounding_box", relative_bounding_box),
                                ("absolute_bounding_box", absolute_bounding_box)) if v is not None]
        if len(given) > 1:
            raise InvalidArgumentError(f"give {' or '.join(given)}, not both")
        box = absolute_bounding_box if absolute_bounding_box is not None else relative_bounding_box
        if box is not None:
            if not isinstance(box, BoundingBox):
                raise InvalidArgumentError(f"{given[0]} must be a voxcore BoundingBox (got={type(box).__name__})")
            if box.ndim != n:
                raise InvalidArgumentError(f"{given[0]} rank differs from the array (expected={n}, got={box.ndim})")
            if size is not None:
                raise InvalidArgumentError(f"size comes from {given[0]}: give one of them")
            off = box.topleft
            if relative_bounding_box is not None:
                off = tuple(a + b for a, b in zip(self._offset, off))
            return off, box.size
        if absolute_offset is not None:
            off = ints(absolute_offset, n, "absolute_offset")
        elif relative_offset is not None:
            off = tuple(a + b for a, b in zip(self._offset, ints(relative_offset, n, "relative_offset")))
        else:
            off = self._offset
        if size is None:
            if not default_to_view:
                raise InvalidArgumentError("size is needed")
            sz = tuple(o + s - a for o, s, a in zip(self._offset, self._size, off))
        else:
            sz = ints(size, n, "size")
        return off, sz

    def get_view(self, relative_offset: Sequence[int] | None = None,
                 absolute_offset: Sequence[int] | None = None, size: Sequence[int] | None = None,
                 *, relative_bounding_box: BoundingBox | None = None,
                 absolute_bounding_box: BoundingBox | None = None, read_only: bool | None = None,
                 allow_unaligned: bool | None = None) -> View:
        """A view of a box of this one (level-0 voxels; default offset: this view's, default
        size: up to this view's end; or a BoundingBox, absolute or relative to this view's
        offset). A writable sub-view must lie inside this view; a read-only one may exceed
        it. read_only defaults to this view's (a read-only view only gives read-only views)."""
        if read_only is None:
            read_only = self._read_only
        elif not read_only and self._read_only:
            raise InvalidArgumentError("a read-only view only gives read-only views (got read_only=False)")
        off, sz = self._box(relative_offset, absolute_offset, size, True, relative_bounding_box,
                            absolute_bounding_box)
        v = self._derive(off, sz, bool(read_only),
                         self._allow_unaligned if allow_unaligned is None else bool(allow_unaligned))
        v._check_box(self._offset, self._size, "its parent view")
        return v

    # -- reading and writing ----------------------------------------------------------------
    def _level_box(self, off, sz, what: str):
        bad = [i for i, (o, s, f) in enumerate(zip(off, sz, self._factors)) if o % f or s % f]
        if bad:
            raise InvalidArgumentError(
                f"{what} box is not a multiple of level {self._level}'s factors "
                f"(axis={bad[0]}, factors={self._factors}, offset={off}, size={sz})")
        return (tuple(o // f for o, f in zip(off, self._factors)),
                tuple(s // f for s, f in zip(sz, self._factors)))

    def read(self, relative_offset: Sequence[int] | None = None,
             absolute_offset: Sequence[int] | None = None, size: Sequence[int] | None = None,
             *, relative_bounding_box: BoundingBox | None = None,
             absolute_bounding_box: BoundingBox | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
        """Read the view (or a box: offset and size in level-0 voxels, default size up to the
        view's end; or a BoundingBox) into a numpy array of the level's voxels. Outside the
        array: the fill value."""
        off, sz = self._box(relative_offset, absolute_offset, size, True, relative_bounding_box,
                            absolute_bounding_box)
        if any(s < 0 for s in sz):
            raise InvalidArgumentError(f"read size must not be negative (got={sz})")
        start, shape = self._level_box(off, sz, "read")
        region = tuple(slice(a, a + s) for a, s in zip(start, shape))
        return self._array.read(region, out=out, pad=True)

    def write(self, data: Any, relative_offset: Sequence[int] | None = None,
              absolute_offset: Sequence[int] | None = None, *,
              relative_bounding_box: BoundingBox | None = None,
              absolute_bounding_box: BoundingBox | None = None, allow_resize: bool = False,
              allow_unaligned: bool | None = None, casting: str = "same_kind") -> None:
        """Write data (the level's voxels, one axis per array axis) with its first voxel at the
        offset (level-0 voxels; default: the view's offset), or into a BoundingBox (its size
        must be the data's). The box must lie inside the view, unless allow_resize on a view of
        a whole level (webknossos' ``allow_resize``): then the image's arrays, every level of
        it, grow to hold the box (their metadata documents replaced atomically, one by one)
        and the view grows with them. Growing is for one writer at a time; the box must not
        start before 0, nor grow the channel axis. Unaligned boxes warn
        (UnalignedWriteWarning) unless allowed here or on the view. casting: as
        :meth:`Image.write`."""
        if self._read_only:
            raise InvalidArgumentError(f"cannot write to a read-only view ({self!r})")
        arr = np.asarray(data)
        if arr.ndim != self.ndim:
            raise InvalidArgumentError(
                f"data rank differs from the view (expected={self.ndim}, got={arr.ndim})")
        off, box_size = self._box(relative_offset, absolute_offset, None, True, relative_bounding_box,
                                  absolute_bounding_box)
        sz = tuple(s * f for s, f in zip(arr.shape, self._factors))
        if (relative_bounding_box is not None or absolute_bounding_box is not None) and box_size != sz:
            raise InvalidArgumentError(
                f"data shape {arr.shape} does not fill the bounding box (size={box_size} in level-0 "
                f"voxels, factors={self._factors})")
        start, shape = self._level_box(off, sz, "write")
        if any(o < vo or o + s > vo + vs for o, s, vo, vs in zip(off, sz, self._offset, self._size)):
            if not allow_resize:
                raise InvalidArgumentError(
                    f"write outside the view (offset={off}, size={sz} in level-0 voxels; view "
                    f"offset={self._offset}, size={self._size}); a view of a whole level grows "
                    "with allow_resize=True")
            self._grow(off, sz)
        if not (self._allow_unaligned if allow_unaligned is None else allow_unaligned):
            self._warn_unaligned(start, shape, stacklevel=3)
        if all(shape):
            self._array.write(arr, start, casting=casting, allow_unaligned=True)  # warned above

    def _grow(self, off: tuple[int, ...], sz: tuple[int, ...]) -> None:
        """Grow every level of the image, and this whole-level view, to hold the box."""
        extent = tuple(s * f for s, f in zip(self._array.shape, self._factors))
        if any(o for o in self._offset) or self._size != extent:
            raise InvalidArgumentError(
                f"only a view of a whole level grows (this one: offset={self._offset}, "
                f"size={self._size}; the level: size={extent})")
        if any(o < 0 for o in off):
            raise InvalidArgumentError(f"an array grows at its end only (the box starts at {off})")
        end = tuple(max(e, o + s) for e, o, s in zip(extent, off, sz))
        dims = self.dims
        grown = [d for d, a, b in zip(dims, extent, end) if b > a]
        if "c" in grown:
            raise InvalidArgumentError("the channel axis does not grow (its channels are described)")
        levels = self._image.levels
        if not all(getattr(lv.image, "resizable", False) for lv in levels):
            raise UnsupportedError(f"{self._array.source}: this image cannot grow its arrays (open it by path)")
        for k in reversed(range(len(levels))):  # coarsest first: level 0 grows last
            f = _level_factors(self._image, k)
            img = levels[k].image
            img.resize(tuple(max(n, -(-e // fk)) for n, e, fk in zip(img.shape, end, f)))
        self._size = tuple(s * f for s, f in zip(self._array.shape, self._factors))

    def _warn_unaligned(self, start, shape, stacklevel: int) -> None:
        unit = self._array.shards or self._array.chunks
        full = self._array.shape
        for axis, (a, s, u, n) in enumerate(zip(start, shape, unit, full)):
            if s and (a % u or ((a + s) % u and a + s != n)):
                kind = "shard" if self._array.shards else "chunk"
                warnings.warn(UnalignedWriteWarning(
                    f"write of box start={start} shape={shape} is not aligned to the {kind} "
                    f"shape {tuple(unit)} (axis={axis}): partly covered {kind}s are read, merged "
                    "and rewritten (pass allow_unaligned=True to accept that)"), stacklevel=stacklevel)
                return

    # -- planes -----------------------------------------------------------------------------
    def _axis(self, axis: int | str | None) -> int:
        if axis is None:
            return self.dims.index("z") if "z" in self.dims else 0
        if isinstance(axis, str):
            if axis not in self.dims:
                raise InvalidArgumentError(f"unknown axis {axis!r} (dims={self.dims})")
            return self.dims.index(axis)
        a = int(axis)
        if not -self.ndim <= a < self.ndim:
            raise InvalidArgumentError(f"axis out of range (ndim={self.ndim}, got={axis})")
        return a % self.ndim

    def slice_reader(self, axis: int | str | None = None, buffer: int | None = None) -> SliceReader:
        """Iterate the view's (ndim-1)-D planes along axis (default: 'z' when dims name it,
        else 0), reading `buffer` planes at a time (default: the chunk depth along axis)."""
        a = self._axis(axis)
        return SliceReader(self, a, self._array.chunks[a] if buffer is None else int(buffer))

    def slice_writer(self, axis: int | str | None = None, buffer: int | None = None) -> SliceWriter:
        """A context manager taking the view's planes in order along axis with send(plane),
        writing `buffer` planes at a time (default: the write unit's depth along axis, a shard
        when it fits 256 MiB, else a chunk). See :class:`SliceWriter`."""
        if self._read_only:
            raise InvalidArgumentError(f"cannot write to a read-only view ({self!r})")
        a = self._axis(axis)
        if buffer is None:
            plane_bytes = math.prod(s for i, s in enumerate(self.shape) if i != a) * self.dtype.itemsize
            buffer = self._array.chunks[a]
            shards = self._array.shards
            if shards is not None and shards[a] * plane_bytes <= SLAB_BUDGET_BYTES:
                buffer = shards[a]
        return SliceWriter(self, a, int(buffer))


