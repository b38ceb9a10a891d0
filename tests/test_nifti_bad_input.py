"""Bad input for NIfTI (RELIABILITY.md "NIfTI", FORMATS.md "NIfTI-1 / NIfTI-2"): every bad file
raises a named voxcore exception whose message names the file and the field that is wrong; none
crashes, hangs or allocates what a header merely claims.

Every file starts as a good header written by nibabel (Nifti1Header / Nifti2Header and the pair
headers; .nii, .nii.gz, .hdr/.img, .hdr.gz/.img.gz) plus a small data block, then one field is
corrupted at the byte level with struct.pack_into at the offset documented in nifti1.h /
nifti2.h (``V1`` / ``V2`` below; test_documented_offsets_match_nibabel checks them).

Classes of input: sizeof_hdr and magic; dim (dim[0] out of 1..7, entries <= 0, products that
overflow int64 or need terabytes, NIfTI-2 int64 dims); datatype / bitpix; vox_offset (NaN,
inf, negative, past EOF, huge); extensions (esize not a multiple of 16, 0, negative, past
vox_offset, ~2 GiB); truncated header and data; gzip streams (corrupt, cut, bad CRC / ISIZE,
trailing garbage, not gzip); a pair missing one file; scl_inter invalid with a valid slope.
Apart from the catalog: the vox_offset rules of FORMATS.md item 3, unusable scl_slope values
(no scaling), degenerate affines (NaN/inf pixdim, srow, quaternion; zero sform rows) and
harmless oddities that must keep reading.

Cases that claim a huge size (``big``) run only in a child interpreter whose address space is
capped (RLIMIT_AS, ``AS_LIMIT``): a reader that allocates what the header claims fails there with
MemoryError instead of paging the machine. test_catalog_never_crashes runs the whole catalog in
that child first, so that a segfault or hang is reported with the case name.

Every case states the right behaviour and passes; the machinery for a documented deviation
(``now=`` / ``why=``: ``xfail(strict=True, raises=<what happens now>)``) stays for new cases.
"""
from __future__ import annotations

import builtins
import gzip
import hashlib
import importlib
import inspect
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import voxcore as vc
from nibabel.nifti1 import Nifti1PairHeader
from nibabel.nifti2 import Nifti2PairHeader

NO_ERROR = pytest.fail.Exception  # what a test raises when the file is accepted silently
AS_LIMIT = 2 << 30  # address-space cap of the child that runs the big cases
FAST_S = 10.0  # a big case must fail within this many seconds
FILE = object()  # in a names group: the case's file name (its unique stem)

# Documented offsets (nifti1.h / nifti2.h): field -> (byte offset, struct format of one item).
V1 = {"sizeof_hdr": (0, "i"), "dim": (40, "h"), "datatype": (70, "h"), "bitpix": (72, "h"),
      "pixdim": (76, "f"), "vox_offset": (108, "f"), "scl_slope": (112, "f"),
      "scl_inter": (116, "f"), "qform_code": (252, "h"), "sform_code": (254, "h"),
      "quatern_b": (256, "f"), "quatern_c": (260, "f"), "quatern_d": (264, "f"),
      "srow_x": (280, "f"), "srow_y": (296, "f"), "srow_z": (312, "f"), "magic": (344, "4s")}
V2 = {"sizeof_hdr": (0, "i"), "magic": (4, "4s"), "eol_check": (8, "4s"), "datatype": (12, "h"),
      "bitpix": (14, "h"), "dim": (16, "q"), "pixdim": (104, "d"), "vox_offset": (168, "q"),
      "scl_slope": (176, "d"), "scl_inter": (184, "d"), "qform_code": (344, "i"),
      "sform_code": (348, "i"), "quatern_b": (352, "d"), "quatern_c": (360, "d"),
      "quatern_d": (368, "d"), "srow_x": (400, "d"), "srow_y": (432, "d"), "srow_z": (464, "d")}

SHAPE = (6, 5, 4)
GZ_SHAPE = (64, 64, 32)  # 256 KiB of noise: damage at 3/4 of the stream lies far from the header
AFFINE = np.array([[2.0, 0, 0, -10], [0, 1.5, 0, -20], [0, 0, 0.8, -30], [0, 0, 0, 1]])
NAN, INF = float("nan"), float("inf")


# ============================================================================ building files
def good_header(v2: bool, pair: bool, shape, dtype, endian: str) -> bytearray:
    """A nibabel-written header: single 352 / 544 bytes (with the extender), pair 348 / 540."""
    cls = {(False, False): nib.Nifti1Header, (True, False): nib.Nifti2Header,
           (False, True): Nifti1PairHeader, (True, True): Nifti2PairHeader}[(v2, pair)]
    hdr = cls(endianness=endian)
    hdr.set_data_dtype(np.dtype(dtype))
    hdr.set_data_shape(shape)
    hdr.set_sform(AFFINE, code=1)
    hdr.set_qform(AFFINE, code=1)
    buf = io.BytesIO()
    hdr.write_to(buf)
    return bytearray(buf.getvalue())


