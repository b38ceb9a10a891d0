"""Custom group attributes (save / create / create_plate fields): written beside the OME keys,
never inside them, read back as ``attrs``, still valid OME-Zarr; bad ones refused by name with
nothing written."""

import json
import math

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")

USER = {"acquisition": {"microscope": "lightsheet-2", "objective": 20, "stage_um": [1.5, -2.0]},
        "operator": "kb"}


def _group_attrs(path, version) -> dict:
    if version == "0.5":
        return json.loads((path / "zarr.json").read_text())["attributes"]
    return json.loads((path / ".zattrs").read_text())


def _validate(path, version) -> None:
    models = pytest.importorskip("ome_zarr_models")
    (models.v05 if version == "0.5" else models.v04).Image.from_zarr(zarr.open_group(path, mode="r"))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_save_writes_attributes_beside_the_ome_keys(tmp_path, version):
    a = np.arange(2 * 16 * 24, dtype=np.uint16).reshape(2, 16, 24)
    out = tmp_path / "a.ome.zarr"
    vc.save(vc.build_pyramid(vc.from_array(a, dims=("c", "y", "x")), [{"y": 2, "x": 2}]), out,
            version=version, attributes=USER, channels=[{"label": "a"}, {"label": "b"}])
    attrs = _group_attrs(out, version)
    for k, v in USER.items():
        assert attrs[k] == v
    ome = attrs["ome"] if version == "0.5" else attrs
    assert "multiscales" in ome and "omero" in ome and "operator" not in ome.get("multiscales")[0]
    if version == "0.5":
        assert set(attrs["ome"]) == {"version", "multiscales", "omero"}
    img = vc.open(out)
    assert img.attrs["acquisition"] == USER["acquisition"] and img.attrs["operator"] == "kb"
    np.testing.assert_array_equal(img.read(), a)
    _validate(out, version)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_create_writes_attributes_with_the_first_metadata(tmp_path, version):
    out = tmp_path / "acq.ome.zarr"
    with vc.create(out, (3, 8, 16, 16), "u2", dims=("t", "z", "y", "x"), version=version,
                   attributes={"run": 7}) as w:
        assert _group_attrs(out, version)["run"] == 7  # already there, before any plane
        for t in range(3):
            for z in range(8):
                w.write_plane(np.full((16, 16), t * 8 + z, np.uint16), t=t, z=z)
    assert vc.open(out).attrs["run"] == 7
    _validate(out, version)


def test_a_plate_field_takes_attributes(tmp_path):
    with vc.create_plate(tmp_path / "p.ome.zarr", ["A"], ["1"]) as w:
        w.write_field("A/1", np.ones((4, 8, 8), np.uint8), attributes={"well_note": "edge"})
    assert vc.open(tmp_path / "p.ome.zarr")["A/1"][0].attrs["well_note"] == "edge"


@pytest.mark.parametrize("bad, words", [
    ({"ome": {}}, "OME-NGFF / voxcore keys"),
    ({"multiscales": []}, "OME-NGFF / voxcore keys"),
    ({"omero": {}}, "OME-NGFF / voxcore keys"),
    ({"voxcore": {}}, "OME-NGFF / voxcore keys"),
    ({"x": math.nan}, "JSON values"),
    ({"x": object()}, "JSON values"),
    ({1: "a"}, "string keys"),
    (["a"], "string keys"),
])
def test_bad_attributes_are_refused_before_anything_is_written(tmp_path, bad, words):
    out = tmp_path / "x.ome.zarr"
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.save(np.zeros((8, 8), np.uint8), out, attributes=bad)
    assert not out.exists()
    with pytest.raises(vc.InvalidArgumentError, match=words):
        vc.create(out, (8, 8), "u1", attributes=bad)
    assert not out.exists()


def test_nifti_refuses_attributes(tmp_path):
    with pytest.raises(vc.InvalidArgumentError, match="NIfTI"):
        vc.save(np.zeros((4, 4, 4), np.int16), tmp_path / "x.nii.gz", attributes={"a": 1})
    assert not (tmp_path / "x.nii.gz").exists()
