"""Reference reads of the generated slides: tifffile's own decode (every kind) and OpenSlide's
read_region (the kinds it opens), in voxcore's axis order."""
from __future__ import annotations

import numpy as np
import tifffile

from .generate import Slide


def tifffile_level(slide: Slide, level: int) -> np.ndarray:
    """Level ``level`` decoded by tifffile, shaped like ``slide.levels[level]``."""
    want = slide.levels[level].shape
    with tifffile.TiffFile(slide.path) as tf:
        a = tf.series[0].levels[level].asarray()
    assert a.size == int(np.prod(want)), f"tifffile level {level}: {a.shape} vs {want}"
    return np.ascontiguousarray(a.reshape(want))


def tifffile_levels(slide: Slide) -> list[np.ndarray]:
    return [tifffile_level(slide, k) for k in range(len(slide.levels))]


def tifffile_associated(slide: Slide) -> dict[str, np.ndarray]:
    """SVS associated images by tifffile series name, lower-case (thumbnail, label, macro)."""
    with tifffile.TiffFile(slide.path) as tf:
        return {s.name.lower(): s.asarray() for s in tf.series[1:]}


def level_page_tags(slide: Slide, level: int) -> dict:
    """{tag name: value} of a level's (first) page."""
    with tifffile.TiffFile(slide.path) as tf:
        page = tf.series[0].levels[level].keyframe
        return {t.name: t.value for t in page.tags.values()}


def openslide_region(slide: Slide, level: int, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """OpenSlide's read_region of a box given in the level's own pixels, RGB (y, x, c).

    read_region takes the top-left in level-0 pixels; the writers make OpenSlide-read levels
    exact multiples, so level * downsample is an integer and no resampling happens."""
    import openslide

    with openslide.OpenSlide(str(slide.path)) as osr:
        ds = osr.level_downsamples[level]
        assert float(ds).is_integer(), f"level {level} downsample {ds} is not integral"
        rgba = np.asarray(osr.read_region((int(x0 * ds), int(y0 * ds)), level, (w, h)))
    assert (rgba[..., 3] == 255).all(), "OpenSlide returned transparent pixels inside the level"
    return np.ascontiguousarray(rgba[..., :3])


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) if a.size else 0


def self_check(slide: Slide) -> str:  # pragma: no cover - used by ``python -m slides.generate``
    """Check a generated file against the writer's claims; returns a one-line summary."""
    notes = []
    levels = tifffile_levels(slide)
    for k, (got, src) in enumerate(zip(levels, slide.levels)):
        assert got.shape == src.shape and got.dtype == src.dtype, (k, got.shape, src.shape)
        if slide.lossy:
            notes.append(f"L{k} src-diff {max_diff(got, src)}")
        else:
            assert np.array_equal(got, src), f"level {k} lossless but differs"
    tags = level_page_tags(slide, 0)
    notes.append(f"comp {int(tags['Compression'])}")
    if slide.compression == "jpeg" and slide.path.suffix == ".svs":
        assert "JPEGTables" in tags, "SVS JPEG without JPEGTables"
        assert int(tags["PhotometricInterpretation"]) == 6, tags["PhotometricInterpretation"]
    with tifffile.TiffFile(slide.path) as tf:
        if slide.path.suffix == ".svs":
            assert tf.is_svs
        if ".ome" in slide.path.name:
            assert tf.is_ome
        assert len(tf.series[0].levels) == len(slide.levels), len(tf.series[0].levels)
        notes.append(f"series {len(tf.series)} levels {len(tf.series[0].levels)}")
    if slide.associated:
        assoc = tifffile_associated(slide)
        assert sorted(assoc) == sorted(slide.associated), sorted(assoc)
    if slide.openslide:
        import openslide

        with openslide.OpenSlide(str(slide.path)) as osr:
            vendor = osr.properties.get(openslide.PROPERTY_NAME_VENDOR)
            assert vendor == slide.openslide_vendor, vendor
            assert osr.level_count == len(slide.levels), osr.level_count
            for k in range(len(slide.levels)):
                h, w = slide.yx(k)
                assert osr.level_dimensions[k] == (w, h), (k, osr.level_dimensions[k])
                got = openslide_region(slide, k, 0, 0, h, w)
                d = max_diff(got, levels[k])
                assert slide.lossy or d == 0, f"openslide level {k} differs by {d}"
                notes.append(f"os-L{k} {d}")
            if slide.associated:
                assert sorted(osr.associated_images) == sorted(slide.associated), sorted(
                    osr.associated_images)
            notes.append(f"mpp {osr.properties.get(openslide.PROPERTY_NAME_MPP_X)}")
    return ", ".join(notes)