def volume(shape, dtype="i2", noise=False, endian="<") -> np.ndarray:
    dt = np.dtype(dtype).newbyteorder(endian)
    n = int(np.prod(shape))
    if noise:
        vals = np.random.default_rng(7).integers(-2000, 2000, size=n)
    else:
        vals = np.arange(n) % 97 - 40
    return vals.astype(dt).reshape(shape, order="F")


def put(head: bytearray, v2: bool, endian: str, field: str, value, index: int = 0) -> None:
    off, fmt = (V2 if v2 else V1)[field]
    struct.pack_into(endian + fmt, head, off + index * struct.calcsize(fmt), value)


def nifti(*edits, suffix=".nii", v2=False, endian="<", shape=SHAPE, dtype="i2", noise=False,
          ext=b"", pad=0, trailing=b"", cut=None, cut_hdr=None, gz=None, missing=None):
    """A builder ``(dir, stem) -> path`` of one file (a pair: <stem>.hdr + <stem>.img, the path
    named by suffix): a good header and data, then
    edits: (field, value[, index]) packed at the documented offset in the file's byte order;
    ext: raw extension bytes after an extender of 1 (a single file's vox_offset points past them);
    pad: zero bytes between the header (+ extensions) and the data (vox_offset follows);
    trailing: bytes after the data; cut: keep that many bytes of the uncompressed .nii / .img
    (negative: drop from the end); cut_hdr: the same for a pair's .hdr; gz: a function of the
    compressed bytes of the file holding the data; missing: "hdr" or "img" of a pair to delete.
    The data block always has the good header's size (a corrupted dim does not grow it)."""
    pair = suffix.startswith((".hdr", ".img"))
    compressed = suffix.endswith(".gz")

    def build(d: Path, stem: str) -> Path:
        head = good_header(v2, pair, shape, dtype, endian)
        hsize = 540 if v2 else 348
        if ext:
            if pair:
                head += b"\x01\0\0\0"
            else:
                head[hsize] = 1
            head += ext
        if pair:
            if pad:
                put(head, v2, endian, "vox_offset", float(pad) if not v2 else pad)
        elif ext or pad:
            off = len(head) + pad
            put(head, v2, endian, "vox_offset", float(off) if not v2 else off)
        for e in edits:
            put(head, v2, endian, *e)
        body = b"\0" * pad + volume(shape, dtype, noise, endian).tobytes(order="F") + trailing
        if pair:
            files = {"hdr": bytes(head), "img": body}
        else:
            files = {"img": bytes(head) + body}
        if cut is not None:
            files["img"] = files["img"][:cut]
        if cut_hdr is not None:
            files["hdr"] = files["hdr"][:cut_hdr]
        ext_of = {"hdr": ".hdr", "img": ".img"} if pair else {"img": suffix.removesuffix(".gz")}
        paths = {}
        for role, raw in files.items():
            if compressed:
                raw = gzip.compress(raw, compresslevel=6, mtime=0)
                if gz is not None and role == "img":
                    raw = gz(raw)
            p = d / (stem + ext_of[role] + (".gz" if compressed else ""))
            p.write_bytes(raw)
            paths[role] = p
        if missing:
            paths[missing].unlink()
        return d / (stem + suffix)

    return build


def ext_bytes(esize: int, payload: int = 8, ecode: int = 4) -> bytes:
    """One extension header claiming esize, followed by payload bytes."""
    return struct.pack("<ii", esize, ecode) + b"x" * payload


def flip(raw: bytes, at: int) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0xFF
    return bytes(b)


def stem_of(case_id: str) -> str:
    """A file stem unique to the case that says nothing about it (a message naming the file
    must not pass for one naming the field)."""
    return "v" + hashlib.sha1(case_id.encode()).hexdigest()[:12]


# ============================================================================ checking
def trigger(path, read="both"):
    """What a user does: open, then read a corner (the .nii pread path) and / or everything."""
    import voxcore

    img = voxcore.open(path)
    if read in ("corner", "both"):
        img.read(tuple(slice(0, 2) for _ in img.shape))
    if read in ("full", "both"):
        img.read()


def check_message(exc: BaseException, names, path: Path) -> None:
    """Each group of names needs one member in the message (FILE: the file's stem), read with
    the file's directory cut out (pytest's directory names would match field names); an
    OSError also keeps its errno and filename (RELIABILITY.md item 7)."""
    msg = str(exc).replace(str(Path(path).parent), "<dir>").lower()
    stem = Path(path).name.split(".")[0]
    for group in names:
        group = group if isinstance(group, tuple) else (group,)
        alts = [stem if g is FILE else g for g in group]
        assert any(a.lower() in msg for a in alts), (
            f"message does not name any of {alts}: {type(exc).__name__}: {str(exc)!r}")
    if isinstance(exc, OSError):
        assert exc.errno is not None and exc.filename, (
            f"OSError without errno / filename: {type(exc).__name__}(errno={exc.errno}, "
            f"filename={exc.filename!r}): {str(exc)!r}")


