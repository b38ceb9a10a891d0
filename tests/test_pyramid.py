"""voxcore.downsample against numpy oracles, on the host (the C++ kernels) and on the device
(the CUDA kernels); pyramids on disk come later.

Tests taking ``xp`` run once on numpy arrays and once on CuPy arrays (that case is marked
``gpu`` and skips without CuPy, a CUDA device or voxcore's CUDA build). The device-only tests
check the CUDA kernels against voxcore.downsample on the host; the argument tests of the device
entry point need no device and run everywhere.
"""

import numpy as np
import pytest

import voxcore as vc
from voxcore import _core, errors

METHODS = ["mean", "gaussian", "mode", "nearest", "min", "max"]
DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"]


def windows(a, f):
    """Pad a to a multiple of f with NaN-free edge handling: return list of window views."""
    out_shape = tuple(-(-n // k) for n, k in zip(a.shape, f))
    for idx in np.ndindex(*out_shape):
        yield idx, a[tuple(slice(i * k, min(i * k + k, n)) for i, k, n in zip(idx, f, a.shape))]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 3), (3, 1, 2)])
@pytest.mark.parametrize("method", ["mean", "min", "max", "nearest", "mode"])
def test_downsample_matches_window_oracle(xp, to_host, dtype, factors, method):
    rng = np.random.default_rng(3)
    a = (rng.integers(0, 50, size=(7, 10, 9)) - (20 if np.dtype(dtype).kind in "if" else 0)).astype(dtype)
    got = vc.downsample(xp.asarray(a), factors, method)
    assert isinstance(got, xp.ndarray)
    got = to_host(got)
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


def test_downsample_mean_of_levels_is_strided_sum(xp, to_host):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4096, size=(64, 64, 64), dtype=np.uint16)
    level = xp.asarray(a)
    for _ in range(3):
        level = vc.downsample(level, 2)
    level = to_host(level)
    ref = a.astype(np.uint32).reshape(8, 8, 8, 8, 8, 8).sum(axis=(1, 3, 5))
    # three rounded 2x means differ from one 8x mean by at most 1
    assert np.abs(level.astype(np.int64) - np.floor(ref / 512 + 0.5)).max() <= 1


def test_downsample_gaussian_keeps_constants_and_bad_method_raises(xp, to_host):
    a = xp.full((9, 8, 7), 1234, np.uint16)
    assert (to_host(vc.downsample(a, (2, 2, 2), "gaussian")) == 1234).all()
    with pytest.raises(ValueError, match="unknown method"):
        vc.downsample(a, 2, "median")
    with pytest.raises(ValueError):
        vc.downsample(a, (2, 2), "mean")


def test_downsample_bad_arguments_raise(xp):
    a = xp.zeros((4, 6), "u2")
    with pytest.raises(ValueError, match="unknown method"):
        vc.downsample(a, 2, "median")
    with pytest.raises(ValueError, match="factor count differs"):
        vc.downsample(a, (2, 2, 2))
    with pytest.raises(ValueError, match="factor must be >= 1"):
        vc.downsample(a, (2, 0))
    with pytest.raises(NotImplementedError):
        vc.downsample(xp.zeros((4, 6), "c8"), 2)


# ---- the device entry point: arguments (no device needed) ----


def test_stub_build_raises_unavailable(fake_device_array):
    if _core.cuda_is_compiled():
        pytest.skip("CUDA kernels are compiled in")
    with pytest.raises(errors.UnavailableError):
        _core.cuda_downsample(fake_device_array((4, 6)), fake_device_array((2, 3)), [2, 2], "mean")


def test_device_entry_rejects_unknown_methods_and_objects_without_the_interface(fake_device_array):
    with pytest.raises(ValueError, match="unknown method"):
        _core.cuda_downsample(fake_device_array((4, 6)), fake_device_array((2, 3)), [2, 2],
                              "median")
    with pytest.raises(ValueError):
        _core.cuda_downsample(np.zeros((4, 6)), fake_device_array((2, 3)), [2, 2], "mean")
    with pytest.raises(ValueError):
        _core.cuda_downsample(
            fake_device_array((4, 6)), fake_device_array((2, 3), readonly=True), [2, 2], "mean"
        )


