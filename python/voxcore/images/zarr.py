"""Image: a lazily read chunked array (Zarr v2/v3, OME-Zarr level 0), and how it is opened.

The Zarr image kind of the image model: its metadata mapping is :mod:`voxcore.formats.zarr`
(arrays) and :mod:`voxcore.formats.ngff` (OME-Zarr multiscales and labels); the C++ core reads
and writes its chunks.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core import ChunkCache, ChunkedArray, write_all
from .._indexing import select
from .._stores import FileAdapter, ZarrStoreAdapter, is_zarr_store
from ..errors import InvalidArgumentError, InvalidMetadataError, UnalignedWriteWarning, UnsupportedError
from ..formats import ngff, omero
from ..formats import zarr as zmeta
from ..formats import zarr_emit as emit
from .casting import cast_for_write
from .box_read import read_region
from .model import ImageModel, Level, alloc


class Image(ImageModel):
    """A chunked array on disk or in a store. Reads and writes go through the C++ core.

    Use :func:`voxcore.open` or :func:`voxcore.create_array` to get one.
    """

    def __init__(self, core: ChunkedArray, meta: zmeta.ZarrArrayMeta, source: str,
                 attrs: dict | None = None):
        self._core = core
        self._run = None  # a _core.WriteRun: writes durable at its finish() (a save's own arrays)
        self._meta = meta
        self._source = source
        self.attrs = attrs if attrs is not None else meta.attributes
        self._ome: dict | None = None  # the parsed multiscale when opened from an OME-Zarr group
        self._channels: list[dict] | None = None  # the group's omero channels
        self._levels: list[ImageLevel] = []
        self._labels: list[str] = []
        # (source, open() keyword arguments, OME level index or None): how to reopen it, for
        # pickling. Set by open() and create_array(); None for an Image made any other way.
        self._origin: tuple | None = None

    # -- description ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._meta.shape

    @property
    def dtype(self) -> np.dtype:
        return self._meta.dtype

    @property
    def name(self) -> str | None:
        """The OME multiscale's name (None for a plain array or an unnamed image)."""
        return self._ome.get("name") if self._ome is not None else None

    @property
    def dims(self) -> tuple[str, ...]:
        """Axis names: OME axes, else the array's dimension_names, else 'dim_0', 'dim_1', ..."""
        if self._ome is not None:
            return tuple(a["name"] for a in self._ome["axes"])
        names = self._meta.dims or (None,) * self.ndim
        return tuple(n if n is not None else f"dim_{i}" for i, n in enumerate(names))

    # -- OME-Zarr ----------------------------------------------------------------------------
    @property
    def levels(self) -> list[ImageLevel]:
        """OME-Zarr resolution levels, finest first (path, shape, scale, translation, chunks).
        A plain array is its own single level."""
        if self._levels:
            return list(self._levels)
        return [ImageLevel("", (1.0,) * self.ndim, (0.0,) * self.ndim, self, owner=self, index=0)]

    @property
    def axes(self) -> list[dict]:
        """OME axes: name, type (space|time|channel) and unit (None when not given)."""
        if self._ome is not None:
            return [dict(a) for a in self._ome["axes"]]
        return [{"name": d, "type": ngff.AXIS_TYPES.get(d), "unit": None} for d in self.dims]

    @property
    def scale(self) -> tuple[float, ...]:
        """Voxel size of level 0 (1 per axis for a plain array)."""
        return self.levels[0].scale

    @property
    def translation(self) -> tuple[float, ...]:
        """Position of level 0's first voxel centre (0 per axis for a plain array)."""
        return self.levels[0].translation

    @property
    def units(self) -> tuple[str | None, ...]:
        return tuple(a["unit"] for a in self.axes)

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from (x, y, z) voxel indices to (x, y, z) positions: the OME scale and
        translation of level 0 (a NIfTI image converted by voxcore: its original affine)."""
        kept = self.attrs.get("voxcore", {}).get("nifti_affine") if isinstance(self.attrs, dict) else None
        if kept is not None:
            return np.asarray(kept, dtype=np.float64)
        return super().affine

    @property
    def orientation(self) -> tuple[str, ...] | None:
        """Anatomical axis codes (e.g. ('R', 'A', 'S')) when known (a converted NIfTI), else None:
        OME-Zarr 0.4/0.5 has no anatomical frame."""
        kept = self.attrs.get("voxcore", {}).get("nifti_affine") if isinstance(self.attrs, dict) else None
        if kept is None:
            return None
        import nibabel as nib

        return tuple(nib.aff2axcodes(np.asarray(kept, dtype=np.float64)))

    @property
    def labels(self) -> list[str]:
        """Names of the label images under labels/ (open one with open(path, path="labels/NAME"))."""
        return list(self._labels)

    @property
    def ome(self) -> dict | None:
        """dims, scale, translation, units and name of an OME-Zarr image (None otherwise)."""
        if self._ome is None:
            return None
        return {"dims": self.dims, "scale": self.scale, "translation": self.translation, "units": self.units,
                "name": self._ome.get("name"), "type": self._ome.get("type"), "version": self._ome["version"],
                "channels": self._channels}

    @property
    def channels(self) -> list[dict] | None:
        """The group's omero channels (label, color, window, active), one per c index, or None."""
        return [dict(c) for c in self._channels] if self._channels is not None else None

    @property
    def chunks(self) -> tuple[int, ...]:
        """The read/write unit (the inner chunk shape of a sharded array)."""
        return self._meta.chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self._meta.shards

    @property
    def fill_value(self) -> Any:
        return self._meta.fill_value

    @property
    def zarr_format(self) -> int:
        return self._meta.zarr_format

    @property
    def metadata(self) -> dict:
        """The array's metadata document as stored (zarr.json or .zarray)."""
        return self._meta.raw

    def __repr__(self) -> str:
        return (f"<voxcore.Image {self._source} shape={self.shape} dtype={self.dtype} "
                f"dims={self.dims} chunks={self.chunks} shards={self.shards}>")

    @property
    def source(self) -> str:
        return self._source

    @property
    def writable(self) -> bool:
        return True

    # -- reading ----------------------------------------------------------------------------
    def read(self, region: Any = None, *, level: int = 0, out: np.ndarray | None = None,
             dtype: Any = None, pad: bool = False) -> np.ndarray:
        """Read a region into a numpy array.

        Parameters
        ----------
        region : None, tuple of int/slice/Ellipsis, or dict {dim: int | slice}
            numpy semantics (negative indices, steps). None reads everything.
        out : numpy.ndarray, optional
            Destination of the result's shape and dtype (any memory layout); returned.
        pad : bool
            If True, slices are taken literally (not clipped): what lies outside the array is
            the fill value. Unit steps only.
        level : int
            OME-Zarr resolution level (0 = finest); region is in that level's voxels.
        dtype : optional
            The values converted to this type (numpy's astype); out then has this dtype.
        """
        if level:
            return self._level_image(level).read(region, out=out, dtype=dtype, pad=pad)
        return read_region(self._core.read_into, self.shape, self.dims, self.dtype, region, out,
                           pad, self._source, as_dtype=dtype)

    def _alloc(self, shape: tuple[int, ...]) -> np.ndarray:
        """An empty result buffer, refused (LimitExceededError) before allocating if it cannot fit."""
        return alloc(shape, self.dtype, f"read of shape {shape} {self.dtype} from {self._source}")

    # -- scale-out ----------------------------------------------------------------------------
    def reference(self) -> tuple | None:
        """How a worker reopens this array: its local directory (None through a store object)."""
        src = self._source
        if not isinstance(src, str) or not os.path.isdir(src):
            return None
        if not any(os.path.exists(os.path.join(src, k)) for k in ("zarr.json", ".zarray")):
            return None
        durable = (self._origin[1].get("durable", True) if self._origin else True)
        return (_open_path, (os.path.abspath(src), bool(durable)))

    def __reduce__(self):
        """Pickles as how to reopen it (path or store, options), never the data."""
        if self._origin is None:
            raise pickle.PicklingError(
                f"cannot pickle {self!r}: only images from voxcore.open or create_array reopen")
        source, kwargs, level = self._origin
        if not isinstance(source, str):
            _check_store_pickles(source)
        return (_reopen, (source, kwargs, level, self._meta.dims))

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: Any, offset: Sequence[int] | None = None, *, casting: str = "same_kind",
              allow_unaligned: bool = False) -> None:
        """Write data (array-like, same rank) with its first element at offset (default 0s).

        The box must lie inside the array. Partial chunks are read, merged and rewritten
        (UnalignedWriteWarning unless allow_unaligned); the merge is serialised per chunk, so
        threads may write disjoint regions concurrently. casting: as numpy's ("no", "equiv",
        "safe", "same_kind", "unsafe"); below "unsafe", integers out of the array's range raise.
        """
        self._write(cast_for_write(data, self.dtype, casting), offset, allow_unaligned)

    @property
    def resizable(self) -> bool:
        """Whether :meth:`resize` can grow this array (a handle opened or created by path)."""
        return getattr(self, "_adapter", None) is not None

    def resize(self, shape: Sequence[int]) -> None:
        """Grow the array to shape (same rank, no axis smaller): its metadata document is
        replaced atomically, so readers see the old shape or the new one; what lies in the new
        part reads as the fill value until written."""
        adapter = getattr(self, "_adapter", None)
        if not self.resizable:
            raise UnsupportedError(f"{self._source}: this handle cannot resize its array (open it by path)")
        shape = tuple(int(s) for s in shape)
        if len(shape) != self.ndim or any(n < o for n, o in zip(shape, self.shape)):
            raise InvalidArgumentError(f"resize grows an array only (shape={self.shape}, got={shape})")
        if shape == self.shape:
            return
        v3 = self._meta.zarr_format == 3
        key = "zarr.json" if v3 else ".zarray"
        raw = adapter.get(key)
        if raw is None:
            raise FileNotFoundError(f"{self._source}: {key} is gone")
        doc = zmeta.load_json(raw, key)
        doc["shape"] = list(shape)
        meta = zmeta.parse_v3(doc, key) if v3 else zmeta.parse_v2(doc, self.attrs, key)
        meta.dims = self._meta.dims
        core = ChunkedArray(meta.array_spec(), adapter.core_store(), None)
        adapter.set(key, emit.dumps(doc))
        self._core, self._meta = core, meta

    def _write(self, arr: np.ndarray, offset: Sequence[int] | None, allow_unaligned: bool) -> None:
        """Write an array already of self.dtype (native order); called by write and __setitem__
        only, so that the warning's stacklevel names their caller."""
        if arr.ndim != self.ndim:
            raise InvalidArgumentError(
                f"data rank differs from the array (expected={self.ndim}, got={arr.ndim})")
        start = [0] * self.ndim if offset is None else [int(o) for o in offset]
        if len(start) != self.ndim:
            raise InvalidArgumentError(
                f"offset rank differs from the array (expected={self.ndim}, got={len(start)})")
        if not allow_unaligned:
            self._warn_unaligned(start, arr.shape)
        if self._run is None:
            self._core.write(start, arr)
        else:
            self._core.write(start, arr, self._run)

    def _warn_unaligned(self, start: Sequence[int], shape: Sequence[int]) -> None:
        """UnalignedWriteWarning if the box covers a write unit (shard, else chunk) partly; the
        array's end counts as aligned."""
        unit = self.shards or self.chunks
        if not all(shape):
            return
        for axis, (a, n, u, end) in enumerate(zip(start, shape, unit, self.shape)):
            if a % u or ((a + n) % u and a + n != end):
                kind = "shard" if self.shards else "chunk"
                warnings.warn(UnalignedWriteWarning(
                    f"write of box start={tuple(start)} shape={tuple(shape)} to {self._source} is not "
                    f"aligned to the {kind} shape {tuple(unit)} (axis={axis}): partly covered {kind}s "
                    "are read, merged and rewritten (pass allow_unaligned=True to accept that)"),
                    stacklevel=4)  # the caller of write() or of item assignment
                return

    def __setitem__(self, key: Any, value: Any) -> None:
        sel = select(key, self.shape, self.dims)
        if not sel.simple:
            raise IndexError("assignment supports unit steps only")
        value = cast_for_write(value, self.dtype, "same_kind")
        full = np.broadcast_to(np.expand_dims(value, tuple(sel.squeeze)) if sel.squeeze and
                               value.ndim == self.ndim - len(sel.squeeze) else value, sel.shape)
        self._write(np.ascontiguousarray(full), sel.start, False)



