"""The slide benchmark's data: a tissue-like RGB image written as an Aperio SVS (JPEG) and as an
OME-TIFF (deflate), the random regions, and the tiles they touch.

Content (:class:`Tissue`): a mostly white background (~242) with smooth tissue blobs covering
about 40% of the slide, stained pink (eosin, a slowly varying shade) with darker purple
nucleus-sized spots (hematoxylin), plus a few counts of per-pixel noise everywhere, as a
scanner's sensor gives. It is computed in strips of one tile row from fields on an 8x coarser
grid (bilinear upsampling), so no full-resolution array is ever held; level 1 is accumulated
from the strips (4x4 block means) and levels 2 and 3 are made from it.

Files (tile 256^2, 4 levels, each 4x smaller than the one before, as Aperio scanners write):

- ``slide.svs``: pages level 0, thumbnail (stripped), levels 1-3, label, macro; Aperio's
  ImageDescription (``Aperio Image Library ...|AppMag = 20|MPP = 0.4990``) so OpenSlide opens it
  as "aperio". Tiles are JPEG quality 80, YCbCr 4:2:0, stored as Aperio does: abbreviated
  streams with the shared tables in the JPEGTables tag (encoded here with imagecodecs'
  libjpeg-turbo on 2 threads, then split).
- ``slide.ome.tif``: BigTIFF OME-TIFF, the same pixels deflate-compressed (tifffile's zlib,
  level 6) with the reduced levels in SubIFDs and PhysicalSizeX/Y in the OME-XML.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

DEFAULT_EDGE = 30000
SMOKE_EDGE = 2048  # benchmarks disabled (the test suite's smoke run): correctness only
DEFAULT_REGIONS = 1000
TILE = 256
QUALITY = 80
FACTOR = 4
N_LEVELS = 4
MPP = 0.499
REGION = 512  # region edge, clipped to half a level's edge at small sizes
SEED = 7
GRID = 8  # coarse field step, level-0 pixels
APERIO = "Aperio Image Library v12.0.15"
WORKERS = 2


def slide_edge(smoke: bool) -> int:
    """Level-0 edge from VOXCORE_BENCH_SLIDE (default 30000, or 2048 when benchmarks are
    disabled); a multiple of 16 so that levels 1 and 2 are exact 4x and 16x reductions."""
    env = os.environ.get("VOXCORE_BENCH_SLIDE")
    n = int(env) if env else (SMOKE_EDGE if smoke else DEFAULT_EDGE)
    if n < 512 or n % 16:
        raise ValueError(f"VOXCORE_BENCH_SLIDE must be a multiple of 16, >= 512 (got={n})")
    return n


def region_count(edge: int, smoke: bool) -> int:
    """VOXCORE_BENCH_REGIONS, else 1000 at 30000 scaled with the slide's area (at least 50);
    in a smoke run (benchmarks disabled) at most 20."""
    env = os.environ.get("VOXCORE_BENCH_REGIONS")
    if env:
        return int(env)
    n = max(50, min(DEFAULT_REGIONS, round(DEFAULT_REGIONS * (edge / DEFAULT_EDGE) ** 2)))
    return min(n, 20) if smoke else n


def level_shapes(edge: int) -> list[tuple[int, int, int]]:
    out, n = [], edge
    for _ in range(N_LEVELS):
        out.append((n, n, 3))
        n //= FACTOR
    return out


# ------------------------------------------------------------------------------ content
class Tissue:
    """Deterministic tissue-like RGB content of an edge x edge slide, by strips of tile rows.

    Colour comes from fields on a grid 8x coarser than level 0 (bilinear upsampling: tissue
    mask and stain shade); the fine structure (granular texture and sharp-edged nuclei, 5-10 px)
    from a full-resolution texture band one tile row high, taken at a shifted column by each
    strip and scaled by the tissue mask (a tenth of it on the background, sensor noise).
    """

    BACKGROUND = (242.0, 241.0, 244.0)
    EOSIN_LIGHT = (234.0, 166.0, 200.0)
    EOSIN_DARK = (200.0, 112.0, 164.0)
    GRAIN = (16.0, 22.0, 12.0)  # counts per unit of the granular texture
    NUCLEUS = (-120.0, -105.0, -50.0)  # darkening inside a nucleus

    def __init__(self, edge: int, seed: int = SEED):
        import scipy.ndimage as ndi

        self.edge = edge
        rng = np.random.default_rng(seed)
        m = edge // GRID + 2  # coarse grid points: x = 8 j .. 8 (j + 1)
        low = ndi.gaussian_filter(rng.standard_normal((edge // 512 + 6,) * 2), 1.2)
        low = ndi.zoom(low, m / low.shape[0], order=3, grid_mode=True, mode="reflect")[:m, :m]
        thr = np.quantile(low, 0.62)
        t = np.clip((low - thr) / (0.25 * low.std()), 0.0, 1.0)
        t = t * t * (3 - 2 * t)  # smoothstep: tissue edges a few hundred pixels wide
        shade = ndi.gaussian_filter(rng.standard_normal((m, m)), 6.0)
        shade = np.clip(0.5 + shade / (3 * shade.std()), 0.0, 1.0)
        planes = [self.BACKGROUND[c] * (1 - t)
                  + (self.EOSIN_LIGHT[c] * (1 - shade) + self.EOSIN_DARK[c] * shade) * t + 0.5
                  for c in range(3)]  # +0.5: the final astype truncates
        planes.append(0.1 + 0.9 * t)  # texture amplitude
        self.coarse = np.stack(planes, axis=-1).astype(np.float32)  # (m, m, 4)
        self.tissue_fraction = float((t > 0.5).mean())
        band = rng.standard_normal((TILE + 8, edge + 1024 + 8)).astype(np.float32)
        grain = ndi.gaussian_filter(band, 0.8)[4:-4, 4:-4]
        grain /= grain.std()
        spots = ndi.gaussian_filter(rng.standard_normal(band.shape).astype(np.float32), 2.5)
        spots = np.clip((spots[4:-4, 4:-4] / spots.std() - 1.6) * 3.0, 0.0, 1.0)
        self.texture = (grain[..., None] * np.float32(self.GRAIN)
                        + spots[..., None] * np.float32(self.NUCLEUS))  # (256, edge + 1024, 3)
        self._w = (np.arange(GRID, dtype=np.float32) / GRID)[:, None]
        self._shift = rng.integers(0, 1024, (edge + TILE - 1) // TILE)

    def strip(self, row: int) -> np.ndarray:
        """Rows [row*256, row*256 + 256) (fewer at the bottom), uint8 (h, edge, 3)."""
        y0 = row * TILE
        h = min(TILE, self.edge - y0)
        y = np.arange(y0, y0 + h)
        j, wy = y // GRID, (y % GRID).astype(np.float32)[:, None, None] / GRID
        a = self.coarse[j] * (1 - wy) + self.coarse[j + 1] * wy  # (h, m, 4)
        w = self._w
        full = (a[:, :-1, None] * (1 - w) + a[:, 1:, None] * w).reshape(h, -1, 4)[:, :self.edge]
        s = int(self._shift[row])
        out = self.texture[:h, s:s + self.edge] * full[..., 3:]
        out += full[..., :3]
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)


def downscale4(a: np.ndarray) -> np.ndarray:
    """4x4 block mean (rounded) of an (h, w, 3) uint8 array; sizes floor(n / 4)."""
    h, w = a.shape[0] // 4, a.shape[1] // 4
    acc = np.full((h, w, 3), 8, np.uint16)
    for dy in range(4):
        for dx in range(4):
            acc += a[dy:h * 4:4, dx:w * 4:4]
    return (acc >> 4).astype(np.uint8)


def _tiles(strip: np.ndarray):
    """The 256^2 tiles of one strip, left to right, edge tiles padded by repeating the edge."""
    for x0 in range(0, strip.shape[1], TILE):
        t = strip[:, x0:x0 + TILE]
        if t.shape[:2] != (TILE, TILE):
            t = np.pad(t, ((0, TILE - t.shape[0]), (0, TILE - t.shape[1]), (0, 0)), mode="edge")
        yield np.ascontiguousarray(t)


def _strip_tiles(a: np.ndarray):
    for y0 in range(0, a.shape[0], TILE):
        yield from _tiles(a[y0:y0 + TILE])


# ------------------------------------------------------------------------------ tile encoders
def split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """(tables, abbreviated image) of an interchange JPEG stream, as Aperio stores tiles: DQT
    and DHT go to JPEGTables (SOI ... EOI); the tile keeps SOI, SOF, DRI, SOS and the data."""
    tables, image = [b"\xff\xd8"], [b"\xff\xd8"]
    i = 2
    while i < len(stream):
        marker, length = stream[i + 1], int.from_bytes(stream[i + 2:i + 4], "big")
        if marker == 0xDA:  # SOS: the rest is entropy-coded data and EOI
            image.append(stream[i:])
            break
        segment = stream[i:i + 2 + length]
        if marker in (0xDB, 0xC4):
            tables.append(segment)
        elif not (0xE0 <= marker <= 0xEF or marker == 0xFE):  # APPn / COM dropped
            image.append(segment)
        i += 2 + length
    tables.append(b"\xff\xd9")
    return b"".join(tables), b"".join(image)


def _jpeg(tile: np.ndarray) -> bytes:
    return bytes(imagecodecs.jpeg8_encode(tile, level=QUALITY, colorspace="RGB",
                                          outcolorspace="YCBCR", subsampling="420",
                                          optimize=False))


JPEG_TABLES = split_jpeg(_jpeg(np.full((TILE, TILE, 3), 128, np.uint8)))[0]


def jpeg_tile(tile: np.ndarray) -> bytes:
    """The abbreviated stream of one tile (its tables are JPEG_TABLES)."""
    tables, image = split_jpeg(_jpeg(tile))
    assert tables == JPEG_TABLES, "a tile was encoded with other tables"
    return image


def deflate_tile(tile: np.ndarray) -> bytes:
    """A zlib stream (TIFF compression 8) at level 6, by libdeflate: zlib's level 6 is 5x
    slower here and would make generating the 30000^2 file take minutes."""
    return bytes(imagecodecs.deflate_encode(tile, level=6))


def _encoded(tissue: Tissue, pool, encode, keep: list | None):
    """Level 0's encoded tiles in row-major order, strips made and encoded on the pool (a few
    strips in flight); with keep, level 1's strips are appended to it as they come."""
    def job(row):
        strip = tissue.strip(row)
        return [encode(t) for t in _tiles(strip)], downscale4(strip) if keep is not None else None

    rows = (tissue.edge + TILE - 1) // TILE
    window = [pool.submit(job, r) for r in range(min(2 * WORKERS, rows))]
    for row in range(rows):
        tiles, small = window.pop(0).result()
        if row + len(window) + 1 < rows:
            window.append(pool.submit(job, row + len(window) + 1))
        if keep is not None:
            keep.append(small)
        yield from tiles


