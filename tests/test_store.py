"""zarr-python store objects as byte sources.

``vc.open(store, path=...)`` on a MemoryStore, a LocalStore (also read-only) or a read-mode
ZipStore reads exactly what ``vc.open(directory)`` reads, also for sharded and v2 arrays, with
missing chunks, OME groups and corrupt chunks handled the same way. Writes through a store
object either work (zarr-python then reads them back) or raise NotImplementedError; both are
asserted explicitly.
"""
from __future__ import annotations

import zlib

import numcodecs
import numpy as np
import pytest
import voxcore as vc
import zarr
import zarr.codecs as zc
from zarr.storage import LocalStore, MemoryStore, ZipStore

# Partial-chunk writes are what these tests exercise; the warning itself is tested in
# test_errors_named.py.
pytestmark = pytest.mark.filterwarnings("ignore::voxcore.UnalignedWriteWarning")

SHAPE = (37, 50, 23)
CHUNKS = (16, 16, 8)
BOX = (slice(5, 30), slice(3, 35), slice(2, 17))

ARRAYS = ["v3-zstd", "v3-sharded", "v3-sharded-start", "v2-blosc"]


def array_kwargs(name: str) -> dict:
    """Built at test time (codec objects are created inside quiet_zarr())."""
    if name == "v3-zstd":
        return {"zarr_format": 3, "chunks": CHUNKS, "compressors": [zc.ZstdCodec(level=1)],
                "dimension_names": ("z", "y", "x")}
    if name == "v3-sharded":
        return {"zarr_format": 3, "chunks": CHUNKS, "shards": (32, 32, 16),
                "compressors": [zc.BloscCodec(cname="lz4", shuffle="shuffle")]}
    if name == "v3-sharded-start":
        sharding = zc.ShardingCodec(chunk_shape=CHUNKS, codecs=[zc.BytesCodec(), zc.GzipCodec()],
                                    index_location="start")
        return {"zarr_format": 3, "chunks": (32, 32, 16), "compressors": None, "filters": None,
                "serializer": sharding}
    if name == "v2-blosc":
        blosc = numcodecs.Blosc(cname="zstd", shuffle=numcodecs.Blosc.BITSHUFFLE)
        return {"zarr_format": 2, "chunks": CHUNKS, "filters": None, "compressors": blosc}
    raise KeyError(name)


def fill_store(store, name: str, path: str, make_volume, quiet_zarr):
    """Write array `name` at `path` inside `store` (only BOX is written: missing chunks)."""
    src = make_volume(SHAPE, "u2", zlib.crc32(name.encode()))
    expected = np.full(SHAPE, 3, np.uint16)
    expected[BOX] = src[BOX]
    with quiet_zarr():
        arr = zarr.create_array(store=store, name=path, shape=SHAPE, dtype="u2", fill_value=3,
                                **array_kwargs(name))
        arr[BOX] = src[BOX]
    return expected


STORE_KINDS = ["memory", "local", "local-read-only", "zip"]


def make_store(kind: str, tmp_path, name, path, make_volume, quiet_zarr):
    """Return (store to open, expected data, directory holding the same array or None)."""
    if kind == "memory":
        store = MemoryStore()
        return store, fill_store(store, name, path, make_volume, quiet_zarr), None
    if kind in ("local", "local-read-only"):
        root = tmp_path / "root"
        expected = fill_store(LocalStore(str(root)), name, path, make_volume, quiet_zarr)
        store = LocalStore(str(root), read_only=(kind == "local-read-only"))
        return store, expected, root / path
    if kind == "zip":
        zpath = tmp_path / "data.zip"
        with quiet_zarr():
            zw = ZipStore(str(zpath), mode="w")
            expected = fill_store(zw, name, path, make_volume, quiet_zarr)
            zw.close()
        return ZipStore(str(zpath), mode="r"), expected, None
    raise KeyError(kind)


@pytest.mark.parametrize("name", ARRAYS)
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_open_store_reads_like_a_path(tmp_path, kind, name, make_volume, quiet_zarr, bit_equal):
    store, expected, directory = make_store(kind, tmp_path, name, "grp/arr", make_volume,
                                            quiet_zarr)
    img = vc.open(store, path="grp/arr")
    assert img.shape == SHAPE and img.dtype == np.uint16
    bit_equal(img.read(), expected, f"{kind}: whole read")
    rng = np.random.default_rng(zlib.crc32(f"{kind}{name}".encode()))
    for _ in range(5):
        region = tuple(slice(int(a), int(a) + int(rng.integers(1, n - a + 1)),
                             int(rng.choice([1, 2])))
                       for a, n in ((int(rng.integers(0, n)), n) for n in SHAPE))
        bit_equal(img.read(region), expected[region], f"{kind}: read({region})")
    out = np.empty((10, 10, 10), np.uint16, order="F")
    assert img.read((slice(20, 30), slice(40, 50), slice(13, 23)), out=out) is out
    bit_equal(out, expected[20:30, 40:50, 13:23])
    if directory is not None:
        from_path = vc.open(directory)
        bit_equal(from_path.read(), img.read(), "path and store reads agree")
        assert from_path.chunks == img.chunks and from_path.shards == img.shards
    with quiet_zarr():
        zarr_arr = zarr.open_array(store, path="grp/arr", mode="r")
    assert tuple(img.chunks) == tuple(zarr_arr.chunks)
    assert img.shards == (None if zarr_arr.shards is None else tuple(zarr_arr.shards))
    if name == "v3-zstd":
        assert img.dims == ("z", "y", "x")


