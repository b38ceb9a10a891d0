"""Bad input for the Zarr layer (RELIABILITY.md): every case raises the right voxcore exception,
whose message names the key / field / codec, and none crashes or hangs the interpreter.

Classes of input: metadata (shapes, chunks, byte counts, rank, dtypes, codecs, fill values,
separators, deep/huge/invalid JSON, codec order, missing fields); chunks (truncated, empty,
decoding to too few/too many bytes, bombs and lying size headers for zstd/blosc/lz4/gzip, bad
checksums, the wrong codec's bytes); shards (shorter than the index, entries out of range,
overflowing, half-empty); keys and OME dataset paths that escape the store; disk full mid-write.

The whole catalog first runs once in a child interpreter (``test_catalog_never_crashes``), so
that a decoder that segfaults fails that test with the case name instead of killing pytest.
"""
from __future__ import annotations

import gzip
import inspect
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import voxcore as vc
import zarr
import zarr.codecs as zc
from zarr.codecs import numcodecs as zcn

U64_MAX = 2**64 - 1


def trigger(path):
    """What a user does: open, then read (everything if small, else a corner)."""
    import voxcore

    img = voxcore.open(path)
    if img.nbytes <= (1 << 20):
        return img.read()
    return img.read(tuple(slice(0, 2) for _ in img.shape))


@dataclass(frozen=True)
class Bad:
    id: str
    build: Callable[[Path], Path]  # makes the bad array under a fresh directory, returns its path
    raises: tuple  # acceptable exception classes
    names: tuple  # groups of alternatives; each group must have one member in str(exc)


def check_message(exc: BaseException, names) -> None:
    msg = str(exc).lower()
    for group in names:
        group = (group,) if isinstance(group, str) else group
        assert any(n.lower() in msg for n in group), (
            f"message does not name any of {group}: {str(exc)!r}"
        )


# ============================================================================ metadata
def v3_doc(**over) -> dict:
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [16, 16],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 8]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
    }
    for k, v in over.items():
        if v is DELETE:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


def v2_doc(**over) -> dict:
    doc = {
        "zarr_format": 2,
        "shape": [16, 16],
        "chunks": [8, 8],
        "dtype": "<u2",
        "compressor": None,
        "fill_value": 0,
        "order": "C",
        "filters": None,
    }
    for k, v in over.items():
        if v is DELETE:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


DELETE = object()


def grid(chunks):
    return {"name": "regular", "configuration": {"chunk_shape": chunks}}


def meta_v3(raw=None, **over):
    def build(d: Path) -> Path:
        p = d / "a.zarr"
        p.mkdir()
        body = raw if raw is not None else json.dumps(v3_doc(**over)).encode()
        (p / "zarr.json").write_bytes(body)
        return p

    return build


def meta_v2(raw=None, **over):
    def build(d: Path) -> Path:
        p = d / "a.zarr"
        p.mkdir()
        body = raw if raw is not None else json.dumps(v2_doc(**over)).encode()
        (p / ".zarray").write_bytes(body)
        return p

    return build


IM, LIM, UNS = vc.InvalidMetadataError, vc.LimitExceededError, vc.UnsupportedError
BYTES = {"name": "bytes", "configuration": {"endian": "little"}}
ZSTD = {"name": "zstd", "configuration": {"level": 1, "checksum": False}}
TRANSPOSE = {"name": "transpose", "configuration": {"order": [1, 0]}}


def sharding(shard_inner, index_location="end"):
    return {"name": "sharding_indexed", "configuration": {
        "chunk_shape": shard_inner, "codecs": [BYTES],
        "index_codecs": [BYTES, {"name": "crc32c"}], "index_location": index_location}}


DEEP = "[" * 10000 + "]" * 10000

