"""voxcore.zarr.CodecPipeline: zarr-python with voxcore's core doing the chunk bytes.

Every layout voxcore supports (Zarr v2 and v3, each codec, sharding with the index at either end,
transpose / F order, big-endian, several dtypes and fill values) is written and read through the
pipeline with the fallback switched off (so the core did the work), compared with numpy, read
back by zarr-python's default pipeline, and compared with what the default pipeline stores for
the same writes (which chunk keys exist, write_empty_chunks both ways). What the core does not
support goes to zarr-python's own pipeline and still works. Corrupt chunks raise named errors.
"""
from __future__ import annotations

import asyncio
import contextlib
import pickle
import warnings

import numcodecs
import numpy as np
import pytest
import voxcore as vc
import voxcore.zarr as vz
import zarr
from voxcore import _core, codec_pipeline_plan
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)
from zarr.core.codec_pipeline import BatchedCodecPipeline
from zarr.storage import LocalStore, MemoryStore

# zarr-python warns whenever it makes a numcodecs.* codec for a v3 array (outside the spec).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Numcodecs codecs are not in the Zarr version 3 specification")

OURS = "voxcore.zarr.CodecPipeline"
DEFAULT = "zarr.core.codec_pipeline.BatchedCodecPipeline"
SHAPE = (21, 18, 10)  # partial edge chunks on every axis
CHUNKS = (8, 8, 4)
SHARDS = (16, 16, 8)


def _numcodecs(name: str):
    from zarr.codecs import numcodecs as znc

    return getattr(znc, name)()


def v3(**kw) -> dict:
    return {"zarr_format": 3, "chunks": CHUNKS, **kw}


def v2(**kw) -> dict:
    return {"zarr_format": 2, "chunks": CHUNKS, "filters": None, **kw}


# name -> create_array keyword arguments (besides store, shape, dtype, fill_value); a callable
# value is called at creation.
LAYOUTS = {
    "v3-raw": v3(compressors=None),
    "v3-zstd-checksum": v3(compressors=ZstdCodec(level=3, checksum=True)),
    "v3-blosc-lz4": v3(compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")),
    "v3-blosc-zstd-bitshuffle": v3(compressors=BloscCodec(cname="zstd", shuffle="bitshuffle")),
    "v3-gzip-crc32c": v3(compressors=[GzipCodec(level=1), Crc32cCodec()]),
    "v3-numcodecs-lz4": v3(compressors=lambda: _numcodecs("LZ4")),
    "v3-numcodecs-zlib": v3(compressors=lambda: _numcodecs("Zlib")),
    "v3-transpose": v3(filters=[TransposeCodec(order=(2, 0, 1))], compressors=ZstdCodec(level=1)),
    "v3-big-endian": v3(serializer=BytesCodec(endian="big"), compressors=ZstdCodec(level=1)),
    "v3-sharded": v3(shards=SHARDS, compressors=ZstdCodec(level=1)),
    "v3-sharded-index-start": v3(
        chunks=SHARDS, compressors=None,
        serializer=ShardingCodec(chunk_shape=CHUNKS, codecs=[BytesCodec(), ZstdCodec(level=1)],
                                 index_location="start")),
    "v2-raw": v2(compressors=None),
    "v2-blosc": v2(compressors=numcodecs.Blosc(cname="lz4", clevel=5,
                                               shuffle=numcodecs.Blosc.SHUFFLE)),
    "v2-zstd": v2(compressors=numcodecs.Zstd(level=1)),
    "v2-lz4": v2(compressors=numcodecs.LZ4()),
    "v2-gzip": v2(compressors=numcodecs.GZip(level=1)),
    "v2-zlib-F": v2(compressors=numcodecs.Zlib(level=1), order="F"),
}


@contextlib.contextmanager
def pipeline(path: str):
    with zarr.config.set({"codec_pipeline.path": path}):
        yield


@contextlib.contextmanager
def core_only():
    """Inside: any use of zarr-python's own pipeline fails the test (the core did the work)."""
    def refuse(*args, **kwargs):
        raise AssertionError("fell back to zarr-python's BatchedCodecPipeline")

    with pytest.MonkeyPatch.context() as mp:
        for name in ("read", "write", "decode", "encode"):
            mp.setattr(BatchedCodecPipeline, name, refuse)
        yield


def create(store, layout: str, dtype="u2", fill_value=0, shape=SHAPE, **extra):
    kw = {k: (v() if callable(v) else v) for k, v in LAYOUTS[layout].items()}
    kw.update(extra)
    return zarr.create_array(store, shape=shape, dtype=dtype, fill_value=fill_value,
                             overwrite=True, **kw)


def edits(arr, vol: np.ndarray) -> np.ndarray:
    """The same writes on a zarr array and on a copy of vol (returned): whole, an unaligned box,
    a strided scalar fill, an integer-indexed plane."""
    ref = vol.copy()
    arr[...] = vol
    box = (slice(3, 19), slice(5, 12), slice(1, 9))
    arr[box] = vol[box][::-1]
    ref[box] = vol[box][::-1]
    arr[1:20:3, ::5, 7] = vol.flat[5]
    ref[1:20:3, ::5, 7] = vol.flat[5]
    arr[4] = vol[10]
    ref[4] = vol[10]
    return ref


def native(a: np.ndarray) -> np.ndarray:
    return a.astype(a.dtype.newbyteorder("="))


def stored_keys(store_path) -> set[str]:
    return {p.relative_to(store_path).as_posix() for p in store_path.rglob("*") if p.is_file()}


def chunk_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in
                  {"zarr.json", ".zarray", ".zattrs", ".zgroup"})


