"""TIFF slides: what a tiled (or stripped) pyramidal TIFF holds, read by tifffile.

tifffile parses the IFDs and groups pages into series and levels (OME-TIFF SubIFD and
multi-page pyramids, Aperio SVS with its thumbnail/label/macro pages, generic TIFF, BigTIFF).
This module maps that structure onto plain data: per level, its shape in voxcore's axis order
and its tile table (tile shape, grid, offsets, byte counts and the tags that say how a tile
decodes), plus pixel size, associated images and vendor metadata. It reads no pixels.
"""

from __future__ import annotations

import logging
import math
import struct
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidMetadataError, LimitExceededError, UnsupportedError, VoxcoreError

# Names of the files read as slides (a URL so named is one file, read by range).
SUFFIXES = (".tif", ".tiff", ".svs", ".btf", ".tf8", ".tf2", ".ndpi", ".scn")

# Compression codes the core decodes (CodecId.tiff) and the names info() shows.
CORE_COMPRESSIONS = {1: "none", 5: "lzw", 7: "jpeg", 8: "deflate", 32946: "deflate",
                     32773: "packbits", 50000: "zstd"}
OTHER_COMPRESSIONS = {33003: "jpeg2000", 33005: "jpeg2000", 34712: "jpeg2000", 33004: "jpeg2000",
                      34892: "jpeg", 50001: "webp", 50002: "jpegxl", 34925: "lzma", 6: "ojpeg"}
# tifffile's axis letters -> voxcore dims.
AXES = {"Y": "y", "X": "x", "S": "c", "C": "c", "Z": "z", "T": "t"}
MAX_TILES = 1 << 26  # per level; more is not a slide but a broken header
UNITS = {"µm": "micrometer", "um": "micrometer", "micron": "micrometer", "nm": "nanometer",
         "mm": "millimeter", "cm": "centimeter", "m": "meter", "Å": "angstrom", "pm": "picometer"}
TO_MICROMETER = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "centimeter": 1e4,
                 "meter": 1e6, "angstrom": 1e-4, "picometer": 1e-6}


@dataclass(frozen=True)
class TileTable:
    """How the core reads one level: chunk = tile, one entry per tile in C order over grid."""
    chunks: tuple[int, ...]
    grid: tuple[int, ...]
    offsets: np.ndarray
    bytecounts: np.ndarray
    compression: int
    predictor: int
    photometric: int
    samples: int
    last_rows: int
    jpeg_tables: bytes
    big_endian: bool


@dataclass(frozen=True)
class SlideLevel:
    shape: tuple[int, ...]
    tile: tuple[int, int] | None  # (height, width) of a tile; None for strips
    table: TileTable | None  # None: the core does not decode it (tifffile does)
    compression: str
    series: int  # tifffile series and level index, for the fallback path
    level: int


@dataclass
class SlideLayout:
    path: str
    kind: str  # "svs", "ome" or "tiff"
    dims: tuple[str, ...]
    dtype: np.dtype
    levels: list[SlideLevel]
    pixel_size: tuple[float, float] | None  # (y, x) of level 0 in `unit`
    unit: str | None
    associated: dict[str, int] = field(default_factory=dict)  # name -> tifffile series index
    metadata: dict[str, Any] = field(default_factory=dict)
    channels: list[dict] | None = None  # OME Channel names and colours, one per index of c


def is_tiff(path: str) -> bool:
    """True when path is a file that starts like a TIFF or BigTIFF."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


class _Complaints(logging.Handler):
    """tifffile's log records while a file is parsed: it logs, not raises, some broken structure."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def open_tiff(path: str, handle: Any = None):
    """tifffile.TiffFile of path (or of handle, a seekable binary file named path) with its
    series parsed; broken structure -> InvalidMetadataError. The handle's own errors (OSError,
    voxcore errors) pass through as they are."""
    import tifffile

    log = logging.getLogger("tifffile")
    complaints = _Complaints()
    log.addHandler(complaints)
    try:
        tif = tifffile.TiffFile(path if handle is None else handle)
        try:
            len(tif.pages)  # walks the whole IFD chain first: tifffile notices a loop there
            _check_loop(complaints, tif, path)
            series = tif.series
            for s in series:
                s.levels  # noqa: B018 - parse every level now, under the handler
        except BaseException:
            tif.close()
            raise
    except VoxcoreError:
        raise
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError, TypeError, OverflowError,
            MemoryError, struct.error) as e:
        raise InvalidMetadataError(f"not a readable TIFF: {path}: {e}") from None
    finally:
        log.removeHandler(complaints)
    if not series:
        tif.close()
        raise InvalidMetadataError(f"TIFF holds no image: {path}")
    return tif


