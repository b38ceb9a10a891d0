"""s3:// reads and writes against an S3 endpoint on 127.0.0.1 (moto's server mode): OME-Zarr
saves, Zarr arrays, NIfTI files and pairs, the CLI, and refusals; every object read back equals
the local copy (and nibabel reads the uploaded NIfTI files)."""

import os

import nibabel as nib
import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")



def volume(shape=(24, 40, 36), seed=0):
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(np.uint16)


def test_save_a_pyramid_to_s3_and_read_it_back(s3):
    opts, fs = s3
    a = volume()
    out = vc.save(vc.build_pyramid(vc.from_array(a, scale=(2.0, 1.0, 1.0)), [2]), "s3://bkt/p.ome.zarr",
                  chunks=16, storage_options=opts)
    assert out == "s3://bkt/p.ome.zarr"
    assert sorted(fs.ls("bkt/p.ome.zarr")) == ["bkt/p.ome.zarr/0", "bkt/p.ome.zarr/1", "bkt/p.ome.zarr/zarr.json"]
    img = vc.open("s3://bkt/p.ome.zarr", storage_options=opts)
    np.testing.assert_array_equal(img.read(), a)
    np.testing.assert_array_equal(img.read(level=1), vc.downsample(a, 2, "mean"))
    assert img.scale == (2.0, 1.0, 1.0)
    with pytest.raises(FileExistsError):
        vc.save(vc.from_array(a), "s3://bkt/p.ome.zarr", storage_options=opts)
    vc.save(vc.from_array(a[:8]), "s3://bkt/p.ome.zarr", overwrite=True, storage_options=opts)
    again = vc.open("s3://bkt/p.ome.zarr", storage_options=opts)
    assert len(again.levels) == 1
    np.testing.assert_array_equal(again.read(), a[:8])


def test_create_array_on_s3_writes_and_reads(s3):
    opts, _ = s3
    a = volume(seed=1)
    arr = vc.create_array("s3://bkt/a.zarr", a.shape, a.dtype, chunks=(8, 16, 16), shards=(8, 32, 32),
                          storage_options=opts)
    assert arr.source == "s3://bkt/a.zarr"
    arr.write(a)
    arr.write(a[:8, :16, :16] + 1, (0, 0, 0), allow_unaligned=True)  # a partial shard, merged
    want = a.copy()
    want[:8, :16, :16] += 1
    np.testing.assert_array_equal(vc.open("s3://bkt/a.zarr", storage_options=opts).read(), want)
    with pytest.raises(FileExistsError):
        vc.create_array("s3://bkt/a.zarr", a.shape, a.dtype, storage_options=opts)


@pytest.mark.parametrize("name", ["n.nii.gz", "n.nii", "pair.hdr"])
def test_nifti_to_s3_and_back(s3, tmp_path, name):
    opts, fs = s3
    a = volume(seed=2).astype(np.int16)
    aff = np.diag([0.5, 0.7, 1.2, 1.0])
    url = f"s3://bkt/nifti/{name}"
    assert vc.save(vc.NiftiImage(a, aff), url, storage_options=opts) == url
    fs.get(f"bkt/nifti/{name}", str(tmp_path / name))
    if name.endswith(".hdr"):
        fs.get("bkt/nifti/pair.img", str(tmp_path / "pair.img"))
    ref = nib.load(str(tmp_path / name))  # nibabel reads what was uploaded
    np.testing.assert_array_equal(np.asanyarray(ref.dataobj), a)
    np.testing.assert_allclose(ref.affine, aff)
    img = vc.open(url, storage_options=opts)
    np.testing.assert_array_equal(img.read(), a)
    np.testing.assert_array_equal(img.read((slice(None), slice(None), 5)), a[:, :, 5])
    with pytest.raises(FileExistsError):
        vc.save(vc.NiftiImage(a, aff), url, storage_options=opts)