# ------------------------------------------------------------------------------ the files
def _aperio_head(edge: int) -> str:
    return f"{APERIO} \r\n{edge}x{edge} [0,0 {edge}x{edge}] ({TILE}x{TILE}) JPEG/RGB Q={QUALITY}"


def write_svs(path: Path, tissue: Tissue, pool) -> list[np.ndarray]:
    """The Aperio SVS; returns levels 1..3 as they were before compression."""
    edge = tissue.edge
    head = _aperio_head(edge)
    fields = {"AppMag": "20", "StripeWidth": "2040", "ScanScope ID": "CPVOXBENCH",
              "Filename": "voxcore-bench", "Date": "01/02/26", "Time": "12:00:00",
              "Time Zone": "GMT+0000", "MPP": f"{MPP:.4f}", "Left": "25.0", "Top": "23.0",
              "OriginalWidth": str(edge), "OriginalHeight": str(edge), "Filtered": "5"}
    description0 = head + "|" + "|".join(f"{k} = {v}" for k, v in fields.items())
    common = {"metadata": None, "software": False}
    jpeg = {"photometric": "rgb", "compression": "jpeg", "subsampling": (2, 2),
            "jpegtables": JPEG_TABLES, "tile": (TILE, TILE), "subfiletype": 0, **common}
    strips1: list[np.ndarray] = []
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        tw.write(_encoded(tissue, pool, jpeg_tile, strips1), shape=(edge, edge, 3),
                 dtype=np.uint8, description=description0, **jpeg)
        lower = [np.concatenate(strips1)]
        del strips1
        while len(lower) < N_LEVELS - 1:
            lower.append(downscale4(lower[-1]))
        thumb = lower[-1]
        tw.write(thumb, photometric="rgb", compression="jpeg", compressionargs={"level": 90},
                 rowsperstrip=16, subfiletype=0,
                 description=f"{head} -> {thumb.shape[1]}x{thumb.shape[0]} - ", **common)
        for a in lower:
            tiles = list(pool.map(jpeg_tile, _strip_tiles(a)))
            tw.write(iter(tiles), shape=a.shape, dtype=np.uint8,
                     description=f"{head} -> {a.shape[1]}x{a.shape[0]} JPEG/RGB Q={QUALITY}",
                     **jpeg)
        label = np.full((160, 160, 3), 250, np.uint8)
        label[40:120, 20:140] = 20
        tw.write(label, photometric="rgb", compression="lzw", rowsperstrip=32, subfiletype=1,
                 description=f"{APERIO}\nlabel 160x160", **common)
        macro = np.ascontiguousarray(thumb[::2, ::2])
        tw.write(macro, photometric="rgb", compression="jpeg", compressionargs={"level": 90},
                 rowsperstrip=16, subfiletype=9,
                 description=f"{APERIO}\nmacro {macro.shape[1]}x{macro.shape[0]}", **common)
    return lower


