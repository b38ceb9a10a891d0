"""Multiscale pyramids: the in-memory kernel alone, then the whole OME-Zarr pyramid written to disk.

Kernel (op "downsample"): three 2x2x2 mean levels of the benchmark volume, no I/O. This is the
reduction at the heart of every multiscale writer, measured alone so that the kernel's cost is
visible apart from encoding and files. voxcore's C++ `downsample` (threaded, exact integer mean
rounded half away from zero) against tensorstore's downsample driver and two numpy recipes from
the peers harness (a strided uint32 sum shifted right by 3, and a float64 reshape-mean). Every
result is checked against an exact 8x8x8 reference: three rounded 2x levels may differ from one
8x mean by at most 1 (sum>>3 truncates, so it is allowed 2).

End to end (op "pyramid"): what a user runs to turn a volume into a multiscale file. The same
volume becomes levels 1, 2, 4 and 8 in an OME-Zarr 0.5 group (64^3 chunks, zstd level 1), built
and written by each tool in one call (or one short recipe), timed from the numpy array to the
files on disk. Contenders: voxcore build_pyramid + save (mean and gaussian); ngff-zarr
to_multiscales + to_ngff_zarr with its default (itkwasm_gaussian) and its mean-like bin-shrink
methods; ome-zarr-py write_image (default resize, and local_mean); and two composites of fast
parts (tensorstore's downsample driver + tensorstore writes; numpy strided sum + zarrista
writes). How each is driven: _pyramid_peers.py. The peers do not fsync, so voxcore's rows pass
save(durable=False) too; save's default, durable=True (an fsync per file), is its own row.

Every written group is read back by zarr-python: OME 0.5 metadata with 4 levels and per-level
scale, the layout (shape, chunks, zstd-1), level 0 equal to the volume, and level 3 within the
method's tolerance of an exact 8x8x8 mean (smoothing methods: close to it). voxcore's output is
checked exactly (each mean level is the rounded 2x mean of the level before) and validated with
ome-zarr-models. report.py prints the ratios and the project's pyramid targets.
"""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from _pyramid_peers import CHUNK, DIMS, FACTORS, WRITERS, PyramidWriter, np_sum8, ts_mean
from bench_zarr import assert_equal, cleared, quieted, run

RUN_ORDER = (("test_downsample_levels",), ("test_pyramid_write", "test_floor_pyramid"))
SLOW_ROUNDS = 3  # writers that take seconds per pyramid (the rest: ROUNDS["pyramid"])


def _np_reshape_mean(a):
    n = a.shape[0] // 2
    return a.reshape(n, 2, n, 2, n, 2).mean(axis=(1, 3, 5)).round().astype(a.dtype)


def _voxcore_mean(a):
    import voxcore as vc
    return vc.downsample(a, 2, "mean")


KERNELS = {
    "voxcore": (None, _voxcore_mean),
    "tensorstore": ("tensorstore", ts_mean),
    "numpy strided uint32 sum>>3": (None, np_sum8),
    "numpy reshape-mean (float64)": (None, _np_reshape_mean),
}


def exact_mean8(volume) -> np.ndarray:
    """The 8x8x8 window mean of the volume, exact (float64)."""
    n = volume.shape[0] // 8
    return volume.astype(np.uint32).reshape(n, 8, n, 8, n, 8).sum(axis=(1, 3, 5)) / 512.0


