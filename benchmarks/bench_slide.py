"""Whole-slide TIFF reads and conversion to OME-Zarr: voxcore against OpenSlide, tiffslide,
tifffile + zarr-python and cuCIM, in one process and one run.

What: a generated 30000 x 30000 RGB slide (VOXCORE_BENCH_SLIDE changes the edge; 2048 when
benchmarks are disabled, as in the test suite's smoke run), tissue-like (see _slides.py: ~35%
stained tissue with nuclei and grain on a white background), 256^2 tiles, 4 levels, each 4x
smaller (30000, 7500, 1875, 468), in two files: an Aperio SVS with JPEG quality-80 YCbCr 4:2:0
tiles and shared JPEGTables (OpenSlide reads it as "aperio"), and a BigTIFF OME-TIFF of the same
pixels, deflate (libdeflate level 6), the reduced levels in SubIFDs. Both are made once per
session in the benchmark workdir; the page cache is warm.

Operations (report.py's ops):

- ``slide-regions``: 1000 random 512^2 regions (VOXCORE_BENCH_REGIONS; fewer at smaller sizes,
  scaled with the area) at unaligned offsets, at level 0 and at level 2, the same list for every
  reader; cold: a fresh handle each round with no tile cache (opened outside the timing; voxcore
  ``vc.open(path)``, a new ``OpenSlide`` with its default 32 MiB tile cache left on, a new
  ``TiffSlide``, a new tifffile zarr store, a new ``CuImage`` with cuCIM's default "nocache").
  ``voxcore read(out=)`` reads into preallocated arrays. The ``floor:`` row has the compressed
  bytes of exactly the tiles the regions touch in RAM already and decodes them with imagecodecs'
  libjpeg-turbo (libdeflate for the OME-TIFF) on 2 Python threads into preallocated tiles, then
  copies each tile's overlap into the region, region after region (see TileFloor).
- ``slide-regions-warm``: the same regions read twice through one handle; the second pass is
  timed. voxcore with ``cache_bytes=`` large enough for every tile touched; OpenSlide with its
  default cache and with an OpenSlideCache of the same size; cuCIM with a "per_process" cache of
  the same size; tiffslide and tifffile + zarr-python have no tile cache (their first pass is
  not repeated: the second costs what the first does).
- ``slide-level``: fresh open + read of the whole of level 2 (OpenSlide read_region of all of
  it); the floor decodes every tile of level 2 into one preallocated array.
- ``slide-convert``: the SVS to OME-Zarr 0.5: voxcore ``vc.save(vc.build_pyramid(vc.open(svs),
  "source"), out, version="0.5", chunks=512, codec="zstd")`` (the slide's own levels copied,
  what ``voxcore convert`` does) at its default durable=True (an fsync per file) and, like the
  peers, with durable=False; each round writes a new tree (trees are removed at the end of the
  module); the floor row decodes every tile, compresses every chunk and writes every file on
  2 threads with nothing else done, and the durable floor row then syncs (``sync()``, one call:
  the cheapest way to get the written bytes onto the disk; each round starts with nothing dirty). Against the fastest peer routes we could build: tifffile levels -> dask ->
  ome-zarr-py ``write_multiscale`` (the file's own 4 levels), tifffile level 0 -> ngff-zarr
  ``to_multiscales`` (dask_bin_shrink, factors 4, 16, 64) + ``to_ngff_zarr``, and tifffile
  ``imread`` of each level + zarr-python writes + hand-written OME metadata. The peers write
  (c, y, x) uint8 in (1, 512, 512) chunks (clipped to a smaller level), zstd level 1, no fsync,
  and run one round without warm-up (each takes minutes at 30000).

The JPEG floor decodes whole tiles; voxcore decodes only the rows and iMCU columns of a tile that
a region covers (jpeg_crop_scanline / jpeg_skip_scanlines), so it can beat that floor.
imagecodecs has no cropped decode; TurboJPEG 3's tj3SetCroppingRegion would give the tighter
floor, and is not installed here.

Every row checks what it read against tifffile's decode of the same pixels: within JPEG_TOL
(max abs difference, recorded as extra_info max_abs_diff) for the JPEG file, where two
libjpeg-turbo builds may round the colour conversion differently, and exactly for deflate.
OpenSlide returns premultiplied RGBA: its alpha is checked to be 255 everywhere (so RGB is
the colour) and RGB compared. Conversions are read back by zarr-python: level 0 compared with
tifffile's decode, the other levels with the file's levels.

Peers that are absent: OpenSlide reads the OME-TIFF as a single-level "generic-tiff" (no
SubIFDs), and cuCIM reads it at level 0 only, so neither has level-2 rows for it. cuCIM
(cucim-cu12) runs its CPU path without a GPU, but its wheel depends on cupy-cuda12x and
nvidia-nvimgcodec (gigabytes of CUDA libraries): installed with ``pip install --no-deps
cucim-cu12`` its rows run; where ``import cucim`` fails they skip ("could not import").

Why: issue targets of random regions >= 2x OpenSlide and >= 1.3x the fastest peer and within
1.2x of the libjpeg-turbo decode floor on 2 threads, and a conversion >= 3x faster than the
fastest peer route; report.py checks them (Slide targets).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import _slides
import numpy as np
import pytest
from _data import MiB
from _floors import n_threads
from bench_zarr import fresh_trees, quieted

JPEG_TOL = 2
ROUNDS = {"slide-regions": 3, "slide-regions-warm": 3, "slide-level": 7, "slide-convert": 3}
SLOW_ROUNDS = 1  # the peers' conversions: one round, no warm-up
FORMATS = {"svs-jpeg": "svs", "ome-deflate": "ome"}
CONVERT_CHUNK = 512
CACHE_SLACK = 64 * MiB


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def smoke(request) -> bool:
    """Benchmarks disabled (the smoke run): a small slide unless VOXCORE_BENCH_SLIDE says."""
    cfg = request.config
    return bool(cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable"))


@pytest.fixture(scope="session")
def edge(smoke) -> int:
    return _slides.slide_edge(smoke)


@pytest.fixture(scope="session")
def slides(workdir, edge) -> _slides.SlideFiles:
    made = _slides.make_files(workdir / "slides", edge)
    FILES.update(svs_MiB=round(made.svs.stat().st_size / MiB, 1),
                 ome_MiB=round(made.ome.stat().st_size / MiB, 1),
                 made_s=round(made.seconds, 1), tissue=round(made.tissue_fraction, 2))
    return made


FILES: dict = {}  # what the slides fixture made, recorded with every row


def peer_versions() -> dict[str, str]:
    """Versions of the slide peers and of the JPEG decoders (conftest.py's machine info lists
    the others)."""
    import importlib.metadata as im

    out = {}
    for name in ("tifffile", "imagecodecs", "openslide-python", "openslide-bin", "tiffslide",
                 "cucim-cu12"):
        try:
            out[name] = im.version(name)
        except im.PackageNotFoundError:
            pass
    try:
        import openslide
        out["libopenslide"] = openslide.__library_version__
    except ImportError:
        pass
    import imagecodecs
    out["imagecodecs libjpeg"] = imagecodecs.jpeg8_version()
    import voxcore  # noqa: F401 - its _core is loaded: which libjpeg it found
    for line in Path("/proc/self/maps").read_text().splitlines():
        name = Path(line.split()[-1]).name
        if name.startswith("libjpeg.so"):
            out["voxcore libjpeg"] = os.path.realpath(line.split()[-1]).rsplit("/", 1)[-1]
            break
    return out


VERSIONS = peer_versions()


@pytest.fixture(scope="session")
def regions(edge, smoke) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    """level -> (region edge, [(y0, x0)]), the same for both files."""
    n = _slides.region_count(edge, smoke)
    shapes = _slides.level_shapes(edge)
    return {k: _slides.random_regions(shapes[k], n, seed=1000 + k) for k in (0, 2)}


@pytest.fixture(scope="session")
def references(slides, regions):
    """(fmt, level) -> (n, e, e, 3) array of the regions as tifffile decodes them (made on first
    use: tifffile decodes the whole level once, the regions are cut from it)."""
    made: dict = {}

    def get(fmt: str, level: int) -> np.ndarray:
        if (fmt, level) not in made:
            e, offsets = regions[level]
            full = level_reference(slides, fmt, level)
            out = np.empty((len(offsets), e, e, 3), np.uint8)
            for i, (y, x) in enumerate(offsets):
                out[i] = full[y:y + e, x:x + e]
            del full
            out.setflags(write=False)
            made[fmt, level] = out
        return made[fmt, level]

    return get


def path_of(slides: _slides.SlideFiles, fmt: str) -> Path:
    return getattr(slides, FORMATS[fmt])


def level_reference(slides, fmt: str, level: int) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path_of(slides, fmt)) as tf:
        return tf.series[0].levels[level].asarray()


def plan(y0: int, x0: int, h: int, w: int, grid_x: int):
    """(tile index, slice in the tile, slice in the box) of every tile a box touches."""
    t = _slides.TILE
    parts = []
    for ty in range(y0 // t, (y0 + h - 1) // t + 1):
        for tx in range(x0 // t, (x0 + w - 1) // t + 1):
            r0, r1 = max(y0, ty * t), min(y0 + h, (ty + 1) * t)
            c0, c1 = max(x0, tx * t), min(x0 + w, (tx + 1) * t)
            parts.append((ty * grid_x + tx,
                          (slice(r0 - ty * t, r1 - ty * t), slice(c0 - tx * t, c1 - tx * t)),
                          (slice(r0 - y0, r1 - y0), slice(c0 - x0, c1 - x0))))
    return parts


def grid_x(shape) -> int:
    return (shape[1] + _slides.TILE - 1) // _slides.TILE


def plans(regions_at_level, shape):
    e, offsets = regions_at_level
    return [plan(y, x, e, e, grid_x(shape)) for y, x in offsets]


def cache_for(regions_at_level, shape) -> tuple[int, int, int]:
    """(distinct tiles touched, tile decodes, cache bytes that hold every tile touched)."""
    ps = plans(regions_at_level, shape)
    distinct = len({i for p in ps for i, _, _ in p})
    tile = _slides.TILE * _slides.TILE * 3
    return distinct, sum(len(p) for p in ps), int(distinct * tile * 1.25) + CACHE_SLACK


# ------------------------------------------------------------------------------ running
def run(benchmark, fn, *, op: str, case: str, edge: int, peer: str, nbytes: int, setup=None,
        teardown=None, quiet: bool = False, rounds: int | None = None, warmup: int = 1, **info):
    """benchmark.pedantic (bench_zarr.run with a string case, a teardown and a warm-up count);
    records what report.py needs. pytest-benchmark skips the teardown when disabled: see
    Handles."""
    benchmark.group = f"{op} {case}"
    benchmark.extra_info.update(op=op, case=case, peer=peer, size=edge, nbytes=nbytes,
                                floor=peer.startswith("floor:"), versions=VERSIONS, files=FILES,
                                **info)
    with quieted(quiet):
        result = benchmark.pedantic(fn, setup=setup, teardown=teardown,
                                    rounds=rounds or ROUNDS[op], warmup_rounds=warmup)
    if benchmark.stats is not None:  # None when pytest-benchmark is disabled (smoke runs)
        benchmark.extra_info["MiB_per_s"] = nbytes / MiB / benchmark.stats.stats.median
    benchmark.extra_info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return result


def close_pixels(got, want: np.ndarray, lossy: bool, what: str) -> int:
    """Max abs difference (asserted <= JPEG_TOL when lossy, 0 otherwise); RGBA (OpenSlide) must
    be opaque and is compared on RGB."""
    got = np.asarray(got)
    if got.ndim == 3 and got.shape[-1] == 4:
        assert (got[..., 3] == 255).all(), f"{what}: transparent pixels inside the level"
        got = got[..., :3]
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{what}: got {got.shape} {got.dtype}, want {want.shape} {want.dtype}")
    d = int(np.abs(got.astype(np.int16) - want).max()) if got.size else 0
    if lossy:
        assert d <= JPEG_TOL, f"{what}: max abs difference {d} > {JPEG_TOL}"
    elif d:
        bad = np.argwhere(got != want)
        raise AssertionError(f"{what}: {len(bad)} value(s) differ, first at {tuple(bad[0])}")
    return d


def check_regions(outs, want: np.ndarray, lossy: bool, what: str) -> int:
    assert len(outs) == len(want), f"{what}: {len(outs)} regions, want {len(want)}"
    return max((close_pixels(o, w, lossy, f"{what} region {i}") for i, (o, w) in
                enumerate(zip(outs, want))), default=0)


class Handles:
    """The handles a row's setup opens: each round's teardown closes its own, and close_all()
    what is left (disabled, pytest-benchmark calls no teardown)."""

    def __init__(self, reader):
        self.reader, self.open_ = reader, []

    def add(self, h):
        self.open_.append(h)
        return h

    def teardown(self, h):
        self.open_.remove(h)
        self.reader.close(h)

    def close_all(self):
        while self.open_:
            self.reader.close(self.open_.pop())


# ------------------------------------------------------------------------------ readers
class Reader:
    """One library's way to open a slide and read a region (y0, x0, edge e) or a whole level."""

    module = ""
    cache = False  # has a tile cache the warm rows fill

    def open(self, path: Path, level: int, cache_bytes: int | None = None):
        raise NotImplementedError

    def region(self, h, level: int, y: int, x: int, e: int):
        raise NotImplementedError

    def level(self, h, level: int):
        raise NotImplementedError

    def close(self, h) -> None:
        close = getattr(h, "close", None)
        if close is not None:
            close()


