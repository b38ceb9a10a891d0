"""bioformats2raw-layout roots (series 0/, 1/, ... beside OME/) open as a collection of images,
0.4 and 0.5, listed by OME/series or numbered from 0; bad layouts get named errors."""

import json

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

OME_XML = '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"/>'


def _group(path, attrs, version):
    path.mkdir(parents=True, exist_ok=True)
    if version == "0.5":
        (path / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}))
    else:
        (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (path / ".zattrs").write_text(json.dumps(attrs))


def make_root(path, version, n=3, listed=True):
    data = []
    for i in range(n):
        a = np.random.default_rng(i).integers(0, 1000, (2, 5, 24, 32)).astype(np.uint16)
        vc.save(vc.build_pyramid(vc.from_array(a, dims=("c", "z", "y", "x")), [{"y": 2, "x": 2}]),
                path / str(i), version=version, chunks=16)
        data.append(a)
    layout = {"bioformats2raw.layout": 3}
    _group(path, {"ome": {"version": "0.5", **layout}} if version == "0.5" else layout, version)
    series = {"series": [str(i) for i in range(n)]} if listed else {}
    _group(path / "OME", {"ome": {"version": "0.5", **series}} if version == "0.5" else series, version)
    (path / "OME" / "METADATA.ome.xml").write_text(OME_XML)
    return data


@pytest.mark.parametrize("listed", [True, False], ids=["OME-series", "numbered"])
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_series_open_with_every_value(tmp_path, version, listed):
    root = tmp_path / "b2r.ome.zarr"
    data = make_root(root, version, listed=listed)
    s = vc.open(root)
    assert isinstance(s, vc.Series) and list(s) == ["0", "1", "2"] and len(s) == 3
    for i, a in enumerate(data):
        img = s[i]
        assert img.dims == ("c", "z", "y", "x") and len(img.levels) == 2
        np.testing.assert_array_equal(img.read(), a)
    assert s.ome_xml() == OME_XML
    np.testing.assert_array_equal(vc.open(root / "1").read(), data[1])  # a series opens alone


def test_ome_zarr_models_agree_it_is_a_bioformats2raw_root(tmp_path):
    models = pytest.importorskip("ome_zarr_models")
    zarr = pytest.importorskip("zarr")
    from ome_zarr_models.v04.bioformats2raw import BioFormats2Raw
    root = tmp_path / "b2r.ome.zarr"
    make_root(root, "0.4", n=2)
    model = BioFormats2Raw.from_zarr(zarr.open_group(root, mode="r"))
    assert models is not None and len(model.image_paths) == len(vc.open(root)) == 2


def test_info_lists_the_series(tmp_path, capsys):
    root = tmp_path / "b2r.ome.zarr"
    make_root(root, "0.5", n=2)
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "bioformats2raw layout, 2 series" in out and out.count("(2, 5, 24, 32)") == 2


@pytest.mark.parametrize("edit, error, words", [
    (lambda r: (r / "OME" / ".zattrs").write_text(json.dumps({"series": ["0", "7"]})),
     vc.InvalidMetadataError, "'7', which is not a group"),
    (lambda r: (r / "OME" / ".zattrs").write_text(json.dumps({"series": ["../x"]})),
     vc.UnsafeMetadataPathError, "leaves the group"),
    (lambda r: (r / "OME" / ".zattrs").write_text(json.dumps({"series": "0"})),
     vc.InvalidMetadataError, "list of paths"),
    (lambda r: (r / "OME" / ".zattrs").write_text(json.dumps({"series": ["0", "0"]})),
     vc.InvalidMetadataError, "twice"),
    (lambda r: (r / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 4})),
     vc.UnsupportedError, "layout 4"),
    (lambda r: (r / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": "3"})),
     vc.InvalidMetadataError, "integer"),
])
def test_bad_layouts(tmp_path, edit, error, words):
    root = tmp_path / "b2r.ome.zarr"
    make_root(root, "0.4", n=2)
    edit(root)
    with pytest.raises(error, match=words):
        vc.open(root)


def test_a_layout_without_series_and_a_series_that_is_not_an_image(tmp_path):
    root = tmp_path / "empty.ome.zarr"
    _group(root, {"bioformats2raw.layout": 3}, "0.4")
    with pytest.raises(vc.InvalidMetadataError, match="without series"):
        vc.open(root)
    _group(root / "0", {"not": "an image"}, "0.4")
    s = vc.open(root)
    with pytest.raises(vc.InvalidMetadataError, match="series '0' is not an image"):
        s[0]
