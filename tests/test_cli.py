"""The command line: `voxcore demo` end to end at a small size, and `voxcore info`."""

import subprocess
import sys

import numpy as np

import voxcore as vc
from voxcore import cli


def test_demo_checks_values_and_compares_with_zarr_python(tmp_path, capsys):
    rc = cli.main(["demo", "--size", "64", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("values OK") == 2
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
    assert "shape:  (30, 20)" in res.stdout
    assert "chunks: (16, 8)  shards: (32, 16)" in res.stdout
    assert "sharding_indexed" in res.stdout and "zstd" in res.stdout
    assert "dims:   ('y', 'x')" in res.stdout