class Voxcore(Reader):
    module, cache = "voxcore", True

    def open(self, path, level, cache_bytes=None):
        import voxcore as vc
        return vc.open(str(path), cache_bytes=cache_bytes)

    def region(self, h, level, y, x, e, out=None):
        return h.read((slice(y, y + e), slice(x, x + e)), level=level, out=out)

    def level(self, h, level):
        return h.read(level=level)

    def close(self, h):
        h.close()  # now, not by the garbage collector


class OpenSlide(Reader):
    module, cache = "openslide", True

    def open(self, path, level, cache_bytes=None):
        import openslide
        s = openslide.OpenSlide(str(path))
        if cache_bytes:
            s.set_cache(openslide.OpenSlideCache(cache_bytes))
        return s

    def region(self, h, level, y, x, e):
        ds = int(h.level_downsamples[level])
        return np.asarray(h.read_region((x * ds, y * ds), level, (e, e)))  # RGBA

    def level(self, h, level):
        return np.asarray(h.read_region((0, 0), level, h.level_dimensions[level]))


class TiffSlide(Reader):
    module = "tiffslide"

    def open(self, path, level, cache_bytes=None):
        import tiffslide
        return tiffslide.TiffSlide(str(path))

    def region(self, h, level, y, x, e):
        ds = int(h.level_downsamples[level])
        return h.read_region((x * ds, y * ds), level, (e, e), as_array=True)

    def level(self, h, level):
        return h.read_region((0, 0), level, h.level_dimensions[level], as_array=True)