def write_whole(images: Sequence[Image], datas: Sequence[Any]) -> None:
    """Each data (array-like of its image's shape) written whole into its image, all of them as
    one parallel loop over their chunks (a pyramid's levels: no level's last chunks leave the
    other threads idle before the next level starts). Writes of a save share its WriteRun."""
    jobs = []
    runs = {id(img._run) for img in images}
    for img, data in zip(images, datas):
        arr = cast_for_write(data, img.dtype, "same_kind")
        if arr.shape != img.shape:
            raise InvalidArgumentError(f"data shape differs from the array (expected={img.shape}, got={arr.shape})")
        jobs.append((img._core, [0] * img.ndim, arr))
    if len(runs) != 1:  # (arrays of different runs: each its own write)
        for img, (_, start, arr) in zip(images, jobs):
            img._write(arr, start, True)
        return
    write_all(jobs, images[0]._run)  # (one run for all, None when the save is not durable)


# ---- opening --------------------------------------------------------------------------------

class ImageLevel(Level):
    """One level of an OME-Zarr image: its array and where its voxels lie."""

    def __init__(self, path: str, scale: tuple[float, ...], translation: tuple[float, ...], image: Image,
                 owner: Image | None = None, index: int = 0):
        # owner: the Image whose levels these are (level 0's Image), when known
        super().__init__(owner if owner is not None else image, index if owner is not None else 0,
                         scale, translation, image, path)

    def __reduce__(self):
        if self.owner is self.image and self.index == 0:
            return (ImageLevel, (self.path, self.scale, self.translation, self.image))
        return (_level_of, (self.owner, self.index))


