"""vc.validate / voxcore validate: check's findings, the OME-NGFF schemas (ome-zarr-models) and
voxcore's consistency checks, with a non-zero exit code on errors; a valid tree reports none."""

import json
import shutil

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main

pytest.importorskip("ome_zarr_models")


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def good(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / f"good{request.param}.ome.zarr"
    a = np.random.default_rng(0).integers(0, 999, (2, 8, 32, 48)).astype(np.uint16)
    img = vc.from_array(a, dims=("c", "z", "y", "x"), scale=(1, 2.0, 0.5, 0.5))
    labels = {"cells": (a > 500).astype(np.uint8)}
    vc.save(vc.build_pyramid(img, [{"y": 2, "x": 2}, {"y": 4, "x": 4}]), path, version=request.param, chunks=16,
            labels=labels, channels=[{"label": "a"}, {"label": "b"}])
    return path, request.param


def _meta(path, version):
    name = "zarr.json" if version == "0.5" else ".zattrs"
    doc = json.loads((path / name).read_text())
    return doc, (doc["attributes"]["ome"] if version == "0.5" else doc), name


def test_a_valid_tree_has_no_errors_or_warnings(good, capsys):
    path, _ = good
    problems = vc.validate(path)
    assert [p for p in problems if p.severity != "info"] == [], problems
    assert main(["validate", str(path)]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_a_plate_validates(tmp_path):
    with vc.create_plate(tmp_path / "p.ome.zarr", ["A"], ["1", "2"]) as w:
        w.write_field("A/2", np.zeros((4, 8, 8), np.uint8))
    assert [p for p in vc.validate(tmp_path / "p.ome.zarr") if p.severity == "error"] == []


@pytest.mark.parametrize("edit, kind", [
    (lambda ome: ome["multiscales"][0]["axes"][2].update(type=5), "ome-schema"),
    (lambda ome: ome["multiscales"][0].update(axes=[ome["multiscales"][0]["axes"][i] for i in (1, 0, 2, 3)]),
     ("ome-axes", "ome-schema")),
    (lambda ome: ome["multiscales"][0]["datasets"][1]["coordinateTransformations"][0].update(
        scale=[1, 2.0, 3.0, 3.0]), "ome-scale-shape"),
    (lambda ome: ome["multiscales"][0]["datasets"][2]["coordinateTransformations"][1].update(
        translation=[0, 0, 50.0, 0]), "ome-translation"),
    (lambda ome: ome["omero"].update(channels=ome["omero"]["channels"][:1]), "ome-metadata"),
])
def test_each_problem_is_reported_by_kind_and_the_exit_code_says_so(good, tmp_path, edit, kind, capsys):
    src, version = good
    path = tmp_path / "bad.ome.zarr"
    shutil.copytree(src, path)
    doc, ome, name = _meta(path, version)
    edit(ome)
    (path / name).write_text(json.dumps(doc))
    problems = vc.validate(path)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    found = [p for p in problems if p.kind in kinds]
    assert found, problems
    code = main(["validate", str(path)])
    out = capsys.readouterr().out
    assert any(k in out for k in kinds)
    assert code == (1 if any(p.severity == "error" for p in problems) else 0)


def test_oversized_chunks_are_a_warning(tmp_path):
    path = tmp_path / "c.ome.zarr"
    vc.save(vc.build_pyramid(vc.from_array(np.zeros((64, 64), np.uint8)), [{"y": 4, "x": 4}]), path, chunks=64)
    doc = json.loads((path / "1" / "zarr.json").read_text())
    doc["chunk_grid"]["configuration"]["chunk_shape"] = [64, 64]  # level 1 is 16 x 16
    (path / "1" / "zarr.json").write_text(json.dumps(doc))
    kinds = {p.kind: p.severity for p in vc.validate(path)}
    assert kinds.get("chunk-layout") == "warning"


def test_not_a_tree(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nothing")]) == 1
    assert "no-zarr-node" in capsys.readouterr().out