# ------------------------------------------------------------------------------- round trips
def test_both_paths_name_the_pipeline(tmp_path, make_volume):
    """voxcore.codec_pipeline.CodecPipeline is the pipeline; voxcore.zarr.CodecPipeline, the
    path users configured first, still selects it."""
    from voxcore import codec_pipeline

    vol = make_volume(SHAPE, "u2", seed=4)
    for path in ("voxcore.codec_pipeline.CodecPipeline", OURS):
        with pipeline(path):
            arr = create(str(tmp_path / f"{path}.zarr"), "v3-zstd-checksum")
            assert isinstance(arr._async_array.codec_pipeline, codec_pipeline.CodecPipeline)
            with core_only():
                arr[...] = vol
                np.testing.assert_array_equal(arr[...], vol)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_round_trip_matches_default_pipeline(layout, tmp_path, make_volume, bit_equal):
    vol = make_volume(SHAPE, "u2", seed=1)
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "theirs.zarr"
    with pipeline(OURS):
        arr = create(str(ours), layout)
        assert isinstance(arr._async_array.codec_pipeline, vz.CodecPipeline)
        with core_only():
            ref = edits(arr, vol)
            bit_equal(arr[...], ref, f"{layout}: pipeline read of its own writes")
    with pipeline(DEFAULT):
        bit_equal(zarr.open_array(str(ours), mode="r")[...], ref, f"{layout}: default reads ours")
        edits(create(str(theirs), layout), vol)
    with pipeline(OURS), core_only():
        got = zarr.open_array(str(theirs), mode="r")
        bit_equal(got[...], ref, f"{layout}: pipeline reads the default's")
        bit_equal(got[2:17, 3, ::2], ref[2:17, 3, ::2], f"{layout}: strided read")
    assert stored_keys(ours) == stored_keys(theirs)


BIG_ENDIAN = [(">f8", 0.5), (">i2", -2)]
DTYPE_FILLS = [("f4", np.nan), ("i8", -7), ("bool", True), ("c8", 1 + 2j), ("i1", 3), ("<u4", 0)]
DTYPE_CASES = [  # a big-endian dtype is a v2 thing (v3 has the bytes codec: v3-big-endian)
    pytest.param(layout, dtype, fill, id=f"{layout}-{dtype}")
    for layout in ("v3-zstd-checksum", "v3-sharded", "v2-blosc", "v2-zlib-F")
    for dtype, fill in DTYPE_FILLS + (BIG_ENDIAN if layout.startswith("v2") else [])]


