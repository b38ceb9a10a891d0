"""voxcore.downsample against numpy oracles (the C++ kernels; pyramids on disk come later)."""

import numpy as np
import pytest

import voxcore as vc


def windows(a, f):
    """Pad a to a multiple of f with NaN-free edge handling: return list of window views."""
    out_shape = tuple(-(-n // k) for n, k in zip(a.shape, f))
    for idx in np.ndindex(*out_shape):
        yield idx, a[tuple(slice(i * k, min(i * k + k, n)) for i, k, n in zip(idx, f, a.shape))]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 3), (3, 1, 2)])
@pytest.mark.parametrize("method", ["mean", "min", "max", "nearest", "mode"])
def test_downsample_matches_window_oracle(dtype, factors, method):
    rng = np.random.default_rng(3)
    a = (rng.integers(0, 50, size=(7, 10, 9)) - (20 if np.dtype(dtype).kind in "if" else 0)).astype(dtype)
    got = vc.downsample(a, factors, method)
    assert got.shape == tuple(-(-n // k) for n, k in zip(a.shape, factors))
    assert got.dtype == a.dtype
    for idx, w in windows(a, factors):
        if method == "mean":
            m = w.astype(np.float64).mean()
            want = m if a.dtype.kind == "f" else np.sign(m) * np.floor(abs(m) + 0.5)
        elif method == "min":
            want = w.min()
        elif method == "max":
            want = w.max()
        elif method == "nearest":
            want = w.flat[0]
        else:
            vals, counts = np.unique(w, return_counts=True)
            want = vals[counts == counts.max()].min()
        assert got[idx] == pytest.approx(want, rel=1e-6), (idx, method)


def test_downsample_mean_of_levels_is_strided_sum():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4096, size=(64, 64, 64), dtype=np.uint16)
    level = a
    for _ in range(3):
        level = vc.downsample(level, 2)
    ref = a.astype(np.uint32).reshape(8, 8, 8, 8, 8, 8).sum(axis=(1, 3, 5))
    # three rounded 2x means differ from one 8x mean by at most 1
    assert np.abs(level.astype(np.int64) - np.floor(ref / 512 + 0.5)).max() <= 1


def test_downsample_gaussian_keeps_constants_and_bad_method_raises():
    a = np.full((9, 8, 7), 1234, np.uint16)
    assert (vc.downsample(a, (2, 2, 2), "gaussian") == 1234).all()
    with pytest.raises(ValueError, match="unknown method"):
        vc.downsample(a, 2, "median")
    with pytest.raises(ValueError):
        vc.downsample(a, (2, 2), "mean")
