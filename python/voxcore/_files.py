"""Single files read by byte range: a local path or an object behind a URL (NIfTI's access).

Both kinds answer the same questions: is the file there, its size, its first bytes (inflated
when it is gzip), a byte range into a buffer, and its whole inflated stream (or a decoded span
of it) into a buffer. Locally these are pread, mmap and libdeflate; behind a URL each is one
request (or a few) through a zarr-python FsspecStore of the file's directory, under the store's
RequestPolicy (bounded, retried, ranges checked; see :mod:`voxcore._stores`).
"""

from __future__ import annotations

import io
import mmap
import os
import posixpath
from typing import Any

import numpy as np

from ._core import gunzip_into
from ._gzip import GzipStream, inflate_head, read_head
from ._stores import ZarrStoreAdapter
from .errors import CorruptDataError

HEAD_REQUEST = 64 << 10  # compressed bytes asked for first when a .gz header is fetched
PREFIX = 128 << 10  # a remote file's first bytes, asked with its size (a header's and a TIFF's first block)


def _truncated(path: str, expected: int, got: int, decoded: bool = False) -> CorruptDataError:
    kind = " decoded" if decoded else ""
    return CorruptDataError(f"NIfTI data truncated (file={path}, expected={expected}{kind} bytes, got={got})")


def _gunzip(packed: Any, need: int, path: str, buf: np.ndarray) -> None:
    """The first need decoded bytes of packed (a whole gzip stream) into buf, by the core."""
    name = posixpath.basename(path)
    try:
        got = gunzip_into(packed, buf, discard_excess=True)
    except CorruptDataError as e:
        raise CorruptDataError(f"{name}: {str(e).split('] ', 1)[-1]}") from None
    if got < need:
        raise _truncated(path, need, got)


def _span(stream: GzipStream, buf: np.ndarray, offset: int, path: str) -> None:
    view = memoryview(buf).cast("B")
    got = stream.skip(offset)
    if got == offset:
        got += stream.readinto(view)
    if got < offset + len(view):
        raise _truncated(path, offset + len(view), got, decoded=True)


