"""vc.create_plate and vc.create(positions=) on URLs: memory:// and s3:// (moto's server mode).
Plates and multi-position acquisitions written field by field and plane by plane read back through
vc.open(url) as the same plates, wells and positions as the local copy, and the remote tree holds
the same objects with the same bytes (metadata documents included); overwrite= refused and
allowed as for save; a failed field leaves nothing behind; bad options and protocols that cannot
write get named errors."""

import json
import os

import numpy as np
import pytest
import voxcore as vc

fsspec = pytest.importorskip("fsspec")

ROWS, COLS = ["A", "B"], ["1", "2", "3"]
WELLS = ["A/1", "A/3", "B/2"]
SHAPE = (2, 2, 4, 24, 32)  # t, c, z, y, x
STAGE = [{"name": "tile-a", "x": 0.0, "y": 0.0}, {"name": "tile-b", "x": 100.0, "y": -20.0, "z": 3.0}]



def _clear_memory():
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


@pytest.fixture
def memory():
    """memory:// emptied before and after the test."""
    _clear_memory()
    yield "memory://t", {}
    _clear_memory()


@pytest.fixture(params=["memory", "s3"])
def remote(request):
    """(base URL, storage_options) of an empty place to write, on each backend."""
    if request.param == "memory":
        yield request.getfixturevalue("memory")
        return
    opts, fs = request.getfixturevalue("s3")
    base = f"bkt/{request.node.name.replace('[', '-').replace(']', '')}"
    yield f"s3://{base}", opts
    if fs.exists(base):
        fs.rm(base, recursive=True)


def _remote_tree(url, opts):
    """{key relative to url: bytes} of every object under url."""
    fs, root = fsspec.core.url_to_fs(url, **opts)
    fs.invalidate_cache()
    root = root.rstrip("/")
    return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)}


def _local_tree(path):
    """{key: bytes} of a local tree's objects (its writers' lock files left out)."""
    return {f.relative_to(path).as_posix(): f.read_bytes() for f in sorted(path.rglob("*"))
            if f.is_file() and not f.name.endswith(".vxlock")}


def _same_trees(url, opts, path):
    got, want = _remote_tree(url, opts), _local_tree(path)
    assert sorted(got) == sorted(want)
    assert any(k.endswith("zarr.json") or k.endswith(".zattrs") for k in want)
    for key in want:  # chunks and metadata documents alike, byte for byte
        assert got[key] == want[key], key


def _field(k, shape=(2, 4, 24, 32)):
    return np.random.default_rng(k).integers(0, 4000, shape).astype(np.uint16)


def _write_plate(path, version, **kw):
    """A plate of three wells: two saved fields each (a pyramid, channels) and one plane by plane."""
    with vc.create_plate(path, ROWS, COLS, name="screen", version=version, attributes={"lab": "x"},
                         acquisitions=[{"id": 0, "name": "first"}, {"id": 3}], **kw) as w:
        where = []
        for i, well in enumerate(WELLS):
            for f in range(2):
                pyr = vc.build_pyramid(vc.from_array(_field(10 * i + f), dims=("c", "z", "y", "x"),
                                                     scale=(1, 2.0, 0.5, 0.5)), [{"y": 2, "x": 2}])
                where.append(w.write_field(well, pyr, acquisition=3 if f else 0, chunks=8,
                                           channels=[{"label": "dapi"}, {"label": "gfp"}]))
        live = w.create_field("B/2", (4, 24, 32), "u2", dims=("z", "y", "x"), chunks=8, pyramid=[2])
        with live:
            for z in range(4):
                live.write_plane(_field(99, (24, 32)) + z, z=z)
        assert w.wells == {"A/1": ["0", "1"], "A/3": ["0", "1"], "B/2": ["0", "1", "2"]}
    return where


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_a_plate_on_a_url_reads_and_stores_as_the_local_one(remote, tmp_path, version):
    base, opts = remote
    url, local = f"{base}/plate.ome.zarr", tmp_path / "plate.ome.zarr"
    where = _write_plate(url, version, storage_options=opts)
    _write_plate(local, version)
    assert all(w.split("://")[0] == url.split("://")[0] for w in where)
    assert where[0].endswith("plate.ome.zarr/A/1/0") and where[-1].endswith("plate.ome.zarr/B/2/1")
    got, want = vc.open(url, storage_options=opts), vc.open(local)
    assert isinstance(got, vc.Plate) and got.version == version and got.name == "screen"
    assert (got.rows, got.columns, list(got.wells)) == (ROWS, COLS, WELLS)
    assert got.field_count == 3 and [a["id"] for a in got.acquisitions] == [0, 3]
    for well in WELLS:
        assert len(got[well]) == len(want[well]) and got[well].acquisitions == want[well].acquisitions
        for f, (a, b) in enumerate(zip(got[well].fields, want[well].fields)):
            assert a.dims == b.dims and a.scale == b.scale and a.channels == b.channels
            assert len(a.levels) == len(b.levels) == 2
            for k in range(2):
                np.testing.assert_array_equal(a.read(level=k), b.read(level=k))
    np.testing.assert_array_equal(got["B/2"][2].read(), _field(99, (24, 32)) + np.arange(4)[:, None, None])
    _same_trees(url, opts, local)


