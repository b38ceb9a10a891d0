"""OME-TIFF channel names and colours: read onto the image model and carried into OME-Zarr's
omero section by save/convert (windows computed from the data)."""
from __future__ import annotations

import json
import numpy as np
import pytest
import tifffile

import voxcore as vc
from voxcore.cli import main

NAMES = ["DAPI", "GFP", "RFP"]
COLORS = [-16776961, 16711935, -65281]  # OME's signed RGBA: red, green, yellow
HEX = ["FF0000", "00FF00", "FFFF00"]


@pytest.fixture
def fluorescence(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(100, 4000, (3, 512, 384), dtype=np.uint16)
    path = tmp_path / "fl.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        meta = {"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                "Channel": {"Name": NAMES, "Color": COLORS}}
        tw.write(data, tile=(128, 128), subifds=1, metadata=meta, compression="zlib")
        tw.write(data[:, ::2, ::2], tile=(128, 128), subfiletype=1, compression="zlib")
    return path, data


def test_channel_names_and_colours_are_read(fluorescence):
    path, _ = fluorescence
    with vc.open(path) as img:
        assert img.dims == ("c", "y", "x")
        chans = img.channels
        assert [c["label"] for c in chans] == NAMES
        assert [c["color"] for c in chans] == HEX
        assert img.info()["channels"] == NAMES


def test_convert_carries_the_channels_into_omero(fluorescence, tmp_path):
    path, data = fluorescence
    out = tmp_path / "fl.ome.zarr"
    assert main(["convert", str(path), str(out)]) == 0
    omero = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["omero"]
    assert [c["label"] for c in omero["channels"]] == NAMES
    assert [c["color"] for c in omero["channels"]] == HEX
    levels = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]["datasets"]
    coarsest = vc.open(out / levels[-1]["path"]).read()
    for c, ch in enumerate(omero["channels"]):  # windows: the range of the coarsest level's data
        assert ch["window"] == {"min": 0, "max": 65535, "start": int(coarsest[c].min()),
                                "end": int(coarsest[c].max())}, ch
    back = vc.open(out)
    assert [c["label"] for c in back.channels] == NAMES
    assert np.array_equal(back.read(), data)


def test_rgb_and_mismatched_channels_give_none(tmp_path):
    rgb = np.zeros((256, 256, 3), np.uint8)
    p = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(p, rgb, tile=(128, 128), photometric="rgb", metadata={"axes": "YXS"})
    with vc.open(p) as img:
        assert img.channels is None
    two = np.zeros((2, 256, 256), np.uint16)
    q = tmp_path / "unnamed.ome.tif"
    tifffile.imwrite(q, two, tile=(128, 128), metadata={"axes": "CYX"})
    with vc.open(q) as img:
        assert img.channels is None  # no names or colours: nothing to carry
