"""voxcore._core.cuda_permute_flip against numpy, on CuPy arrays.

The device tests carry the ``gpu`` marker and skip when CuPy is not installed, when no CUDA
device is present, or when voxcore was built without CUDA. The build-flag tests run everywhere.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from voxcore import _core, errors


def expected(a: np.ndarray, perm, flips) -> np.ndarray:
    out = a.transpose(perm)
    axes = [i for i, f in enumerate(flips) if f]
    if axes:
        out = np.flip(out, axes)
    return np.ascontiguousarray(out)


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


def test_build_flags_are_consistent():
    assert isinstance(_core.cuda_is_compiled(), bool)
    assert _core.cuda_is_available() == (_core.cuda_device_count() > 0)
    if not _core.cuda_is_compiled():
        assert not _core.cuda_is_available()


def test_stub_build_raises_unavailable():
    if _core.cuda_is_compiled():
        pytest.skip("CUDA kernels are compiled in")
    with pytest.raises(errors.UnavailableError):
        _core.cuda_permute_flip(FakeDeviceArray((2, 3)), FakeDeviceArray((3, 2)), [1, 0], [False, False])


def test_rejects_objects_without_the_interface():
    with pytest.raises(ValueError):
        _core.cuda_permute_flip(np.zeros((2, 3)), FakeDeviceArray((3, 2)), [1, 0], [False, False])
    with pytest.raises(ValueError):
        _core.cuda_permute_flip(
            FakeDeviceArray((2, 3)), FakeDeviceArray((3, 2), readonly=True), [1, 0], [False, False]
        )


def run(cp, a_dev, perm, flips, **kw):
    out_shape = tuple(a_dev.shape[p] for p in perm)
    out = cp.empty(out_shape, dtype=a_dev.dtype)
    assert _core.cuda_permute_flip(a_dev, out, list(perm), list(flips), **kw) is out
    return cp.asnumpy(out)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bool", "u1", "i2", "u2", "f2", "f4", "u8", "f8", "c8", "c16"])
def test_rank3_every_perm_and_flip(cp, dtype, make_volume, bit_equal):
    a = make_volume((19, 33, 70), dtype, seed=1)
    a_dev = cp.asarray(a)
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([False, True], repeat=3):
            bit_equal(run(cp, a_dev, perm, flips), expected(a, perm, flips), f"{perm} {flips}")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["u1", "u2", "f8", "c16"])
@pytest.mark.parametrize("shape", [(1000,), (67, 150), (3, 5, 7, 2, 9), (128, 1, 96)])
def test_other_ranks(cp, shape, dtype, make_volume, bit_equal):
    a = make_volume(shape, dtype, seed=2)
    a_dev = cp.asarray(a)
    perm = tuple(reversed(range(a.ndim)))
    flips = tuple(i % 2 == 0 for i in range(a.ndim))
    bit_equal(run(cp, a_dev, perm, flips), expected(a, perm, flips))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "c16"])
def test_strided_device_views(cp, dtype, make_volume, bit_equal):
    a = make_volume((20, 90, 100), dtype, seed=3)
    a_dev = cp.asarray(a)
    for sl in [np.s_[2:13, 5:75, 7:97], np.s_[::2, 1:, ::3], np.s_[::-1, :, ::-2]]:
        for perm in itertools.permutations(range(3)):
            got = run(cp, a_dev[sl], perm, (True, False, True))
            bit_equal(got, expected(a[sl], perm, (True, False, True)), f"{sl} {perm}")


@pytest.mark.gpu
def test_large_transpose_on_a_stream(cp, make_volume, bit_equal):
    a = make_volume((128, 256, 300), "u2", seed=4)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        a_dev = cp.asarray(a)
        got = run(cp, a_dev, (2, 1, 0), (True, False, False), stream=stream.ptr)
    bit_equal(got, expected(a, (2, 1, 0), (True, False, False)))
