"""OME-Zarr multiscales without axes (versions 0.1-0.3, and tifffile's zarr stores) open with
dims inferred from the rank and an InferredMetadataWarning; 0.3's axis-name lists open as they
say; bad legacy metadata gets named errors."""

import json
import re
import warnings

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")


def _legacy(path, version, levels, axes=None):
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    for i, a in enumerate(levels):
        root.create_array(str(i), shape=a.shape, dtype=a.dtype, chunks=a.shape)[...] = a
    ms = {"version": version, "datasets": [{"path": str(i)} for i in range(len(levels))]}
    if axes is not None:
        ms["axes"] = axes
    (path / ".zattrs").write_text(json.dumps({"multiscales": [ms]}))


@pytest.mark.parametrize("version", ["0.1", "0.2"])
@pytest.mark.parametrize("shape, dims", [((16, 24), ("y", "x")), ((2, 8, 16, 24), ("c", "z", "y", "x")),
                                         ((1, 2, 8, 16, 24), ("t", "c", "z", "y", "x"))])
def test_no_axes_infers_dims_and_warns(tmp_path, version, shape, dims):
    a = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    half = a[..., ::2, ::2].copy()
    path = tmp_path / "old.zarr"
    _legacy(path, version, [a, half])
    with pytest.warns(vc.InferredMetadataWarning, match=re.escape(f"dims inferred from its rank as {dims}")):
        img = vc.open(path)
    assert img.dims == dims and img.scale == (1.0,) * len(shape) and len(img.levels) == 2
    np.testing.assert_array_equal(img.read(), a)
    np.testing.assert_array_equal(img.read(level=1), half)


def test_version_03_axis_names_open_without_a_warning(tmp_path):
    a = np.ones((3, 16, 24), np.uint8)
    path = tmp_path / "v03.zarr"
    _legacy(path, "0.3", [a], axes=["c", "y", "x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = vc.open(path)
    assert img.dims == ("c", "y", "x") and img.scale == (1.0, 1.0, 1.0)


def test_a_tifffile_store_opens_with_inferred_dims(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    data = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512)
    path = tmp_path / "t.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(data, tile=(256, 256), subifds=1)
        tw.write(data[::2, ::2], tile=(256, 256), subfiletype=1)
    with tifffile.TiffFile(path) as tf:
        store = tf.aszarr()
        img = vc.open(store)  # the slide opener takes tifffile's own stores
        np.testing.assert_array_equal(np.asarray(img.read()), data)


@pytest.mark.parametrize("edit, error, words", [
    (lambda ms: ms.update(version="0.0"), vc.UnsupportedError, "not supported"),
    (lambda ms: ms["datasets"][0].update(path="../x"), vc.UnsafeMetadataPathError, "leaves the group"),
    (lambda ms: ms["datasets"][0].update(path=3), vc.InvalidMetadataError, "must be a string"),
    (lambda ms: ms.update(datasets=[]), vc.InvalidMetadataError, "datasets"),
])
def test_bad_legacy_metadata(tmp_path, edit, error, words):
    path = tmp_path / "old.zarr"
    _legacy(path, "0.1", [np.zeros((8, 8), np.uint8)])
    doc = json.loads((path / ".zattrs").read_text())
    edit(doc["multiscales"][0])
    (path / ".zattrs").write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vc.InferredMetadataWarning)
        with pytest.raises(error, match=words):
            vc.open(path)