class TifffileZarr(Reader):
    """tifffile's zarr store of one level, read through zarr-python 3."""

    module = "tifffile"

    def open(self, path, level, cache_bytes=None):
        import tifffile
        import zarr
        store = tifffile.imread(str(path), aszarr=True, level=level)
        return store, zarr.open_array(store, mode="r")

    def region(self, h, level, y, x, e):
        return h[1][y:y + e, x:x + e]

    def level(self, h, level):
        return h[1][...]

    def close(self, h):
        h[0].close()


class TifffileImread(Reader):
    module = "tifffile"

    def open(self, path, level, cache_bytes=None):
        return path

    def level(self, h, level):
        import tifffile
        return tifffile.imread(str(h), level=level)

    def close(self, h):
        pass


class CuCIM(Reader):
    """cuCIM's CuImage on the CPU. Its cache is process-wide: set by open, reset by close."""

    module, cache = "cucim", True

    def open(self, path, level, cache_bytes=None):
        from cucim import CuImage
        if cache_bytes:
            CuImage.cache("per_process", memory_capacity=max(1, cache_bytes // MiB))
        return CuImage(str(path))

    def region(self, h, level, y, x, e):
        ds = int(h.resolutions["level_downsamples"][level])
        return np.asarray(h.read_region((x * ds, y * ds), (e, e), level))

    def level(self, h, level):
        return np.asarray(h.read_region((0, 0), h.resolutions["level_dimensions"][level], level))

    def close(self, h):
        from cucim import CuImage
        h.close()
        CuImage.cache("nocache")


READERS = {"voxcore": Voxcore, "openslide": OpenSlide, "tiffslide": TiffSlide,
           "tifffile": TifffileZarr, "tifffile-imread": TifffileImread, "cucim": CuCIM}
COLD_LABELS = {
    "voxcore": "voxcore",
    "voxcore-out": "voxcore read(out=)",
    "openslide": "openslide read_region (default 32 MiB cache)",
    "tiffslide": "tiffslide read_region(as_array=True)",
    "tifffile": "tifffile aszarr + zarr-python",
    "cucim": "cucim read_region (CPU, nocache)",
}


def make_reader(name: str) -> Reader:
    cls = READERS[name.split("-out")[0]]
    pytest.importorskip(cls.module)
    return cls()


def has_level(fmt: str, reader: str, level: int) -> bool:
    """OpenSlide (generic-tiff) and cuCIM see only level 0 of the OME-TIFF's SubIFD pyramid."""
    return fmt == "svs-jpeg" or level == 0 or reader not in ("openslide", "cucim")


# ------------------------------------------------------------------------------ the floor
@dataclass
class LevelTiles:
    """The compressed tiles of one level that a floor decodes, in RAM."""

    data: dict[int, bytes]
    tables: bytes | None
    shape: tuple[int, int, int]

    @classmethod
    def load(cls, path: Path, level: int, wanted=None) -> LevelTiles:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = _slides.level_page(tf, level)
            offsets, counts, tables = page.dataoffsets, page.databytecounts, page.jpegtables
            shape = (page.imagelength, page.imagewidth, 3)
        keep = range(len(offsets)) if wanted is None else sorted(wanted)
        data = {}
        with open(path, "rb") as f:
            for i in keep:
                f.seek(offsets[i])
                data[i] = f.read(counts[i])
        return cls(data, tables, shape)

    @property
    def codec(self) -> str:
        return "libjpeg-turbo" if self.tables is not None else "libdeflate"


class TileFloor:
    """Decode-only lower bound: the tiles' bytes are in RAM; imagecodecs (which releases the
    GIL) decodes each into a preallocated per-thread tile, whose overlap is copied out; thread t
    of nthreads takes every t-th tile of a region, region after region."""

    def __init__(self, tiles: LevelTiles, nthreads: int):
        import imagecodecs

        self.tiles, self.nthreads = tiles, nthreads
        self._tls = threading.local()
        self._ex = ThreadPoolExecutor(nthreads)
        tables = tiles.tables
        if tables is not None:
            self._decode = lambda b, buf: imagecodecs.jpeg8_decode(b, tables=tables, out=buf)
        else:
            self._decode = lambda b, buf: imagecodecs.deflate_decode(b, out=buf.reshape(-1))

    def close(self):
        self._ex.shutdown()

    def _buf(self) -> np.ndarray:
        b = getattr(self._tls, "buf", None)
        if b is None:
            b = self._tls.buf = np.empty((_slides.TILE, _slides.TILE, 3), np.uint8)
        return b

    def read(self, parts, out: np.ndarray) -> np.ndarray:
        data, nt = self.tiles.data, self.nthreads

        def work(k):
            buf = self._buf()
            for i, src, dst in parts[k::nt]:
                self._decode(data[i], buf)
                out[dst] = buf[src]
        list(self._ex.map(work, range(nt)))
        return out


# ------------------------------------------------------------------------------ rows
def _region_rows():
    rows = []
    for fmt in FORMATS:
        for level in (0, 2):
            for reader in ("voxcore", "voxcore-out", "openslide", "tiffslide", "tifffile",
                           "cucim", "floor"):
                if has_level(fmt, reader, level):
                    rows.append(pytest.param(fmt, level, reader,
                                             id=f"{fmt}-L{level}-{reader}"))
    return rows


@pytest.mark.parametrize("fmt,level,reader", _region_rows())
def test_regions(benchmark, fmt, level, reader, slides, regions, references, edge):
    """The regions with a fresh handle (and no cache) each round."""
    e, offsets = regions[level]
    want = references(fmt, level)
    path = path_of(slides, fmt)
    lossy = fmt == "svs-jpeg"
    shape = _slides.level_shapes(edge)[level]
    distinct, decodes, _ = cache_for(regions[level], shape)
    common = {"op": "slide-regions", "case": f"{fmt} level {level}", "edge": edge,
              "nbytes": want.nbytes, "n_regions": len(offsets), "region_edge": e,
              "tiles_touched": distinct, "tile_decodes": decodes}
    if reader == "floor":
        nt = n_threads()
        parts = plans(regions[level], shape)
        floor = TileFloor(LevelTiles.load(path, level, {i for p in parts for i, _, _ in p}), nt)
        try:
            outs = np.empty_like(want)
            outs.fill(0)  # pages touched outside the timing
            label = (f"floor: {floor.tiles.codec} decode of the tiles touched, {nt}T "
                     "(bytes in RAM, + copy out)")
            run(benchmark, lambda: [floor.read(p, outs[i]) for i, p in enumerate(parts)],
                peer=label, **common)
        finally:
            floor.close()
        benchmark.extra_info["max_abs_diff"] = check_regions(outs, want, lossy, label)
        return

    r = make_reader(reader)
    quiet = not reader.startswith("voxcore")
    label = COLD_LABELS[reader]
    into = np.empty_like(want) if reader == "voxcore-out" else None
    if into is not None:
        into.fill(0)

    handles = Handles(r)

    def fresh():
        with quieted(quiet):
            return (handles.add(r.open(path, level)),), {}

    def read_all(h):
        if into is not None:
            return [r.region(h, level, y, x, e, out=into[i]) for i, (y, x) in enumerate(offsets)]
        return [r.region(h, level, y, x, e) for y, x in offsets]

    try:
        outs = run(benchmark, read_all, setup=fresh, teardown=handles.teardown, peer=label,
                   quiet=quiet, **common)
    finally:
        handles.close_all()
    benchmark.extra_info["max_abs_diff"] = check_regions(
        into if into is not None else outs, want, lossy, f"{label} {fmt} L{level}")


WARM = [("voxcore", None), ("openslide", "default"), ("openslide", "same"), ("cucim", "same"),
        ("tiffslide", None), ("tifffile", None)]


def _warm_label(reader: str, cache: str | None, nbytes: int) -> str:
    size = f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / MiB:.0f} MiB"
    return {("voxcore", None): f"voxcore cache_bytes={size}",
            ("openslide", "default"): "openslide read_region (default 32 MiB cache)",
            ("openslide", "same"): f"openslide read_region, OpenSlideCache({size})",
            ("cucim", "same"): f"cucim read_region (CPU, per_process cache {size})",
            ("tiffslide", None): "tiffslide read_region(as_array=True) (no tile cache)",
            ("tifffile", None): "tifffile aszarr + zarr-python (no tile cache)"}[reader, cache]


@pytest.mark.parametrize("fmt,level,reader,cache", [
    pytest.param(fmt, level, reader, cache,
                 id=f"{fmt}-L{level}-{reader}{'-' + cache if cache else ''}")
    for fmt in FORMATS for level in (0, 2) for reader, cache in WARM
    if has_level(fmt, reader, level)])
def test_regions_warm(benchmark, fmt, level, reader, cache, slides, regions, references, edge):
    """The second pass over the regions through one handle with a tile cache."""
    e, offsets = regions[level]
    want = references(fmt, level)
    path = path_of(slides, fmt)
    distinct, decodes, cache_bytes = cache_for(regions[level], _slides.level_shapes(edge)[level])
    r = make_reader(reader)
    quiet = reader != "voxcore"
    label = _warm_label(reader, cache, cache_bytes)
    size = cache_bytes if r.cache and cache != "default" else None

    def read_all(h):
        return [r.region(h, level, y, x, e) for y, x in offsets]

    handles = Handles(r)

    def warmed():  # untimed: open and (for a reader with a cache) the first pass
        with quieted(quiet):
            h = handles.add(r.open(path, level, size))
            if r.cache:
                read_all(h)
        return (h,), {}

    try:
        outs = run(benchmark, read_all, setup=warmed, teardown=handles.teardown,
                   op="slide-regions-warm", case=f"{fmt} level {level}", edge=edge, peer=label,
                   nbytes=want.nbytes, quiet=quiet, n_regions=len(offsets), region_edge=e,
                   tiles_touched=distinct, tile_decodes=decodes, cache_bytes=size)
    finally:
        handles.close_all()
    benchmark.extra_info["max_abs_diff"] = check_regions(outs, want, fmt == "svs-jpeg",
                                                         f"{label} {fmt} L{level}")


# ------------------------------------------------------------------------------ whole level
LEVEL = 2
LEVEL_LABELS = {"voxcore": "voxcore", "openslide": "openslide read_region of the whole level",
                "tiffslide": "tiffslide read_region(as_array=True) of the whole level",
                "tifffile-imread": "tifffile imread(level=)",
                "tifffile": "tifffile aszarr + zarr-python [...]",
                "cucim": "cucim read_region of the whole level (CPU)"}


@pytest.mark.parametrize("fmt,reader", [
    pytest.param(fmt, reader, id=f"{fmt}-{reader}") for fmt in FORMATS
    for reader in (*LEVEL_LABELS, "floor") if has_level(fmt, reader, LEVEL)])
def test_level(benchmark, fmt, reader, slides, edge):
    """Fresh open + read of the whole of level 2."""
    path = path_of(slides, fmt)
    want = level_reference(slides, fmt, LEVEL)
    lossy = fmt == "svs-jpeg"
    common = {"op": "slide-level", "case": f"{fmt} level {LEVEL}", "edge": edge,
              "nbytes": want.nbytes}
    if reader == "floor":
        nt = n_threads()
        floor = TileFloor(LevelTiles.load(path, LEVEL), nt)
        h, w = want.shape[:2]
        parts = plan(0, 0, h, w, grid_x(want.shape))
        out = np.zeros_like(want)
        label = f"floor: {floor.tiles.codec} decode of all tiles, {nt}T (bytes in RAM, + copy out)"
        try:
            run(benchmark, lambda: floor.read(parts, out), peer=label, tile_decodes=len(parts),
                **common)
        finally:
            floor.close()
        benchmark.extra_info["max_abs_diff"] = close_pixels(out, want, lossy, label)
        return
    r = make_reader(reader)
    quiet = reader != "voxcore"
    label = LEVEL_LABELS[reader]

    def open_read():
        h = r.open(path, LEVEL)
        try:
            return r.level(h, LEVEL)
        finally:
            r.close(h)

    out = run(benchmark, open_read, peer=label, quiet=quiet, **common)
    benchmark.extra_info["max_abs_diff"] = close_pixels(out, want, lossy, f"{label} {fmt}")


# ------------------------------------------------------------------------------ convert
def _zstd():
    from zarr.codecs import ZstdCodec
    return ZstdCodec(level=1, checksum=False)


@contextlib.contextmanager
def tifffile_levels(path: Path):
    """The file's levels as dask arrays in (c, y, x) order, through tifffile's zarr stores
    (closed on exit)."""
    import dask.array as da
    import tifffile
    import zarr

    stores = [tifffile.imread(str(path), aszarr=True, level=k) for k in range(_slides.N_LEVELS)]
    try:
        yield [da.from_zarr(zarr.open_array(s, mode="r")).transpose(2, 0, 1) for s in stores]
    finally:
        for s in stores:
            s.close()


AXES = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"}]


def _scales(k: int) -> list[float]:
    s = _slides.MPP * _slides.FACTOR ** k
    return [1.0, s, s]


def convert_voxcore(durable: bool):
    def write(path: Path, out: Path):
        import voxcore as vc
        with vc.open(str(path)) as img:  # the slide's own levels, as `voxcore convert` copies them
            vc.save(vc.build_pyramid(img, "source"), str(out), version="0.5", chunks=CONVERT_CHUNK,
                    codec="zstd", overwrite=True, durable=durable)
    return write


def convert_ome_zarr(path: Path, out: Path):
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscale

    chunks = (1, CONVERT_CHUNK, CONVERT_CHUNK)
    with tifffile_levels(path) as levels:
        write_multiscale([a.rechunk(chunks) for a in levels], group=str(out), axes=AXES,
                         fmt=FormatV05(),
                         storage_options={"chunks": chunks, "compressors": _zstd()},
                         coordinate_transformations=[[{"type": "scale", "scale": _scales(k)}]
                                                     for k in range(len(levels))])


def convert_ngff_zarr(path: Path, out: Path):
    import ngff_zarr as nz

    with tifffile_levels(path) as levels:
        img = nz.to_ngff_image(levels[0], dims=["c", "y", "x"],
                               scale={"c": 1.0, "y": _slides.MPP, "x": _slides.MPP})
        ms = nz.to_multiscales(img, scale_factors=[_slides.FACTOR ** k for k in (1, 2, 3)],
                               chunks={"c": 1, "y": CONVERT_CHUNK, "x": CONVERT_CHUNK},
                               method=nz.Methods.DASK_BIN_SHRINK)
        nz.to_ngff_zarr(str(out), ms, version="0.5", compressors=[_zstd()])


def convert_composite(path: Path, out: Path):
    """tifffile decodes each level whole (its own threads); zarr-python writes it one channel
    at a time; the OME metadata is written by hand."""
    import tifffile
    import zarr

    group = zarr.open_group(str(out), mode="w", zarr_format=3)
    datasets = []
    for k in range(_slides.N_LEVELS):
        a = tifffile.imread(str(path), level=k)  # (y, x, c)
        arr = group.create_array(str(k), shape=(a.shape[2], *a.shape[:2]), dtype=a.dtype,
                                 chunks=(1, CONVERT_CHUNK, CONVERT_CHUNK), compressors=_zstd(),
                                 dimension_names=["c", "y", "x"])
        for c in range(a.shape[2]):
            arr[c] = a[..., c]
        del a
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": _scales(k)}]})
    group.attrs["ome"] = {"version": "0.5",
                          "multiscales": [{"axes": AXES, "datasets": datasets}]}


CONVERTERS = {
    "voxcore (default: durable=True)": (convert_voxcore(durable=True), ("voxcore",)),
    "voxcore durable=False (no fsync, as the peers)": (convert_voxcore(durable=False), ("voxcore",)),
    "ome-zarr-py write_multiscale of tifffile's levels (dask)": (
        convert_ome_zarr, ("ome_zarr", "dask", "tifffile")),
    "ngff-zarr to_multiscales dask_bin_shrink + to_ngff_zarr, from tifffile (dask)": (
        convert_ngff_zarr, ("ngff_zarr", "dask", "tifffile")),
    "tifffile imread + zarr-python write (composite)": (convert_composite, ("tifffile", "zarr")),
}


@pytest.fixture(scope="module")
def svs_level0(slides) -> np.ndarray:
    a = level_reference(slides, "svs-jpeg", 0)
    a.setflags(write=False)
    return a


def read_back(out: Path, slides, level0: np.ndarray, what: str) -> dict:
    """Checks the written OME-Zarr against tifffile's decode; returns its layout."""
    import zarr

    root = json.loads((out / "zarr.json").read_text())
    ms = root["attributes"]["ome"]["multiscales"][0]
    names = [a["name"] for a in ms["axes"]]
    assert sorted(names) == ["c", "x", "y"], f"{what}: axes {names}"
    order = [names.index(d) for d in ("y", "x", "c")]
    layout = {"axes": names, "levels": []}
    shapes = _slides.level_shapes(slides.edge)
    diffs = []
    for k, ds in enumerate(ms["datasets"]):
        arr = zarr.open_array(str(out / ds["path"]), mode="r")
        layout["levels"].append({"shape": list(arr.shape), "chunks": list(arr.chunks)})
        yxc = tuple(arr.shape[i] for i in order)
        if k == 0:
            assert yxc == level0.shape, f"{what}: level 0 shape {yxc}"
            step = 2048
            for y in range(0, level0.shape[0], step):  # strip by strip: bounded memory
                got = np.transpose(arr[_yslice(names, y, y + step)], order)
                diffs.append(close_pixels(got, level0[y:y + step], True,
                                          f"{what} level 0 rows {y}"))
        elif yxc in shapes:
            want = level_reference(slides, "svs-jpeg", shapes.index(yxc))
            got = np.transpose(arr[...], order)
            mad = float(np.abs(got.astype(np.int16) - want).mean())
            assert mad <= 8.0, f"{what}: level {k} {yxc} mean abs difference {mad} from the file's"
    assert len(ms["datasets"]) >= 2, f"{what}: a single level, no pyramid"
    layout["max_abs_diff"] = max(diffs)
    layout["stored_MiB"] = round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                                 / MiB, 1)
    return layout


