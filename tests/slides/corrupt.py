"""Byte-level patches of a valid TIFF, located with tifffile (tag entries, value offsets, tile
spans, next-IFD pointers), for the bad-input suite. Every function edits the file in place."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import tifffile

_FMT = {3: "H", 4: "I", 16: "Q", 8: "h", 9: "i", 17: "q"}  # TIFF type -> struct code


@dataclass(frozen=True)
class Tag:
    entry: int  # file offset of the 12- (20-) byte IFD entry
    value: int  # file offset of the value(s), inline or not
    dtype: int  # TIFF type code
    count: int
    byteorder: str  # "<" or ">"


def tag(path: Path, page: int, name: str) -> Tag:
    with tifffile.TiffFile(path) as tf:
        t = tf.pages[page].tags[name]
        return Tag(t.offset, t.valueoffset, int(t.dtype), t.count, tf.byteorder)


def read_values(path: Path, page: int, name: str) -> list[int]:
    t = tag(path, page, name)
    fmt = f"{t.byteorder}{t.count}{_FMT[t.dtype]}"
    with open(path, "rb") as f:
        f.seek(t.value)
        return list(struct.unpack(fmt, f.read(struct.calcsize(fmt))))


def write_value(path: Path, page: int, name: str, value: int, index: int = 0) -> None:
    """Overwrite item ``index`` of a tag's value, in the tag's own type."""
    write_tag(path, tag(path, page, name), value, index)


def write_tag(path: Path, t: Tag, value: int, index: int = 0) -> None:
    """Overwrite item ``index`` of a located tag's value, in the tag's own type."""
    assert 0 <= index < t.count
    code = _FMT[t.dtype]
    with open(path, "r+b") as f:
        f.seek(t.value + index * struct.calcsize(code))
        f.write(struct.pack(t.byteorder + code, value))


def segment(path: Path, page: int, index: int) -> tuple[int, int]:
    """(offset, byte count) of tile/strip ``index`` of a page."""
    with tifffile.TiffFile(path) as tf:
        p = tf.pages[page]
        return int(p.dataoffsets[index]), int(p.databytecounts[index])


def segment_name(path: Path, page: int) -> tuple[str, str]:
    with tifffile.TiffFile(path) as tf:
        tiled = tf.pages[page].is_tiled
    return ("TileOffsets", "TileByteCounts") if tiled else ("StripOffsets", "StripByteCounts")


def replace_segment(path: Path, page: int, index: int, data: bytes) -> None:
    """Point segment ``index`` at ``data`` appended to the end of the file."""
    offsets, counts = segment_name(path, page)
    with open(path, "ab") as f:
        at = f.tell()
        f.write(data)
    write_value(path, page, offsets, at, index)
    write_value(path, page, counts, len(data), index)


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def ifd_offsets(path: Path) -> list[int]:
    with tifffile.TiffFile(path) as tf:
        return [p.offset for p in tf.pages]


def next_ifd_pointer(path: Path, page: int) -> tuple[int, str]:
    """(file offset of the next-IFD pointer of a page's IFD, its struct format)."""
    with tifffile.TiffFile(path) as tf:
        bo, big = tf.byteorder, tf.is_bigtiff
        at = tf.pages[page].offset
    with open(path, "rb") as f:
        f.seek(at)
        if big:
            (n,) = struct.unpack(bo + "Q", f.read(8))
            return at + 8 + 20 * n, bo + "Q"
        (n,) = struct.unpack(bo + "H", f.read(2))
        return at + 2 + 12 * n, bo + "I"


def set_next_ifd(path: Path, page: int, target: int) -> None:
    at, fmt = next_ifd_pointer(path, page)
    overwrite(path, at, struct.pack(fmt, target))


def set_first_ifd(path: Path, target: int) -> None:
    with tifffile.TiffFile(path) as tf:
        bo, big = tf.byteorder, tf.is_bigtiff
    overwrite(path, 8 if big else 4, struct.pack(bo + ("Q" if big else "I"), target))


def jpeg_sof(stream: bytes) -> int:
    """Offset of the SOFn marker in a JPEG stream (interchange or abbreviated), found by
    walking the marker segments (not by searching bytes, which tables could contain)."""
    assert stream[:2] == b"\xff\xd8"
    i = 2
    while i + 4 <= len(stream):
        assert stream[i] == 0xFF, f"marker expected at {i}"
        marker = stream[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3):
            return i
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(stream[i + 2:i + 4], "big")
    raise AssertionError("no SOF marker")


def patch_jpeg_sof(path: Path, page: int, index: int, *, height: int | None = None,
                   width: int | None = None, components: int | None = None) -> None:
    """Make tile ``index``'s SOF claim another size (or component count) than the tile's."""
    off, count = segment(path, page, index)
    with open(path, "rb") as f:
        f.seek(off)
        stream = f.read(count)
    sof = off + jpeg_sof(stream)
    # SOF: FFCn, Lf(2), P(1), Y(2), X(2), Nf(1), ...
    if height is not None:
        overwrite(path, sof + 5, struct.pack(">H", height))
    if width is not None:
        overwrite(path, sof + 7, struct.pack(">H", width))
    if components is not None:
        overwrite(path, sof + 9, bytes([components]))
