"""Zarr v2 / v3 array metadata: parse it into a core ArraySpec, and write it.

Everything here is metadata; bytes are the core's job. Every field read from a file is untrusted:
wrong types, ranges and sizes raise InvalidMetadataError / LimitExceededError / UnsupportedError
with the field named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._core import ArraySpec, CodecId, CodecSpec
from ..errors import InvalidMetadataError, LimitExceededError, UnsupportedError

MAX_RANK = 32
MAX_METADATA_BYTES = 16 << 20
# The metadata documents a Zarr v2/v3 node may hold (v2 consolidated metadata included).
METADATA_FILES = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})

_V3_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}

_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BLOSC_CNAMES = {"lz4", "lz4hc", "blosclz", "zstd", "zlib", "snappy"}


@dataclass
class ZarrArrayMeta:
    """What voxcore needs from one array's metadata."""

    zarr_format: int
    shape: tuple[int, ...]
    chunks: tuple[int, ...]  # read/write unit: inner chunk shape for sharded arrays
    shards: tuple[int, ...] | None
    dtype: np.dtype  # native byte order
    fill_value: Any
    codecs: list  # list[CodecSpec]
    key_v2: bool
    separator: str
    dims: tuple[str | None, ...] | None
    attributes: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    def array_spec(self) -> ArraySpec:
        spec = ArraySpec()
        spec.shape = list(self.shape)
        spec.chunk_shape = list(self.shards if self.shards else self.chunks)
        spec.dtype = self.dtype.name
        spec.fill_value = np.array(self.fill_value, dtype=self.dtype).tobytes()
        spec.codecs = self.codecs
        spec.key_v2 = self.key_v2
        spec.key_separator = self.separator
        return spec


def _bad(what: str) -> InvalidMetadataError:
    return InvalidMetadataError(what)


