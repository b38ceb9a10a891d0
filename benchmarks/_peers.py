"""How each tool is driven, one adapter per peer, written after the shared peers harness (../shared/peers/peers.py).

Every adapter has the same four operations:

- ``read_whole(path, case)``: open the array and read all of it into a new numpy array (the
  open is part of the timed work, as in the peers harness);
- ``open(path, case, cache=False)`` then ``read_box(handle, box)``: one handle, many boxes;
  ``cache=True`` gives the handle a fresh 1 GiB decoded-chunk cache (None if unsupported);
- ``write(path, case, vol)``: create the array (same codec and grid) and write all of it.

Peers run with their default threading, untuned. ``module`` names what must import for the
peer to run; the benchmarks skip a peer whose module is missing.
"""
from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path

import numpy as np
from _data import CHUNK, Case

CACHE_BYTES = 1 << 30


@contextlib.contextmanager
def quiet():
    """Silence the peers' own warnings (zarr-python warns about some numcodecs codecs, zarrs
    about pipeline fallbacks). Used around peer calls only, never around voxcore."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fresh_dir(path) -> Path:
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------------ voxcore
class Voxcore:
    name = "voxcore"
    module = "voxcore"

    def __init__(self, *, durable: bool = False, into: np.ndarray | None = None):
        self.durable = durable
        self.into = into  # whole reads go into this caller buffer when given

    def read_whole(self, path, case: Case):
        import voxcore as vc
        img = vc.open(path)
        return img.read() if self.into is None else img.read(out=self.into)

    def open(self, path, case: Case, cache: bool = False):
        import voxcore as vc
        return vc.open(path, cache_bytes=CACHE_BYTES if cache else None)

    @staticmethod
    def read_box(img, box):
        return img[box]

    def write(self, path, case: Case, vol):
        import voxcore as vc
        img = vc.create_array(
            path, vol.shape, vol.dtype, chunks=CHUNK, shards=case.shards(vol.shape[0]),
            codec="zstd" if case.codec == "zstd" else "blosc-lz4", zarr_format=case.fmt,
            overwrite=True, durable=self.durable)
        img.write(vol)


# -------------------------------------------------------------------------------- zarr-python
def zarr_create(path, case: Case, vol):
    """The peers harness's zarr-python array (also used to write the stores that are read)."""
    import numcodecs
    import zarr
    from zarr.codecs import ZstdCodec

    kw = dict(store=str(path), shape=vol.shape, chunks=CHUNK, dtype="uint16", fill_value=0,
              overwrite=True)
    if case.fmt == 2:
        return zarr.create_array(
            zarr_format=2, filters=None,
            compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
            **kw)
    return zarr.create_array(zarr_format=3, shards=case.shards(vol.shape[0]),
                             compressors=ZstdCodec(level=1, checksum=False), **kw)


class ZarrPython:
    """zarr-python 3 with its default codec pipeline."""

    name = "zarr-python"
    module = "zarr"
    pipeline = "BatchedCodecPipeline"

    def context(self):
        return contextlib.nullcontext()

    def read_whole(self, path, case):
        import zarr
        with self.context():
            return zarr.open_array(str(path), mode="r")[...]

    def open(self, path, case, cache=False):
        if cache:
            return None
        import zarr
        with self.context():
            a = zarr.open_array(str(path), mode="r")
        got = type(a._async_array.codec_pipeline).__name__
        assert got == self.pipeline, f"{self.name}: codec pipeline is {got}, not {self.pipeline}"
        return a

    @staticmethod
    def read_box(a, box):
        return a[box]

    def write(self, path, case, vol):
        with self.context():
            zarr_create(path, case, vol)[...] = vol


class ZarrPythonZarrs(ZarrPython):
    """zarr-python with the zarrs (Rust) codec pipeline, enabled for this peer only."""

    name = "zarr-python+zarrs"
    module = "zarrs"
    pipeline = "ZarrsCodecPipeline"

    def context(self):
        import zarr
        return zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"})


# -------------------------------------------------------------------------------- tensorstore
def _ts_spec_open(path, case):
    return {"driver": "zarr3" if case.fmt == 3 else "zarr",
            "kvstore": {"driver": "file", "path": str(path)}}