class LocalFile:
    """A file on a local disk."""

    def __init__(self, path: str):
        self.path = os.fspath(path)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def sibling(self, path: str) -> LocalFile:
        return LocalFile(path)

    def isfile(self) -> bool:
        return os.path.isfile(self.path)

    def size(self) -> int:
        return os.path.getsize(self.path)

    def head(self, need: int | None) -> bytes:
        return read_head(self.path, need)

    def pread_into(self, buf: np.ndarray, offset: int) -> None:
        """Bytes [offset, offset + len(buf)) into buf; CorruptDataError past the file's end."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            view = memoryview(buf).cast("B")
            done = 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], offset + done)
                if n == 0:
                    raise _truncated(self.path, offset + len(view), offset + done)
                done += n
        finally:
            os.close(fd)

    def inflate_into(self, buf: np.ndarray) -> None:
        """The first len(buf) decoded bytes of the .gz into buf (one libdeflate pass over the
        page cache; bytes past them are checked and dropped)."""
        with open(self.path, "rb") as f:
            packed = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
            try:
                _gunzip(packed, len(buf), self.path, buf)
            finally:
                if not isinstance(packed, bytes):
                    packed.close()

    def inflate_span(self, buf: np.ndarray, offset: int) -> None:
        """Decoded bytes [offset, offset + len(buf)) of the .gz into buf, streamed: the bytes
        before are inflated window by window and dropped, nothing after the span is read."""
        with open(self.path, "rb") as f:
            _span(GzipStream(f, self.name), buf, offset, self.path)

    def __reduce__(self):
        return (LocalFile, (os.path.abspath(self.path),))


class RemoteFile:
    """An object behind a URL, read through an FsspecStore of its directory."""

    def __init__(self, url: str, store: Any):
        self.path = url
        self._store = store
        self._key = posixpath.basename(url.rstrip("/"))
        self._adapter = ZarrStoreAdapter(store)
        self._size: int | None = None
        self._prefix: bytes | None = None  # its first PREFIX bytes (all of it when shorter)

    @property
    def name(self) -> str:
        return self._key

    @property
    def adapter(self) -> ZarrStoreAdapter:
        """What its requests go through: the adapter of its directory's store (key: name)."""
        return self._adapter

    def sibling(self, url: str) -> RemoteFile:
        """The object url beside this one (this one itself for its own URL: its size is kept)."""
        return self if url == self.path else RemoteFile(url, self._store)

    def isfile(self) -> bool:
        return self.size_or_none() is not None

    def size_or_none(self) -> int | None:
        """Its byte size (None: no such object), asked once, with its first bytes: the header
        an opener reads next comes in the same round trip."""
        if self._size is None:
            self._size, prefix = self._adapter.size_and_prefix(self._key, PREFIX)
            if prefix is not None and len(prefix) >= min(PREFIX, self._size):
                self._prefix = bytes(prefix[:PREFIX])
        return self._size

    def prefix(self) -> bytes | None:
        """Its first bytes as they came with its size (None when not asked yet)."""
        return self._prefix

    def size(self) -> int:
        n = self.size_or_none()
        if n is None:
            raise FileNotFoundError(2, f"no such object: {self.path}", self.path)
        return n

    def _range(self, offset: int, length: int) -> bytes:
        if self._prefix is not None and offset + length <= len(self._prefix):
            return self._prefix[offset:offset + length]
        if self._prefix is not None and offset < len(self._prefix) == self._size:  # past the end
            return self._prefix[offset:]
        data = self._adapter.get_many([(self._key, "range", offset, length)])[0]
        if data is None:
            raise FileNotFoundError(2, f"no such object: {self.path}", self.path)
        return data

    def _whole(self) -> bytes:
        data = self._adapter.get_many([(self._key, "whole", 0, 0)])[0]
        if data is None:
            raise FileNotFoundError(2, f"no such object: {self.path}", self.path)
        return data

    def head(self, need: int | None) -> bytes:
        """The first need bytes as stored (inflated for a .gz): one range request, more only
        when a .gz header's extensions reach past what the first one inflated to."""
        if need is None:
            data = self._whole()
            gz = self._key.lower().endswith(".gz")
            return inflate_head(GzipStream(io.BytesIO(data), self.name), None) if gz else data
        if not self._key.lower().endswith(".gz"):
            return self._range(0, need)
        ask = max(HEAD_REQUEST, need + need // 64 + 1024)  # deflate never grows data by more
        while True:
            packed = self._range(0, ask)
            out = inflate_head(GzipStream(io.BytesIO(packed), self.name), need, cut=len(packed) == ask)
            if len(out) >= need or len(packed) < ask:
                return out
            ask *= 4

    def pread_into(self, buf: np.ndarray, offset: int) -> None:
        view = memoryview(buf).cast("B")
        data = self._range(offset, len(view))
        if len(data) < len(view):
            raise _truncated(self.path, offset + len(view), offset + len(data))
        view[:] = data

    def inflate_into(self, buf: np.ndarray) -> None:
        """The object fetched once, its first len(buf) decoded bytes inflated by the core."""
        _gunzip(self._whole(), len(buf), self.path, buf)

    def inflate_span(self, buf: np.ndarray, offset: int) -> None:
        _span(GzipStream(io.BytesIO(self._whole()), self.name), buf, offset, self.path)

    def put(self, local: str) -> None:
        """A local file's bytes as this object: one PUT, which replaces the object whole or not
        at all (tried again under the store's policy when it fails in transit)."""
        with open(local, "rb") as f:
            data = f.read()
        self._adapter.set(self._key, data)
        self._size = len(data)

    def __reduce__(self):
        return (RemoteFile, (self.path, self._store))
