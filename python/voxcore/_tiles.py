"""A TIFF behind a URL (a :class:`voxcore._files.RemoteFile`): its bytes as a seekable file for
tifffile, block-cached for the small scattered reads of IFDs and tags, and a level's tiles as a
core CallbackStore that turns each tile key into a byte range of the file. Both ask the file's
ZarrStoreAdapter, so every request follows the store's RequestPolicy (bounded, retried, neighbouring
ranges coalesced into one request)."""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._core import CallbackStore
from ._files import RemoteFile
from .errors import CorruptDataError, InvalidArgumentError, InvalidMetadataError

BLOCK = 128 << 10  # bytes per cached block of a RangeReader
CACHED_BLOCKS = 128  # blocks kept (16 MiB)
DIRECT = 4 * BLOCK  # a read larger than this is one request of its own bytes, not cached


def _missing(path: str) -> FileNotFoundError:
    return FileNotFoundError(2, f"no such object: {path}", path)


class RangeReader(io.RawIOBase):
    """A read-only binary file over a RemoteFile, as tifffile reads one (seek, tell, read,
    readinto; it ends where the object ends). Reads are served from an LRU of BLOCK-sized
    blocks, the missing blocks of one read fetched together; larger reads go straight to one
    request. Thread-safe.

    tifffile logs and reads on when some reads fail (a page list it takes as ended): a failed
    request is also kept, and :meth:`guard` raises it when tifffile did not."""

    def __init__(self, file: RemoteFile):
        super().__init__()
        self.name = file.path  # tifffile names the handle (and its messages) by this
        self._adapter, self._key = file.adapter, file.name
        self._size = file.size()  # FileNotFoundError / PermissionError here, as for a local open
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        first = file.prefix()  # (it came with the size)
        if first is not None and len(first) >= min(BLOCK, self._size):
            self._blocks[0] = first[:BLOCK]
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}.get(whence)
        if base is None or base + offset < 0:
            raise ValueError(f"invalid seek (offset={offset}, whence={whence})")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        n = self._size - self._pos if size is None or size < 0 else size
        data = self._read(self._pos, n)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(self._pos, len(view))
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Raises, at the end of the block, a request failure that tifffile swallowed in it
        (also in place of what tifffile raised later for the bytes it lacked)."""
        self._failure = None
        try:
            yield
        except BaseException as e:
            failure, self._failure = self._failure, None
            if failure is None or failure is e:
                raise
            raise failure from e
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self._size - offset))
        if n == 0:
            return b""
        with self._lock:
            if n > DIRECT:
                return self._fetch([(offset, n)])[0]
            first, last = offset // BLOCK, (offset + n - 1) // BLOCK
            need = [k for k in range(first, last + 1) if k not in self._blocks]
            if need:
                spans = [(k * BLOCK, min(BLOCK, self._size - k * BLOCK)) for k in need]
                self._blocks.update(zip(need, self._fetch(spans)))
            parts = []
            for k in range(first, last + 1):
                self._blocks.move_to_end(k)
                parts.append(self._blocks[k])
            while len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        start = offset - first * BLOCK
        return b"".join(parts)[start:start + n]

    def _fetch(self, spans: list[tuple[int, int]]) -> list[bytes]:
        """The bytes of each (offset, length) span, all of them in full, or raises (and keeps)."""
        try:
            got = self._adapter.get_many([(self._key, "range", o, n) for o, n in spans])
            for (o, n), data in zip(spans, got):
                if data is None:
                    raise _missing(self.name)
                if len(data) != n:
                    raise CorruptDataError(f"{self.name}: asked {n} bytes at {o} of {self._size}, got "
                                           f"{len(data)} (the object changed, or the answer was cut short)")
        except BaseException as e:
            self._failure = self._failure or e
            raise
        return got

    def close(self) -> None:
        self._blocks.clear()
        super().close()


class RemoteTiles:
    """A TIFF level's tiles behind a URL, served to a core ChunkedArray as the local TiffStore
    serves them: tile key "i.j..." (v2 keys over grid) is tile n = ravel(i, j, ...), the bytes
    bytecounts[n] at offsets[n] of the file. Offset and byte count both 0 is a missing tile (the
    fill value); no bytes elsewhere, bytes past the object's end or beyond max_bytes (the most an
    encoded tile can take) are CorruptDataError, raised before anything is fetched."""

    def __init__(self, file: RemoteFile, grid, offsets: np.ndarray, bytecounts: np.ndarray,
                 max_bytes: int):
        self.path = file.path
        self._adapter, self._key, self._size = file.adapter, file.name, file.size()
        self._grid = tuple(int(g) for g in grid)
        self._offsets = np.asarray(offsets, dtype=np.uint64)
        self._counts = np.asarray(bytecounts, dtype=np.uint64)
        self._max = int(max_bytes)
        tiles = int(np.prod(self._grid, dtype=np.int64))
        if len(self._offsets) != tiles or len(self._counts) != tiles:
            raise InvalidMetadataError(f"tile offsets and byte counts must list every tile (file={self.path}, "
                                       f"tiles={tiles}, offsets={len(self._offsets)}, byte counts={len(self._counts)})")

    def core_store(self) -> CallbackStore:
        return CallbackStore(self.get_many, None, None, self.start_many)

    def _tile(self, key: str) -> int:
        parts = key.split(".")
        n = 0
        if len(parts) == len(self._grid) and all(p.isdigit() for p in parts):
            for p, g in zip(parts, self._grid):
                v = int(p)
                if v >= g:
                    break
                n = n * g + v
            else:
                return n
        raise InvalidArgumentError(f"not a tile of {self.path} (key={key})")

    def get_many(self, requests) -> list:
        """Each request (key, kind, offset, length) as the tile's bytes (or the range of them
        asked), None for a missing tile; the tiles fetched in one batch."""
        out: list = [None] * len(requests)
        asks, where = self._asks(requests, out)
        for (i, tile), (_, _, _, length), data in zip(where, asks, self._adapter.get_many(asks) if asks else []):
            out[i] = self._checked(data, length, tile)
        return out

    def start_many(self, requests, sink):
        """get_many streamed into a core ArrivalSink: each tile is decoded as it arrives (see
        ZarrStoreAdapter.start_many); missing and empty tiles are put at once."""
        out: list = [None] * len(requests)
        asks, where = self._asks(requests, out)
        fetched = {i for i, _ in where}
        for i, value in enumerate(out):
            if i not in fetched:
                sink.put(i, value)
        tiles = self

        class _Tiles:  # the adapter's sink for the asks: each checked, then put as its request
            aborted = property(lambda _: sink.aborted)

            def put(self, j, data):
                i, tile = where[j]
                return sink.put(i, tiles._checked(data, asks[j][3], tile))

            def fail(self):
                sink.fail()

        return self._adapter.start_many(asks, _Tiles()) if asks else (lambda: None)

    def _checked(self, data, length: int, tile: str):
        """A fetched tile's bytes, or the error its answer is: gone, or short."""
        if data is None:
            raise _missing(self.path)
        if len(data) < length:
            raise CorruptDataError(f"the file ends inside the tile (expected={length} bytes, "
                                   f"got={len(data)}) {tile}")
        return data

    def _asks(self, requests, out: list) -> tuple[list, list]:
        """The range requests on the file serving requests (each checked first), and for each
        the request's index and its name for messages; out gets b"" for empty ranges (None
        stays for missing tiles)."""
        asks, where = [], []
        for i, (key, kind, offset, length) in enumerate(requests):
            n = self._tile(key)
            at, count = int(self._offsets[n]), int(self._counts[n])
            if at == 0 and count == 0:
                continue  # a sparse tile (GDAL's)
            tile = f"(file={self.path}, tile={n})"
            if count == 0:
                raise CorruptDataError(f"tile has no bytes (byte count 0) {tile}")
            if at > self._size or count > self._size - at:
                raise CorruptDataError(f"tile lies beyond the end of the file (offset={at}, bytes={count}, "
                                       f"file size={self._size}) {tile}")
            begin = 0
            if kind == "whole":
                if count > self._max:
                    raise CorruptDataError(f"tile byte count exceeds the bound (max={self._max}, got={count}) {tile}")
                length = count
            elif kind == "range":
                begin = min(offset, count)
                length = min(length, count - begin)
            else:  # suffix
                length = min(length, count)
                begin = count - length
            if length == 0:
                out[i] = b""
                continue
            asks.append((self._key, "range", at + begin, length))
            where.append((i, tile))
        return asks, where
