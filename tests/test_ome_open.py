"""open() of OME-Zarr groups: levels, axes, geometry, labels and bad metadata.

- What save() writes (0.4 and 0.5; 2D, 3D, 5D; odd shapes) opens with the Pyramid's levels:
  path, shape, scale, translation, chunks; read(region, level=k) equals the level's data.
- OME-Zarr written by hand with zarr-python (other tools' output) opens too: top-level
  coordinateTransformations folded into each level, axes without units, legacy string axes.
- Bad OME metadata raises the voxcore exception class the RELIABILITY contract names, with the
  field in the message.
- labels/ written by save(..., labels=...) and read back; bad labels arguments.
- save() through zarr-python stores and groups; a streamed save into a MemoryStore.
"""
from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import voxcore as vc

zarr = pytest.importorskip("zarr")
from zarr.storage import LocalStore, MemoryStore

VERSIONS = ["0.4", "0.5"]
TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
IME = vc.InvalidMetadataError
UPE = vc.UnsafePathError


def blob(shape, seed=0, dtype="uint16", high=1000):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def as_tuple(region, dims):
    """A dict region {dim: index} as the equivalent numpy index tuple."""
    if isinstance(region, dict):
        return tuple(region.get(d, slice(None)) for d in dims)
    return region


def per_axis(v, dims):
    """save()'s rule for chunks/shards: an int applies to space axes, time/channel get 1."""
    if v is None or isinstance(v, tuple):
        return v
    return tuple(v if TYPES[d] == "space" else 1 for d in dims)


