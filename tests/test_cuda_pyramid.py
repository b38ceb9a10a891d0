"""voxcore.downsample on CuPy arrays (the CUDA kernels) against voxcore.downsample on numpy.

The device tests carry the ``gpu`` marker and skip when CuPy is not installed, when no CUDA
device is present, or when voxcore was built without CUDA. The argument tests run everywhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import voxcore as vc
from voxcore import _core, errors

METHODS = ["mean", "gaussian", "mode", "nearest", "min", "max"]
DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"]


class FakeDeviceArray:
    """Just enough __cuda_array_interface__ to reach the C++ call (never dereferenced)."""

    def __init__(self, shape, typestr="<u2", readonly=False):
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": typestr,
            "data": (0, readonly),
            "strides": None,
            "version": 3,
        }


@pytest.fixture
def cp():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        count = 0
    if count == 0:
        pytest.skip("no CUDA device")
    if not _core.cuda_is_available():
        pytest.skip("voxcore was built without CUDA")
    return cupy


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


# ---- arguments (no device needed) ----


def test_stub_build_raises_unavailable():
    if _core.cuda_is_compiled():
        pytest.skip("CUDA kernels are compiled in")
    with pytest.raises(errors.UnavailableError):
        _core.cuda_downsample(FakeDeviceArray((4, 6)), FakeDeviceArray((2, 3)), [2, 2], "mean")


def test_rejects_unknown_methods_and_objects_without_the_interface():
    with pytest.raises(ValueError, match="unknown method"):
        _core.cuda_downsample(FakeDeviceArray((4, 6)), FakeDeviceArray((2, 3)), [2, 2], "median")
    with pytest.raises(ValueError):
        _core.cuda_downsample(np.zeros((4, 6)), FakeDeviceArray((2, 3)), [2, 2], "mean")
    with pytest.raises(ValueError):
        _core.cuda_downsample(
            FakeDeviceArray((4, 6)), FakeDeviceArray((2, 3), readonly=True), [2, 2], "mean"
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
def test_checks_match_the_host(src_shape, dst_shape, factors, typestr, error, match):
    if not _core.cuda_is_compiled():
        pytest.skip("built without CUDA")
    # The checks run before any device memory is touched: fake arrays are enough.
    src = FakeDeviceArray(src_shape, "<u2" if match == "dtype mismatch" else typestr)
    with pytest.raises(error, match=match):
        _core.cuda_downsample(src, FakeDeviceArray(dst_shape, typestr), factors, "mean")


# ---- on a device ----


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_matches_the_host(cp, dtype, method, make_volume):
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
def test_other_ranks_and_odd_shapes(cp, method, shape, factors, make_volume):
    a = source(shape, "i4", method, make_volume, seed=3)
    got = vc.downsample(cp.asarray(a), factors, method)
    assert_same(cp.asnumpy(got), vc.downsample(a, factors, method), method)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["f4", "f8"])
@pytest.mark.parametrize("method", ["mean", "min", "max", "mode"])
def test_nan_propagates_as_on_the_host(cp, dtype, method):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, size=(9, 10, 11)).astype(dtype)
    a[rng.random(a.shape) < 0.05] = np.nan
    got = vc.downsample(cp.asarray(a), 2, method)
    assert_same(cp.asnumpy(got), vc.downsample(a, 2, method), method)


@pytest.mark.gpu
def test_runs_on_the_current_stream(cp, make_volume):
    a = make_volume((64, 128, 150), "u2", seed=5)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        got = vc.downsample(cp.asarray(a), 2, "mean")
    assert_same(cp.asnumpy(got), vc.downsample(a, 2, "mean"), "mean")


@pytest.mark.gpu
def test_bad_arguments_raise_as_on_the_host(cp):
    a_dev = cp.zeros((4, 6), "u2")
    with pytest.raises(ValueError, match="unknown method"):
        vc.downsample(a_dev, 2, "median")
    with pytest.raises(ValueError, match="factor count differs"):
        vc.downsample(a_dev, (2, 2, 2))
    with pytest.raises(ValueError, match="factor must be >= 1"):
        vc.downsample(a_dev, (2, 0))
    with pytest.raises(NotImplementedError):
        vc.downsample(cp.zeros((4, 6), "c8"), 2)
