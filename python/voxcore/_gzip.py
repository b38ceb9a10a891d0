"""Sequential inflate of gzip files in bounded memory (any number of members, zero padding)."""

from __future__ import annotations

import os
import zlib
from typing import Any

from .errors import CorruptDataError

INFLATE_WINDOW = 4 << 20  # decoded bytes per zlib call while streaming a .gz
READ_BLOCK = 1 << 20  # compressed bytes per file read while streaming


class GzipStream:
    """Sequential inflate of a gzip file: any number of members, zero padding between them.

    skip() drops decoded bytes and readinto() fills a caller's buffer; either holds at most
    INFLATE_WINDOW decoded bytes plus READ_BLOCK compressed bytes at a time. Both return how
    many bytes they got, fewer at the end of the stream (a truncated member ends it too).
    A stream that is not gzip, or damaged, raises CorruptDataError naming the file.
    """

    def __init__(self, f: Any, name: str):
        self._f, self._name = f, name
        self._d = zlib.decompressobj(31)
        self._in = b""  # compressed bytes not yet given to the inflater
        self._between = False  # a member has ended: padding or the next member follows
        self._done = False

    def read1(self, limit: int) -> bytes:
        """Up to limit (> 0) decoded bytes; b"" at the end of the stream."""
        while not self._done:
            if not self._in:
                self._in = self._f.read(READ_BLOCK)
                if not self._in:  # end of file: what the inflater still holds, then the end
                    self._done = True
                    return b"" if self._between else self._call(self._d.flush)
            if self._between:
                self._in = self._in.lstrip(b"\0")
                if not self._in:
                    continue
                self._d, self._between = zlib.decompressobj(31), False
            out = self._call(self._d.decompress, self._in, limit)
            if self._d.eof:
                self._in, self._between = self._d.unused_data, True
            else:
                self._in = self._d.unconsumed_tail
            if out:
                return out
        return b""

    def _call(self, fn: Any, *args: Any) -> bytes:
        try:
            return fn(*args)
        except zlib.error as e:
            raise CorruptDataError(f"{self._name}: gzip stream unreadable ({e})") from None

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            out = self.read1(min(INFLATE_WINDOW, n - done))
            if not out:
                break
            done += len(out)
        return done

    def readinto(self, view: memoryview) -> int:
        done = 0
        while done < len(view):
            out = self.read1(min(INFLATE_WINDOW, len(view) - done))
            if not out:
                break
            view[done:done + len(out)] = out
            done += len(out)
        return done


def inflate_head(stream: GzipStream, need: int | None, cut: bool = False) -> bytes:
    """The first `need` decoded bytes of a stream (all of it when need is None); fewer when it
    ends first. Only as much is inflated as needed (need may be a lying vox_offset). cut: the
    stream is a prefix of a file, which may end inside a deflate block: what came before stands."""
    parts, got = [], 0
    while need is None or got < need:
        try:
            part = stream.read1(INFLATE_WINDOW if need is None else min(INFLATE_WINDOW, need - got))
        except CorruptDataError:
            if cut and parts:
                break
            raise
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_head(path: str, need: int | None) -> bytes:
    """The first `need` bytes of a file as stored, inflated when it is gzip (all of it when
    need is None); fewer when the file is shorter. Only as much of a .gz is inflated as needed."""
    with open(path, "rb") as f:
        if not path.lower().endswith(".gz"):
            return f.read() if need is None else f.read(need)
        return inflate_head(GzipStream(f, os.path.basename(path)), need)
