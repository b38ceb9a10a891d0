"""`voxcore view`: three orthogonal slices in RAS+ with labelled sides, at physical aspect."""

import subprocess
import sys

import numpy as np
import pytest
import voxcore as vc
from voxcore import ortho

nib = pytest.importorskip("nibabel")


def test_planes_are_ras_whatever_the_file_order(tmp_path):
    # World right (+x) is bright. The file stores x reversed (LAS) and y/z swapped.
    shape = (10, 12, 14)  # file axes i, j, k
    aff = np.array([[-2.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 3.0, 0, 0], [0, 0, 0, 1]])  # i->-x, j->z, k->y
    data = np.zeros(shape, np.int16)
    data[:5] = 100  # low i = high x = right
    nib.save(nib.Nifti1Image(data, aff), str(tmp_path / "las.nii"))
    planes = ortho._planes(vc.open(tmp_path / "las.nii"), 0, None)
    (name, axial, (w, h), labels) = planes[0]
    assert name == "axial" and labels == ("L", "R", "P", "A")
    assert axial.shape == (14, 10)  # rows: y (A, from file k), columns: x (R, from file i)
    assert (w, h) == (10 * 2.0, 14 * 1.0)  # physical extents: aspect follows voxel size
    assert axial[:, -1].min() == 100 and axial[:, 0].max() == 0  # right side bright
    coronal, sagittal = planes[1], planes[2]
    assert coronal[3] == ("L", "R", "I", "S") and sagittal[3] == ("P", "A", "I", "S")
    assert coronal[2] == (20.0, 12 * 3.0)


def test_cli_writes_pngs_for_nifti_and_ome_levels(tmp_path):
    pytest.importorskip("matplotlib")
    a = np.random.default_rng(0).integers(0, 1000, (16, 20, 24)).astype(np.uint16)
    nib.save(nib.Nifti1Image(a, np.diag([1.0, 1.0, 2.5, 1.0])), str(tmp_path / "a.nii.gz"))
    out = tmp_path / "a.png"
    r = subprocess.run([sys.executable, "-m", "voxcore.cli", "view", str(tmp_path / "a.nii.gz"), "-o", str(out),
                        "--at", "3,4,5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    vc.save(vc.build_pyramid(vc.from_array(a.T.copy(), scale=(2.5, 1.0, 1.0)), [2]), tmp_path / "a.ome.zarr")
    assert ortho.ortho(tmp_path / "a.ome.zarr", tmp_path / "b.png", level=1).endswith("b.png")
    with pytest.raises(vc.InvalidArgumentError, match="outside the volume"):
        ortho.ortho(tmp_path / "a.nii.gz", tmp_path / "c.png", at=(0, 0, 99))
    with pytest.raises(vc.InvalidArgumentError, match="one level"):
        ortho.ortho(tmp_path / "a.nii.gz", tmp_path / "c.png", level=1)