def test_an_acquisition_streams_to_s3_with_an_open_ended_time_axis(s3):
    """create() to a URL: planes as they come, a time axis that grows, valid after every time
    point (read back through a fresh handle while the acquisition goes on)."""
    opts, _ = s3
    w = vc.create("s3://bkt/acq.ome.zarr", (None, 2, 8, 32, 32), "u2", chunks=16, storage_options=opts)
    want = np.zeros((3, 2, 8, 32, 32), np.uint16)
    for t in range(3):
        for c in range(2):
            for z in range(8):
                plane = np.full((32, 32), 100 * t + 10 * c + z, np.uint16)
                w.write_plane(plane, t=t, c=c, z=z)
                want[t, c, z] = plane
        seen = vc.open("s3://bkt/acq.ome.zarr", storage_options=opts)
        assert seen.shape[0] == t + 1
        np.testing.assert_array_equal(seen.read()[t], want[t])  # a completed time point is there
    w.close()
    img = vc.open("s3://bkt/acq.ome.zarr", storage_options=opts)
    assert img.shape == (3, 2, 8, 32, 32)
    np.testing.assert_array_equal(img.read(), want)


class _FailingSource:
    """An image whose values cannot be read: a save of it fails before anything is written."""

    shape, dtype, ndim = (4, 4, 4), np.dtype(np.int16), 3

    def __array__(self, dtype=None, copy=None):
        raise OSError("the source went away")


def test_a_failed_save_leaves_the_object_that_was_there(s3):
    opts, fs = s3
    a = volume((6, 5, 4), seed=3).astype(np.int16)
    url = "s3://bkt/keep/k.nii.gz"
    vc.save(vc.NiftiImage(a, np.eye(4)), url, storage_options=opts)
    before = fs.cat_file("bkt/keep/k.nii.gz")
    with pytest.raises(OSError, match="went away"):
        vc.save(_FailingSource(), url, overwrite=True, storage_options=opts)
    assert fs.cat_file("bkt/keep/k.nii.gz") == before
    np.testing.assert_array_equal(vc.open(url, storage_options=opts).read(), a)


def test_the_cli_converts_to_and_describes_s3(s3, tmp_path, capsys):
    opts, _ = s3
    a = volume(seed=4).astype(np.int16)
    nib.save(nib.Nifti1Image(a, np.eye(4)), str(tmp_path / "c.nii.gz"))
    so = ["--storage-options", __import__("json").dumps(opts)]
    assert main(["convert", str(tmp_path / "c.nii.gz"), "s3://bkt/c.ome.zarr", "--quiet", *so]) == 0
    assert "s3://bkt/c.ome.zarr" in capsys.readouterr().out
    np.testing.assert_array_equal(vc.open("s3://bkt/c.ome.zarr", storage_options=opts).read(), a.T)
    assert main(["info", "s3://bkt/c.ome.zarr", *so]) == 0
    out = capsys.readouterr().out
    assert "s3://bkt/c.ome.zarr" in out and "uint16" not in out and "int16" in out
    dd = vc.DataDefinition("s3://bkt/c.ome.zarr", storage_options=opts)
    assert dd.arrays[0].shape(0)[1:] == a.shape
    with pytest.raises(SystemExit, match="JSON"):
        main(["info", "s3://bkt/c.ome.zarr", "--storage-options", "not json"])


def test_writers_refuse_what_they_cannot_write(s3, tmp_path):
    opts, _ = s3
    with pytest.raises(vc.StoreError, match="failed to write"):  # a bucket that is not there
        vc.save(vc.from_array(np.zeros((2, 2), np.uint8)), "s3://nobucket/x.ome.zarr", storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="not a single file"):
        vc.create("s3://bkt/acq.nii", (2, 8, 8), "u2", storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="storage_options= is for URLs"):
        vc.save(vc.from_array(np.zeros((2, 2), np.uint8)), tmp_path / "x.ome.zarr", storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="not a single file"):
        vc.create_array("s3://bkt/x.nii", (2, 2), "u1", storage_options=opts)
    assert not os.path.exists("s3:") and not os.path.exists(tmp_path / "s3:")  # never a local "s3:" tree