def load_json(raw: bytes, key: str) -> dict:
    """Parse a metadata document with size and depth limits."""
    if len(raw) > MAX_METADATA_BYTES:
        raise LimitExceededError(
            f"metadata too large (key={key}, limit={MAX_METADATA_BYTES}, got={len(raw)} bytes)"
        )
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise _bad(f"metadata nested too deeply (key={key})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"metadata is not valid JSON (key={key}): {exc}") from None
    if not isinstance(doc, dict):
        raise _bad(f"metadata must be a JSON object (key={key}, got={type(doc).__name__})")
    return doc


def _int_list(value: Any, name: str, key: str, minimum: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise _bad(f"{name} must be a list of integers (key={key}, got={value!r:.80})")
    if len(value) > MAX_RANK:
        raise LimitExceededError(f"{name}: rank exceeds {MAX_RANK} (key={key}, got={len(value)})")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _bad(f"{name} must hold integers (key={key}, got={v!r:.40})")
        if v < minimum:
            raise _bad(f"{name} must be >= {minimum} (key={key}, got={list(value)})")
        if v >= 1 << 62:
            raise LimitExceededError(f"{name} too large (key={key}, got={v})")
        out.append(v)
    return tuple(out)


def _check_sizes(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, key: str) -> None:
    chunk_bytes = math.prod(chunks) * itemsize
    if chunk_bytes > 1 << 34:
        raise LimitExceededError(
            f"chunk too large (key={key}, chunks={list(chunks)}, got={chunk_bytes} bytes, limit=2**34)"
        )
    if math.prod(shape) * itemsize >= 1 << 62:
        raise LimitExceededError(f"array byte size overflows (key={key}, shape={list(shape)})")


def _parse_fill(value: Any, dtype: np.dtype, key: str) -> Any:
    """A fill value from JSON, checked to be representable in dtype."""
    kind = dtype.kind
    if value is None:
        return 0 if kind != "b" else False
    try:
        if kind == "b":
            if not isinstance(value, (bool, int)):
                raise ValueError(value)
            return bool(value)
        if kind in "iu":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            info = np.iinfo(dtype)
            if not info.min <= int(value) <= info.max:
                raise ValueError(value)
            return int(value)
        if kind == "f":
            return _float_fill(value, dtype)
        if kind == "c":
            if isinstance(value, (list, tuple)) and len(value) == 2:
                part = np.dtype(f"f{dtype.itemsize // 2}")
                return complex(_float_fill(value[0], part), _float_fill(value[1], part))
            return complex(_float_fill(value, np.dtype(f"f{dtype.itemsize // 2}")))
    except (ValueError, TypeError, OverflowError):
        pass
    raise _bad(f"fill_value not representable as {dtype.name} (key={key}, got={value!r:.60})")


def _float_fill(value: Any, dtype: np.dtype) -> float:
    specials = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if isinstance(value, str):
        if value in specials:
            return specials[value]
        if value.startswith("0x"):
            raw = int(value, 16).to_bytes(dtype.itemsize, "big")
            return float(np.frombuffer(raw, dtype=dtype.newbyteorder(">"))[0])
        raise ValueError(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(value)
    return float(value)


def _codec(id_, **kwargs) -> CodecSpec:
    spec = CodecSpec()
    spec.id = id_
    for name, value in kwargs.items():
        setattr(spec, name, value)
    return spec


def _config(codec: dict, key: str) -> dict:
    cfg = codec.get("configuration", {})
    if not isinstance(cfg, dict):
        raise _bad(f"codec configuration must be an object (key={key}, codec={codec.get('name')})")
    return cfg


def _int_field(cfg: dict, name: str, default: int, key: str, codec: str) -> int:
    value = cfg.get(name, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{codec}.{name} must be an integer (key={key}, got={value!r:.40})")
    return value


def _blosc(cfg: dict, key: str, codec: str, v3: bool, itemsize: int) -> CodecSpec:
    cname = cfg.get("cname", "lz4")
    if cname not in _BLOSC_CNAMES:
        raise _bad(f"{codec}: unknown cname (key={key}, got={cname!r:.40})")
    shuffle = cfg.get("shuffle", "shuffle" if v3 else 1)
    if isinstance(shuffle, str):
        if shuffle not in _BLOSC_SHUFFLE:
            raise _bad(f"{codec}.shuffle invalid (key={key}, got={shuffle!r:.40})")
        shuffle = _BLOSC_SHUFFLE[shuffle]
    elif isinstance(shuffle, bool) or not isinstance(shuffle, int) or shuffle not in (-1, 0, 1, 2):
        raise _bad(f"{codec}.shuffle invalid (key={key}, got={shuffle!r:.40})")
    if shuffle == -1:  # numcodecs AUTOSHUFFLE: bit shuffle for 1-byte items, else byte
        shuffle = 2 if itemsize == 1 else 1
    return _codec(
        CodecId.blosc,
        cname=cname,
        level=_int_field(cfg, "clevel", 5, key, codec),
        shuffle=shuffle,
        typesize=_int_field(cfg, "typesize", 0, key, codec),
        blocksize=_int_field(cfg, "blocksize", 0, key, codec),
    )


def _bytes_to_bytes_v3(name: str, cfg: dict, key: str, itemsize: int) -> CodecSpec | None:
    short = name.removeprefix("numcodecs.")
    if short == "zstd":
        return _codec(CodecId.zstd, level=_int_field(cfg, "level", 0, key, name),
                      checksum=bool(cfg.get("checksum", False)))
    if short == "gzip":
        return _codec(CodecId.gzip, level=_int_field(cfg, "level", 5, key, name))
    if short == "zlib":
        return _codec(CodecId.zlib, level=_int_field(cfg, "level", 1, key, name))
    if short == "lz4":
        return _codec(CodecId.lz4, level=_int_field(cfg, "acceleration", 1, key, name))
    if short == "crc32c":
        location = cfg.get("location", "end")
        if location != "end":  # numcodecs' CRC32C can put the checksum first; the core reads it last
            raise UnsupportedError(f"{name} with location={location!r:.20} is not supported (key={key})")
        return _codec(CodecId.crc32c)
    if short == "blosc":
        return _blosc(cfg, key, name, v3=not name.startswith("numcodecs."), itemsize=itemsize)
    return None


def _codecs_v3(codecs: Any, key: str, dtype: np.dtype, chunk_shape: tuple[int, ...]) -> list:
    if not isinstance(codecs, list) or not codecs:
        raise _bad(f"codecs must be a non-empty list (key={key})")
    out = []
    for codec in codecs:
        if isinstance(codec, str):
            codec = {"name": codec}
        if not isinstance(codec, dict) or not isinstance(codec.get("name"), str):
            raise _bad(f"each codec must be an object with a name (key={key}, got={codec!r:.60})")
        name = codec["name"]
        cfg = _config(codec, key)
        if name == "bytes":
            endian = cfg.get("endian", "little")
            if endian not in ("little", "big"):
                raise _bad(f"bytes.endian must be 'little' or 'big' (key={key}, got={endian!r:.20})")
            out.append(_codec(CodecId.bytes, big_endian=endian == "big"))
        elif name == "transpose":
            order = cfg.get("order")
            if order == "C":
                order = list(range(len(chunk_shape)))
            elif order == "F":
                order = list(range(len(chunk_shape)))[::-1]
            order = _int_list(order, "transpose.order", key, 0)
            if sorted(order) != list(range(len(chunk_shape))):
                raise _bad(f"transpose.order is not a permutation of the axes (key={key}, got={list(order)})")
            out.append(_codec(CodecId.transpose, order=list(order)))
        elif name == "sharding_indexed":
            inner = _int_list(cfg.get("chunk_shape"), "sharding_indexed.chunk_shape", key, 1)
            if len(inner) != len(chunk_shape):
                raise _bad(f"sharding_indexed.chunk_shape rank differs from the array (key={key})")
            location = cfg.get("index_location", "end")
            if location not in ("start", "end"):
                raise _bad(f"sharding_indexed.index_location invalid (key={key}, got={location!r:.20})")
            out.append(_codec(
                CodecId.sharding,
                inner_chunk_shape=list(inner),
                inner_codecs=_codecs_v3(cfg.get("codecs", [{"name": "bytes"}]), key, dtype, inner),
                index_codecs=_codecs_v3(
                    cfg.get("index_codecs", [{"name": "bytes"}, {"name": "crc32c"}]), key,
                    np.dtype("u8"), inner + (2,)),
                index_at_end=location == "end",
            ))
        else:
            spec = _bytes_to_bytes_v3(name, cfg, key, dtype.itemsize)
            if spec is None:
                raise UnsupportedError(f"unsupported codec (key={key}, codec={name!r:.60})")
            out.append(spec)
    return out


def _dtype_v3(value: Any, key: str) -> np.dtype:
    if isinstance(value, dict):
        raise UnsupportedError(f"unsupported data_type extension (key={key}, got={value!r:.60})")
    if not isinstance(value, str) or value not in _V3_DTYPES:
        if isinstance(value, str):
            raise UnsupportedError(f"unsupported data_type (key={key}, got={value!r:.40})")
        raise _bad(f"data_type must be a string (key={key}, got={value!r:.40})")
    return np.dtype(value)


def _dtype_v2(value: Any, key: str) -> np.dtype:
    if not isinstance(value, str):
        raise UnsupportedError(f"unsupported dtype (structured or invalid) (key={key}, got={value!r:.60})")
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise _bad(f"invalid dtype (key={key}, got={value!r:.40})") from None
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsupportedError(f"unsupported dtype (key={key}, got={value!r:.40})")
    return dtype


def parse_v3(doc: dict, key: str = "zarr.json") -> ZarrArrayMeta:
    if doc.get("zarr_format") != 3:
        raise _bad(f"zarr_format must be 3 (key={key}, got={doc.get('zarr_format')!r:.20})")
    if doc.get("node_type") != "array":
        raise _bad(f"node_type is not 'array' (key={key}, got={doc.get('node_type')!r:.20})")
    shape = _int_list(doc.get("shape"), "shape", key, 0)
    for required in ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs"):
        if required not in doc:
            raise _bad(f"{required} is missing (key={key})")
    grid = doc.get("chunk_grid")
    if not isinstance(grid, dict) or not isinstance(grid.get("name"), str):
        raise _bad(f"chunk_grid must be an object with a name (key={key}, got={grid!r:.60})")
    if grid.get("name") != "regular":
        raise UnsupportedError(f"only the regular chunk_grid is supported (key={key}, got={grid!r:.60})")
    outer = _int_list(_config(grid, key).get("chunk_shape"), "chunk_grid.chunk_shape", key, 1)
    if len(outer) != len(shape):
        raise _bad(f"chunk_shape rank differs from shape (key={key}, shape={list(shape)}, chunks={list(outer)})")
    dtype = _dtype_v3(doc.get("data_type"), key)
    _check_sizes(shape, outer, dtype.itemsize, key)
    enc = doc.get("chunk_key_encoding")
    if not isinstance(enc, dict) or not isinstance(enc.get("name"), str):
        raise _bad(f"chunk_key_encoding must be an object with a name (key={key}, got={enc!r:.60})")
    if enc.get("name") not in ("default", "v2"):
        raise UnsupportedError(f"unsupported chunk_key_encoding (key={key}, got={enc!r:.60})")
    key_v2 = enc["name"] == "v2"
    sep = _config(enc, key).get("separator", "." if key_v2 else "/")
    if sep not in ("/", "."):
        raise _bad(f"chunk_key_encoding separator must be '/' or '.' (key={key}, got={sep!r:.10})")
    if doc.get("storage_transformers"):
        raise UnsupportedError(f"storage_transformers are not supported (key={key})")
    codecs = _codecs_v3(doc.get("codecs"), key, dtype, outer)
    shards = None
    chunks = outer
    if codecs and any(c.id == CodecId.sharding for c in codecs):
        shards = outer
        chunks = tuple(next(c for c in codecs if c.id == CodecId.sharding).inner_chunk_shape)
    dims = doc.get("dimension_names")
    if dims is not None:
        if (not isinstance(dims, list) or len(dims) != len(shape)
                or not all(d is None or isinstance(d, str) for d in dims)):
            raise _bad(f"dimension_names must list one name or null per axis (key={key})")
        dims = tuple(dims)
    attrs = doc.get("attributes", {})
    if not isinstance(attrs, dict):
        raise _bad(f"attributes must be an object (key={key})")
    if doc.get("fill_value") is None:
        raise _bad(f"fill_value must not be null in Zarr v3 (key={key})")
    return ZarrArrayMeta(
        zarr_format=3, shape=shape, chunks=chunks, shards=shards, dtype=dtype,
        fill_value=_parse_fill(doc.get("fill_value"), dtype, key), codecs=codecs,
        key_v2=key_v2, separator=sep, dims=dims, attributes=attrs, raw=doc,
    )


def parse_v2(doc: dict, attrs: dict | None, key: str = ".zarray") -> ZarrArrayMeta:
    if doc.get("zarr_format") != 2:
        raise _bad(f"zarr_format must be 2 (key={key}, got={doc.get('zarr_format')!r:.20})")
    for required in ("shape", "chunks", "dtype"):
        if required not in doc:
            raise _bad(f"{required} is missing (key={key})")
    shape = _int_list(doc.get("shape"), "shape", key, 0)
    chunks = _int_list(doc.get("chunks"), "chunks", key, 1)
    if len(chunks) != len(shape):
        raise _bad(f"chunks rank differs from shape (key={key}, shape={list(shape)}, chunks={list(chunks)})")
    stored = _dtype_v2(doc.get("dtype"), key)
    _check_sizes(shape, chunks, stored.itemsize, key)
    order = doc.get("order", "C")
    if order not in ("C", "F"):
        raise _bad(f"order must be 'C' or 'F' (key={key}, got={order!r:.10})")
    sep = doc.get("dimension_separator", ".")
    if sep is None:
        sep = "."
    if sep not in ("/", "."):
        raise _bad(f"dimension_separator must be '/' or '.' (key={key}, got={sep!r:.10})")
    codecs = []
    if order == "F" and len(shape) > 1:
        codecs.append(_codec(CodecId.transpose, order=list(range(len(shape)))[::-1]))
    codecs.append(_codec(CodecId.bytes, big_endian=stored.byteorder == ">"))
    filters = doc.get("filters")
    if filters:
        raise UnsupportedError(f"v2 filters are not supported (key={key}, filters={filters!r:.80})")
    compressor = doc.get("compressor")
    if compressor is not None:
        if not isinstance(compressor, dict) or not isinstance(compressor.get("id"), str):
            raise _bad(f"compressor must be an object with an id (key={key})")
        cid = compressor["id"]
        if cid == "blosc":
            spec = _blosc(compressor, key, "blosc", v3=False, itemsize=stored.itemsize)
        else:
            spec = _bytes_to_bytes_v3(cid, compressor, key, stored.itemsize) if cid != "crc32c" else None
        if spec is None:
            raise UnsupportedError(f"unsupported compressor (key={key}, codec={cid!r:.40})")
        codecs.append(spec)
    dtype = stored.newbyteorder("=")
    return ZarrArrayMeta(
        zarr_format=2, shape=shape, chunks=chunks, shards=None, dtype=dtype,
        fill_value=_parse_fill(doc.get("fill_value"), dtype, key), codecs=codecs,
        key_v2=True, separator=sep, dims=None, attributes=attrs or {}, raw=doc,
    )


def metadata_keys(zarr_format: int, prefix: str = "") -> list[str]:
    """The keys read_metadata may read for a node at prefix of a hierarchy in this format."""
    p = f"{prefix}/" if prefix else ""
    return [p + "zarr.json"] + ([p + ".zarray", p + ".zgroup", p + ".zattrs"] if zarr_format == 2 else [])


def read_metadata(get: Callable[[str], bytes | None], prefix: str = "") -> ZarrArrayMeta | dict:
    """Reads the node at prefix: an array's ZarrArrayMeta, or a group's attributes dict
    (with "_zarr_format" set). Raises FileNotFoundError when there is no node."""
    p = f"{prefix}/" if prefix else ""
    raw = get(p + "zarr.json")
    if raw is not None:
        doc = load_json(raw, p + "zarr.json")
        if doc.get("node_type") == "group":
            attrs = doc.get("attributes", {})
            return {**(attrs if isinstance(attrs, dict) else {}), "_zarr_format": 3}
        return parse_v3(doc, p + "zarr.json")
    raw = get(p + ".zarray")
    if raw is not None:
        attrs_raw = get(p + ".zattrs")
        attrs = load_json(attrs_raw, p + ".zattrs") if attrs_raw is not None else {}
        return parse_v2(load_json(raw, p + ".zarray"), attrs, p + ".zarray")
    if get(p + ".zgroup") is not None:
        attrs_raw = get(p + ".zattrs")
        attrs = load_json(attrs_raw, p + ".zattrs") if attrs_raw is not None else {}
        return {**attrs, "_zarr_format": 2}
    raise FileNotFoundError(f"no Zarr array or group here (no zarr.json or .zarray; path={prefix or '.'})")


# ---- writing -----------------------------------------------------------------------------------
