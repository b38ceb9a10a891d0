"""SlideImage: a whole-slide (or any tiled or stripped, pyramidal or not) TIFF, read tile by tile.

The TIFF kind of the image model. Its metadata mapping is :mod:`voxcore.formats.tiff`
(tifffile parses the IFDs). Each level whose tiles the core decodes (JPEG with shared tables,
deflate, LZW, PackBits, zstd, uncompressed; horizontal and floating-point predictors) is a core
ChunkedArray over a TiffStore: tiles are read by pread and decoded in parallel with the GIL
released, straight into the destination, edge tiles cropped, decoded tiles cached
(``open(..., cache_bytes=)``). Other compressions (JPEG 2000, WebP, ...) are decoded by
tifffile with imagecodecs; ``info()`` names that slower path.

A slide's URL (a :class:`voxcore._files.RemoteFile`) reads the same way: tifffile parses it
through a block-cached file over range requests, and the core's tiles come from a CallbackStore
that asks each tile's byte range (neighbouring tiles in one request; :mod:`voxcore._tiles`).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .._core import ArraySpec, ChunkCache, ChunkedArray, CodecId, CodecSpec, TiffStore
from .._files import RemoteFile
from .._tiles import RangeReader, RemoteTiles
from ..errors import CorruptDataError, InvalidArgumentError, VoxcoreError
from ..formats import tiff as tmeta
from .box_read import read_region
from .model import ImageModel, Level


_KINDS = {"svs": "Aperio SVS", "ome": "OME-TIFF", "tiff": "TIFF"}


class _Slide:
    """What the levels of one open slide share: the parsed file, its layout, the tile cache.
    source: a local path or a URL's RemoteFile (path is then the URL)."""

    def __init__(self, source: str | RemoteFile, cache_bytes: int | None):
        remote = isinstance(source, RemoteFile)
        self.source = source if remote else os.path.abspath(source)  # what reopens it
        self.path = source.path if remote else self.source
        self.reader = RangeReader(source) if remote else None
        with self.guard():
            self.tif = tmeta.open_tiff(self.path, self.reader)
            try:
                self.layout = tmeta.layout(self.tif, self.path)
            except BaseException:
                self.tif.close()
                raise
        self._finalizer = weakref.finalize(self, self.tif.close)
        self.cache_bytes = cache_bytes
        self.cache = ChunkCache(int(cache_bytes)) if cache_bytes else None
        self.lock = threading.Lock()  # tifffile's file handle, for the fallback path
        self._arrays: dict[int, Any] = {}
        self._fallback: dict[int, Any] = {}  # level -> tifffile's zarr array, for other codecs

    def guard(self):
        """Around tifffile's reads of a URL: raises the request failures it logged and read past."""
        return self.reader.guard() if self.reader is not None else contextlib.nullcontext()

    def core_array(self, k: int):
        """The core ChunkedArray of level k (made on first use), or None for tifffile's path."""
        level = self.layout.levels[k]
        if level.table is None:
            return None
        if k not in self._arrays:
            self._arrays[k] = _core_array(self.source, level, self.layout.dtype, self.cache)
        return self._arrays[k]

    def fallback_read(self, k: int, start: list[int], dst: np.ndarray) -> None:
        """The box at start into dst, decoded by tifffile (imagecodecs) through its zarr store."""
        import zarr

        level = self.layout.levels[k]
        with self.lock, self.guard(), _decoding(f"{self.path} level {k}"):
            arr = self._fallback.get(k)
            if arr is None:  # tifffile's zarr store of the level, made once
                store = self.tif.series[level.series].aszarr(level=level.level)
                arr = self._fallback[k] = zarr.open_array(store, mode="r")
            raw = arr[tuple(slice(a, a + n) for a, n in zip(_unsqueeze(start, arr.shape, level.shape),
                                                           _unsqueeze(dst.shape, arr.shape, level.shape)))]
        np.copyto(dst, np.asarray(raw).reshape(dst.shape))


@contextlib.contextmanager
def _decoding(where: str):
    """tifffile's and imagecodecs' decode failures (a damaged or truncated segment) as
    CorruptDataError naming where; voxcore's own errors and I/O errors pass as they are."""
    try:
        yield
    except VoxcoreError:
        raise
    except (ValueError, RuntimeError) as e:
        raise CorruptDataError(f"{where}: tifffile could not decode it ({type(e).__name__}: {e})") from e