METADATA: list[Bad] = [
    # shapes
    Bad("v3-shape-negative", meta_v3(shape=[-1, 16]), (IM,), ("shape",)),
    Bad("v3-shape-float", meta_v3(shape=[16.5, 16]), (IM,), ("shape",)),
    Bad("v3-shape-string", meta_v3(shape=["16", 16]), (IM,), ("shape",)),
    Bad("v3-shape-bool", meta_v3(shape=[True, 16]), (IM,), ("shape",)),
    Bad("v3-shape-not-a-list", meta_v3(shape=16), (IM,), ("shape",)),
    Bad("v3-shape-beyond-int64", meta_v3(shape=[2**64, 16]), (IM, LIM), ("shape",)),
    Bad("v3-shape-5000-digits", meta_v3(raw=json.dumps(v3_doc()).replace(
        '"shape": [16, 16]', '"shape": [1' + "0" * 5000 + ', 16]').encode()),
        (IM, LIM), (("shape", "zarr.json"),)),
    Bad("v3-shape-element-count-overflow", meta_v3(shape=[2**40, 2**40, 2**40],
                                                   chunk_grid=grid([64, 64, 64])),
        (IM, LIM), ("shape",)),
    Bad("v3-rank-33", meta_v3(shape=[1] * 33, chunk_grid=grid([1] * 33)), (LIM,),
        (("rank", "dimension", "ndim", "32"),)),
    Bad("v3-rank-mismatch", meta_v3(chunk_grid=grid([8])), (IM,), ("chunk",)),
    # chunks
    Bad("v3-chunk-zero", meta_v3(chunk_grid=grid([0, 8])), (IM,), ("chunk",)),
    Bad("v3-chunk-negative", meta_v3(chunk_grid=grid([-8, 8])), (IM,), ("chunk",)),
    Bad("v3-chunk-float", meta_v3(chunk_grid=grid([8.5, 8])), (IM,), ("chunk",)),
    Bad("v3-chunk-bytes-huge", meta_v3(chunk_grid=grid([2**20, 2**20, 2**20]), shape=[8, 8, 8],
                                       data_type="uint8"), (LIM,), ("chunk",)),
    Bad("v3-chunk-bytes-overflow", meta_v3(chunk_grid=grid([2**31, 2**31, 2**31]),
                                           shape=[8, 8, 8], data_type="float64"),
        (IM, LIM), ("chunk",)),
    Bad("v3-chunk-grid-unknown", meta_v3(chunk_grid={"name": "rectilinear", "configuration": {}}),
        (IM, UNS), (("chunk_grid", "rectilinear"),)),
    # dtypes
    Bad("v3-dtype-unknown", meta_v3(data_type="uint7"), (IM, UNS), ("uint7",)),
    Bad("v3-dtype-not-a-string", meta_v3(data_type=42), (IM, UNS), (("data_type", "42"),)),
    Bad("v3-dtype-string", meta_v3(data_type="string", fill_value=""), (IM, UNS),
        (("data_type", "string"),)),
    # codecs
    Bad("v3-codec-unknown", meta_v3(codecs=[BYTES, {"name": "snappy9000"}]), (UNS,),
        ("snappy9000",)),
    Bad("v3-codec-name-missing", meta_v3(codecs=[BYTES, {"configuration": {}}]), (IM,),
        ("codec",)),
    Bad("v3-codec-zstd-level-string", meta_v3(codecs=[BYTES, {
        "name": "zstd", "configuration": {"level": "high", "checksum": False}}]), (IM,),
        ("zstd",)),
    Bad("v3-codec-blosc-cname", meta_v3(codecs=[BYTES, {"name": "blosc", "configuration": {
        "cname": "zebra", "clevel": 5, "shuffle": "shuffle", "typesize": 2, "blocksize": 0}}]),
        (IM, UNS), (("zebra", "cname"),)),
    Bad("v3-codec-blosc-shuffle", meta_v3(codecs=[BYTES, {"name": "blosc", "configuration": {
        "cname": "lz4", "clevel": 5, "shuffle": "sideways", "typesize": 2, "blocksize": 0}}]),
        (IM,), (("shuffle", "sideways"),)),
    Bad("v3-codec-bytes-endian", meta_v3(codecs=[{"name": "bytes",
                                                  "configuration": {"endian": "middle"}}]),
        (IM,), (("endian", "middle"),)),
    Bad("v3-codec-transpose-not-permutation", meta_v3(codecs=[
        {"name": "transpose", "configuration": {"order": [0, 0]}}, BYTES]), (IM,),
        (("transpose", "order"),)),
    Bad("v3-codec-transpose-rank", meta_v3(codecs=[
        {"name": "transpose", "configuration": {"order": [0, 1, 2]}}, BYTES]), (IM,),
        (("transpose", "order"),)),
    Bad("v3-codecs-wrong-order-bytes-last", meta_v3(codecs=[ZSTD, BYTES]), (IM,),
        ("codec",)),
    Bad("v3-codecs-wrong-order-transpose-after-bytes", meta_v3(codecs=[BYTES, TRANSPOSE]), (IM,),
        ("codec",)),
    Bad("v3-codecs-two-array-to-bytes", meta_v3(codecs=[BYTES, BYTES]), (IM,), ("codec",)),
    Bad("v3-codecs-no-array-to-bytes", meta_v3(codecs=[ZSTD]), (IM,), ("codec",)),
    Bad("v3-codecs-empty", meta_v3(codecs=[]), (IM,), ("codec",)),
    Bad("v3-codecs-not-a-list", meta_v3(codecs={"name": "bytes"}), (IM,), ("codec",)),
    Bad("v3-sharding-inner-not-dividing", meta_v3(codecs=[sharding([3, 8])]), (IM,),
        (("shard", "chunk_shape"),)),
    Bad("v3-sharding-inner-zero", meta_v3(codecs=[sharding([0, 8])]), (IM,),
        (("shard", "chunk_shape"),)),
    Bad("v3-sharding-index-location", meta_v3(codecs=[sharding([4, 4], "middle")]), (IM,),
        (("index_location", "middle"),)),
    Bad("v3-sharding-too-many-entries", meta_v3(chunk_grid=grid([2**20, 2**20]),
                                                codecs=[sharding([1, 1])]),
        (LIM,), (("shard", "entries", "index", "chunk"),)),
    # fill values
    Bad("v3-fill-string-for-int", meta_v3(fill_value="abc"), (IM,), ("fill_value",)),
    Bad("v3-fill-out-of-range", meta_v3(fill_value=70000), (IM,), ("fill_value",)),
    Bad("v3-fill-negative-for-unsigned", meta_v3(fill_value=-1), (IM,), ("fill_value",)),
    Bad("v3-fill-fraction-for-int", meta_v3(fill_value=1.5), (IM,), ("fill_value",)),
    Bad("v3-fill-list-for-int", meta_v3(fill_value=[1, 2]), (IM,), ("fill_value",)),
    Bad("v3-fill-null", meta_v3(fill_value=None), (IM,), ("fill_value",)),
    Bad("v3-fill-nan-for-int", meta_v3(fill_value="NaN"), (IM,), ("fill_value",)),
    Bad("v3-fill-bad-float-string", meta_v3(data_type="float32", fill_value="banana"), (IM,),
        ("fill_value",)),
    Bad("v3-fill-bad-hex-width", meta_v3(data_type="float32", fill_value="0x7ff8000000000000"),
        (IM,), ("fill_value",)),
    # key encodings
    Bad("v3-separator-bad", meta_v3(chunk_key_encoding={
        "name": "default", "configuration": {"separator": "|"}}), (IM,), ("separator",)),
    Bad("v3-separator-dotdot", meta_v3(chunk_key_encoding={
        "name": "default", "configuration": {"separator": "/../"}}), (IM, vc.UnsafePathError),
        ("separator",)),
    Bad("v3-key-encoding-unknown", meta_v3(chunk_key_encoding={
        "name": "morse", "configuration": {"separator": "/"}}), (IM, UNS),
        (("chunk_key_encoding", "morse"),)),
    # missing required fields
    *[Bad(f"v3-missing-{f}", meta_v3(**{f: DELETE}), (IM,), (f,)) for f in
      ["shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs"]],
    Bad("v3-missing-zarr_format", meta_v3(zarr_format=DELETE), (IM,),
        (("zarr_format", "zarr.json"),)),
    Bad("v3-zarr-format-4", meta_v3(zarr_format=4), (IM, UNS), ("zarr_format",)),
    Bad("v3-node-type-bad", meta_v3(node_type="banana"), (IM,), (("node_type", "banana"),)),
    Bad("v3-storage-transformer", meta_v3(storage_transformers=[{"name": "x"}]), (UNS, IM),
        ("storage_transformer",)),
    # JSON itself
    Bad("v3-json-invalid", meta_v3(raw=b'{"zarr_format": 3, "shape": [16, '), (IM,),
        ("zarr.json",)),
    Bad("v3-json-empty-file", meta_v3(raw=b""), (IM,), ("zarr.json",)),
    Bad("v3-json-not-utf8", meta_v3(raw=b'{"zarr_format": 3, "\xff\xfe": 1}'), (IM,),
        ("zarr.json",)),
    Bad("v3-json-not-an-object", meta_v3(raw=b"[1, 2, 3]"), (IM,), ("zarr.json",)),
    Bad("v3-json-deep-nesting", meta_v3(raw=DEEP.encode()), (IM, LIM),
        (("zarr.json", "depth", "nest"),)),
    # v2
    Bad("v2-shape-negative", meta_v2(shape=[-16, 16]), (IM,), ("shape",)),
    Bad("v2-chunks-zero", meta_v2(chunks=[0, 8]), (IM,), ("chunk",)),
    Bad("v2-chunks-float", meta_v2(chunks=[8.0001, 8]), (IM,), ("chunk",)),
    Bad("v2-dtype-unknown", meta_v2(dtype="<x9"), (IM, UNS), (("dtype", "<x9"),)),
    Bad("v2-dtype-unicode", meta_v2(dtype="<U5", fill_value=""), (IM, UNS), (("dtype", "<u5"),)),
    Bad("v2-dtype-object", meta_v2(dtype="|O", fill_value=0), (IM, UNS), (("dtype", "|o"),)),
    Bad("v2-dtype-structured", meta_v2(dtype=[["a", "<u2"], ["b", "<f4"]]), (IM, UNS),
        ("dtype",)),
    Bad("v2-compressor-unknown", meta_v2(compressor={"id": "snappy9000"}), (UNS,),
        ("snappy9000",)),
    Bad("v2-compressor-not-an-object", meta_v2(compressor="zstd"), (IM,), ("compressor",)),
    Bad("v2-filter-unsupported", meta_v2(filters=[{"id": "delta", "dtype": "<u2"}]), (UNS,),
        ("delta",)),
    Bad("v2-order-bad", meta_v2(order="X"), (IM,), ("order",)),
    Bad("v2-separator-bad", meta_v2(dimension_separator="-"), (IM,), ("dimension_separator",)),
    Bad("v2-separator-empty", meta_v2(dimension_separator=""), (IM,), ("dimension_separator",)),
    Bad("v2-fill-string-for-int", meta_v2(fill_value="abc"), (IM,), ("fill_value",)),
    Bad("v2-fill-out-of-range", meta_v2(fill_value=10**10), (IM,), ("fill_value",)),
    Bad("v2-zarr-format-3", meta_v2(zarr_format=3), (IM,), ("zarr_format",)),
    *[Bad(f"v2-missing-{f}", meta_v2(**{f: DELETE}), (IM,), (f,)) for f in
      ["shape", "chunks", "dtype"]],
    Bad("v2-json-invalid", meta_v2(raw=b"{'shape': [16, 16]}"), (IM,), (".zarray",)),
    Bad("v2-json-deep-nesting", meta_v2(raw=DEEP.encode()), (IM, LIM),
        ((".zarray", "depth", "nest"),)),
]


