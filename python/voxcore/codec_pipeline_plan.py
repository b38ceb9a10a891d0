"""How the codec pipeline hands zarr-python's chunks to the core: which codecs map onto core
specs, which selections are plain boxes, how requests are grouped, where the bytes live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.codecs._v2 import V2Codec
from zarr.core.config import config as _zarr_config

from ._core import CodecId
from .formats import zarr as _meta

# A request is decoded / encoded in groups of about this many decoded bytes, so that a huge read
# or write never holds every compressed chunk in memory at once.
GROUP_BYTES = 512 << 20


@dataclass(frozen=True)
class Plan:
    """How chunks of one spec go through the core."""

    chain: Any  # _core.ChunkBatch
    dtype: np.dtype  # the numpy dtype of the arrays zarr-python hands over (either byte order)
    work: np.dtype  # the same in native byte order: what the core sees (a view, never a copy)
    fill: Any  # the fill value as a numpy scalar of dtype
    skip_empty: bool | None  # None: follow write_empty_chunks; False: always write (v2 fill None)


def flip_bytes_codecs(specs: list) -> list:
    """The chain with every bytes codec's endianness flipped (inner codecs of shards too)."""
    for s in specs:
        if s.id == CodecId.bytes:
            s.big_endian = not s.big_endian
        elif s.id == CodecId.sharding:
            s.inner_codecs = flip_bytes_codecs(list(s.inner_codecs))
    return specs


def core_specs(codecs: tuple, shape: tuple[int, ...], dtype: np.dtype, order: str) -> list:
    """The core's CodecSpec list for codecs (zarr-python objects), via voxcore's metadata parser."""
    native = dtype.newbyteorder("=")
    if len(codecs) == 1 and isinstance(codecs[0], V2Codec):
        v2 = codecs[0]
        doc = {
            "zarr_format": 2, "shape": list(shape), "chunks": list(shape), "dtype": dtype.str,
            "order": order, "fill_value": None, "dimension_separator": ".",
            "compressor": None if v2.compressor is None else v2.compressor.get_config(),
            "filters": [f.get_config() for f in v2.filters] if v2.filters else None,
        }
        return _meta.parse_v2(doc, None, key="codecs").codecs
    docs = [as_json(c.to_dict()) for c in codecs]
    return _meta._codecs_v3(docs, "codecs", native, tuple(shape))  # UnsupportedError: fallback


def as_json(value: Any) -> Any:
    """A codec's to_dict() with tuples as lists (the metadata parser takes JSON)."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    return value


def selection(chunk_selection: Any, out_selection: Any, chunk_shape: tuple[int, ...]):
    """(region for the core, region shape, integer axes) of a chunk selection of slices and
    integers with an output selection of slices; None for anything else (fancy indexing).
    The region is None when it is the whole chunk, else (start, step) per chunk axis."""
    if type(chunk_selection) is not tuple or type(out_selection) is not tuple:
        return None
    if len(chunk_selection) != len(chunk_shape):
        return None
    for s in out_selection:
        if type(s) is not slice:
            return None
    starts, steps, counts, int_axes = [], [], [], []
    whole = True
    for axis, (sel, n) in enumerate(zip(chunk_selection, chunk_shape)):
        if type(sel) is slice:
            start, stop, step = sel.indices(n)
            count = len(range(start, stop, step))
            if step < 1:
                return None
        elif isinstance(sel, (int, np.integer)) and not isinstance(sel, bool):
            start, step, count = int(sel), 1, 1
            if not 0 <= start < n:
                return None
            int_axes.append(axis)
        else:
            return None
        whole = whole and start == 0 and count == n and (step == 1 or count == 1)
        starts.append(start)
        steps.append(step)
        counts.append(count)
    return (None if whole else (starts, steps)), tuple(counts), tuple(int_axes)


def key_of(byte_getter: Any) -> str:
    return str(getattr(byte_getter, "path", "chunk"))


def group_size(plan: Plan) -> int:
    return max(1, GROUP_BYTES // max(1, plan.chain.chunk_nbytes))


def concurrency() -> int | None:
    return _zarr_config.get("async.concurrency")


def same_fill(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    except (TypeError, ValueError):
        return False


def on_host(spec: Any) -> bool:
    """True when spec's buffers live in host memory (numpy)."""
    from zarr.core.buffer import cpu

    return issubclass(spec.prototype.nd_buffer, cpu.NDBuffer)
