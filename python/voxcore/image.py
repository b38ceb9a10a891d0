"""Image: a lazily read chunked array (Zarr v2/v3, OME-Zarr level 0), and how to open/create one."""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._indexing import select
from ._resources import check_allocation
from ._stores import FileAdapter, ZarrStoreAdapter, is_zarr_store
from .errors import InvalidArgumentError, InvalidMetadataError, LimitExceededError, UnalignedWriteWarning
from .formats import ngff
from .formats import zarr as zmeta


class Image:
    """A chunked array on disk or in a store. Reads and writes go through the C++ core.

    Use :func:`voxcore.open` or :func:`voxcore.create_array` to get one.
    """

    def __init__(self, core: _core.ChunkedArray, meta: zmeta.ZarrArrayMeta, source: str,
                 attrs: dict | None = None):
        self._core = core
        self._meta = meta
        self._source = source
        self.attrs = attrs if attrs is not None else meta.attributes
        self._ome: dict | None = None  # the parsed multiscale when opened from an OME-Zarr group
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
    def ndim(self) -> int:
        return len(self._meta.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

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
        out = np.eye(4)
        for k, d in enumerate(("x", "y", "z")):
            if d in self.dims:
                i = self.dims.index(d)
                out[k, k] = self.scale[i]
                out[k, 3] = self.translation[i]
        return out

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
                "name": self._ome.get("name"), "type": self._ome.get("type"), "version": self._ome["version"]}

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

    def __len__(self) -> int:
        return self.shape[0]

    # -- reading ----------------------------------------------------------------------------
    def read(self, region: Any = None, *, out: np.ndarray | None = None, pad: bool = False,
             level: int = 0) -> np.ndarray:
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
        """
        if level:
            levels = self.levels
            if not 0 <= int(level) < len(levels):
                raise InvalidArgumentError(f"level out of range (levels={len(levels)}, got={level})")
            return levels[int(level)].image.read(region, out=out, pad=pad)
        sel = select(region, self.shape, self.dims, pad=pad)
        result_shape = tuple(s if st == 1 else len(range(0, s, abs(st)))
                             for s, st, in zip(sel.shape, sel.steps))
        result_shape = tuple(n for i, n in enumerate(result_shape) if i not in sel.squeeze)
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("out must be a numpy array")
            if out.shape != result_shape:
                raise InvalidArgumentError(
                    f"out has the wrong shape (expected={result_shape}, got={out.shape})")
            if out.dtype != self.dtype:
                raise InvalidArgumentError(
                    f"out has the wrong dtype (expected={self.dtype}, got={out.dtype})")
        if sel.simple:
            dst = out if out is not None else self._alloc(result_shape)
            box_view = np.expand_dims(dst, tuple(sel.squeeze)) if sel.squeeze else dst
            self._core.read_into(sel.start, box_view)
            return dst
        box = self._alloc(sel.shape)
        self._core.read_into(sel.start, box)
        index = tuple(
            (0 if i in sel.squeeze else slice(None, None, st) if st > 0 else slice(None, None, st))
            for i, st in enumerate(sel.steps)
        )
        picked = box[index]
        if out is not None:
            np.copyto(out, picked)
            return out
        return np.ascontiguousarray(picked)

    def _alloc(self, shape: tuple[int, ...]) -> np.ndarray:
        """An empty result buffer, refused (LimitExceededError) before allocating if it cannot fit."""
        nbytes = math.prod(shape) * self.dtype.itemsize
        what = f"read of shape {shape} {self.dtype} from {self._source}"
        check_allocation(nbytes, what)
        try:
            return np.empty(shape, dtype=self.dtype)
        except MemoryError:
            raise LimitExceededError(f"{what}: cannot allocate the {nbytes}-byte result") from None

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.read()
        return a if dtype is None else a.astype(dtype, copy=False)

    # -- views and scale-out ------------------------------------------------------------------
    def to_dask(self, level: int = 0, chunks: Any = None):
        """A dask array of one level whose blocks are read by the core (storage-chunk aligned
        unless chunks is given as multiples of them)."""
        from ._dask import to_dask

        return to_dask(self, level=level, chunks=chunks)

    def view(self, offset: Sequence[int] | None = None, size: Sequence[int] | None = None, *,
             level: int = 0, read_only: bool = False, allow_unaligned: bool = False):
        """A :class:`voxcore.View`: a box on one level, offset and size in level-0 voxels
        (default: the whole level). See :mod:`voxcore.view`."""
        from .view import View

        return View(self, level, offset, size, read_only=read_only, allow_unaligned=allow_unaligned)

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
        self._write(_cast_for_write(data, self.dtype, casting), offset, allow_unaligned)

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
        self._core.write(start, arr)

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
        value = _cast_for_write(value, self.dtype, "same_kind")
        full = np.broadcast_to(np.expand_dims(value, tuple(sel.squeeze)) if sel.squeeze and
                               value.ndim == self.ndim - len(sel.squeeze) else value, sel.shape)
        self._write(np.ascontiguousarray(full), sel.start, False)


_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def _cast_for_write(data: Any, dtype: np.dtype, casting: str) -> np.ndarray:
    """data as a native-order array of dtype (no copy when it already is one) by numpy's casting
    rule, except: under "same_kind" any integer type may go to any other, and below "unsafe"
    integers outside dtype's range raise instead of wrapping. A Python int, float or complex is
    judged by its value (NEP 50), so img[...] = 5 works for every integer dtype it fits."""
    if casting not in _CASTINGS:
        raise InvalidArgumentError(f"casting must be one of {_CASTINGS} (got={casting!r:.20})")
    arr = np.asarray(data)
    if arr.dtype != dtype:
        src = np.min_scalar_type(data) if type(data) in (int, float, complex) else arr.dtype
        ints = src.kind in "iu" and dtype.kind in "iu"
        if not (np.can_cast(src, dtype, casting) or (ints and casting == "same_kind")):
            raise InvalidArgumentError(
                f"cannot write {arr.dtype} data into a {dtype} array with casting={casting!r} "
                "(pass casting=\"unsafe\" to convert anyway)")
        if ints and casting != "unsafe" and arr.size and not np.can_cast(arr.dtype, dtype, "safe"):
            info = np.iinfo(dtype)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise InvalidArgumentError(
                    f"values out of range of the array's {dtype} (range=[{info.min}, {info.max}], "
                    f"got=[{lo}, {hi}]); pass casting=\"unsafe\" to wrap them")
        arr = arr.astype(dtype)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


# ---- opening --------------------------------------------------------------------------------

class ImageLevel:
    """One level of an OME-Zarr image: its array and where its voxels lie."""

    def __init__(self, path: str, scale: tuple[float, ...], translation: tuple[float, ...], image: Image,
                 owner: Image | None = None, index: int = 0):
        self.path = path
        self.scale = scale
        self.translation = translation
        self.image = image
        self.owner = owner  # the Image whose levels these are (level 0's Image), when known
        self.index = index

    def view(self, offset: Sequence[int] | None = None, size: Sequence[int] | None = None, *,
             read_only: bool = False, allow_unaligned: bool = False):
        """A :class:`voxcore.View` on this level; offset and size in level-0 voxels."""
        from .view import View

        if self.owner is None:
            return View(self.image, 0, offset, size, read_only=read_only,
                        allow_unaligned=allow_unaligned)
        return View(self.owner, self.index, offset, size, read_only=read_only,
                    allow_unaligned=allow_unaligned)

    def __reduce__(self):
        if self.owner is None:
            return (ImageLevel, (self.path, self.scale, self.translation, self.image))
        return (_level_of, (self.owner, self.index))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.image.shape

    @property
    def chunks(self) -> tuple[int, ...]:
        return self.image.chunks

    @property
    def shards(self) -> tuple[int, ...] | None:
        return self.image.shards

    def __repr__(self) -> str:
        return f"<voxcore.ImageLevel {self.path} shape={self.shape} scale={self.scale} translation={self.translation}>"


def _open_ome(adapter, source: str, node: dict, cache_bytes: int | None, max_depth: int) -> Image:
    ms = ngff.parse_multiscale(node)
    levels = []
    names = tuple(a["name"] for a in ms["axes"])
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
    for i, lv in enumerate(levels):
        lv.owner, lv.index = base, i
    labels_node = None
    try:
        labels_node = zmeta.read_metadata(adapter.sub("labels").get)
    except (FileNotFoundError, InvalidMetadataError):
        labels_node = None
    base._labels = ngff.read_labels(labels_node) if isinstance(labels_node, dict) else []
    return base


def _open_node(adapter, source: str, cache_bytes: int | None, max_depth: int = 1) -> Image:
    node = zmeta.read_metadata(adapter.get)
    if isinstance(node, dict):  # a group: OME-Zarr multiscales
        ome = node.get("ome") if isinstance(node.get("ome"), dict) else node
        if max_depth == 0 or not ome.get("multiscales"):
            raise FileNotFoundError(f"{source} is a Zarr group without OME-Zarr multiscales")
        return _open_ome(adapter, source, node, cache_bytes, max_depth)
    cache = _core.ChunkCache(int(cache_bytes)) if cache_bytes else None
    core = _core.ChunkedArray(node.array_spec(), adapter.core_store(), cache)
    return Image(core, node, source)


def open(source: Any, *, path: str | None = None, cache_bytes: int | None = None,
         durable: bool = True, caching: str = "fill", affine_source: str = "best",
         allow_external_links: bool = False) -> Image:
    """Open a Zarr v2/v3 array, an OME-Zarr group (its level 0) or a NIfTI file, lazily.

    NIfTI (.nii, .nii.gz, .hdr/.img[.gz]) gives a NiftiImage: caching "fill" keeps a .gz
    file's inflated bytes after a whole read (nibabel's default; uncache() drops them) — a
    region read of an image over 256 MiB inflates only up to its slab and keeps nothing —
    "unchanged" never keeps them; affine_source "best" | "sform" | "qform" | "fallback".

    Parameters
    ----------
    source : str, os.PathLike, zarr store, zarr.Array or zarr.Group
        A local directory, or any zarr-python store object (chunk bytes are fetched through it
        in batches).
    path : str, optional
        The node inside a store.
    cache_bytes : int, optional
        Size of a decoded-chunk LRU cache in the core (repeated/overlapping reads decode once).
        Writes through this handle keep it current; it assumes no other handle or process
        rewrites the array meanwhile.
    durable : bool
        For local directories: fsync writes (atomic rename either way).
    allow_external_links : bool
        For local directories: follow symbolic links that lead out of the root directory (by
        default a key or level path that resolves outside it raises UnsafePathError; links that
        stay inside are always followed).
    """
    store_path = getattr(source, "store_path", None)
    if store_path is not None:  # zarr.Array / zarr.Group
        source, path = store_path.store, "/".join(p for p in (store_path.path, path) if p)
    if path:
        _core.check_key(path.strip("/") if is_zarr_store(source) else path)
    if is_zarr_store(source):
        adapter = ZarrStoreAdapter(source, path or "")
        img = _open_node(adapter, f"{type(source).__name__}:{path or ''}", cache_bytes)
        return _remember_origin(img, source, {"path": path, "cache_bytes": cache_bytes})
    root = os.fspath(source)
    if path:
        root = os.path.join(root, path)
    from .formats import nifti

    if nifti.is_nifti_path(root):
        return nifti.NiftiImage(root, caching=caching, affine_source=affine_source)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no such directory: {root}")
    img = _open_node(FileAdapter(root, durable, allow_external_links), root, cache_bytes)
    return _remember_origin(img, root, {"cache_bytes": cache_bytes, "durable": durable,
                                        "allow_external_links": allow_external_links})


def create_array(source: Any, shape: Sequence[int], dtype: Any, *, chunks: Sequence[int] | int | None = None,
                 shards: Sequence[int] | int | None = None, codec: str | None = "zstd",
                 level: int | None = None, zarr_format: int = 3, dims: Sequence[str] | None = None,
                 fill_value: Any = 0, order: str = "C", dimension_separator: str | None = None,
                 overwrite: bool = False, durable: bool = True, path: str | None = None,
                 attributes: dict | None = None) -> Image:
    """Create a Zarr array and return it as a writable Image.

    chunks defaults to 64 per axis (clipped to the shape); shards (v3 only) groups chunks into
    one file each and must be a multiple of chunks. codec: "zstd" (level 1), "blosc-lz4",
    "gzip", "lz4", "zlib" or None ("none"). zarr_format 2 writes .zarray with dimension_separator "."
    unless given. overwrite=True replaces an existing Zarr node at the target (anything else
    there is refused, nothing touched): locally the new metadata is built beside the old node
    and swapped in by one atomic rename, then the old node is removed.
    """
    if codec == "none":  # as the CLI's --codec none
        codec = None
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")

    def per_axis(v, name):
        if v is None:
            return None
        t = (int(v),) * nd if np.isscalar(v) else tuple(int(x) for x in v)
        if len(t) != nd:
            raise InvalidArgumentError(f"{name} rank differs from shape (expected={nd}, got={len(t)})")
        return t

    chunks_t = per_axis(chunks, "chunks") or tuple(max(1, min(64, s)) for s in shape)
    shards_t = per_axis(shards, "shards")
    if order not in ("C", "F"):
        raise InvalidArgumentError(f"order must be 'C' or 'F' (got={order!r})")
    if dims is not None and len(dims) != nd:
        raise InvalidArgumentError(f"dims length differs from rank (expected={nd}, got={len(dims)})")
    if zarr_format == 3:
        if shards_t is not None and any(s % c for s, c in zip(shards_t, chunks_t)):
            raise InvalidArgumentError(
                f"shards must be multiples of chunks (chunks={chunks_t}, shards={shards_t})")
        doc = zmeta.metadata_v3(shape, dtype, chunks_t, shards_t, codec, level, fill_value, order,
                                dims, attributes)
        meta_key = "zarr.json"
    elif zarr_format == 2:
        if shards_t is not None:
            raise InvalidArgumentError("shards need zarr_format=3")
        sep = dimension_separator or "."
        doc = zmeta.metadata_v2(shape, dtype, chunks_t, codec, level, fill_value, order, sep)
        meta_key = ".zarray"
    else:
        raise InvalidArgumentError(f"zarr_format must be 2 or 3 (got={zarr_format!r})")
    # Parse what we are about to write: one validation path for read and write.
    meta = zmeta.parse_v3(doc) if zarr_format == 3 else zmeta.parse_v2(doc, attributes)
    if dims is not None:
        meta.dims = tuple(dims)

    def write_metadata(adapter) -> None:
        adapter.set(meta_key, zmeta.dumps(doc))
        if zarr_format == 2 and attributes:
            adapter.set(".zattrs", zmeta.dumps(attributes))

    store_path = getattr(source, "store_path", None)
    if store_path is not None:
        source, path = store_path.store, "/".join(p for p in (store_path.path, path) if p)
    if is_zarr_store(source):
        adapter = ZarrStoreAdapter(source, path or "")
        if not overwrite and (adapter.get("zarr.json") is not None or adapter.get(".zarray") is not None):
            raise FileExistsError(f"an array already exists at {path or '/'} (pass overwrite=True)")
        label = f"{type(source).__name__}:{path or ''}"
        if overwrite:
            from ._replace import check_store_prefix
            from ._stores import _sync
            check_store_prefix(source, adapter.prefix, label)
            _sync(source.delete_dir(adapter.prefix)) if adapter.prefix else _sync(source.clear())
        write_metadata(adapter)
    else:
        root = os.fspath(source)
        if path:
            _core.check_key(path)
            root = os.path.join(root, path)
        if overwrite:  # build the new node beside the old one and swap it in (refuses non-Zarr)
            from ._replace import replace_now

            replace_now(root, lambda new: write_metadata(FileAdapter(new, durable)), durable)
        elif os.path.exists(root) and any(os.path.exists(os.path.join(root, k))
                                          for k in ("zarr.json", ".zarray", ".zgroup")):
            raise FileExistsError(f"a Zarr node already exists at {root} (pass overwrite=True)")
        os.makedirs(root, exist_ok=True)
        adapter = FileAdapter(root, durable)
        if not overwrite:  # (after replace_now, root already holds the new metadata)
            write_metadata(adapter)
        label = root
    core = _core.ChunkedArray(meta.array_spec(), adapter.core_store(), None)
    img = Image(core, meta, label)
    if is_zarr_store(source):
        return _remember_origin(img, source, {"path": path})
    return _remember_origin(img, label, {"durable": durable})


# ---- pickling: an Image travels as where to reopen it ---------------------------------------

def _remember_origin(img: Image, source: Any, kwargs: dict) -> Image:
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
    img = open(source, **kwargs)
    if level is not None:
        img = img.levels[level].image
    if dims is not None and img._ome is None and len(dims) == img.ndim:
        img._meta.dims = tuple(dims)  # a v2 array's dims live only in the handle
    return img


def _level_of(owner: Image, index: int) -> ImageLevel:
    return owner.levels[index]
