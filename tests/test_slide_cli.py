"""voxcore info / view / convert on TIFF slides (files generated here with tifffile)."""

import json

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

tifffile = pytest.importorskip("tifffile")


def _pattern(h, w):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x // 7 + y // 5) % 256], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    """An OME-TIFF RGB pyramid 1200x1800, JPEG 128^2 tiles, levels by 2, pixel size 0.5 um."""
    path = tmp_path_factory.mktemp("slide") / "slide.ome.tif"
    rgb = _pattern(1200, 1800)
    with tifffile.TiffWriter(path) as tw:
        opts = dict(tile=(128, 128), compression="jpeg", photometric="rgb")
        tw.write(rgb, subifds=3, metadata={"PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "axes": "YXS"}, **opts)
        for f in (2, 4, 8):
            tw.write(rgb[::f, ::f], subfiletype=1, **opts)
    return path


def test_info_lists_levels_tiles_compression_and_pixel_size(slide, capsys):
    assert main(["info", str(slide)]) == 0
    out = capsys.readouterr().out
    assert "OME-TIFF" in out and "pixel size: 0.5 x 0.5 micrometer" in out
    assert out.count("128x128 tiles  jpeg  decoded by core") == 4
    assert "level 3: shape (150, 225, 3)  downsample 8" in out


def test_view_writes_the_level_that_fits(slide, tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    png = tmp_path / "thumb.png"
    assert main(["view", str(slide), "-o", str(png), "--size", "300"]) == 0
    pic = plt.imread(png)
    assert pic.shape[:2] == (150, 225)  # level 3: the finest whose sides fit in 300
    level3 = vc.open(slide).read(level=3)
    diff = np.abs(pic[..., :3] * 255 - level3).max()
    assert diff <= 1, diff
    small = tmp_path / "small.png"
    assert main(["view", str(slide), "-o", str(small), "--size", "100"]) == 0  # coarsest, shrunk
    assert max(plt.imread(small).shape[:2]) <= 100


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_convert_copies_the_slides_own_levels(slide, tmp_path, version, capsys):
    out = tmp_path / f"slide-{version}.ome.zarr"
    assert main(["convert", str(slide), str(out), "--version", version, "--quiet"]) == 0
    assert "own levels copied" in capsys.readouterr().out
    src, res = vc.open(slide), vc.open(out)
    assert res.dims == ("c", "y", "x") and res.units == (None, "micrometer", "micrometer")
    assert [lv.shape for lv in res.levels] == [(3,) + lv.shape[:2] for lv in src.levels]
    for k, lv in enumerate(res.levels):
        np.testing.assert_array_equal(res.read(level=k), src.read(level=k).transpose(2, 0, 1))
        assert lv.scale[1:] == pytest.approx((0.5 * 2 ** k,) * 2)
        assert lv.translation[1:] == pytest.approx((0.5 * (2 ** k - 1) / 2,) * 2)
    meta = json.loads((out / ("zarr.json" if version == "0.5" else ".zattrs")).read_text())
    ms = (meta["attributes"]["ome"] if version == "0.5" else meta)["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    models = pytest.importorskip("ome_zarr_models")
    import zarr
    (models.v05 if version == "0.5" else models.v04).Image.from_zarr(zarr.open_group(out, mode="r"))


def test_convert_computes_levels_that_do_not_step_by_integers(tmp_path):
    path = tmp_path / "odd.tif"
    rgb = _pattern(600, 900)
    with tifffile.TiffWriter(path) as tw:  # level 1 is a third of level 0: not a power-of-two step
        tw.write(rgb, tile=(128, 128), compression="zlib", photometric="rgb", subifds=1)
        tw.write(rgb[::3, ::3], tile=(128, 128), compression="zlib", photometric="rgb", subfiletype=1)
    out = tmp_path / "odd.ome.zarr"
    assert main(["convert", str(path), str(out), "--quiet", "--levels", "2"]) == 0
    res = vc.open(out)
    np.testing.assert_array_equal(res.read(), rgb.transpose(2, 0, 1))
    assert res.levels[1].shape == (3, 300, 450)


def test_open_a_tifffile_zarr_store(slide):
    whole = vc.open(tifffile.imread(slide, aszarr=True))
    assert len(whole.levels) == 4 and whole.dims == ("y", "x", "c")
    level2 = vc.open(tifffile.imread(slide, aszarr=True, level=2))
    np.testing.assert_array_equal(level2.read(), tifffile.imread(slide, level=2))
    np.testing.assert_array_equal(vc.open(tifffile.imread(slide, aszarr=True), path="1").read(),
                                  tifffile.imread(slide, level=1))
    with pytest.raises(vc.InvalidArgumentError, match="not a level"):
        vc.open(tifffile.imread(slide, aszarr=True), path="9")
    with pytest.raises(FileNotFoundError, match="one level.*'nope'"):  # not silently level 2
        vc.open(tifffile.imread(slide, aszarr=True, level=2), path="nope")


def test_convert_copies_levels_a_scanner_rounded_down(tmp_path):
    path = tmp_path / "floor.tif"
    rgb = _pattern(1001, 1499)
    with tifffile.TiffWriter(path) as tw:  # 1001x1499 -> 250x374 -> 62x93: sizes rounded down
        tw.write(rgb, tile=(128, 128), compression="zlib", photometric="rgb", subifds=2)
        tw.write(rgb[:1000:4, :1496:4], tile=(128, 128), compression="zlib", photometric="rgb", subfiletype=1)
        tw.write(rgb[:992:16, :1488:16], tile=(128, 128), compression="zlib", photometric="rgb", subfiletype=1)
    src = vc.open(path)
    pyr = vc.build_pyramid(src, "source")
    assert [lv.shape for lv in pyr.levels] == [(3, 1001, 1499), (3, 250, 374), (3, 62, 93)]
    out = tmp_path / "floor.ome.zarr"
    vc.save(pyr, out, chunks=256)
    res = vc.open(out)
    for k in range(3):
        np.testing.assert_array_equal(res.read(level=k), src.read(level=k).transpose(2, 0, 1))
    assert res.levels[2].scale[1:] == pytest.approx((1001 / 62, 1499 / 93))
    with pytest.raises(vc.InvalidArgumentError, match="source"):
        vc.build_pyramid(vc.from_array(rgb[..., 0]), "source")


def test_convert_in_many_slabs_reuses_one_buffer_exactly(slide, tmp_path, monkeypatch):
    # A small slab budget: each level goes in slabs of one chunk row, the last one shorter,
    # all read into one reused buffer; every level must still equal the slide's.
    from voxcore.writers import ome_zarr
    monkeypatch.setattr(ome_zarr, "SLAB_BUDGET_BYTES", 1)
    out = tmp_path / "slabs.ome.zarr"
    src = vc.open(slide)
    vc.save(vc.build_pyramid(src, "source"), out, chunks=64, durable=False)
    res = vc.open(out)
    assert len(res.levels) == len(src.levels)
    for k in range(len(src.levels)):
        np.testing.assert_array_equal(res.read(level=k), src.read(level=k).transpose(2, 0, 1))
