"""A zarr-python codec pipeline backed by voxcore's C++ core.

>>> import zarr
>>> with zarr.config.set({"codec_pipeline.path": "voxcore.codec_pipeline.CodecPipeline"}):
...     arr = zarr.open_array("volume.zarr")   # the pipeline is chosen when an array is opened
>>> block = arr[0:64, 100:200]                  # decoded by voxcore

Each read or write of zarr-python hands the pipeline every chunk it touches; the pipeline makes
one GIL-free call into the core for all of them, which decodes every chunk in parallel straight
into its place in the output (a scratch chunk only when a chunk is needed in part), and encodes
written chunks in parallel, merging partial chunks with what is stored. Shards are split into
their inner chunks, and a read of part of a shard fetches only its index and the inner chunks it
needs. Chunk bytes come from the zarr store (fetched concurrently through it); for a
``zarr.storage.LocalStore`` the core reads and writes the files itself (atomic writes, no fsync,
like LocalStore).

Everything voxcore supports runs in the core: Zarr v2 and v3 arrays of bool, integer, float and
complex dtypes in either byte order, with the codecs bytes, transpose, sharding_indexed (index
codecs bytes + crc32c), blosc, zstd, gzip, zlib, crc32c and numcodecs.lz4/zlib/gzip/zstd/blosc/
crc32c, v2 compressors blosc/zstd/lz4/gzip/zlib and C or F order. Anything else (strings,
structured or datetime dtypes, v2 filters, other codecs, GPU buffers, sharding inside sharding)
is delegated, per array, to zarr-python's own BatchedCodecPipeline built from the same codecs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from zarr.abc.codec import CodecPipeline as _ZarrCodecPipeline
from zarr.core.codec_pipeline import BatchedCodecPipeline
from zarr.core.common import concurrent_map
from zarr.core.indexing import is_scalar
from zarr.registry import register_pipeline
from zarr.storage import LocalStore

from ._core import ChunkBatch, FileStore
from .codec_pipeline_plan import (
    Plan,
    concurrency,
    core_specs,
    flip_bytes_codecs,
    group_size,
    key_of,
    on_host,
    same_fill,
    selection,
)

__all__ = ["CodecPipeline"]

# A decode or encode of more than this many bytes leaves the event loop (asyncio.to_thread), so
# that other coroutines keep running; smaller ones run inline (the core releases the GIL anyway).
_OFFLOAD_BYTES = 16 << 20


async def _run(fn, nbytes: int):
    if nbytes > _OFFLOAD_BYTES:
        return await asyncio.to_thread(fn)
    return fn()


@dataclass(frozen=True)
class CodecPipeline(_ZarrCodecPipeline):
    """zarr-python's CodecPipeline interface over voxcore's core, with zarr-python's
    BatchedCodecPipeline (built from the same codecs) for what the core does not support.

    Enable it with ``zarr.config.set({"codec_pipeline.path": "voxcore.zarr.CodecPipeline"})``
    (importing ``voxcore.zarr`` registers it). The choice between the core and the fallback is
    made once per chunk layout (chunk shape, dtype, fill value, order) and cached.
    """

    codecs: tuple
    fallback: BatchedCodecPipeline
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_codecs(cls, codecs: Iterable[Any], *, batch_size: int | None = None) -> CodecPipeline:
        """A pipeline for codecs (zarr-python codec objects, in metadata order)."""
        codecs = tuple(codecs)
        return cls(codecs=codecs,
                   fallback=BatchedCodecPipeline.from_codecs(codecs, batch_size=batch_size))

    def evolve_from_array_spec(self, array_spec: Any) -> CodecPipeline:
        """The pipeline with codec parameters inferred from the array (e.g. blosc typesize)."""
        return type(self).from_codecs(c.evolve_from_array_spec(array_spec=array_spec)
                                      for c in self.codecs)

    def __getstate__(self) -> dict:
        return {"codecs": self.codecs, "fallback": self.fallback}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "codecs", state["codecs"])
        object.__setattr__(self, "fallback", state["fallback"])
        object.__setattr__(self, "_cache", {})

    def __iter__(self) -> Iterator[Any]:
        yield from self.codecs

    @property
    def supports_partial_decode(self) -> bool:
        return False

    @property
    def supports_partial_encode(self) -> bool:
        return False

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        self.fallback.validate(shape=shape, dtype=dtype, chunk_grid=chunk_grid)

    def compute_encoded_size(self, byte_length: int, array_spec: Any) -> int:
        return self.fallback.compute_encoded_size(byte_length, array_spec)

    # ---- which chunks the core handles -------------------------------------------------------
    def uses_core(self, chunk_spec: Any) -> bool:
        """True when chunks of chunk_spec (a zarr ArraySpec) are decoded and encoded by voxcore's
        core, False when they go to zarr-python's BatchedCodecPipeline."""
        return self._plan(chunk_spec) is not None

    def _plan(self, spec: Any) -> Plan | None:
        try:
            dtype = spec.dtype.to_native_dtype()
        except Exception:  # noqa: BLE001 - a data type zarr-python itself may not map
            return None
        if not isinstance(dtype, np.dtype) or dtype.fields is not None:
            return None
        if dtype.kind in "mM" and dtype.itemsize == 8:  # datetime64 / timedelta64: int64 bytes
            numeric = np.dtype(dtype.byteorder + "i8")
        elif dtype.kind in "biufc":
            numeric = dtype
        else:
            return None
        fill = spec.fill_value
        try:  # a 0-d array keeps dtype's byte order (a numpy scalar would be native)
            fill_array = np.array(dtype.type(0) if fill is None else fill, dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            return None
        fill_bytes = fill_array.tobytes()
        key = (spec.shape, dtype.str, fill_bytes, spec.config.order, fill is None)
        try:
            return self._cache[key]
        except KeyError:
            pass
        plan = None
        try:
            specs = core_specs(self.codecs, spec.shape, numeric, spec.config.order)
            work = numeric.newbyteorder("=")
            if not numeric.isnative:  # decode byte-swapped data straight into the array
                specs = flip_bytes_codecs(specs)
            # fill_bytes are in dtype's byte order: what the core writes into the work view
            chain = ChunkBatch(specs, list(spec.shape), work.name, fill_bytes)
            plan = Plan(chain=chain, dtype=dtype, work=work, fill=fill_array[()],
                         skip_empty=False if fill is None else None)
        except Exception:  # noqa: BLE001 - anything the core cannot take goes to the fallback
            plan = None
        self._cache[key] = plan
        return plan

    def _batch_plan(self, batch: list) -> Plan | None:
        """The plan shared by every chunk of a batch (None: some chunk needs the fallback)."""
        first = batch[0][1]
        plan = self._plan(first)
        if plan is None:
            return None
        for item in batch:
            spec = item[1]
            if spec is first or (spec.dtype is first.dtype and spec.config is first.config
                                 and spec.fill_value is first.fill_value
                                 and spec.shape == first.shape):
                continue
            if (spec.shape != first.shape or spec.dtype != first.dtype
                    or spec.config != first.config
                    or not same_fill(spec.fill_value, first.fill_value)):
                return None
        return plan

    def _file_store(self, byte_getter: Any, writing: bool) -> Any:
        """A core FileStore for a plain LocalStore (the core reads/writes its files itself)."""
        store = getattr(byte_getter, "store", None)
        if type(store) is not LocalStore or (writing and store.read_only):
            return None
        if not isinstance(getattr(byte_getter, "path", None), str):
            return None
        root = str(store.root)
        found = self._cache.get(("file-store", root))
        if found is None:
            # zarr-python's LocalStore follows every symlink: so does its drop-in pipeline.
            found = FileStore(root, durable=False, allow_external_links=True)
            self._cache[("file-store", root)] = found
        return found

    # ---- batch decode / encode (CodecPipeline.decode / encode) -------------------------------
    async def decode(self, chunk_bytes_and_specs: Iterable[tuple[Any, Any]]) -> list:
        """Decodes encoded chunks (Buffer or None) into NDBuffers (None stays None)."""
        batch = list(chunk_bytes_and_specs)
        if not batch:
            return []
        plan = self._batch_plan([(None, spec) for _, spec in batch])
        if plan is None or not all(on_host(spec) for _, spec in batch):
            return list(await self.fallback.decode(batch))
        todo = [(i, b, spec) for i, (b, spec) in enumerate(batch) if b is not None]
        arrays = [np.empty(spec.shape, dtype=plan.work, order=spec.config.order)
                  for _, _, spec in todo]
        nbytes = plan.chain.chunk_nbytes * len(todo)
        await _run(lambda: plan.chain.decode_batch(
            ["chunk"] * len(todo), [b.as_array_like() for _, b, _ in todo], arrays,
            [None] * len(todo)), nbytes)
        out: list = [None] * len(batch)
        for (i, _, spec), a in zip(todo, arrays):
            out[i] = spec.prototype.nd_buffer.from_ndarray_like(a.view(plan.dtype))
        return out

    async def encode(self, chunk_arrays_and_specs: Iterable[tuple[Any, Any]]) -> list:
        """Encodes chunk NDBuffers into Buffers (None stays None)."""
        batch = list(chunk_arrays_and_specs)
        if not batch:
            return []
        plan = self._batch_plan([(None, spec) for _, spec in batch])
        todo = [(i, a.as_ndarray_like(), spec) for i, (a, spec) in enumerate(batch)
                if a is not None]
        if plan is None or not all(type(a) is np.ndarray and a.shape == spec.shape
                                   and a.dtype == plan.dtype for _, a, spec in todo):
            return list(await self.fallback.encode(batch))
        nbytes = plan.chain.chunk_nbytes * len(todo)
        encoded = await _run(lambda: plan.chain.encode_batch(
            ["chunk"] * len(todo), [a.view(plan.work) for _, a, _ in todo], [None] * len(todo)),
            nbytes)
        out: list = [None] * len(batch)
        for (i, _, spec), e in zip(todo, encoded):
            out[i] = spec.prototype.buffer.from_array_like(e)
        return out

    # ---- read --------------------------------------------------------------------------------
    async def read(self, batch_info: Iterable[tuple], out: Any,
                   drop_axes: tuple[int, ...] = ()) -> None:
        """Fetches, decodes and places every chunk of batch_info into out (zarr-python's read)."""
        batch = list(batch_info)
        if not batch:
            return
        plan = self._batch_plan(batch)
        out_np = out.as_ndarray_like()
        if plan is None or type(out_np) is not np.ndarray or out_np.dtype != plan.dtype:
            await self.fallback.read(batch, out, drop_axes)
            return
        store = self._file_store(batch[0][0], writing=False)
        chunk_shape = batch[0][1].shape
        sels = [None if drop_axes else selection(csel, osel, chunk_shape)
                for _, _, csel, osel, _ in batch]
        if store is None and plan.chain.sharded:
            # Parts of shards from a zarr store: the fallback's partial reads fetch only the index
            # and the inner chunks needed (and decode those through this pipeline again).
            part = [k for k, s in enumerate(sels) if s is None or s[0] is not None]
            if part:
                await self.fallback.read([batch[k] for k in part], out, drop_axes)
                keep = set(range(len(batch))).difference(part)
                batch = [batch[k] for k in sorted(keep)]
                sels = [sels[k] for k in sorted(keep)]
                if not batch:
                    return
        work = out_np if plan.work == plan.dtype else out_np.view(plan.work)
        dests, regions, general = [], [], []
        for k, ((_, _, csel, osel, _), sel) in enumerate(zip(batch, sels)):
            dest = None
            if sel is not None:
                region, counts, int_axes = sel
                dest = work[osel] if osel else work[...]  # a 0-d view, not a scalar
                if int_axes:
                    dest = np.expand_dims(dest, int_axes)
                if dest.shape != counts:
                    dest = None
            if dest is None:  # fancy indexing: decode the whole chunk, numpy does the rest
                dest, region = np.empty(chunk_shape, dtype=plan.work), None
                general.append((k, dest, csel, osel))
            dests.append(dest)
            regions.append(region)
        keys = [key_of(item[0]) for item in batch]
        step = group_size(plan)
        for lo in range(0, len(batch), step):
            hi = lo + step
            if store is not None:
                sources = None
            else:
                got = await concurrent_map(
                    [(item[0], item[1].prototype) for item in batch[lo:hi]],
                    lambda getter, prototype: getter.get(prototype=prototype), concurrency())
                sources = [None if b is None else b.as_array_like() for b in got]
            await _run(functools.partial(plan.chain.decode_batch, keys[lo:hi], sources,
                                         dests[lo:hi], regions[lo:hi], store),
                       plan.chain.chunk_nbytes * (hi - lo))
        for _, chunk, csel, osel in general:
            value = chunk.view(plan.dtype)[csel]
            if drop_axes:
                value = value.squeeze(axis=drop_axes)
            out_np[osel] = value

    # ---- write -------------------------------------------------------------------------------
    async def write(self, batch_info: Iterable[tuple], value: Any,
                    drop_axes: tuple[int, ...] = ()) -> None:
        """Merges value into the chunks of batch_info, encodes and stores them (zarr-python's
        write); with write_empty_chunks False a chunk equal to the fill value is deleted."""
        batch = list(batch_info)
        if not batch:
            return
        plan = self._batch_plan(batch)
        value_np = value.as_ndarray_like()
        if plan is None or type(value_np) is not np.ndarray or value_np.dtype != plan.dtype:
            await self.fallback.write(batch, value, drop_axes)
            return
        store = self._file_store(batch[0][0], writing=True)
        first = batch[0][1]
        chunk_shape = first.shape
        write_empty = bool(first.config.write_empty_chunks) or plan.skip_empty is False
        work_value = value_np if plan.work == plan.dtype else value_np.view(plan.work)
        keys, values, regions, existing, general = [], [], [], [], []
        for k, (setter, _, csel, osel, complete) in enumerate(batch):
            keys.append(key_of(setter))
            src, region = None, None
            sel = None if drop_axes else selection(csel, osel, chunk_shape)
            if sel is not None:
                region, counts, int_axes = sel
                sel_shape = tuple(c for a, c in enumerate(counts) if a not in int_axes)
                try:
                    part = work_value if work_value.ndim == 0 else work_value[osel]
                    src = np.broadcast_to(part, sel_shape)
                except (ValueError, IndexError):
                    src = None
                if src is not None and int_axes:
                    src = np.expand_dims(src, int_axes)
            if src is None:  # fancy indexing: merge in numpy below, then encode the whole chunk
                general.append((k, csel, osel, complete))
                region = None
            values.append(src)
            regions.append(region)
            needs_old = region is not None and not complete
            existing.append(True if needs_old else None)
        if general:
            await self._merge_general(plan, batch, general, value_np, drop_axes, store,
                                      values, existing)
        if store is None:
            old = [i for i, e in enumerate(existing) if e is True]
            if old:
                got = await concurrent_map(
                    [(batch[i][0], batch[i][1].prototype) for i in old],
                    lambda setter, prototype: setter.get(prototype=prototype), concurrency())
                for i, b in zip(old, got):
                    existing[i] = None if b is None else b.as_array_like()
        step = group_size(plan)
        result = []
        for lo in range(0, len(batch), step):
            hi = lo + step
            result += await _run(functools.partial(
                plan.chain.encode_batch, keys[lo:hi], values[lo:hi], regions[lo:hi],
                existing[lo:hi], store, write_empty), plan.chain.chunk_nbytes * (hi - lo))
        if store is not None:
            return

        async def put(setter: Any, spec: Any, encoded: Any) -> None:
            if encoded is None:
                await setter.delete()
            else:
                await setter.set(spec.prototype.buffer.from_array_like(encoded))

        await concurrent_map([(item[0], item[1], e) for item, e in zip(batch, result)], put,
                             concurrency())

    async def _merge_general(self, plan: Plan, batch: list, general: list, value_np: np.ndarray,
                             drop_axes: tuple[int, ...], store: Any, values: list,
                             existing: list) -> None:
        """Whole new chunks for selections the core cannot express (as BatchedCodecPipeline
        merges them): the stored chunk (decoded by the core) with the selected values set."""
        chunk_shape = batch[0][1].shape
        need = [(k, csel, osel) for k, csel, osel, complete in general if not complete]
        chunks = {k: None for k, _, _, _ in general}
        if need:
            arrays = [np.empty(chunk_shape, dtype=plan.work) for _ in need]
            keys = [key_of(batch[k][0]) for k, _, _ in need]
            if store is not None:
                sources = None
            else:
                got = await concurrent_map(
                    [(batch[k][0], batch[k][1].prototype) for k, _, _ in need],
                    lambda setter, prototype: setter.get(prototype=prototype), concurrency())
                sources = [None if b is None else b.as_array_like() for b in got]
            plan.chain.decode_batch(keys, sources, arrays, [None] * len(need), store)
            for (k, _, _), a in zip(need, arrays):
                chunks[k] = a.view(plan.dtype)
        for k, csel, osel, _ in general:
            chunk = chunks[k]
            if chunk is None:
                chunk = np.full(chunk_shape, plan.fill, dtype=plan.dtype)
            if csel == () or is_scalar(value_np, plan.dtype):
                chunk_value = value_np
            else:
                chunk_value = value_np[osel]
                if drop_axes:
                    chunk_value = chunk_value[tuple(None if i in drop_axes else slice(None)
                                                    for i in range(len(chunk_shape)))]
            chunk[csel] = chunk_value
            values[k] = chunk.view(plan.work)
            existing[k] = None


register_pipeline(CodecPipeline)
