"""Zarr v2 / v3 array metadata documents as create_array writes them (the emitting half of
:mod:`voxcore.formats.zarr`, which parses them): codec presets, fill values, JSON bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..errors import UnsupportedError

CODEC_PRESETS = ("zstd", "blosc-lz4", "gzip", "lz4", "zlib", None)


def _compressor_v3(codec: str | None, level: int | None, itemsize: int) -> list[dict]:
    if codec is None:
        return []
    if codec == "zstd":
        return [{"name": "zstd", "configuration": {"level": 1 if level is None else level, "checksum": False}}]
    if codec == "blosc-lz4":
        return [{"name": "blosc", "configuration": {
            "cname": "lz4", "clevel": 5 if level is None else level, "shuffle": "shuffle",
            "typesize": itemsize, "blocksize": 0}}]
    if codec == "gzip":
        return [{"name": "gzip", "configuration": {"level": 1 if level is None else level}}]
    if codec == "lz4":
        return [{"name": "numcodecs.lz4", "configuration": {"acceleration": 1 if level is None else level}}]
    if codec == "zlib":
        return [{"name": "numcodecs.zlib", "configuration": {"level": 1 if level is None else level}}]
    raise ValueError(f"unknown codec preset {codec!r}; choose one of {CODEC_PRESETS}")


def _compressor_v2(codec: str | None, level: int | None) -> dict | None:
    if codec is None:
        return None
    if codec == "zstd":
        # no "checksum" key: zarr-python omits it when false and zarrs refuses it
        return {"id": "zstd", "level": 1 if level is None else level}
    if codec == "blosc-lz4":
        return {"id": "blosc", "cname": "lz4", "clevel": 5 if level is None else level,
                "shuffle": 1, "blocksize": 0}
    if codec == "gzip":
        return {"id": "gzip", "level": 1 if level is None else level}
    if codec == "lz4":
        return {"id": "lz4", "acceleration": 1 if level is None else level}
    if codec == "zlib":
        return {"id": "zlib", "level": 1 if level is None else level}
    raise ValueError(f"unknown codec preset {codec!r}; choose one of {CODEC_PRESETS}")


def fill_to_json(value: Any, dtype: np.dtype) -> Any:
    if dtype.kind == "b":
        return bool(value)
    if dtype.kind in "iu":
        return int(value)
    if dtype.kind == "f":
        v = float(value)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if dtype.kind == "c":
        c = complex(value)
        return [fill_to_json(c.real, np.dtype("f8")), fill_to_json(c.imag, np.dtype("f8"))]
    raise UnsupportedError(f"unsupported dtype {dtype}")


def metadata_v3(shape, dtype: np.dtype, chunks, shards, codec, level, fill_value, order, dims,
                attributes=None) -> dict:
    serializer = [{"name": "bytes", "configuration": {"endian": "little"}}] if dtype.itemsize > 1 \
        else [{"name": "bytes"}]
    compressor = _compressor_v3(codec, level, dtype.itemsize)
    transpose = []
    if order == "F" and len(shape) > 1:
        transpose = [{"name": "transpose", "configuration": {"order": list(range(len(shape)))[::-1]}}]
    if shards is not None:
        codecs = [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": list(chunks),
            "codecs": transpose + serializer + compressor,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}}]
        grid = list(shards)
    else:
        codecs = transpose + serializer + compressor
        grid = list(chunks)
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_to_json(fill_value, dtype),
        "codecs": codecs,
        "attributes": attributes or {},
        "storage_transformers": [],
    }
    if dims is not None:
        doc["dimension_names"] = list(dims)
    return doc


def metadata_v2(shape, dtype: np.dtype, chunks, codec, level, fill_value, order, separator) -> dict:
    return {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": dtype.newbyteorder("<").str if dtype.itemsize > 1 else dtype.str,
        "compressor": _compressor_v2(codec, level),
        "fill_value": fill_to_json(fill_value, dtype),
        "order": order,
        "filters": None,
        "dimension_separator": separator,
    }


def dumps(doc: dict) -> bytes:
    return json.dumps(doc, indent=2, allow_nan=False).encode()