def _unsqueeze(values, full_shape, shape) -> list[int]:
    """values along shape's axes spread over full_shape's (whose extra axes have length 1)."""
    out, j = [], 0
    for n in full_shape:
        if j < len(shape) and n == shape[j]:
            out.append(values[j])
            j += 1
        else:
            out.append(0 if isinstance(values, list) else 1)
    return out


def _core_array(source: str | RemoteFile, level: tmeta.SlideLevel, dtype: np.dtype, cache):
    t = level.table
    spec = ArraySpec()
    spec.shape = list(level.shape)
    spec.chunk_shape = list(t.chunks)
    spec.dtype = np.dtype(dtype).name
    codec = CodecSpec()
    codec.id = CodecId.tiff
    codec.big_endian = t.big_endian
    codec.tiff_compression = t.compression
    codec.tiff_predictor = t.predictor
    codec.tiff_photometric = t.photometric
    codec.tiff_samples = t.samples
    codec.tiff_last_rows = t.last_rows
    codec.jpeg_tables = t.jpeg_tables
    spec.codecs = [codec]
    spec.key_v2 = True
    spec.key_separator = "."
    if isinstance(source, RemoteFile):
        store = RemoteTiles(source, t.grid, t.offsets, t.bytecounts, _max_tile_bytes(t, dtype)).core_store()
    else:
        store = TiffStore(source, list(t.grid), t.offsets, t.bytecounts)
    return ChunkedArray(spec, store, cache)


def _max_tile_bytes(t: tmeta.TileTable, dtype: np.dtype) -> int:
    """The most bytes one encoded tile may take: the core's bound on a stored chunk (twice its
    decoded size and 1 MiB), checked before a tile is fetched."""
    return 2 * math.prod(t.chunks) * np.dtype(dtype).itemsize + (1 << 20)


class SlideLevel(Level):
    """A level of a slide: also its downsample (OpenSlide's definition) and tile shape."""

    def __init__(self, owner: SlideImage, index: int, image: SlideImage):
        super().__init__(owner, index, image.scale, image.translation, image=image, path=str(index))
        lv0, lv = owner.shape, image.shape
        y, x = owner.dims.index("y"), owner.dims.index("x")
        self.downsample = (lv0[x] / lv[x] + lv0[y] / lv[y]) / 2
        self.tile = owner._slide.layout.levels[index].tile
        self.compression = owner._slide.layout.levels[index].compression


