"""In-memory images and multiscale pyramids, saved as OME-Zarr 0.4 (Zarr v2) or 0.5 (Zarr v3).

>>> img = vc.from_array(arr, dims=("z", "y", "x"), scale=(2.0, 0.5, 0.5), units=("micrometer",) * 3)
>>> pyr = vc.build_pyramid(img, factors="auto", method="mean")
>>> vc.save(pyr, "out.ome.zarr", version="0.5")
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, _replace, _stream
from .errors import InvalidArgumentError, UnsupportedError
from .formats import ngff

METHODS = ("mean", "gaussian", "mode", "nearest", "min", "max")
# Methods that reduce a window of f voxels to one value whose centre is the window's centre:
# the level's translation shifts by (f - 1) / 2 voxels of level 0. "nearest" takes array[::f],
# whose first voxel is level 0's first voxel: the translation stays. (FORMATS.md: our rule.)
WINDOW_METHODS = ("mean", "gaussian", "mode", "min", "max")

AUTO_CHUNK = 64


@dataclass
class Level:
    """One resolution level: where its voxels lie, and its data once computed.

    data is None for a level of a streamed pyramid (built from an on-disk or lazy source):
    :func:`save` computes it slab by slab while writing.
    """

    data: Any
    scale: tuple[float, ...]
    translation: tuple[float, ...]
    factors: tuple[int, ...]  # cumulative, relative to level 0, one per axis
    shape: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.shape:
            self.shape = tuple(int(s) for s in self.data.shape)


class MemoryImage:
    """An array with OME axes, voxel size (scale), origin (translation) and units.

    data is a numpy array, a device array (cupy) or a lazy array (voxcore.Image, dask, zarr,
    anything with shape, dtype and slicing) that is read slab by slab when saved.
    """

    def __init__(self, data: Any, dims, scale, translation, units, name):
        self.data = data
        self.dims = dims
        self.scale = scale
        self.translation = translation
        self.units = units
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.data, np.ndarray)

    def __repr__(self) -> str:
        return f"<voxcore.MemoryImage shape={self.shape} dtype={self.dtype} dims={self.dims} scale={self.scale}>"


class Pyramid:
    """Levels of one image, level 0 first. Built by :func:`build_pyramid`.

    executor: where :func:`save` runs the block work when it is not given one (None: here).
    """

    def __init__(self, image: MemoryImage, levels: list[Level], method: str | None, executor: Any = None):
        self.image = image
        self.levels = levels
        self.method = method
        self.executor = executor

    @property
    def dims(self) -> tuple[str, ...]:
        return self.image.dims

    @property
    def streamed(self) -> bool:
        """True when the coarser levels are computed while saving (a lazy or on-disk source)."""
        return any(lv.data is None for lv in self.levels)

    def __len__(self) -> int:
        return len(self.levels)

    def __repr__(self) -> str:
        return f"<voxcore.Pyramid method={self.method} shapes={[lv.shape for lv in self.levels]}>"


def _is_lazy(obj: Any) -> bool:
    """An array read on demand (voxcore.Image, dask, zarr, h5py ...) rather than converted."""
    return (not isinstance(obj, np.ndarray) and hasattr(obj, "shape") and hasattr(obj, "dtype")
            and hasattr(obj, "__getitem__") and not hasattr(obj, "__cuda_array_interface__"))


def from_array(array: Any, dims: Sequence[str] | None = None, scale: Sequence[float] | None = None,
               translation: Sequence[float] | None = None, units: Sequence[str | None] | None = None,
               name: str | None = None) -> MemoryImage:
    """An image from an array, with OME axes and voxel geometry.

    array: numpy (not copied when native-order), cupy (stays on the device), an on-disk or lazy
    array (voxcore.Image, dask, zarr: read slab by slab when saved, never whole), or anything
    with __array__ / DLPack. A voxcore.Image opened from OME-Zarr lends its own dims, scale,
    translation and units unless given.

    dims default by rank: (y, x), (z, y, x), (c, z, y, x), (t, c, z, y, x): the last 2-3 axes are
    space, earlier ones channel then time. scale defaults to 1 per axis, translation to 0, units
    to none. units are UDUNITS-2 names ("micrometer", "second"); channel axes take None.
    """
    from .formats.nifti import NiftiImage

    if isinstance(array, NiftiImage) and dims is None:
        return from_nifti(array)
    geo = getattr(array, "ome", None)
    if geo is not None:
        dims = geo["dims"] if dims is None else dims
        scale = geo["scale"] if scale is None else scale
        translation = geo["translation"] if translation is None else translation
        units = geo["units"] if units is None else units
        name = geo.get("name") if name is None else name
    if hasattr(array, "__cuda_array_interface__") or _is_lazy(array):
        arr = array
    elif hasattr(array, "__array__") or not hasattr(array, "__dlpack__"):
        arr = np.asarray(array)
    else:
        arr = np.from_dlpack(array)
    if isinstance(arr, np.ndarray) and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    ndim = len(arr.shape)
    dims = ngff.default_dims(ndim) if dims is None else tuple(str(d) for d in dims)
    if len(dims) != ndim:
        raise InvalidArgumentError(f"dims length differs from the array rank (expected={ndim}, got={len(dims)})")
    ngff.check_axes(dims, units)
    n = ndim
    scale_t = ngff.check_vector((1.0,) * n if scale is None else scale, n, "scale", positive=True)
    trans_t = ngff.check_vector((0.0,) * n if translation is None else translation, n, "translation")
    units_t = (None,) * n if units is None else tuple(units)
    return MemoryImage(arr, dims, scale_t, trans_t, units_t, name)


def from_nifti(img: Any) -> MemoryImage:
    """An OME-ordered image (t, z, y, x) of a NIfTI image (x, y, z, t), without copying: the
    x-fastest array reversed is C-ordered. scale and translation come from the zooms and the
    affine's origin (toffset for t). A rotation or flip in the affine, which OME 0.4/0.5 cannot
    express, is kept as the image's `nifti_affine` (saved under the group's "voxcore"
    attributes) and a warning says so."""
    import warnings

    data = img.read()
    n = data.ndim
    if n > 4:
        raise InvalidArgumentError(f"NIfTI images past 4-D have no OME axes (shape={data.shape})")
    names = ("x", "y", "z", "t")[:n]
    dims = tuple(reversed(names))
    affine = img.affine
    rot = affine[:3, :3]
    if not np.allclose(rot, np.diag(np.abs(np.diag(rot)))):
        warnings.warn(f"{img.path}: the affine's rotation/flips ({''.join(img.orientation)}) cannot be stored "
                      "in OME-Zarr 0.4/0.5; axes keep the file's order and the full affine is saved in "
                      "the group's 'voxcore' attributes", UserWarning, stacklevel=2)
    units = tuple(reversed(img.units))
    out = from_array(data.T, dims=dims, scale=tuple(reversed(img.scale)),
                     translation=tuple(reversed(img.translation)), units=units,
                     name=os.path.basename(str(img.path)))
    out.nifti_affine = affine
    out.nifti_header = img.header  # a NIfTI save keeps the source's forms and codes
    return out


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
        elif isinstance(item, (tuple, list)):
            f = tuple(_pos_int(v) for v in item)
            if len(f) != len(dims) or any(f[i] != 1 for i in range(len(dims)) if i not in space):
                raise InvalidArgumentError(
                    f"per-axis factors need one per axis and 1 on time/channel axes (dims={dims}, got={f})")
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


def build_pyramid(image: Any, factors: Any = "auto", method: str = "mean", *, executor: Any = None) -> Pyramid:
    """Downsampled levels of an image, computed in the C++ core.

    image : a :func:`from_array` image, or any array :func:`from_array` takes (default dims).
        In memory (numpy): every level is computed now, in one pass over level 0 (cupy: on the
        device). On disk or lazy (voxcore.Image, dask, zarr): only the plan is made; :func:`save`
        streams level 0 and computes the other levels in bounded memory while writing.
    factors : cumulative factors per level relative to level 0 (level 0 itself is implied):
        a list of ints (applied to the space axes only), a list of dicts {axis: factor}
        (missing axes 1; time/channel axes refused), a list of per-axis tuples, or "auto" (halve the space axes until the
        level fits one 64-voxel chunk; anisotropic data first halves only its finer axes).
        Each level's factors must be multiples of the previous level's.
    method : mean | gaussian | mode | nearest | min | max (labels: mode or nearest).
    executor : None (compute here), a concurrent.futures.Executor or a dask.distributed.Client:
        nothing is computed now (``levels[k].data`` stay None, as for a lazy source); :func:`save`
        computes and writes the levels block by block on that executor. The saved bytes are the
        same as without an executor.
    """
    from . import downsample
    from ._dask import check_executor

    check_executor(executor)
    if not isinstance(image, MemoryImage):
        image = from_array(image)
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS} (got={method!r:.30})")
    if executor is not None and hasattr(image.data, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    flist = _factor_list(image, factors)
    specs = _stream.plan_levels(image.shape, image.scale, image.translation, flist,
                                method in WINDOW_METHODS, (1,) * len(image.shape), None)
    levels = [Level(None, sp.scale, sp.translation, sp.factors, sp.shape) for sp in specs]
    levels[0].data = image.data
    if executor is not None:
        return Pyramid(image, levels, method, executor)
    if image.in_memory:
        datas = _core.downsample_levels(image.data, [list(sp.step) for sp in specs[1:]], method)
        for lv, d in zip(levels[1:], datas):
            lv.data = d
    elif hasattr(image.data, "__cuda_array_interface__"):
        for prev, (lv, sp) in zip(levels, zip(levels[1:], specs[1:])):
            lv.data = downsample(prev.data, sp.step, method)
    return Pyramid(image, levels, method)


def _per_axis(v: Any, n: int, name: str, dims) -> tuple[int, ...]:
    if np.isscalar(v):
        # an int applies to space axes; time/channel axes get 1 (one plane per chunk)
        return tuple(int(v) if ngff.AXIS_TYPES[d] == "space" else 1 for d in dims)
    t = tuple(int(x) for x in v)
    if len(t) != n:
        raise InvalidArgumentError(f"{name} length differs from dims (expected={n}, got={len(t)})")
    return t


class _Target:
    """Where a save or create writes: a local directory or a zarr-python store (with a prefix)."""

    def __init__(self, path: Any, overwrite: bool, durable: bool = True, store_path: str | None = None):
        from ._stores import FileAdapter, ZarrStoreAdapter, _sync, is_zarr_store

        sp = getattr(path, "store_path", None)
        if sp is not None:  # a zarr.Group
            path, store_path = sp.store, "/".join(p for p in (sp.path, store_path) if p)
        markers = ("zarr.json", ".zgroup", ".zarray", ".zattrs")
        self._beside = None
        if is_zarr_store(path):
            self.store, self.prefix, self.durable = path, (store_path or "").strip("/"), True
            self.adapter = ZarrStoreAdapter(path, self.prefix)
            self.label = f"{type(path).__name__}:{self.prefix}"
            if any(self.adapter.get(k) is not None for k in markers):
                if not overwrite:
                    raise FileExistsError(f"a Zarr node exists at {self.label} (pass overwrite=True)")
                _replace.check_store_prefix(path, self.prefix, self.label)
                _sync(path.delete_dir(self.prefix)) if self.prefix else _sync(path.clear())
            return
        root = os.fspath(path)
        if store_path:
            root = os.path.join(root, store_path)
        if os.path.lexists(root) and not overwrite:
            raise FileExistsError(f"{root} exists (pass overwrite=True)")
        # Written beside root, swapped in by commit(): root holds the old tree or the new one.
        self._beside = _replace.Beside(root, durable)
        self.store, self.prefix, self.label = self._beside.new, "", root
        self.durable = durable
        self.adapter = FileAdapter(self._beside.new, durable)

    def commit(self) -> None:
        """Put what was written in place (local directories; a store was written in place)."""
        if self._beside is not None:
            self._beside.commit()

    def abort(self) -> None:
        """Remove what was written beside the target unless committed; the old tree stays."""
        if self._beside is not None:
            self._beside.abort()

    def reopen(self, sub: str, array: Any) -> Any:
        """An array written before commit(), opened where it is now."""
        if self._beside is None:
            return array
        from .image import open as open_image

        return open_image(self.label, path=sub, durable=self.durable)

    def array(self, sub: str, shape, dtype, chunks, shards, codec, level, v3: bool, dims):
        from . import create_array

        path = "/".join(p for p in (self.prefix, sub) if p)
        return create_array(self.store, shape, dtype, chunks=chunks, shards=shards, codec=codec, level=level,
                            zarr_format=3 if v3 else 2, dims=dims if v3 else None,
                            dimension_separator=None if v3 else "/", path=path, durable=self.durable)

    def group(self, sub: str, attrs: dict, v3: bool) -> None:
        """Write a group's metadata document(s); each is one atomic set."""
        key = (lambda k: f"{sub}/{k}" if sub else k)
        dump = lambda d: json.dumps(d, indent=2, allow_nan=False).encode()
        if v3:
            self.adapter.set(key("zarr.json"), dump({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
        else:
            self.adapter.set(key(".zgroup"), dump({"zarr_format": 2}))
            self.adapter.set(key(".zattrs"), dump(attrs))


def _storage(chunks: Any, shards: Any, version: str, dims) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    n = len(dims)
    chunk_t = _per_axis(chunks, n, "chunks", dims)
    shard_t = None if shards is None else _per_axis(shards, n, "shards", dims)
    if any(c < 1 for c in chunk_t):
        raise InvalidArgumentError(f"chunks must be >= 1 (got={chunk_t})")
    if shard_t is not None:
        if version != "0.5":
            raise InvalidArgumentError("shards need version='0.5' (Zarr v3)")
        if any(s < 1 or s % c for s, c in zip(shard_t, chunk_t)):
            raise InvalidArgumentError(f"shards must be multiples of chunks (chunks={chunk_t}, shards={shard_t})")
    return chunk_t, shard_t


def _read_slab(source: Any, prefix: tuple[int, ...], z0: int, z1: int) -> np.ndarray:
    index = prefix + (slice(z0, z1),)
    read = getattr(source, "read", None)
    from .image import Image

    if isinstance(source, Image):
        return read(index)
    return np.asarray(source[index])


def _write_levels(target: _Target, sub: str, pyr: Pyramid, chunk_t, shard_t, codec, level, v3: bool,
                  progress: bool, executor: Any = None) -> dict:
    """Write a pyramid's level arrays under `sub`; returns its multiscales entry."""
    from . import __version__

    img = pyr.image
    specs = _stream.plan_levels(img.shape, img.scale, img.translation, [lv.factors for lv in pyr.levels[1:]],
                                pyr.method in WINDOW_METHODS, chunk_t, shard_t)
    for sp, lv in zip(specs, pyr.levels):
        if sp.shape != lv.shape:
            raise InvalidArgumentError(f"level shapes do not follow from their factors (got={lv.shape})")
    axes = ngff.check_axes(img.dims, img.units)
    entry = ngff.multiscale(axes, [(lv.scale, lv.translation) for lv in pyr.levels], "0.5" if v3 else "0.4",
                            name=img.name, method=pyr.method,
                            method_version=__version__ if pyr.method else None)
    arrays = [target.array("/".join(p for p in (sub, str(i)) if p), sp.shape, img.dtype, sp.chunks, sp.shards,
                           codec, level, v3, img.dims) for i, sp in enumerate(specs)]
    label = f"{target.label}/{sub}" if sub else target.label
    if executor is not None:
        from ._dask import write_pyramid

        bar = _stream.Progress(1, f"{label}: blocks", progress)
        write_pyramid(executor, arrays, specs, img.data, img.dims, img.dtype, pyr.method, target.durable, bar)
        bar.close()
        return entry
    if not pyr.streamed:
        bar = _stream.Progress(len(arrays), f"{label}: levels", progress)
        for arr, lv in zip(arrays, pyr.levels):
            data = lv.data.get() if hasattr(lv.data, "__cuda_array_interface__") else lv.data
            arr.write(np.asarray(data))
            bar.advance(1)
        bar.close()
        return entry
    source = img.data
    axis = next(i for i, d in enumerate(img.dims) if ngff.AXIS_TYPES[d] == "space")
    prefixes = list(np.ndindex(*img.shape[:axis]))
    extent = img.shape[axis]
    bar = _stream.Progress(len(prefixes) * extent, f"{label}: planes", progress)
    writer = _stream.PyramidWriter(arrays, specs, img.dims, img.dtype, pyr.method or "nearest", progress=bar)
    # Read whole source chunks along the stream axis when a slab of them fits the budget.
    depth = writer.slab_depth
    src_chunks = getattr(source, "chunks", None)
    try:
        cz = int(src_chunks[axis]) if src_chunks is not None and not isinstance(src_chunks[axis], tuple) else 0
    except (TypeError, ValueError, IndexError):
        cz = 0
    plane_bytes = int(np.prod(img.shape[axis + 1:], dtype=np.int64)) * img.dtype.itemsize
    if cz > 0:
        both = depth * cz // np.gcd(depth, cz)
        if both * plane_bytes <= _stream.SLAB_BUDGET_BYTES:
            depth = both
    with writer:
        for prefix in prefixes:
            for z0 in range(0, extent, depth):
                z1 = min(extent, z0 + depth)
                writer.push(_read_slab(source, prefix, z0, z1), prefix, z0)
    return entry


def _label_images(labels: Any, pyr: Pyramid) -> list[tuple[str, MemoryImage, dict]]:
    """(name, image, image-label extras) per label image; each must match level 0's grid."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        raise InvalidArgumentError("labels must be a dict {name: array or {'data': array, 'colors': ...}}")
    img = pyr.image
    out = []
    for name, item in labels.items():
        if (not isinstance(name, str) or not name or name.startswith(".")
                or any(c in name for c in "/\\\0")):
            raise InvalidArgumentError(f"label names must be plain names (got={name!r:.40})")
        extra: dict = {}
        if isinstance(item, dict):
            extra = {k: v for k, v in item.items() if k in ("colors", "properties")}
            unknown = set(item) - {"data", "colors", "properties"}
            if unknown or "data" not in item:
                raise InvalidArgumentError(f"label {name}: keys are data, colors, properties (got={sorted(item)})")
            item = item["data"]
        data = item.image.data if isinstance(item, Pyramid) else item.data if isinstance(item, MemoryImage) else item
        try:
            lab = from_array(data, dims=img.dims, scale=img.scale, translation=img.translation, units=img.units,
                             name=name)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"label {name}: {e}") from None
        extra = _check_label_extra(name, extra)
        if not np.issubdtype(lab.dtype, np.integer):
            raise InvalidArgumentError(f"label {name} must have an integer dtype (got={lab.dtype})")
        if lab.shape != img.shape:
            raise InvalidArgumentError(f"label {name} must have level 0's shape (expected={img.shape}, got={lab.shape})")
        out.append((name, lab, extra))
    return out


def _check_label_extra(name: str, extra: dict) -> dict:
    """colors ({value: rgba} or OME's [{"label-value", "rgba"}]) and properties (a list of
    objects with "label-value"), checked and put in OME form before anything is written."""
    out: dict[str, Any] = {}
    colors = extra.get("colors")
    if colors is not None:
        items = colors.items() if isinstance(colors, dict) else None
        if isinstance(colors, list) and all(isinstance(c, dict) and set(c) == {"label-value", "rgba"}
                                            for c in colors):
            items = [(c["label-value"], c["rgba"]) for c in colors]
        ok = items is not None
        rows = []
        for value, rgba in (items or []):
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or not isinstance(rgba, (list, tuple)) or len(rgba) != 4
                    or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in rgba)):
                ok = False
                break
            rows.append({"label-value": int(value), "rgba": [int(c) for c in rgba]})
        if not ok:
            raise InvalidArgumentError(
                f"label {name}: colors must map integer label values to 4 RGBA integers 0-255 (got={colors!r:.60})")
        out["colors"] = rows
    props = extra.get("properties")
    if props is not None:
        if not isinstance(props, list) or not all(
                isinstance(p, dict) and isinstance(p.get("label-value"), (int, np.integer))
                and not isinstance(p.get("label-value"), bool) for p in props):
            raise InvalidArgumentError(
                f"label {name}: properties must be a list of objects with an integer 'label-value' "
                f"(got={props!r:.60})")
        out["properties"] = [dict(p, **{"label-value": int(p["label-value"])}) for p in props]
    return out


def _image_label(extra: dict, version: str) -> dict:
    meta: dict[str, Any] = {}
    if version == "0.4":
        meta["version"] = "0.4"
    if extra.get("colors"):
        meta["colors"] = extra["colors"]
    if extra.get("properties"):
        meta["properties"] = extra["properties"]
    meta["source"] = {"image": "../../"}
    return meta


def save(obj: Any, path: Any, version: str = "0.5", chunks: Any = 64, shards: Any = None,
         codec: str | None = "zstd", overwrite: bool = False, *, level: int | None = None,
         labels: dict | None = None, label_method: str = "mode", progress: bool = False,
         durable: bool = True, executor: Any = None) -> str:
    """Write a pyramid (or a single image) as an OME-Zarr group, or as NIfTI when path ends in
    .nii / .nii.gz (one image; level is the gzip level, default 1); returns where it was written.

    obj : a :func:`build_pyramid` result, or an image / array (written as one level). A pyramid
        built from an on-disk or lazy source is streamed: level 0 is read and written one slab
        at a time, the coarser levels computed as it goes; memory stays near one chunk-deep
        slab per level, however large the source.
    path : a directory, or a zarr-python store / zarr.Group (written through the store).
    version : "0.5" (Zarr v3, dimension_names, attributes.ome) or "0.4" (Zarr v2, .zattrs,
        dimension_separator "/").
    chunks / shards : an int (space axes; time/channel axes get 1) or one per axis, clipped to
        each level's shape; shards (0.5 only) must be multiples of chunks.
    codec, level : "zstd" (level 1 unless given), "blosc-lz4", "gzip", "lz4", "zlib" or None.
    labels : {name: integer array of level 0's shape} written under labels/ as pyramids with the
        same factors, reduced by label_method ("mode" or "nearest", never a mean).
    overwrite : replace what is at path. Refused (nothing touched) unless it is a Zarr /
        OME-Zarr hierarchy and nothing else: a user's file, a non-Zarr directory, a symbolic
        link, ".", "..", the working directory or an ancestor raise TargetNotReplaceableError or
        UnsafePathError. A local directory is built beside the old one and swapped in by one
        atomic rename, so a failed or killed save leaves the old tree intact.
    progress : show a progress bar on stderr.
    durable : local directories: fsync every file written (atomic renames either way).
    executor : None (here; a pyramid built with an executor uses that one), a
        concurrent.futures.Executor, or a dask.distributed.Client. The driver creates the level
        arrays, the executor's workers read level 0 in blocks aligned to every level's chunks
        (shards) times its factor, compute the levels from it and write them, and the driver
        writes the group metadata last. Same files and bytes as a local save. A voxcore Image source is read by
        the workers from its path (which they must see); numpy blocks are sent to them
        (client.scatter), dask blocks computed on the cluster. Local directory targets only:
        executor= with a zarr store or a NIfTI path raises UnsupportedError (a pyramid's own
        executor is then not used: it is written here).

    The level arrays are written first and the group metadata last; a local directory is
    written beside path and renamed into place at the end, so path never holds a half-written
    save.
    """
    from ._dask import check_executor

    check_executor(executor)
    local_dir = isinstance(path, (str, os.PathLike))
    nifti_out = local_dir and os.fspath(path).lower().endswith((".nii", ".nii.gz"))
    if executor is not None and not local_dir:
        raise UnsupportedError(f"executor= writes local directories only (got={type(path).__name__})")
    if executor is not None and nifti_out:
        raise UnsupportedError("executor= writes OME-Zarr; a NIfTI file is written by one process")
    if executor is None and isinstance(obj, Pyramid) and local_dir:
        executor = obj.executor  # a store or NIfTI target: the pyramid is written here instead
    if nifti_out:
        from .formats import nifti

        return nifti.save_nifti(obj, os.fspath(path), level=1 if level is None else level, durable=durable,
                                overwrite=overwrite)
    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    if not isinstance(obj, (Pyramid, MemoryImage)):
        obj = from_array(obj)
    if isinstance(obj, MemoryImage):
        obj = Pyramid(obj, [Level(obj.data, obj.scale, obj.translation, (1,) * len(obj.shape), obj.shape)], None)
    img = obj.image
    if executor is not None and hasattr(img.data, "__cuda_array_interface__"):
        raise InvalidArgumentError("executor= needs a host (numpy), on-disk or dask source, not a device array")
    chunk_t, shard_t = _storage(chunks, shards, version, img.dims)
    if label_method not in ("mode", "nearest"):
        raise InvalidArgumentError(f"label_method must be mode or nearest (got={label_method!r:.20})")
    label_imgs = _label_images(labels, obj)
    v3 = version == "0.5"
    target = _Target(path, overwrite, durable)
    try:
        entry = _write_levels(target, "", obj, chunk_t, shard_t, codec, level, v3, progress, executor)
        if label_imgs:
            factors = [lv.factors for lv in obj.levels[1:]]
            for name, lab, extra in label_imgs:
                lp = build_pyramid(lab, factors, label_method, executor=executor) if factors else \
                    Pyramid(lab, [Level(lab.data, lab.scale, lab.translation, (1,) * len(lab.shape),
                                        lab.shape)], None)
                lentry = _write_levels(target, f"labels/{name}", lp, chunk_t, shard_t, codec, level, v3, progress,
                                       executor)
                attrs = ngff.group_attributes(lentry, version)
                extra_attrs = _image_label(extra, version)
                (attrs["ome"] if v3 else attrs)["image-label"] = extra_attrs
                target.group(f"labels/{name}", attrs, v3)
            names = [n for n, _, _ in label_imgs]
            target.group("labels", {"ome": {"version": "0.5", "labels": names}} if v3 else {"labels": names}, v3)
        attrs = ngff.group_attributes(entry, version)
        affine = getattr(img, "nifti_affine", None)
        if affine is not None:
            attrs["voxcore"] = {"nifti_affine": [[float(v) for v in row] for row in affine]}
        target.group("", attrs, v3)
        target.commit()
    finally:
        target.abort()  # a failed save leaves the old tree as it was
    return target.label


def create(path: Any, shape: Sequence[int], dtype: Any, *, dims: Sequence[str] | None = None,
           scale: Sequence[float] | None = None, translation: Sequence[float] | None = None,
           units: Sequence[str | None] | None = None, name: str | None = None, chunks: Any = 64,
           shards: Any = None, codec: str | None = "zstd", level: int | None = None,
           pyramid: Any = (), method: str = "mean", version: str = "0.5",
           overwrite: bool = False, durable: bool = True) -> _stream.PyramidWriter:
    """Start an OME-Zarr image written plane by plane, as an acquisition produces it.

    Returns a writer: ``w.write_plane(plane, t=, c=, z=)`` takes planes in acquisition order
    (increasing z within each (t, c) volume; volumes may interleave) and keeps only one slab per
    level per volume in flight; ``w.get_data(t=, c=, z=, level=)`` reads back; ``w.close()``
    (or leaving a ``with`` block) finishes every level. pyramid: the levels' factors as for
    :func:`build_pyramid` (ints, dicts or "auto"; () for level 0 only).

    All metadata is written now: if the process dies mid-acquisition, every written chunk is
    readable and the group is a valid OME-Zarr whose unwritten parts are the fill value (0).
    durable=False skips the fsyncs (each file is still replaced atomically). overwrite=True
    replaces a Zarr / OME-Zarr hierarchy at path (anything else is refused, as for :func:`save`):
    the new metadata-only tree is built beside it and swapped in before this returns, so a crash
    leaves the old image or the new one.
    """
    from . import __version__

    if version not in ngff.VERSIONS:
        raise InvalidArgumentError(f"version must be one of {ngff.VERSIONS} (got={version!r:.20})")
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS} (got={method!r:.30})")
    shape = tuple(int(s) for s in shape)
    if any(s < 1 for s in shape):
        raise InvalidArgumentError(f"shape must be positive (got={shape})")
    dtype = np.dtype(dtype)
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)) or dtype.itemsize < 1 \
            or dtype == np.float16:
        raise InvalidArgumentError(f"dtype must be an integer or float32/float64 type (got={dtype})")
    geometry = np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, (0,) * len(shape))
    img = from_array(geometry, dims=dims, scale=scale, translation=translation, units=units, name=name)
    flist = _factor_list(img, pyramid) if (isinstance(pyramid, str) or len(pyramid)) else []
    chunk_t, shard_t = _storage(chunks, shards, version, img.dims)
    specs = _stream.plan_levels(shape, img.scale, img.translation, flist, method in WINDOW_METHODS, chunk_t,
                                shard_t)
    v3 = version == "0.5"
    axes = ngff.check_axes(img.dims, img.units)
    entry = ngff.multiscale(axes, [(sp.scale, sp.translation) for sp in specs], version, name=name,
                            method=method if flist else None, method_version=__version__ if flist else None)
    target = _Target(path, overwrite, durable)
    try:  # the metadata-only tree is swapped in now; the planes are written in place later
        arrays = [target.array(str(i), sp.shape, dtype, sp.chunks, sp.shards, codec, level, v3, img.dims)
                  for i, sp in enumerate(specs)]
        target.group("", ngff.group_attributes(entry, version), v3)
        target.commit()
    finally:
        target.abort()
    arrays = [target.reopen(str(i), a) for i, a in enumerate(arrays)]
    return _stream.PyramidWriter(arrays, specs, img.dims, dtype, method)
