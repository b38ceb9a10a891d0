"""voxcore reads what zarr-python 3 writes, bit-exactly.

Every oracle array is written by zarr-python (3.1) with numcodecs codecs; voxcore must return
the same bytes as numpy indexing of the source volume and as zarr-python's own read, for whole
arrays and for random sub-boxes (steps, integer and negative indices, dict regions, caller
buffers). Parametrized over codecs, dtypes, byte order, memory order, odd shapes with partial
edge chunks, ranks 1-4, chunk key encodings, sharding (index at start and end) and missing
chunks with non-zero and NaN fill values.
"""
from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import voxcore as vc
import zarr
import zarr.codecs as zc
from zarr.codecs import numcodecs as zcn

SHAPE = (37, 50, 23)
CHUNKS = (16, 16, 8)


@dataclasses.dataclass(frozen=True)
class Case:
    """One oracle array. Codec arguments are factories so that codecs are built at test time."""

    id: str
    fmt: int = 3
    dtype: str = "u2"
    shape: tuple = SHAPE
    chunks: tuple = CHUNKS  # the chunk grid zarr-python is given (shard shape with a serializer)
    shards: tuple | None = None
    compressors: Callable | None = None
    serializer: Callable | None = None
    filters: Callable | None = None
    order: str | None = None
    cke: dict | None = None
    fill: Any = 0
    box: tuple | None = None  # only this region is written (the rest stays missing/fill)
    blank: tuple | None = None  # this region is set to the fill value before a whole write
    dims: tuple | None = None
    patch_fill: Any = None  # a raw JSON fill_value written into zarr.json after creation
    inner_chunks: tuple | None = None  # inner chunk shape for sharded arrays
    missing: bool = False  # at least one chunk (or shard) file must be absent


# ---------------------------------------------------------------------------- codecs
def v2_zstd():
    return numcodecs.Zstd(level=1)


V2_CODECS = {
    "zstd": v2_zstd,
    "blosc-lz4-shuffle": lambda: numcodecs.Blosc(
        cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE
    ),
    "blosc-zstd-bitshuffle": lambda: numcodecs.Blosc(
        cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE
    ),
    "blosc-lz4-noshuffle": lambda: numcodecs.Blosc(
        cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE
    ),
    "blosc-blosclz-blocks": lambda: numcodecs.Blosc(
        cname="blosclz", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=256
    ),
    "lz4": lambda: numcodecs.LZ4(),
    "gzip": lambda: numcodecs.GZip(level=5),
    "zlib": lambda: numcodecs.Zlib(level=5),
    "none": None,
}

