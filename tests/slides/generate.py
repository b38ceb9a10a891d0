"""Writers of small whole-slide TIFF files, one function per kind, with tifffile + imagecodecs.

Every writer takes a directory (and a few parameters), writes one file and returns a
:class:`Slide`: the path plus what a reader should find in it (the arrays written per level in
voxcore's axis order, the compression, the tile shape, the pixel size, the associated images,
whether OpenSlide reads it). For lossless codecs ``Slide.levels`` are exactly the pixels in
the file; for JPEG / JPEG 2000 they are the pixels before compression, so tests compare readers
against a decoder (tifffile) and use ``levels`` only for shapes.

Content (:func:`pattern`) is deterministic and structured like a real image without being
trivially compressible: smooth gradients, a mid-frequency texture, noise, and a few flat
rectangles and a disc with sharp edges, so JPEG differences are meaningful and lossless codecs
(predictors included) do real work.

``CASES`` maps a case id to a writer call; the read tests and ``python -m slides.generate DIR``
(a self-check against tifffile and OpenSlide) use it.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

APERIO_VERSION = "Aperio Image Library v12.0.0"


@dataclass(frozen=True)
class Slide:
    """What a writer wrote, as a reader should see it."""

    path: Path
    levels: list[np.ndarray]  # per level, finest first, in ``dims`` order
    dims: tuple[str, ...]  # voxcore's: (y, x, c) chunky RGB, (c, y, x) planes, (y, x) gray
    compression: str  # voxcore's name: jpeg, jpeg2000, deflate, lzw, none, packbits
    tile: tuple[int, int] | None  # (height, width); None for strips
    lossy: bool = False
    pixel_size: tuple[float, float] | None = None  # level-0 (y, x) in micrometer
    associated: dict[str, np.ndarray] = field(default_factory=dict)  # name -> array written
    openslide: bool = False  # OpenSlide opens it and reads the same levels
    openslide_vendor: str | None = None
    fallback: bool = False  # a codec the core may hand to a Python fallback (JPEG 2000)

    @property
    def level0(self) -> np.ndarray:
        return self.levels[0]

    def yx(self, level: int = 0) -> tuple[int, int]:
        """(height, width) of a level."""
        shape = self.levels[level].shape
        return shape[self.dims.index("y")], shape[self.dims.index("x")]

    def downsample(self, level: int) -> float:
        """OpenSlide's definition: mean of the level-0 / level ratios of width and height."""
        (h0, w0), (h, w) = self.yx(0), self.yx(level)
        return (h0 / h + w0 / w) / 2.0


# -- content ---------------------------------------------------------------------------------

