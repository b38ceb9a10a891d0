"""OME-Zarr written by voxcore.save, read back by the tools users open it with.

Every pyramid voxcore writes (OME-Zarr 0.4 and 0.5; mean, nearest and mode levels; a z,y,x image
with an odd shape, voxel size, origin and units, and a c,z,y,x one) is read by ome-zarr-py
(parse_url + Reader), ngff-zarr (from_ngff_zarr) and zarr-python (open_group). Each reader must
see voxcore's levels voxel for voxel, and the axes, units, scale and translation voxcore wrote.
"""
from __future__ import annotations

import numpy as np
import pytest
import voxcore as vc

UM = "micrometer"
IMAGES = {
    # odd edges: partial windows at every level and partial edge chunks
    "zyx-37x50x61": dict(shape=(37, 50, 61), dims=("z", "y", "x"), scale=(2.0, 0.5, 0.25),
                         translation=(10.0, -1.0, 3.0), units=(UM, UM, UM), name="blob"),
    "czyx-2x20x33x41": dict(shape=(2, 20, 33, 41), dims=("c", "z", "y", "x"),
                            scale=(1.0, 3.0, 0.7, 0.7), translation=(0.0, 5.0, 1.0, -2.0),
                            units=(None, UM, UM, UM), name=None),
}
METHODS = ("mean", "nearest", "mode")
VERSIONS = ("0.4", "0.5")
FACTORS = [2, 4]


def _data(shape, method, make_volume) -> np.ndarray:
    if method == "mode":  # a label image: few values, in blobs
        return (make_volume(shape, "u2", seed=3) // 16384).astype(np.uint32)
    return make_volume(shape, "u2", seed=3)


@pytest.fixture(params=[(i, m, v) for i in IMAGES for m in METHODS for v in VERSIONS],
                ids=lambda p: "-".join(p))
def saved(request, tmp_path, make_volume):
    """(path, pyramid, version) of one pyramid saved by voxcore."""
    key, method, version = request.param
    spec = IMAGES[key]
    data = _data(spec["shape"], method, make_volume)
    img = vc.from_array(data, dims=spec["dims"], scale=spec["scale"],
                        translation=spec["translation"], units=spec["units"], name=spec["name"])
    pyr = vc.build_pyramid(img, factors=FACTORS, method=method)
    path = tmp_path / f"{key}-{method}-v{version}.ome.zarr"
    vc.save(pyr, path, version=version, chunks=16)
    return path, pyr, version


def _want_axes(pyr) -> list[dict]:
    out = []
    for d, u in zip(pyr.dims, pyr.image.units):
        ax = {"name": d, "type": "channel" if d == "c" else "space"}
        if u is not None:
            ax["unit"] = u
        out.append(ax)
    return out


def _equal(got, lv, what):
    got = np.asarray(got)
    assert got.dtype == lv.data.dtype and got.shape == lv.data.shape, (
        f"{what}: {got.dtype} {got.shape}, want {lv.data.dtype} {lv.data.shape}")
    assert np.array_equal(got, lv.data), f"{what}: {int((got != lv.data).sum())} voxels differ"


# ------------------------------------------------------------------------------ ome-zarr-py
def test_ome_zarr_py_reads(saved):
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    path, pyr, version = saved
    loc = parse_url(str(path), mode="r")
    assert loc is not None, "ome-zarr-py does not see a Zarr group"
    assert loc.version == version
    nodes = list(Reader(loc)())
    assert nodes, "ome-zarr-py found no image"
    node = nodes[0]
    assert any(isinstance(s, Multiscales) for s in node.specs)
    meta = node.metadata
    assert meta["axes"] == _want_axes(pyr)
    assert len(node.data) == len(pyr.levels)
    for i, (arr, ct, lv) in enumerate(zip(node.data, meta["coordinateTransformations"],
                                          pyr.levels)):
        assert ct == [{"type": "scale", "scale": list(lv.scale)},
                      {"type": "translation", "translation": list(lv.translation)}], f"level {i}"
        _equal(arr.compute(), lv, f"ome-zarr-py level {i}")


# ------------------------------------------------------------------------------ ngff-zarr
def test_ngff_zarr_reads(saved):
    pytest.importorskip("ngff_zarr")
    import ngff_zarr as nz

    path, pyr, _ = saved
    _check_ngff_zarr(nz.from_ngff_zarr(str(path)), pyr)


def test_ngff_zarr_reads_v04_blosc(tmp_path, make_volume):
    pytest.importorskip("ngff_zarr")
    import ngff_zarr as nz

    spec = IMAGES["zyx-37x50x61"]
    img = vc.from_array(_data(spec["shape"], "mean", make_volume), dims=spec["dims"],
                        scale=spec["scale"], translation=spec["translation"],
                        units=spec["units"], name=spec["name"])
    pyr = vc.build_pyramid(img, factors=FACTORS, method="mean")
    path = vc.save(pyr, tmp_path / "blosc.ome.zarr", version="0.4", chunks=16,
                   codec="blosc-lz4")
    _check_ngff_zarr(nz.from_ngff_zarr(path), pyr)


def _check_ngff_zarr(ms, pyr):
    meta = ms.metadata
    assert [(a.name, a.type, a.unit) for a in meta.axes] == [
        (d, "channel" if d == "c" else "space", u) for d, u in zip(pyr.dims, pyr.image.units)]
    assert len(ms.images) == len(pyr.levels)
    for i, (im, lv) in enumerate(zip(ms.images, pyr.levels)):
        assert im.dims == pyr.dims
        assert im.scale == dict(zip(pyr.dims, lv.scale)), f"level {i}"
        assert im.translation == dict(zip(pyr.dims, lv.translation)), f"level {i}"
        assert im.axes_units == dict(zip(pyr.dims, pyr.image.units)), f"level {i}"
        _equal(im.data.compute(), lv, f"ngff-zarr level {i}")


# ------------------------------------------------------------------------------ zarr-python
def test_zarr_python_reads(saved):
    zarr = pytest.importorskip("zarr")

    path, pyr, version = saved
    g = zarr.open_group(str(path), mode="r")
    attrs = g.attrs.asdict()
    if version == "0.5":
        assert g.metadata.zarr_format == 3 and attrs["ome"]["version"] == "0.5"
        (ms,) = attrs["ome"]["multiscales"]
    else:
        assert g.metadata.zarr_format == 2
        (ms,) = attrs["multiscales"]
        assert ms["version"] == "0.4"
    assert ms["axes"] == _want_axes(pyr)
    assert ms.get("name") == pyr.image.name
    assert len(ms["datasets"]) == len(pyr.levels)
    for i, (ds, lv) in enumerate(zip(ms["datasets"], pyr.levels)):
        assert ds["coordinateTransformations"] == [
            {"type": "scale", "scale": list(lv.scale)},
            {"type": "translation", "translation": list(lv.translation)}], f"level {i}"
        a = g[ds["path"]]
        if version == "0.5":
            assert a.metadata.dimension_names == pyr.dims
        else:
            assert a.metadata.dimension_separator == "/"
        _equal(a[...], lv, f"zarr-python level {i}")
