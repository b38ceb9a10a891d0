"""voxcore._core.permute_flip against numpy's transpose + flip (the oracle)."""

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


def check(a: np.ndarray, perm, flips, bit_equal) -> None:
    got = _core.permute_flip(a, list(perm), list(flips))
    assert got.flags.c_contiguous and got.flags.writeable and got.flags.owndata
    bit_equal(got, expected(a, perm, flips), f"perm={perm} flips={flips}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank3_every_perm_and_flip(dtype, make_volume, bit_equal):
    a = make_volume((5, 7, 9), dtype, seed=1)
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([False, True], repeat=3):
            check(a, perm, flips, bit_equal)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "f8", "c16"])
@pytest.mark.parametrize("shape", [(131,), (67, 150), (5, 6, 19, 33), (3, 4, 2, 5, 17), (1, 40, 1, 3)])
def test_other_ranks(shape, dtype, make_volume, bit_equal):
    a = make_volume(shape, dtype, seed=2)
    perms = list(itertools.permutations(range(a.ndim)))
    for perm in perms[:: max(1, len(perms) // 12)]:
        for flips in [(False,) * a.ndim, (True,) * a.ndim, tuple(i % 2 == 0 for i in range(a.ndim))]:
            check(a, perm, flips, bit_equal)


def test_zero_dim_and_empty(bit_equal):
    scalar = np.array(3.5, dtype="f8")
    bit_equal(_core.permute_flip(scalar, [], []), scalar)
    empty = np.zeros((3, 0, 4), dtype="u2")
    got = _core.permute_flip(empty, [2, 1, 0], [True, False, False])
    assert got.shape == (4, 0, 3)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f4", "f8", "c16"])
def test_strided_views(dtype, make_volume, bit_equal):
    base = make_volume((20, 90, 100), dtype, seed=3)
    views = {
        "box": base[2:13, 5:75, 7:97],
        "stepped": base[::2, 1:, ::3],
        "reversed": base[::-1, :, ::-2],
        "fortran": np.asfortranarray(base[:7, :30, :40]),
        "transposed": base.transpose(2, 0, 1)[4:80, 3:16, 5:55],
    }
    for a in views.values():
        for perm in itertools.permutations(range(3)):
            check(a, perm, (True, False, True), bit_equal)
            check(a, perm, (False, True, False), bit_equal)


@pytest.mark.parametrize("dtype", ["u1", "u2", "f8"])
def test_large_threaded_transpose(dtype, bit_equal):
    # Big enough for the thread pool and, as float64 (34 MB), for the streaming-store path.
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, size=(64, 200, 330)).astype(dtype)
    for perm, flips in [((2, 1, 0), (True, False, False)), ((0, 2, 1), (False, True, True)),
                        ((1, 0, 2), (False, False, True))]:
        check(a, perm, flips, bit_equal)


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