# ============================================================================ chunks
SHAPE, CHUNK = (16, 16), (8, 8)
DATA = (np.arange(256, dtype=np.uint16).reshape(SHAPE) * 37 % 1000).astype(np.uint16)
RAW = DATA[:8, :8].tobytes()  # the first chunk's decoded bytes (128)
N = len(RAW)

BASES = {
    # name: (zarr_format, compressors, key of the first chunk, codec name in messages)
    "zstd": (3, lambda: [zc.ZstdCodec(level=1)], "c/0/0", "zstd"),
    "zstd-v2": (2, lambda: numcodecs.Zstd(level=1), "0.0", "zstd"),
    "zstd-checksum": (3, lambda: [zc.ZstdCodec(level=1, checksum=True)], "c/0/0", "zstd"),
    "blosc": (3, lambda: [zc.BloscCodec(cname="lz4", shuffle="shuffle")], "c/0/0", "blosc"),
    "blosc-v2": (2, lambda: numcodecs.Blosc(cname="lz4", shuffle=numcodecs.Blosc.SHUFFLE), "0.0",
                 "blosc"),
    "lz4": (3, lambda: [zcn.LZ4()], "c/0/0", "lz4"),
    "lz4-v2": (2, lambda: numcodecs.LZ4(), "0.0", "lz4"),
    "gzip": (3, lambda: [zc.GzipCodec(level=5)], "c/0/0", "gzip"),
    "zlib-v2": (2, lambda: numcodecs.Zlib(level=5), "0.0", "zlib"),
    "crc32c": (3, lambda: [zc.Crc32cCodec()], "c/0/0", "crc32c"),
    "none": (3, None, "c/0/0", None),
    "none-v2": (2, None, "0.0", None),
}