def _check_loop(complaints: _Complaints, tif, path: str) -> None:
    circular = [m for m in complaints.messages if "circular" in m.lower()]
    if circular:
        tif.close()
        raise InvalidMetadataError(f"TIFF IFD chain loops back on itself: {path} ({circular[0]})")


def layout(tif, path: str) -> SlideLayout:
    """The slide in tif: its main series as levels, the others as associated images."""
    kind = "svs" if tif.is_svs else "ome" if tif.is_ome else "tiff"
    series = tif.series
    main = 0
    levels_src = list(series[main].levels)
    if len(levels_src) == 1 and kind == "tiff":
        levels_src = _reduced_pages(tif, series[main]) or levels_src
    dims, squeeze = _dims(series[main].axes, series[main].shape, path)
    levels = [_level(tif, lv, k, squeeze, path) for k, lv in enumerate(levels_src)]
    first = levels_src[0].keyframe
    out = SlideLayout(path=path, kind=kind, dims=dims, dtype=np.dtype(first.dtype),
                      levels=levels, pixel_size=None, unit=None)
    for i, s in enumerate(series):
        if i != main and s.name:
            out.associated[s.name.strip().lower().replace(" image", "")] = i
    desc = first.description or ""
    if kind == "svs":
        out.metadata = _svs_metadata(desc)
        mpp = _float(out.metadata.get("MPP"))
        if mpp:
            out.pixel_size, out.unit = (mpp, mpp), "micrometer"
    elif kind == "ome":
        xml = tif.ome_metadata or ""
        out.metadata = {"ome_xml": xml}
        out.pixel_size, out.unit = _ome_pixel_size(xml)
        if "c" in dims:
            out.channels = _ome_channels(xml, levels[0].shape[dims.index("c")])
    else:
        out.metadata = {"description": desc} if desc else {}
        out.pixel_size, out.unit = _resolution(first)
    software = first.tags.get("Software")
    if software is not None:
        out.metadata.setdefault("software", str(software.value))
    return out


def _reduced_pages(tif, series) -> list:
    """A generic TIFF's pyramid: the first page and the reduced-resolution pages after it."""
    import tifffile

    pages = [series.keyframe]
    page_list = tif.pages
    index = series.keyframe.index + 1 if isinstance(series.keyframe.index, int) else None
    if index is None:
        return []
    while index < len(page_list):
        page = page_list[index]
        index += 1
        if not isinstance(page, tifffile.TiffPage) or not page.is_reduced:
            break
        if page.samplesperpixel != pages[0].samplesperpixel or page.dtype != pages[0].dtype:
            break
        pages.append(page)
    return [tifffile.TiffPageSeries([p], p.shape, p.dtype, p.axes) for p in pages] if len(pages) > 1 else []


def _dims(axes: str, shape: tuple[int, ...], path: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """voxcore dims of a series' axes, and the axes of length 1 dropped (SVS's Z of one plane)."""
    keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if n > 1 or a in "YX"]
    names = [AXES.get(axes[i]) for i in keep]
    if None in names or len(set(names)) != len(names):
        raise UnsupportedError(f"TIFF axes {axes!r} (shape {shape}) have no voxcore layout: {path}")
    squeeze = tuple(i for i in range(len(axes)) if i not in keep)
    return tuple(names), squeeze