@dataclass(frozen=True)
class Bad:
    id: str
    build: Callable[[Path, str], Path]
    raises: tuple  # acceptable exception classes
    names: tuple  # groups of alternatives, each must appear in the message (FILE: the file)
    big: bool = False  # claims a huge size: only in the RLIMIT_AS child
    read: str = "both"  # what trigger reads: "corner", "full" or "both"
    now: type | tuple | None = None  # what voxcore raises today (xfail, strict)
    why: str = ""
    quiet: tuple = ()  # (message, category) of a nibabel warning the case triggers on purpose

    def param(self):
        marks = ()
        if self.now is not None:
            marks = pytest.mark.xfail(strict=True, raises=self.now, reason=self.why)
        return pytest.param(self.id, marks=marks, id=self.id)


META = (vc.InvalidMetadataError,)
META_OR_CORRUPT = (vc.InvalidMetadataError, vc.CorruptDataError)
SIZE = (vc.CorruptDataError, vc.LimitExceededError, vc.InvalidMetadataError)
GZIP_NAMES = (("gzip", "deflate", "crc"), FILE)
TRUNC_NAMES = (("truncated", "short"), FILE)
HUGE_NAMES = (("dim", "truncated", "file size"), FILE)
EXT_WARNING = ("Extension size is not a multiple of 16", UserWarning)

# ---------------------------------------------------------------- header: sizeof_hdr, magic
HEADER = [
    Bad("nii-sizeof_hdr-347-little-endian", nifti(("sizeof_hdr", 347)),
        META, ("sizeof_hdr", FILE)),
    Bad("nii-sizeof_hdr-347-big-endian", nifti(("sizeof_hdr", 347), endian=">"),
        META, ("sizeof_hdr", FILE)),
    Bad("nii-sizeof_hdr-0", nifti(("sizeof_hdr", 0)),
        META, ("sizeof_hdr", FILE)),
    Bad("nii-sizeof_hdr-540-with-nifti1-magic", nifti(("sizeof_hdr", 540)),
        META, ("sizeof_hdr", FILE)),
    Bad("pair-sizeof_hdr-347", nifti(("sizeof_hdr", 347), suffix=".img"),
        META, ("sizeof_hdr", FILE)),
    Bad("nifti2-sizeof_hdr-348-with-n+2-magic", nifti(("sizeof_hdr", 348), v2=True),
        META, ("sizeof_hdr", FILE)),
    Bad("nifti2-sizeof_hdr-541-big-endian", nifti(("sizeof_hdr", 541), v2=True, endian=">"),
        META, ("sizeof_hdr", FILE)),
    Bad("nii-magic-garbage", nifti(("magic", b"abc\0")),
        META, ("magic", FILE)),
    Bad("nii-magic-missing", nifti(("magic", b"\0\0\0\0")),
        META, ("magic", FILE)),
    # (no magic in a pair is an Analyze 7.5 header, read as nibabel reads it: test_analyze.py)
    Bad("nifti2-magic-garbage", nifti(("magic", b"n+3\0"), v2=True),
        META, ("magic", FILE)),
    Bad("nifti2-eol_check-mangled", nifti(("eol_check", b"\r\n\n\n"), v2=True),
        META_OR_CORRUPT, ("eol", FILE)),
]

# ---------------------------------------------------------------- dim
_32767 = [("dim", 32767, i) for i in (1, 2, 3)]
_3000 = [("dim", 3000, i) for i in (1, 2, 3)]
DIM = [
    Bad("nii-dim0-0", nifti(("dim", 0, 0)), META, ("dim", FILE)),
    Bad("nii-dim0-0-big-endian", nifti(("dim", 0, 0), endian=">"), META, ("dim", FILE)),
    Bad("nii-dim0-8", nifti(("dim", 8, 0)), META, ("dim", FILE)),
    Bad("nii-dim0-negative", nifti(("dim", -3, 0)), META, ("dim", FILE)),
    Bad("nifti2-dim0-8", nifti(("dim", 8, 0), v2=True), META, ("dim", FILE), big=True),
    Bad("nifti2-dim0-negative", nifti(("dim", -1, 0), v2=True), META, ("dim", FILE), big=True),
    Bad("nii-dim2-negative", nifti(("dim", -5, 2)), META, ("dim", FILE)),
    Bad("nii.gz-dim2-negative", nifti(("dim", -5, 2), suffix=".nii.gz"), META, ("dim", FILE)),
    Bad("nii-dim2-zero", nifti(("dim", 0, 2)), META, ("dim", FILE)),
    Bad("nii-dims-product-overflows-int64", nifti(("dim", 7, 0), *[("dim", 32767, i)
                                                                   for i in range(1, 8)]),
        SIZE, (("dim", "overflow"), FILE), big=True),
    Bad("nii-dims-need-70TB-corner-read", nifti(*_32767), SIZE, HUGE_NAMES, big=True,
        read="corner"),
    Bad("nii-dims-need-70TB-full-read", nifti(*_32767), SIZE, HUGE_NAMES, big=True,
        read="full"),
    Bad("nii.gz-dims-need-70TB", nifti(*_32767, suffix=".nii.gz"), SIZE, HUGE_NAMES, big=True),
    Bad("pair-dims-need-70TB", nifti(*_32767, suffix=".img"), SIZE, HUGE_NAMES, big=True),
    Bad("nii-dims-need-54GB-full-read", nifti(*_3000), SIZE, HUGE_NAMES, big=True,
        read="full"),
    Bad("nii.gz-dims-need-54GB", nifti(*_3000, suffix=".nii.gz"), SIZE, HUGE_NAMES, big=True),
    Bad("nifti2-dim1-2^40-needs-20TiB", nifti(("dim", 2**40, 1), v2=True), SIZE, HUGE_NAMES,
        big=True),
    Bad("nifti2-dim1-2^62", nifti(("dim", 2**62, 1), v2=True), SIZE, HUGE_NAMES, big=True),
    Bad("nifti2-dim1-int64-max", nifti(("dim", 2**63 - 1, 1), v2=True), SIZE, HUGE_NAMES,
        big=True),
    Bad("nifti2-dims-product-overflows-int64", nifti(("dim", 2**32, 1), ("dim", 2**32, 2),
                                                     v2=True),
        SIZE, (("dim", "overflow"), FILE), big=True),
    Bad("nifti2-dim2-negative-int64", nifti(("dim", -2**40, 2), v2=True), META, ("dim", FILE),
        big=True),
]

