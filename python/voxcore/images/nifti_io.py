"""Bounded allocations and index handling behind a NiftiImage's reads.

The bytes come from its file (:mod:`voxcore._files`, local or remote): a .nii by byte range, a
.nii.gz inflated whole by libdeflate or streamed up to the end of a span. Every buffer is
checked against the memory available before it is allocated (LimitExceededError).
"""

from __future__ import annotations

import numpy as np

from .. import _resources
from ..errors import LimitExceededError


def check_memory(nbytes: int, what: str) -> None:
    """LimitExceededError before an allocation of nbytes that cannot fit in memory."""
    _resources.check_allocation(int(nbytes), what)


def alloc_bytes(nbytes: int, what: str) -> np.ndarray:
    """An uninitialised uint8 buffer of nbytes, refused (LimitExceededError) when it cannot fit:
    checked against the memory available first, and a MemoryError (an address-space limit) is
    reported the same way."""
    check_memory(nbytes, what)
    try:
        return np.empty(nbytes, np.uint8)
    except MemoryError:
        raise LimitExceededError(f"{what}: {nbytes} bytes cannot be allocated in this process") from None


def expand(index: tuple, ndim: int) -> tuple | None:
    """index with Ellipsis expanded and padded to ndim slices/ints; None when it holds anything
    else (arrays, None, bools) or is malformed, for numpy to handle (and report)."""
    if not all(isinstance(i, (int, np.integer, slice)) or i is Ellipsis for i in index) or \
            any(isinstance(i, (bool, np.bool_)) for i in index):
        return None
    n_ell = sum(i is Ellipsis for i in index)
    if n_ell > 1:
        return None
    if n_ell:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (ndim - len(index) + 1) + index[k + 1:]
    if len(index) > ndim:
        return None
    return index + (slice(None),) * (ndim - len(index))