@pytest.mark.parametrize("layout,dtype,fill", DTYPE_CASES)
def test_dtypes_and_fill_values(layout, dtype, fill, tmp_path, make_volume, bit_equal):
    vol = make_volume(SHAPE, dtype, seed=2)
    with pipeline(OURS):
        arr = create(str(tmp_path / "a.zarr"), layout, dtype=dtype, fill_value=fill)
        with core_only():
            assert np.array_equal(arr[...], np.full(SHAPE, fill, dtype=dtype), equal_nan=True)
            ref = edits(arr, vol)
            got = arr[...]
    with pipeline(DEFAULT):
        theirs = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...]
    assert got.dtype == theirs.dtype == np.dtype(dtype)  # zarr keeps a v2 array's byte order
    bit_equal(native(got), ref, f"{layout} {dtype}")
    bit_equal(native(theirs), ref, f"{layout} {dtype}: default reads ours")


@pytest.mark.parametrize("layout", ["v3-zstd-checksum", "v3-sharded", "v2-zlib-F"])
@pytest.mark.parametrize("dtype", ["M8[ms]", "m8[s]", ">M8[us]"])
def test_datetimes_as_int64(layout, dtype, tmp_path, make_volume):
    if dtype.startswith(">") and layout.startswith("v3"):
        dtype = dtype[1:]  # v3 keeps byte order in the bytes codec, not the dtype
    vol = make_volume(SHAPE, "i8", seed=10).astype(dtype)
    vol[1, 2, 3] = np.array("NaT", dtype=dtype)
    with pipeline(OURS):
        arr = create(str(tmp_path / "a.zarr"), layout, dtype=dtype, fill_value="NaT")
        with core_only():
            assert np.isnat(arr[...]).all()
            ref = edits(arr, vol)
            got = arr[...]
    with pipeline(DEFAULT):
        theirs = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...]
    assert got.dtype == theirs.dtype == np.dtype(dtype)
    assert np.array_equal(got.view("i8"), ref.view("i8"))
    assert np.array_equal(theirs.view("i8"), ref.view("i8"))


@pytest.mark.parametrize("layout", ["v3-zstd-checksum", "v3-sharded", "v2-zlib-F"])
def test_fancy_indexing(layout, tmp_path, make_volume):
    vol = make_volume(SHAPE, "i4", seed=3)
    with pipeline(OURS), core_only():
        arr = create(str(tmp_path / "a.zarr"), layout, dtype="i4")
        arr[...] = vol
        ref = vol.copy()
        rows, cols = [0, 4, 9, 20], [1, 2, 17]
        assert np.array_equal(arr.oindex[rows, :, cols[:2]], vol[np.ix_(rows, range(18), cols[:2])])
        assert np.array_equal(arr.vindex[rows[:3], cols, [0, 5, 9]], vol[rows[:3], cols, [0, 5, 9]])
        mask = vol % 7 == 0
        assert np.array_equal(arr.get_mask_selection(mask), vol[mask])
        b = arr.shards or arr.chunks
        assert np.array_equal(arr.blocks[1, 0, 1], vol[b[0]:2 * b[0], :b[1], b[2]:2 * b[2]])
        assert arr[5, 6, 7] == vol[5, 6, 7]
        assert np.array_equal(arr[-1, ..., -3], vol[-1, ..., -3])
        arr.oindex[rows, 3, :] = 11
        ref[rows, 3, :] = 11
        arr.vindex[rows[:3], cols, [0, 5, 9]] = [-1, -2, -3]
        ref[rows[:3], cols, [0, 5, 9]] = [-1, -2, -3]
        arr.set_mask_selection(mask, 5)
        ref[mask] = 5
        assert np.array_equal(arr[...], ref)
        out = np.zeros((21, 18, 10), dtype="i4")
        into = zarr.core.buffer.cpu.NDBuffer(out)
        assert np.array_equal(arr.get_basic_selection(..., out=into), ref)
        assert np.array_equal(out, ref)