def _yslice(names, y0, y1):
    return tuple(slice(y0, y1) if n == "y" else slice(None) for n in names)


class ConvertFloor:
    """What any converter of the slide must do at least, each part on n threads with the bytes
    already in RAM: decode every tile of every level (imagecodecs' libjpeg-turbo, into a
    per-thread tile), compress every (1, 512, 512) chunk of the result with zstd-1 (chunks
    prepared untimed), and write each compressed chunk to a new file under a fresh directory
    tree laid out as Zarr v3 keys. Nothing is placed, transposed or gathered. durable: then one
    sync() of everything written."""

    def __init__(self, slides, nthreads: int, durable: bool = False):
        import zstandard

        self.nthreads, self.durable = nthreads, durable
        self.tiles = [LevelTiles.load(slides.svs, k) for k in range(_slides.N_LEVELS)]
        self.chunks = []  # (key, contiguous chunk)
        for k in range(_slides.N_LEVELS):
            a = level_reference(slides, "svs-jpeg", k)
            e = CONVERT_CHUNK
            for c in range(a.shape[2]):
                plane = np.ascontiguousarray(a[..., c])
                for y in range(0, a.shape[0], e):
                    for x in range(0, a.shape[1], e):
                        self.chunks.append((f"{k}/c/{c}/{y // e}/{x // e}",
                                            np.ascontiguousarray(plane[y:y + e, x:x + e])))
        self._zstd = threading.local()
        self._new = zstandard.ZstdCompressor
        self._tile = threading.local()
        self._ex = ThreadPoolExecutor(nthreads)
        self.nbytes = sum(c.nbytes for _, c in self.chunks)

    def close(self):
        self._ex.shutdown()

    def _spread(self, fn, items):
        nt = self.nthreads
        return [r for part in self._ex.map(lambda t: [fn(i) for i in items[t::nt]], range(nt))
                for r in part]

    def run(self, out: Path) -> None:
        import imagecodecs

        def decode(item):
            tables, data = item
            buf = getattr(self._tile, "buf", None)
            if buf is None:
                buf = self._tile.buf = np.empty((_slides.TILE, _slides.TILE, 3), np.uint8)
            imagecodecs.jpeg8_decode(data, tables=tables, out=buf)

        def compress(item):
            z = getattr(self._zstd, "c", None)
            if z is None:
                z = self._zstd.c = self._new(level=1)
            return item[0], z.compress(item[1])

        def write(item):
            key, data = item
            path = out / key
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

        self._spread(decode, [(t.tables, d) for t in self.tiles for d in t.data.values()])
        self._spread(write, self._spread(compress, self.chunks))
        if self.durable:
            os.sync()