# ---------------------------------------------------------------- datatype, bitpix
DATATYPE = [
    Bad("nii-datatype-9999-unknown", nifti(("datatype", 9999)), META, ("datatype", FILE)),
    Bad("nii-datatype-0-DT_UNKNOWN", nifti(("datatype", 0)), META, ("datatype", FILE)),
    Bad("nii-datatype-negative", nifti(("datatype", -4)), META, ("datatype", FILE)),
    Bad("nii-datatype-1-DT_BINARY-unsupported", nifti(("datatype", 1)),
        (vc.UnsupportedError, vc.InvalidMetadataError), ("datatype", FILE)),
    Bad("nifti2-datatype-9999-unknown", nifti(("datatype", 9999), v2=True), META,
        ("datatype", FILE)),
    # FORMATS.md item 6: datatype and bitpix must agree
    Bad("nii-bitpix-64-for-int16", nifti(("bitpix", 64)), META, ("bitpix", FILE)),
    Bad("nii-bitpix-0-for-int16", nifti(("bitpix", 0)), META, ("bitpix", FILE)),
]

# ---------------------------------------------------------------- vox_offset (errors; the
# accepted values are in test_vox_offset_rules)
VOX_NAMES = (("vox_offset", "truncated"), FILE)
VOX_OFFSET = [
    Bad("nii-vox_offset-past-eof", nifti(("vox_offset", 4096.0)), META_OR_CORRUPT, VOX_NAMES),
    Bad("nii.gz-vox_offset-past-eof", nifti(("vox_offset", 4096.0), suffix=".nii.gz"),
        META_OR_CORRUPT, VOX_NAMES),
    Bad("pair-vox_offset-past-eof", nifti(("vox_offset", 4096.0), suffix=".img"),
        META_OR_CORRUPT, VOX_NAMES),
    Bad("nifti2-vox_offset-2^62-past-eof", nifti(("vox_offset", 2**62), v2=True),
        META_OR_CORRUPT, VOX_NAMES),
    Bad("nii-vox_offset-1e30", nifti(("vox_offset", 1e30)), META_OR_CORRUPT, VOX_NAMES),
    Bad("nii.gz-vox_offset-1e30", nifti(("vox_offset", 1e30), suffix=".nii.gz"),
        META_OR_CORRUPT, VOX_NAMES),
    Bad("nii-vox_offset-nan", nifti(("vox_offset", NAN)), META, ("vox_offset", FILE)),
    Bad("nii-vox_offset-inf", nifti(("vox_offset", INF)), META, ("vox_offset", FILE)),
    Bad("nii-vox_offset-negative", nifti(("vox_offset", -16.0)), META, ("vox_offset", FILE)),
    Bad("pair-vox_offset-negative", nifti(("vox_offset", -16.0), suffix=".img"),
        META, ("vox_offset", FILE)),
    Bad("nifti2-vox_offset-negative", nifti(("vox_offset", -2**62), v2=True),
        META, ("vox_offset", FILE)),
    Bad("nifti2-vox_offset-int64-max", nifti(("vox_offset", 2**63 - 1), v2=True),
        META_OR_CORRUPT, VOX_NAMES),
    Bad("nifti2.gz-vox_offset-2^62", nifti(("vox_offset", 2**62), v2=True, suffix=".nii.gz"),
        META_OR_CORRUPT, VOX_NAMES, big=True),
]

# ---------------------------------------------------------------- extensions
EXT_NAMES = (("esize", "extension"), FILE)
EXTENSIONS = [
    Bad("nii-ext-esize-20-not-multiple-of-16", nifti(ext=ext_bytes(20, 24)), META, EXT_NAMES,
        quiet=(EXT_WARNING,)),
    Bad("pair-ext-esize-20-not-multiple-of-16", nifti(ext=ext_bytes(20, 12), suffix=".img"),
        META, EXT_NAMES, quiet=(EXT_WARNING,)),
    Bad("nii-ext-esize-runs-past-vox_offset", nifti(ext=ext_bytes(32, 8)), META, EXT_NAMES),
    Bad("nii-ext-esize-runs-past-eof", nifti(ext=ext_bytes(1024, 8)), META, EXT_NAMES),
    Bad("nii-ext-esize-0", nifti(ext=ext_bytes(0, 8)), META, EXT_NAMES),
    Bad("nii-ext-esize-negative", nifti(ext=ext_bytes(-16, 8)), META, EXT_NAMES),
    Bad("nii-ext-esize-2GiB", nifti(ext=ext_bytes(2**31 - 16, 8)), META, EXT_NAMES, big=True),
    Bad("nii.gz-ext-esize-2GiB", nifti(ext=ext_bytes(2**31 - 16, 8), suffix=".nii.gz"),
        META, EXT_NAMES, big=True),
    Bad("pair-ext-esize-2GiB", nifti(ext=ext_bytes(2**31 - 16, 8), suffix=".img"),
        META, EXT_NAMES, big=True),
]