def _acquire(path, **kw):
    w = vc.create(path, SHAPE, "u2", dims=("t", "c", "z", "y", "x"), scale=(1.5, 1.0, 2.0, 0.5, 0.5),
                  positions=STAGE, pyramid=[{"y": 2, "x": 2}], chunks=8, attributes={"run": 7}, **kw)
    for t in range(SHAPE[0]):
        for p in range(len(STAGE)):
            for c in range(SHAPE[1]):
                vol = _field(100 * p + 10 * t + c, SHAPE[2:])
                for z in range(SHAPE[2]):
                    w.write_plane(vol[z], t=t, c=c, z=z, position=p)
    return w


def test_a_multi_position_acquisition_on_a_url_reads_and_stores_as_the_local_one(remote, tmp_path):
    base, opts = remote
    url, local = f"{base}/acq.ome.zarr", tmp_path / "acq.ome.zarr"
    w = _acquire(url, storage_options=opts)
    try:
        assert w.position_names == ["tile-a", "tile-b"] and w.root.endswith("acq.ome.zarr")
        np.testing.assert_array_equal(w.get_data(timepoint=1, position=1, channel=0), _field(110, SHAPE[2:]))
    finally:
        w.close()
    _acquire(local).close()
    got, want = vc.open(url, storage_options=opts), vc.open(local)
    assert isinstance(got, vc.Plate) and list(got.wells) == ["A/1"]
    assert got.positions == 2 and got.position_names == ["tile-a", "tile-b"] and got.shape_t == 2
    root = json.loads(_remote_tree(url, opts)["zarr.json"])["attributes"]  # voxcore's beside the user's
    assert root["run"] == 7 and root["voxcore"]["positions"] == STAGE
    for p in range(2):
        for t in range(2):
            for c in range(2):
                np.testing.assert_array_equal(got.get_data(timepoint=t, position=p, channel=c),
                                              _field(100 * p + 10 * t + c, SHAPE[2:]))
                np.testing.assert_array_equal(got.get_data(timepoint=t, position=p, channel=c, resolution=2),
                                              want.get_data(timepoint=t, position=p, channel=c, resolution=2))
    assert got["A/1"][1].translation == (0.0, 0.0, 3.0, -20.0, 100.0)
    well = vc.open(f"{url}/A/1", storage_options=opts)  # a well reads with the same names
    np.testing.assert_array_equal(well.get_data(timepoint=0, position=1, channel=1), _field(101, SHAPE[2:]))
    _same_trees(url, opts, local)


def test_time_points_grow_on_a_url_as_locally(memory, tmp_path):
    base, opts = memory
    for path, kw in ((f"{base}/grow.ome.zarr", {"storage_options": opts}), (tmp_path / "grow.ome.zarr", {})):
        with vc.create(path, (None, 4, 16, 16), "u2", positions=2, chunks=8, **kw) as w:
            for t in range(3):
                for p in range(2):
                    for z in range(4):
                        w.write_plane(np.full((16, 16), 10 * t + p + z, np.uint16), t=t, z=z, position=p)
    got = vc.open(f"{base}/grow.ome.zarr", storage_options=opts)
    assert got.shape_t == 3
    assert [int(v) for v in got.get_data(timepoint=2, position=1)[:, 0, 0]] == [21, 22, 23, 24]
    _same_trees(f"{base}/grow.ome.zarr", opts, tmp_path / "grow.ome.zarr")


def test_overwrite_is_refused_then_allowed(remote):
    base, opts = remote
    url = f"{base}/p.ome.zarr"
    with vc.create_plate(url, ["A"], ["1", "2"], storage_options=opts) as w:
        w.write_field("A/2", _field(1))
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        vc.create_plate(url, ["A"], ["1"], storage_options=opts)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        vc.create(url, (2, 8, 8), "u2", positions=2, storage_options=opts)
    assert list(vc.open(url, storage_options=opts).wells) == ["A/2"]  # untouched
    with vc.create_plate(url, ["A"], ["1", "2"], overwrite=True, storage_options=opts) as w:
        assert list(vc.open(url, storage_options=opts).wells) == []
        assert sorted(_remote_tree(url, opts)) == ["zarr.json"]  # the old fields are gone
        w.write_field("A/1", _field(2))
    with vc.create(url, (4, 8, 8), "u2", positions=["p", "q"], overwrite=True, storage_options=opts) as w:
        for z in range(4):
            w.write_plane(np.full((8, 8), z, np.uint16), z=z, position=1)
    got = vc.open(url, storage_options=opts)
    assert got.position_names == ["p", "q"] and [int(v) for v in got.get_data(position=1)[:, 0, 0]] == [0, 1, 2, 3]
    assert int(got.get_data(position=0).max()) == 0


