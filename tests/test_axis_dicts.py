"""ngff-zarr's per-axis dicts: from_array(scale={...}, translation={...}, units={...}) and
save(chunks={...}, shards={...}); unknown axis names refused by name."""

import json

import numpy as np
import pytest
import voxcore as vc


def test_from_array_takes_scale_translation_and_units_by_axis_name():
    a = np.zeros((2, 8, 16, 32), np.uint16)
    img = vc.from_array(a, dims=("c", "z", "y", "x"), scale={"z": 2.0, "y": 0.5, "x": 0.25},
                        translation={"x": 10.0}, units={"z": "micrometer", "y": "micrometer", "x": "micrometer"})
    assert img.scale == (1.0, 2.0, 0.5, 0.25) and img.translation == (0.0, 0.0, 0.0, 10.0)
    assert img.units == (None, "micrometer", "micrometer", "micrometer")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_save_takes_chunks_and_shards_by_axis_name(tmp_path, version):
    a = np.arange(2 * 32 * 64 * 64, dtype=np.uint16).reshape(2, 32, 64, 64)
    out = tmp_path / "a.ome.zarr"
    shards = {"z": 32, "y": 64, "x": 64} if version == "0.5" else None
    vc.save(vc.from_array(a, dims=("c", "z", "y", "x")), out, chunks={"z": 16, "y": 32}, shards=shards,
            version=version)
    img = vc.open(out)
    assert img.chunks == (1, 16, 32, 64)
    if version == "0.5":
        assert img.shards == (1, 32, 64, 64)
        assert json.loads((out / "0" / "zarr.json").read_text())["chunk_grid"]["configuration"]["chunk_shape"] \
            == [1, 32, 64, 64]
    np.testing.assert_array_equal(img.read(), a)


@pytest.mark.parametrize("call, words", [
    (lambda: vc.from_array(np.zeros((4, 4)), scale={"q": 2.0}), "scale names axes the image does not have"),
    (lambda: vc.from_array(np.zeros((4, 4)), translation={"z": 1.0}), "translation names axes"),
    (lambda: vc.from_array(np.zeros((4, 4)), scale={"y": -1.0}), "scale"),
])
def test_bad_axis_dicts(call, words):
    with pytest.raises(vc.InvalidArgumentError, match=words):
        call()


def test_save_refuses_chunks_for_axes_it_lacks(tmp_path):
    with pytest.raises(vc.InvalidArgumentError, match="chunks names axes the image does not have"):
        vc.save(np.zeros((8, 8), np.uint8), tmp_path / "x.ome.zarr", chunks={"z": 4})
    assert not (tmp_path / "x.ome.zarr").exists()