def _u2(b: bytes) -> np.ndarray:
    return np.frombuffer(b + b"\0" * (len(b) % 2), dtype=np.uint16)


def enc_zstd(b):
    return numcodecs.Zstd(level=1).encode(b)


def enc_blosc(b):
    return bytes(numcodecs.Blosc(cname="lz4", shuffle=numcodecs.Blosc.SHUFFLE).encode(_u2(b)))


def enc_lz4(b):
    return bytes(numcodecs.LZ4().encode(b))


def enc_gzip(b):
    return gzip.compress(b, compresslevel=5)


def enc_zlib(b):
    return zlib.compress(b, 5)


def enc_crc32c(b):
    import crc32c

    return b + struct.pack("<I", crc32c.crc32c(b))


def enc_zstd_checksum(b):
    return numcodecs.Zstd(level=1, checksum=True).encode(b)


ENCODERS = {"zstd": enc_zstd, "zstd-v2": enc_zstd, "zstd-checksum": enc_zstd_checksum,
            "blosc": enc_blosc, "blosc-v2": enc_blosc, "lz4": enc_lz4, "lz4-v2": enc_lz4,
            "gzip": enc_gzip, "zlib-v2": enc_zlib, "crc32c": enc_crc32c,
            "none": bytes, "none-v2": bytes}