def expected_storage(shape, chunks, shards):
    """Chunks/shards of one level: clipped to its shape, shards rounded up to whole chunks."""
    c = tuple(max(1, min(k, s)) for k, s in zip(chunks, shape))
    if shards is None:
        return c, None
    sh = tuple(min(k, -(-s // ci) * ci) for k, s, ci in zip(shards, shape, c))
    return c, tuple(max(ci, -(-k // ci) * ci) for k, ci in zip(sh, c))


def ome_doc_key(version):
    return "zarr.json" if version == "0.5" else ".zattrs"


def load_doc(root, version):
    return json.loads((root / ome_doc_key(version)).read_text())


def dump_doc(root, version, doc):
    (root / ome_doc_key(version)).write_text(json.dumps(doc))


def multiscale_of(doc, version):
    if version == "0.5":
        return doc["attributes"]["ome"]["multiscales"][0]
    return doc["multiscales"][0]


# ---- 1. open() of what save() wrote -----------------------------------------------------------

SAVED = {
    "3d": {
        "shape": (13, 22, 17), "dims": ("z", "y", "x"), "scale": (2.0, 0.5, 0.5),
        "translation": (1.0, -2.0, 3.0), "units": ("micrometer",) * 3,
        "factors": [2, 4], "method": "mean", "chunks": 4, "shards": 8,
        "regions": [
            Ellipsis,
            (slice(1, -1), slice(None, None, 2), slice(-5, None)),
            (-1, slice(None, None, -1), slice(2, None, -3)),
            (slice(None, None, -2), 0, Ellipsis),
        ],
        "dict_regions": [{"x": slice(None, None, -1), "z": 1}, {"y": slice(-4, None)}],
    },
    "5d": {
        "shape": (2, 3, 7, 19, 23), "dims": ("t", "c", "z", "y", "x"),
        "scale": (1.5, 1.0, 1.0, 0.25, 0.25), "translation": (10.0, 0.0, -1.0, 2.0, 3.0),
        "units": ("millisecond", None, "micrometer", "micrometer", "micrometer"),
        "factors": [{"y": 2, "x": 2}, {"z": 2, "y": 4, "x": 4}], "method": "nearest",
        "chunks": (1, 2, 4, 8, 8), "shards": (1, 2, 8, 16, 16),
        "regions": [
            Ellipsis,
            (-1, slice(None, None, -1), Ellipsis, slice(1, None, 2)),
            (Ellipsis, slice(-3, None), slice(None, 2), slice(None, None, -3)),
            (0, 2, -1, Ellipsis),
        ],
        "dict_regions": [{"c": slice(None, None, -2), "y": -2, "x": slice(-4, -1)}, {"t": 1}],
    },
    "2d": {
        "shape": (33, 80), "dims": ("y", "x"), "scale": (0.3, 0.3), "translation": (0.0, 0.0),
        "units": None, "factors": [2, 4, 8], "method": "max", "chunks": 16, "shards": None,
        "regions": [Ellipsis, (slice(None, None, -1), slice(3, -3, 5)), (-2, slice(None))],
        "dict_regions": [{"y": slice(None, None, -3)}],
    },
}


def build_saved(case):
    c = SAVED[case]
    img = vc.from_array(blob(c["shape"], seed=len(case)), dims=c["dims"], scale=c["scale"],
                        translation=c["translation"], units=c["units"], name=f"img-{case}")
    return c, vc.build_pyramid(img, c["factors"], c["method"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(SAVED))
def test_open_what_save_wrote(tmp_path, version, case):
    c, pyr = build_saved(case)
    shards = c["shards"] if version == "0.5" else None
    out = tmp_path / "img.ome.zarr"
    vc.save(pyr, out, version=version, chunks=c["chunks"], shards=shards)
    img = vc.open(out)

    lv0 = pyr.levels[0]
    assert img.dims == c["dims"]
    assert img.shape == c["shape"]
    assert img.scale == lv0.scale
    assert img.translation == lv0.translation
    units = c["units"] or (None,) * len(c["dims"])
    assert img.units == units
    assert img.axes == [{"name": d, "type": TYPES[d], "unit": u} for d, u in zip(c["dims"], units)]
    assert img.ome == {"dims": c["dims"], "scale": lv0.scale, "translation": lv0.translation,
                       "units": units, "name": f"img-{case}", "type": c["method"],
                       "version": version, "channels": None}  # no omero written
    assert img.labels == []

    chunks, shard_t = per_axis(c["chunks"], c["dims"]), per_axis(shards, c["dims"])
    assert len(img.levels) == len(pyr.levels) == len(c["factors"]) + 1
    for k, (got, want) in enumerate(zip(img.levels, pyr.levels)):
        assert got.path == str(k)
        assert got.shape == want.shape == want.data.shape
        assert got.scale == want.scale
        assert got.translation == want.translation
        exp_chunks, exp_shards = expected_storage(want.shape, chunks, shard_t)
        assert got.chunks == exp_chunks, k
        assert got.shards == exp_shards, k
        assert got.image.dtype == want.data.dtype
        assert got.image.zarr_format == (3 if version == "0.5" else 2)

    for region in c["regions"]:
        for k, lv in enumerate(pyr.levels):
            want = lv.data[region]
            got = img.read(region, level=k)
            assert got.shape == want.shape, (region, k)
            np.testing.assert_array_equal(got, want, err_msg=f"region={region!r} level={k}")
            np.testing.assert_array_equal(img.levels[k].image.read(region), want)
    np.testing.assert_array_equal(img[...], lv0.data)
    for region in c["dict_regions"]:  # level 0: the OME axis names
        np.testing.assert_array_equal(img.read(region), lv0.data[as_tuple(region, c["dims"])])


@pytest.mark.parametrize("version", [
    "0.4", "0.5"])
@pytest.mark.parametrize("case", sorted(SAVED))
def test_read_dict_region_at_every_level(tmp_path, version, case):
    c, pyr = build_saved(case)
    out = tmp_path / "img.ome.zarr"
    vc.save(pyr, out, version=version, chunks=c["chunks"])
    img = vc.open(out)
    for k, lv in enumerate(pyr.levels):
        for region in c["dict_regions"]:
            want = lv.data[as_tuple(region, c["dims"])]
            np.testing.assert_array_equal(img.read(region, level=k), want,
                                          err_msg=f"region={region!r} level={k}")


@pytest.mark.parametrize("version", VERSIONS)
def test_level_out_of_range(tmp_path, version):
    _, pyr = build_saved("3d")
    out = tmp_path / "img.ome.zarr"
    vc.save(pyr, out, version=version, chunks=8)
    img = vc.open(out)
    assert len(img.levels) == 3
    for bad in (-1, 3, 99):
        with pytest.raises(vc.InvalidArgumentError,
                           match=r"level out of range \(levels=3, got=-?\d+\)"):
            img.read(level=bad)
    # a plain array is its own single level
    plain = vc.open(out / "1")
    assert [lv.path for lv in plain.levels] == [""]
    with pytest.raises(vc.InvalidArgumentError, match="level"):
        plain.read(level=1)


# ---- 2. OME-Zarr written by other tools (zarr-python by hand) ----------------------------------

def handmade(store, version, arrays, multiscale, dims, quiet_zarr, path=None):
    """A group with one array per level ("0", "1", ...) and one multiscale: 0.4 puts it in
    .zattrs (the multiscale carries its version), 0.5 in attributes.ome next to the version."""
    v3 = version == "0.5"
    with quiet_zarr():
        g = zarr.open_group(store, mode="w", zarr_format=3 if v3 else 2, path=path)
        for i, a in enumerate(arrays):
            kw = {"dimension_names": dims} if v3 else {}
            chunks = tuple(max(1, s // 2) for s in a.shape)
            arr = g.create_array(str(i), shape=a.shape, dtype=a.dtype, chunks=chunks, **kw)
            arr[...] = a
        if v3:
            g.attrs.update({"ome": {"version": "0.5", "multiscales": [multiscale]}})
        else:
            g.attrs.update({"multiscales": [multiscale]})
    return g


def scale_ct(*scale):
    return {"type": "scale", "scale": list(scale)}


def trans_ct(*translation):
    return {"type": "translation", "translation": list(translation)}


def test_handmade_04_top_level_transforms_and_labels(tmp_path, quiet_zarr):
    """0.4 from zarr-python: czyx, channel axis without a unit, top-level scale + translation,
    "." chunk key separator (zarr-python's v2 default), a labels/ group listing two names."""
    a0 = blob((2, 9, 14, 11), seed=1)
    a1 = a0[:, ::2, ::2, ::2]
    um = "micrometer"
    multiscale = {
        "version": "0.4", "name": "tool",
        "axes": [{"name": "c", "type": "channel"}, {"name": "z", "type": "space", "unit": um},
                 {"name": "y", "type": "space", "unit": um},
                 {"name": "x", "type": "space", "unit": um}],
        "datasets": [
            {"path": "0", "coordinateTransformations": [scale_ct(1, 2, 1, 1)]},
            {"path": "1", "coordinateTransformations": [scale_ct(1, 4, 2, 2),
                                                        trans_ct(0, 1, 0.5, 0.5)]},
        ],
        "coordinateTransformations": [scale_ct(1, 0.5, 0.5, 0.25), trans_ct(0, 10, 20, 30)],
    }
    root = tmp_path / "tool.ome.zarr"
    handmade(str(root), "0.4", [a0, a1], multiscale, ["c", "z", "y", "x"], quiet_zarr)
    with quiet_zarr():
        labels = zarr.open_group(str(root / "labels"), mode="w", zarr_format=2)
        labels.attrs["labels"] = ["nuclei", "cells"]
    assert (root / "0" / "0.0.0.0").exists()  # "." separator

    img = vc.open(root)
    assert img.dims == ("c", "z", "y", "x")
    assert img.axes == [{"name": "c", "type": "channel", "unit": None},
                        {"name": "z", "type": "space", "unit": um},
                        {"name": "y", "type": "space", "unit": um},
                        {"name": "x", "type": "space", "unit": um}]
    assert img.units == (None, um, um, um)
    assert img.ome["version"] == "0.4" and img.ome["name"] == "tool"
    assert img.ome["type"] is None
    # x_world = top_scale * (scale * i + translation) + top_translation
    assert [lv.scale for lv in img.levels] == [(1.0, 1.0, 0.5, 0.25), (1.0, 2.0, 1.0, 0.5)]
    assert [lv.translation for lv in img.levels] == [(0.0, 10.0, 20.0, 30.0),
                                                     (0.0, 10.5, 20.25, 30.125)]
    assert img.scale == (1.0, 1.0, 0.5, 0.25) and img.translation == (0.0, 10.0, 20.0, 30.0)
    assert [lv.path for lv in img.levels] == ["0", "1"]
    assert [lv.shape for lv in img.levels] == [a0.shape, a1.shape]
    assert img.levels[0].chunks == (1, 4, 7, 5)
    assert img.labels == ["nuclei", "cells"]
    np.testing.assert_array_equal(img.read(level=1), a1)
    np.testing.assert_array_equal(img.read((1, slice(None, None, -1), Ellipsis), level=1),
                                  a1[1, ::-1])
    np.testing.assert_array_equal(img[:, 3:, -5:, ::3], a0[:, 3:, -5:, ::3])


@pytest.mark.parametrize("via", ["path", "local-store", "memory-store", "group"])
def test_handmade_05_without_units(tmp_path, quiet_zarr, via):
    """0.5 from zarr-python: axes without units, scale-only datasets (translation 0),
    a top-level scale only, the group under a sub-path of the store."""
    a0 = blob((5, 12, 10), seed=2, dtype="int16")
    a1 = a0[:, ::3, ::3]
    multiscale = {
        "axes": [{"name": d, "type": "space"} for d in "zyx"],
        "datasets": [
            {"path": "0", "coordinateTransformations": [scale_ct(1.0, 1.0, 1.0)]},
            {"path": "1", "coordinateTransformations": [scale_ct(1.0, 3.0, 3.0)]},
        ],
        "coordinateTransformations": [scale_ct(4.0, 0.5, 0.5)],
    }
    store = MemoryStore() if via == "memory-store" else LocalStore(str(tmp_path / "root"))
    g = handmade(store, "0.5", [a0, a1], multiscale, ["z", "y", "x"], quiet_zarr,
                 path="data/img")
    if via == "path":
        img = vc.open(tmp_path / "root", path="data/img")
    elif via == "group":
        img = vc.open(g)
    else:
        img = vc.open(store, path="data/img")
    assert img.dims == ("z", "y", "x")
    assert img.units == (None, None, None)
    assert img.axes == [{"name": d, "type": "space", "unit": None} for d in "zyx"]
    assert img.ome["version"] == "0.5" and img.ome["name"] is None
    assert [lv.scale for lv in img.levels] == [(4.0, 0.5, 0.5), (4.0, 1.5, 1.5)]
    assert [lv.translation for lv in img.levels] == [(0.0, 0.0, 0.0)] * 2
    assert [lv.shape for lv in img.levels] == [a0.shape, a1.shape]
    assert img.labels == []
    np.testing.assert_array_equal(img.read(level=1), a1)
    region = (slice(None, None, -2), -1, slice(1, None))
    np.testing.assert_array_equal(img.read(region, level=1), a1[region])
    np.testing.assert_array_equal(img.read(), a0)


def test_handmade_legacy_string_axes(tmp_path, quiet_zarr):
    """parse_multiscale accepts 0.3-style axes given as plain names; types come from the names."""
    a0 = blob((3, 8, 6), seed=3, dtype="uint8")
    multiscale = {"version": "0.4", "axes": ["t", "y", "x"],
                  "datasets": [{"path": "0", "coordinateTransformations": [scale_ct(2, 1, 1)]}]}
    root = tmp_path / "legacy.zarr"
    handmade(str(root), "0.4", [a0], multiscale, ["t", "y", "x"], quiet_zarr)
    img = vc.open(root)
    assert img.dims == ("t", "y", "x")
    assert img.axes == [{"name": "t", "type": "time", "unit": None},
                        {"name": "y", "type": "space", "unit": None},
                        {"name": "x", "type": "space", "unit": None}]
    assert img.scale == (2.0, 1.0, 1.0) and img.translation == (0.0, 0.0, 0.0)
    assert len(img.levels) == 1
    np.testing.assert_array_equal(img[::-1, 2], a0[::-1, 2])


# ---- 3. bad OME metadata ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_base(tmp_path_factory):
    """One small 2-level pyramid per version, with a plain group "flat" holding a 2D array "0"."""
    root = tmp_path_factory.mktemp("ome_base")
    out = {}
    a = np.arange(8 * 10 * 12, dtype="u2").reshape(8, 10, 12)
    for v in VERSIONS:
        p = root / f"base{v}"
        vc.save(vc.build_pyramid(vc.from_array(a), [2], "mean"), p, version=v, chunks=4)
        vc.save(vc.from_array(np.zeros((4, 5), "u2")), p / "flat", version=v)
        (p / "flat" / ome_doc_key(v)).unlink()  # now a plain group: no multiscales
        if v == "0.4":
            (p / "flat" / ".zgroup").write_text('{"zarr_format": 2}')
        else:
            (p / "flat" / "zarr.json").write_text(
                '{"zarr_format": 3, "node_type": "group", "attributes": {}}')
        out[v] = p
    return out


def _ct(i):
    """multiscales[0].datasets[i].coordinateTransformations of a multiscale m."""
    return lambda m: m["datasets"][i]["coordinateTransformations"]


def _set_ct(i, j, key, value):
    return lambda m: _ct(i)(m)[j].__setitem__(key, value)


def _set_path(i, value):
    return lambda m: m["datasets"][i].__setitem__("path", value)


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _set_axis(i, key, value):
    return lambda m: m["axes"][i].__setitem__(key, value)


DS0, DS1 = r"multiscales\[0\]\.datasets\[0\]", r"multiscales\[0\]\.datasets\[1\]"
TOP = r"multiscales\[0\]"
NAN, INF = float("nan"), float("inf")

# name: (mutation of multiscales[0], exception class, regex the message must match)
BAD_META = {
    "datasets-missing": (lambda m: m.pop("datasets"), IME, TOP + r"\.datasets"),
    "datasets-empty": (_set("datasets", []), IME, TOP + r"\.datasets must be a non-empty list"),
    "datasets-not-list": (_set("datasets", {"path": "0"}), IME, TOP + r"\.datasets"),
    "dataset-not-object": (lambda m: m["datasets"].__setitem__(0, "0"), IME, DS0),
    "path-missing": (lambda m: m["datasets"][0].pop("path"), IME, DS0 + r"\.path"),
    "path-int": (_set_path(0, 0), IME, DS0 + r"\.path must be a non-empty string"),
    "path-null": (_set_path(1, None), IME, DS1 + r"\.path"),
    "path-empty": (_set_path(0, ""), IME, DS0 + r"\.path"),
    "path-dotdot": (_set_path(0, ".."), UPE, r"key=\.\."),
    "path-escapes": (_set_path(0, "../base0.4/0"), UPE, r"key=\.\./base0\.4/0"),
    "path-inner-dotdot": (_set_path(1, "0/../1"), UPE, r"key=0/\.\./1"),
    "path-dot": (_set_path(1, "./1"), UPE, r"key=\./1"),
    "path-absolute": (_set_path(0, "/tmp"), UPE, r"absolute.*key=/tmp"),
    "path-backslash": (_set_path(0, "..\\0"), UPE, r"backslash"),
    "path-nul": (_set_path(1, "1\x00"), UPE, r"NUL"),
    "path-is-plain-group": (_set_path(1, "flat"), FileNotFoundError,
                            r"flat is a Zarr group without OME"),
    "level-rank": (_set_path(1, "flat/0"), IME,
                   r"level flat/0 rank differs from the axes \(expected=3, got=2\)"),
    "scale-short": (_set_ct(1, 0, "scale", [1.0, 1.0]), IME,
                    DS1 + r"\.scale must be 3 finite numbers"),
    "scale-long": (_set_ct(0, 0, "scale", [1.0] * 4), IME, DS0 + r"\.scale"),
    "translation-long": (_set_ct(1, 1, "translation", [0.0] * 4), IME,
                         DS1 + r"\.translation must be 3 finite numbers"),
    "translation-before-scale": (lambda m: _ct(1)(m).reverse(), IME,
                                 DS1 + r"\.coordinateTransformations must be a scale then"),
    "two-scales": (lambda m: _ct(1)(m).__setitem__(1, scale_ct(1, 1, 1)), IME,
                   DS1 + r"\.coordinateTransformations"),
    "three-transforms": (lambda m: _ct(0)(m).append(trans_ct(1, 1, 1)), IME,
                         DS0 + r"\.coordinateTransformations"),
    "unknown-transform": (lambda m: _ct(0)(m).__setitem__(0, {"type": "affine", "affine": [1]}),
                          IME, DS0 + r"\.coordinateTransformations"),
    "transforms-missing": (lambda m: m["datasets"][1].pop("coordinateTransformations"), IME,
                           DS1 + r"\.coordinateTransformations must be a non-empty list"),
    "transforms-object": (lambda m: m["datasets"][0].__setitem__("coordinateTransformations",
                                                                 scale_ct(1, 1, 1)),
                          IME, DS0 + r"\.coordinateTransformations"),
    "scale-values-missing": (lambda m: _ct(0)(m)[0].pop("scale"), IME, DS0 + r"\.scale"),
    "scale-nan": (_set_ct(1, 0, "scale", [NAN, 1.0, 1.0]), IME, DS1 + r"\.scale must be 3 finite"),
    "scale-inf": (_set_ct(0, 0, "scale", [1.0, INF, 1.0]), IME, DS0 + r"\.scale"),
    "translation-nan": (_set_ct(1, 1, "translation", [0.0, 0.0, NAN]), IME, DS1 + r"\.translation"),
    "translation-neg-inf": (_set_ct(1, 1, "translation", [-INF, 0.0, 0.0]), IME,
                            DS1 + r"\.translation"),
    "scale-string": (_set_ct(1, 0, "scale", ["2", 2.0, 2.0]), IME, DS1 + r"\.scale"),
    "scale-bool": (_set_ct(1, 0, "scale", [True, 2.0, 2.0]), IME, DS1 + r"\.scale"),
    "scale-null": (_set_ct(1, 0, "scale", None), IME, DS1 + r"\.scale"),
    "top-scale-short": (_set("coordinateTransformations", [scale_ct(1, 1)]), IME,
                        TOP + r"\.scale must be 3 finite numbers"),
    "top-scale-nan": (_set("coordinateTransformations", [scale_ct(1, NAN, 1)]), IME,
                      TOP + r"\.scale"),
    "top-translation-only": (_set("coordinateTransformations", [trans_ct(1, 1, 1)]), IME,
                             TOP + r"\.coordinateTransformations must be a scale then"),
    "top-transforms-empty": (_set("coordinateTransformations", []), IME,
                             TOP + r"\.coordinateTransformations"),
    "axes-duplicate": (lambda m: m["axes"].__setitem__(1, dict(m["axes"][0])), IME,
                       TOP + r"\.axes names must be unique.*'z', 'z', 'x'"),
    "axes-duplicate-strings": (_set("axes", ["y", "x", "x"]), IME, r"axes names must be unique"),
    "axes-missing": (lambda m: m.pop("axes"), IME, TOP + r"\.axes must list 2 to 5"),
    "axes-one": (lambda m: m.__setitem__("axes", m["axes"][:1]), IME,
                 TOP + r"\.axes must list 2 to 5"),
    "axes-six": (_set("axes", [{"name": n} for n in "abcdef"]), IME, TOP + r"\.axes"),
    "axis-number": (lambda m: m["axes"].__setitem__(0, 5), IME, r"axes\[0\] needs a string name"),
    "axis-name-number": (_set_axis(2, "name", 5), IME, r"axes\[2\] needs a string name"),
    "axis-name-missing": (lambda m: m["axes"][1].pop("name"), IME, r"axes\[1\]"),
    "axis-unit-number": (_set_axis(1, "unit", 1e-6), IME, r"axes\[1\]\.unit must be a string"),
    "multiscale-without-axes": (lambda m: [m.pop(k) for k in list(m) if k != "version"], IME,
                                TOP + r"\.axes"),
}


BAD_META_MORE = [
    pytest.param(_set_ct(1, 0, "scale", [0.0, 2.0, 2.0]), IME, DS1 + r"\.scale", id="scale-zero"),
    pytest.param(_set_ct(0, 0, "scale", [1.0, -1.0, 1.0]), IME, DS0 + r"\.scale",
                 id="scale-negative"),
    pytest.param(_set("coordinateTransformations", [scale_ct(1, 0, 1)]), IME, TOP + r"\.scale",
                 id="top-scale-zero"),
    pytest.param(_set_axis(0, "type", 5), IME, r"axes\[0\]\.type", id="axis-type-number"),
    pytest.param(_set_path(1, "missing_level"), FileNotFoundError, r"missing_level",
                 id="path-does-not-exist"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mutate,exc,pattern",
                         [pytest.param(*v, id=k) for k, v in BAD_META.items()] + BAD_META_MORE)
def test_bad_ome_metadata(tmp_path, saved_base, version, mutate, exc, pattern):
    root = tmp_path / "bad.ome.zarr"
    shutil.copytree(saved_base[version], root)
    doc = load_doc(root, version)
    mutate(multiscale_of(doc, version))
    dump_doc(root, version, doc)
    with pytest.raises(exc, match=pattern):
        vc.open(root)


@pytest.mark.parametrize("version", VERSIONS)
def test_bad_ome_group_attributes(tmp_path, saved_base, version):
    root = tmp_path / "bad.ome.zarr"
    shutil.copytree(saved_base[version], root)
    good = load_doc(root, version)
    ms = multiscale_of(good, version)

    def write(ome05, attrs04):
        doc = copy.deepcopy(good)
        if version == "0.5":
            doc["attributes"]["ome"] = ome05
        else:
            doc = attrs04
        dump_doc(root, version, doc)

    write({"version": "0.5"}, {})
    with pytest.raises(FileNotFoundError, match="without OME-Zarr multiscales"):
        vc.open(root)
    write({"version": "0.5", "multiscales": {"a": 1}}, {"multiscales": {"a": 1}})
    with pytest.raises(IME, match="multiscales"):
        vc.open(root)
    # the version: 0.5 keeps it in attributes.ome, 0.4 in each multiscale
    write({"multiscales": [ms]}, {"multiscales": [{**ms, "version": None}]})
    with pytest.raises(IME, match=r"version missing or not a string \(got=None\)"):
        vc.open(root)
    write({"version": 0.5, "multiscales": [ms]}, {"multiscales": [{**ms, "version": 4}]})
    with pytest.raises(IME, match=r"version missing or not a string \(got=(0\.5|4)\)"):
        vc.open(root)
    write({"version": "0.5", "multiscales": [5]}, {"multiscales": [5]})
    with pytest.raises(IME, match="multiscales|version"):
        vc.open(root)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad", ["cells", [""], ["a", 3], {"cells": 1}])
def test_bad_labels_group_listing(tmp_path, saved_base, version, bad):
    root = tmp_path / "bad.ome.zarr"
    shutil.copytree(saved_base[version], root)
    (root / "labels").mkdir()
    if version == "0.5":
        doc = {"zarr_format": 3, "node_type": "group",
               "attributes": {"ome": {"version": "0.5", "labels": bad}}}
        (root / "labels" / "zarr.json").write_text(json.dumps(doc))
    else:
        (root / "labels" / ".zgroup").write_text('{"zarr_format": 2}')
        (root / "labels" / ".zattrs").write_text(json.dumps({"labels": bad}))
    with pytest.raises(IME, match=r"labels must be a list of names"):
        vc.open(root)


# ---- 4. labels ---------------------------------------------------------------------------------

COLORS = {1: [255, 0, 0, 255], 7: [0, 128, 255, 128]}
PROPERTIES = [{"label-value": 1, "class": "nucleus"}, {"label-value": 7, "class": "membrane"}]
LABEL_VALUES = np.array([0, 1, 7, 300], dtype="uint32")


def label_blob(shape, seed=5):
    return np.random.default_rng(seed).choice(LABEL_VALUES, size=shape)


def check_label_group(root, version, name, n_levels):
    """The labels/ listing and labels/NAME's image-label, read with zarr-python and validated
    with ome_zarr_models."""
    pytest.importorskip("ome_zarr_models")
    from ome_zarr_models import v04, v05

    models = v05 if version == "0.5" else v04
    g = zarr.open_group(str(root), mode="r")
    models.Image.from_zarr(g)
    labels = models.Labels.from_zarr(g["labels"])
    listed = labels.attributes.ome.labels if version == "0.5" else labels.attributes.labels
    assert list(listed) == [name]
    lab = models.ImageLabel.from_zarr(g[f"labels/{name}"])
    attrs = lab.attributes.ome if version == "0.5" else lab.attributes
    assert len(attrs.multiscales[0].datasets) == n_levels
    raw = dict(g[f"labels/{name}"].attrs)
    il = raw["ome"]["image-label"] if version == "0.5" else raw["image-label"]
    assert il["source"] == {"image": "../../"}
    assert il["colors"] == [{"label-value": v, "rgba": c} for v, c in COLORS.items()]
    assert il["properties"] == PROPERTIES
    if version == "0.4":
        assert il["version"] == "0.4"
    else:
        assert "version" not in il and raw["ome"]["version"] == "0.5"


@pytest.mark.parametrize("version", VERSIONS)
def test_labels_single_level(tmp_path, version):
    a = blob((6, 11, 9), seed=4)
    lab = label_blob(a.shape)
    img = vc.from_array(a, scale=(3.0, 1.0, 1.0), translation=(5.0, 0.0, -1.0),
                        units=("micrometer",) * 3)
    out = tmp_path / "one.ome.zarr"
    vc.save(img, out, version=version, chunks=4,
            labels={"cells": {"data": lab, "colors": COLORS, "properties": PROPERTIES}})
    check_label_group(out, version, "cells", 1)
    opened = vc.open(out)
    assert opened.labels == ["cells"]
    lo = vc.open(out, path="labels/cells")
    assert lo.dtype == lab.dtype
    assert [lv.shape for lv in lo.levels] == [a.shape]
    assert lo.scale == opened.scale and lo.translation == opened.translation
    assert lo.units == opened.units and lo.dims == opened.dims
    np.testing.assert_array_equal(lo.read(), lab)
    region = (slice(None, None, -1), 3, slice(2, None, 2))
    np.testing.assert_array_equal(lo.read(region), lab[region])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("label_method", ["mode", "nearest"])
def test_labels_pyramid(tmp_path, version, label_method):
    a = blob((13, 22, 17), seed=6)
    lab = label_blob(a.shape)
    scale, trans = (2.0, 0.5, 0.5), (1.0, 2.0, 3.0)
    img = vc.from_array(a, scale=scale, translation=trans, units=("micrometer",) * 3)
    factors = [2, {"z": 2, "y": 4, "x": 4}]
    pyr = vc.build_pyramid(img, factors, "mean")
    out = tmp_path / "lab.ome.zarr"
    vc.save(pyr, out, version=version, chunks=8, label_method=label_method,
            labels={"cells": {"data": lab, "colors": COLORS, "properties": PROPERTIES}})

    check_label_group(out, version, "cells", len(pyr.levels))
    opened = vc.open(out)
    assert opened.labels == ["cells"]
    lo = vc.open(out, path="labels/cells")
    want = vc.build_pyramid(vc.from_array(lab), factors, label_method)
    assert len(lo.levels) == len(opened.levels) == 3
    for k, (lv, im_lv, w) in enumerate(zip(lo.levels, opened.levels, want.levels)):
        assert lv.path == str(k)
        assert lv.shape == im_lv.shape == w.shape
        assert lv.image.dtype == lab.dtype
        got = lv.image.read()
        np.testing.assert_array_equal(got, w.data, err_msg=f"level {k}")
        assert set(np.unique(got)) <= set(LABEL_VALUES.tolist())
        assert lv.scale == im_lv.scale
        if label_method == "mode":  # a window: centres move by (f - 1) / 2 voxels of level 0
            exp = tuple(t + (f - 1) / 2 * s for t, f, s in zip(trans, w.factors, scale))
        else:  # strided: level 0's first voxel
            exp = trans
        assert lv.translation == exp, k
    np.testing.assert_array_equal(lo.read(), lab)
    ldoc = json.loads((out / "labels" / "cells" / ome_doc_key(version)).read_text())
    assert multiscale_of(ldoc, version)["type"] == label_method


BAD_LABELS = {
    "float": (lambda a: {"cells": a.astype("float32")}, r"label cells must have an integer dtype"),
    "bool": (lambda a: {"cells": a > 0}, r"label cells must have an integer dtype"),
    "shape": (lambda a: {"cells": a[:, :-1]}, r"label cells must have level 0's shape"),
    "rank": (lambda a: {"cells": a[0]}, r"dims length differs"),
    "not-dict-list": (lambda a: [a], r"labels must be a dict"),
    "not-dict-array": (lambda a: a, r"labels must be a dict"),
    "name-slash": (lambda a: {"a/b": a}, r"label names must be plain names \(got='a/b'\)"),
    "name-empty": (lambda a: {"": a}, r"label names must be plain names \(got=''\)"),
    "name-dotdot": (lambda a: {"..": a}, r"label names must be plain names"),
    "name-int": (lambda a: {3: a}, r"label names must be plain names"),
    "unknown-key": (lambda a: {"cells": {"data": a, "colours": {}}},
                    r"label cells: keys are data, colors, properties"),
    "no-data": (lambda a: {"cells": {"colors": COLORS}}, r"label cells: keys are"),
}
BAD_LABELS_MORE = [
    pytest.param(lambda a: {"cells": a[0]}, r"label cells", id="rank-names-label"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("make,pattern",
                         [pytest.param(*v, id=k) for k, v in BAD_LABELS.items()]
                         + BAD_LABELS_MORE)
def test_bad_labels_argument(tmp_path, version, make, pattern):
    a = blob((6, 10, 8), seed=8)
    out = tmp_path / "x.ome.zarr"
    with pytest.raises(vc.InvalidArgumentError, match=pattern):
        vc.save(vc.from_array(a), out, version=version, labels=make(label_blob(a.shape)))
    assert not out.exists()  # refused before anything is written


@pytest.mark.parametrize("method", ["mean", "gaussian", "min", "max", "median", None])
def test_bad_label_method(tmp_path, method):
    a = blob((6, 10, 8), seed=8)
    out = tmp_path / "x.ome.zarr"
    with pytest.raises(vc.InvalidArgumentError, match=r"label_method must be mode or nearest"):
        vc.save(vc.from_array(a), out, labels={"cells": label_blob(a.shape)},
                label_method=method)
    assert not out.exists()


@pytest.mark.parametrize("extra,field", [
    pytest.param({"colors": [{"label-value": 1}]}, "colors", id="colors-list-no-rgba"),
    pytest.param({"colors": {"a": [1, 2, 3, 4]}}, "colors", id="colors-key-not-int"),
    pytest.param({"colors": {1: None}}, "colors", id="colors-rgba-none"),
    pytest.param({"colors": {1: [255, 0, 0]}}, "colors", id="colors-rgb-3"),
    pytest.param({"colors": {1: [300, 0, 0, 255]}}, "colors", id="colors-over-255"),
    pytest.param({"properties": 5}, "properties", id="properties-int"),
    pytest.param({"properties": "abc"}, "properties", id="properties-string"),
    pytest.param({"properties": [{"class": "x"}]}, "properties", id="properties-no-label-value"),
])
def test_bad_label_colors_properties(tmp_path, extra, field):
    a = blob((6, 10, 8), seed=8)
    out = tmp_path / "x.ome.zarr"
    with pytest.raises(vc.InvalidArgumentError, match=field):
        vc.save(vc.from_array(a), out, labels={"cells": {"data": label_blob(a.shape), **extra}})
    assert not out.exists()


# ---- 5. save() through zarr-python stores and groups --------------------------------------------

def assert_opened_equals(img, pyr):
    assert [lv.shape for lv in img.levels] == [lv.shape for lv in pyr.levels]
    assert [lv.scale for lv in img.levels] == [lv.scale for lv in pyr.levels]
    assert [lv.translation for lv in img.levels] == [lv.translation for lv in pyr.levels]
    for k, lv in enumerate(pyr.levels):
        np.testing.assert_array_equal(img.read(level=k), lv.data, err_msg=f"level {k}")


def assert_zarr_python_reads(group, pyr, version):
    assert group.metadata.zarr_format == (3 if version == "0.5" else 2)
    attrs = dict(group.attrs)
    ms = attrs["ome"]["multiscales"] if version == "0.5" else attrs["multiscales"]
    assert [d["path"] for d in ms[0]["datasets"]] == [str(k) for k in range(len(pyr.levels))]
    for k, lv in enumerate(pyr.levels):
        np.testing.assert_array_equal(group[str(k)][...], lv.data, err_msg=f"zarr-python {k}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["memory", "local"])
def test_save_into_store(tmp_path, version, kind):
    a = blob((9, 21, 18), seed=9)
    img = vc.from_array(a, scale=(1.0, 0.5, 0.5), units=("micrometer",) * 3)
    pyr = vc.build_pyramid(img, [2, 4], "mean")
    store = MemoryStore() if kind == "memory" else LocalStore(str(tmp_path / "st.zarr"))
    label = vc.save(pyr, store, version=version, chunks=8)
    assert label.startswith(type(store).__name__)
    assert_opened_equals(vc.open(store), pyr)
    assert_zarr_python_reads(zarr.open_group(store, mode="r"), pyr, version)
    if kind == "local":
        assert_opened_equals(vc.open(tmp_path / "st.zarr"), pyr)

    with pytest.raises(FileExistsError, match="overwrite=True"):
        vc.save(pyr, store, version=version)
    np.testing.assert_array_equal(vc.open(store).read(level=2), pyr.levels[2].data)  # untouched
    # overwrite replaces the whole node (also across versions: nothing of the old one stays)
    other = "0.4" if version == "0.5" else "0.5"
    pyr2 = vc.build_pyramid(vc.from_array(a[:, :, ::-1].copy()), [3], "max")
    vc.save(pyr2, store, version=other, chunks=8, overwrite=True)
    back = vc.open(store)
    assert back.ome["version"] == other
    assert_opened_equals(back, pyr2)
    assert_zarr_python_reads(zarr.open_group(store, mode="r"), pyr2, other)


@pytest.mark.parametrize("version", VERSIONS)
def test_save_into_zarr_group(version, quiet_zarr):
    a = blob((7, 13, 16), seed=10, dtype="int32")
    pyr = vc.build_pyramid(vc.from_array(a), [2], "nearest")
    store = MemoryStore()
    with quiet_zarr():
        root = zarr.open_group(store, mode="w", zarr_format=3 if version == "0.5" else 2)
        sibling = root.create_array("other", shape=(4,), dtype="u1", chunks=(4,))
        sibling[...] = [1, 2, 3, 4]
        sub = root.create_group("img")
    # A zarr.Group is a node that exists: writing into it needs overwrite=True.
    with pytest.raises(FileExistsError, match="overwrite=True"):
        vc.save(pyr, sub, version=version)
    assert vc.save(pyr, sub, version=version, chunks=8, overwrite=True) == "MemoryStore:img"
    assert_opened_equals(vc.open(store, path="img"), pyr)
    assert_opened_equals(vc.open(zarr.open_group(store, path="img", mode="r")), pyr)
    assert_zarr_python_reads(zarr.open_group(store, path="img", mode="r"), pyr, version)
    again = zarr.open_group(store, mode="r")
    np.testing.assert_array_equal(again["other"][...], [1, 2, 3, 4])  # the sibling survives
    assert sorted(again.group_keys()) == ["img"]
    with pytest.raises(FileExistsError):  # the saved group, reopened, exists as well
        vc.save(pyr, again["img"], version=version)


# ---- 6. a streamed pyramid saved through a MemoryStore ------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", ["mean", "mode", "nearest"])
def test_streamed_save_into_memory_store(tmp_path, version, method):
    a = blob((23, 30, 27), seed=11, high=6)
    src_path = tmp_path / "src.zarr"
    src = vc.create_array(src_path, a.shape, a.dtype, chunks=(5, 16, 16))
    src.write(a)
    geo = {"dims": ("z", "y", "x"), "scale": (2.0, 0.7, 0.7), "translation": (0.5, 1.0, -1.0),
           "units": ("micrometer",) * 3}
    factors = [{"y": 2, "x": 2}, 4]
    lazy = vc.build_pyramid(vc.from_array(vc.open(src_path), **geo), factors, method)
    assert lazy.streamed and lazy.levels[1].data is None
    eager = vc.build_pyramid(vc.from_array(a, **geo), factors, method)
    assert not eager.streamed

    s_lazy, s_eager = MemoryStore(), MemoryStore()
    kw = {"version": version, "chunks": 8, "shards": 16 if version == "0.5" else None}
    vc.save(lazy, s_lazy, **kw)
    vc.save(eager, s_eager, **kw)
    got, want = vc.open(s_lazy), vc.open(s_eager)
    assert got.ome == want.ome

    def geometry(img):
        return [(lv.path, lv.shape, lv.scale, lv.translation, lv.chunks, lv.shards)
                for lv in img.levels]

    assert geometry(got) == geometry(want)
    assert_opened_equals(got, eager)
    g_lazy, g_eager = zarr.open_group(s_lazy, mode="r"), zarr.open_group(s_eager, mode="r")
    assert dict(g_lazy.attrs) == dict(g_eager.attrs)
    for k, lv in enumerate(eager.levels):
        np.testing.assert_array_equal(g_lazy[str(k)][...], lv.data, err_msg=f"level {k}")


def test_label_colors_in_ome_list_form_are_accepted(tmp_path):
    a = blob((6, 10, 8), seed=8)
    out = tmp_path / "x.ome.zarr"
    colors = [{"label-value": 1, "rgba": [1, 2, 3, 4]}, {"label-value": 2, "rgba": [5, 6, 7, 255]}]
    vc.save(vc.from_array(a), out, labels={"cells": {"data": label_blob(a.shape), "colors": colors,
                                                     "properties": [{"label-value": 1, "class": "x"}]}})
    meta = json.loads((out / "labels" / "cells" / "zarr.json").read_text())["attributes"]["ome"]["image-label"]
    assert meta["colors"] == colors
    assert meta["properties"] == [{"label-value": 1, "class": "x"}]
