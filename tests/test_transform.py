"""voxcore._core.permute_flip (host) and cuda_permute_flip (device) against numpy's transpose +
flip (the oracle).

Tests taking ``xp`` run once on numpy arrays and once on CuPy arrays (that case is marked
``gpu`` and skips without CuPy, a CUDA device or voxcore's CUDA build). The build-flag and
argument tests of the device entry point need no device and run everywhere.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voxcore import _core, errors

DTYPES = ["bool", "u1", "i1", "i2", "u2", "f2", "i4", "u4", "f4", "i8", "u8", "f8", "c8", "c16"]


def expected(a: np.ndarray, perm, flips) -> np.ndarray:
    out = a.transpose(perm)
    axes = [i for i, f in enumerate(flips) if f]
    if axes:
        out = np.flip(out, axes)
    return np.ascontiguousarray(out)


def permute_flip(xp, a, perm, flips, **kw) -> np.ndarray:
    """The host or the device entry point, by the module of ``a``; the result on the host."""
    if xp is np:
        got = _core.permute_flip(a, list(perm), list(flips))
        assert got.flags.c_contiguous and got.flags.writeable and got.flags.owndata
        return got
    out = xp.empty(tuple(a.shape[p] for p in perm), dtype=a.dtype)
    assert _core.cuda_permute_flip(a, out, list(perm), list(flips), **kw) is out
    return out.get()


def check(xp, a, a_host: np.ndarray, perm, flips, bit_equal) -> None:
    got = permute_flip(xp, a, perm, flips)
    bit_equal(got, expected(a_host, perm, flips), f"perm={perm} flips={flips}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7, 9), (19, 33, 70)])
def test_rank3_every_perm_and_flip(xp, shape, dtype, make_volume, bit_equal):
    a = make_volume(shape, dtype, seed=1)
    a_xp = xp.asarray(a)
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([False, True], repeat=3):
            check(xp, a_xp, a, perm, flips, bit_equal)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "f8", "c16"])
@pytest.mark.parametrize(
    "shape",
    [(131,), (1000,), (67, 150), (128, 1, 96), (5, 6, 19, 33), (3, 4, 2, 5, 17), (3, 5, 7, 2, 9),
     (1, 40, 1, 3)],
)
def test_other_ranks(xp, shape, dtype, make_volume, bit_equal):
    a = make_volume(shape, dtype, seed=2)
    a_xp = xp.asarray(a)
    perms = list(itertools.permutations(range(a.ndim)))
    perms = perms[:: max(1, len(perms) // 12)]
    if perms[-1] != tuple(reversed(range(a.ndim))):
        perms.append(tuple(reversed(range(a.ndim))))
    for perm in perms:
        for flips in [(False,) * a.ndim, (True,) * a.ndim, tuple(i % 2 == 0 for i in range(a.ndim))]:
            check(xp, a_xp, a, perm, flips, bit_equal)


def test_zero_dim_and_empty(bit_equal):
    scalar = np.array(3.5, dtype="f8")
    bit_equal(_core.permute_flip(scalar, [], []), scalar)
    empty = np.zeros((3, 0, 4), dtype="u2")
    got = _core.permute_flip(empty, [2, 1, 0], [True, False, False])
    assert got.shape == (4, 0, 3)


def strided_views(m, base) -> dict:
    """Non-contiguous views of ``base`` (a numpy or CuPy array; ``m`` is its module)."""
    return {
        "box": base[2:13, 5:75, 7:97],
        "stepped": base[::2, 1:, ::3],
        "reversed": base[::-1, :, ::-2],
        "fortran": m.asfortranarray(base[:7, :30, :40]),
        "transposed": base.transpose(2, 0, 1)[4:80, 3:16, 5:55],
    }


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "f8", "c16"])
def test_strided_views(xp, dtype, make_volume, bit_equal):
    base = make_volume((20, 90, 100), dtype, seed=3)
    hosts = strided_views(np, base)
    for name, a in strided_views(xp, xp.asarray(base)).items():
        for perm in itertools.permutations(range(3)):
            check(xp, a, hosts[name], perm, (True, False, True), bit_equal)
            check(xp, a, hosts[name], perm, (False, True, False), bit_equal)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f8"])
def test_large_threaded_transpose(dtype, bit_equal):
    # Big enough for the thread pool and, as float64 (34 MB), for the streaming-store path.
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, size=(64, 200, 330)).astype(dtype)
    for perm, flips in [((2, 1, 0), (True, False, False)), ((0, 2, 1), (False, True, True)),
                        ((1, 0, 2), (False, False, True))]:
        check(np, a, a, perm, flips, bit_equal)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "c16"])
@pytest.mark.parametrize("channels", [2, 3, 4, 5])
def test_pixels_to_planes_and_back(channels, dtype, make_volume, bit_equal):
    # A short source- or destination-fastest axis (an RGB tile into (c, y, x), and back) takes
    # the strided-row path up to 4 items and the tile path beyond: both must equal numpy's, with
    # flips, on views with gaps, and large enough to be split across the pool.
    for shape in [(37, 53, channels), (700, 2100, channels)]:
        a = make_volume(shape, dtype, seed=channels) if shape[0] < 100 else \
            np.random.default_rng(channels).integers(0, 250, shape).astype(dtype)
        planes = np.ascontiguousarray(a.transpose(2, 0, 1))
        for flips in [(False, False, False), (True, False, True), (False, True, False)]:
            check(np, a, a, (2, 0, 1), flips, bit_equal)
            check(np, planes, planes, (1, 2, 0), flips, bit_equal)
        gaps = a[::2, 1::3]  # strided rows and columns of whole pixels
        check(np, gaps, gaps, (2, 0, 1), (False, False, False), bit_equal)
        some = np.asarray(planes[:, ::3, ::2])
        check(np, some, some, (1, 2, 0), (False, True, False), bit_equal)


def test_rejects_bad_arguments():
    a = np.zeros((2, 3, 4), dtype="u2")
    with pytest.raises(errors.InvalidArgumentError):
        _core.permute_flip(a, [2, 1], [False, False])
    with pytest.raises(errors.InvalidArgumentError):
        _core.permute_flip(a, [2, 1, 0], [False, False])
    with pytest.raises(errors.InvalidArgumentError):
        _core.permute_flip(a, [0, 0, 1], [False, False, False])
    with pytest.raises(ValueError):
        _core.permute_flip(a, [3, 1, 0], [False, False, False])
    with pytest.raises(ValueError):
        _core.permute_flip(a.astype(">u2"), [2, 1, 0], [False, False, False])


# ---- the device entry point: build flags and arguments (no device needed) ----


def test_build_flags_are_consistent():
    assert isinstance(_core.cuda_is_compiled(), bool)
    assert _core.cuda_is_available() == (_core.cuda_device_count() > 0)
    if not _core.cuda_is_compiled():
        assert not _core.cuda_is_available()


def test_stub_build_raises_unavailable(fake_device_array):
    if _core.cuda_is_compiled():
        pytest.skip("CUDA kernels are compiled in")
    with pytest.raises(errors.UnavailableError):
        _core.cuda_permute_flip(fake_device_array((2, 3)), fake_device_array((3, 2)), [1, 0],
                                [False, False])


def test_device_entry_rejects_objects_without_the_interface(fake_device_array):
    with pytest.raises(ValueError):
        _core.cuda_permute_flip(np.zeros((2, 3)), fake_device_array((3, 2)), [1, 0], [False, False])
    with pytest.raises(ValueError):
        _core.cuda_permute_flip(
            fake_device_array((2, 3)), fake_device_array((3, 2), readonly=True), [1, 0],
            [False, False]
        )


# ---- device only ----


@pytest.mark.gpu
def test_large_transpose_on_a_stream(cp, make_volume, bit_equal):
    a = make_volume((128, 256, 300), "u2", seed=4)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        a_dev = cp.asarray(a)
        got = permute_flip(cp, a_dev, (2, 1, 0), (True, False, False), stream=stream.ptr)
    bit_equal(got, expected(a, (2, 1, 0), (True, False, False)))
