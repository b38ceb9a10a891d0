"""The image model: what every kind of image is to the rest of voxcore.

An image has a shape, dtype and named axes (``dims``), voxel geometry (``scale``,
``translation``, ``units``, a 4x4 ``affine`` over x, y, z) and one or more resolution
``levels`` (finest first). It reads regions into numpy (``read``), gives views on a level
(``view``) and dask arrays of a level (``to_dask``). The operations (pyramids, views, dask,
DataDefinition, ortho), the writers (``save``, ``convert``) and the CLI use only this; they
never ask which kind of image they hold.

A new kind of image (a TIFF slide, a plate's field) is one module with one subclass of
:class:`ImageModel` plus its metadata mapping in ``formats/``, and one line in the registry of
openers (:mod:`voxcore.images.open`).

Subclasses implement ``shape``, ``dtype``, ``dims`` and ``_read_level0``; the rest has
defaults here that a kind overrides where it knows better (its levels, its storage chunks, how
a worker reopens it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._resources import check_allocation
from ..errors import InvalidArgumentError, LimitExceededError
from .blocks import to_dask
from .view import View


class ImageModel:
    """Base of every image kind (Image, NiftiImage, MemoryImage, ...)."""

    # -- description: shape, dtype, dims are the subclass's ---------------------------------
    shape: tuple[int, ...]
    dtype: np.dtype
    dims: tuple[str, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def scale(self) -> tuple[float, ...]:
        """Voxel size of level 0 per axis."""
        return (1.0,) * self.ndim

    @property
    def translation(self) -> tuple[float, ...]:
        """Position of level 0's first voxel centre per axis."""
        return (0.0,) * self.ndim

    @property
    def units(self) -> tuple[str | None, ...]:
        return (None,) * self.ndim

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from (x, y, z) voxel indices to (x, y, z) positions (scale and translation)."""
        out = np.eye(4)
        dims, scale, translation = self.dims, self.scale, self.translation
        for k, d in enumerate(("x", "y", "z")):
            if d in dims:
                i = dims.index(d)
                out[k, k] = scale[i]
                out[k, 3] = translation[i]
        return out

    @property
    def channels(self) -> list[dict] | None:
        """Channel metadata (OME omero: label, color, window {min, max, start, end}, active), one
        per index of the c axis; None when the image has none."""
        return None

    @property
    def orientation(self) -> tuple[str, ...] | None:
        """Anatomical axis codes (e.g. ('R', 'A', 'S')) when known, else None."""
        return None

    @property
    def anatomical(self) -> bool:
        """True when ``affine`` maps voxels into an anatomical RAS+ world (NIfTI): renderers and
        ortho views then move the axes into that frame (see :meth:`canonical`)."""
        return False

    def canonical(self) -> ImageModel:
        """The image with its axes moved to RAS+ (anatomical images), else the image itself."""
        return self

    @property
    def in_memory(self) -> bool:
        """True when the voxels are held in this process (a numpy array), not read from files."""
        return False

    @property
    def levels(self) -> list[Any]:
        """Resolution levels, finest first; each has shape, scale, translation, chunks, shards,
        image (the level as an image) and view(). A single-resolution image is its own level."""
        return [Level(self, 0, self.scale, self.translation)]

    @property
    def chunks(self) -> tuple[int, ...]:
        """The read unit (a storage chunk); the whole image when nothing is chunked."""
        return tuple(self.shape)

    @property
    def shards(self) -> tuple[int, ...] | None:
        return None

    @property
    def fill_value(self) -> Any:
        return 0

    @property
    def source(self) -> str:
        """Where the image comes from, for messages."""
        return f"<{type(self).__name__}>"

    # -- reading ----------------------------------------------------------------------------
    def _read_level0(self, region: Any) -> np.ndarray:
        """The region (numpy indexing) of level 0 as stored (a subclass's)."""
        raise NotImplementedError

    def read(self, region: Any = None, *, level: int = 0, out: np.ndarray | None = None,
             dtype: Any = None, pad: bool = False) -> np.ndarray:
        """A region (numpy indexing, or {dim: index}) of a level as a numpy array.

        out: a destination of the result's shape and dtype (returned). dtype: the values as
        that type. pad=True: slices are taken literally (unit steps only) and what lies outside
        the image is the fill value.
        """
        if level:
            return self._level_image(level).read(region, out=out, dtype=dtype, pad=pad)
        if pad:
            data = self._read_padded(region)
        else:
            data = self._read_level0(self._index(region))
        if dtype is not None:
            data = np.asarray(data, dtype=np.dtype(dtype))
        return copy_into(data, out)

    def _index(self, region: Any) -> tuple:
        """region as a numpy index tuple: None -> everything; {dim: index} -> by name."""
        if region is None:
            return (slice(None),) * self.ndim
        if isinstance(region, dict):
            unknown = [k for k in region if k not in self.dims]
            if unknown:
                raise InvalidArgumentError(f"unknown dimension {unknown[0]!r}; dims are {self.dims}")
            return tuple(region.get(d, slice(None)) for d in self.dims)
        return region if isinstance(region, tuple) else (region,)

    def _read_padded(self, region: Any) -> np.ndarray:
        """A box given by unit-step slices, read where it overlaps the image, fill value elsewhere."""
        index = self._index(region)
        if len(index) != self.ndim or not all(isinstance(s, slice) and s.step in (None, 1) for s in index):
            raise InvalidArgumentError("pad=True takes one unit-step slice per axis")
        lo = [0 if s.start is None else int(s.start) for s in index]
        hi = [n if s.stop is None else int(s.stop) for s, n in zip(index, self.shape)]
        shape = tuple(max(0, b - a) for a, b in zip(lo, hi))
        out = alloc(shape, self.dtype, f"padded read of shape {shape} from {self.source}")
        out[...] = self.fill_value
        inner = tuple(slice(max(0, a), min(n, b)) for a, b, n in zip(lo, hi, self.shape))
        if all(s.start < s.stop for s in inner):
            dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(inner, lo))
            out[dst] = self._read_level0(inner)
        return out

    def _level_image(self, level: int) -> ImageModel:
        levels = self.levels
        if isinstance(level, bool) or not 0 <= int(level) < len(levels):
            raise InvalidArgumentError(f"level out of range (levels={len(levels)}, got={level})")
        return levels[int(level)].image

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.read()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __len__(self) -> int:
        return self.shape[0]

    # -- views and scale-out ----------------------------------------------------------------
    def view(self, offset: Sequence[int] | None = None, size: Sequence[int] | None = None, *,
             level: int = 0, read_only: bool = False, allow_unaligned: bool = False):
        """A :class:`voxcore.View`: a box on one level, offset and size in level-0 voxels
        (default: the whole level). See :mod:`voxcore.images.view`."""
        return View(self, level, offset, size, read_only=read_only or not self.writable,
                    allow_unaligned=allow_unaligned)

    @property
    def writable(self) -> bool:
        """True when write() stores into the image."""
        return False

    def to_ngff(self, level: int = 0) -> Any:
        """This level as an ngff-zarr ``NgffImage`` (its data a dask array read by the core;
        dims, scale, translation, units and channel names carried): ngff-zarr's pipelines take
        it as their own. ``vc.from_array(ngff_image)`` goes the other way."""
        import ngff_zarr

        lv = self.levels[level] if level else None
        dims = list(self.dims)
        scale = lv.scale if lv is not None else self.scale
        translation = lv.translation if lv is not None else self.translation
        units = {d: u for d, u in zip(dims, self.units) if u}
        chans = getattr(self, "channels", None)
        return ngff_zarr.NgffImage(
            data=self.to_dask(level=level), dims=dims, scale={d: float(v) for d, v in zip(dims, scale)},
            translation={d: float(v) for d, v in zip(dims, translation)}, name=getattr(self, "name", None) or "image",
            axes_units=units or None,
            channel_names=[c.get("label") for c in chans] if chans else None)

    def to_dask(self, level: int = 0, chunks: Any = None):
        """A dask array of one level whose blocks are read by the core (storage aligned unless
        chunks says otherwise); see :func:`voxcore.images.blocks.to_dask`."""
        return to_dask(self, level=level, chunks=chunks)

    def block_unit(self, level: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(unit, preferred) block shapes of a level for dask: blocks are whole multiples of
        unit, and start from preferred (a shard, else a chunk) before growing."""
        img = self._level_image(level) if level else self
        unit = tuple(img.chunks)
        return unit, tuple(img.shards) if img.shards else unit

    def reference(self) -> tuple | None:
        """(function, args) that reopen this image in another process from its files (small
        to send); None when it has no files to reopen (the image itself is then sent)."""
        return None

    def nifti_parts(self) -> tuple | None:
        """(x-fastest array, affine, header, slope, inter, units) when the image is a NIfTI
        file's own (its header travels with it); None otherwise."""
        return None

    def summary(self) -> list[str] | None:
        """Lines for ``voxcore info`` when the kind describes itself (a slide); None: the CLI's
        own description (Zarr, OME-Zarr, NIfTI)."""
        return None

    def ome_image(self) -> Any:
        """This image as an OME-ordered in-memory image, when its kind maps axes differently
        (NIfTI: x, y, z reversed); None when :func:`voxcore.from_array` takes it as it is."""
        return None


class Level:
    """One resolution level of an image: its image, where its voxels lie, and its storage."""

    def __init__(self, owner: ImageModel, index: int, scale: tuple[float, ...],
                 translation: tuple[float, ...], image: ImageModel | None = None, path: str = ""):
        self.owner, self.index = owner, index
        self.scale, self.translation = scale, translation
        self.image = owner if image is None else image
        self.path = path

    @property
    def shape(self) -> tuple[int, ...]:
        return self.image.shape

    @property
    def chunks(self) -> tuple[int, ...]:
        return self.image.chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self.image.shards

    def view(self, offset: Sequence[int] | None = None, size: Sequence[int] | None = None, *,
             read_only: bool = False, allow_unaligned: bool = False):
        """A :class:`voxcore.View` on this level; offset and size in level-0 voxels."""
        return self.owner.view(offset, size, level=self.index, read_only=read_only,
                               allow_unaligned=allow_unaligned)

    def __repr__(self) -> str:
        return (f"<voxcore.{type(self).__name__} {self.path} shape={self.shape} scale={self.scale} "
                f"translation={self.translation}>")


def alloc(shape: tuple[int, ...], dtype: Any, what: str) -> np.ndarray:
    """An empty array, refused (LimitExceededError) before allocating if it cannot fit."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    check_allocation(nbytes, what)
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        raise LimitExceededError(f"{what}: cannot allocate the {nbytes}-byte result") from None


def copy_into(data: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """data, or data copied into out (checked for shape and dtype)."""
    if out is None:
        return data
    check_out(out, data.shape, data.dtype)
    np.copyto(out, data)
    return out


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """InvalidArgumentError (TypeError for a non-array) unless out fits a result."""
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array")
    if out.shape != tuple(shape):
        raise InvalidArgumentError(f"out has the wrong shape (expected={tuple(shape)}, got={out.shape})")
    if out.dtype != dtype:
        raise InvalidArgumentError(f"out has the wrong dtype (expected={dtype}, got={out.dtype})")