def _open_ome(adapter, source: str, node: dict, cache_bytes: int | None, max_depth: int) -> Image:
    ms = ngff.parse_multiscale(node, rank=lambda: _first_level_rank(adapter, node, source))
    levels = []
    names = tuple(a["name"] for a in ms["axes"])
    fmt = node.get("_zarr_format", 3)  # every level's metadata and the labels' (which read_metadata
    # looks for in both formats) in one round trip:
    adapter.prefetch([k for lv in ms["levels"] for k in zmeta.metadata_keys(fmt, lv["path"])]
                     + zmeta.metadata_keys(2, "labels"))
    for i, lv in enumerate(ms["levels"]):  # parse_multiscale checked the paths
        try:
            img = _open_node(adapter.sub(lv["path"]), f"{source}/{lv['path']}", cache_bytes, 0)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"multiscales[0].datasets[{i}].path={lv['path']!r}: no Zarr array there ({e})") from None
        if img.ndim != len(ms["axes"]):
            raise InvalidMetadataError(
                f"level {lv['path']} rank differs from the axes (expected={len(ms['axes'])}, got={img.ndim})")
        img._meta.dims = names  # a v2 level has no dimension_names: index it by the OME axes
        levels.append(ImageLevel(lv["path"], lv["scale"], lv["translation"], img))
    base = levels[0].image
    base.attrs = {k: v for k, v in node.items() if k != "_zarr_format"}
    base._ome = ms
    base._levels = levels
    n_c = base.shape[names.index("c")] if "c" in names else None
    base._channels = omero.read_channels(node, n_c)
    for i, lv in enumerate(levels):
        lv.owner, lv.index = base, i
    labels_node = None
    try:
        labels_node = zmeta.read_metadata(adapter.sub("labels").get)
    except (FileNotFoundError, InvalidMetadataError):
        labels_node = None
    base._labels = ngff.read_labels(labels_node) if isinstance(labels_node, dict) else []
    return base