V3_CODECS = {
    "zstd": lambda: [zc.ZstdCodec(level=1)],
    "zstd-checksum": lambda: [zc.ZstdCodec(level=3, checksum=True)],
    "blosc-lz4-shuffle": lambda: [zc.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
    "blosc-zstd-bitshuffle": lambda: [zc.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")],
    "blosc-lz4-noshuffle": lambda: [zc.BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle")],
    "blosc-blosclz-blocks": lambda: [
        zc.BloscCodec(cname="blosclz", clevel=5, shuffle="shuffle", blocksize=256)
    ],
    "lz4": lambda: [zcn.LZ4()],
    "gzip": lambda: [zc.GzipCodec(level=5)],
    "crc32c": lambda: [zc.Crc32cCodec()],
    "zstd+crc32c": lambda: [zc.ZstdCodec(level=1), zc.Crc32cCodec()],
    "none": None,
}


def v3_sharding(index_location="end", inner=(16, 16, 8), codecs=None, index_codecs=None):
    def make():
        kw = {
            "chunk_shape": inner,
            "codecs": codecs() if codecs else [zc.BytesCodec(), zc.ZstdCodec(level=1)],
            "index_location": index_location,
        }
        if index_codecs is not None:
            kw["index_codecs"] = index_codecs()
        return zc.ShardingCodec(**kw)

    return make


BOX = (slice(5, 30), slice(3, 35), slice(2, 17))  # unaligned, leaves many chunks untouched
SLAB = (slice(16, 32), slice(None), slice(None))  # whole chunks equal to fill -> not stored

CASES: list[Case] = []
# codecs
for name, make in V2_CODECS.items():
    CASES.append(Case(f"v2-{name}", fmt=2, compressors=make))
for name, make in V3_CODECS.items():
    CASES.append(Case(f"v3-{name}", fmt=3, compressors=make))
# dtypes
for dt in ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "c8"]:
    CASES.append(Case(f"v2-dtype-{dt}", fmt=2, dtype=dt, shape=(20, 33, 17), chunks=(8, 16, 8),
                      compressors=v2_zstd))
    CASES.append(Case(f"v3-dtype-{dt}", fmt=3, dtype=dt, shape=(20, 33, 17), chunks=(8, 16, 8),
                      compressors=V3_CODECS["zstd"]))
# big-endian storage
for dt in [">u2", ">i4", ">f4", ">f8", ">c8", ">i8"]:
    CASES.append(Case(f"v2-bigendian-{dt[1:]}", fmt=2, dtype=dt,
                      compressors=V2_CODECS["blosc-lz4-shuffle"]))
for dt in ["u2", "i4", "f4", "f8", "c8", "u8"]:
    CASES.append(Case(f"v3-bigendian-{dt}", fmt=3, dtype=dt,
                      serializer=lambda: zc.BytesCodec(endian="big"),
                      compressors=V3_CODECS["zstd"]))
CASES += [
    Case("v3-bigendian-none", fmt=3, dtype="i2", serializer=lambda: zc.BytesCodec(endian="big")),
    # memory order
    Case("v2-order-F", fmt=2, order="F", compressors=v2_zstd),
    Case("v2-order-F-f8-none-missing", fmt=2, dtype="f8", order="F", box=BOX, missing=True),
    Case("v2-order-F-4d", fmt=2, order="F", dtype="i2", shape=(3, 17, 20, 9), chunks=(2, 8, 8, 4),
         compressors=V2_CODECS["gzip"]),
    Case("v3-transpose-210", fmt=3, filters=lambda: [zc.TransposeCodec(order=(2, 1, 0))],
         compressors=V3_CODECS["zstd"]),
    Case("v3-transpose-120-blosc", fmt=3, dtype="f4",
         filters=lambda: [zc.TransposeCodec(order=(1, 2, 0))],
         compressors=V3_CODECS["blosc-lz4-shuffle"]),
    Case("v3-transpose-bigendian-none", fmt=3, dtype="u4",
         filters=lambda: [zc.TransposeCodec(order=(2, 0, 1))],
         serializer=lambda: zc.BytesCodec(endian="big")),
    # ranks and odd shapes
    Case("v3-1d", fmt=3, shape=(1000,), chunks=(64,), compressors=V3_CODECS["zstd"]),
    Case("v2-1d-gzip", fmt=2, dtype="f4", shape=(999,), chunks=(100,),
         compressors=V2_CODECS["gzip"]),
    Case("v3-2d", fmt=3, shape=(100, 77), chunks=(32, 20),
         compressors=V3_CODECS["blosc-lz4-shuffle"]),
    Case("v2-2d-zlib", fmt=2, dtype="i4", shape=(100, 77), chunks=(32, 20),
         compressors=V2_CODECS["zlib"]),
    Case("v3-4d", fmt=3, dtype="u2", shape=(3, 17, 20, 9), chunks=(2, 8, 8, 4),
         compressors=V3_CODECS["zstd"], dims=("t", "z", "y", "x")),
    Case("v2-4d-lz4", fmt=2, dtype="f8", shape=(3, 17, 20, 9), chunks=(2, 8, 8, 4),
         compressors=V2_CODECS["lz4"]),
    Case("v3-chunk-larger-than-array", fmt=3, shape=(10, 10), chunks=(16, 16),
         compressors=V3_CODECS["zstd"]),
    Case("v2-chunk-larger-than-array", fmt=2, shape=(10, 10), chunks=(16, 16), compressors=v2_zstd),
    Case("v3-single-voxel-chunks", fmt=3, shape=(3, 4, 5), chunks=(1, 1, 1), compressors=None),
    Case("v3-dims-named", fmt=3, compressors=V3_CODECS["zstd"], dims=("z", "y", "x")),
    # chunk key encodings
    Case("v2-sep-dot", fmt=2, cke={"name": "v2", "separator": "."}, compressors=v2_zstd),
    Case("v2-sep-slash", fmt=2, cke={"name": "v2", "separator": "/"},
         compressors=V2_CODECS["blosc-lz4-shuffle"]),
    Case("v3-cke-default-dot", fmt=3, cke={"name": "default", "separator": "."},
         compressors=V3_CODECS["zstd"]),
    Case("v3-cke-v2-dot", fmt=3, cke={"name": "v2", "separator": "."},
         compressors=V3_CODECS["zstd"]),
    Case("v3-cke-v2-slash", fmt=3, cke={"name": "v2", "separator": "/"},
         compressors=V3_CODECS["gzip"]),
    # sharding
    Case("v3-shard-end", fmt=3, shards=(32, 32, 16), compressors=V3_CODECS["zstd"]),
    Case("v3-shard-start", fmt=3, chunks=(32, 32, 16), serializer=v3_sharding("start"),
         inner_chunks=(16, 16, 8)),
    Case("v3-shard-end-partial", fmt=3, chunks=(32, 32, 16), serializer=v3_sharding("end"),
         inner_chunks=(16, 16, 8), box=BOX, fill=9, missing=True),
    Case("v3-shard-start-partial", fmt=3, chunks=(32, 32, 16), serializer=v3_sharding("start"),
         inner_chunks=(16, 16, 8), box=BOX, fill=9, missing=True),
    Case("v3-shard-start-blank-inner", fmt=3, chunks=(32, 32, 16), serializer=v3_sharding("start"),
         inner_chunks=(16, 16, 8), blank=(slice(0, 16), slice(0, 16), slice(None))),
    Case("v3-shard-no-index-crc", fmt=3, chunks=(32, 32, 16),
         serializer=v3_sharding("end", index_codecs=lambda: [zc.BytesCodec()]),
         inner_chunks=(16, 16, 8), box=BOX),
    Case("v3-shard-start-no-index-crc", fmt=3, chunks=(32, 32, 16),
         serializer=v3_sharding("start", index_codecs=lambda: [zc.BytesCodec()]),
         inner_chunks=(16, 16, 8)),
    Case("v3-shard-blosc", fmt=3, shards=(32, 32, 16), dtype="i4",
         compressors=V3_CODECS["blosc-zstd-bitshuffle"]),
    Case("v3-shard-inner-transpose", fmt=3, shards=(32, 32, 16),
         filters=lambda: [zc.TransposeCodec(order=(2, 1, 0))], compressors=V3_CODECS["zstd"]),
    Case("v3-shard-bigendian-f4-nan", fmt=3, dtype="f4", chunks=(32, 32, 16),
         serializer=v3_sharding("end", codecs=lambda: [zc.BytesCodec(endian="big"),
                                                       zc.GzipCodec()]),
         inner_chunks=(16, 16, 8), box=BOX, fill=float("nan"), missing=True),
    Case("v3-shard-outer-crc32c", fmt=3, chunks=(32, 32, 16), serializer=v3_sharding("end"),
         compressors=lambda: [zc.Crc32cCodec()], inner_chunks=(16, 16, 8)),
    Case("v3-shard-2d", fmt=3, shape=(100, 77), chunks=(16, 20), shards=(64, 40),
         compressors=V3_CODECS["zstd"], box=(slice(10, 90), slice(0, 30)), missing=True),
    Case("v3-shard-1d", fmt=3, dtype="f8", shape=(1000,), chunks=(50,), shards=(200,),
         compressors=V3_CODECS["lz4"]),
    Case("v3-shard-4d", fmt=3, shape=(3, 17, 20, 9), chunks=(1, 8, 8, 4), shards=(2, 16, 16, 8),
         compressors=V3_CODECS["zstd"]),
    # missing chunks and fill values
    Case("v2-missing-fill0", fmt=2, compressors=v2_zstd, box=BOX, missing=True),
    Case("v3-missing-fill0", fmt=3, compressors=V3_CODECS["zstd"], box=BOX, missing=True),
    Case("v2-missing-fill7", fmt=2, compressors=v2_zstd, box=BOX, fill=7, missing=True),
    Case("v3-missing-fill7", fmt=3, compressors=V3_CODECS["zstd"], box=BOX, fill=7, missing=True),
    Case("v2-blank-slab-fill7", fmt=2, compressors=v2_zstd, blank=SLAB, fill=7, missing=True),
    Case("v3-blank-slab-fill7", fmt=3, compressors=V3_CODECS["zstd"], blank=SLAB, fill=7,
         missing=True),
    Case("v2-missing-fill-neg-i2", fmt=2, dtype="i2", compressors=v2_zstd, box=BOX, fill=-5,
         missing=True),
    Case("v3-missing-fill-neg-i8", fmt=3, dtype="i8", compressors=V3_CODECS["zstd"], box=BOX,
         fill=-(2**40) - 3, missing=True),
    Case("v2-missing-fill-u8-huge", fmt=2, dtype="u8", compressors=v2_zstd, box=BOX,
         fill=2**63 + 5, missing=True),
    Case("v2-missing-fill-nan-f4", fmt=2, dtype="f4", compressors=v2_zstd, box=BOX,
         fill=float("nan"), missing=True),
    Case("v3-missing-fill-nan-f4", fmt=3, dtype="f4", compressors=V3_CODECS["zstd"], box=BOX,
         fill=float("nan"), missing=True),
    Case("v2-missing-fill-nan-bigendian-f8", fmt=2, dtype=">f8", compressors=v2_zstd, box=BOX,
         fill=float("nan"), missing=True),
    Case("v3-missing-fill-nan-f8", fmt=3, dtype="f8", compressors=None, box=BOX,
         fill=float("nan"), missing=True),
    Case("v3-missing-fill-neg-inf-f8", fmt=3, dtype="f8", compressors=V3_CODECS["zstd"], box=BOX,
         fill=float("-inf"), missing=True),
    Case("v3-missing-fill-1.5-f4", fmt=3, dtype="f4", compressors=V3_CODECS["gzip"], box=BOX,
         fill=1.5, missing=True),
    Case("v3-missing-fill-nan-payload-hex-f4", fmt=3, dtype="f4", compressors=V3_CODECS["zstd"],
         box=BOX, fill=float("nan"), patch_fill="0x7fc00001", missing=True),
    Case("v3-missing-fill-complex", fmt=3, dtype="c8", compressors=V3_CODECS["zstd"], box=BOX,
         fill=complex(1.0, -2.0), missing=True),
    Case("v2-missing-fill-complex", fmt=2, dtype="c8", compressors=v2_zstd, box=BOX,
         fill=complex(1.0, -2.0), missing=True),
]
CASE_BY_ID = {c.id: c for c in CASES}
assert len(CASE_BY_ID) == len(CASES), "duplicate case ids"


def fill_array(case: Case) -> np.ndarray:
    dt = np.dtype(case.dtype)
    if case.patch_fill is not None:
        assert case.patch_fill.startswith("0x")
        bits = np.array([int(case.patch_fill, 16)], dtype=f"u{dt.itemsize}")
        value = bits.view(dt.newbyteorder("="))[0]
        return np.full(case.shape, value, dtype=dt.newbyteorder("="))
    return np.full(case.shape, case.fill, dtype=dt)


def build(case: Case, root: Path, make_volume, quiet_zarr):
    """Write the case with zarr-python; return (path, expected numpy array, zarr array)."""
    path = root / case.id
    kw: dict = {
        "store": str(path), "shape": case.shape, "chunks": case.chunks, "dtype": case.dtype,
        "zarr_format": case.fmt, "fill_value": case.fill, "overwrite": True,
    }
    with quiet_zarr():
        if case.shards is not None:
            kw["shards"] = case.shards
        if case.fmt == 2:
            kw["compressors"] = case.compressors() if case.compressors else None
            kw["filters"] = None
        else:
            kw["compressors"] = case.compressors() if case.compressors else None
            kw["filters"] = case.filters() if case.filters else None
            if case.serializer is not None:
                kw["serializer"] = case.serializer()
        if case.order is not None:
            kw["order"] = case.order
        if case.cke is not None:
            kw["chunk_key_encoding"] = case.cke
        if case.dims is not None:
            kw["dimension_names"] = case.dims
        arr = zarr.create_array(**kw)
        if case.patch_fill is not None:
            meta = json.loads((path / "zarr.json").read_text())
            meta["fill_value"] = case.patch_fill
            (path / "zarr.json").write_text(json.dumps(meta))
            arr = zarr.open_array(str(path), mode="r+")
        seed = zlib.crc32(case.id.encode())
        src = make_volume(case.shape, case.dtype, seed)
        if case.box is not None:
            expected = fill_array(case)
            expected[case.box] = src[case.box]
            arr[case.box] = src[case.box]
        else:
            if case.blank is not None:
                src[case.blank] = case.fill
            arr[...] = src
            expected = src
        back = zarr.open_array(str(path), mode="r")
        zread = back[...]
    if not zread.dtype.isnative:
        zread = zread.astype(zread.dtype.newbyteorder("="))
    return path, expected, back, zread


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, make_volume, quiet_zarr, bit_equal):
    """``oracle(case_id) -> (path, expected, zarr_array, zarr_read)``, built once per module."""
    root = tmp_path_factory.mktemp("zarr_read")
    cache: dict = {}

    def get(case_id: str):
        if case_id not in cache:
            case = CASE_BY_ID[case_id]
            path, expected, zarr_arr, zread = build(case, root, make_volume, quiet_zarr)
            # The oracle itself must agree with the source (guards the test, not voxcore).
            bit_equal(zread, expected, f"zarr-python oracle for {case_id}")
            if case.missing:
                n_keys = sum(1 for p in path.rglob("*") if p.is_file() and p.name not in (
                    "zarr.json", ".zarray", ".zattrs", ".zgroup"))
                grid = case.chunks if case.shards is None else case.shards
                n_grid = math.prod(-(-s // c) for s, c in zip(case.shape, grid))
                assert n_keys < n_grid, f"{case_id}: expected some chunks to be missing"
            cache[case_id] = (path, expected, zarr_arr, zread)
        return cache[case_id]

    return get


def native(dt) -> np.dtype:
    return np.dtype(dt).newbyteorder("=")


def case_ids():
    return [c.id for c in CASES]


def random_regions(shape, rng, n):
    """Random numpy-style regions: slices with steps, negative starts, ints (also negative)."""
    regions = []
    for _ in range(n):
        reg = []
        for s in shape:
            r = rng.random()
            if r < 0.12:
                reg.append(int(rng.integers(-s, s)))
                continue
            a = int(rng.integers(0, s))
            b = int(rng.integers(a + 1, s + 1))
            step = int(rng.choice([1, 1, 1, 2, 3]))
            if rng.random() < 0.2:
                a -= s  # negative start, same position
            if rng.random() < 0.1:
                b = s + 7  # past the end: clipped like numpy
            reg.append(slice(a, b, step if step > 1 else None))
        regions.append(tuple(reg))
    return regions


# ---------------------------------------------------------------------------- per-case tests
@pytest.mark.parametrize("case_id", case_ids())
def test_metadata(case_id, oracle):
    case = CASE_BY_ID[case_id]
    path, _expected, zarr_arr, _ = oracle(case_id)
    img = vc.open(path)
    assert img.shape == case.shape
    assert img.ndim == len(case.shape)
    assert img.dtype == native(case.dtype)
    assert img.dtype.isnative
    assert img.zarr_format == case.fmt
    assert img.nbytes == math.prod(case.shape) * np.dtype(case.dtype).itemsize
    # chunks is the read/write unit (the inner chunk of a sharded array); shards the file grid
    if case.inner_chunks is not None:
        want_chunks, want_shards = case.inner_chunks, case.chunks
    else:
        want_chunks, want_shards = case.chunks, case.shards
    assert tuple(img.chunks) == tuple(want_chunks)
    assert (None if img.shards is None else tuple(img.shards)) == want_shards
    if zarr_arr.shards is not None:  # zarr-python agrees where it calls the array sharded
        assert (tuple(zarr_arr.chunks), tuple(zarr_arr.shards)) == (want_chunks, want_shards)
    if case.dims is not None:
        assert tuple(img.dims) == case.dims
    else:
        assert tuple(img.dims) == tuple(f"dim_{i}" for i in range(len(case.shape)))
    want_fill = fill_array(case).reshape(-1)[:1] if math.prod(case.shape) else None
    if want_fill is not None:
        got_fill = np.asarray(img.fill_value, dtype=native(case.dtype)).reshape(1)
        assert got_fill.tobytes() == want_fill.astype(native(case.dtype)).tobytes(), (
            f"fill_value {img.fill_value!r} != {want_fill[0]!r}"
        )


@pytest.mark.parametrize("case_id", case_ids())
def test_read_whole(case_id, oracle, bit_equal):
    path, expected, _, zread = oracle(case_id)
    img = vc.open(path)
    got = img.read()
    bit_equal(got, expected, "read() vs source")
    bit_equal(got, zread, "read() vs zarr-python")
    bit_equal(img[...], expected, "img[...]")
    bit_equal(img[:], expected, "img[:]")
    bit_equal(img.read(None), expected, "read(None)")


@pytest.mark.parametrize("case_id", case_ids())
def test_read_random_regions(case_id, oracle, bit_equal):
    path, expected, _, _ = oracle(case_id)
    img = vc.open(path)
    rng = np.random.default_rng(zlib.crc32(case_id.encode()) + 1)
    for region in random_regions(img.shape, rng, 10):
        want = expected[region]
        bit_equal(img.read(region), want, f"read({region})")
        bit_equal(img[region], want, f"img[{region}]")


@pytest.mark.parametrize("case_id", case_ids())
def test_read_into_out_buffers(case_id, oracle, bit_equal):
    """out= accepts C, F and strided writable views and is filled and returned."""
    path, expected, _, _ = oracle(case_id)
    img = vc.open(path)
    dt = native(img.dtype)
    region = tuple(slice(s // 4, max(s // 4 + 1, s - s // 5)) for s in img.shape)
    want = expected[region]
    for label, buf in [
        ("C", np.empty(want.shape, dt, order="C")),
        ("F", np.empty(want.shape, dt, order="F")),
        ("strided", np.empty(tuple(2 * s + 1 for s in want.shape), dt)[
            tuple(slice(1, None, 2) for _ in want.shape)]),
        ("transposed", np.empty(want.shape[::-1], dt).T),
    ]:
        buf[...] = np.zeros((), dt)
        ret = img.read(region, out=buf)
        assert ret is buf, f"out={label}: read must return the buffer it was given"
        bit_equal(buf, want, f"out={label}")


# ---------------------------------------------------------------------------- region semantics
@pytest.fixture(scope="module")
def named(oracle):
    path, expected, _, _ = oracle("v3-dims-named")
    return vc.open(path), expected


@pytest.fixture(scope="module")
def unnamed(oracle):
    path, expected, _, _ = oracle("v2-missing-fill7")
    return vc.open(path), expected


def test_dict_region_with_dimension_names(named, bit_equal):
    img, src = named
    assert img.dims == ("z", "y", "x")
    bit_equal(img.read({"z": slice(3, 20), "x": 4}), src[3:20, :, 4])
    bit_equal(img.read({"y": slice(None, None, 3)}), src[:, ::3, :])
    bit_equal(img.read({"x": -1, "z": 0, "y": slice(-10, None)}), src[0, -10:, -1])
    bit_equal(img.read({}), src)


def test_dict_region_with_default_dims(unnamed, bit_equal):
    img, src = unnamed
    assert img.dims == ("dim_0", "dim_1", "dim_2")
    bit_equal(img.read({"dim_1": slice(7, 40, 2), "dim_2": -3}), src[:, 7:40:2, -3])


def test_ellipsis_and_mixed_indexing(named, bit_equal):
    img, src = named
    bit_equal(img[..., 5], src[..., 5])
    bit_equal(img[2, ...], src[2, ...])
    bit_equal(img[1, ..., 3:9], src[1, ..., 3:9])
    bit_equal(img.read((Ellipsis, slice(2, 9))), src[..., 2:9])
    bit_equal(img[5, 10:20, ::2], src[5, 10:20, ::2])
    bit_equal(img[-1, -1, -1], src[-1, -1, -1])
    bit_equal(img[3:4], src[3:4])
    bit_equal(img[3], src[3])
    bit_equal(img[3:3], src[3:3])  # empty selection keeps numpy's shape


def test_negative_steps(named, bit_equal):
    img, src = named
    bit_equal(img[::-1, 5, -3:], src[::-1, 5, -3:])
    bit_equal(img[30:2:-3, ::-2, 7], src[30:2:-3, ::-2, 7])


def test_integer_index_out_of_range_raises_index_error(named):
    img, src = named
    with pytest.raises(IndexError):
        img[src.shape[0]]
    with pytest.raises(IndexError):
        img[:, -src.shape[1] - 1]
    with pytest.raises(IndexError):
        img[0, 0, 0, 0]  # too many indices


def test_slices_past_the_end_are_clipped_without_pad(named, bit_equal):
    img, src = named
    bit_equal(img[30:100, 45:1000, 20:], src[30:100, 45:1000, 20:])
    bit_equal(img[40:50], src[40:50])  # entirely outside: empty, like numpy


def test_pad_fills_outside_with_fill_value(unnamed, bit_equal):
    img, src = unnamed  # fill value 7, shape (37, 50, 23)
    got = img.read((slice(30, 45), slice(40, 60), slice(0, 23)), pad=True)
    want = np.full((15, 20, 23), 7, dtype=src.dtype)
    want[:7, :10, :] = src[30:37, 40:50, :]
    bit_equal(got, want, "pad=True past the end")
    outside = img.read((slice(40, 44), slice(0, 5), slice(100, 102)), pad=True)
    bit_equal(outside, np.full((4, 5, 2), 7, dtype=src.dtype), "pad=True entirely outside")
    inside = img.read((slice(1, 9), slice(2, 6), slice(3, 4)), pad=True)
    bit_equal(inside, src[1:9, 2:6, 3:4], "pad=True inside equals a plain read")


def test_pad_with_nan_fill(oracle, bit_equal):
    path, src, _, _ = oracle("v3-missing-fill-nan-f4")
    img = vc.open(path)
    got = img.read({"dim_0": slice(20, 50)}, pad=True)
    want = np.full((30,) + src.shape[1:], np.nan, dtype=np.float32)
    want[:17] = src[20:]
    bit_equal(got, want, "pad=True with NaN fill")


def test_pad_into_out_buffer(unnamed, bit_equal):
    img, src = unnamed
    out = np.empty((10, 10, 30), dtype=src.dtype, order="F")
    ret = img.read((slice(32, 42), slice(45, 55), slice(0, 30)), pad=True, out=out)
    assert ret is out
    want = np.full((10, 10, 30), 7, dtype=src.dtype)
    want[:5, :5, :23] = src[32:, 45:, :]
    bit_equal(out, want)


def test_pad_requires_unit_steps(unnamed):
    img, _ = unnamed
    with pytest.raises((ValueError, IndexError)):
        img.read((slice(0, 40, 2), slice(None), slice(None)), pad=True)


def test_out_buffer_of_wrong_shape_or_dtype_is_rejected(unnamed):
    img, src = unnamed
    region = (slice(0, 10), slice(0, 10), slice(0, 10))
    with pytest.raises((ValueError, TypeError)):
        img.read(region, out=np.empty((10, 10, 9), dtype=src.dtype))
    with pytest.raises((ValueError, TypeError)):
        img.read(region, out=np.empty((10, 10, 10), dtype=np.float64))
    ro = np.empty((10, 10, 10), dtype=src.dtype)
    ro.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        img.read(region, out=ro)


def test_out_buffer_with_integer_indices(named, bit_equal):
    img, src = named
    out = np.empty((10,), dtype=src.dtype)
    assert img.read((4, slice(5, 15), -2), out=out) is out
    bit_equal(out, src[4, 5:15, -2])


# ---------------------------------------------------------------------------- other layouts
def test_zero_length_dimension(tmp_path, quiet_zarr):
    with quiet_zarr():
        zarr.create_array(store=str(tmp_path / "a"), shape=(0, 5), chunks=(4, 4), dtype="u2")
    img = vc.open(tmp_path / "a")
    assert img.shape == (0, 5)
    got = img.read()
    assert got.shape == (0, 5) and got.dtype == np.uint16


def test_open_accepts_str_and_pathlike(oracle, bit_equal):
    path, src, _, _ = oracle("v3-zstd")
    bit_equal(vc.open(str(path)).read(), src)
    bit_equal(vc.open(Path(path)).read(), src)


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        vc.open(tmp_path / "does-not-exist.zarr")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises((FileNotFoundError, vc.InvalidMetadataError)):
        vc.open(tmp_path / "empty-dir")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_group_opens_level_zero(tmp_path, version, make_volume, quiet_zarr, bit_equal):
    src = make_volume((20, 30, 17), "u2", 11)
    fmt = 2 if version == "0.4" else 3
    root = tmp_path / "img.ome.zarr"
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    datasets = [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]},
        {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 2.0, 2.0]}]},
    ]
    ms = {"axes": axes, "datasets": datasets, "name": "img"}
    with quiet_zarr():
        if fmt == 2:
            ms["version"] = "0.4"
            grp = zarr.open_group(str(root), mode="w", zarr_format=2)
            grp.attrs["multiscales"] = [ms]
        else:
            grp = zarr.open_group(str(root), mode="w", zarr_format=3)
            grp.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
        kw = {"dtype": "u2", "compressors": None}
        if fmt == 2:
            kw["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            kw["dimension_names"] = ("z", "y", "x")
        a0 = grp.create_array("0", shape=src.shape, chunks=(8, 16, 8), **kw)
        a0[...] = src
        low = src[::2, ::2, ::2]
        a1 = grp.create_array("1", shape=low.shape, chunks=(8, 16, 8), **kw)
        a1[...] = low
    img = vc.open(root)
    assert img.shape == src.shape
    bit_equal(img.read(), src)
    bit_equal(img[3:9, ::4, -1], src[3:9, ::4, -1])