class SlideImage(ImageModel):
    """A TIFF slide: level 0 is the image; ``levels``, ``associated`` and ``metadata`` the rest.

    Use :func:`voxcore.open`. dims are ("y", "x", "c") for RGB(A), ("c", "y", "x") for
    multichannel planes, ("y", "x") for one sample (with "z"/"t" first where the file has them).
    """

    def __init__(self, slide: _Slide, level: int = 0):
        self._slide = slide
        self._level = level
        self._meta = slide.layout.levels[level]

    # -- description ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._meta.shape

    @property
    def dtype(self) -> np.dtype:
        return self._slide.layout.dtype

    @property
    def dims(self) -> tuple[str, ...]:
        return self._slide.layout.dims

    def _factors(self) -> tuple[float, ...]:
        """Per axis: level-0 pixels per pixel of this level (1 off y and x)."""
        lv0 = self._slide.layout.levels[0].shape
        return tuple(a / b if d in ("y", "x") else 1.0 for d, a, b in zip(self.dims, lv0, self.shape))

    @property
    def scale(self) -> tuple[float, ...]:
        size = self._slide.layout.pixel_size
        yx = {"y": size[0], "x": size[1]} if size else {"y": 1.0, "x": 1.0}
        return tuple(yx.get(d, 1.0) * f for d, f in zip(self.dims, self._factors()))

    @property
    def translation(self) -> tuple[float, ...]:
        """Where this level's first pixel centre lies: (factor - 1) / 2 level-0 pixels in."""
        size = self._slide.layout.pixel_size
        yx = {"y": size[0], "x": size[1]} if size else {"y": 1.0, "x": 1.0}
        return tuple(yx.get(d, 1.0) * (f - 1) / 2 if d in yx else 0.0
                     for d, f in zip(self.dims, self._factors()))

    @property
    def units(self) -> tuple[str | None, ...]:
        unit = self._slide.layout.unit
        return tuple(unit if d in ("y", "x") else None for d in self.dims)

    @property
    def levels(self) -> list[SlideLevel]:
        if self._level:
            return self._owner().levels
        return [SlideLevel(self, k, self if k == 0 else SlideImage(self._slide, k))
                for k in range(len(self._slide.layout.levels))]

    def _owner(self) -> SlideImage:
        return SlideImage(self._slide, 0)

    @property
    def chunks(self) -> tuple[int, ...]:
        t = self._meta.table
        if t is not None:
            return t.chunks
        tile = self._meta.tile or (min(256, self.shape[self.dims.index("y")]), self.shape[self.dims.index("x")])
        return tuple(tile[0] if d == "y" else tile[1] if d == "x" else (n if d == "c" else 1)
                     for d, n in zip(self.dims, self.shape))

    @property
    def source(self) -> str:
        return self._slide.path

    @property
    def compression(self) -> str:
        return self._meta.compression

    @property
    def kind(self) -> str:
        """"svs", "ome" or "tiff"."""
        return self._slide.layout.kind

    @property
    def metadata(self) -> dict[str, Any]:
        """The vendor metadata: Aperio's key/values, the OME-XML (``ome_xml``), a description."""
        return dict(self._slide.layout.metadata)

    @property
    def channels(self) -> list[dict] | None:
        """An OME-TIFF's channel names and colours (OME Channel Name/Color), one per index of
        the c axis; windows are left to the writer (computed from the data). None otherwise."""
        chans = self._slide.layout.channels
        return None if chans is None else [dict(c) for c in chans]

    @property
    def associated(self) -> Mapping[str, np.ndarray]:
        """Associated images by name (an SVS's "thumbnail", "label", "macro"), decoded on access."""
        return _Associated(self._slide)

    def info(self) -> dict[str, Any]:
        """What the file holds, for ``voxcore info``: levels, tiles, compression, pixel size."""
        lay = self._slide.layout
        return {
            "path": self._slide.path, "kind": lay.kind, "dims": self.dims, "dtype": str(self.dtype),
            "pixel_size": lay.pixel_size, "unit": lay.unit,
            "levels": [{"shape": lv.shape, "downsample": round(lv.downsample, 4), "tile": lv.tile,
                        "compression": lv.compression,
                        "decoder": "core" if lay.levels[lv.index].table is not None
                        else "tifffile+imagecodecs (slower path)"}
                       for lv in self.levels],
            "associated": {name: tuple(self._slide.tif.series[i].shape)
                           for name, i in lay.associated.items()},
            **({"channels": [c["label"] for c in lay.channels]} if lay.channels else {}),
        }

    def close(self) -> None:
        """Close the file (its levels' tile files stay open until they are dropped)."""
        self._slide._finalizer()

    def __enter__(self) -> SlideImage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def summary(self) -> list[str]:
        """``voxcore info``: format, levels (shape, downsample, tiles, compression, decoder),
        pixel size, associated images and the vendor's main fields."""
        d = self.info()
        size = (f"{d['pixel_size'][1]:g} x {d['pixel_size'][0]:g} {d['unit'] or '(no unit)'} per pixel (x, y)"
                if d["pixel_size"] else "not given")
        lines = [f"path:   {d['path']}",
                 f"format: {_KINDS[d['kind']]} ({'BigTIFF' if self._slide.tif.is_bigtiff else 'TIFF'})",
                 f"dims:   {d['dims']}  dtype: {d['dtype']}", f"pixel size: {size}"]
        for k, lv in enumerate(d["levels"]):
            tile = f"{lv['tile'][1]}x{lv['tile'][0]} tiles" if lv["tile"] else "strips"
            lines.append(f"level {k}: shape {lv['shape']}  downsample {lv['downsample']:g}  {tile}  "
                         f"{lv['compression']}  decoded by {lv['decoder']}")
        for name, shape in d["associated"].items():
            lines.append(f"associated image {name!r}: shape {shape}")
        meta = self._slide.layout.metadata
        if self.kind == "svs":
            fields = ", ".join(f"{k}={v}" for k, v in meta.items() if k != "Header")
            lines.append(f"aperio: {meta.get('Header', '')}" + (f" | {fields}" if fields else ""))
        return lines

    def __repr__(self) -> str:
        return (f"<voxcore.SlideImage {self._slide.path} level={self._level} shape={self.shape} "
                f"dims={self.dims} compression={self.compression}>")

    # -- reading ----------------------------------------------------------------------------
    def read(self, region: Any = None, *, level: int = 0, out: np.ndarray | None = None,
             dtype: Any = None, pad: bool = False) -> np.ndarray:
        """A region of a level (numpy indexing in that level's pixels, or {dim: index}) as numpy.

        out: a destination of the result's shape and dtype; dtype: the values as that type;
        pad=True: unit-step slices taken literally, zero outside the image.
        """
        if level:
            if self._level:
                raise InvalidArgumentError("read(level=) is relative to level 0: use the slide")
            return self._level_image(level).read(region, out=out, dtype=dtype, pad=pad)
        return read_region(self._read_box, self.shape, self.dims, self.dtype, region, out, pad,
                           self.source, as_dtype=dtype)

    def _read_box(self, start: list[int], dst: np.ndarray) -> None:
        core = self._slide.core_array(self._level)
        if core is not None:
            try:
                core.read_into(start, dst)
            except VoxcoreError as e:  # the core names the tile (its key): say which file and level
                raise type(e)(f"{self._slide.path} level {self._level}, tile {e}") from None
            return
        inside = [(max(0, a), min(n, a + m)) for a, m, n in zip(start, dst.shape, self.shape)]
        dst[...] = 0
        if all(lo < hi for lo, hi in inside):
            sub = dst[tuple(slice(lo - a, hi - a) for (lo, hi), a in zip(inside, start))]
            self._slide.fallback_read(self._level, [lo for lo, _ in inside], sub)

    def _read_level0(self, region: Any) -> np.ndarray:
        return self.read(region)

    def ome_image(self) -> Any:
        """This level with its axes in OME order (("c", "y", "x") for an RGB slide), read lazily:
        what save and convert write. Reading one channel's rows decodes the tiles once for all
        channels (the last rows read are kept for the next channel)."""
        from .memory import from_array

        order = [self.dims.index(d) for d in ("t", "c", "z", "y", "x") if d in self.dims]
        pick = lambda values: tuple(values[i] for i in order)  # noqa: E731
        out = from_array(_OmeOrdered(self, order), dims=pick(self.dims), scale=pick(self.scale),
                         translation=pick(self.translation), units=pick(self.units),
                         name=os.path.basename(self._slide.path))
        out.channels = self.channels
        return out

    def reference(self) -> tuple | None:
        """How a worker reopens this level: the file's path or URL (small to send)."""
        return (_reopen, (self._slide.source, self._level, self._slide.cache_bytes))

    def __reduce__(self):
        return (_reopen, (self._slide.source, self._level, self._slide.cache_bytes))