def _first_level_rank(adapter, node: dict, source: str) -> int:
    """The rank of a multiscale's first level (for one whose axes must be inferred)."""
    ome = node.get("ome") if isinstance(node.get("ome"), dict) else node
    try:
        path = ome["multiscales"][0]["datasets"][0]["path"]
    except (KeyError, IndexError, TypeError):
        raise InvalidMetadataError(f"{source}: multiscales[0].datasets[0].path is missing") from None
    if not isinstance(path, str):
        raise InvalidMetadataError(f"{source}: multiscales[0].datasets[0].path must be a string")
    ngff.check_path(path, "multiscales[0].datasets[0].path")
    meta = zmeta.read_metadata(adapter.sub(path).get)
    if isinstance(meta, dict):
        raise InvalidMetadataError(f"{source}/{path}: the first level is a group, not an array")
    return len(meta.shape)


def _open_node(adapter, source: str, cache_bytes: int | None, max_depth: int = 1) -> Image:
    try:
        node = zmeta.read_metadata(adapter.get)
    except FileNotFoundError:
        raise FileNotFoundError(f"{source}: no Zarr array or group here (no zarr.json, .zarray or .zgroup)") from None
    if isinstance(node, dict):  # a group: OME-Zarr multiscales
        ome = node.get("ome") if isinstance(node.get("ome"), dict) else node
        if max_depth == 0 or not ome.get("multiscales"):
            raise FileNotFoundError(f"{source} is a Zarr group without OME-Zarr multiscales")
        return _open_ome(adapter, source, node, cache_bytes, max_depth)
    cache = ChunkCache(int(cache_bytes)) if cache_bytes else None
    core = ChunkedArray(node.array_spec(), adapter.core_store(), cache)
    img = Image(core, node, source)
    img._adapter = adapter
    return img