def test_open_store_root_array(make_volume, quiet_zarr, bit_equal):
    store = MemoryStore()
    src = make_volume((20, 20), "f4", 1)
    with quiet_zarr():
        arr = zarr.create_array(store=store, shape=src.shape, chunks=(8, 8), dtype="f4")
        arr[...] = src
    bit_equal(vc.open(store).read(), src)


def test_open_zarr_python_ome_group_in_memory(make_volume, quiet_zarr, bit_equal):
    store = MemoryStore()
    src = make_volume((20, 30), "u2", 2)
    with quiet_zarr():
        grp = zarr.open_group(store, mode="w", zarr_format=3)
        grp.attrs["ome"] = {"version": "0.5", "multiscales": [{
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": "s0", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, 1.0]}]}]}]}
        a = grp.create_array("s0", shape=src.shape, chunks=(8, 8), dtype="u2",
                             dimension_names=("y", "x"))
        a[...] = src
    img = vc.open(store)
    assert img.shape == src.shape
    bit_equal(img.read(), src)


def test_missing_array_in_store(quiet_zarr):
    store = MemoryStore()
    with pytest.raises(FileNotFoundError):
        vc.open(store, path="nothing/here")


def test_corrupt_chunk_in_store_is_reported(quiet_zarr):
    store = MemoryStore()
    with quiet_zarr():
        arr = zarr.create_array(store=store, name="a", shape=(16, 16), chunks=(8, 8), dtype="u2",
                                compressors=[zc.ZstdCodec()])
        arr[...] = np.arange(256, dtype=np.uint16).reshape(16, 16)
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        proto = default_buffer_prototype()
        sync(store.set("a/c/0/0", proto.buffer.from_bytes(b"")))
        sync(store.set("a/c/1/1", proto.buffer.from_bytes(b"\x28\xb5\x2f\xfd\x00")))
    img = vc.open(store, path="a")
    with pytest.raises(vc.CorruptDataError) as ei:
        img[0:8, 0:8]
    assert "c/0/0" in str(ei.value)
    with pytest.raises(vc.CorruptDataError) as ei:
        img[8:, 8:]
    assert "c/1/1" in str(ei.value)
    np.testing.assert_array_equal(img[0:8, 8:16], np.arange(256).reshape(16, 16)[0:8, 8:16])


# ---------------------------------------------------------------------------- writes via stores
def _write_or_not_implemented(fn):
    """Run fn; return True if it worked, False if it raised NotImplementedError."""
    try:
        fn()
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("fmt,shards", [(3, None), (3, (16, 16)), (2, None)],
                         ids=["v3", "v3-sharded", "v2"])
def test_create_array_in_memory_store(fmt, shards, make_volume, quiet_zarr, bit_equal):
    """create_array on a store object works (zarr-python reads it) or raises
    NotImplementedError; nothing else."""
    store = MemoryStore()
    src = make_volume((30, 40), "u2", 3)
    made = {}

    def create():
        made["img"] = vc.create_array(store, src.shape, "u2", chunks=(8, 8), shards=shards,
                                      zarr_format=fmt)

    if not _write_or_not_implemented(create):
        return  # documented: writes through store objects are not supported
    img = made["img"]
    img.write(src[:, :17])
    img.write(src[:, 17:], offset=(0, 17))
    with quiet_zarr():
        data = zarr.open_array(store, mode="r")[...]
    bit_equal(data, src, "zarr-python reads what voxcore wrote into the MemoryStore")
    bit_equal(vc.open(store).read(), src)


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_write_through_opened_store(tmp_path, kind, make_volume, quiet_zarr, bit_equal):
    store, expected, _ = make_store(kind, tmp_path, "v3-sharded", "arr", make_volume, quiet_zarr)
    img = vc.open(store, path="arr")
    patch = np.full((7, 20, 5), 7, np.uint16)

    if not _write_or_not_implemented(lambda: img.write(patch, offset=(30, 25, 18))):
        with quiet_zarr():
            data = zarr.open_array(store, path="arr", mode="r")[...]
        bit_equal(data, expected, "a refused write changed nothing")
        return
    want = expected.copy()
    want[30:37, 25:45, 18:23] = 7
    with quiet_zarr():
        data = zarr.open_array(store, path="arr", mode="r")[...]
    bit_equal(data, want)
    bit_equal(vc.open(store, path="arr").read(), want)


def test_write_outside_is_rejected_for_store_arrays(tmp_path, make_volume, quiet_zarr):
    store, _, _ = make_store("memory", tmp_path, "v3-zstd", "arr", make_volume, quiet_zarr)
    img = vc.open(store, path="arr")
    with pytest.raises((ValueError, NotImplementedError)):
        img.write(np.ones((5, 5, 5), np.uint16), offset=(35, 0, 0))


@pytest.mark.parametrize("kind", ["zip", "local-read-only"])
def test_write_to_read_only_store_fails_and_changes_nothing(tmp_path, kind, make_volume,
                                                            quiet_zarr, bit_equal):
    store, expected, _ = make_store(kind, tmp_path, "v3-zstd", "arr", make_volume, quiet_zarr)
    img = vc.open(store, path="arr")
    with pytest.raises((NotImplementedError, OSError, ValueError)):
        img.write(np.zeros((5, 5, 5), np.uint16))
    bit_equal(vc.open(store, path="arr").read(), expected)