def _level(tif, lv, k: int, squeeze: tuple[int, ...], path: str) -> SlideLevel:
    page = lv.keyframe
    shape = tuple(n for i, n in enumerate(lv.shape) if i not in squeeze)
    if math.prod(shape) == 0:
        raise InvalidMetadataError(f"TIFF level {k} is empty (shape {shape}): {path}")
    code = int(page.compression)
    name = CORE_COMPRESSIONS.get(code) or OTHER_COMPRESSIONS.get(code) or f"compression {code}"
    tile = tuple(int(t) for t in page.tile) if page.is_tiled else None
    if not len(page.dataoffsets) or len(page.dataoffsets) != len(page.databytecounts):
        # tifffile logs an unreadable or missing offsets tag and reads the level as zeros
        what = "Tile" if page.is_tiled else "Strip"
        raise InvalidMetadataError(f"TIFF level {k} has no readable {what}Offsets/{what}ByteCounts "
                                   f"({len(page.dataoffsets)} offsets, {len(page.databytecounts)} byte counts): {path}")
    core = _core_decodes(page)
    if not core and not _tifffile_decodes(code):
        raise UnsupportedError(f"TIFF level {k} uses {name}, which neither voxcore nor tifffile "
                               f"(with imagecodecs) decodes: {path}")
    table = _table(tif, lv, shape, path, k) if core else None
    return SlideLevel(shape=shape, tile=tile, table=table, compression=name,
                      series=_series_index(tif, lv), level=k)


def _series_index(tif, lv) -> int:
    for i, s in enumerate(tif.series):
        if any(x is lv for x in s.levels):
            return i
    return 0


def _tifffile_decodes(code: int) -> bool:
    import tifffile

    try:
        return code in tifffile.TIFF.DECOMPRESSORS
    except Exception:  # noqa: BLE001 - a codec whose module fails to import
        return False


def _core_decodes(page) -> bool:
    """True when every tile of page is something the core's TIFF decoder handles."""
    code = int(page.compression)
    if code not in CORE_COMPRESSIONS or page.fillorder != 1 or int(page.predictor) not in (1, 2, 3):
        return False
    if page.bitspersample not in (8, 16, 32, 64) or page.dtype is None or page.dtype.kind not in "uif":
        return False
    photometric = int(page.photometric)
    if code == 7:
        return page.bitspersample == 8 and (
            (page.samplesperpixel == 3 and photometric in (2, 6) and page.planarconfig == 1)
            or (page.samplesperpixel == 1 and photometric in (0, 1)))
    # raw YCbCr with subsampling, palettes, CMYK, ... go through tifffile
    return photometric in (0, 1, 2) and not (photometric == 0 and page.dtype.kind != "u")