def opens(source: Any, path: str | None) -> bool:
    """Whether source (with path inside it) is this kind's: a zarr-python store or a directory."""
    if is_zarr_store(source):
        return True
    if not isinstance(source, (str, os.PathLike)):
        return False
    root = os.fspath(source)
    return os.path.isdir(os.path.join(root, path) if path else root)


def open_image(source: Any, path: str | None = None, *, cache_bytes: int | None = None,
               durable: bool = True, allow_external_links: bool = False, **_other: Any) -> Image:
    """A Zarr array or OME-Zarr group (its level 0) in a zarr-python store or a local directory
    (see :func:`voxcore.open` for the options)."""
    if is_zarr_store(source):
        adapter = ZarrStoreAdapter(source, path or "")
        img = _open_node(adapter, adapter.label(), cache_bytes)
        return remember_origin(img, source, {"path": path, "cache_bytes": cache_bytes})
    root = os.fspath(source)
    if path:
        root = os.path.join(root, path)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no such directory: {root}")
    img = _open_node(FileAdapter(root, durable, allow_external_links), root, cache_bytes)
    return remember_origin(img, root, {"cache_bytes": cache_bytes, "durable": durable,
                                        "allow_external_links": allow_external_links})


def _open_path(path: str, durable: bool) -> Image:
    return open_image(path, durable=durable)


def remember_origin(img: Image, source: Any, kwargs: dict) -> Image:
    if isinstance(source, str):
        source = os.path.abspath(source)  # a worker may run in another directory
    img._origin = (source, kwargs, None)
    for i, lv in enumerate(img._levels):
        if lv.image is not img:
            lv.image._origin = (source, kwargs, i)
    return img


def _check_store_pickles(store: Any) -> None:
    """Refuse stores that cannot travel to another process as a reference to the same data."""
    name = type(store).__name__
    if "MemoryStore" in name:  # it pickles, but as a copy of its bytes: writes would be lost
        raise pickle.PicklingError(
            f"cannot pickle a voxcore.Image over a {name}: the store lives in this process's "
            "memory (use a path or a LocalStore/FsspecStore to share it with workers)")
    try:
        pickle.dumps(store)
    except Exception as e:  # noqa: BLE001 - any failure of a foreign store's pickling
        raise pickle.PicklingError(
            f"cannot pickle a voxcore.Image over a {name}: the store does not pickle ({e})") from None


def _reopen(source: Any, kwargs: dict, level: int | None, dims: tuple | None) -> Image:
    img = open_image(source, **kwargs)
    if level is not None:
        img = img.levels[level].image
    if dims is not None and img._ome is None and len(dims) == img.ndim:
        img._meta.dims = tuple(dims)  # a v2 array's dims live only in the handle
    return img


def _level_of(owner: Image, index: int) -> ImageLevel:
    return owner.levels[index]