@pytest.mark.parametrize(
    ("src_shape", "dst_shape", "factors", "typestr", "error", "match"),
    [
        ((4, 6), (2, 3), [2, 2], "<i2", errors.InvalidArgumentError, "dtype mismatch"),
        ((4, 6), (2, 2), [2, 2], "<u2", errors.InvalidArgumentError, "dst shape mismatch"),
        ((4, 6), (2, 3), [2, 0], "<u2", errors.InvalidArgumentError, "factor must be >= 1"),
        ((4, 6), (2, 3), [2], "<u2", errors.InvalidArgumentError, "factor count differs"),
        ((4, 6), (2, 3), [2, 2], "<c8", errors.UnsupportedError, "dtype not supported"),
    ],
)
def test_device_checks_match_the_host(fake_device_array, src_shape, dst_shape, factors, typestr,
                                      error, match):
    if not _core.cuda_is_compiled():
        pytest.skip("built without CUDA")
    # The checks run before any device memory is touched: fake arrays are enough.
    src = fake_device_array(src_shape, "<u2" if match == "dtype mismatch" else typestr)
    with pytest.raises(error, match=match):
        _core.cuda_downsample(src, fake_device_array(dst_shape, typestr), factors, "mean")


# ---- device only: the CUDA kernels against voxcore.downsample on the host ----


def source(shape, dtype, method, make_volume, seed=0) -> np.ndarray:
    """Smooth test data; labels with many ties for mode."""
    if shape == ():
        return np.array(source((1,), dtype, method, make_volume, seed)[0])
    if method == "mode":
        rng = np.random.default_rng(seed)
        return rng.integers(0, 5, size=shape).astype(dtype)
    return make_volume(shape, dtype, seed=seed)


def assert_same(got, want, method, what=""):
    """Equal values (NaNs equal); gaussian: integers within 1, floats within rounding."""
    assert got.shape == want.shape and got.dtype == want.dtype, what
    if method == "gaussian":
        if want.dtype.kind == "f":
            rtol = 1e-5 if want.dtype.itemsize == 4 else 1e-12
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, err_msg=what)
        else:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            assert diff.max(initial=0) <= 1, what
        return
    np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_device_matches_the_host(cp, dtype, method, make_volume):
    a = source((19, 33, 70), dtype, method, make_volume, seed=1)
    a_dev = cp.asarray(a)
    for factors in [(2, 2, 2), (1, 3, 2), (3, 2, 5), 4]:
        got = vc.downsample(a_dev, factors, method)
        assert isinstance(got, cp.ndarray)
        assert_same(cp.asnumpy(got), vc.downsample(a, factors, method), method, f"{factors}")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["u1", "i2", "u8", "f4", "f8"])
@pytest.mark.parametrize("method", METHODS)
def test_strided_device_views(cp, dtype, method, make_volume):
    a = source((20, 41, 50), dtype, method, make_volume, seed=2)
    a_dev = cp.asarray(a)
    for sl in [np.s_[2:13, 5:37, 7:47], np.s_[::2, 1:, ::3], np.s_[::-1, :, ::-2]]:
        got = vc.downsample(a_dev[sl], (2, 3, 2), method)
        assert_same(cp.asnumpy(got), vc.downsample(a[sl], (2, 3, 2), method), method, f"{sl}")
    got = vc.downsample(a_dev.transpose(2, 0, 1), (3, 2, 2), method)
    want = vc.downsample(a.transpose(2, 0, 1), (3, 2, 2), method)
    assert_same(cp.asnumpy(got), want, method, "transposed")


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("shape", "factors"),
    [
        ((1001,), (3,)),
        ((5, 1, 13, 4), (2, 2, 3, 2)),
        ((2, 3, 4, 5, 3), 2),
        ((3, 2), (4, 5)),
        ((), ()),
    ],
)
def test_device_other_ranks_and_odd_shapes(cp, method, shape, factors, make_volume):
    a = source(shape, "i4", method, make_volume, seed=3)
    got = vc.downsample(cp.asarray(a), factors, method)
    assert_same(cp.asnumpy(got), vc.downsample(a, factors, method), method)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["f4", "f8"])
@pytest.mark.parametrize("method", ["mean", "min", "max", "mode"])
def test_device_nan_propagates_as_on_the_host(cp, dtype, method):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, size=(9, 10, 11)).astype(dtype)
    a[rng.random(a.shape) < 0.05] = np.nan
    got = vc.downsample(cp.asarray(a), 2, method)
    assert_same(cp.asnumpy(got), vc.downsample(a, 2, method), method)


@pytest.mark.gpu
def test_device_runs_on_the_current_stream(cp, make_volume):
    a = make_volume((64, 128, 150), "u2", seed=5)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        got = vc.downsample(cp.asarray(a), 2, "mean")
    assert_same(cp.asnumpy(got), vc.downsample(a, 2, "mean"), "mean")