def test_overwrite_refuses_to_delete_what_is_not_zarr(memory):
    base, opts = memory
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/t/mine/zarr.json", b'{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    fs.pipe_file("/t/mine/notes.txt", b"keep")
    for create in (lambda: vc.create_plate(f"{base}/mine", ["A"], ["1"], overwrite=True, storage_options=opts),
                   lambda: vc.create(f"{base}/mine", (2, 8, 8), "u1", positions=2, overwrite=True,
                                     storage_options=opts)):
        with pytest.raises(vc.TargetNotReplaceableError, match="notes.txt"):
            create()
    assert sorted(_remote_tree(f"{base}/mine", opts)) == ["notes.txt", "zarr.json"]
    assert fs.cat_file("/t/mine/notes.txt") == b"keep"


def test_a_failed_field_on_a_url_leaves_nothing_and_frees_its_name(memory):
    base, opts = memory
    url = f"{base}/p.ome.zarr"
    w = vc.create_plate(url, ["B"], ["1"], storage_options=opts)
    w.write_field("B/1", _field(1), chunks=8)

    class Broken:  # a field whose reading fails after its first level arrays exist
        shape, dtype, ndim = (2, 4, 24, 32), np.dtype("u2"), 4

        def __getitem__(self, index):
            raise OSError("the camera went away")
    with pytest.raises(OSError, match="camera"):
        w.write_field("B/1", vc.from_array(Broken(), dims=("c", "z", "y", "x")))
    assert not any(k.startswith("B/1/1/") for k in _remote_tree(url, opts))
    plate = vc.open(url, storage_options=opts)
    assert list(plate.wells) == ["B/1"] and len(plate["B/1"]) == 1
    w.write_field("B/1", _field(2), chunks=8)  # the failed field's name is free again
    got = [im.read() for im in vc.open(url, storage_options=opts)["B/1"].fields]
    np.testing.assert_array_equal(got[0], _field(1))
    np.testing.assert_array_equal(got[1], _field(2))


def test_bad_options_and_protocols_that_cannot_write_are_named_errors(s3, tmp_path):
    opts, _ = s3
    with pytest.raises(vc.StoreError, match="s3://bkt/bad.ome.zarr.*no_such_option"):
        vc.create_plate("s3://bkt/bad.ome.zarr", ["A"], ["1"], storage_options={**opts, "no_such_option": 1})
    with pytest.raises(vc.StoreError, match="s3://bkt/bad.ome.zarr.*no_such_option"):
        vc.create("s3://bkt/bad.ome.zarr", (2, 8, 8), "u1", positions=2, storage_options={**opts, "no_such_option": 1})
    with pytest.raises(vc.UnsupportedError, match="nosuchproto:// cannot be opened"):
        vc.create_plate("nosuchproto://x/p.ome.zarr", ["A"], ["1"])
    with pytest.raises(vc.UnsupportedError, match="nosuchproto:// cannot be opened"):
        vc.create("nosuchproto://x/p.ome.zarr", (2, 8, 8), "u1", positions=2)
    with pytest.raises(vc.InvalidArgumentError, match="storage_options= is for URLs"):
        vc.create_plate(tmp_path / "p.ome.zarr", ["A"], ["1"], storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="storage_options= is for URLs"):
        vc.create(tmp_path / "a.ome.zarr", (2, 8, 8), "u1", positions=2, storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="create_plate writes an OME-Zarr plate, not a single file"):
        vc.create_plate("s3://bkt/p.nii.gz", ["A"], ["1"], storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="positions=.* writes an OME-Zarr plate, not a single file"):
        vc.create("s3://bkt/a.nii", (2, 8, 8), "u1", positions=2, storage_options=opts)
    with pytest.raises(vc.InvalidArgumentError, match="create_plate writes a local directory, a URL or"):
        vc.create_plate(42, ["A"], ["1"])
    assert not os.listdir(tmp_path) and not os.path.exists("s3:") and not os.path.exists("nosuchproto:")


def test_a_read_only_protocol_is_a_store_error(tmp_path):
    pytest.importorskip("aiohttp")
    from _http import Server

    with Server(tmp_path) as s:
        with pytest.raises(vc.StoreError, match="p.ome.zarr.*failed to write 'zarr.json'"):
            vc.create_plate(f"{s.url}/p.ome.zarr", ["A"], ["1"])
        with pytest.raises(vc.StoreError, match="a.ome.zarr.*failed to write"):
            vc.create(f"{s.url}/a.ome.zarr", (2, 8, 8), "u1", positions=2)
    assert not os.listdir(tmp_path)