def _reopen(source: str | RemoteFile, level: int, cache_bytes: int | None) -> SlideImage:
    return SlideImage(_Slide(source, cache_bytes), level)


class _OmeOrdered:
    """A slide level's array with its axes permuted (order: the source axis of each), read on
    demand into memory laid out in that order: an RGB slide's pixels land as planes while each
    decoded tile is in cache, so a writer's chunks are contiguous runs. A read of some channels
    reads and keeps the same rows of every channel, so a writer going channel by channel over
    the same rows decodes each tile once."""

    def __init__(self, image: SlideImage, order: list[int]):
        self._image, self._order = image, order
        self.shape = tuple(image.shape[i] for i in order)
        self.dtype = image.dtype
        self.ndim = len(order)
        self.chunks = tuple(image.chunks[i] for i in order)
        self._kept: tuple[tuple, np.ndarray] | None = None

    def __getitem__(self, index: Any) -> np.ndarray:
        src = self._source_index(index)
        c = self._image.dims.index("c") if "c" in self._image.dims else None
        if c is None:
            return self._read(src, None)
        rows = tuple(slice(None) if i == c else src[i] for i in range(self.ndim))
        key = tuple((s.start, s.stop, s.step) if isinstance(s, slice) else s for s in rows)
        if self._kept is None or self._kept[0] != key:
            self._kept = (key, self._read(rows, None))
        kept = [i for i in self._order if isinstance(rows[i], slice)]  # the kept data's axes
        return self._kept[1][tuple(src[c] if i == c else slice(None) for i in kept)]

    def read_into(self, index: Any, out: np.ndarray) -> np.ndarray:
        """self[index] written into out (C-contiguous, of the result's shape): no allocation."""
        self._kept = None
        return self._read(self._source_index(index), out)

    def _source_index(self, index: Any) -> list:
        index = index if isinstance(index, tuple) else (index,)
        index = index + (slice(None),) * (self.ndim - len(index))
        src: list = [slice(None)] * self.ndim
        for j, i in enumerate(self._order):
            src[i] = index[j]
        return src

    def _read(self, src: list, out: np.ndarray | None) -> np.ndarray:
        """The source read of src, its axes in this array's order, in memory of that order."""
        moved = _moved(self._order, src)
        if not all(isinstance(s, slice) or isinstance(s, (int, np.integer)) for s in src):
            data = np.asarray(self._image.read(tuple(src))).transpose(moved)
            if out is None:
                return data
            out[...] = data
            return out
        sizes = [len(range(*s.indices(n))) for s, n in zip(src, self._image.shape) if isinstance(s, slice)]
        shape = tuple(sizes[m] for m in moved)
        if out is None:
            out = np.empty(shape, self.dtype)
        elif out.shape != shape or out.dtype != self.dtype:
            raise InvalidArgumentError(f"out must be {shape} {self.dtype} (got={out.shape} {out.dtype})")
        self._image.read(tuple(src), out=out.transpose(np.argsort(moved)))
        return out