@pytest.fixture(scope="module")
def convert_outputs(workdir):
    """A new tree per round of a conversion, removed at the end of the module (fresh_trees)."""
    with fresh_trees(workdir / "convert") as fresh:
        yield fresh


@pytest.mark.parametrize("peer", list(CONVERTERS) + ["floor", "floor-durable"],
                         ids=["voxcore", "voxcore-no-fsync", "ome-zarr-py", "ngff-zarr",
                              "tifffile-zarr-python", "floor", "floor-durable"])
def test_convert(benchmark, peer, slides, svs_level0, edge, convert_outputs):
    common = {"op": "slide-convert", "case": "svs-jpeg", "edge": edge, "nbytes": svs_level0.nbytes}
    if peer.startswith("floor"):
        nt = n_threads()
        durable = peer == "floor-durable"
        floor = ConvertFloor(slides, nt, durable)
        try:
            label = (f"floor: libjpeg-turbo decode of every tile + zstd-1 of every chunk + "
                     f"write of each to a new file, {nt}T (bytes in RAM)"
                     + (" + one sync() (durable)" if durable else ""))
            run(benchmark, floor.run, setup=convert_outputs(peer), peer=label, **common)
        finally:
            floor.close()
        return
    write, modules = CONVERTERS[peer]
    for m in modules:
        pytest.importorskip(m)
    voxcore = peer.startswith("voxcore")
    outs = []
    setup = convert_outputs(peer.split()[0] + ("-nofsync" if "False" in peer else ""))

    def convert(out):
        outs.append(out)
        write(slides.svs, out)
    run(benchmark, convert, setup=setup, peer=peer, quiet=not voxcore,
        rounds=None if voxcore else SLOW_ROUNDS, warmup=1 if voxcore else 0, **common)
    benchmark.extra_info.update(read_back(outs[-1], slides, svs_level0, peer))
