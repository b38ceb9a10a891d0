"""HCS plates and wells (OME-NGFF plate / well, 0.4 and 0.5): read what ome-zarr-py writes,
the CLI's table, and plate metadata that lies."""

import json
import shutil

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

ome_writer = pytest.importorskip("ome_zarr.writer")
ome_format = pytest.importorskip("ome_zarr.format")
zarr = pytest.importorskip("zarr")

ROWS, COLS = ["A", "B"], ["1", "2", "3"]


def _write_plate(path, version):
    """A 2x3 plate by ome-zarr-py, two fields per well (czyx uint16), one well left empty."""
    fmt = ome_format.FormatV04() if version == "0.4" else ome_format.FormatV05()
    root = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    wells = [f"{r}/{c}" for r in ROWS for c in COLS if (r, c) != ("B", "3")]
    ome_writer.write_plate_metadata(root, ROWS, COLS, wells, fmt=fmt, field_count=2, name="screen",
                                    acquisitions=[{"id": 0, "name": "first"}])
    data = {}
    for k, w in enumerate(wells):
        r, c = w.split("/")
        wg = root.require_group(r).require_group(c)
        ome_writer.write_well_metadata(wg, [{"path": "0", "acquisition": 0}, {"path": "1", "acquisition": 0}], fmt=fmt)
        for f in (0, 1):
            a = np.random.default_rng(10 * k + f).integers(0, 4000, (2, 4, 32, 48)).astype(np.uint16)
            ome_writer.write_image(a, wg.require_group(str(f)), axes="czyx", fmt=fmt)
            data[(w, f)] = a
    return data


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def plate(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"plate{request.param}") / "plate.ome.zarr"
    return path, request.param, _write_plate(path, request.param)


def test_plate_rows_columns_wells_and_fields(plate):
    path, version, data = plate
    p = vc.open(path)
    assert isinstance(p, vc.Plate) and p.version == version and p.name == "screen"
    assert p.rows == ROWS and p.columns == COLS and p.acquisitions[0]["id"] == 0
    assert list(p.wells) == ["A/1", "A/2", "A/3", "B/1", "B/2"]
    well = p.wells["B/2"]
    assert (well.row, well.column, len(well), well.acquisitions) == ("B", "2", 2, [0, 0])
    for (w, f), a in data.items():
        field = p.wells[w].fields[f]
        assert field.dims == ("c", "z", "y", "x")
        np.testing.assert_array_equal(field.read(), a)
        level1 = zarr.open_array(path / w / str(f) / field.levels[1].path, mode="r")[...]  # its own reduction
        np.testing.assert_array_equal(field.read(level=1), level1)
    with pytest.raises(KeyError):
        p["B/3"]


def test_open_a_well_and_a_field(plate):
    path, _, data = plate
    well = vc.open(path / "A" / "2")
    assert isinstance(well, vc.Well) and well.path == "A/2" and len(well) == 2
    np.testing.assert_array_equal(well[1].read(), data[("A/2", 1)])
    np.testing.assert_array_equal(vc.open(path / "A" / "2" / "0").read(), data[("A/2", 0)])
    store = zarr.storage.LocalStore(str(path))
    np.testing.assert_array_equal(vc.open(store, path="B/1")[0].read(), data[("B/1", 0)])


def test_info_prints_the_plate_as_a_table(plate, capsys):
    path, version, _ = plate
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"OME-Zarr {version} plate 'screen': 2 rows x 3 columns, 5 wells, 1 acquisitions" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(("A/", "B/"))]
    assert len(lines) == 10 and all("(2, 4, 32, 48)" in ln and "uint16" in ln for ln in lines)


def _attrs_file(root, version):
    return root / (".zattrs" if version == "0.4" else "zarr.json")


def _edit(root, version, fn):
    f = _attrs_file(root, version)
    doc = json.loads(f.read_text())
    node = doc if version == "0.4" else doc["attributes"]["ome"]
    fn(node["plate"] if "plate" in node else node["well"])
    f.write_text(json.dumps(doc))


@pytest.mark.parametrize("case, edit, error, words", [
    ("row index disagrees", lambda p: p["wells"][0].update(rowIndex=1), vc.InvalidMetadataError, "rowIndex"),
    ("unknown column", lambda p: p["wells"][0].update(path="A/9"), vc.InvalidMetadataError, "column"),
    ("path leaves the plate", lambda p: p["wells"][0].update(path="../A"), vc.UnsafeMetadataPathError, "leaves"),
    ("three-part path", lambda p: p["wells"][0].update(path="A/1/0"), vc.InvalidMetadataError, "row/column"),
    ("rows not a list", lambda p: p.update(rows="AB"), vc.InvalidMetadataError, "rows"),
    ("row name with a slash", lambda p: p["rows"][0].update(name="A/"), vc.InvalidMetadataError, "alphanumeric"),
    ("duplicate well", lambda p: p["wells"].append(dict(p["wells"][0])), vc.InvalidMetadataError, "twice"),
    ("field count zero", lambda p: p.update(field_count=0), vc.InvalidMetadataError, "field_count"),
])
def test_plate_metadata_that_lies(plate, tmp_path, case, edit, error, words):
    src, version, _ = plate
    path = tmp_path / "p.ome.zarr"
    shutil.copytree(src, path)
    _edit(path, version, edit)
    with pytest.raises(error, match=words):
        vc.open(path)


def test_wells_that_point_nowhere(plate, tmp_path):
    src, version, _ = plate
    path = tmp_path / "p.ome.zarr"
    shutil.copytree(src, path)
    shutil.rmtree(path / "A" / "3")  # listed by the plate, not there
    with pytest.raises(vc.InvalidMetadataError, match="no well group"):
        vc.open(path).wells
    shutil.rmtree(path / "A" / "2" / "1")  # listed by the well, not there
    well = vc.open(path)["A/2"]
    np.testing.assert_array_equal(well[0].shape, (2, 4, 32, 48))
    with pytest.raises(vc.InvalidMetadataError, match="not an image"):
        well[1]
    _edit(path / "B" / "1", version, lambda w: w["images"][0].update(path="../../A/1/0"))
    with pytest.raises(vc.UnsafeMetadataPathError):
        vc.open(path)["B/1"]
    _edit(path / "B" / "2", version, lambda w: w.update(images=[{"path": "0", "acquisition": "x"}]))
    with pytest.raises(vc.InvalidMetadataError, match="acquisition"):
        vc.open(path)["B/2"]
