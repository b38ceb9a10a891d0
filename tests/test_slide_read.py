"""Reading whole-slide and plain TIFF files with ``vc.open`` (voxcore.SlideImage).

Every kind of file in ``slides.generate.CASES`` (Aperio SVS with JPEG and JPEG 2000 tiles,
OME-TIFF pyramids in SubIFDs, an OME-TIFF with pages its OME-XML does not reference, generic
tiled pyramids in classic and BigTIFF, stripped and tiled single-level files, big-endian,
float32 with the floating-point predictor) is written at test time, once per module, and read back whole and as unaligned regions of every
level. Oracles: tifffile's own decode of the same level (bit-exact for lossless codecs, within
``JPEG_TOL`` for JPEG / JPEG 2000, where two conforming decoders may round differently) and, for
the files OpenSlide opens (SVS, generic tiled RGB), ``OpenSlide.read_region``. The rest checks
what a user sees: levels and downsamples, pixel size and units from Aperio MPP and OME
PhysicalSize, vendor metadata, SVS associated images, ``out=``, ``cache_bytes=``, dask and views.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import voxcore as vc
from slides import generate, oracle
from slides.generate import Slide

# Largest |voxcore - tifffile| (and |voxcore - OpenSlide|) allowed for lossy tiles. Measured
# with the first implementation: 0 on every level and associated image of every JPEG and
# JPEG 2000 case (voxcore, imagecodecs and OpenSlide all decode with libjpeg-turbo's islow IDCT
# and fancy upsampling, and OpenJPEG). 2 leaves room for another conforming IDCT while still
# catching the wrong chroma upsampling or colour conversion (errors of 5-50).
JPEG_TOL = 2

CASE_IDS = list(generate.CASES)
MULTI_LEVEL = [c for c in CASE_IDS if c.startswith(("svs", "ome", "pyramid"))]
OPENSLIDE = [c for c in CASE_IDS if c.startswith(("svs", "pyramid")) or c == "tiled-rgb-u8-lzw"]


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """``make(case) -> Slide``: each case's file is written once per module."""
    made: dict[str, Slide] = {}

    def get(case: str) -> Slide:
        if case not in made:
            made[case] = generate.CASES[case](tmp_path_factory.mktemp(case))
        return made[case]

    return get


@pytest.fixture(scope="module", params=CASE_IDS)
def slide(request, make) -> Slide:
    return make(request.param)


@pytest.fixture(scope="module")
def reference(slide) -> list[np.ndarray]:
    """tifffile's decode of every level, in voxcore's axis order."""
    return oracle.tifffile_levels(slide)


@pytest.fixture(scope="module")
def img(slide):
    return vc.open(slide.path)


