"""In-memory images and multiscale pyramids, saved as OME-Zarr 0.4 (Zarr v2) or 0.5 (Zarr v3).

>>> img = vc.from_array(arr, dims=("z", "y", "x"), scale=(2.0, 0.5, 0.5), units=("micrometer",) * 3)
>>> pyr = vc.build_pyramid(img, factors="auto", method="mean")
>>> vc.save(pyr, "out.ome.zarr", version="0.5")
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import _core
from .errors import InvalidArgumentError
from .formats import ngff

METHODS = ("mean", "gaussian", "mode", "nearest", "min", "max")
# Methods that reduce a window of f voxels to one value whose centre is the window's centre:
# the level's translation shifts by (f - 1) / 2 voxels of level 0. "nearest" takes array[::f],
# whose first voxel is level 0's first voxel: the translation stays. (FORMATS.md: our rule.)
WINDOW_METHODS = ("mean", "gaussian", "mode", "min", "max")

AUTO_CHUNK = 64


@dataclass
class Level:
    """One resolution level: its data and where its voxels lie."""

    data: np.ndarray
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    factors: tuple[int, ...]  # cumulative, relative to level 0, one per axis

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


class MemoryImage:
    """A numpy array with OME axes, voxel size (scale), origin (translation) and units."""

    def __init__(self, data: np.ndarray, dims, scale, translation, units, name):
        self.data = data
        self.dims = dims
        self.scale = scale
        self.translation = translation
        self.units = units
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        return f"<voxcore.MemoryImage shape={self.shape} dtype={self.dtype} dims={self.dims} scale={self.scale}>"


class Pyramid:
    """Levels of one image, level 0 first. Built by :func:`build_pyramid`."""

    def __init__(self, image: MemoryImage, levels: list[Level], method: str | None):
        self.image = image
        self.levels = levels
        self.method = method

    @property
    def dims(self) -> tuple[str, ...]:
        return self.image.dims

    def __len__(self) -> int:
        return len(self.levels)

    def __repr__(self) -> str:
        return f"<voxcore.Pyramid method={self.method} shapes={[lv.shape for lv in self.levels]}>"


def from_array(array: Any, dims: Sequence[str] | None = None, scale: Sequence[float] | None = None,
               translation: Sequence[float] | None = None, units: Sequence[str | None] | None = None,
               name: str | None = None) -> MemoryImage:
    """An in-memory image from a numpy array (not copied when already a native-order ndarray).

    dims default by rank: (y, x), (z, y, x), (c, z, y, x), (t, c, z, y, x): the last 2-3 axes are
    space, earlier ones channel then time. scale defaults to 1 per axis, translation to 0, units
    to none. units are UDUNITS-2 names ("micrometer", "second"); channel axes take None.
    """
    arr = np.asarray(array)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    dims = ngff.default_dims(arr.ndim) if dims is None else tuple(str(d) for d in dims)
    if len(dims) != arr.ndim:
        raise InvalidArgumentError(f"dims length differs from the array rank (expected={arr.ndim}, got={len(dims)})")
    ngff.check_axes(dims, units)
    n = arr.ndim
    scale_t = ngff.check_vector((1.0,) * n if scale is None else scale, n, "scale", positive=True)
    trans_t = ngff.check_vector((0.0,) * n if translation is None else translation, n, "translation")
    units_t = (None,) * n if units is None else tuple(units)
    return MemoryImage(arr, dims, scale_t, trans_t, units_t, name)


def _space(dims) -> list[int]:
    return [i for i, d in enumerate(dims) if ngff.AXIS_TYPES[d] == "space"]


def _auto_factors(img: MemoryImage) -> list[tuple[int, ...]]:
    """Halve space axes until every space axis fits in one 64-voxel chunk.

    Anisotropic data first (webknossos style): while the coarsest voxel is at least twice the
    size of another, only the finer axes (voxel size * 2 <= the largest) are halved, until the
    voxels are roughly isotropic. Then all space axes are halved together. An axis already down
    to one voxel is not halved further.
    """
    space = _space(img.dims)
    f = [1] * len(img.dims)
    out: list[tuple[int, ...]] = []
    for _ in range(64):
        cur = {i: -(-img.shape[i] // f[i]) for i in space}
        if all(cur[i] <= AUTO_CHUNK for i in space):
            break
        size = {i: img.scale[i] * f[i] for i in space}
        biggest = max(size.values())
        pick = [i for i in space if size[i] * 2 <= biggest and cur[i] > 1]
        if not pick:
            pick = [i for i in space if cur[i] > 1]
        for i in pick:
            f[i] *= 2
        out.append(tuple(f))
    return out


def _factor_list(img: MemoryImage, factors: Any) -> list[tuple[int, ...]]:
    dims = img.dims
    space = set(_space(dims))
    if isinstance(factors, str):
        if factors != "auto":
            raise InvalidArgumentError(f"factors must be 'auto' or a list (got={factors!r:.30})")
        return _auto_factors(img)
    if isinstance(factors, (dict, int, np.integer)):
        factors = [factors]
    out = []
    for item in factors:
        if isinstance(item, dict):
            unknown = [k for k in item if k not in dims]
            if unknown:
                raise InvalidArgumentError(f"factor dict names unknown axes {unknown} (dims={dims})")
            nonspace = [k for k in item if dims.index(k) not in space]
            if nonspace:
                raise InvalidArgumentError(f"time/channel axes are never downsampled (got={nonspace})")
            f = tuple(_pos_int(item.get(d, 1)) for d in dims)
        else:
            k = _pos_int(item)
            f = tuple(k if i in space else 1 for i in range(len(dims)))
        out.append(f)
    prev = (1,) * len(dims)
    for f in out:
        if any(a % b for a, b in zip(f, prev)) or f == prev:
            raise InvalidArgumentError(
                f"each level's factors must be increasing multiples of the previous level's "
                f"(previous={prev}, got={f})")
        prev = f
    return out


def _pos_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise InvalidArgumentError(f"factors must be positive integers (got={v!r:.30})")
    return int(v)


def build_pyramid(image: Any, factors: Any = "auto", method: str = "mean") -> Pyramid:
    """Downsampled levels of an image, each computed from the previous one in the C++ core.

    image : a :func:`from_array` image (or a numpy array, with default dims).
    factors : cumulative factors per level relative to level 0 (level 0 itself is implied):
        a list of ints (applied to the space axes only), a list of dicts {axis: factor}
        (missing axes 1; time/channel axes refused), or "auto" (see ``_auto_factors``).
        Each level's factors must be multiples of the previous level's.
    method : mean | gaussian | mode | nearest | min | max (labels: mode or nearest).
    """
    from . import downsample

    if not isinstance(image, MemoryImage):
        image = from_array(image)
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS} (got={method!r:.30})")
    flist = _factor_list(image, factors)
    window = method in WINDOW_METHODS
    s0, t0 = image.scale, image.translation
    levels = [Level(image.data, s0, t0, (1,) * len(s0))]
    for f in flist:
        prev = levels[-1]
        step = tuple(a // b for a, b in zip(f, prev.factors))
        data = downsample(prev.data, step, method)
        scale = tuple(s * k for s, k in zip(s0, f))
        trans = tuple(t + (k - 1) / 2 * s for t, k, s in zip(t0, f, s0)) if window else t0
        levels.append(Level(data, scale, trans, f))
    return Pyramid(image, levels, method)


def _per_axis(v: Any, n: int, name: str, dims) -> tuple[int, ...]:
    if np.isscalar(v):
        # an int applies to space axes; time/channel axes get 1 (one plane per chunk)
        return tuple(int(v) if ngff.AXIS_TYPES[d] == "space" else 1 for d in dims)
    t = tuple(int(x) for x in v)
    if len(t) != n:
        raise InvalidArgumentError(f"{name} length differs from dims (expected={n}, got={len(t)})")
    return t


def save(obj: Any, path: Any, version: str = "0.5", chunks: Any = 64, shards: Any = None,
         codec: str | None = "zstd", overwrite: bool = False) -> str:
    """Write a pyramid (or a single image) as an OME-Zarr group; returns the path.

    version "0.5": Zarr v3 arrays with dimension_names, group zarr.json with attributes.ome.
    version "0.4": Zarr v2 arrays with dimension_separator "/", .zgroup and .zattrs.
    chunks / shards: an int (space axes; time/channel axes get 1) or one per axis, clipped to
    each level's shape; shards (0.5 only) must be multiples of chunks. The level arrays are
    written first and the group metadata last (atomically), so a failed save leaves no valid
    OME group.
    """
    from . import __version__, create_array

    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    if isinstance(obj, np.ndarray):
        obj = from_array(obj)
    if isinstance(obj, MemoryImage):
        obj = Pyramid(obj, [Level(obj.data, obj.scale, obj.translation, (1,) * obj.data.ndim)], None)
    if not isinstance(obj, Pyramid):
        raise InvalidArgumentError(f"save takes a Pyramid or an image (got={type(obj).__name__})")
    img = obj.image
    n = len(img.dims)
    chunk_t = _per_axis(chunks, n, "chunks", img.dims)
    shard_t = None if shards is None else _per_axis(shards, n, "shards", img.dims)
    if shard_t is not None:
        if version != "0.5":
            raise InvalidArgumentError("shards need version='0.5' (Zarr v3)")
        if any(s % c for s, c in zip(shard_t, chunk_t)):
            raise InvalidArgumentError(f"shards must be multiples of chunks (chunks={chunk_t}, shards={shard_t})")
    axes = ngff.check_axes(img.dims, img.units)
    entry = ngff.multiscale(axes, [(lv.scale, lv.translation) for lv in obj.levels], version,
                            name=img.name, method=obj.method,
                            method_version=__version__ if obj.method else None)

    root = os.fspath(path)
    if os.path.exists(root):
        if not overwrite:
            raise FileExistsError(f"{root} exists (pass overwrite=True)")
        if not os.path.isdir(root) or (os.listdir(root) and not any(
                os.path.exists(os.path.join(root, k)) for k in ("zarr.json", ".zgroup", ".zarray", ".zattrs"))):
            raise FileExistsError(f"{root} is not a Zarr node; refusing to overwrite it")
        shutil.rmtree(root)
    os.makedirs(root)

    v3 = version == "0.5"
    for i, lv in enumerate(obj.levels):
        c = tuple(max(1, min(k, s)) for k, s in zip(chunk_t, lv.shape))
        sh = None
        if shard_t is not None:
            sh = tuple(min(k, -(-s // ci) * ci) for k, s, ci in zip(shard_t, lv.shape, c))
            sh = tuple(-(-k // ci) * ci for k, ci in zip(sh, c))
        arr = create_array(os.path.join(root, str(i)), lv.shape, lv.data.dtype, chunks=c, shards=sh,
                           codec=codec, zarr_format=3 if v3 else 2, dims=img.dims if v3 else None,
                           dimension_separator=None if v3 else "/")
        arr.write(lv.data)

    attrs = ngff.group_attributes(entry, version)
    store = _core.FileStore(root)
    dump = lambda d: json.dumps(d, indent=2, allow_nan=False).encode()  # noqa: E731
    if v3:
        store.set("zarr.json", dump({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    else:
        store.set(".zgroup", dump({"zarr_format": 2}))
        store.set(".zattrs", dump(attrs))
    return root
