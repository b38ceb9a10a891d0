"""OME-Zarr 0.4 / 0.5 pyramids: build_pyramid levels, save metadata, round trips via zarr-python."""

import json
import os

import numpy as np
import pytest

import voxcore as vc
from voxcore import build_pyramid, from_array, save

zarr = pytest.importorskip("zarr")


def blob(shape=(12, 40, 36), dtype="uint16"):
    rng = np.random.default_rng(7)
    return rng.integers(0, 1000, size=shape).astype(dtype)


def ome_attrs(group, version):
    attrs = dict(group.attrs)
    if version == "0.5":
        assert set(attrs) == {"ome"}
        assert attrs["ome"]["version"] == "0.5"
        ms = attrs["ome"]["multiscales"]
        assert all("version" not in m for m in ms)
    else:
        ms = attrs["multiscales"]
        assert all(m["version"] == "0.4" for m in ms)
    return ms


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("method", ["mean", "nearest"])
def test_round_trip_metadata(tmp_path, version, method):
    a = blob()
    img = from_array(a, dims=("z", "y", "x"), scale=(2.0, 0.5, 0.5), translation=(10.0, -1.0, 3.0),
                     units=("micrometer",) * 3, name="blob")
    pyr = build_pyramid(img, factors=[2, 4], method=method)
    out = tmp_path / "out.ome.zarr"
    assert save(pyr, out, version=version, chunks=16) == str(out)

    g = zarr.open_group(str(out), mode="r")
    assert g.metadata.zarr_format == (3 if version == "0.5" else 2)
    ms = ome_attrs(g, version)
    assert len(ms) == 1
    m = ms[0]
    assert m["name"] == "blob"
    assert m["axes"] == [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    assert m["type"] == method
    assert m["metadata"] == {"method": "voxcore.downsample", "version": vc.__version__,
                             "kwargs": {"method": method}}
    assert [d["path"] for d in m["datasets"]] == ["0", "1", "2"]
    for lv, ds, f in zip(pyr.levels, m["datasets"], (1, 2, 4)):
        ct = ds["coordinateTransformations"]
        assert [t["type"] for t in ct] == ["scale", "translation"]
        assert ct[0]["scale"] == [2.0 * f, 0.5 * f, 0.5 * f]
        if method == "mean":
            want = [10.0 + (f - 1) / 2 * 2.0, -1.0 + (f - 1) / 2 * 0.5, 3.0 + (f - 1) / 2 * 0.5]
        else:
            want = [10.0, -1.0, 3.0]
        assert ct[1]["translation"] == want
        arr = g[ds["path"]]
        assert arr.shape == lv.shape == tuple(-(-n // f) for n in a.shape)
        np.testing.assert_array_equal(arr[...], lv.data)
        if version == "0.5":
            assert arr.metadata.dimension_names == ("z", "y", "x")
        else:
            assert arr.metadata.dimension_separator == "/"
    np.testing.assert_array_equal(g["0"][...], a)
    if version == "0.4":
        assert json.loads((out / ".zgroup").read_text()) == {"zarr_format": 2}
        assert os.path.exists(out / "1" / "0" / "0" / "0")  # "/" separator on disk
        assert not (out / "zarr.json").exists()

    im = vc.open(str(out))
    assert im.shape == a.shape
    np.testing.assert_array_equal(im[...], a)
    assert im.attrs == dict(g.attrs)


def test_time_channel_axes_and_shards(tmp_path):
    a = blob((2, 3, 8, 40, 40), "float32")
    img = from_array(a, scale=(1.5, 1.0, 1.0, 0.25, 0.25),
                     units=("second", None, "micrometer", "micrometer", "micrometer"))
    assert img.dims == ("t", "c", "z", "y", "x")
    pyr = build_pyramid(img, factors=[{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}], method="gaussian")
    assert [lv.shape for lv in pyr.levels] == [(2, 3, 8, 40, 40), (2, 3, 8, 20, 20), (2, 3, 4, 10, 10)]
    out = tmp_path / "tc.ome.zarr"
    save(pyr, out, version="0.5", chunks=8, shards=16)
    g = zarr.open_group(str(out), mode="r")
    m = ome_attrs(g, "0.5")[0]
    assert [(ax["name"], ax["type"], ax.get("unit")) for ax in m["axes"]] == [
        ("t", "time", "second"), ("c", "channel", None), ("z", "space", "micrometer"),
        ("y", "space", "micrometer"), ("x", "space", "micrometer")]
    ct = m["datasets"][2]["coordinateTransformations"]
    assert ct[0]["scale"] == [1.5, 1.0, 2.0, 1.0, 1.0]
    assert ct[1]["translation"] == [0.0, 0.0, 0.5, 0.375, 0.375]
    for i, lv in enumerate(pyr.levels):
        arr = g[str(i)]
        assert arr.shards is not None and arr.chunks[:2] == (1, 1)
        np.testing.assert_array_equal(arr[...], lv.data)


def test_single_image_and_overwrite(tmp_path):
    a = blob((30, 20), "uint8")
    out = tmp_path / "one.ome.zarr"
    save(from_array(a, scale=(0.5, 0.5)), out, version="0.4")
    m = zarr.open_group(str(out), mode="r").attrs["multiscales"][0]
    assert len(m["datasets"]) == 1 and "type" not in m
    with pytest.raises(FileExistsError):
        save(from_array(a), out)
    save(from_array(a + 1), out, version="0.5", overwrite=True)
    np.testing.assert_array_equal(vc.open(str(out))[...], a + 1)
    assert not (out / ".zattrs").exists()
    other = tmp_path / "notzarr"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        save(from_array(a), other, overwrite=True)
    assert (other / "keep.txt").exists()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_models_validates(tmp_path, version):
    pytest.importorskip("ome_zarr_models")
    from ome_zarr_models import v04, v05
    models = v05 if version == "0.5" else v04
    img = from_array(blob(), scale=(2.0, 0.5, 0.5), units=("micrometer",) * 3)
    out = tmp_path / f"v{version}.ome.zarr"
    save(build_pyramid(img, factors=[2, 4], method="nearest"), out, version=version, chunks=16)
    model = models.Image.from_zarr(zarr.open_group(str(out), mode="r"))
    attrs = model.attributes.ome if version == "0.5" else model.attributes
    assert len(attrs.multiscales[0].datasets) == 3
    # the validator does check: a scale of the wrong length is refused
    key = "zarr.json" if version == "0.5" else ".zattrs"
    doc = json.loads((out / key).read_text())
    ms = doc["attributes"]["ome"]["multiscales"] if version == "0.5" else doc["multiscales"]
    ms[0]["datasets"][1]["coordinateTransformations"][0]["scale"] = [1.0, 1.0]
    (out / key).write_text(json.dumps(doc))
    with pytest.raises(ValueError):  # pydantic.ValidationError is a ValueError
        models.Image.from_zarr(zarr.open_group(str(out), mode="r"))


def test_build_pyramid_int_and_dict_factors():
    img = from_array(blob((12, 40, 36)))
    pyr = build_pyramid(img, factors=[2, 4, 8])
    assert [lv.shape for lv in pyr.levels] == [(12, 40, 36), (6, 20, 18), (3, 10, 9), (2, 5, 5)]
    assert [lv.factors for lv in pyr.levels] == [(1, 1, 1), (2, 2, 2), (4, 4, 4), (8, 8, 8)]
    assert pyr.method == "mean" and pyr.levels[0].data is img.data
    # each level from the previous: level 2 == downsample(level 1, 2)
    np.testing.assert_array_equal(pyr.levels[2].data, vc.downsample(pyr.levels[1].data, 2, "mean"))
    pyr = build_pyramid(img, factors=[{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}], method="max")
    assert [lv.shape for lv in pyr.levels] == [(12, 40, 36), (12, 20, 18), (6, 10, 9)]
    np.testing.assert_array_equal(pyr.levels[1].data, vc.downsample(img.data, (1, 2, 2), "max"))


def test_build_pyramid_auto():
    iso = build_pyramid(from_array(np.zeros((100, 200, 256), "uint8")), factors="auto")
    assert [lv.shape for lv in iso.levels] == [(100, 200, 256), (50, 100, 128), (25, 50, 64)]
    small = build_pyramid(from_array(np.zeros((10, 64, 64), "uint8")), factors="auto")
    assert len(small.levels) == 1
    aniso = build_pyramid(from_array(np.zeros((16, 512, 512), "uint8"), scale=(4.0, 1.0, 1.0)),
                          factors="auto")
    assert [lv.factors for lv in aniso.levels] == [(1, 1, 1), (1, 2, 2), (1, 4, 4), (2, 8, 8)]
    assert [lv.shape for lv in aniso.levels] == [(16, 512, 512), (16, 256, 256), (16, 128, 128), (8, 64, 64)]
    assert aniso.levels[2].scale == (4.0, 4.0, 4.0)
    # time/channel axes are never reduced
    tc = build_pyramid(from_array(np.zeros((2, 3, 8, 130, 130), "uint8")), factors="auto")
    assert [lv.shape for lv in tc.levels] == [(2, 3, 8, 130, 130), (2, 3, 4, 65, 65), (2, 3, 2, 33, 33)]


def test_mode_keeps_label_values():
    rng = np.random.default_rng(1)
    labels = rng.choice(np.array([0, 3, 17, 250], dtype="uint32"), size=(16, 30, 30))
    pyr = build_pyramid(from_array(labels), factors=[2, 4, 8], method="mode")
    for lv in pyr.levels[1:]:
        assert set(np.unique(lv.data)) <= {0, 3, 17, 250}
        assert lv.data.dtype == labels.dtype


def test_bad_input(tmp_path):
    a = blob((8, 16, 16))
    img = from_array(a)
    assert issubclass(vc.InvalidArgumentError, ValueError)
    with pytest.raises(ValueError, match="method"):
        build_pyramid(img, factors=[2], method="median")
    for bad in ([2, 3], [4, 2], [2, 2], [1], [0], [{"z": 2}, {"z": 1}], "half", [2.5], [True]):
        with pytest.raises(ValueError):
            build_pyramid(img, factors=bad)
    tc = from_array(np.zeros((2, 8, 16, 16), "uint8"))
    with pytest.raises(ValueError, match="time/channel"):
        build_pyramid(tc, factors=[{"c": 2}])
    with pytest.raises(ValueError, match="unknown axes"):
        build_pyramid(img, factors=[{"w": 2}])
    with pytest.raises(ValueError, match="scale"):
        from_array(a, scale=(1.0, 1.0))
    with pytest.raises(ValueError, match="scale"):
        from_array(a, scale=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="translation"):
        from_array(a, translation=(0.0,) * 4)
    with pytest.raises(ValueError, match="dims"):
        from_array(a, dims=("y", "x"))
    with pytest.raises(ValueError, match="ordered"):
        from_array(np.zeros((2, 4, 4)), dims=("y", "x", "t"))
    with pytest.raises(ValueError, match="unique"):
        from_array(a, dims=("y", "y", "x"))
    with pytest.raises(ValueError, match="unit"):
        from_array(a, units=("parsecs", None, None))
    with pytest.raises(ValueError):
        from_array(np.zeros(5))
    with pytest.raises(ValueError, match="version"):
        save(img, tmp_path / "v.zarr", version="0.3")
    with pytest.raises(ValueError, match="shards"):
        save(img, tmp_path / "s.zarr", version="0.4", shards=128)
    with pytest.raises(ValueError, match="multiples"):
        save(img, tmp_path / "m.zarr", chunks=16, shards=24)
