"""What nibabel users expect: vc.open(a nibabel image), vc.NiftiImage(data, affine) without a
nibabel object, in_memory, and with caching="fill" the same read-only array from every whole
read (nibabel's get_fdata contract); bad arguments refused by name."""

import nibabel as nib
import numpy as np
import pytest
import voxcore as vc

AFF = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -4], [0, 0, 1.0, 7], [0, 0, 0, 1]])


def test_open_a_nibabel_image_and_save_it(tmp_path):
    data = np.random.default_rng(0).integers(-300, 300, (6, 5, 4)).astype(np.int16)
    src = nib.Nifti1Image(data, AFF)
    src.header.set_slope_inter(0.5, 10.0)
    src.header["descrip"] = b"from nibabel"
    img = vc.open(src)
    assert img.shape == (6, 5, 4) and img.in_memory
    np.testing.assert_allclose(img.affine, AFF)
    np.testing.assert_array_equal(img.read(), data)  # the stored values
    np.testing.assert_allclose(img.read(dtype=np.float64), data * 0.5 + 10.0)
    vc.save(img, tmp_path / "out.nii.gz")
    back = nib.load(tmp_path / "out.nii.gz")
    np.testing.assert_allclose(back.get_fdata(), data * 0.5 + 10.0)
    np.testing.assert_allclose(back.affine, AFF)
    assert back.header["descrip"].tobytes().rstrip(b"\0") == b"from nibabel"


@pytest.mark.parametrize("dtype", ["u1", "i2", "f4", "f8"])
def test_a_nifti_image_from_data_and_affine(tmp_path, dtype):
    data = np.arange(4 * 5 * 6, dtype=dtype).reshape(4, 5, 6)
    img = vc.NiftiImage(data, AFF)
    assert isinstance(img, vc.NiftiImage) and img.shape == (4, 5, 6) and img.dtype == np.dtype(dtype)
    vc.save(img, tmp_path / "a.nii")
    back = nib.load(tmp_path / "a.nii")
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    np.testing.assert_allclose(back.affine, AFF)
    hdr = nib.Nifti1Header()
    hdr["descrip"] = b"kept"
    img = vc.NiftiImage(data, AFF, hdr)
    assert img.header["descrip"].tobytes().rstrip(b"\0") == b"kept"


@pytest.mark.parametrize("affine, data, words", [
    (np.eye(3), np.zeros((2, 2, 2)), "4x4"),
    (np.full((4, 4), np.nan), np.zeros((2, 2, 2)), "finite"),
    (np.eye(4), np.zeros((1,) * 8), "1 to 7"),
    (np.eye(4), np.zeros((2, 2), dtype=object), "cannot hold"),
])
def test_bad_data_or_affine(affine, data, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.NiftiImage(data, affine)


@pytest.mark.parametrize("gz", [False, True])
def test_fill_caching_returns_the_same_read_only_array(tmp_path, gz):
    data = np.random.default_rng(1).integers(0, 999, (8, 7, 6)).astype(np.int16)
    src = nib.Nifti1Image(data, np.eye(4))
    src.header.set_slope_inter(2.0, 1.0)
    path = tmp_path / ("a.nii.gz" if gz else "a.nii")
    nib.save(src, path)
    img = vc.open(path)
    assert not img.in_memory
    first = img.read()
    assert img.in_memory and img.read() is first and not first.flags.writeable
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1
    scaled = img.read(dtype=np.float64)
    assert img.read(dtype=np.float64) is scaled and not scaled.flags.writeable
    np.testing.assert_allclose(scaled, nib.load(path).get_fdata())
    copy = np.array(img.read())
    copy[0, 0, 0] = 5  # a copy on request is the user's
    assert int(img.read()[0, 0, 0]) == int(data[0, 0, 0])
    out = np.empty_like(first)
    assert img.read(out=out) is out and out.flags.writeable
    img.uncache()
    assert not img.in_memory and img.read() is not first
    np.testing.assert_array_equal(img.read(), data)
    plain = vc.open(path, caching="unchanged")
    assert plain.read() is not plain.read()


@pytest.mark.parametrize("key", [
    (slice(1, 5), slice(None), slice(2, 4)),
    (slice(None, None, 2), slice(1, None, 3), slice(None)),
    (slice(None, None, -1), slice(4, 0, -2), slice(None)),
    (Ellipsis, slice(0, 1)),
    (slice(2, 3), slice(None), slice(None), 1),
])
def test_slicer_matches_nibabel(tmp_path, key):
    data = np.random.default_rng(2).integers(0, 999, (8, 7, 6, 3)).astype(np.int16)
    src = nib.Nifti1Image(data, AFF)
    src.header.set_slope_inter(2.0, -1.0)
    nib.save(src, tmp_path / "a.nii.gz")
    want = nib.load(tmp_path / "a.nii.gz").slicer[key]
    got = vc.open(tmp_path / "a.nii.gz").slicer[key]
    assert got.shape == want.shape
    np.testing.assert_allclose(got.affine, want.affine)
    np.testing.assert_allclose(got.read(dtype=np.float64), want.get_fdata())
    vc.save(got, tmp_path / "s.nii")
    back = nib.load(tmp_path / "s.nii")
    np.testing.assert_allclose(back.affine, want.affine)
    np.testing.assert_allclose(back.get_fdata(), want.get_fdata())


@pytest.mark.parametrize("key, words", [((1, slice(None), slice(None)), "Scalar indices"),
                                        ((slice(3, 3),), "empty"), ((None,), "New axis")])
def test_slicer_refuses_what_nibabel_refuses(tmp_path, key, words):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), tmp_path / "a.nii")
    with pytest.raises(IndexError, match=words):
        vc.open(tmp_path / "a.nii").slicer[key]


