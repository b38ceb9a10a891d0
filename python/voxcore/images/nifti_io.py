"""The byte reads behind a NiftiImage: whole files, outermost-axis spans, bounded allocations.

A .nii is read with pread; a .nii.gz either inflated whole by libdeflate (from the page cache,
no copy of the compressed bytes) or streamed up to the end of a span, the bytes before it
inflated window by window and dropped. Every buffer is checked against the memory available
before it is allocated (LimitExceededError).
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .. import _resources
from .._core import gunzip_into
from .._gzip import GzipStream
from ..errors import CorruptDataError, LimitExceededError


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


def inflate_whole(path: str, need: int, what: str) -> np.ndarray:
    """The first `need` decoded bytes of a .gz file (bytes past them are checked and dropped, as
    nibabel ignores them); CorruptDataError when the stream is shorter or damaged."""
    name = os.path.basename(path)
    buf = alloc_bytes(need, what)
    with open(path, "rb") as f:
        packed = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
        try:
            got = gunzip_into(packed, buf, discard_excess=True)
        except CorruptDataError as e:
            raise CorruptDataError(f"{name}: {str(e).split('] ', 1)[-1]}") from None
        finally:
            if not isinstance(packed, bytes):
                packed.close()
    if got < need:
        raise CorruptDataError(f"NIfTI data truncated (file={path}, expected={need} bytes, got={got})")
    return buf


def pread_into(path: str, buf: np.ndarray, offset: int) -> None:
    """Bytes [offset, offset + len(buf)) of a file into buf; CorruptDataError past its end."""
    fd = os.open(path, os.O_RDONLY)
    try:
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view):
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                raise CorruptDataError(
                    f"NIfTI data truncated (file={path}, expected={offset + len(view)} bytes, "
                    f"got={offset + done})")
            done += n
    finally:
        os.close(fd)


def inflate_span(path: str, buf: np.ndarray, offset: int) -> None:
    """Decoded bytes [offset, offset + len(buf)) of a .gz stream into buf: the bytes before are
    inflated window by window and dropped, nothing after the span is read."""
    view = memoryview(buf).cast("B")
    with open(path, "rb") as f:
        stream = GzipStream(f, os.path.basename(path))
        got = stream.skip(offset)
        if got == offset:
            got += stream.readinto(view)
    if got < offset + len(view):
        raise CorruptDataError(
            f"NIfTI data truncated (file={path}, expected={offset + len(view)} decoded bytes, got={got})")


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