# ---------------------------------------------------------------- truncated header / data
HDR_TRUNC = (("truncated", "short", "348", "540"), FILE)
TRUNCATED = [
    Bad("nii-empty-file", nifti(cut=0), META_OR_CORRUPT, (("empty", "truncated"), FILE)),
    Bad("nii-header-truncated-100-bytes", nifti(cut=100), META_OR_CORRUPT, HDR_TRUNC),
    Bad("nii-header-truncated-347-bytes", nifti(cut=347), META_OR_CORRUPT, HDR_TRUNC),
    Bad("nii.gz-header-truncated-200-bytes", nifti(cut=200, suffix=".nii.gz"),
        META_OR_CORRUPT, HDR_TRUNC),
    Bad("nifti2-header-truncated-500-bytes", nifti(cut=500, v2=True), META_OR_CORRUPT,
        HDR_TRUNC),
    Bad("pair-hdr-truncated-200-bytes", nifti(cut_hdr=200, suffix=".img"), META_OR_CORRUPT,
        HDR_TRUNC),
    Bad("nii-header-only-no-extender-no-data", nifti(cut=350), META_OR_CORRUPT, TRUNC_NAMES),
    Bad("nii-data-one-byte-short", nifti(cut=-1), (vc.CorruptDataError,), TRUNC_NAMES),
    Bad("nii-data-missing", nifti(cut=352), (vc.CorruptDataError,), TRUNC_NAMES),
    Bad("nii-big-endian-data-half", nifti(cut=352 + 120, endian=">"), (vc.CorruptDataError,),
        TRUNC_NAMES),
    Bad("nii.gz-data-truncated", nifti(cut=-100, suffix=".nii.gz"), (vc.CorruptDataError,),
        TRUNC_NAMES),
    Bad("nifti2-data-truncated", nifti(cut=-7, v2=True), (vc.CorruptDataError,), TRUNC_NAMES),
    Bad("pair-img-truncated", nifti(cut=100, suffix=".img"), (vc.CorruptDataError,),
        TRUNC_NAMES),
    Bad("pair.gz-img-truncated", nifti(cut=100, suffix=".img.gz"), (vc.CorruptDataError,),
        TRUNC_NAMES),
]


# ---------------------------------------------------------------- gzip streams
def _gz(fn):
    return nifti(suffix=".nii.gz", shape=GZ_SHAPE, noise=True, gz=fn)


