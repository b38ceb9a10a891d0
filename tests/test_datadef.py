"""DataDefinition (the renderer's model): arrays from NIfTI and OME-Zarr, fetch, settings."""

import json

import numpy as np
import pytest
import voxcore as vc

nib = pytest.importorskip("nibabel")


def test_nifti_density_array_and_fetch(tmp_path):
    a = np.random.default_rng(0).integers(0, 1000, (20, 16, 12)).astype(np.int16)  # x, y, z
    aff = np.array([[0, -1.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])  # y->-R, x->A
    nib.save(nib.Nifti1Image(a, aff), str(tmp_path / "ct.nii.gz"))
    dd = vc.DataDefinition(tmp_path / "ct.nii.gz")
    arr = dd.arrays[0]
    assert arr.dimension_order == "DXYZ"
    assert arr.shape(0) == (1, 20, 16, 12)
    assert arr.element_sizes == [1.0, 2.0, 1.5, 1.0]
    assert arr.permute_axes == [0, 2, 1, 3]  # renderer X (R) is data axis y, Y (A) is data x
    assert arr.flip_axes == [False, True, False, False]  # y points to L: flipped to R
    # permute then flip (in dimension_order terms) gives nibabel's RAS array
    full = dd.fetch(arr, 0, offset=(0, 0, 0, 0), size=arr.shape(0)).transpose(3, 2, 1, 0)  # D, X, Y, Z
    ras = full.transpose(arr.permute_axes)
    ras = np.flip(ras, [i for i, f in enumerate(arr.flip_axes) if f])
    canon = nib.as_closest_canonical(nib.load(str(tmp_path / "ct.nii.gz")))
    np.testing.assert_array_equal(ras[0], np.asanyarray(canon.dataobj))
    brick = dd.fetch(arr, 0, offset=(0, 3, 2, 1), size=(1, 5, 4, 6))
    assert brick.shape == (6, 4, 5, 1) and brick.flags.c_contiguous
    np.testing.assert_array_equal(brick[..., 0], a[3:8, 2:6, 1:7].T)
    with pytest.raises(vc.InvalidArgumentError, match="outside"):
        dd.fetch(0, 0, offset=(0, 18, 0, 0), size=(1, 5, 1, 1))
    with pytest.raises(vc.InvalidArgumentError, match="level out of range"):
        dd.fetch(0, 1, offset=(0, 0, 0, 0), size=(1, 1, 1, 1))


def test_ome_mask_levels_and_numpy_arrays(tmp_path):
    zyx = np.random.default_rng(1).integers(0, 4, (16, 24, 32)).astype(np.uint8)
    pyr = vc.build_pyramid(vc.from_array(zyx, scale=(2.0, 1.0, 0.5)), [2, 4], "mode")
    vc.save(pyr, tmp_path / "seg.ome.zarr", chunks=8)
    dd = vc.DataDefinition()
    arr = dd.append(tmp_path / "seg.ome.zarr", "MXYZ")
    assert len(arr.levels) == 3 and arr.shape(2) == (1, 8, 6, 4)
    assert arr.element_sizes == [1.0, 0.5, 1.0, 2.0]
    np.testing.assert_array_equal(dd.fetch(arr, 1, (0, 2, 1, 0), (1, 8, 4, 3))[..., 0],
                                  pyr.levels[1].data[0:3, 1:5, 2:10])
    direct = vc.Array([zyx[..., None], pyr.levels[1].data[..., None]], "DXYZ", element_sizes=[1, 0.5, 1, 2])
    dd.arrays.append(direct)
    np.testing.assert_array_equal(dd.fetch(direct, 0, (0, 0, 0, 0), (1, 32, 24, 16))[..., 0], zyx)


def test_settings_round_trip_and_bad_input(tmp_path):
    dd = vc.DataDefinition()
    dd.settings = {"Camera": {"eye": [0, 0, -1]}, "TransferFunction": {"ranges": [0.1, 0.9]}}
    dd.save_settings(tmp_path / "s.json")
    other = vc.DataDefinition()
    assert other.load_settings(tmp_path / "s.json") == dd.settings
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(vc.InvalidArgumentError, match="not JSON"):
        other.load_settings(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(vc.InvalidArgumentError, match="JSON object"):
        other.load_settings(tmp_path / "list.json")
    for order in ("XYZ", "DDXY", "DXYQ", "XDYZ"):
        with pytest.raises(vc.InvalidArgumentError, match="dimension_order"):
            vc.Array([], order)
    with pytest.raises(vc.InvalidArgumentError, match="dimensions"):
        vc.Array([np.zeros((2, 2))], "DXYZ")
    with pytest.raises(vc.InvalidArgumentError, match="permutation"):
        vc.Array([np.zeros((2, 2, 2, 1))], "DXYZ", permute_axes=[0, 1, 1, 3])
    with pytest.raises(vc.InvalidArgumentError, match="element"):
        vc.Array([np.zeros((2, 2, 2, 1))], "DXYZ", element_sizes=[1, 1, 0, 1])