@pytest.mark.parametrize("out", [np.int16, np.uint8, np.int32, np.float32])
def test_save_with_an_on_disk_dtype_chooses_scaling_as_nibabel(tmp_path, out):
    data = np.linspace(-3.5, 100.25, 8 * 7 * 6).reshape(8, 7, 6)
    data[0, 0, 0] = np.nan
    vc.save(vc.NiftiImage(data, AFF), tmp_path / "vx.nii", dtype=out)
    ref = nib.Nifti1Image(data, AFF)
    ref.set_data_dtype(out)
    nib.save(ref, tmp_path / "nb.nii")
    got, want = nib.load(tmp_path / "vx.nii"), nib.load(tmp_path / "nb.nii")
    assert got.get_data_dtype() == want.get_data_dtype() == np.dtype(out)
    assert (got.dataobj.slope, got.dataobj.inter) == pytest.approx((want.dataobj.slope, want.dataobj.inter))
    np.testing.assert_array_equal(np.asarray(got.dataobj.get_unscaled()), np.asarray(want.dataobj.get_unscaled()))
    np.testing.assert_allclose(got.affine, AFF)


def test_save_dtype_of_a_scaled_source_rescales_its_values(tmp_path):
    stored = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    src = nib.Nifti1Image(stored, np.eye(4))
    src.header.set_slope_inter(0.25, 100.0)
    nib.save(src, tmp_path / "s.nii")
    vc.save(vc.open(tmp_path / "s.nii"), tmp_path / "f.nii", dtype=np.float32)
    np.testing.assert_allclose(nib.load(tmp_path / "f.nii").get_fdata(), stored * 0.25 + 100.0, rtol=1e-6)


def test_bad_on_disk_dtypes(tmp_path):
    with pytest.raises(vc.InvalidArgumentError, match="cannot store"):
        vc.save(vc.NiftiImage(np.zeros((2, 2, 2), np.complex64), np.eye(4)), tmp_path / "c.nii", dtype=np.int16)
    with pytest.raises(vc.InvalidArgumentError, match="not a dtype"):
        vc.save(vc.NiftiImage(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "c.nii", dtype="nope")
    with pytest.raises(vc.InvalidArgumentError, match="on-disk type"):
        vc.save(np.zeros((4, 4), np.uint8), tmp_path / "c.ome.zarr", dtype=np.int16)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
