"""vc.create_plate: HCS plates written field by field (0.4 and 0.5), read back by voxcore and
ome-zarr-py with equal values, validated by ome-zarr-models; bad arguments; a failed field
leaves a valid plate listing the completed fields only."""

import json

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")

ROWS, COLS = ["A", "B"], ["1", "2", "3"]
WELLS = ["A/1", "A/3", "B/2"]


def _field(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(0, 4000, (2, 6, 40, 56)).astype(np.uint16)


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def written(request, tmp_path_factory):
    version = request.param
    path = tmp_path_factory.mktemp(f"plate{version}") / "plate.ome.zarr"
    data = {}
    with vc.create_plate(path, ROWS, COLS, name="screen", version=version,
                         acquisitions=[{"id": 0, "name": "first"}, {"id": 3}]) as w:
        for i, well in enumerate(WELLS):
            for f in range(2):
                a = _field(10 * i + f)
                pyr = vc.build_pyramid(vc.from_array(a, dims=("c", "z", "y", "x"), scale=(1, 2.0, 0.5, 0.5)),
                                       [{"y": 2, "x": 2}])
                w.write_field(well, pyr, acquisition=3 if f else 0, chunks=16,
                              channels=[{"label": "dapi"}, {"label": "gfp"}])
                data[(well, f)] = (a, pyr)
        assert w.wells == {well: ["0", "1"] for well in WELLS}
    return path, version, data


def test_voxcore_reads_every_field_and_level(written):
    path, version, data = written
    plate = vc.open(path)
    assert isinstance(plate, vc.Plate) and plate.version == version
    assert plate.rows == ROWS and plate.columns == COLS and plate.name == "screen"
    assert list(plate.wells) == WELLS and plate.field_count == 2
    assert [a["id"] for a in plate.acquisitions] == [0, 3]
    for (well, f), (a, pyr) in data.items():
        img = plate[well][f]
        assert plate[well].acquisitions == [0, 3]
        assert img.dims == ("c", "z", "y", "x") and [c["label"] for c in img.channels] == ["dapi", "gfp"]
        assert len(img.levels) == 2
        for k, lv in enumerate(pyr.levels):
            np.testing.assert_array_equal(img.read(level=k), np.asarray(lv.data))


def test_ome_zarr_py_reads_every_field(written):
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path, version, data = written
    for (well, f), (a, pyr) in data.items():
        loc = parse_url(str(path / well / str(f)), mode="r")
        assert loc is not None and loc.version == version
        node = list(Reader(loc)())[0]
        assert len(node.data) == 2
        for k, lv in enumerate(pyr.levels):
            np.testing.assert_array_equal(np.asarray(node.data[k]), np.asarray(lv.data))
    from ome_zarr.reader import Plate
    loc = parse_url(str(path), mode="r")  # the plate itself: ome-zarr-py sees a plate of these wells
    plate_node = list(Reader(loc)())[0]
    assert any(isinstance(s, Plate) for s in plate_node.specs)
    attrs = plate_node.zarr.root_attrs
    plate = attrs.get("ome", attrs)["plate"]  # (ome-zarr-py unwraps 0.5's "ome" itself)
    assert [w["path"] for w in plate["wells"]] == WELLS


def test_ome_zarr_models_validate_the_plate_and_wells(written):
    models = pytest.importorskip("ome_zarr_models")
    path, version, _ = written
    mod = models.v05 if version == "0.5" else models.v04
    from importlib import import_module
    hcs = import_module(f"{mod.__name__}.hcs")
    well_mod = import_module(f"{mod.__name__}.well")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "field not specified" repairs either
        hcs.HCS.from_zarr(zarr.open_group(path, mode="r"))
        for well in WELLS:
            well_mod.Well.from_zarr(zarr.open_group(path / well, mode="r"))


def test_the_plate_is_valid_before_any_field_and_after_a_failed_one(tmp_path):
    path = tmp_path / "p.ome.zarr"
    w = vc.create_plate(path, ROWS, COLS)
    plate = vc.open(path)
    assert list(plate.wells) == [] and plate.rows == ROWS
    w.write_field("B/1", _field(1), chunks=32)

    class Broken:  # a field whose reading fails half way
        shape, dtype, ndim = (2, 6, 40, 56), np.dtype("u2"), 4

        def __getitem__(self, index):
            raise OSError("the camera went away")
    with pytest.raises(OSError, match="camera"):
        w.write_field("B/1", vc.from_array(Broken(), dims=("c", "z", "y", "x")))
    with pytest.raises(OSError, match="camera"):
        w.write_field("A/2", vc.from_array(Broken(), dims=("c", "z", "y", "x")))
    plate = vc.open(path)
    assert list(plate.wells) == ["B/1"] and len(plate["B/1"]) == 1
    np.testing.assert_array_equal(plate["B/1"][0].read(), _field(1))
    assert sorted(p.name for p in (path / "B" / "1").iterdir()) == ["0", "zarr.json"]
    # the failed field's name is free again: the next one takes it
    w.write_field("B/1", _field(2))
    assert [im.read().sum() for im in vc.open(path)["B/1"].fields] == [_field(1).sum(), _field(2).sum()]


@pytest.mark.parametrize("call, words", [
    (lambda p: vc.create_plate(p, ["A", "A"], ["1"]), "twice"),
    (lambda p: vc.create_plate(p, ["A-1"], ["1"]), "alphanumeric"),
    (lambda p: vc.create_plate(p, "AB", ["1"]), "list of names"),
    (lambda p: vc.create_plate(p, ["A"], ["1"], version="0.3"), "version"),
    (lambda p: vc.create_plate(p, ["A"], ["1"], acquisitions=[{"id": -1}]), "id"),
])
def test_bad_plate_arguments(tmp_path, call, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        call(tmp_path / "p.zarr")
    assert not (tmp_path / "p.zarr").exists()


@pytest.mark.parametrize("well, kwargs, words", [
    ("C/1", {}, "row/column"),
    ("A/1/0", {}, "row/column"),
    ("../A", {}, "row/column"),
    ("A/1", {"field": "../x"}, "field"),
    ("A/1", {"field": "0"}, "already has"),
    ("A/1", {"acquisition": 9}, "acquisition"),
    ("A/1", {"version": "0.4"}, "plate's"),
])
def test_bad_field_arguments(tmp_path, well, kwargs, words):
    path = tmp_path / "p.ome.zarr"
    w = vc.create_plate(path, ["A"], ["1", "2"], acquisitions=[{"id": 0}])
    w.write_field("A/1", _field(0))
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    with pytest.raises(vc.VoxcoreError, match=words):
        w.write_field(well, _field(1), **kwargs)
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before
    w.close()
    with pytest.raises(vc.InvalidArgumentError, match="closed"):
        w.write_field("A/2", _field(1))


def test_create_plate_refuses_to_replace_a_user_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        vc.create_plate(tmp_path / "mine", ["A"], ["1"])
    with pytest.raises(vc.VoxcoreError):
        vc.create_plate(tmp_path / "mine", ["A"], ["1"], overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_plate_written_then_listed_by_the_cli(written, capsys):
    from voxcore.cli import main
    path, _, _ = written
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 wells" in out and out.count("(2, 6, 40, 56)") == 6
    meta = json.loads((path / ("zarr.json" if (path / "zarr.json").exists() else ".zattrs")).read_text())
    assert "plate" in json.dumps(meta)
