"""The command line: `voxcore demo` end to end at a small size, `voxcore info` and `voxcore convert`."""

import subprocess
import sys

import numpy as np
import voxcore as vc
from voxcore import cli


def test_demo_checks_values_and_compares_with_zarr_python(tmp_path, capsys):
    rc = cli.main(["demo", "--size", "64", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("values OK") == 4  # NIfTI load, read, boxes, the streamed pyramid
    assert "NIfTI phantom (LAS" in out and "same as nibabel: yes" in out
    assert "pyramid: 4 mean levels" in out
    assert "zarr-python" in out and "equal" in out and "DIFFERENT" not in out
    img = vc.open(tmp_path / "demo.zarr")
    assert img.shape == (64, 64, 64) and img.dtype == np.uint16 and img.shards == (64, 64, 64)
    assert img.dims == ("z", "y", "x")


def test_info_describes_an_array(tmp_path):
    path = tmp_path / "a.zarr"
    vc.create_array(path, (30, 20), "int16", chunks=(16, 8), shards=(32, 16), codec="zstd",
                    dims=("y", "x"))
    res = subprocess.run([sys.executable, "-m", "voxcore.cli", "info", str(path)],
                         capture_output=True, text=True, check=True)
    assert "shape: (30, 20)" in res.stdout
    assert "chunks: (16, 8)  shards: (32, 16)" in res.stdout
    assert "sharding_indexed" in res.stdout and "zstd" in res.stdout
    assert "dims:   ('y', 'x')" in res.stdout


def test_convert_streams_a_zarr_array_into_an_ome_pyramid(tmp_path):
    a = np.random.default_rng(3).integers(0, 4000, (40, 50, 60)).astype(np.uint16)
    src = tmp_path / "src.zarr"
    vc.create_array(src, a.shape, a.dtype, chunks=16).write(a)
    dst = tmp_path / "dst.ome.zarr"
    res = subprocess.run([sys.executable, "-m", "voxcore.cli", "convert", str(src), str(dst), "--levels", "2,4",
                          "--chunks", "16", "--shards", "32", "--method", "gaussian", "--scale", "2,1,1",
                          "--dims", "z,y,x"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "3 levels" in res.stdout and "100.0%" in res.stderr  # the progress bar
    img = vc.open(dst)
    pyr = vc.build_pyramid(vc.from_array(a, scale=(2, 1, 1)), [2, 4], "gaussian")
    for k, lv in enumerate(pyr.levels):
        np.testing.assert_array_equal(img.read(level=k), lv.data)
        assert img.levels[k].scale == lv.scale and img.levels[k].translation == lv.translation
    assert img.levels[0].shards == (32, 32, 32)
    # exists: refused without --overwrite, with a message
    again = subprocess.run([sys.executable, "-m", "voxcore.cli", "convert", str(src), str(dst)],
                           capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    v04 = tmp_path / "v04.ome.zarr"
    assert cli.main(["convert", str(dst), str(v04), "--version", "0.4", "--levels", "1", "--codec", "none",
                     "--quiet"]) == 0
    back = vc.open(v04)
    assert back.zarr_format == 2 and len(back.levels) == 1 and back.scale == (2.0, 1.0, 1.0)


def test_info_describes_an_ome_pyramid(tmp_path):
    a = np.zeros((2, 20, 30, 40), np.uint8)
    pyr = vc.build_pyramid(vc.from_array(a, dims=("c", "z", "y", "x"), scale=(1, 2, 0.5, 0.5),
                                         units=(None, "micrometer", "micrometer", "micrometer"), name="em"),
                           [2], "mean")
    vc.save(pyr, tmp_path / "p.ome.zarr", chunks=8, labels={"cells": a.astype(np.uint16)})
    res = subprocess.run([sys.executable, "-m", "voxcore.cli", "info", str(tmp_path / "p.ome.zarr")],
                         capture_output=True, text=True, check=True)
    out = res.stdout
    assert "OME-Zarr 0.5" in out and "name: em" in out and "method: mean" in out
    assert "z (space, micrometer)" in out and "c (channel)" in out
    assert "level 1 (1): shape: (2, 10, 15, 20)" in out
    assert "scale: (1.0, 4.0, 1.0, 1.0)  translation: (0.0, 1.0, 0.25, 0.25)" in out
    assert "chunks: (1, 8, 8, 8)" in out and "MiB stored" in out
    assert "labels: cells" in out