def zstd_rle_frame(content_size, n_blocks, block_size):
    """A valid-looking zstd frame of RLE blocks; the header may claim any content size."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    if content_size is None:
        out += bytes([0x00, 0x50])  # no content size field; window 1 MiB
    else:
        out += bytes([0xE0]) + struct.pack("<Q", content_size)  # single segment, 8-byte size
    for i in range(n_blocks):
        header = (block_size << 3) | (1 << 1) | (1 if i == n_blocks - 1 else 0)
        out += struct.pack("<I", header)[:3] + b"\x07"
    return bytes(out)


def patch(b: bytes, offset: int, value: bytes) -> bytes:
    b = bytearray(b)
    b[offset: offset + len(value)] = value
    return bytes(b)


def flip(b: bytes, offset: int) -> bytes:
    b = bytearray(b)
    b[offset] ^= 0x5A
    return bytes(b)


BOMB = bytes(16 << 20)  # 16 MiB of zeros: compresses to a few KiB


def chunk_payloads(base: str) -> dict[str, Callable[[], bytes]]:
    """Bad bytes for the first chunk of an array of the given base kind."""
    enc = ENCODERS[base]
    cases: dict[str, Callable[[], bytes]] = {
        "empty": lambda: b"",
        "truncated-half": lambda: enc(RAW)[: len(enc(RAW)) // 2],
        "truncated-1": lambda: enc(RAW)[:-1],
        "too-few-bytes": lambda: enc(RAW[:-2]),
        "too-many-bytes": lambda: enc(RAW + b"\x01" * 16),
        "garbage": lambda: bytes(np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8)),
    }
    if base in ("none", "none-v2", "crc32c"):
        del cases["truncated-1"]  # the same as too-few-bytes for raw data
    if base.startswith("zstd"):
        cases.update({
            "bomb": lambda: enc(BOMB),
            "rle-claims-2e40-bytes": lambda: zstd_rle_frame(2**40, 1, N),
            "rle-claims-one-more-byte": lambda: zstd_rle_frame(N + 1, 1, N + 1),
            "rle-no-size-1MiB": lambda: zstd_rle_frame(None, 8, 1 << 17),
            "gzip-bytes": lambda: enc_gzip(RAW),
        })
    if base == "zstd-checksum":  # without the frame checksum a flipped literal is undetectable
        cases.update({
            "payload-flipped": lambda: flip(enc(RAW), len(enc(RAW)) - 5),
            "checksum-flipped": lambda: flip(enc(RAW), len(enc(RAW)) - 1),
        })
    if base.startswith("blosc"):
        cases.update({
            "bomb": lambda: enc(BOMB),
            "nbytes-claims-2e31": lambda: patch(enc(RAW), 4, struct.pack("<I", 2**31 - 1)),
            "nbytes-claims-double": lambda: patch(enc(RAW), 4, struct.pack("<I", 2 * N)),
            "nbytes-claims-half": lambda: patch(enc(RAW), 4, struct.pack("<I", N // 2)),
            "cbytes-claims-more": lambda: patch(enc(RAW), 12, struct.pack("<I", 2**31 - 1)),
            "blocksize-zero": lambda: patch(enc(RAW), 8, struct.pack("<I", 0)),
            "zstd-bytes": lambda: enc_zstd(RAW),
        })
    if base.startswith("lz4"):
        cases.update({
            "bomb": lambda: enc(BOMB),
            "prefix-claims-2e31": lambda: patch(enc(RAW), 0, struct.pack("<I", 2**31)),
            "prefix-claims-4GiB": lambda: patch(enc(RAW), 0, struct.pack("<I", 2**32 - 1)),
            "prefix-claims-one-more": lambda: patch(enc(RAW), 0, struct.pack("<I", N + 1)),
            "prefix-claims-one-less": lambda: patch(enc(RAW), 0, struct.pack("<I", N - 1)),
            "prefix-claims-zero": lambda: patch(enc(RAW), 0, struct.pack("<I", 0)),
            "three-bytes": lambda: b"\x80\x00\x00",
        })
    if base == "gzip":
        cases.update({
            "bomb": lambda: enc(BOMB),
            "isize-lies": lambda: patch(enc(RAW), len(enc(RAW)) - 4, struct.pack("<I", 2**32 - 1)),
            "crc-mismatch": lambda: flip(enc(RAW), len(enc(RAW)) - 6),
            "zlib-bytes": lambda: enc_zlib(RAW),
        })
    if base == "zlib-v2":
        cases.update({
            "bomb": lambda: enc(BOMB),
            "adler-mismatch": lambda: flip(enc(RAW), len(enc(RAW)) - 1),
            "gzip-bytes": lambda: enc_gzip(RAW),
        })
    if base == "crc32c":
        cases.update({
            "checksum-flipped": lambda: flip(enc(RAW), N + 1),
            "data-flipped": lambda: flip(enc(RAW), 3),
            "three-bytes": lambda: b"\x01\x02\x03",
        })
    return cases


def chunk_case(base: str, payload: Callable[[], bytes]):
    fmt, comp, key, _ = BASES[base]

    def build(d: Path) -> Path:
        p = d / "a.zarr"
        kw = {"store": str(p), "shape": SHAPE, "chunks": CHUNK, "dtype": "u2",
              "zarr_format": fmt, "compressors": comp() if comp else None, "fill_value": 0}
        if fmt == 2:
            kw["filters"] = None
        arr = zarr.create_array(**kw)
        arr[...] = DATA
        (p / key).write_bytes(payload())
        return p

    return build


CHUNKS: list[Bad] = []
for _base, (_fmt, _comp, _key, _codec) in BASES.items():
    for _name, _payload in chunk_payloads(_base).items():
        _names = [(_key,)]
        # The codec that failed is named; a pure checksum codec is named only when the
        # checksum itself fails (a wrong decoded size is the array's complaint, not its).
        if _codec and _name != "empty" and (
                _codec != "crc32c" or _name in ("checksum-flipped", "data-flipped")):
            _names.append((_codec,))
        CHUNKS.append(Bad(f"chunk-{_base}-{_name}", chunk_case(_base, _payload),
                          (vc.CorruptDataError,), tuple(_names)))


# ============================================================================ shards
def shard_case(mutate, index_location="end", crc=False):
    """A (16,16) array in one shard of 4 inner (8,8) chunks; mutate(shard_bytes, n) -> bytes."""

    def build(d: Path) -> Path:
        p = d / "a.zarr"
        index_codecs = [zc.BytesCodec()] + ([zc.Crc32cCodec()] if crc else [])
        arr = zarr.create_array(
            store=str(p), shape=SHAPE, chunks=SHAPE, dtype="u2", fill_value=0,
            serializer=zc.ShardingCodec(chunk_shape=CHUNK, codecs=[zc.BytesCodec(),
                                                                   zc.ZstdCodec(level=1)],
                                        index_codecs=index_codecs, index_location=index_location),
            compressors=None, filters=None)
        arr[...] = DATA
        raw = (p / "c/0/0").read_bytes()
        (p / "c/0/0").write_bytes(mutate(raw, index_location))
        return p

    return build


def set_entry(i, offset=None, nbytes=None):
    """Rewrite inner chunk i's (offset, nbytes) in an index without a checksum."""

    def mutate(raw: bytes, loc: str) -> bytes:
        size = 16 * 4
        start = 0 if loc == "start" else len(raw) - size
        entries = np.frombuffer(raw[start:start + size], dtype="<u8").reshape(4, 2).copy()
        off = entries[i, 0] if offset is None else offset(len(raw), entries[i])
        nb = entries[i, 1] if nbytes is None else nbytes(len(raw), entries[i])
        entries[i] = (np.uint64(off), np.uint64(nb))
        return patch(raw, start, entries.astype("<u8").tobytes())

    return mutate


