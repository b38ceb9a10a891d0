"""omero channel metadata: read onto the image model, written by save (windows from the data at
the coarsest level when not given), carried through convert and pyramids, bad input named."""

import json
import shutil

import numpy as np
import pytest
import voxcore as vc
from voxcore.cli import main


def _vol():
    rng = np.random.default_rng(3)
    v = rng.integers(0, 1000, (3, 8, 64, 64)).astype(np.uint16)
    v[1] += 2000  # channel 1 lives higher up
    return v


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_channels_written_read_and_carried(tmp_path, version):
    vol = _vol()
    img = vc.from_array(vol, dims=("c", "z", "y", "x"))
    given = [{"label": "DAPI", "color": "0000ff", "window": {"min": 0, "max": 65535, "start": 10, "end": 900}},
             {"label": "GFP"}, {}]
    out = tmp_path / "a.ome.zarr"
    vc.save(vc.build_pyramid(img, [2, 4]), out, version=version, chunks=16, channels=given)
    got = vc.open(out).channels
    assert [c["label"] for c in got] == ["DAPI", "GFP", "channel 2"]
    assert [c["color"] for c in got] == ["0000FF", "00FF00", "FF0000"]
    assert got[0]["window"] == {"min": 0.0, "max": 65535.0, "start": 10.0, "end": 900.0}
    coarse = vc.open(out).read(level=2)
    assert got[1]["window"]["start"] == coarse[1].min() and got[1]["window"]["end"] == coarse[1].max()
    assert got[1]["window"]["min"] == 0 and got[1]["window"]["max"] == 65535
    assert all(c["active"] for c in got)
    models = pytest.importorskip("ome_zarr_models")
    import zarr
    (models.v05 if version == "0.5" else models.v04).Image.from_zarr(zarr.open_group(out, mode="r"))
    # carried by convert (a streamed pyramid of the opened image)
    conv = tmp_path / "b.ome.zarr"
    assert main(["convert", str(out), str(conv), "--quiet", "--version", version, "--levels", "2"]) == 0
    assert vc.open(conv).channels == got


def test_omero_that_lies(tmp_path):
    out = tmp_path / "a.ome.zarr"
    vc.save(vc.from_array(_vol(), dims=("c", "z", "y", "x")), out, chunks=16, channels=[{}, {}, {}])
    doc = json.loads((out / "zarr.json").read_text())
    cases = [
        (lambda o: o["channels"].pop(), "lists 2 channels but the image has 3"),
        (lambda o: o["channels"][0].update(color="#FF0000"), "6 hex digits"),
        (lambda o: o["channels"][1].update(window={"min": 0, "max": 1}), "min, max, start and end"),
        (lambda o: o["channels"][1].update(window={"min": 5, "max": 1, "start": 0, "end": 1}), "min > max"),
        (lambda o: o["channels"][2].update(label=3), "label must be a string"),
        (lambda o: o["channels"][2].update(active="yes"), "active"),
        (lambda o: o.update(channels="all"), "channels list"),
    ]
    for edit, words in cases:
        bad = tmp_path / "bad.ome.zarr"
        shutil.copytree(out, bad)
        d = json.loads(json.dumps(doc))
        edit(d["attributes"]["ome"]["omero"])
        (bad / "zarr.json").write_text(json.dumps(d))
        with pytest.raises(vc.InvalidMetadataError, match=words):
            vc.open(bad)
        shutil.rmtree(bad)
    with pytest.raises(vc.InvalidMetadataError, match="2 entries but the image has 3"):
        vc.save(vc.from_array(_vol(), dims=("c", "z", "y", "x")), tmp_path / "c.ome.zarr", channels=[{}, {}])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_create_writes_channels_and_their_windows_at_close(tmp_path, version):
    path = tmp_path / "acq.ome.zarr"
    given = [{"label": "DAPI", "color": "0000FF"},
             {"label": "GFP", "window": {"min": 0, "max": 65535, "start": 100, "end": 900}}]
    w = vc.create(path, (2, 4, 16, 16), "u2", dims=("c", "z", "y", "x"), pyramid=[{"y": 2, "x": 2}],
                  channels=given, version=version)
    during = vc.open(path).channels
    assert [c["label"] for c in during] == ["DAPI", "GFP"] and during[0]["color"] == "0000FF"
    assert during[0]["window"]["end"] == 65535  # the dtype's range until the data exists
    for c in range(2):
        for z in range(4):
            w.write_plane(np.full((16, 16), 1000 * (c + 1) + z, np.uint16), c=c, z=z)
    w.close()
    img = vc.open(path)
    dapi, gfp = img.channels
    assert (dapi["window"]["start"], dapi["window"]["end"]) == (1000.0, 1003.0)  # coarsest level's range
    assert (gfp["window"]["start"], gfp["window"]["end"]) == (100.0, 900.0)  # given: kept
    models = pytest.importorskip("ome_zarr_models")
    zarr = pytest.importorskip("zarr")
    (models.v05 if version == "0.5" else models.v04).Image.from_zarr(zarr.open_group(path, mode="r"))


def test_create_refuses_channels_that_do_not_fit(tmp_path):
    with pytest.raises(vc.InvalidMetadataError, match="2 entries but the image has 3"):
        vc.create(tmp_path / "c.ome.zarr", (3, 4, 8, 8), "u1", dims=("c", "z", "y", "x"), channels=[{}, {}])
    assert not (tmp_path / "c.ome.zarr").exists()
