"""Multi-position acquisitions: vc.create(..., positions=) written plane by plane as navigate
acquires (t, then position, then c, then z), read back with navigate's vocabulary from the writer
and from vc.open; the layout (a one-well plate) validated and read by ome-zarr-py; a killed
acquisition leaves a valid plate; bad positions are refused by name."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import voxcore as vc

SHAPE = (2, 2, 8, 32, 48)  # t, c, z, y, x
SCALE = (1.5, 1.0, 2.0, 0.5, 0.5)
STAGE = [{"name": "tile-a", "x": 0.0, "y": 0.0}, {"name": "tile-b", "x": 100.0, "y": -20.0, "z": 3.0}]


def _volume(p, t, c):
    rng = np.random.default_rng(100 * p + 10 * t + c)
    return rng.integers(0, 4000, SHAPE[2:]).astype(np.uint16)


def _acquire(path, **kw):
    w = vc.create(path, SHAPE, "u2", dims=("t", "c", "z", "y", "x"), scale=SCALE, positions=STAGE,
                  pyramid=[{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}], chunks=16, **kw)
    for t in range(SHAPE[0]):
        for p in range(len(STAGE)):
            for c in range(SHAPE[1]):
                vol = _volume(p, t, c)
                for z in range(SHAPE[2]):
                    w.write_plane(vol[z], t=t, c=c, z=z, position=p)
    return w


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def acquired(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("pos") / f"acq{request.param}.ome.zarr"
    w = _acquire(path, version=request.param)
    w.close()
    return path, request.param


def _check_vocabulary(src):
    assert src.positions == 2 and src.position_names == ["tile-a", "tile-b"]
    assert src.bits == 16 and (src.dx, src.dy, src.dz, src.dt) == (0.5, 0.5, 2.0, 1.5)
    assert (src.shape_x, src.shape_y, src.shape_z, src.shape_c, src.shape_t) == (48, 32, 8, 2, 2)
    np.testing.assert_array_equal(src.resolutions, [[1, 1, 1], [2, 2, 1], [4, 4, 2]])
    np.testing.assert_array_equal(src.shapes, [[8, 32, 48], [8, 16, 24], [4, 8, 12]])
    assert src.nbytes == (8 * 32 * 48 + 8 * 16 * 24 + 4 * 8 * 12) * 2 * 2 * 2 * 2
    for p in range(2):
        for t in range(2):
            for c in range(2):
                vol = _volume(p, t, c)
                np.testing.assert_array_equal(src.get_data(timepoint=t, position=p, channel=c), vol)
                np.testing.assert_array_equal(src.get_data(timepoint=t, position=p, channel=c, z=5), vol[5])
    np.testing.assert_array_equal(src.get_slice(slice(3, 40), slice(5, 20), 1, z=3, t=1, p=1),
                                  _volume(1, 1, 1)[3, 5:20, 3:40])
    np.testing.assert_array_equal(src.get_slice(slice(None), 4, 0, z=slice(2, 6), t=0, p=0),
                                  _volume(0, 0, 0)[2:6, 4, :])
    half = src.get_data(timepoint=1, position=0, channel=1, resolution=2)
    assert half.shape == (8, 16, 24)
    quarter = src.get_slice(slice(None), slice(None), 1, z=slice(None), t=1, p=0, subdiv=2)
    assert quarter.shape == (4, 8, 12)
    np.testing.assert_array_equal(src.get_data(timepoint=1, position=0, channel=1, resolution=4), quarter)
    return half


def test_the_writer_reads_back_with_navigate_names_before_it_closes(tmp_path):
    w = _acquire(tmp_path / "live.ome.zarr")
    try:
        assert w.position_names == ["tile-a", "tile-b"] and w.stage_positions == STAGE
        np.testing.assert_array_equal(w.get_data(timepoint=1, position=1, channel=0), _volume(1, 1, 0))
    finally:
        w.close()
    _check_vocabulary(w)


def test_vc_open_reads_the_acquisition_as_a_plate(acquired):
    path, version = acquired
    plate = vc.open(path)
    assert isinstance(plate, vc.Plate) and list(plate.wells) == ["A/1"] and plate.version == version
    half = _check_vocabulary(plate)
    np.testing.assert_array_equal(half, plate["A/1"][0].read((1, 1), level=1))
    well = vc.open(path / "A" / "1")  # a well reads with the same names
    assert well.positions == 2
    np.testing.assert_array_equal(well.get_data(timepoint=0, position=1, channel=1), _volume(1, 0, 1))


def test_stage_coordinates_are_each_positions_translation(acquired):
    path, _ = acquired
    plate = vc.open(path)
    a, b = plate["A/1"][0], plate["A/1"][1]
    assert a.name == "tile-a" and b.name == "tile-b"
    assert a.translation == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert b.translation == (0.0, 0.0, 3.0, -20.0, 100.0)
    assert b.levels[1].translation[3:] == pytest.approx((-20.0 + 0.25, 100.0 + 0.25))


def test_the_layout_validates_and_ome_zarr_py_reads_each_position(acquired):
    models = pytest.importorskip("ome_zarr_models")
    zarr = pytest.importorskip("zarr")
    path, version = acquired
    import importlib
    hcs = importlib.import_module(f"{(models.v05 if version == '0.5' else models.v04).__name__}.hcs")
    hcs.HCS.from_zarr(zarr.open_group(path, mode="r"))
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    for p in range(2):
        node = list(Reader(parse_url(str(path / "A" / "1" / str(p)), mode="r"))())[0]
        got = np.asarray(node.data[0])
        assert got.shape == SHAPE
        np.testing.assert_array_equal(got[1, 0], _volume(p, 1, 0))


def test_a_killed_acquisition_leaves_a_valid_plate(tmp_path):
    path = tmp_path / "killed.ome.zarr"
    code = textwrap.dedent(f"""
        import os, numpy as np, voxcore as vc
        w = vc.create({str(path)!r}, (1, 1, 8, 32, 48), "u2", dims=("t", "c", "z", "y", "x"), positions=3,
                      chunks=(1, 1, 2, 32, 48), durable=False)
        for z in range(8):
            w.write_plane(np.full((32, 48), z + 1, np.uint16), t=0, c=0, z=z, position=0)
        for z in range(3):
            w.write_plane(np.full((32, 48), 50 + z, np.uint16), t=0, c=0, z=z, position=1)
        os._exit(0)  # dies mid-acquisition: no close
        """)
    env = dict(os.environ, VOXCORE_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plate = vc.open(path)
    assert plate.positions == 3 and plate.position_names == ["0", "1", "2"]
    assert [int(v) for v in plate.get_data(position=0)[:, 0, 0]] == list(range(1, 9))
    assert int(plate.get_data(position=2).max()) == 0  # never written: the fill value
    # position 1: its first slab of two planes was written; the third plane was still in the
    # writer's memory (a slab is written when it is complete) and is lost with the process
    first = plate.get_data(position=1)
    assert [int(v) for v in first[:2, 0, 0]] == [50, 51] and int(first[2:].max()) == 0
    root = json.loads((path / "zarr.json").read_text())["attributes"]
    assert [p["name"] for p in root["voxcore"]["positions"]] == ["0", "1", "2"]


@pytest.mark.parametrize("positions, words", [
    (0, ">= 1"), (True, "bool"), ("ab", "count, names or dicts"), ([], "count, names or dicts"),
    ([1.5], "name or a dict"), (["a", "a"], "must differ"), ([{"w": 1}], "unknown keys"),
    ([{"x": float("nan")}], "finite"), ([{"name": ""}], "empty"),
])
def test_bad_positions(tmp_path, positions, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.create(tmp_path / "x.ome.zarr", (4, 8, 8), "u1", positions=positions)
    assert not (tmp_path / "x.ome.zarr").exists()


def test_a_stage_axis_the_image_lacks_is_refused(tmp_path):
    with pytest.raises(vc.InvalidArgumentError, match="no such axis"):
        vc.create(tmp_path / "x.ome.zarr", (8, 8), "u1", positions=[{"z": 1.0}])


def test_bad_reads_and_writes_name_the_problem(tmp_path):
    with vc.create(tmp_path / "x.ome.zarr", (2, 4, 8, 8), "u1", dims=("c", "z", "y", "x"), positions=2) as w:
        with pytest.raises(vc.InvalidArgumentError, match="position out of range"):
            w.write_plane(np.zeros((8, 8), np.uint8), c=0, z=0, position=2)
        with pytest.raises(vc.InvalidArgumentError, match="no t axis"):
            w.get_data(timepoint=1)
        with pytest.raises(vc.InvalidArgumentError, match="no level with resolution 2"):
            w.get_data(resolution=2)
        with pytest.raises(vc.InvalidArgumentError, match="subdiv out of range"):
            w.get_slice(0, 0, 0, subdiv=3)
