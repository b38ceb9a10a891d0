"""update_header(): the header harmonised with the image exactly as nibabel's update_header
does, for a file opened by voxcore and for an image made from data + affine."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import voxcore as vc

AFFINE = np.array([[0, -2.0, 0, 30], [1.5, 0, 0, -4], [0, 0, 3.0, 7], [0, 0, 0, 1]])
OTHER = np.diag([5.0, 5.0, 5.0, 1.0])


def _fields(h):
    return (h.get_sform(), int(h["sform_code"]), h.get_qform(), int(h["qform_code"]), h.get_data_shape())


def _same(a, b):
    for x, y in zip(_fields(a), _fields(b)):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), atol=1e-5)


@pytest.mark.parametrize("edit", ["sform", "qform", "none"])
def test_update_header_matches_nibabel(tmp_path, edit):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = tmp_path / "a.nii.gz"
    nib.Nifti1Image(data, AFFINE).to_filename(path)
    mine, theirs = vc.open(path), nib.load(path)
    for img in (mine, theirs):
        if edit == "sform":
            img.header.set_sform(OTHER, code=1)
        elif edit == "qform":
            img.header.set_qform(OTHER, code=1)
    mine.update_header()
    theirs.update_header()
    _same(mine.header, theirs.header)
    np.testing.assert_allclose(mine.affine, theirs.affine)
    out = tmp_path / "b.nii"
    vc.save(mine, out)  # what a save writes is the harmonised header
    _same(nib.load(out).header, theirs.header)


def test_update_header_on_an_image_made_from_data():
    data = np.zeros((3, 4, 5), np.float32)
    mine = vc.NiftiImage(data, AFFINE)
    theirs = nib.Nifti1Image(data, AFFINE)
    mine.header.set_sform(OTHER, code=4)
    theirs.header.set_sform(OTHER, code=4)
    mine.update_header()
    theirs.update_header()
    _same(mine.header, theirs.header)