SHARDS: list[Bad] = [
    Bad("shard-empty-file", shard_case(lambda raw, loc: b""), (vc.CorruptDataError,),
        ("c/0/0",)),
    Bad("shard-shorter-than-index-end", shard_case(lambda raw, loc: raw[-20:]),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-shorter-than-index-start", shard_case(lambda raw, loc: raw[:20], "start"),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-offset-past-eof", shard_case(set_entry(0, offset=lambda n, e: n + 100)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-extends-past-eof", shard_case(set_entry(3, nbytes=lambda n, e: n)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-offset-near-2e64", shard_case(set_entry(0, offset=lambda n, e: U64_MAX - 1,
                                                       nbytes=lambda n, e: 10)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-nbytes-near-2e64", shard_case(set_entry(1, nbytes=lambda n, e: U64_MAX - 4)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-sum-wraps-to-zero", shard_case(set_entry(2, offset=lambda n, e: 2**63,
                                                        nbytes=lambda n, e: 2**63)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-half-empty-offset", shard_case(set_entry(0, offset=lambda n, e: U64_MAX)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-half-empty-nbytes", shard_case(set_entry(0, nbytes=lambda n, e: U64_MAX)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-zero-nbytes", shard_case(set_entry(0, nbytes=lambda n, e: 0)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-entry-inside-index-start", shard_case(set_entry(0, offset=lambda n, e: 0),
                                                     "start"),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-inner-chunk-one-byte-short", shard_case(set_entry(1, nbytes=lambda n, e: e[1] - 1)),
        (vc.CorruptDataError,), ("c/0/0",)),
    Bad("shard-index-crc-mismatch", shard_case(lambda raw, loc: flip(raw, len(raw) - 10),
                                               crc=True),
        (vc.CorruptDataError,), ("c/0/0", "crc32c")),
    Bad("shard-index-crc-mismatch-start", shard_case(lambda raw, loc: flip(raw, 3), "start",
                                                     crc=True),
        (vc.CorruptDataError,), ("c/0/0", "crc32c")),
]

CATALOG = {b.id: b for b in METADATA + CHUNKS + SHARDS}
assert len(CATALOG) == len(METADATA) + len(CHUNKS) + len(SHARDS), "duplicate ids"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, quiet_zarr):
    """Every bad case built once on disk: id -> path."""
    root = tmp_path_factory.mktemp("bad_input")
    paths = {}
    with quiet_zarr():
        for i, case in enumerate(CATALOG.values()):
            d = root / f"{i:03d}"
            d.mkdir()
            paths[case.id] = case.build(d)
    return paths


CHILD = """
import json, sys, traceback
{trigger}
cases = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "cases.json"))
for case_id, path in cases:
    print("START", case_id, flush=True)
    try:
        trigger(path)
        print("NOERROR", case_id, flush=True)
    except Exception as e:
        print("RAISED", case_id, type(e).__name__, flush=True)
print("DONE", flush=True)
"""


def test_catalog_never_crashes(catalog, run_isolated, tmp_path):
    """Runs every bad case in one child interpreter, which must finish: no segfault, abort or
    hang (run_isolated names the signal and shows the last START line, i.e. the case).
    Placed first so that a crash is reported here before the in-process tests run. Which
    exception each case raises is checked by test_bad_input_raises_named_error."""
    cases = [[cid, str(p)] for cid, p in catalog.items()]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    code = CHILD.format(trigger=inspect.getsource(trigger)).replace(
        '"cases.json"', repr(str(tmp_path / "cases.json")))
    out = run_isolated(code, timeout=240)
    lines = out.splitlines()
    assert lines[-1] == "DONE"
    finished = [ln for ln in lines if ln.startswith(("RAISED", "NOERROR"))]
    assert len(finished) == len(cases)


@pytest.mark.parametrize("case_id", list(CATALOG))
def test_bad_input_raises_named_error(case_id, catalog):
    case = CATALOG[case_id]
    with pytest.raises(vc.VoxcoreError) as ei:
        trigger(catalog[case_id])
    exc = ei.value
    assert isinstance(exc, case.raises), (
        f"expected {[c.__name__ for c in case.raises]}, got {type(exc).__name__}: {exc}"
    )
    check_message(exc, case.names)


def test_exception_hierarchy():
    for cls in (vc.InvalidMetadataError, vc.CorruptDataError, vc.LimitExceededError,
                vc.UnsafePathError):
        assert issubclass(cls, vc.VoxcoreError) and issubclass(cls, ValueError)
    assert issubclass(vc.UnsupportedError, vc.VoxcoreError)
    assert issubclass(vc.UnsupportedError, NotImplementedError)


def test_corrupt_chunk_does_not_poison_other_chunks(catalog, bit_equal):
    """A corrupt chunk fails only the reads that touch it."""
    img = vc.open(catalog["chunk-zstd-truncated-half"])
    bit_equal(img.read((slice(8, 16), slice(0, 16))), DATA[8:])
    bit_equal(img[0:8, 8:16], DATA[:8, 8:])
    with pytest.raises(vc.CorruptDataError):
        img[7, 7]
    # and the handle stays usable after the error
    bit_equal(img[8:, :], DATA[8:])


def test_deep_json_in_attributes_never_recursion_error(tmp_path):
    """Deeply nested attributes either open (and read correctly) or raise a VoxcoreError; never
    RecursionError or a crash."""
    p = tmp_path / "a.zarr"
    p.mkdir()
    body = json.dumps(v3_doc()).replace('"attributes": {}', '"attributes": {"x": ' + DEEP + "}")
    (p / "zarr.json").write_text(body)
    try:
        img = vc.open(p)
    except vc.VoxcoreError as e:
        assert isinstance(e, (IM, LIM))
        check_message(e, (("zarr.json", "depth", "nest"),))
    else:
        assert (img.read() == 0).all()


def test_huge_metadata_file_is_refused_before_reading(tmp_path, run_isolated):
    """An 8 GiB (sparse) zarr.json must be refused by size, not read into memory."""
    p = tmp_path / "a.zarr"
    p.mkdir()
    with open(p / "zarr.json", "wb") as f:
        f.write(b'{"zarr_format": 3, "attributes": {"x": "')
        f.truncate(8 << 30)
    out = run_isolated(f"""
        import voxcore as vc
        try:
            vc.open({str(p)!r})
        except vc.LimitExceededError as e:
            assert "zarr.json" in str(e), str(e)
            print("OK")
        """, timeout=60, limit_as=4 << 30)
    assert out.strip() == "OK"


def test_empty_shard_index_reads_fill(tmp_path, quiet_zarr, bit_equal):
    """An index whose entries are all the empty marker is valid: fill everywhere."""
    with quiet_zarr():
        p = shard_case(lambda raw, loc: raw[: len(raw) - 64] + b"\xff" * 64)(tmp_path)
    bit_equal(vc.open(p).read(), np.zeros(SHAPE, np.uint16))


# ============================================================================ keys and paths
def make_valid_array(path: Path, quiet_zarr):
    with quiet_zarr():
        a = zarr.create_array(store=str(path), shape=(4, 4), chunks=(2, 2), dtype="u1")
        a[...] = 1


@pytest.mark.parametrize("bad", ["../outside", "grp/../../outside", "..", "a\\b", "a\x00b",
                                 "./outside/../../outside"])
def test_store_path_escaping_the_root(tmp_path, bad, quiet_zarr):
    make_valid_array(tmp_path / "outside", quiet_zarr)
    root = tmp_path / "root"
    root.mkdir()
    (root / "grp").mkdir()
    with pytest.raises(vc.UnsafePathError) as ei:
        vc.open(zarr.storage.LocalStore(str(root)), path=bad)
    assert bad.split("\x00")[0] in str(ei.value) or "path" in str(ei.value).lower()


def ome_group(root: Path, dataset_path: str, version: str):
    root.mkdir()
    ms = {"axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
          "datasets": [{"path": dataset_path, "coordinateTransformations": [
              {"type": "scale", "scale": [1.0, 1.0]}]}]}
    if version == "0.4":
        ms["version"] = "0.4"
        (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (root / ".zattrs").write_text(json.dumps({"multiscales": [ms]}))
    else:
        (root / "zarr.json").write_text(json.dumps({
            "zarr_format": 3, "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "multiscales": [ms]}}}))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("kind", ["dotdot", "nested-dotdot", "absolute", "backslash"])
def test_ome_dataset_path_escaping_the_group(tmp_path, version, kind, quiet_zarr):
    """The escaping target is a valid array, so a reader without the check would open it."""
    target = tmp_path / "outside"
    make_valid_array(target, quiet_zarr)
    bad = {"dotdot": "../outside", "nested-dotdot": "0/../../outside",
           "absolute": str(target), "backslash": "..\\outside"}[kind]
    ome_group(tmp_path / "img.ome.zarr", bad, version)
    with pytest.raises(vc.UnsafePathError) as ei:
        vc.open(tmp_path / "img.ome.zarr")
    assert bad in str(ei.value) or "path" in str(ei.value).lower()


# ============================================================================ writes
def test_disk_full_mid_write_keeps_old_chunks(tmp_path, run_isolated):
    """RLIMIT_FSIZE makes the chunk write fail with EFBIG: the error is an OSError with errno,
    old chunks stay readable, and no temp file is left behind."""
    p = tmp_path / "a.zarr"
    out = run_isolated(f"""
        import errno, os, resource, signal
        import numpy as np
        import voxcore as vc
        p = {str(p)!r}
        img = vc.create_array(p, (128, 128), "u2", chunks=(64, 64), codec=None)
        img.write(np.ones((128, 128), np.uint16))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
        try:
            img.write(np.full((128, 128), 2, np.uint16))
        except OSError as e:
            assert e.errno == errno.EFBIG, (e.errno, str(e))
            assert e.filename is not None or "c/" in str(e), str(e)
        else:
            raise AssertionError("write past RLIMIT_FSIZE did not raise")
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        data = vc.open(p).read()
        for i in (0, 64):
            for j in (0, 64):
                block = data[i:i + 64, j:j + 64]
                assert (block == 1).all() or (block == 2).all(), (i, j, np.unique(block))
        files = sorted(os.path.relpath(os.path.join(d, f), p)
                       for d, _, fs in os.walk(p) for f in fs)
        assert files == ["c/0/0", "c/0/1", "c/1/0", "c/1/1", "zarr.json"], files
        print("OK")
        """)
    assert out.strip() == "OK"
