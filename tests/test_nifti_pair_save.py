"""save() to .hdr / .img (/.img.gz) writes the NIfTI-1 pair that nibabel reads (issue: it used
to write an OME-Zarr directory under that name)."""

import numpy as np
import pytest
import nibabel as nib
import voxcore as vc


@pytest.mark.parametrize("name, files", [
    ("a.hdr", ["a.hdr", "a.img"]), ("a.img", ["a.hdr", "a.img"]),
    ("a.img.gz", ["a.hdr.gz", "a.img.gz"]), ("A.HDR", ["A.hdr", "A.img"]),
])
def test_a_pair_is_written_for_nibabel(tmp_path, name, files):
    a = np.random.default_rng(0).integers(-300, 300, (7, 6, 5)).astype(np.int16)  # (z, y, x)
    got = vc.save(vc.from_array(a, dims=("z", "y", "x"), scale=(3.0, 1.0, 0.5), translation=(1, 2, 3)),
                  tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert all((tmp_path / f).is_file() for f in files)
    img = nib.load(got)
    assert isinstance(img, nib.Nifti1Pair) and not isinstance(img, nib.Nifti1Image)
    assert img.header["magic"] == b"ni1" and float(img.header["vox_offset"]) == 0
    np.testing.assert_array_equal(np.asarray(img.dataobj), a.T)
    np.testing.assert_allclose(img.affine, [[0.5, 0, 0, 3], [0, 1, 0, 2], [0, 0, 3, 1], [0, 0, 0, 1]])
    np.testing.assert_array_equal(np.asarray(vc.open(got).read()), a.T)


def test_a_nifti_source_keeps_its_forms_in_the_pair(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    aff = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -4], [0, 0, 1.0, 7], [0, 0, 0, 1]])
    src = nib.Nifti1Image(data, aff)
    src.set_qform(aff, code=1)
    src.set_sform(aff, code=4)
    nib.save(src, tmp_path / "src.nii")
    vc.save(vc.open(tmp_path / "src.nii"), tmp_path / "out.img")
    out = nib.load(tmp_path / "out.hdr")
    assert int(out.header["qform_code"]) == 1 and int(out.header["sform_code"]) == 4
    np.testing.assert_allclose(out.affine, aff)
    np.testing.assert_array_equal(np.asarray(out.dataobj), data)


def test_a_pair_is_not_overwritten_unless_asked(tmp_path):
    a = np.zeros((3, 3, 3), np.uint8)
    vc.save(a, tmp_path / "p.hdr")
    before = (tmp_path / "p.img").read_bytes()
    (tmp_path / "q.img").write_bytes(b"user data")  # only one file of the pair exists
    for name in ("p.hdr", "p.img", "q.hdr"):
        with pytest.raises(FileExistsError):
            vc.save(np.ones((3, 3, 3), np.uint8), tmp_path / name)
    assert (tmp_path / "p.img").read_bytes() == before and (tmp_path / "q.img").read_bytes() == b"user data"
    vc.save(np.ones((3, 3, 3), np.uint8), tmp_path / "p.img", overwrite=True)
    assert np.asarray(nib.load(tmp_path / "p.hdr").dataobj).sum() == 27
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