def _ts_spec_create(path, case, shape):
    kv = {"driver": "file", "path": str(path)}
    if case.fmt == 2:
        return {"driver": "zarr", "kvstore": kv, "key_encoding": ".", "metadata": {
            "shape": list(shape), "chunks": list(CHUNK), "dtype": "<u2", "order": "C",
            "fill_value": 0, "filters": None,
            "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
                           "blocksize": 0}}}
    inner = [{"name": "bytes", "configuration": {"endian": "little"}},
             {"name": "zstd", "configuration": {"level": 1, "checksum": False}}]
    shards = case.shards(shape[0])
    if shards:
        grid = list(shards)
        codecs = [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": list(CHUNK), "codecs": inner,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "crc32c"}],
            "index_location": "end"}}]
    else:
        grid, codecs = list(CHUNK), inner
    return {"driver": "zarr3", "kvstore": kv, "metadata": {
        "shape": list(shape),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
        "chunk_key_encoding": {"name": "default"},
        "data_type": "uint16", "fill_value": 0, "codecs": codecs}}


class Tensorstore:
    """file_io_sync: tensorstore's context resource (None: its default, which is true: every
    written file is fsync'd)."""

    name = "tensorstore"
    module = "tensorstore"

    def __init__(self, file_io_sync: bool | None = None):
        self.file_io_sync = file_io_sync

    def read_whole(self, path, case):
        import tensorstore as ts
        return ts.open(_ts_spec_open(path, case), read=True).result().read().result()

    def open(self, path, case, cache=False):
        import tensorstore as ts
        # A new Context per handle: the cache_pool starts cold every time.
        ctx = ts.Context({"cache_pool": {"total_bytes_limit": CACHE_BYTES}}) if cache else None
        return ts.open(_ts_spec_open(path, case), read=True, context=ctx).result()

    @staticmethod
    def read_box(a, box):
        return a[box].read().result()

    def write(self, path, case, vol):
        import tensorstore as ts
        ctx = None if self.file_io_sync is None else ts.Context({"file_io_sync": self.file_io_sync})
        a = ts.open(_ts_spec_create(path, case, vol.shape), create=True,
                    delete_existing=True, context=ctx).result()
        a.write(vol).result()


# ----------------------------------------------------------------------------------- zarrista
class Zarrista:
    """zarrista (Rust zarrs bindings). It reads v2 and v3; its ArrayBuilder creates v3 only."""

    name = "zarrista"
    module = "zarrista"

    @staticmethod
    def _open(path):
        import zarrista
        from zarrista.store import FilesystemStore
        return zarrista.Array.open(FilesystemStore(str(path)), "/")

    def read_whole(self, path, case):
        return np.asarray(self._open(path)[...])

    def open(self, path, case, cache=False):
        return None if cache else self._open(path)

    @staticmethod
    def read_box(a, box):
        return np.asarray(a[box])

    def write(self, path, case, vol):
        from zarrista import ArrayBuilder, ChunkGrid, DataType, FillValue, codec
        from zarrista.store import FilesystemStore

        if case.fmt != 3:
            raise NotImplementedError("zarrista's ArrayBuilder creates Zarr v3 arrays only")
        path = _fresh_dir(path)
        shards = case.shards(vol.shape[0])
        grid = list(shards) if shards else list(CHUNK)
        b = ArrayBuilder(ChunkGrid.regular(list(vol.shape), chunk_shape=grid),
                         DataType.from_string("uint16"), FillValue(b"\x00\x00"))
        b = b.compressors([codec.zstd(1, checksum=False)])
        if shards:
            b = b.subchunk_shape(list(CHUNK))
        b.create(FilesystemStore(str(path)), "/").store_chunks(..., vol)


# ------------------------------------------------------------------------- oracle read-back
def zarr_layout(path) -> dict:
    """What zarr-python (the oracle) sees at path: format, chunks, shards and codec."""
    import zarr
    with quiet():
        a = zarr.open_array(str(path), mode="r")
    (comp,) = a.compressors
    if a.metadata.zarr_format == 2:
        cfg = comp.get_config()
        codec = f"blosc-{cfg['cname']}-clevel{cfg['clevel']}-shuffle{cfg['shuffle']}"
    else:
        codec = f"{type(comp).__name__}-level{comp.level}-checksum{comp.checksum}"
    return dict(fmt=a.metadata.zarr_format, shape=a.shape, dtype=str(a.dtype), chunks=a.chunks,
                shards=a.shards, filters=len(a.filters), codec=codec)


def expected_layout(case: Case, n: int) -> dict:
    codec = ("blosc-lz4-clevel5-shuffle1" if case.codec == "blosc"
             else "ZstdCodec-level1-checksumFalse")
    return dict(fmt=case.fmt, shape=(n,) * 3, dtype="uint16", chunks=CHUNK,
                shards=case.shards(n), filters=0, codec=codec)


def zarr_read_back(path) -> np.ndarray:
    import zarr
    with quiet():
        return zarr.open_array(str(path), mode="r")[...]
