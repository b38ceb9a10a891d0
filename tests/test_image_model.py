"""The image model: every kind of image answers the same questions the same way.

Each kind (a Zarr array, an OME-Zarr image, a NIfTI file, a reoriented NIfTI image in memory, a
MemoryImage) is made from the same values; the model's members (shape, dtype, dims, scale,
translation, units, affine, levels, read with level/out/dtype/pad, view, to_dask) must give those
values back, and the layers above (save, build_pyramid, DataDefinition) take every kind.
"""
from __future__ import annotations

import numpy as np
import pytest
import voxcore as vc

nib = pytest.importorskip("nibabel")

VOL = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4) * 3 - 100  # numpy axes of the image


def _zarr(tmp_path):
    img = vc.create_array(tmp_path / "a.zarr", VOL.shape, VOL.dtype, chunks=(4, 4, 4), dims=("z", "y", "x"))
    img.write(VOL, allow_unaligned=True)
    return vc.open(tmp_path / "a.zarr")


def _ome(tmp_path):
    vc.save(vc.build_pyramid(vc.from_array(VOL, dims=("z", "y", "x"), scale=(2.0, 1.0, 0.5)), [2]),
            tmp_path / "a.ome.zarr", chunks=4)
    return vc.open(tmp_path / "a.ome.zarr")


def _nifti(tmp_path, suffix=".nii"):
    path = tmp_path / f"a{suffix}"
    nib.save(nib.Nifti1Image(VOL, np.diag([0.5, 1.0, 2.0, 1.0])), str(path))
    return vc.open(path)


KINDS = {
    "zarr": _zarr,
    "ome-zarr": _ome,
    "nifti": _nifti,
    "nifti-gz": lambda p: _nifti(p, ".nii.gz"),
    "nifti-in-memory": lambda p: vc.reorient(_nifti(p), "RAS"),
    "memory": lambda p: vc.from_array(VOL, dims=("z", "y", "x")),
}


@pytest.fixture(params=list(KINDS))
def image(request, tmp_path):
    return KINDS[request.param](tmp_path)


def test_every_kind_is_an_image_model(image):
    assert isinstance(image, vc.ImageModel)
    assert image.shape == VOL.shape and image.dtype == VOL.dtype and image.ndim == 3
    assert len(image.dims) == 3 and set(image.dims) == {"x", "y", "z"}
    assert len(image.scale) == len(image.translation) == len(image.units) == 3
    assert image.affine.shape == (4, 4)
    levels = image.levels
    assert levels[0].shape == VOL.shape and levels[0].image.shape == VOL.shape
    assert len(levels[0].scale) == 3


def test_read_region_out_dtype_and_pad(image):
    np.testing.assert_array_equal(image.read(), VOL)
    np.testing.assert_array_equal(image[1:4, ::2, -1], VOL[1:4, ::2, -1])
    out = np.full((2, 5, 4), 7, VOL.dtype)
    assert image.read((slice(2, 4),), out=out) is out
    np.testing.assert_array_equal(out, VOL[2:4])
    np.testing.assert_array_equal(image.read((slice(0, 2),), dtype=np.float32), VOL[:2].astype(np.float32))
    padded = image.read((slice(-1, 2), slice(0, 5), slice(3, 6)), pad=True)
    expected = np.zeros((3, 5, 3), VOL.dtype)
    expected[1:, :, :1] = VOL[:2, :, 3:]
    np.testing.assert_array_equal(padded, expected)
    with pytest.raises(vc.InvalidArgumentError, match="level out of range|one level"):
        image.read(level=len(image.levels))


def test_view_and_dask_of_every_kind(image):
    box = image.view().get_view(relative_offset=(1, 1, 0), size=(3, 2, 4)).read()
    np.testing.assert_array_equal(box, VOL[1:4, 1:3, 0:4])
    np.testing.assert_array_equal(image.to_dask().compute(scheduler="threads"), VOL)


def test_save_and_pyramid_take_every_kind(image, tmp_path):
    out = vc.save(vc.build_pyramid(image, [2], "nearest"), tmp_path / "out.ome.zarr")
    back = vc.open(out)
    assert back.levels[1].shape == tuple(-(-n // 2) for n in back.shape)


def test_the_registry_opens_each_kind_with_files(tmp_path):
    assert type(_zarr(tmp_path)).__name__ == "Image"
    assert type(_nifti(tmp_path)).__name__ == "NiftiImage"
    with pytest.raises(FileNotFoundError, match="no such directory"):
        vc.open(tmp_path / "missing.zarr")