@pytest.mark.parametrize("peer", list(KERNELS))
def test_downsample_levels(benchmark, peer, volume, size):
    module, kernel = KERNELS[peer]
    if module:
        pytest.importorskip(module)

    def levels():
        out, a = [], volume
        for _ in range(3):
            a = kernel(a)
            out.append(a)
        return out

    got = run(benchmark, levels, op="downsample", case=None, size=size, peer=peer,
              nbytes=volume.nbytes)
    diff = np.abs(got[2].astype(np.float64) - np.floor(exact_mean8(volume) + 0.5)).max()
    assert [g.shape for g in got] == [(size // 2,) * 3, (size // 4,) * 3, (size // 8,) * 3]
    assert diff <= (2 if "sum>>3" in peer else 1), f"{peer}: level 3 off by {diff}"


# ------------------------------------------------------------------------------ end to end
def _round_mean2(a: np.ndarray) -> np.ndarray:
    """Exact 2x2x2 mean of unsigned integers rounded half up (voxcore's rule for uint)."""
    s = a[0::2, 0::2, 0::2].astype(np.uint32)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                if dz or dy or dx:
                    s += a[dz::2, dy::2, dx::2]
    return ((s + 4) >> 3).astype(a.dtype)


def check_pyramid(path, volume, w: PyramidWriter) -> dict:
    """Read the group back with zarr-python and check it; returns a few numbers for extra_info."""
    import zarr

    with quieted(w.family != "voxcore"):  # voxcore's output must read without warnings
        g = zarr.open_group(str(path), mode="r")
        ome = g.attrs.asdict()["ome"]
        assert ome["version"] == "0.5", f"{w.label}: OME version {ome['version']}"
        ms = ome["multiscales"][0]
        assert [a["name"] for a in ms["axes"]] == list(DIMS)
        datasets = ms["datasets"]
        assert len(datasets) == 1 + len(FACTORS), f"{w.label}: {len(datasets)} levels"
        arrays = [g[d["path"]] for d in datasets]
        level3 = arrays[3][...]
        assert_equal(arrays[0][...], volume, f"{w.label}: level 0")
        voxcore_levels = [arrays[i][...] for i in (1, 2)] if w.family == "voxcore" else None
    n = volume.shape[0]
    for i, (d, a) in enumerate(zip(datasets, arrays)):
        f = 2 ** i
        shape = (n // f,) * 3
        what = f"{w.label}: level {i}"
        scale = d["coordinateTransformations"][0]
        assert scale == {"type": "scale", "scale": [float(f)] * 3}, f"{what}: {scale}"
        assert (a.metadata.zarr_format, a.shape, a.dtype) == (3, shape, volume.dtype), what
        assert a.chunks in ((CHUNK,) * 3, tuple(min(CHUNK, s) for s in shape)), (
            f"{what}: chunks {a.chunks}")
        assert a.shards is None and not a.filters, f"{what}: shards {a.shards} filters {a.filters}"
        codecs = [(type(c).__name__, c.level, c.checksum) for c in a.compressors]
        assert codecs == [("ZstdCodec", 1, False)], f"{what}: compressors {a.compressors}"

    exact = exact_mean8(volume)
    err = np.abs(level3.astype(np.float64) - np.floor(exact + 0.5))
    info = {"level3_max_abs_diff": float(err.max()), "level3_mean_abs_diff": float(err.mean())}
    if w.kind == "mean":
        assert err.max() <= w.tol, f"{w.label}: level 3 off the exact mean by {err.max()}"
    else:  # a smoothing downsample: near the window mean, never equal to it
        corr = float(np.corrcoef(level3.ravel().astype(np.float64), exact.ravel())[0, 1])
        span = float(volume.max()) - float(volume.min())
        assert corr >= 0.95 and err.mean() <= 0.05 * span, (
            f"{w.label}: level 3 far from the window mean (corr={corr:.4f}, "
            f"mean |diff|={err.mean():.1f}, span={span:.0f})")
        info["level3_corr"] = round(corr, 5)
    if w.family == "voxcore":
        _check_voxcore(g, w, [volume, *voxcore_levels, level3])
    info["stored_MiB"] = round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                               / 2**20, 2)
    return info


def _check_voxcore(g, w: PyramidWriter, levels):
    """voxcore's own promises: exact rounded means, window-centred translations, dimension
    names, and a group that ome-zarr-models accepts."""
    ms = g.attrs.asdict()["ome"]["multiscales"][0]
    assert ms["type"] == w.kind
    for i, d in enumerate(ms["datasets"]):
        f = 2 ** i
        assert d["coordinateTransformations"][1] == {
            "type": "translation", "translation": [(f - 1) / 2] * 3}, f"{w.label}: level {i}"
        assert g[d["path"]].metadata.dimension_names == DIMS
        if i and w.kind == "mean":
            assert_equal(levels[i], _round_mean2(levels[i - 1]), f"{w.label}: level {i}")
    try:
        from ome_zarr_models import v05
    except ImportError:  # a test-extra package; the bench extra alone may not have it
        return
    v05.Image.from_zarr(g)


def _writer_id(w: PyramidWriter) -> str:
    return re.sub(r"[^A-Za-z0-9_.=>-]+", "-", w.label).strip("-")


@pytest.mark.parametrize("w", WRITERS, ids=[_writer_id(w) for w in WRITERS])
def test_pyramid_write(benchmark, w, volume, workdir, size):
    quiet = w.family != "voxcore"
    with quieted(quiet):  # some peers warn on import (ome-zarr-py: deprecated Scaler)
        for module in w.modules:
            pytest.importorskip(module)
    path = workdir / "pyramid" / f"{_writer_id(w)}.ome.zarr"

    run(benchmark, lambda: w.write(path, volume), setup=cleared(path), op="pyramid", case=None,
        size=size, peer=w.label, nbytes=volume.nbytes, quiet=quiet,
        rounds=SLOW_ROUNDS if w.slow else None, family=w.family, kind=w.kind)
    benchmark.extra_info.update(check_pyramid(path, volume, w))
    shutil.rmtree(path)



def test_floor_pyramid(benchmark, volume, workdir, size):
    """The encode floor: zstd-1 of every chunk of the four levels, one file each, in Python
    threads, with the levels already computed (the kernel row above adds its ~0.03 s)."""
    import voxcore as vc
    from _floors import Floors

    levels = [volume] + vc._core.downsample_levels(volume, [[2, 2, 2]] * 3, "mean")
    outdir = workdir / "floor-pyramid"
    with Floors() as floors:
        def encode():
            return sum(floors.encode_whole(lv, "zstd", outdir / str(k)) for k, lv in enumerate(levels))

        run(benchmark, encode, setup=cleared(outdir), op="pyramid", case=None, size=size,
            peer=f"floor: zstd-1 encode + one file per chunk, 4 levels {floors.nthreads}T",
            nbytes=volume.nbytes)