def _native(dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


def same_pixels(got, want: np.ndarray, slide: Slide, what: str) -> None:
    """Bit-exact for lossless files, within JPEG_TOL for lossy ones; shape and native dtype."""
    close_pixels(got, want, slide.lossy, what)


def close_pixels(got, want: np.ndarray, lossy: bool, what: str) -> None:
    got = np.asarray(got)
    want = np.asarray(want).astype(_native(want.dtype), copy=False)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if lossy:
        d = oracle.max_diff(got, want)
        assert d <= JPEG_TOL, f"{what}: max abs difference {d} > {JPEG_TOL}"
    elif not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(f"{what}: {len(bad)} pixel(s) differ, first at {first}: "
                             f"got {got[first]!r} want {want[first]!r}")


def random_regions(shape, dims, seed: int, n: int = 10, max_extent: int = 300) -> list[tuple]:
    """n boxes (one slice per axis, dims order) at unaligned positions with odd extents."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = []
        for d, size in zip(dims, shape):
            if d == "c":
                c0 = int(rng.integers(0, size))
                idx.append(slice(c0, int(rng.integers(c0 + 1, size + 1))))
            else:
                ext = int(rng.integers(1, min(size, max_extent) + 1))
                a = int(rng.integers(0, size - ext + 1))
                idx.append(slice(a, a + ext))
        out.append(tuple(idx))
    return out


def _integral_level(slide: Slide, level: int) -> bool:
    (h0, w0), (h, w) = slide.yx(0), slide.yx(level)
    return h0 % h == 0 and w0 % w == 0 and h0 // h == w0 // w


# -- what the file is --------------------------------------------------------------------------

def test_describes_the_file(slide, img):
    assert isinstance(img, vc.SlideImage)
    assert isinstance(img, vc.ImageModel)
    assert img.dims == slide.dims
    assert img.shape == slide.level0.shape
    assert img.dtype == _native(slide.level0.dtype)  # big-endian files read as native values
    assert img.compression == slide.compression
    assert len(img.levels) == len(slide.levels), [lv.shape for lv in img.levels]
    for k, (lv, want) in enumerate(zip(img.levels, slide.levels)):
        assert lv.shape == want.shape, f"level {k}"
        assert lv.image.shape == want.shape, f"level {k} image"
        assert lv.tile == slide.tile, f"level {k} tile"


def test_downsample_is_openslides_definition(slide, img):
    for k, lv in enumerate(img.levels):
        assert lv.downsample == pytest.approx(slide.downsample(k), rel=1e-12), f"level {k}"
    assert img.levels[0].downsample == 1.0


@pytest.fixture(scope="module", params=OPENSLIDE)
def os_slide(request, make) -> Slide:
    """The cases OpenSlide opens (aperio, generic-tiff)."""
    return make(request.param)


def test_downsample_and_size_match_openslide(os_slide):
    import openslide

    s = os_slide
    img = vc.open(s.path)
    with openslide.OpenSlide(str(s.path)) as osr:
        assert len(img.levels) == osr.level_count
        for k, lv in enumerate(img.levels):
            h, w = (lv.shape[img.dims.index(a)] for a in ("y", "x"))
            assert (w, h) == osr.level_dimensions[k]
            assert lv.downsample == pytest.approx(osr.level_downsamples[k], rel=1e-9)


# -- pixels: tifffile oracle -------------------------------------------------------------------

def test_levels_whole(slide, img, reference):
    for k, want in enumerate(reference):
        same_pixels(img.read(level=k), want, slide, f"{slide.path.name} level {k}")


def test_levels_random_regions(slide, img, reference):
    for k, want in enumerate(reference):
        for region in random_regions(want.shape, slide.dims, seed=100 + k):
            same_pixels(img.read(region, level=k), want[region], slide,
                        f"{slide.path.name} level {k} region {region}")


def test_regions_across_tile_edges(slide, img, reference):
    """Boxes straddling tile (or strip) boundaries, and the last partial tile/strip."""
    want = reference[0]
    h, w = slide.yx(0)
    th, tw = slide.tile or (16, w)  # strips of the stripped writers are 16 rows
    iy, ix = slide.dims.index("y"), slide.dims.index("x")
    boxes = [(th - 3, th + 5, tw - 2, tw + 7), (h - 5, h, w - 9, w), (0, 1, 0, w), (0, h, w - 1, w),
             (h - 1, h, 0, 1)]
    for y0, y1, x0, x1 in boxes:
        y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        idx = [slice(None)] * len(slide.dims)
        idx[iy], idx[ix] = slice(y0, y1), slice(x0, x1)
        region = tuple(idx)
        same_pixels(img.read(region), want[region], slide, f"{slide.path.name} box {region}")


@pytest.mark.parametrize("form", ["int-y", "negative", "ellipsis", "yx-only", "dict", "step"])
def test_indexing_forms(slide, img, reference, form):
    """numpy indexing semantics in the level's own pixels (level 0 here)."""
    want = reference[0]
    iy, ix = slide.dims.index("y"), slide.dims.index("x")
    h, w = slide.yx(0)
    full = [slice(None)] * len(slide.dims)
    if form == "int-y":
        idx = list(full)
        idx[iy] = h // 2 + 1
        region = tuple(idx)
    elif form == "negative":
        idx = list(full)
        idx[iy], idx[ix] = slice(-37, -3), slice(-w // 3, None)
        region = tuple(idx)
    elif form == "ellipsis":
        region = (Ellipsis, slice(w // 3, w // 3 + 41)) if slide.dims[-1] == "x" else (
            Ellipsis, slice(0, 1))
    elif form == "yx-only":
        if slide.dims[0] != "y":
            pytest.skip("channel-first: a two-item index is (c, y)")
        region = (slice(h // 5, h // 5 + 50), slice(w // 7, w // 7 + 60))
    elif form == "dict":
        got = img.read({"y": slice(11, 71), "x": slice(w - 90, w - 5)})
        idx = list(full)
        idx[iy], idx[ix] = slice(11, 71), slice(w - 90, w - 5)
        same_pixels(got, want[tuple(idx)], slide, "dict region")
        return
    else:  # step
        idx = list(full)
        idx[iy], idx[ix] = slice(3, h, 7), slice(1, min(w, 400), 3)
        region = tuple(idx)
    same_pixels(img.read(region), want[region], slide, f"{form} {region}")


# -- pixels: OpenSlide oracle ------------------------------------------------------------------

def test_regions_match_openslide(os_slide):
    s = os_slide
    img = vc.open(s.path)
    for k in range(len(s.levels)):
        h, w = s.yx(k)
        regions = random_regions((h, w), ("y", "x"), seed=200 + k, n=6)
        regions.append((slice(0, h), slice(0, w)))
        for ys, xs in regions:
            want = oracle.openslide_region(s, k, ys.start, xs.start, ys.stop - ys.start,
                                           xs.stop - xs.start)
            same_pixels(img.read((ys, xs, slice(None)), level=k), want, s,
                        f"{s.path.name} level {k} region {(ys, xs)} vs OpenSlide")


# -- geometry and metadata ---------------------------------------------------------------------

def test_pixel_size_and_units(slide, img):
    iy, ix = slide.dims.index("y"), slide.dims.index("x")
    if slide.pixel_size is None:
        assert img.units[iy] is None and img.units[ix] is None, img.units
        return
    py, px = slide.pixel_size
    assert img.scale[iy] == pytest.approx(py, rel=1e-9)
    assert img.scale[ix] == pytest.approx(px, rel=1e-9)
    assert img.units[iy] == img.units[ix] == "micrometer"
    if "c" in slide.dims:
        assert img.units[slide.dims.index("c")] is None
    for k, lv in enumerate(img.levels):
        if not _integral_level(slide, k):
            continue  # odd sizes: a level's exact scale is a convention, not checked here
        f = slide.yx(0)[0] // slide.yx(k)[0]
        assert lv.scale[iy] == pytest.approx(py * f, rel=1e-9), f"level {k}"
        assert lv.scale[ix] == pytest.approx(px * f, rel=1e-9), f"level {k}"


@pytest.fixture(scope="module")
def svs(make) -> Slide:
    return make("svs-jpeg")


def test_generated_svs_is_what_aperio_writes(svs):
    """Guards the generator: tifffile sees SVS, tiles share JPEGTables (abbreviated streams,
    YCbCr), OpenSlide opens it as aperio with the three associated images."""
    import openslide
    import tifffile

    with tifffile.TiffFile(svs.path) as tf:
        assert tf.is_svs
        page = tf.pages[0]
        assert page.jpegtables is not None and page.photometric == 6
        data = tf.filehandle
        data.seek(page.dataoffsets[0])
        first = data.read(page.databytecounts[0])
        assert b"\xff\xdb" not in first and b"\xff\xc4" not in first  # no tables in the tile
        assert [p.subfiletype for p in tf.pages[-2:]] == [1, 9]
        assert not tf.pages[1].is_tiled
    with openslide.OpenSlide(str(svs.path)) as osr:
        assert osr.properties[openslide.PROPERTY_NAME_VENDOR] == "aperio"
        assert sorted(osr.associated_images) == ["label", "macro", "thumbnail"]


def test_svs_mpp_and_metadata(svs):
    img = vc.open(svs.path)
    assert img.dims == ("y", "x", "c")
    assert img.scale[0] == pytest.approx(0.499) and img.scale[1] == pytest.approx(0.499)
    assert img.units[:2] == ("micrometer", "micrometer")
    assert img.metadata["MPP"] == "0.4990"
    assert img.metadata["AppMag"] == "20"
    assert img.metadata["ScanScope ID"] == "CPVOXCORE"


def test_svs_associated_images(svs):
    import openslide

    img = vc.open(svs.path)
    assert set(img.associated) == {"thumbnail", "label", "macro"}
    ref = oracle.tifffile_associated(svs)
    with openslide.OpenSlide(str(svs.path)) as osr:
        for name in ("thumbnail", "label", "macro"):
            got = np.asarray(img.associated[name])
            assert got.shape == svs.associated[name].shape, name
            lossy = name != "label"  # label is LZW; thumbnail and macro are JPEG
            close_pixels(got, ref[name], lossy, f"associated {name} vs tifffile")
            osa = np.asarray(osr.associated_images[name].convert("RGB"))
            close_pixels(got, osa, lossy, f"associated {name} vs OpenSlide")
    assert not any(a.shape == img.shape for a in img.associated.values())


@pytest.mark.parametrize("case,psize", [("ome-rgb-jpeg-subifds", (0.3, 0.25)),
                                        ("ome-fluo-u16-deflate-subifds", (0.65, 0.65))])
def test_ome_physical_size_and_xml(case, psize, make):
    s = make(case)
    img = vc.open(s.path)
    iy, ix = s.dims.index("y"), s.dims.index("x")
    assert (img.scale[iy], img.scale[ix]) == pytest.approx(psize)
    assert img.units[iy] == img.units[ix] == "micrometer"
    xml = img.metadata["ome_xml"]
    assert isinstance(xml, str) and "<OME" in xml and f'PhysicalSizeX="{psize[1]}"' in xml


def test_ome_channels_are_the_first_axis(make):
    s = make("ome-fluo-u16-deflate-subifds")
    img = vc.open(s.path)
    assert img.dims == ("c", "y", "x") and img.shape == (4, 640, 832)
    ref = oracle.tifffile_level(s, 2)
    same_pixels(img.read((slice(1, 3), slice(7, 100), slice(33, 150)), level=2),
                ref[1:3, 7:100, 33:150], s, "channels 1..2 of level 2")


# -- API surface on the same files -------------------------------------------------------------

def _some_level(slide: Slide) -> int:
    return 1 if len(slide.levels) > 1 else 0


def test_read_into_preallocated_out(slide, img, reference):
    k = _some_level(slide)
    region = random_regions(reference[k].shape, slide.dims, seed=300, n=1)[0]
    want = reference[k][region]
    out = np.full(want.shape, 7, dtype=_native(want.dtype))
    got = img.read(region, level=k, out=out)
    assert got is out or np.shares_memory(got, out)
    same_pixels(out, want, slide, f"out= level {k}")


@pytest.mark.parametrize("cache_bytes", [0, 64 << 10, 64 << 20])
def test_cache_bytes_gives_the_same_pixels(slide, reference, cache_bytes):
    """Repeated and overlapping reads through a cache (0: none; 64 KiB: evicts constantly)
    equal reads without one."""
    cached = vc.open(slide.path, cache_bytes=cache_bytes)
    plain = vc.open(slide.path)
    for k in range(len(slide.levels)):
        regions = random_regions(reference[k].shape, slide.dims, seed=400 + k, n=4)
        for region in regions + regions[::-1]:
            a = cached.read(region, level=k)
            assert np.array_equal(a, plain.read(region, level=k)), f"level {k} {region}"
            same_pixels(a, reference[k][region], slide, f"cached level {k} {region}")


def test_to_dask_equals_the_level(slide, img, reference):
    k = _some_level(slide)
    arr = img.to_dask(level=k)
    assert arr.shape == reference[k].shape
    same_pixels(arr.compute(), reference[k], slide, f"to_dask(level={k})")


def test_view_reads_the_level(slide, img, reference):
    for k in range(len(slide.levels)):
        if k and not _integral_level(slide, k):
            continue  # views need integer factors; odd-size OME levels are not
        same_pixels(img.view(level=k).read(), reference[k], slide, f"view(level={k})")
    k = len(slide.levels) - 1
    if not _integral_level(slide, k):
        return
    f = slide.yx(0)[0] // slide.yx(k)[0]
    h, w = slide.yx(k)
    sub = {"y": (h // 4, h // 2 - h // 4 + 1), "x": (w // 3, w // 2 - w // 3 + 1)}
    offset = [sub[d][0] * f if d in sub else 0 for d in slide.dims]
    size = [sub[d][1] * f if d in sub else n for d, n in zip(slide.dims, slide.levels[0].shape)]
    region = tuple(slice(sub[d][0], sub[d][0] + sub[d][1]) if d in sub else slice(None)
                   for d in slide.dims)
    got = img.view(offset, size, level=k).read()
    same_pixels(got, reference[k][region], slide, f"view box on level {k}")


def test_jpeg2000_case_reads(make):
    """JPEG 2000 tiles (Aperio 33005) may go through a Python fallback decoder; they still
    read the same as tifffile and OpenSlide (covered above) and report their codec."""
    s = make("svs-jpeg2000")
    assert s.fallback
    img = vc.open(s.path)
    assert img.compression == "jpeg2000"
    assert math.isclose(img.scale[0], 0.499)