# ------------------------------------------------------------------------- write_empty_chunks
@pytest.mark.parametrize("layout", ["v3-zstd-checksum", "v3-sharded", "v2-blosc"])
@pytest.mark.parametrize("write_empty", [False, True])
def test_write_empty_chunks_like_default(layout, write_empty, tmp_path, make_volume):
    vol = make_volume(SHAPE, "u2", seed=4)
    keys = {}
    for name, path in (("ours", OURS), ("theirs", DEFAULT)):
        root = tmp_path / f"{name}.zarr"
        with pipeline(path), zarr.config.set({"array.write_empty_chunks": write_empty}):
            arr = create(str(root), layout, fill_value=9)
            arr[...] = vol
            arr[0:16, 0:16, 0:8] = 9       # whole chunks (one whole shard) back to the fill value
            arr[16:, :, :] = 9             # the partial edge chunks too
            arr[2:5, 2:5, 2:5] = 9         # part of a chunk: it stays
            expected = vol.copy()
            expected[0:16, 0:16, 0:8] = 9
            expected[16:] = 9
            assert np.array_equal(arr[...], expected)
        keys[name] = stored_keys(root)
    assert keys["ours"] == keys["theirs"]
    n_chunks = len(chunk_files(tmp_path / "ours.zarr"))
    total = np.prod([-(-s // c) for s, c in zip(SHAPE, SHARDS if "shard" in layout else CHUNKS)])
    assert (n_chunks == total) if write_empty else (0 < n_chunks < total)


# ------------------------------------------------------------------------------ other stores
@pytest.mark.parametrize("layout", ["v3-sharded", "v3-blosc-lz4", "v2-zlib-F"])
def test_memory_store(layout, make_volume, bit_equal):
    """Bytes fetched through the zarr store (no file fast path); a read of part of a shard goes
    through zarr-python's partial shard reads, whose inner chunks come back to the core."""
    vol = make_volume(SHAPE, "u2", seed=5)
    store = MemoryStore()
    with pipeline(OURS):
        arr = create(store, layout)
        with core_only():
            ref = edits(arr, vol)
            bit_equal(arr[0:16, 0:16, 0:8], ref[0:16, 0:16, 0:8], "whole shard / chunks")
        bit_equal(arr[3:11, 2:9, 1:7], ref[3:11, 2:9, 1:7], "part of a shard")
    with pipeline(DEFAULT):
        bit_equal(zarr.open_array(store, mode="r")[...], ref, "default reads ours")


def test_read_only_local_store_and_pickle(tmp_path, make_volume):
    vol = make_volume(SHAPE, "u2", seed=6)
    with pipeline(OURS):
        create(str(tmp_path / "a.zarr"), "v3-zstd-checksum")[...] = vol
        arr = zarr.open_array(LocalStore(tmp_path / "a.zarr", read_only=True), mode="r")
        assert np.array_equal(arr[...], vol)
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0, 0] = 1
        again = pickle.loads(pickle.dumps(arr))
        assert isinstance(again._async_array.codec_pipeline, vz.CodecPipeline)
        assert np.array_equal(again[1:4], vol[1:4])


def test_async_concurrent_reads(tmp_path, make_volume):
    vol = make_volume(SHAPE, "u2", seed=7)
    with pipeline(OURS):
        create(str(tmp_path / "a.zarr"), "v3-sharded")[...] = vol

        async def main():
            arr = await zarr.api.asynchronous.open_array(store=str(tmp_path / "a.zarr"), mode="r")
            return await asyncio.gather(*(arr.getitem((slice(i, i + 5),)) for i in range(0, 16, 3)))

        with core_only():
            parts = zarr.core.sync.sync(main())
    for part, i in zip(parts, range(0, 16, 3)):
        assert np.array_equal(part, vol[i:i + 5])


# ---------------------------------------------------------------------------------- fallback
@pytest.mark.parametrize("kind", ["v3-string", "v2-structured", "v2-delta-filter", "v3-bytes",
                                  "v3-crc32c-at-start"])
def test_fallback_for_what_the_core_lacks(kind, tmp_path):
    root = str(tmp_path / "a.zarr")
    with pipeline(OURS), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr-python warns about some of these formats
        if kind == "v3-string":
            arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype=str)
            value = np.array(["a", "bc", "", "défg", "h", "ij", "k"])
        elif kind == "v2-structured":
            dt = np.dtype([("a", "i4"), ("b", "f8")])
            arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype=dt, zarr_format=2)
            value = np.array([(i, i / 2) for i in range(7)], dtype=dt)
        elif kind == "v2-delta-filter":
            arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype="i4", zarr_format=2,
                                    filters=[numcodecs.Delta(dtype="i4")])
            value = np.arange(7, dtype="i4") * 3
        elif kind == "v3-crc32c-at-start":  # the checksum before the data: not the core's layout
            arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype="u2",
                                    compressors=[zarr.codecs.numcodecs.CRC32C(location="start")])
            value = np.arange(7, dtype="u2") * 11
        else:
            arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype="S3")
            value = np.array([b"a", b"bc", b"", b"def", b"g", b"hi", b"j"], dtype="S3")
        pipe = arr._async_array.codec_pipeline
        assert isinstance(pipe, vz.CodecPipeline)
        spec = arr.metadata.get_chunk_spec((0,), arr._async_array.config,
                                           zarr.core.buffer.default_buffer_prototype())
        assert not pipe.uses_core(spec)
        arr[...] = value
        arr[2:4] = value[4:6]
        expected = value.copy()
        expected[2:4] = value[4:6]
        assert np.array_equal(arr[...], expected)
    with pipeline(DEFAULT), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(zarr.open_array(root, mode="r")[...], expected)


