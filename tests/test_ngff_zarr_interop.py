"""ngff-zarr interop: vc.from_array(NgffImage) keeps its dims, scale, translation and units and
saves like any image; img.to_ngff() hands an image to ngff-zarr's pipelines with equal values."""

import numpy as np
import pytest
import voxcore as vc

nz = pytest.importorskip("ngff_zarr")


def test_from_an_ngff_image_and_saved(tmp_path):
    a = np.random.default_rng(0).integers(0, 999, (2, 8, 16, 24)).astype(np.uint16)
    src = nz.to_ngff_image(a, dims=["c", "z", "y", "x"], scale={"z": 2.0, "y": 0.5, "x": 0.5},
                           translation={"z": 10.0, "y": 0.0, "x": 3.0}, name="cells",
                           axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    img = vc.from_array(src)
    assert img.dims == ("c", "z", "y", "x") and img.scale == (1.0, 2.0, 0.5, 0.5)
    assert img.translation == (0.0, 10.0, 0.0, 3.0) and img.units[1:] == ("micrometer",) * 3
    assert img.name == "cells"
    vc.save(vc.build_pyramid(img, [{"y": 2, "x": 2}]), tmp_path / "a.ome.zarr")
    back = vc.open(tmp_path / "a.ome.zarr")
    np.testing.assert_array_equal(back.read(), a)
    assert back.scale == img.scale and back.translation == img.translation


def test_to_ngff_feeds_ngff_zarrs_own_writer(tmp_path):
    a = np.random.default_rng(1).integers(0, 999, (8, 32, 32)).astype(np.uint16)
    vc.save(vc.from_array(a, scale=(2.0, 0.5, 0.5), translation=(1.0, 0, 0),
                          units=("micrometer",) * 3), tmp_path / "v.ome.zarr")
    ngff = vc.open(tmp_path / "v.ome.zarr").to_ngff()
    assert ngff.dims == ["z", "y", "x"] and ngff.scale == {"z": 2.0, "y": 0.5, "x": 0.5}
    assert ngff.translation["z"] == 1.0 and ngff.axes_units == {"z": "micrometer", "y": "micrometer",
                                                                 "x": "micrometer"}
    np.testing.assert_array_equal(np.asarray(ngff.data), a)
    ms = nz.to_multiscales(ngff, scale_factors=[2])
    nz.to_ngff_zarr(str(tmp_path / "n.ome.zarr"), ms)
    np.testing.assert_array_equal(vc.open(tmp_path / "n.ome.zarr").read(), a)
