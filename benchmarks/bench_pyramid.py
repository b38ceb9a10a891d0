"""In-memory pyramid kernels: three 2x2x2 mean levels of the benchmark volume, no I/O.

This is the reduction at the heart of every multiscale writer, measured alone so that the
kernel's cost is visible apart from encoding and files. voxcore's C++ `downsample` (threaded,
exact integer mean rounded half away from zero) against tensorstore's downsample driver and
two numpy recipes from the peers harness (a strided uint32 sum shifted right by 3, and a float64
reshape-mean). Every result is checked against an exact 8x8x8 reference: three rounded 2x
levels may differ from one 8x mean by at most 1 (sum>>3 truncates, so it is allowed 2).
"""
from __future__ import annotations

import numpy as np
import pytest

from bench_zarr import run

RUN_ORDER = (("test_downsample_levels",),)


def _np_sum8(a):
    s = a[0::2, 0::2, 0::2].astype(np.uint32)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                if dz or dy or dx:
                    s += a[dz::2, dy::2, dx::2]
    return (s >> 3).astype(a.dtype)


def _np_reshape_mean(a):
    n = a.shape[0] // 2
    return a.reshape(n, 2, n, 2, n, 2).mean(axis=(1, 3, 5)).round().astype(a.dtype)


def _ts_mean(a):
    import tensorstore as ts
    return ts.downsample(ts.array(a), [2, 2, 2], method="mean").read().result()


def _voxcore_mean(a):
    import voxcore as vc
    return vc.downsample(a, 2, "mean")


KERNELS = {
    "voxcore": (None, _voxcore_mean),
    "tensorstore": ("tensorstore", _ts_mean),
    "numpy strided uint32 sum>>3": (None, _np_sum8),
    "numpy reshape-mean (float64)": (None, _np_reshape_mean),
}


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
    n = size // 8
    exact = volume.astype(np.uint32).reshape(n, 8, n, 8, n, 8).sum(axis=(1, 3, 5)) / 512.0
    diff = np.abs(got[2].astype(np.float64) - np.floor(exact + 0.5)).max()
    assert [g.shape for g in got] == [(size // 2,) * 3, (size // 4,) * 3, (size // 8,) * 3]
    assert diff <= (2 if "sum>>3" in peer else 1), f"{peer}: level 3 off by {diff}"