def write_ome(path: Path, tissue: Tissue, lower: list[np.ndarray], pool) -> None:
    """The deflate OME-TIFF of the same pixels (level 0 made again strip by strip)."""
    edge = tissue.edge
    ppcm = 1e4 / MPP
    opts = {"tile": (TILE, TILE), "photometric": "rgb", "compression": "zlib",
            "resolutionunit": "CENTIMETER"}
    meta = {"axes": "YXS", "PhysicalSizeX": MPP, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": MPP, "PhysicalSizeYUnit": "µm"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(_encoded(tissue, pool, deflate_tile, None), shape=(edge, edge, 3),
                 dtype=np.uint8, subifds=len(lower), resolution=(ppcm, ppcm), metadata=meta,
                 **opts)
        for k, a in enumerate(lower, start=1):
            f = FACTOR ** k
            tiles = list(pool.map(deflate_tile, _strip_tiles(a)))
            tw.write(iter(tiles), shape=a.shape, dtype=np.uint8, subfiletype=1,
                     resolution=(ppcm / f, ppcm / f), **opts)


@dataclass(frozen=True)
class SlideFiles:
    edge: int
    svs: Path
    ome: Path
    tissue_fraction: float
    seconds: float


def make_files(workdir: Path, edge: int) -> SlideFiles:
    import time

    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    tissue = Tissue(edge)
    svs, ome = workdir / "slide.svs", workdir / "slide.ome.tif"
    with ThreadPoolExecutor(WORKERS) as pool:
        lower = write_svs(svs, tissue, pool)
        write_ome(ome, tissue, lower, pool)
    return SlideFiles(edge, svs, ome, tissue.tissue_fraction, time.perf_counter() - t0)


# ------------------------------------------------------------------------------ regions, tiles
def random_regions(shape, n: int, seed: int) -> tuple[int, list[tuple[int, int]]]:
    """(edge, [(y0, x0)]): n square regions at random unaligned offsets inside a level."""
    e = min(REGION, shape[0] // 2, shape[1] // 2)
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, shape[0] - e + 1, n)
    xs = rng.integers(0, shape[1] - e + 1, n)
    return e, [(int(y), int(x)) for y, x in zip(ys, xs)]


def level_page(tf: tifffile.TiffFile, level: int):
    return tf.series[0].levels[level].keyframe
