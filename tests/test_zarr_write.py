"""What voxcore writes, zarr-python reads bit-exactly (and so does voxcore).

Arrays are made with ``vc.create_array`` for every codec, both Zarr formats, with and without
sharding and over the numeric dtypes; written whole and in unaligned pieces; overwritten; and
checked for the metadata zarr-python sees (codecs, levels, shards, dimension names, order, fill
value, chunk key layout) and for chunks that must not be stored (entirely fill).
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import voxcore as vc
import zarr

# Partial-chunk writes are what these tests exercise; the warning itself is tested in
# test_errors_named.py.
pytestmark = pytest.mark.filterwarnings("ignore::voxcore.UnalignedWriteWarning")

SHAPE = (37, 50, 23)
CHUNKS = (16, 16, 8)
SHARDS = (32, 32, 16)
CODECS = ["zstd", "blosc-lz4", "gzip", "lz4", "zlib", None]

# Name (v3 codec name / v2 compressor id) that each voxcore codec must be stored as, so that
# zarr-python and other implementations can read it.
V3_NAME = {"zstd": "zstd", "blosc-lz4": "blosc", "gzip": "gzip", "lz4": "numcodecs.lz4",
           "zlib": "numcodecs.zlib"}
V2_ID = {"zstd": "zstd", "blosc-lz4": "blosc", "gzip": "gzip", "lz4": "lz4", "zlib": "zlib"}
META_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}


def layouts():
    out = []
    for codec in CODECS:
        out.append(pytest.param(2, codec, None, id=f"v2-{codec}"))
        out.append(pytest.param(3, codec, None, id=f"v3-{codec}"))
        out.append(pytest.param(3, codec, SHARDS, id=f"v3-sharded-{codec}"))
    return out


def zarr_open(path, quiet_zarr):
    with quiet_zarr():
        arr = zarr.open_array(str(path), mode="r")
        data = arr[...]
    return arr, data


def stored_chunk_keys(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*")
            if p.is_file() and p.name not in META_FILES and p.name != ".vxlock"}  # partial-write lock


def bytes_codecs(meta: dict) -> list[dict]:
    """The bytes->bytes codecs that apply to each chunk (inside sharding if sharded)."""
    codecs = meta["codecs"]
    for c in codecs:
        if c["name"] == "sharding_indexed":
            codecs = c["configuration"]["codecs"]
    return [c for c in codecs if c["name"] not in ("bytes", "transpose", "sharding_indexed")]


def unaligned_boxes(shape, rng, cuts=3):
    """A partition of the array into boxes with unaligned random boundaries on every axis."""
    edges = []
    for n in shape:
        inner = sorted({int(x) for x in rng.integers(1, n, size=cuts)})
        edges.append([0] + inner + [n])
    boxes = []
    for idx in np.ndindex(*(len(e) - 1 for e in edges)):
        boxes.append(tuple(slice(edges[a][i], edges[a][i + 1]) for a, i in enumerate(idx)))
    rng.shuffle(boxes)
    return boxes


def start_of(box):
    return tuple(s.start for s in box)


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(("fmt", "codec", "shards"), layouts())
def test_write_whole_read_by_zarr_python(tmp_path, fmt, codec, shards, make_volume, quiet_zarr,
                                         bit_equal):
    src = make_volume(SHAPE, "u2", 1)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, shards=shards, codec=codec,
                          zarr_format=fmt)
    img.write(src)
    arr, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src, "zarr-python read of a voxcore write")
    bit_equal(img.read(), src, "same handle")
    bit_equal(vc.open(path).read(), src, "fresh handle")
    assert arr.shape == SHAPE and arr.dtype == np.uint16
    # what zarr-python sees as the array's layout and codecs
    if shards is None:
        assert arr.chunks == CHUNKS and arr.shards is None
    else:
        assert arr.shards == SHARDS and arr.chunks == CHUNKS
    if fmt == 3:
        meta = json.loads((path / "zarr.json").read_text())
        names = [c["name"] for c in bytes_codecs(meta)]
        assert names == ([] if codec is None else [V3_NAME[codec]]), names
        if codec == "blosc-lz4":
            assert bytes_codecs(meta)[0]["configuration"]["cname"] == "lz4"
        assert len(arr.compressors) == (0 if codec is None else 1)
    else:
        meta = json.loads((path / ".zarray").read_text())
        comp = meta["compressor"]
        if codec is None:
            assert comp is None
            assert arr.compressors == ()
        else:
            assert comp["id"] == V2_ID[codec]
            assert arr.compressors[0].codec_id == V2_ID[codec]
            if codec == "blosc-lz4":
                assert comp["cname"] == "lz4"
        assert meta["dimension_separator"] == "."


@pytest.mark.parametrize(("fmt", "codec", "shards"), layouts())
def test_write_unaligned_pieces(tmp_path, fmt, codec, shards, make_volume, quiet_zarr, bit_equal):
    src = make_volume(SHAPE, "i2", 2)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "i2", chunks=CHUNKS, shards=shards, codec=codec,
                          zarr_format=fmt)
    rng = np.random.default_rng(zlib.crc32(f"{fmt}{codec}{shards}".encode()))
    for box in unaligned_boxes(SHAPE, rng):
        img.write(src[box], offset=start_of(box))
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src, "zarr-python read after piecewise writes")
    bit_equal(vc.open(path).read(), src)


DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "c8"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("fmt", "shards"), [(2, None), (3, None), (3, (20, 32, 16))],
                         ids=["v2", "v3", "v3-sharded"])
def test_dtypes_round_trip(tmp_path, dtype, fmt, shards, make_volume, quiet_zarr, bit_equal):
    shape = (20, 33, 17)
    src = make_volume(shape, dtype, 3)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, shape, dtype, chunks=(10, 16, 8), shards=shards, zarr_format=fmt)
    assert img.dtype == np.dtype(dtype)
    img.write(src[:, :20])
    img.write(src[:, 20:], offset=(0, 20, 0))
    arr, data = zarr_open(path, quiet_zarr)
    assert arr.dtype == np.dtype(dtype)
    bit_equal(data, src, f"zarr-python read of {dtype}")
    bit_equal(vc.open(path).read(), src)


@pytest.mark.parametrize("shape,chunks,shards", [
    ((1000,), (64,), None),
    ((1000,), (50,), (200,)),
    ((100, 77), (32, 20), None),
    ((100, 77), (16, 20), (64, 40)),
    ((3, 17, 20, 9), (2, 8, 8, 4), None),
    ((3, 17, 20, 9), (1, 8, 8, 4), (2, 16, 16, 8)),
    ((10, 10), (16, 16), None),
], ids=["1d", "1d-sharded", "2d", "2d-sharded", "4d", "4d-sharded", "chunk-larger-than-array"])
@pytest.mark.parametrize("fmt", [2, 3])
def test_ranks_round_trip(tmp_path, shape, chunks, shards, fmt, make_volume, quiet_zarr,
                          bit_equal):
    if shards is not None and fmt == 2:
        shards = None  # v2 has no sharding; the chunk layout alone is still worth testing
    src = make_volume(shape, "f4", 4)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, shape, "f4", chunks=chunks, shards=shards, zarr_format=fmt,
                          codec="blosc-lz4")
    rng = np.random.default_rng(len(shape) * 10 + fmt)
    for box in unaligned_boxes(shape, rng, cuts=2):
        img.write(src[box], offset=start_of(box))
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)
    bit_equal(vc.open(path).read(), src)


@pytest.mark.parametrize(("fmt", "shards"), [(2, None), (3, None), (3, SHARDS)],
                         ids=["v2", "v3", "v3-sharded"])
def test_overwrite_existing_data(tmp_path, fmt, shards, make_volume, quiet_zarr, bit_equal):
    src1 = make_volume(SHAPE, "u2", 5)
    src2 = make_volume(SHAPE, "u2", 6)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, shards=shards, zarr_format=fmt)
    img.write(src1)
    want = src1.copy()
    box = (slice(3, 29), slice(11, 47), slice(5, 20))
    img.write(src2[box], offset=start_of(box))
    want[box] = src2[box]
    bit_equal(img.read(), want)
    # a second handle opened on the existing array writes too
    again = vc.open(path)
    box2 = (slice(30, 37), slice(0, 9), slice(0, 23))
    again.write(src2[box2], offset=start_of(box2))
    want[box2] = src2[box2]
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, want, "zarr-python read after overwrites")
    bit_equal(vc.open(path).read(), want)


def test_write_into_zarr_python_array(tmp_path, make_volume, quiet_zarr, bit_equal):
    """voxcore writes into arrays zarr-python created (v3 sharded with index at the start)."""
    src = make_volume(SHAPE, "u2", 7)
    path = tmp_path / "a.zarr"
    with quiet_zarr():
        from zarr.codecs import BytesCodec, ShardingCodec, ZstdCodec

        arr = zarr.create_array(
            store=str(path), shape=SHAPE, chunks=SHARDS, dtype="u2", fill_value=3,
            serializer=ShardingCodec(chunk_shape=CHUNKS, codecs=[BytesCodec(), ZstdCodec()],
                                     index_location="start"),
            compressors=None, filters=None)
        arr[:10] = src[:10]
    img = vc.open(path)
    box = (slice(5, 30), slice(7, 45), slice(1, 22))
    img.write(src[box], offset=start_of(box))
    want = np.full(SHAPE, 3, np.uint16)
    want[:10] = src[:10]
    want[box] = src[box]
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, want)


# ---------------------------------------------------------------------------- fill handling
@pytest.mark.parametrize(("fmt", "sep"), [(2, "."), (2, "/"), (3, None)])
def test_fill_only_chunks_are_not_stored(tmp_path, fmt, sep, make_volume, quiet_zarr, bit_equal):
    path = tmp_path / "a.zarr"
    kw = {"dimension_separator": sep} if sep else {}
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, zarr_format=fmt, fill_value=7, **kw)
    img.write(np.full(SHAPE, 7, np.uint16))
    assert stored_chunk_keys(path) == set(), "chunks equal to the fill value must not be stored"
    zeros = np.zeros(SHAPE, np.uint16)  # zero is not the fill value here: stored
    img.write(zeros)
    n_chunks = math.prod(-(-s // c) for s, c in zip(SHAPE, CHUNKS))
    assert len(stored_chunk_keys(path)) == n_chunks
    # Overwriting whole chunks with the fill value removes them.
    img.write(np.full((16, 50, 23), 7, np.uint16), offset=(16, 0, 0))
    assert len(stored_chunk_keys(path)) == n_chunks - 4 * 3
    want = zeros.copy()
    want[16:32] = 7
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, want)
    bit_equal(vc.open(path).read(), want)


def test_fill_only_chunks_nan(tmp_path, quiet_zarr, bit_equal):
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, (20, 20), "f4", chunks=(10, 10), fill_value=float("nan"))
    img.write(np.full((20, 20), np.nan, np.float32))
    assert stored_chunk_keys(path) == set()
    img.write(np.ones((10, 10), np.float32), offset=(5, 5))
    assert len(stored_chunk_keys(path)) == 4
    want = np.full((20, 20), np.nan, np.float32)
    want[5:15, 5:15] = 1
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, want)
    arr, _ = zarr_open(path, quiet_zarr)
    assert np.isnan(arr.fill_value)


def _shard_index(path: Path, shard_key: str) -> np.ndarray:
    """(offset, nbytes) per inner chunk of one shard, parsed by hand from the spec layout."""
    meta = json.loads((path / "zarr.json").read_text())
    cfg = next(c for c in meta["codecs"] if c["name"] == "sharding_indexed")["configuration"]
    shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
    n = math.prod(s // c for s, c in zip(shard, cfg["chunk_shape"]))
    has_crc = any(c["name"] == "crc32c" for c in cfg["index_codecs"])
    size = 16 * n + (4 if has_crc else 0)
    raw = (path / shard_key).read_bytes()
    index = raw[:size] if cfg.get("index_location", "end") == "start" else raw[-size:]
    return np.frombuffer(index[: 16 * n], dtype="<u8").reshape(n, 2)


def test_sharded_fill_only_inner_chunks_and_shards(tmp_path, make_volume, quiet_zarr, bit_equal):
    src = make_volume(SHAPE, "u2", 8)
    src[0:16, 0:16, 0:8] = 0  # one inner chunk entirely fill -> empty index entry
    src[32:, :, :] = 0  # the last row of shards entirely fill -> no shard files
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, shards=SHARDS, zarr_format=3)
    img.write(src)
    keys = stored_chunk_keys(path)
    assert keys == {f"c/0/{j}/{k}" for j in range(2) for k in range(2)}, sorted(keys)
    index = _shard_index(path, "c/0/0/0")
    empty = np.iinfo(np.uint64).max
    assert (index[0] == empty).all(), "inner chunk (0,0,0) is fill only: empty index entry"
    assert (index[1:] != empty).all()
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)


# ---------------------------------------------------------------------------- metadata
def test_dims_become_dimension_names(tmp_path, quiet_zarr):
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, dims=("z", "y", "x"))
    assert img.dims == ("z", "y", "x")
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["dimension_names"] == ["z", "y", "x"]
    arr, _ = zarr_open(path, quiet_zarr)
    assert tuple(arr.metadata.dimension_names) == ("z", "y", "x")
    assert vc.open(path).dims == ("z", "y", "x")
    other = vc.create_array(tmp_path / "b.zarr", SHAPE, "u2")
    assert other.dims == ("dim_0", "dim_1", "dim_2")


@pytest.mark.parametrize(("fmt", "codec", "level", "field"), [
    (3, "zstd", 7, "level"), (3, "gzip", 9, "level"), (3, "blosc-lz4", 3, "clevel"),
    (2, "zstd", 7, "level"), (2, "gzip", 9, "level"), (2, "blosc-lz4", 3, "clevel"),
    (2, "zlib", 2, "level"),
])
def test_codec_level_is_stored(tmp_path, fmt, codec, level, field, make_volume, quiet_zarr,
                               bit_equal):
    path = tmp_path / "a.zarr"
    src = make_volume((20, 20), "u2", 9)
    img = vc.create_array(path, (20, 20), "u2", chunks=(8, 8), codec=codec, level=level,
                          zarr_format=fmt)
    img.write(src)
    if fmt == 3:
        cfg = bytes_codecs(json.loads((path / "zarr.json").read_text()))[0]["configuration"]
    else:
        cfg = json.loads((path / ".zarray").read_text())["compressor"]
    assert cfg[field] == level
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)


@pytest.mark.parametrize(("fmt", "sep", "key"), [
    (2, None, "0.1.2"), (2, ".", "0.1.2"), (2, "/", "0/1/2"), (3, None, "c/0/1/2"),
])
def test_chunk_key_layout(tmp_path, fmt, sep, key, quiet_zarr):
    path = tmp_path / "a.zarr"
    kw = {"dimension_separator": sep} if sep else {}
    img = vc.create_array(path, SHAPE, "u1", chunks=CHUNKS, zarr_format=fmt, **kw)
    img.write(np.ones((1, 1, 1), np.uint8), offset=(0, 16, 16))
    assert stored_chunk_keys(path) == {key}
    _arr, data = zarr_open(path, quiet_zarr)
    assert data.sum() == 1 and data[0, 16, 16] == 1


@pytest.mark.parametrize("fmt", [2, 3])
def test_order_f_stores_fortran_chunks(tmp_path, fmt, make_volume, quiet_zarr, bit_equal):
    src = make_volume(SHAPE, "u2", 10)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, codec=None, order="F",
                          zarr_format=fmt)
    img.write(src)
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)
    bit_equal(vc.open(path).read(), src)
    key = "0.0.0" if fmt == 2 else "c/0/0/0"
    raw = (path / key).read_bytes()
    assert raw == src[:16, :16, :8].tobytes(order="F"), "chunk bytes are not in Fortran order"
    if fmt == 2:
        assert json.loads((path / ".zarray").read_text())["order"] == "F"


@pytest.mark.parametrize("fmt", [2, 3])
@pytest.mark.parametrize(("dtype", "fill"), [("u2", 7), ("i4", -3), ("f4", float("nan")),
                                             ("f8", -1.25), ("u8", 2**63 + 5)])
def test_fill_value_round_trip(tmp_path, fmt, dtype, fill, quiet_zarr, bit_equal):
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, (30, 30), dtype, chunks=(16, 16), zarr_format=fmt,
                          fill_value=fill)
    one = np.ones((3, 3), dtype)
    img.write(one, offset=(1, 1))
    want = np.full((30, 30), fill, dtype)
    want[1:4, 1:4] = 1
    _arr, data = zarr_open(path, quiet_zarr)
    bit_equal(data, want, "zarr-python sees the fill value in missing chunks")
    bit_equal(vc.open(path).read(), want)
    assert len(stored_chunk_keys(path)) == 1
    got_fill = np.array(vc.open(path).fill_value, dtype)
    assert got_fill.tobytes() == np.array(fill, dtype).tobytes()


def test_attributes_and_metadata_open_in_zarr_python_for_v2(tmp_path, quiet_zarr):
    path = tmp_path / "a.zarr"
    vc.create_array(path, SHAPE, "f8", chunks=CHUNKS, zarr_format=2, codec="zstd")
    meta = json.loads((path / ".zarray").read_text())
    assert meta["zarr_format"] == 2
    assert meta["shape"] == list(SHAPE) and meta["chunks"] == list(CHUNKS)
    assert np.dtype(meta["dtype"]) == np.float64
    arr, data = zarr_open(path, quiet_zarr)
    assert arr.metadata.zarr_format == 2
    assert (data == 0).all()


def test_create_array_returns_described_image(tmp_path):
    img = vc.create_array(tmp_path / "a.zarr", SHAPE, "u2", chunks=CHUNKS, shards=SHARDS,
                          dims=("z", "y", "x"), fill_value=4)
    assert img.shape == SHAPE and img.ndim == 3 and img.dtype == np.uint16
    assert tuple(img.chunks) == CHUNKS and tuple(img.shards) == SHARDS
    assert img.zarr_format == 3 and img.fill_value == 4
    assert img.nbytes == math.prod(SHAPE) * 2
    assert (img.read() == 4).all()
    v2 = vc.create_array(tmp_path / "b.zarr", SHAPE, "u2", chunks=CHUNKS, zarr_format=2)
    assert v2.zarr_format == 2 and v2.shards is None


def test_default_chunks_are_valid(tmp_path, make_volume, quiet_zarr, bit_equal):
    src = make_volume((70, 130), "u2", 11)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, src.shape, "u2")
    assert all(1 <= c for c in img.chunks)
    img.write(src)
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)


def test_durable_false_round_trip(tmp_path, make_volume, quiet_zarr, bit_equal):
    src = make_volume(SHAPE, "u2", 12)
    path = tmp_path / "a.zarr"
    img = vc.create_array(path, SHAPE, "u2", chunks=CHUNKS, shards=SHARDS, durable=False)
    img.write(src)
    _, data = zarr_open(path, quiet_zarr)
    bit_equal(data, src)


# ---------------------------------------------------------------------------- write arguments
def test_input_layouts_and_casts(tmp_path, make_volume, bit_equal):
    src = make_volume((20, 30, 10), "u2", 13)
    img = vc.create_array(tmp_path / "a.zarr", src.shape, "u2", chunks=(8, 8, 8))
    img.write(np.asfortranarray(src))
    bit_equal(img.read(), src, "Fortran-ordered input")
    big = make_volume((40, 30, 10), "u2", 14)
    img.write(big[::2])  # non-contiguous input
    bit_equal(img.read(), big[::2], "strided input")
    img.write(src.astype(np.int64))  # castable
    bit_equal(img.read(), src, "int64 input cast to uint16")
    img.write(src.astype(">u2"))  # big-endian input
    bit_equal(img.read(), src, "big-endian input")
    img.write([[[1, 2], [3, 4]]], offset=(0, 0, 0))  # nested lists
    want = src.copy()
    want[0, :2, :2] = [[1, 2], [3, 4]]
    bit_equal(img.read(), want, "list input")


def test_write_outside_the_array_is_rejected(tmp_path, make_volume, bit_equal):
    src = make_volume((20, 20), "u2", 15)
    img = vc.create_array(tmp_path / "a.zarr", (20, 20), "u2", chunks=(8, 8))
    img.write(src)
    for data, offset in [
        (np.ones((5, 5), np.uint16), (18, 0)),
        (np.ones((5, 5), np.uint16), (0, 16)),
        (np.ones((21, 1), np.uint16), (0, 0)),
        (np.ones((2, 2), np.uint16), (-1, 0)),
    ]:
        with pytest.raises(ValueError):
            img.write(data, offset=offset)
    with pytest.raises(ValueError):
        img.write(np.ones((2, 2, 2), np.uint16))  # rank mismatch
    with pytest.raises(ValueError):
        img.write(np.ones((2, 2), np.uint16), offset=(0,))  # offset rank mismatch
    bit_equal(vc.open(tmp_path / "a.zarr").read(), src, "rejected writes changed nothing")


def test_existing_array_needs_overwrite(tmp_path, make_volume, bit_equal):
    src = make_volume((20, 20), "u2", 16)
    path = tmp_path / "a.zarr"
    vc.create_array(path, (20, 20), "u2", chunks=(8, 8)).write(src)
    with pytest.raises((FileExistsError, ValueError)):
        vc.create_array(path, (20, 20), "u2", chunks=(8, 8))
    bit_equal(vc.open(path).read(), src, "a refused create leaves the data")
    img = vc.create_array(path, (10, 10), "f4", chunks=(4, 4), overwrite=True, zarr_format=2)
    assert img.shape == (10, 10)
    assert stored_chunk_keys(path) == set(), "overwrite=True removes the old chunks"
    assert not (path / "zarr.json").exists(), "old v3 metadata must not shadow the new v2 array"
    reopened = vc.open(path)
    assert reopened.zarr_format == 2 and reopened.dtype == np.float32
    assert (reopened.read() == 0).all()


def test_bad_create_arguments(tmp_path):
    with pytest.raises((ValueError, NotImplementedError)):
        vc.create_array(tmp_path / "a", (10, 10), "u2", chunks=(4, 4), shards=(8, 8), zarr_format=2)
    with pytest.raises((ValueError, NotImplementedError)) as ei:
        vc.create_array(tmp_path / "b", (10, 10), "u2", codec="snappy-9000")
    assert "snappy-9000" in str(ei.value)
    with pytest.raises(ValueError):
        # shards must be a multiple of chunks
        vc.create_array(tmp_path / "c", (10, 10), "u2", chunks=(4, 4), shards=(6, 6))
    with pytest.raises(ValueError):
        vc.create_array(tmp_path / "d", (10, 10), "u2", chunks=(4, 4, 4))  # rank mismatch
    with pytest.raises(ValueError):
        vc.create_array(tmp_path / "e", (10, 10), "u2", chunks=(0, 4))
    with pytest.raises(ValueError):
        vc.create_array(tmp_path / "f", (10, 10), "u2", zarr_format=4)
    with pytest.raises(ValueError):
        vc.create_array(tmp_path / "g", (10, 10), "u2", dims=("y",))
    with pytest.raises(ValueError):
        vc.create_array(tmp_path / "h", (10, 10), "u1", fill_value=300)  # not representable
    with pytest.raises((ValueError, NotImplementedError)):
        vc.create_array(tmp_path / "i", (10, 10), "u2", dimension_separator="-", zarr_format=2)