def _moved(order: list[int], src: list) -> list[int]:
    """The transpose that puts a read's remaining axes (integers drop theirs) in `order`."""
    kept = [i for i, s in enumerate(src) if isinstance(s, slice)]
    return [kept.index(i) for i in order if i in kept]


class _Associated(Mapping):
    def __init__(self, slide: _Slide):
        self._slide = slide

    def __getitem__(self, name: str) -> np.ndarray:
        index = self._slide.layout.associated[name]
        with self._slide.lock, self._slide.guard(), _decoding(f"{self._slide.path} associated image {name!r}"):
            return np.asarray(self._slide.tif.series[index].asarray()).squeeze()

    def __iter__(self) -> Iterator[str]:
        return iter(self._slide.layout.associated)

    def __len__(self) -> int:
        return len(self._slide.layout.associated)


# -- the opener (voxcore.images.registry) ------------------------------------------------------
def _tifffile_store_path(source: Any) -> str | None:
    """The file behind a tifffile ZarrTiffStore (``tifffile.imread(path, aszarr=True)``)."""
    if type(source).__name__ != "ZarrTiffStore":
        return None
    try:
        return source._data[0].keyframe.parent.filehandle.path
    except (AttributeError, IndexError):
        return None


def opens(source: Any, path: str | None) -> bool:
    if _tifffile_store_path(source):
        return True
    if isinstance(source, RemoteFile):  # a URL: claimed by its name, its bytes checked on open
        return not path and source.name.lower().endswith(tmeta.SUFFIXES)
    if isinstance(source, (str, os.PathLike)) and not path:
        p = os.fspath(source)
        return os.path.isfile(p) and tmeta.is_tiff(p)
    return False


def open_image(source: Any, path: str | None, *, cache_bytes: int | None = None,
               **_ignored) -> SlideImage:
    """A SlideImage of a TIFF file, local or behind a URL (or of the file behind a tifffile zarr
    store)."""
    if isinstance(source, RemoteFile):
        return SlideImage(_Slide(source, cache_bytes))
    file = _tifffile_store_path(source)
    if file is None:
        return SlideImage(_Slide(os.fspath(source), cache_bytes))
    slide = _Slide(file, cache_bytes)
    # a tifffile store of one level (imread(..., aszarr=True, level=k)), or a level's path in it
    levels = source._data
    k = 0
    if len(levels) == 1:
        if path and str(path).strip("/"):
            raise FileNotFoundError(f"{file}: this tifffile store holds one level at its root, no key {path!r}")
        shapes = [tuple(lv.shape) for lv in slide.layout.levels]
        full = tuple(int(n) for n in levels[0].shape if n > 1)
        k = next((i for i, sh in enumerate(shapes) if tuple(n for n in sh if n > 1) == full), 0)
    elif path:
        try:
            k = int(str(path).strip("/"))
        except ValueError:
            raise InvalidArgumentError(f"path {path!r} is not a level of {file} (0..{len(levels) - 1})") from None
        if not 0 <= k < len(slide.layout.levels):
            raise InvalidArgumentError(f"path {path!r} is not a level of {file} (0..{len(levels) - 1})")
    return SlideImage(slide, k)
