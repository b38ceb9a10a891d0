"""pytest plugin for zarr-python's test suite run by run.py: voxcore's pipeline in every array.

Registers voxcore.zarr.CodecPipeline with zarr-python (run.py selects it through the
ZARR_CODEC_PIPELINE__PATH environment variable), checks at the start that a new array gets it,
and counts the reads and writes that the core did and that went to the fallback pipeline (with
the dtypes and codecs of the fallback ones).
"""
from __future__ import annotations

import collections

import voxcore.zarr as vz
import zarr

COUNTS: collections.Counter = collections.Counter()
WHY: collections.Counter = collections.Counter()


def _describe(pipeline, spec) -> str:
    """What a fallback batch holds: dtype and codec names."""
    try:
        dtype = str(spec.dtype.to_native_dtype())
    except Exception:  # noqa: BLE001 - a data type without a numpy equivalent
        dtype = type(spec.dtype).__name__
    names = []
    for codec in pipeline.codecs:
        name = type(codec).__name__
        if name == "V2Codec":
            comp = codec.compressor.codec_id if codec.compressor is not None else None
            filters = [f.codec_id for f in codec.filters or ()]
            name = f"V2Codec(compressor={comp}, filters={filters})"
        elif name == "ShardingCodec":
            inner = "+".join(type(c).__name__ for c in codec.codecs)
            index = "+".join(type(c).__name__ for c in codec.index_codecs)
            name = f"ShardingCodec(codecs={inner}, index_codecs={index})"
        names.append(name)
    return f"{dtype} {'+'.join(names)}"


def _counting(name: str, method):
    async def wrapper(self, batch_info, value, drop_axes=()):
        batch = list(batch_info)
        if batch:
            core = self._batch_plan(batch) is not None
            COUNTS[f"{name} {'core' if core else 'fallback'}"] += 1
            if not core:
                WHY[_describe(self, batch[0][1])] += 1
        return await method(self, batch, value, drop_axes)

    return wrapper


def pytest_configure(config):
    assert zarr.config.get("codec_pipeline.path") == "voxcore.zarr.CodecPipeline", (
        "run this through tests/zarr_suite/run.py (ZARR_CODEC_PIPELINE__PATH is not set)")
    arr = zarr.zeros((2, 2))
    assert isinstance(arr._async_array.codec_pipeline, vz.CodecPipeline)
    vz.CodecPipeline.read = _counting("read", vz.CodecPipeline.read)
    vz.CodecPipeline.write = _counting("write", vz.CodecPipeline.write)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_sep("-", "voxcore.zarr.CodecPipeline calls")
    for key in sorted(COUNTS):
        terminalreporter.write_line(f"{key}: {COUNTS[key]}")
    terminalreporter.write_line("fallback batches by dtype and codecs (most frequent first):")
    for key, n in WHY.most_common():
        terminalreporter.write_line(f"  {n:6d}  {key}")
