"""Acquisitions with an open-ended number of time points: vc.create(shape=(None, ...)) grows the
t axis of every level as time points arrive, the image valid on disk after each one and after a
crash; Image.resize grows an array atomically and refuses to shrink it."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import voxcore as vc


def _plane(t, c, z):
    return np.full((24, 32), t * 100 + c * 10 + z, np.uint16)


def _validate(path, version="0.5"):
    models = pytest.importorskip("ome_zarr_models")
    zarr = pytest.importorskip("zarr")
    (models.v05 if version == "0.5" else models.v04).Image.from_zarr(zarr.open_group(path, mode="r"))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_time_points_grow_as_they_arrive_and_the_image_is_valid_after_each(tmp_path, version):
    path = tmp_path / "t.ome.zarr"
    w = vc.create(path, (None, 2, 8, 24, 32), "u2", pyramid=[{"y": 2, "x": 2}], chunks=8, version=version)
    assert vc.open(path).shape[0] == 1 and w.time_points == 1
    for t in range(4):
        for c in range(2):
            for z in range(8):
                w.write_plane(_plane(t, c, z), t=t, c=c, z=z)
        img = vc.open(path)
        assert img.shape == (t + 1, 2, 8, 24, 32) and [lv.shape[0] for lv in img.levels] == [t + 1] * 2
        _validate(path, version)
        np.testing.assert_array_equal(img.read((t, 1, 5)), _plane(t, 1, 5))
        assert w.get_data(t=t, c=0, z=3).tolist() == _plane(t, 0, 3).tolist()
    w.close()
    img = vc.open(path)
    assert img.shape == (4, 2, 8, 24, 32)
    assert int(img.read((3, 1, 7, 0, 0))) == 317 and int(img.read((2, 0, 1, 0, 0), level=1)) == 201


def test_a_reading_of_a_later_time_point_does_not_grow_it(tmp_path):
    w = vc.create(tmp_path / "t.ome.zarr", (None, 4, 8, 8), "u1")
    with pytest.raises(vc.InvalidArgumentError, match="t out of range"):
        w.get_data(t=3, z=0)
    assert w.time_points == 1 and vc.open(tmp_path / "t.ome.zarr").shape[0] == 1
    w.write_plane(np.ones((8, 8), np.uint8), t=5, z=0)  # a gap: the skipped ones are fill
    assert w.time_points == 6
    w.close()
    assert int(vc.open(tmp_path / "t.ome.zarr").read((slice(0, 5),)).max()) == 0


def test_a_crash_mid_time_point_leaves_a_valid_image(tmp_path):
    path = tmp_path / "crash.ome.zarr"
    code = textwrap.dedent(f"""
        import os, numpy as np, voxcore as vc
        w = vc.create({str(path)!r}, (None, 1, 8, 24, 32), "u2", chunks=(1, 1, 2, 24, 32), durable=False)
        for t in range(2):
            for z in range(8):
                w.write_plane(np.full((24, 32), t * 100 + z, np.uint16), t=t, c=0, z=z)
        for z in range(5):  # two slabs of two planes written, the fifth plane still in memory
            w.write_plane(np.full((24, 32), 200 + z, np.uint16), t=2, c=0, z=z)
        os._exit(0)
        """)
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, VOXCORE_NUM_THREADS="2"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    img = vc.open(path)
    assert img.shape == (3, 1, 8, 24, 32)
    _validate(path)
    got = img.read()[:, 0, :, 0, 0]
    assert got[0].tolist() == list(range(8)) and got[1].tolist() == [100 + z for z in range(8)]
    assert got[2].tolist() == [200, 201, 202, 203, 0, 0, 0, 0]


def test_positions_with_an_open_time_axis(tmp_path):
    path = tmp_path / "p.ome.zarr"
    with vc.create(path, (None, 1, 4, 24, 32), "u2", positions=["a", "b"], chunks=4) as w:
        for t in range(3):
            for p in range(2):
                for z in range(4):
                    w.write_plane(_plane(t, p, z), t=t, c=0, z=z, position=p)
    plate = vc.open(path)
    assert plate.shape_t == 3 and plate.positions == 2
    np.testing.assert_array_equal(plate.get_data(timepoint=2, position=1, channel=0, z=3), _plane(2, 1, 3))


@pytest.mark.parametrize("shape, dims, words", [
    ((4, None, 8, 8), None, "only the first axis"),
    ((None, 8, 8), ("z", "y", "x"), "must be t"),
    ((None, 8), None, "at least t and 2 space axes"),
    ((None, "a", 8, 8), None, "integers"),
])
def test_bad_open_shapes(tmp_path, shape, dims, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.create(tmp_path / "x.ome.zarr", shape, "u1", dims=dims)
    assert not (tmp_path / "x.ome.zarr").exists()


def test_resize_grows_atomically_and_refuses_to_shrink(tmp_path):
    arr = vc.create_array(tmp_path / "a.zarr", (4, 6), "u2", chunks=(2, 3))
    arr.write(np.arange(24, dtype=np.uint16).reshape(4, 6))
    before = vc.open(tmp_path / "a.zarr")
    arr.resize((7, 6))
    assert arr.shape == (7, 6) and json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())["shape"] == [7, 6]
    assert before.shape == (4, 6)  # an open handle keeps the shape it opened
    got = vc.open(tmp_path / "a.zarr").read()
    np.testing.assert_array_equal(got[:4], np.arange(24).reshape(4, 6))
    assert int(got[4:].max()) == 0
    arr.write(np.full((3, 6), 9, np.uint16), (4, 0))
    assert int(vc.open(tmp_path / "a.zarr").read()[6, 5]) == 9
    with pytest.raises(vc.InvalidArgumentError, match="grows an array only"):
        arr.resize((3, 6))
    with pytest.raises(vc.InvalidArgumentError, match="grows an array only"):
        arr.resize((7,))
    assert not [p for p in (tmp_path / "a.zarr").iterdir() if ".vxtmp" in p.name]