GZIP = [
    Bad("nii.gz-deflate-corrupt-in-header-block", _gz(lambda r: flip(r, 30)),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-deflate-corrupt-in-data", _gz(lambda r: flip(r, len(r) * 3 // 4)),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-stream-cut-in-half", _gz(lambda r: r[: len(r) // 2]),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-trailer-missing", _gz(lambda r: r[:-8]),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-crc32-mismatch", _gz(lambda r: flip(r, len(r) - 8)),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-isize-mismatch", _gz(lambda r: r[:-4] + struct.pack("<I", 12345)),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-trailing-garbage", _gz(lambda r: r + b"GARBAGE!"),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-trailing-gzip-magic-then-garbage", _gz(lambda r: r + b"\x1f\x8b\x08\0junk"),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("nii.gz-not-gzip-at-all", nifti(suffix=".nii.gz", gz=gzip.decompress),
        META_OR_CORRUPT, GZIP_NAMES),
    Bad("pair.gz-img-trailing-garbage", nifti(suffix=".img.gz", gz=lambda r: r + b"GARBAGE!"),
        META_OR_CORRUPT, GZIP_NAMES),
]

# ---------------------------------------------------------------- pairs missing a file
NOT_FOUND = (FileNotFoundError,)
PAIRS = [
    Bad("pair-hdr-without-img-opened-by-hdr", nifti(suffix=".hdr", missing="img"),
        NOT_FOUND, ((".img",), FILE)),
    Bad("pair.gz-hdr-without-img-opened-by-hdr", nifti(suffix=".hdr.gz", missing="img"),
        NOT_FOUND, ((".img",), FILE)),
    Bad("pair-hdr-without-img-opened-by-img", nifti(suffix=".img", missing="img"),
        NOT_FOUND, ((".img",), FILE)),
    Bad("pair-img-without-hdr", nifti(suffix=".img", missing="hdr"),
        NOT_FOUND, ((".hdr",), FILE)),
]

# ---------------------------------------------------------------- scaling
SCALING = [
    Bad("nii-scl_inter-inf-with-valid-slope", nifti(("scl_slope", 2.0), ("scl_inter", INF)),
        META, ("scl_inter", FILE)),
    Bad("nii-scl_inter-nan-with-valid-slope", nifti(("scl_slope", 2.0), ("scl_inter", NAN)),
        META, ("scl_inter", FILE)),
]

CASES = HEADER + DIM + DATATYPE + VOX_OFFSET + EXTENSIONS + TRUNCATED + GZIP + PAIRS + SCALING
CATALOG = {c.id: c for c in CASES}
assert len(CATALOG) == len(CASES), "duplicate ids"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Every bad case built once on disk: id -> path (its own directory, a unique stem)."""
    root = tmp_path_factory.mktemp("nifti_bad")
    paths = {}
    for i, case in enumerate(CASES):
        d = root / f"{i:03d}"
        d.mkdir()
        paths[case.id] = case.build(d, stem_of(case.id))
    return paths


CHILD = """
import builtins, json, sys, time, warnings
{trigger}
warnings.simplefilter("error")
with open({cases!r}) as f:
    cases = json.load(f)
for case_id, path, read, quiet in cases:
    print(json.dumps(["START", case_id]), flush=True)
    t0 = time.monotonic()
    with warnings.catch_warnings():
        for text, category in quiet:
            warnings.filterwarnings("ignore", text, getattr(builtins, category))
        try:
            trigger(path, read)
            out = None
        except BaseException as e:
            t = type(e)
            out = [t.__module__, t.__qualname__, str(e)[:4000], getattr(e, "errno", None),
                   None if getattr(e, "filename", None) is None else str(e.filename)]
    print(json.dumps(["END", case_id, out, time.monotonic() - t0]), flush=True)
print(json.dumps(["DONE"]), flush=True)
"""


@pytest.fixture(scope="module")
def child_run(catalog, tmp_path_factory):
    """Runs every case in one child interpreter under RLIMIT_AS = AS_LIMIT (VOXCORE_NUM_THREADS=2).
    Returns (outcomes: id -> (exception record or None, seconds), report: what happened)."""
    work = tmp_path_factory.mktemp("nifti_bad_child")
    cases = [[c.id, str(catalog[c.id]), c.read, [[t, k.__name__] for t, k in c.quiet]]
             for c in CASES]
    (work / "cases.json").write_text(json.dumps(cases))
    prelude = ("import resource\n"
               f"resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT}))\n")
    script = work / "child.py"
    script.write_text(prelude + textwrap.dedent(CHILD).format(
        trigger=inspect.getsource(trigger), cases=str(work / "cases.json")))
    env = dict(os.environ, VOXCORE_NUM_THREADS="2", PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=str(work), env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc = "timeout (120 s)"
    outcomes, last = {}, None
    for line in stdout.splitlines():
        rec = json.loads(line)
        if rec[0] == "START":
            last = rec[1]
        elif rec[0] == "END":
            outcomes[rec[1]] = (rec[2], rec[3])
    report = (f"child exit={rc}, last case started={last!r}\nstderr (tail):\n{stderr[-3000:]}")
    return outcomes, report, rc, stdout


def test_catalog_never_crashes(child_run):
    """Every case once in a capped child: it must finish (no segfault, abort or hang); which
    exception each raises is checked by test_bad_nifti_raises_named_error."""
    outcomes, report, rc, stdout = child_run
    assert rc == 0, report
    assert stdout.splitlines()[-1] == '["DONE"]', report
    assert set(outcomes) == set(CATALOG), report


def replay(record) -> BaseException:
    """The child's exception, rebuilt with its class (or its first builtin base)."""
    module, qualname, msg, err, filename = record
    cls = None
    try:
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return RuntimeError(f"{module}.{qualname}: {msg}")
    builtin_bases = [b for b in cls.__mro__ if vars(builtins).get(b.__name__) is b]
    for c in [cls, *builtin_bases]:
        try:
            if issubclass(c, OSError) and err is not None:
                return c(err, msg, filename)
            return c(msg)
        except TypeError:  # other constructor arguments (numpy's _ArrayMemoryError)
            pass
    return RuntimeError(f"{module}.{qualname}: {msg}")


@pytest.mark.parametrize("case_id", [c.param() for c in CASES])
def test_bad_nifti_raises_named_error(case_id, catalog, request):
    case = CATALOG[case_id]
    if case.big:  # never in this process: the capped child's outcome is replayed
        outcomes, report, _, _ = request.getfixturevalue("child_run")
        if case_id not in outcomes:
            pytest.fail(f"the capped child did not finish this case\n{report}")
        record, seconds = outcomes[case_id]
        assert seconds < FAST_S, f"took {seconds:.1f} s (limit {FAST_S} s)"
        if record is None:
            pytest.fail(f"DID NOT RAISE (expected {[c.__name__ for c in case.raises]})")
        exc = replay(record)
        if not isinstance(exc, case.raises):
            raise exc
    else:
        with warnings.catch_warnings():
            for text, category in case.quiet:
                warnings.filterwarnings("ignore", text, category)
            try:
                trigger(catalog[case_id], case.read)
            except case.raises as e:
                exc = e
            else:
                pytest.fail(f"DID NOT RAISE (expected {[c.__name__ for c in case.raises]})")
    check_message(exc, case.names, catalog[case_id])


def test_documented_offsets_match_nibabel():
    """The byte offsets used to corrupt fields are nifti1.h / nifti2.h's (nibabel's dtypes)."""
    for table, cls in ((V1, nib.Nifti1Header), (V2, nib.Nifti2Header)):
        fields = cls.template_dtype.fields
        for name, (off, fmt) in table.items():
            assert fields[name][1] == off, (cls.__name__, name)
            dt = fields[name][0]
            item = dt if fmt.endswith("s") or not dt.subdtype else dt.subdtype[0]
            assert item.itemsize == struct.calcsize(fmt), (cls.__name__, name)


# ============================================================================ vox_offset rules
# FORMATS.md item 3. vox_offset is float32 in NIfTI-1, int64 in NIfTI-2. What nibabel 5.4 does
# and what voxcore must do (xfail: what voxcore does today):
#
#   file      vox_offset         nibabel                               voxcore
#   .nii      0                  data from byte 0 (the header as       data at 352 (FORMATS.md:
#                                voxels), silently                     a value < 352 means 352)
#   .nii      0 < v < 352        HeaderDataError 'vox offset v too     data at 352
#                                low for single file nifti1'
#   .nii      >= 352, % 16 != 0  logs 'not divisible by 16, not SPM   data at v
#                                compatible', reads at v
#   NIfTI-2   0 / < 544          as NIfTI-1 with 544                   data at 544
#   .img      0, or v % 16 != 0  offset into the .img                  the same
#   any       negative, NaN, inf, past EOF, huge: see VOX_OFFSET in the catalog (named errors)
VOX_RULES = [
    # id, suffix, v2, vox_offset written, where the data really is, now, why
    ("nii-vox_offset-0-means-352", ".nii", False, 0.0, 352, None, ""),
    ("nii.gz-vox_offset-0-means-352", ".nii.gz", False, 0.0, 352, None, ""),
    ("nii-vox_offset-100-means-352", ".nii", False, 100.0, 352, None, ""),
    ("nii.gz-vox_offset-348-means-352", ".nii.gz", False, 348.0, 352, None, ""),
    ("nifti2-vox_offset-0-means-544", ".nii", True, 0, 544, None, ""),
    ("nii-vox_offset-360-not-multiple-of-16", ".nii", False, 360.0, 360, None, ""),
    ("nii.gz-vox_offset-360-not-multiple-of-16", ".nii.gz", False, 360.0, 360, None, ""),
    ("nifti2-vox_offset-552-not-multiple-of-16", ".nii", True, 552, 552, None, ""),
    ("pair-vox_offset-0", ".img", False, 0.0, 0, None, ""),
    ("pair-vox_offset-24-not-multiple-of-16", ".img", False, 24.0, 24, None, ""),
    ("pair.gz-vox_offset-40", ".img.gz", True, 40, 40, None, ""),
]


def _rule_param(rule):
    rid, *_, now, why = rule
    marks = pytest.mark.xfail(strict=True, raises=now, reason=why) if now else ()
    return pytest.param(rule, marks=marks, id=rid)


@pytest.mark.parametrize("rule", [_rule_param(r) for r in VOX_RULES])
def test_vox_offset_rules(tmp_path, rule):
    rid, suffix, v2, vox_offset, data_at, _, _ = rule
    pair = suffix.startswith(".img")
    header_bytes = 0 if pair else (544 if v2 else 352)
    build = nifti(("vox_offset", vox_offset), suffix=suffix, v2=v2, pad=data_at - header_bytes)
    path = build(tmp_path, stem_of(rid))
    want = volume(SHAPE)
    img = vc.open(path)
    got = img.read()
    assert np.array_equal(got, want), f"read at the wrong offset: {got.ravel(order='F')[:6]}"
    assert np.array_equal(img.read((slice(1, 4), 2, slice(None))), want[1:4, 2, :])


# ============================================================================ scaling rules
@pytest.mark.parametrize("slope", [0.0, NAN, INF, -INF],
                         ids=["scl_slope-0", "scl_slope-nan", "scl_slope-inf", "scl_slope--inf"])
def test_unusable_scl_slope_means_no_scaling(tmp_path, slope):
    """FORMATS.md item 7: scaled only if scl_slope is non-zero and finite; otherwise the stored
    values come back (scl_inter ignored too, as nibabel)."""
    path = nifti(("scl_slope", slope), ("scl_inter", 5.0))(tmp_path, "s")
    img = vc.open(path)
    stored = img.read()
    np.testing.assert_array_equal(stored, volume(SHAPE))
    np.testing.assert_array_equal(img.read(dtype=np.float32), stored.astype(np.float32))
    np.testing.assert_array_equal(img.read(dtype=np.float64), nib.load(str(path)).get_fdata())
    assert img.slope_inter[0] in (None, 1.0)


# ============================================================================ degenerate affines
# Opening and reading must work (or fail with a named InvalidMetadataError); each derived
# property is finite and usable or raises InvalidMetadataError naming the field; repr never
# raises.
DEGENERATE = {
    # id: (edits, names of the bad field, {attr: (now, why)}, quiet warnings at open)
    "qform-pixdim1-nan": (
        [("sform_code", 0), ("pixdim", NAN, 1)], ("pixdim", "qform"),
        {}, ()),
    "qform-pixdim2-inf": (
        [("sform_code", 0), ("pixdim", INF, 2)], ("pixdim", "qform"),
        {},
        (("invalid value encountered", RuntimeWarning),)),
    "sform-ok-pixdim1-nan": (
        [("pixdim", NAN, 1)], ("pixdim",),
        {}, ()),
    "sform-srow_x-nan": (
        [("srow_x", NAN, 0)], ("srow", "sform"),
        {}, ()),
    "sform-srow_y-offset-inf": (
        [("srow_y", INF, 3)], ("srow", "sform"),
        {}, ()),
    "sform-srow_x-all-zero": (
        [("srow_x", 0.0, i) for i in range(4)], ("srow", "sform"),
        {}, ()),
    "sform-all-rows-zero": (
        [(f"srow_{a}", 0.0, i) for a in "xyz" for i in range(4)], ("srow", "sform"),
        {}, ()),
    "qform-quaternion-not-normalised": (
        [("sform_code", 0), ("quatern_b", 0.9), ("quatern_c", 0.9), ("quatern_d", 0.9)],
        ("quatern", "qform"),
        {}, ()),
    "qform-quatern_b-nan": (
        [("sform_code", 0), ("quatern_b", NAN)], ("quatern", "qform"),
        {}, ()),
}
ATTRS = ("open+read", "affine", "scale", "orientation", "repr")


def _degenerate_params():
    for cid, (_, _, now, _) in DEGENERATE.items():
        for attr in ATTRS:
            marks = ()
            if attr in now:
                marks = pytest.mark.xfail(strict=True, raises=now[attr][0], reason=now[attr][1])
            yield pytest.param(cid, attr, marks=marks, id=f"{cid}-{attr}")


@pytest.mark.parametrize(("cid", "attr"), list(_degenerate_params()))
def test_degenerate_affine(tmp_path, cid, attr):
    edits, names, _, quiet = DEGENERATE[cid]
    stem = stem_of(cid)
    path = nifti(*edits)(tmp_path, stem)
    try:
        with warnings.catch_warnings():
            for text, category in quiet:
                warnings.filterwarnings("ignore", text, category)
            img = vc.open(path)
    except vc.InvalidMetadataError as e:  # refusing the file is allowed, if it says why
        check_message(e, (names, FILE), path)
        return
    if attr == "open+read":
        np.testing.assert_array_equal(img.read(), volume(SHAPE))
        return
    if attr == "repr":
        assert isinstance(repr(img), str)
        return
    try:
        value = getattr(img, attr)
    except vc.InvalidMetadataError as e:
        check_message(e, (names, FILE), path)
        return
    if attr == "affine":
        a = np.asarray(value, dtype=np.float64)
        assert a.shape == (4, 4) and np.isfinite(a).all(), f"affine not finite:\n{a}"
        assert abs(np.linalg.det(a[:3, :3])) > 0, f"affine singular:\n{a}"
    elif attr == "scale":
        assert all(np.isfinite(z) and z > 0 for z in value), f"scale={value}"
    elif attr == "orientation":
        assert len(value) == 3 and all(isinstance(c, str) and c in "LRAPSI" for c in value), (
            f"orientation={value}")


# ============================================================================ harmless oddities
# Files that are odd but readable: they must keep reading, as nibabel reads them.
ODD = [
    ("nii-bytes-after-the-image", nifti(trailing=b"\1" * 1000), None, ""),
    ("nii.gz-zero-padding-after-the-member", nifti(suffix=".nii.gz", gz=lambda r: r + bytes(64)),
     None, ""),
    ("nii.gz-bytes-after-the-image", nifti(suffix=".nii.gz", trailing=b"\1" * 1000), None, ""),
    ("nii.gz-second-member-after-the-image",
     nifti(suffix=".nii.gz", gz=lambda r: r + gzip.compress(b"extra", mtime=0)), None, ""),
    ("nii-vox_offset-fraction-352.5-floors", nifti(("vox_offset", 352.5)), None, ""),
    ("nifti2-eol_check-zero", nifti(("eol_check", b"\0\0\0\0"), v2=True), None, ""),
]


def _odd_param(odd):
    oid, _, now, why = odd
    marks = pytest.mark.xfail(strict=True, raises=now, reason=why) if now else ()
    return pytest.param(odd, marks=marks, id=oid)


@pytest.mark.parametrize("odd", [_odd_param(o) for o in ODD])
def test_odd_but_readable(tmp_path, odd):
    oid, build, _, _ = odd
    path = build(tmp_path, stem_of(oid))
    np.testing.assert_array_equal(np.asanyarray(nib.load(str(path)).dataobj), volume(SHAPE))
    img = vc.open(path)
    np.testing.assert_array_equal(img.read(), volume(SHAPE))
    np.testing.assert_array_equal(img.read((slice(0, 2), slice(None), 3)), volume(SHAPE)[:2, :, 3])