def pattern(height: int, width: int, channels: int = 3, dtype="u1", seed: int = 0) -> np.ndarray:
    """Deterministic test image, (height, width, channels) (channels=0: (height, width)).

    uint8/uint16 use most of their range (the high byte of uint16 varies); float32 spans about
    -300 .. 700 with fractional parts, so a floating-point predictor sees every byte change.
    """
    rng = np.random.default_rng(seed)
    n = max(channels, 1)
    y = np.arange(height, dtype=np.float64)[:, None]
    x = np.arange(width, dtype=np.float64)[None, :]
    planes = []
    for c in range(n):
        ph = rng.uniform(0.0, 2.0 * np.pi, 4)
        f = 0.2 + 0.25 * (x / max(width, 1)) + 0.2 * (y / max(height, 1))  # gradients
        f = f + 0.18 * np.sin(x / (37.0 + 11 * c) + ph[0]) * np.cos(y / (53.0 + 7 * c) + ph[1])
        f = f + 0.06 * np.sin((x + 2 * y) / 3.1 + ph[2]) * np.sin((x - y) / 4.7 + ph[3])
        planes.append(f)
    f = np.stack(planes, axis=-1)
    for _ in range(5):  # flat rectangles: sharp edges
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        hh = int(rng.integers(height // 16 + 1, height // 4 + 2))
        ww = int(rng.integers(width // 16 + 1, width // 4 + 2))
        f[y0:y0 + hh, x0:x0 + ww] = rng.uniform(0.0, 1.0, n)
    cy, cx, r = height * 0.6, width * 0.35, min(height, width) * 0.2  # a disc
    f[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0.0, 1.0, n)
    dt = np.dtype(dtype)
    # Noise of a few counts in uint8 and a few tens in uint16 (sensor noise, not white noise).
    sigma = 0.01 if dt.itemsize == 1 or dt.kind == "f" else 0.0005
    f = np.clip(f + rng.standard_normal(f.shape) * sigma, 0.0, 1.0)
    if dt.kind == "f":
        out = ((f - 0.3) * 1000.0 + 0.123).astype(dt)
    else:
        out = np.round(f * (np.iinfo(dt).max * 0.97)).astype(dt)
    return out[..., 0] if channels == 0 else out


def downscale(a: np.ndarray, factor: int, yx=(0, 1)) -> np.ndarray:
    """Block mean by ``factor`` over the two axes ``yx`` (sizes floor(n / factor))."""
    if factor == 1:
        return a
    b = np.moveaxis(a, yx, (0, 1))
    h, w = b.shape[0] // factor, b.shape[1] // factor
    b = b[:h * factor, :w * factor].astype(np.float64)
    b = b.reshape(h, factor, w, factor, *b.shape[2:]).mean(axis=(1, 3))
    b = np.moveaxis(b, (0, 1), yx)
    b = b if np.dtype(a.dtype).kind == "f" else np.round(b)
    return np.ascontiguousarray(b.astype(a.dtype))


def pyramid(a: np.ndarray, count: int, factor: int, yx=(0, 1)) -> list[np.ndarray]:
    """``count`` levels, each ``factor`` times smaller than the one before (block means of
    level 0 so that every level is sharp)."""
    return [downscale(a, factor**k, yx) for k in range(count)]


# -- JPEG with shared tables -----------------------------------------------------------------

def split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """(tables, abbreviated image) of an interchange JPEG stream, the way Aperio stores tiles:
    DQT and DHT go to the JPEGTables tag (SOI ... EOI), the tile keeps SOI, SOF, DRI, SOS and
    the entropy-coded data; APPn/COM (JFIF) are dropped."""
    assert stream[:2] == b"\xff\xd8", "not a JPEG stream"
    tables, image = [b"\xff\xd8"], [b"\xff\xd8"]
    i = 2
    while i < len(stream):
        assert stream[i] == 0xFF, f"marker expected at {i}"
        marker = stream[i + 1]
        length = int.from_bytes(stream[i + 2:i + 4], "big")
        segment = stream[i:i + 2 + length]
        if marker == 0xDA:  # SOS: the rest is entropy-coded data and EOI
            image.append(stream[i:])
            break
        if marker in (0xDB, 0xC4):
            tables.append(segment)
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            pass
        else:
            image.append(segment)
        i += 2 + length
    tables.append(b"\xff\xd9")
    return b"".join(tables), b"".join(image)


def jpeg_tiles(a: np.ndarray, tile: tuple[int, int], quality: int) -> tuple[bytes, list[bytes]]:
    """(JPEGTables, abbreviated tiles in row-major order) of an RGB image, YCbCr 4:2:0.
    Edge tiles are padded to the full tile by repeating the last row/column."""
    th, tw = tile
    h, w = a.shape[:2]
    tables, tiles = None, []
    for y0 in range(0, h, th):
        for x0 in range(0, w, tw):
            t = a[y0:y0 + th, x0:x0 + tw]
            if t.shape[:2] != (th, tw):
                t = np.pad(t, ((0, th - t.shape[0]), (0, tw - t.shape[1]), (0, 0)), mode="edge")
            s = imagecodecs.jpeg8_encode(np.ascontiguousarray(t), level=quality,
                                         colorspace="RGB", outcolorspace="YCBCR",
                                         subsampling="420", optimize=False)
            t_tables, t_image = split_jpeg(bytes(s))
            assert tables in (None, t_tables), "tiles encoded with different tables"
            tables = t_tables
            tiles.append(t_image)
    assert tables is not None
    return tables, tiles


# -- Aperio SVS --------------------------------------------------------------------------------

def _aperio_head(w: int, h: int, tile: int, codec: str, quality: int) -> str:
    return f"{APERIO_VERSION} \r\n{w}x{h} [0,100 {w}x{h}] ({tile}x{tile}) {codec} Q={quality}"


def write_svs(directory: Path, name: str = "aperio.svs", *, size=(1536, 2048), tile: int = 240,
              levels: int = 4, quality: int = 70, mpp: float = 0.499, app_mag: int = 20,
              compression: str = "jpeg", seed: int = 1) -> Slide:
    """An Aperio SVS file laid out as Aperio writes one.

    Pages: 0 level 0 (tiled), 1 thumbnail (stripped JPEG), 2.. reduced levels (tiled,
    NewSubfileType 0, by 4x), then label (LZW, NewSubfileType 1) and macro (JPEG,
    NewSubfileType 9). Tiles: JPEG YCbCr 4:2:0 abbreviated streams with a JPEGTables tag
    (compression="jpeg"), or JPEG 2000 codestreams, compression tag 33005 (Aperio RGB,
    compression="jpeg2000"). The first ImageDescription is Aperio's ``head|key = value|...``.
    """
    path = Path(directory) / name
    h, w = size
    base = pattern(h, w, 3, "u1", seed)
    lv = pyramid(base, levels, 4)
    codec = "JPEG/RGB" if compression == "jpeg" else "J2K/KDU"
    head = _aperio_head(w, h, tile, codec, quality)
    fields = {
        "AppMag": str(app_mag), "StripeWidth": "2040", "ScanScope ID": "CPVOXCORE",
        "Filename": "voxcore-test", "Date": "01/02/26", "Time": "12:34:56",
        "Time Zone": "GMT+0000", "User": "voxcore", "MPP": f"{mpp:.4f}", "Left": "25.691574",
        "Top": "23.449873", "LineCameraSkew": "-0.000424", "LineAreaXOffset": "0.019265",
        "LineAreaYOffset": "-0.000313", "Focus Offset": "0.000000", "ImageID": "1004486",
        "OriginalWidth": str(w), "OriginalHeight": str(h), "Filtered": "5",
    }
    description0 = head + "|" + "|".join(f"{k} = {v}" for k, v in fields.items())

    thumb_w = 256
    thumb_h = round(h * thumb_w / w)
    thumbnail = pattern(thumb_h, thumb_w, 3, "u1", seed)  # content need not match level 0
    label = pattern(180, 160, 3, "u1", seed + 10)
    macro = pattern(256, 640, 3, "u1", seed + 11)

    common = {"metadata": None, "software": False}
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        def write_level(a: np.ndarray, description: str) -> None:
            if compression == "jpeg":
                tables, tiles = jpeg_tiles(a, (tile, tile), quality)
                tw.write(iter(tiles), shape=a.shape, dtype=a.dtype, tile=(tile, tile),
                         photometric="rgb", compression="jpeg", subsampling=(2, 2),
                         jpegtables=tables, description=description, subfiletype=0, **common)
            else:
                tw.write(a, tile=(tile, tile), photometric="rgb", compression=33005,
                         compressionargs={"level": 40}, description=description,
                         subfiletype=0, **common)

        write_level(lv[0], description0)
        tw.write(thumbnail, photometric="rgb", compression="jpeg", compressionargs={"level": 90},
                 rowsperstrip=16, description=f"{head} -> {thumb_w}x{thumb_h} - ",
                 subfiletype=0, **common)
        for k in range(1, levels):
            lh, lw = lv[k].shape[:2]
            write_level(lv[k], f"{head} -> {lw}x{lh} {codec} Q={quality}")
        tw.write(label, photometric="rgb", compression="lzw", predictor=2, rowsperstrip=32,
                 description=f"{APERIO_VERSION}\nlabel {label.shape[1]}x{label.shape[0]}",
                 subfiletype=1, **common)
        tw.write(macro, photometric="rgb", compression="jpeg", compressionargs={"level": 90},
                 rowsperstrip=16,
                 description=f"{APERIO_VERSION}\nmacro {macro.shape[1]}x{macro.shape[0]}",
                 subfiletype=9, **common)
    return Slide(path, lv, ("y", "x", "c"), compression, (tile, tile), lossy=True,
                 pixel_size=(mpp, mpp),
                 associated={"thumbnail": thumbnail, "label": label, "macro": macro},
                 openslide=True, openslide_vendor="aperio",
                 fallback=compression == "jpeg2000")


# -- OME-TIFF ------------------------------------------------------------------------------------

def _ome_meta(axes: str, psize: tuple[float, float], **more) -> dict:
    py, px = psize
    return {"axes": axes, "PhysicalSizeX": px, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": py, "PhysicalSizeYUnit": "µm", **more}


def _resolution(psize_um: tuple[float, float], factor: float = 1.0):
    py, px = psize_um
    return (1e4 / (px * factor), 1e4 / (py * factor))  # pixels per cm: (x, y)


def write_ome_rgb(directory: Path, name: str = "rgb.ome.tif", *, size=(1001, 1499),
                  tile: int = 256, levels: int = 3, psize=(0.3, 0.25), quality: int = 80,
                  seed: int = 2) -> Slide:
    """OME-TIFF, RGB JPEG (tifffile's: interchange streams, YCbCr 4:2:0), pyramid by 2x in
    SubIFDs of the one top-level page; odd level-0 size (levels are floor(n / 2**k)) so the
    downsample differs per axis; PhysicalSizeX != PhysicalSizeY."""
    path = Path(directory) / name
    base = pattern(*size, 3, "u1", seed)
    lv = pyramid(base, levels, 2)
    opts = {"tile": (tile, tile), "photometric": "rgb", "compression": "jpeg",
                "compressionargs": {"level": quality}, "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(lv[0], subifds=levels - 1, resolution=_resolution(psize),
                 metadata=_ome_meta("YXS", psize), **opts)
        for k in range(1, levels):
            tw.write(lv[k], subfiletype=1, resolution=_resolution(psize, 2**k), **opts)
    return Slide(path, lv, ("y", "x", "c"), "jpeg", (tile, tile), lossy=True, pixel_size=psize)


def write_ome_channels(directory: Path, name: str = "fluo.ome.tif", *, channels: int = 4,
                       size=(640, 832), tile: int = 256, levels: int = 3, psize=(0.65, 0.65),
                       seed: int = 3) -> Slide:
    """OME-TIFF, uint16 fluorescence, one page per channel (minisblack), deflate, each page with
    its reduced levels (by 2x) in SubIFDs, the way OME writes multichannel pyramids."""
    path = Path(directory) / name
    base = np.moveaxis(pattern(*size, channels, "u2", seed), -1, 0)  # (c, y, x)
    lv = pyramid(base, levels, 2, yx=(1, 2))
    opts = {"tile": (tile, tile), "photometric": "minisblack", "compression": "zlib",
                "resolutionunit": "CENTIMETER"}
    names = [f"ch{c}" for c in range(channels)]
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(lv[0], subifds=levels - 1, resolution=_resolution(psize),
                 metadata=_ome_meta("CYX", psize, Channel={"Name": names}), **opts)
        for k in range(1, levels):
            tw.write(lv[k], subfiletype=1, resolution=_resolution(psize, 2**k), **opts)
    return Slide(path, lv, ("c", "y", "x"), "deflate", (tile, tile), pixel_size=psize)


def write_ome_pages(directory: Path, name: str = "pages.ome.tif", *, size=(768, 1024),
                    tile: int = 128, levels: int = 3, psize=(0.5, 0.5), seed: int = 4) -> Slide:
    """OME-TIFF whose reduced levels are further top-level pages (NewSubfileType 1) after the
    level-0 page instead of SubIFDs; the OME-XML describes level 0 only. uint16 gray LZW.

    No OME layout other than SubIFDs makes a pyramid: Bio-Formats and tifffile read this file as
    one single-level image (the OME-XML's) and ignore the pages it does not reference, so a
    reader must too (``levels`` holds level 0 only); the extra pages must not confuse it."""
    path = Path(directory) / name
    base = pattern(*size, 0, "u2", seed)
    lv = pyramid(base, levels, 2)
    opts = {"tile": (tile, tile), "photometric": "minisblack", "compression": "lzw",
            "resolutionunit": "CENTIMETER"}
    # tifffile's OME writer puts every page it writes into the OME-XML (and refuses to append
    # to an OME file), so the OME-XML of level 0 is made here and the file written as plain TIFF.
    ome = tifffile.OmeXml()
    ome.addimage(lv[0].dtype, lv[0].shape, (1, 1, 1, *lv[0].shape, 1),
                 **_ome_meta("YX", psize))
    with tifffile.TiffWriter(path) as tw:
        for k in range(levels):
            tw.write(lv[k], subfiletype=1 if k else 0, resolution=_resolution(psize, 2**k),
                     description=ome.tostring().encode() if k == 0 else None, metadata=None,
                     software=False, **opts)
    return Slide(path, lv[:1], ("y", "x"), "lzw", (tile, tile), pixel_size=psize)


# -- generic TIFF --------------------------------------------------------------------------------

def write_pyramid(directory: Path, name: str = "pyramid.tif", *, size=(1024, 1536),
                  tile: int = 256, levels: int = 3, factor: int = 4, compression: str = "zlib",
                  bigtiff: bool = False, quality: int = 85, seed: int = 5) -> Slide:
    """Generic tiled multi-resolution TIFF, RGB uint8: no OME, no Aperio, no tifffile JSON;
    levels are successive top-level pages, the reduced ones with NewSubfileType 1.
    compression: "zlib" (deflate, lossless) or "jpeg" (tifffile's interchange streams)."""
    path = Path(directory) / name
    base = pattern(*size, 3, "u1", seed)
    lv = pyramid(base, levels, factor)
    opts: dict = {"tile": (tile, tile), "photometric": "rgb", "compression": compression,
                      "metadata": None}
    if compression == "jpeg":
        opts["compressionargs"] = {"level": quality}
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        for k in range(levels):
            tw.write(lv[k], subfiletype=1 if k else 0, **opts)
    lossy = compression == "jpeg"
    return Slide(path, lv, ("y", "x", "c"), "jpeg" if lossy else "deflate", (tile, tile),
                 lossy=lossy, openslide=True, openslide_vendor="generic-tiff")


def write_tiled(directory: Path, name: str, *, size=(517, 701), tile=(128, 192), channels=0,
                dtype="u2", compression="zlib", predictor=None, planar: bool = False,
                byteorder: str = "<", seed: int = 6, openslide: bool = False) -> Slide:
    """Single-level tiled TIFF; the size is not a multiple of the tile. channels=0: gray
    (y, x); channels>0 and planar: one plane per sample (PlanarConfiguration 2, dims c, y, x);
    else chunky (y, x, c) RGB."""
    path = Path(directory) / name
    a = pattern(*size, channels, dtype, seed)
    dims: tuple[str, ...] = ("y", "x") if channels == 0 else ("y", "x", "c")
    kw: dict = {}
    if channels == 0:
        photometric = "minisblack"
    elif planar:
        a = np.ascontiguousarray(np.moveaxis(a, -1, 0))
        dims = ("c", "y", "x")
        photometric = "rgb" if channels == 3 else "minisblack"
        kw["planarconfig"] = "separate"
    else:
        photometric = "rgb"
    with tifffile.TiffWriter(path, byteorder=byteorder) as tw:
        tw.write(a, tile=tile, photometric=photometric, compression=compression,
                 predictor=predictor, metadata=None, **kw)
    return Slide(path, [a], dims, _name(compression), tuple(tile), openslide=openslide,
                 openslide_vendor="generic-tiff" if openslide else None)


def write_stripped(directory: Path, name: str, *, size=(301, 257), rowsperstrip: int = 16,
                   channels=0, dtype="u2", compression=None, predictor=None,
                   byteorder: str = "<", seed: int = 7) -> Slide:
    """Untiled TIFF, ``rowsperstrip`` rows per strip and a short last strip (301 = 18*16 + 13)."""
    path = Path(directory) / name
    a = pattern(*size, channels, dtype, seed)
    photometric = "minisblack" if channels == 0 else "rgb"
    with tifffile.TiffWriter(path, byteorder=byteorder) as tw:
        tw.write(a, rowsperstrip=rowsperstrip, photometric=photometric,
                 compression=compression, predictor=predictor, metadata=None)
    dims = ("y", "x") if channels == 0 else ("y", "x", "c")
    return Slide(path, [a], dims, _name(compression), None)


def _name(compression) -> str:
    return {None: "none", "zlib": "deflate", "lzw": "lzw", "packbits": "packbits",
            "jpeg": "jpeg"}[compression]


# -- the catalog -------------------------------------------------------------------------------

Writer = Callable[[Path], Slide]

CASES: dict[str, Writer] = {
    "svs-jpeg": lambda d: write_svs(d),
    "svs-jpeg2000": lambda d: write_svs(d, "aperio-j2k.svs", size=(768, 1024), levels=3,
                                         compression="jpeg2000", seed=11),
    "ome-rgb-jpeg-subifds": lambda d: write_ome_rgb(d),
    "ome-fluo-u16-deflate-subifds": lambda d: write_ome_channels(d),
    "ome-unreferenced-pages-u16-lzw": lambda d: write_ome_pages(d),
    "pyramid-rgb-deflate": lambda d: write_pyramid(d),
    "pyramid-bigtiff-rgb-jpeg": lambda d: write_pyramid(
        d, "pyramid-big.tif", size=(1024, 1280), factor=2, compression="jpeg", bigtiff=True,
        seed=8),
    "strips-rgb-u8-none": lambda d: write_stripped(d, "s-rgb-none.tif", channels=3, dtype="u1"),
    "strips-gray-u16-none": lambda d: write_stripped(d, "s-u16-none.tif"),
    "strips-rgb-u8-deflate": lambda d: write_stripped(
        d, "s-rgb-deflate.tif", channels=3, dtype="u1", compression="zlib"),
    "strips-gray-u16-deflate": lambda d: write_stripped(d, "s-u16-deflate.tif",
                                                        compression="zlib"),
    "strips-rgb-u8-lzw-pred2": lambda d: write_stripped(
        d, "s-rgb-lzw.tif", channels=3, dtype="u1", compression="lzw", predictor=2),
    "strips-gray-u16-lzw-pred2": lambda d: write_stripped(
        d, "s-u16-lzw.tif", compression="lzw", predictor=2),
    "strips-gray-u8-packbits": lambda d: write_stripped(
        d, "s-u8-packbits.tif", dtype="u1", compression="packbits"),
    "tiled-gray-u16-deflate-pred2": lambda d: write_tiled(
        d, "t-u16-deflate.tif", compression="zlib", predictor=2),
    "tiled-rgb-u8-lzw": lambda d: write_tiled(
        d, "t-rgb-lzw.tif", channels=3, dtype="u1", compression="lzw", tile=(64, 96),
        openslide=True),
    "tiled-planar-u16-deflate": lambda d: write_tiled(
        d, "t-planar.tif", channels=3, dtype="u2", compression="zlib", predictor=2,
        planar=True),
    "be-tiled-gray-u16-deflate-pred2": lambda d: write_tiled(
        d, "be-t-u16-deflate.tif", compression="zlib", predictor=2, byteorder=">"),
    "be-strips-gray-u16-lzw-pred2": lambda d: write_stripped(
        d, "be-s-u16-lzw.tif", compression="lzw", predictor=2, byteorder=">"),
    "be-tiled-rgb-u16-lzw-pred2": lambda d: write_tiled(
        d, "be-t-rgb16-lzw.tif", channels=3, dtype="u2", compression="lzw", predictor=2,
        byteorder=">"),
    "tiled-gray-f32-deflate-pred3": lambda d: write_tiled(
        d, "t-f32-deflate.tif", dtype="f4", compression="zlib", predictor=3),
    "be-strips-gray-f32-deflate-pred3": lambda d: write_stripped(
        d, "be-s-f32-deflate.tif", dtype="f4", compression="zlib", predictor=3, byteorder=">"),
}


def main(directory: str) -> None:  # pragma: no cover - a developer's self-check
    from . import oracle

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for case, writer in CASES.items():
        s = writer(out)
        report = oracle.self_check(s)
        print(f"{case:36s} {s.path.stat().st_size:>9d} B  {report}")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])