def _table(tif, lv, shape: tuple[int, ...], path: str, k: int) -> TileTable:
    page = lv.keyframe
    pages = list(lv.pages)
    spp = int(page.samplesperpixel)
    planar = page.planarconfig == 2 and spp > 1
    if page.is_tiled:
        th, tw = int(page.tilelength), int(page.tilewidth)
        if int(getattr(page, "tiledepth", 1) or 1) != 1:
            raise UnsupportedError(f"TIFF tiles with depth (3-D tiles): {path}")
    else:
        th, tw = min(int(page.rowsperstrip) or page.imagelength, page.imagelength), page.imagewidth
    height, width = int(page.imagelength), int(page.imagewidth)
    rows_grid, cols_grid = -(-height // th), -(-width // tw)
    lead = len(shape) - (2 if spp == 1 else 3)  # page axes before the page's own (C, Z, T)
    per_sample = spp if planar else 1
    if planar:  # a page is (S, Y, X); a tile holds one sample
        chunks = (1,) * lead + (1, th, tw)
        grid = tuple(shape[:lead]) + (spp, rows_grid, cols_grid)
        samples = 1
    elif spp > 1:
        chunks = (1,) * lead + (th, tw, spp)
        grid = tuple(shape[:lead]) + (rows_grid, cols_grid, 1)
        samples = spp
    else:
        chunks = (1,) * lead + (th, tw)
        grid = tuple(shape[:lead]) + (rows_grid, cols_grid)
        samples = 1
    tiles = math.prod(grid)
    if tiles > MAX_TILES:
        raise LimitExceededError(f"TIFF level {k} has {tiles} tiles (max {MAX_TILES}): {path}")
    per_page = rows_grid * cols_grid * per_sample
    offsets, counts = [], []
    for p in pages:
        if p is None:
            raise InvalidMetadataError(f"TIFF level {k} misses a page: {path}")
        if not hasattr(p, "predictor"):  # a TiffFrame: tifffile's light page, its tags unread
            p = p.aspage()
        _check_same(page, p, path, k)
        o, c = p.dataoffsets, p.databytecounts
        if len(o) != per_page or len(c) != per_page:
            raise InvalidMetadataError(
                f"TIFF level {k} lists {len(o)} tile offsets and {len(c)} byte counts for a "
                f"{height}x{width} image of {th}x{tw} tiles (expected {per_page}): {path}")
        offsets.append(np.asarray(o, dtype=np.uint64))
        counts.append(np.asarray(c, dtype=np.uint64))
    if len(pages) * per_page != tiles:
        raise InvalidMetadataError(f"TIFF level {k}: {len(pages)} pages for shape {shape}: {path}")
    tables = page.jpegtables
    last = height % th if not page.is_tiled else 0
    return TileTable(chunks=chunks, grid=grid, offsets=np.concatenate(offsets),
                     bytecounts=np.concatenate(counts), compression=int(page.compression),
                     predictor=int(page.predictor), photometric=int(page.photometric),
                     samples=samples, last_rows=last,
                     jpeg_tables=bytes(tables) if tables is not None else b"",
                     big_endian=tif.byteorder == ">")


def _check_same(first, page, path: str, k: int) -> None:
    same = (page.shape == first.shape and page.compression == first.compression
            and page.predictor == first.predictor and page.tile == first.tile
            and page.rowsperstrip == first.rowsperstrip and page.photometric == first.photometric
            and (page.jpegtables or b"") == (first.jpegtables or b""))
    if not same:
        raise UnsupportedError(f"TIFF level {k} mixes pages stored differently: {path}")


def _svs_metadata(desc: str) -> dict[str, Any]:
    """Aperio's ImageDescription: a header line, then 'key = value' fields split by '|'."""
    parts = desc.replace("\r\n", "\n").split("|")
    out: dict[str, Any] = {"Header": parts[0].strip()}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _ome_pixel_size(xml: str) -> tuple[tuple[float, float] | None, str | None]:
    """PhysicalSizeY/X (and their units, micrometres by default) of the first OME Image."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None, None
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None:
        return None, None
    sy, sx = _float(pixels.get("PhysicalSizeY")), _float(pixels.get("PhysicalSizeX"))
    if sx is None and sy is None:
        return None, None
    sx = sx or sy
    sy = sy or sx
    unit_x = UNITS.get(pixels.get("PhysicalSizeXUnit", "µm"), None)
    unit_y = UNITS.get(pixels.get("PhysicalSizeYUnit", "µm"), None)
    if unit_x is None or unit_y is None:
        return (sy, sx), None
    if unit_x != unit_y:  # both in micrometres
        return (sy * TO_MICROMETER[unit_y], sx * TO_MICROMETER[unit_x]), "micrometer"
    return (sy, sx), unit_x


def _ome_color(v: Any) -> str | None:
    """An OME Color (a signed 32-bit RGBA integer) as 6 hex digits, else None."""
    try:
        rgba = int(v) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return None
    return f"{rgba >> 8:06X}"


def _ome_channels(xml: str, n: int) -> list[dict] | None:
    """The first OME Image's Channel names and colours, one per index of the c axis (n of them);
    None when the XML has no names or colours, or its channels do not match the c axis (an RGB
    image is one Channel of three samples)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None:
        return None
    found = [e for e in pixels if e.tag.endswith("}Channel") or e.tag == "Channel"]
    if len(found) != n or not any(e.get("Name") or e.get("Color") for e in found):
        return None
    return [{"label": e.get("Name") or None, "color": _ome_color(e.get("Color")) if e.get("Color") else None,
             "window": None, "active": True} for e in found]


def _resolution(page) -> tuple[tuple[float, float] | None, str | None]:
    """Pixel size from XResolution/YResolution with ResolutionUnit inch or centimetre."""
    unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 2
    per = {2: 25400.0, 3: 10000.0}.get(unit)
    if per is None or "XResolution" not in page.tags or "YResolution" not in page.tags:
        return None, None
    def size(tag):
        num, den = page.tags[tag].value
        return per * den / num if num > 0 and den > 0 else None
    sx, sy = size("XResolution"), size("YResolution")
    # tifffile (and most writers) put 1 pixel per unit when no resolution was given: not a size
    if sx is None or sy is None or (sx == per and sy == per):
        return None, None
    return (sy, sx), "micrometer"