def test_crc32c_at_start_is_refused_by_voxcore_open(tmp_path):
    """voxcore's own reader refuses numcodecs' checksum-first layout by name (it never misreads)."""
    root = str(tmp_path / "a.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = zarr.create_array(root, shape=(7,), chunks=(3,), dtype="u2",
                                compressors=[zarr.codecs.numcodecs.CRC32C(location="start")])
        arr[...] = np.arange(7, dtype="u2")
    with pytest.raises(vc.UnsupportedError, match="location"):
        vc.open(root)


def test_supported_layouts_use_the_core(tmp_path):
    for layout in LAYOUTS:
        with pipeline(OURS):
            arr = create(str(tmp_path / f"{layout}.zarr"), layout)
        spec = arr.metadata.get_chunk_spec((0, 0, 0), arr._async_array.config,
                                           zarr.core.buffer.default_buffer_prototype())
        assert arr._async_array.codec_pipeline.uses_core(spec), layout


# ------------------------------------------------------------------------------- bad bytes
@pytest.mark.parametrize("layout", ["v3-zstd-checksum", "v3-gzip-crc32c", "v3-sharded",
                                    "v2-blosc", "v2-lz4"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bit-flip"])
@pytest.mark.parametrize("where", ["local", "memory"])
def test_corrupt_chunk_raises(layout, damage, where, tmp_path, make_volume):
    vol = make_volume(SHAPE, "u2", seed=8)
    root = tmp_path / "a.zarr"
    with pipeline(DEFAULT):
        create(str(root), layout)[...] = vol
    victim = chunk_files(root)[0]
    raw = victim.read_bytes()
    if damage == "garbage":
        bad = bytes(range(256)) * 4
    elif damage == "truncated":
        bad = raw[: len(raw) // 2]
    elif damage == "empty":
        bad = b""
    else:
        flipped = bytearray(raw)
        flipped[len(raw) - 8] ^= 0x40  # inside the shard index / checksummed frames
        bad = bytes(flipped)
    victim.write_bytes(bad)
    store = str(root)
    if where == "memory":
        store = MemoryStore({p.relative_to(root).as_posix(): zarr.core.buffer.cpu.Buffer.from_bytes(
            p.read_bytes()) for p in root.rglob("*") if p.is_file()})
    # (A read of part of a shard from a zarr store goes through zarr-python's partial reads.)
    partial_shards = where == "memory" and "shard" in layout
    only = contextlib.nullcontext() if partial_shards else core_only()
    with pipeline(OURS):
        arr = zarr.open_array(store, mode="r")
        with only:
            if damage == "bit-flip" and layout in ("v2-lz4", "v2-blosc"):
                # lz4 / blosc frames carry no checksum: a flipped bit may decode to other
                # values; it must not crash, and the chunk must keep its size.
                try:
                    assert arr[...].shape == SHAPE
                except vc.CorruptDataError:
                    pass
                return
            with pytest.raises(vc.CorruptDataError) as info:
                arr[...]
    if where == "local":
        assert victim.relative_to(root).as_posix() in str(info.value)


def test_core_chain_rejects_bad_arguments():
    spec = codec_pipeline_plan.core_specs((BytesCodec(),), (4, 4), np.dtype("u2"), "C")
    chain = _core.ChunkBatch(spec, [4, 4], "uint16", b"\x00\x00")
    good = np.zeros((4, 4), "u2")
    encoded = chain.encode_batch(["k"], [good], [None])[0]
    with pytest.raises(vc.InvalidArgumentError, match="dtype"):
        chain.decode_batch(["k"], [encoded], [np.zeros((4, 4), "u4")], [None])
    with pytest.raises(vc.InvalidArgumentError, match="region"):
        chain.decode_batch(["k"], [encoded], [np.zeros((2, 2), "u2")], [([3, 0], [1, 1])])
    with pytest.raises(vc.InvalidArgumentError, match="region"):
        chain.decode_batch(["k"], [encoded], [np.zeros((3, 4), "u2")], [None])
    with pytest.raises(vc.InvalidArgumentError, match="wrong length"):
        chain.decode_batch(["k", "l"], [encoded], [good], [None])
    with pytest.raises(vc.InvalidArgumentError, match="read-only"):
        chain.decode_batch(["k"], [encoded], [np.broadcast_to(good, (4, 4))], [None])
    with pytest.raises(vc.CorruptDataError, match="key=k"):
        chain.decode_batch(["k"], [encoded[:-1]], [good], [None])
    out = np.ones((2, 2), "u2")
    chain.decode_batch(["k"], [None], [out], [([1, 0], [2, 3])])
    assert not out.any()  # a missing chunk is the fill value


@pytest.mark.parametrize("fmt", [2, 3])
def test_scalar_and_1d_arrays(fmt):
    with pipeline(OURS), core_only():
        scalar = zarr.create_array(MemoryStore(), shape=(), dtype="f4", fill_value=1.5,
                                   zarr_format=fmt)
        assert scalar[()] == 1.5
        scalar[...] = 3.25
        assert scalar[()] == 3.25 and scalar[...].shape == ()
        line = zarr.create_array(MemoryStore(), shape=(10,), chunks=(3,), dtype="i2",
                                 zarr_format=fmt)
        line[2:9] = np.arange(7)
        assert line[...].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 0]
        assert line[-2] == 6 and line[::4].tolist() == [0, 2, 6]


@pytest.mark.parametrize("layout", ["v3-zstd-checksum", "v3-sharded"])
def test_large_requests_go_in_groups(layout, tmp_path, make_volume, monkeypatch):
    """A request bigger than the group size is decoded and encoded group by group."""
    monkeypatch.setattr(codec_pipeline_plan, "GROUP_BYTES", 3 * 8 * 8 * 4 * 2)
    vol = make_volume(SHAPE, "u2", seed=9)
    with pipeline(OURS), core_only():
        arr = create(str(tmp_path / "a.zarr"), layout)
        ref = edits(arr, vol)
        assert np.array_equal(arr[...], ref)
    with pipeline(DEFAULT):
        assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], ref)


@pytest.mark.parametrize("layout", ["v3-transpose", "v3-sharded", "v2-zlib-F"])
def test_fortran_order_memory(layout, tmp_path, make_volume, bit_equal):
    """zarr's array.order = "F" gives Fortran-ordered chunk buffers and outputs."""
    vol = make_volume(SHAPE, "u2", seed=11)
    with pipeline(OURS), zarr.config.set({"array.order": "F"}), core_only():
        arr = create(str(tmp_path / "a.zarr"), layout)
        ref = edits(arr, vol)
        got = arr[...]
        bit_equal(got, ref, layout)
        bit_equal(arr[3:17, ::2, 5], ref[3:17, ::2, 5], f"{layout} strided")
    with pipeline(DEFAULT):
        bit_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], ref, "default reads")
