"""How each tool builds and writes the OME-Zarr pyramid of bench_pyramid.py, one writer each.

Every writer takes the volume and a fresh path and leaves there an OME-Zarr 0.5 group (Zarr v3)
with 4 levels: factors 1, 2, 4 and 8 on z, y and x; 64^3 chunks (a smaller level may clip
them to its shape); zstd level 1 without checksum. The downsampling is the tool's own, with its
default threading. Written after the pyramid section of the shared peers harness
(../shared/peers/peers.py).

``kind`` is what the output is checked against: "mean" (2x2x2 window means; level 3 within
``tol`` of the rounded exact 8x8x8 mean: 1 for tools that round each level, 3 for those that
truncate, as three truncations can lose up to 3) or "gaussian" (a smoothing downsample: close
to the mean, not equal to it). ``family`` groups rows for the targets in report.py.
``modules`` must import for the writer to run; ``slow`` writers get fewer rounds.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACTORS = (2, 4, 8)
DIMS = ("z", "y", "x")
CHUNK = 64


@dataclass(frozen=True)
class PyramidWriter:
    label: str
    family: str  # voxcore | ngff-zarr | ome-zarr-py | composite
    kind: str  # mean | gaussian
    write: Callable[[Path, np.ndarray], None]
    modules: tuple[str, ...] = ()
    tol: int = 1  # mean kinds: max |level 3 - round(exact 8^3 mean)|
    slow: bool = False


# ---------------------------------------------------------------------------- kernels
def np_sum8(a):
    """2x2x2 mean as a strided uint32 sum shifted right by 3 (truncates)."""
    s = a[0::2, 0::2, 0::2].astype(np.uint32)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                if dz or dy or dx:
                    s += a[dz::2, dy::2, dx::2]
    return (s >> 3).astype(a.dtype)


def ts_mean(a):
    import tensorstore as ts
    return ts.downsample(ts.array(a), [2, 2, 2], method="mean").read().result()


def cascade(vol, down) -> list[np.ndarray]:
    """Levels 0..3, each level made from the one before."""
    levels = [vol]
    for _ in FACTORS:
        levels.append(down(levels[-1]))
    return levels


# ---------------------------------------------------------------------------- voxcore
def voxcore_writer(method: str, durable: bool, sync: bool = False) -> Callable:
    """build_pyramid + save. The peers do not fsync, so the like-for-like rows pass
    durable=False; save's default, durable=True (an fsync per file written), is its own row.
    sync: durable=False followed by os.sync(), the floor of putting the same bytes on disk."""
    def write(path, vol):
        import os
        import voxcore as vc
        pyr = vc.build_pyramid(vc.from_array(vol, dims=DIMS), factors=list(FACTORS),
                               method=method)
        vc.save(pyr, path, version="0.5", chunks=CHUNK, codec="zstd", overwrite=True,
                durable=durable)
        if sync:
            os.sync()
    return write


# ---------------------------------------------------------------------------- ngff-zarr
def ngff_zarr_writer(method: str | None, use_tensorstore: bool = False) -> Callable:
    def write(path, vol):
        import ngff_zarr as nz
        from zarr.codecs import ZstdCodec
        img = nz.to_ngff_image(vol, dims=list(DIMS))
        kw = {} if method is None else {"method": nz.Methods(method)}
        ms = nz.to_multiscales(img, scale_factors=list(FACTORS), chunks=CHUNK, **kw)
        nz.to_ngff_zarr(str(path), ms, version="0.5", use_tensorstore=use_tensorstore,
                        compressors=[ZstdCodec(level=1, checksum=False)])
    return write


# ---------------------------------------------------------------------------- ome-zarr-py
def ome_zarr_writer(method: str | None) -> Callable:
    def write(path, vol):
        from ome_zarr.format import FormatV05
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image
        from zarr.codecs import ZstdCodec
        kw = {} if method is None else {"method": Methods(method)}
        # dicts: an int factor would downsample y and x only
        write_image(vol, group=str(path), scale_factors=[{d: f for d in DIMS} for f in FACTORS],
                    axes="".join(DIMS), fmt=FormatV05(),
                    storage_options={"chunks": (CHUNK,) * 3,
                                     "compressors": ZstdCodec(level=1, checksum=False)},
                    **kw)
    return write


# ---------------------------------------------------------------------------- composites
def _write_group(path: Path, n_levels: int):
    """The OME-Zarr 0.5 group metadata a composite writes by hand (window-mean translations)."""
    datasets = [{"path": str(i), "coordinateTransformations": [
        {"type": "scale", "scale": [float(2 ** i)] * 3},
        {"type": "translation", "translation": [(2 ** i - 1) / 2] * 3}]}
        for i in range(n_levels)]
    attrs = {"ome": {"version": "0.5", "multiscales": [{
        "axes": [{"name": d, "type": "space"} for d in DIMS], "datasets": datasets}]}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "zarr.json").write_text(json.dumps(
        {"zarr_format": 3, "node_type": "group", "attributes": attrs}))


def _chunks(shape) -> list[int]:
    return [min(CHUNK, s) for s in shape]


def _ts_write(path: Path, a: np.ndarray):
    import tensorstore as ts
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}, "metadata": {
        "shape": list(a.shape), "data_type": "uint16", "fill_value": 0,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": _chunks(a.shape)}},
        "chunk_key_encoding": {"name": "default"}, "dimension_names": list(DIMS),
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "zstd", "configuration": {"level": 1, "checksum": False}}]}}
    ts.open(spec, create=True, delete_existing=True).result().write(a).result()


def _zarrista_write(path: Path, a: np.ndarray):
    from zarrista import ArrayBuilder, ChunkGrid, DataType, FillValue, codec
    from zarrista.store import FilesystemStore
    path.mkdir(parents=True, exist_ok=True)
    b = ArrayBuilder(ChunkGrid.regular(list(a.shape), chunk_shape=_chunks(a.shape)),
                     DataType.from_string("uint16"), FillValue(b"\x00\x00"))
    b = b.compressors([codec.zstd(1, checksum=False)]).dimension_names(list(DIMS))
    # level shapes are multiples of their (clipped) chunks: whole chunks, no read-modify-write
    b.create(FilesystemStore(str(path)), "/").store_chunks(..., np.ascontiguousarray(a))


def composite_writer(down: Callable, write_level: Callable) -> Callable:
    def write(path, vol):
        path = Path(path)
        levels = cascade(vol, down)
        _write_group(path, len(levels))
        for i, a in enumerate(levels):
            write_level(path / str(i), a)
    return write


# ---------------------------------------------------------------------------- the contenders
NGFF = ("ngff_zarr", "zarrista")  # ngff-zarr >= 0.50 converts and writes through zarrista
WRITERS = [
    PyramidWriter("voxcore mean", "voxcore", "mean", voxcore_writer("mean", durable=False)),
    PyramidWriter("voxcore mean durable=True", "voxcore", "mean",
                  voxcore_writer("mean", durable=True)),
    PyramidWriter("floor: voxcore mean durable=False + os.sync", "voxcore", "mean",
                  voxcore_writer("mean", durable=False, sync=True)),
    PyramidWriter("voxcore gaussian", "voxcore", "gaussian",
                  voxcore_writer("gaussian", durable=False)),
    PyramidWriter("ngff-zarr default (itkwasm_gaussian)", "ngff-zarr", "gaussian",
                  ngff_zarr_writer(None), NGFF + ("itkwasm_downsample",), slow=True),
    PyramidWriter("ngff-zarr itkwasm_bin_shrink", "ngff-zarr", "mean",
                  ngff_zarr_writer("itkwasm_bin_shrink"), NGFF + ("itkwasm_downsample",),
                  slow=True),
    PyramidWriter("ngff-zarr itk_bin_shrink", "ngff-zarr", "mean",
                  ngff_zarr_writer("itk_bin_shrink"), NGFF + ("itk",), slow=True),
    PyramidWriter("ngff-zarr itk_bin_shrink use_tensorstore", "ngff-zarr", "mean",
                  ngff_zarr_writer("itk_bin_shrink", use_tensorstore=True),
                  NGFF + ("itk", "tensorstore"), slow=True),
    PyramidWriter("ngff-zarr dask_bin_shrink", "ngff-zarr", "mean",
                  ngff_zarr_writer("dask_bin_shrink"), NGFF, slow=True),
    PyramidWriter("ome-zarr-py write_image default (resize)", "ome-zarr-py", "gaussian",
                  ome_zarr_writer(None), ("ome_zarr", "skimage"), slow=True),
    PyramidWriter("ome-zarr-py write_image local_mean", "ome-zarr-py", "mean",
                  ome_zarr_writer("local_mean"), ("ome_zarr", "skimage"), tol=3, slow=True),
    PyramidWriter("tensorstore downsample + tensorstore write", "composite", "mean",
                  composite_writer(ts_mean, _ts_write), ("tensorstore",)),
    PyramidWriter("numpy strided uint32 sum>>3 + zarrista write", "composite", "mean",
                  composite_writer(np_sum8, _zarrista_write), ("zarrista",), tol=3),
]
