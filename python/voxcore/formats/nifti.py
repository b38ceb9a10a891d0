"""NIfTI-1 / NIfTI-2 and Analyze-style pairs: the header model (nibabel parses it).

Which names are NIfTI files, how a pair's halves are found, the checks on the stored header
bytes before nibabel sees them (sizeof_hdr, magic, vox_offset, dim, bitpix, extensions), the
header fields' unit names, and the header a save writes (qform/sform and their codes, units,
scaling). Reading voxels is :mod:`voxcore.images.nifti`'s job, writing files
:mod:`voxcore.writers.nifti`'s.

- .hdr/.img pairs: vox_offset is an offset into the .img file. In a single file a vox_offset
  below the header's end (0 included) means the header's end, 352 (NIfTI-2: 544).
- Only the header (and its extensions) is inflated at open; nibabel parses it from those bytes.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    CorruptDataError,
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
    VoxcoreError,
)

SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")
DIMS = ("x", "y", "z", "t", "u", "v", "w")
# nibabel's xyzt unit names -> UDUNITS-2 names (None: unknown)
UNITS = {"meter": "meter", "mm": "millimeter", "micron": "micrometer", "sec": "second",
         "msec": "millisecond", "usec": "microsecond", "unknown": None}
AFFINE_SOURCES = ("best", "sform", "qform", "fallback")
# NIfTI datatype code -> bits per voxel (nifti1.h)
_BITPIX = {2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32, 1024: 64,
           1280: 64, 1536: 128, 1792: 128, 2048: 256, 2304: 32}


def is_nifti_path(file: Any) -> bool:
    """A NIfTI file name (file: a local or remote file, see :mod:`voxcore._files`); a pair's
    missing half still counts (its absence is reported on open)."""
    path = file.path
    if not path.lower().endswith(SUFFIXES):
        return False
    if file.isfile():
        return True
    hdr, img, single = pair_paths(path)
    return not single and (file.sibling(hdr).isfile() or file.sibling(img).isfile())


def pair_paths(path: str) -> tuple[str, str, bool]:
    """(header file, image file, single) for a .nii[.gz] or either half of a pair."""
    low = path.lower()
    for hdr_end, img_end in ((".hdr.gz", ".img.gz"), (".img.gz", ".img.gz"), (".hdr", ".img"), (".img", ".img")):
        if low.endswith(hdr_end):
            stem = path[:-len(hdr_end)]
            gz = hdr_end.endswith(".gz")
            return stem + (".hdr.gz" if gz else ".hdr"), stem + (".img.gz" if gz else ".img"), False
    return path, path, True



def load_header(file: Any) -> tuple[Any, Any]:
    """nibabel's image object for the header (never its data), and the file holding the data
    (file and the result: local or remote files, see :mod:`voxcore._files`).

    The header bytes are checked as stored first: sizeof_hdr must be 348 (NIfTI-1) or 540
    (NIfTI-2) in either byte order, with the matching magic (nibabel repairs a wrong sizeof_hdr
    silently; a reader must not guess what else is wrong). A single file's vox_offset below the
    header's end means the header's end (352 / 544, FORMATS.md), as the NIfTI standard says.
    Only the header and its extensions are inflated from a .gz, not the data.
    """
    import nibabel as nib
    from nibabel.fileholders import FileHolder

    name = file.name
    hdr_path, img_path, single = pair_paths(file.path)
    hdr, img = file.sibling(hdr_path), file.sibling(img_path)
    if not hdr.isfile():
        if single:
            raise FileNotFoundError(2, f"no such file: {file.path}", file.path)
        raise FileNotFoundError(2, f"{name}: the pair's header is missing", hdr_path)
    if not img.isfile():
        raise FileNotFoundError(2, f"{name}: the pair's image file {img.name} is missing "
                                   "(a pair needs both .hdr and .img)", img_path)
    head = hdr.head(544)
    if len(head) < 348:
        raise InvalidMetadataError(f"{name}: truncated header (got={len(head)} bytes, expected>=348)")
    le, be = struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]
    size = le if le in (348, 540) else be if be in (348, 540) else None
    if size is None:
        raise InvalidMetadataError(f"{name}: sizeof_hdr must be 348 or 540 (got={le})")
    magic = head[344:348] if size == 348 else head[4:12]
    if size == 348 and magic[:3] not in (b"n+1", b"ni1") and head[4:7] in (b"n+2", b"ni2"):
        raise InvalidMetadataError(f"{name}: sizeof_hdr must be 540 with the NIfTI-2 magic (got=348)")
    if size == 348 and single and magic != b"n+1\0":
        raise InvalidMetadataError(f"{name}: magic must be 'n+1' for a .nii (got={magic!r})")
    if size == 540 and magic[:3] not in (b"n+2", b"ni2"):
        raise InvalidMetadataError(f"{name}: sizeof_hdr 540 needs the NIfTI-2 magic (got={magic[:4]!r})")
    if size == 540 and len(head) < 540:
        raise InvalidMetadataError(f"{name}: truncated NIfTI-2 header (got={len(head)} bytes, expected>=540)")
    order = "<" if le == size else ">"
    vox_fmt, vox_at = ("f", 108) if size == 348 else ("q", 168)
    vox = struct.unpack(order + vox_fmt, head[vox_at:vox_at + struct.calcsize(vox_fmt)])[0]
    if not math.isfinite(vox) or vox < 0:
        raise InvalidMetadataError(f"{name}: vox_offset must be a finite offset >= 0 (got={vox})")
    dim0 = struct.unpack(order + ("h" if size == 348 else "q"), head[40:42] if size == 348 else head[16:24])[0]
    if not 1 <= dim0 <= 7:
        raise InvalidMetadataError(f"{name}: dim[0] must be 1..7 (got={dim0})")
    dtype_code, bitpix = struct.unpack(order + "hh", head[70:74] if size == 348 else head[12:16])
    if dtype_code in _BITPIX and bitpix != _BITPIX[dtype_code]:
        raise InvalidMetadataError(
            f"{name}: bitpix disagrees with datatype {dtype_code} (expected={_BITPIX[dtype_code]}, got={bitpix})")
    # The first extension, if any: its esize must be a positive multiple of 16 that fits the file.
    room = hdr.size() * (1032 if hdr_path.lower().endswith(".gz") else 1)
    extended = len(head) > size and head[size] != 0
    if extended and len(head) >= size + 12:
        esize = struct.unpack(order + "i", head[size + 4:size + 8])[0]
        if esize < 16 or esize % 16 or size + 4 + esize > room:
            raise InvalidMetadataError(
                f"{name}: extension esize must be a multiple of 16 within the file (got={esize})")
    end = size + 4
    if single and vox < end:  # vox_offset 0 (or too small) in a single file: the header's end
        head = head[:vox_at] + struct.pack(order + vox_fmt, end) + head[vox_at + struct.calcsize(vox_fmt):]
        vox = end
    if extended:  # nibabel reads extensions up to vox_offset (a pair: to the .hdr's end)
        head = head[:size] + hdr.head(int(vox) if single else None)[size:]
    else:
        head = head[:end]
    klass = {(348, True): nib.Nifti1Image, (348, False): nib.Nifti1Pair,
             (540, True): nib.Nifti2Image, (540, False): nib.Nifti2Pair}[(size, single)]
    if size == 348 and not single and magic[:3] not in (b"ni1", b"n+1"):
        # No NIfTI magic in a pair: an Analyze 7.5 header, read as nibabel does (SPM2's reading:
        # the SPM scale factor in funused1, the origin in the originator field)
        klass = nib.Spm2AnalyzeImage
    holder = FileHolder(filename=img_path, fileobj=io.BytesIO(head))
    file_map = {"image": holder} if single else {"header": holder, "image": FileHolder(filename=img_path)}
    if klass is nib.Spm2AnalyzeImage:  # SPM's .mat beside the pair, when there is one, holds the affine
        mat = file.sibling(os.path.splitext(img_path[:-3] if img_path.lower().endswith(".gz") else img_path)[0]
                           + ".mat")
        # (nibabel asks for it and reads none when it cannot be opened)
        file_map["mat"] = FileHolder(filename=mat.path, fileobj=io.BytesIO(mat.head(None)) if mat.isfile() else None)
    return klass.from_file_map(file_map, mmap=False, keep_file_open=False), img



@dataclass
class NiftiHeader:
    """A NIfTI file's header, checked: nibabel's image object (header only, never its data), the
    file holding the voxels, where they start, their stored type and shape, and the scaling."""

    image: Any
    file: Any  # the data's file (voxcore._files: local or remote)
    gz: bool
    offset: int
    stored: np.dtype
    shape: tuple[int, ...]
    slope: float | None  # None: no scaling (a slope of 0 or NaN, as nibabel)
    inter: float | None


def read_header(source: Any) -> NiftiHeader:
    """The checked header of a NIfTI file (or pair; a local or remote file): named voxcore
    errors for every bad field, a data size the file (or its gzip stream) cannot hold included."""
    name = source.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel's own complaints become our errors below
            nib_image, file = load_header(source)
    except (FileNotFoundError, PermissionError, VoxcoreError):  # named already (a store's too)
        raise
    except MemoryError:
        raise LimitExceededError(f"{name}: the header's extensions claim more memory than exists") from None
    except Exception as e:  # noqa: BLE001 -- HeaderDataError, struct/overflow/value errors
        raise InvalidMetadataError(f"{name}: bad NIfTI header: {field_of(str(e))}"
                                   f"({type(e).__name__}: {e})") from None
    gz = file.path.lower().endswith(".gz")
    # The loaded image's header has offset and scaling moved into its array proxy.
    proxy = nib_image.dataobj
    try:
        offset = float(proxy.offset)
        stored = np.dtype(proxy.dtype)
        shape = tuple(int(s) for s in proxy.shape)
        slope, inter = float(proxy.slope), float(proxy.inter)
    except (ValueError, TypeError, OverflowError) as e:
        raise InvalidMetadataError(f"{name}: bad NIfTI header field ({e})") from None
    if not math.isfinite(offset) or offset < 0 or offset > 2 ** 62:
        raise InvalidMetadataError(f"{name}: vox_offset must be a finite offset >= 0 (got={offset})")
    offset = int(offset)
    if not shape or any(d < 1 for d in shape):
        raise InvalidMetadataError(f"{name}: dim must hold 1-7 extents >= 1 (got={shape})")
    bitpix = int(nib_image.header["bitpix"])
    if stored.fields is None and bitpix != stored.itemsize * 8:
        raise InvalidMetadataError(
            f"{name}: bitpix disagrees with datatype (expected={stored.itemsize * 8}, got={bitpix})")
    nbytes = math.prod(shape) * stored.itemsize  # Python ints: no overflow
    size = file.size()
    if gz:
        # deflate cannot expand past ~1032:1; a claim beyond that is a lie, refused before allocating
        if offset + nbytes > 1032 * size + (1 << 20):
            raise CorruptDataError(
                f"{name}: dim {shape} and datatype after vox_offset {offset} claim "
                f"{offset + nbytes} bytes, more than the {size}-byte gzip stream can hold "
                f"(truncated or a lying header)")
    elif offset + nbytes > size:
        raise CorruptDataError(
            f"{name}: NIfTI data truncated: dim {shape} x {stored.itemsize} bytes after "
            f"vox_offset {offset} need {offset + nbytes} bytes, the file has {size}")
    if slope == 0 or not math.isfinite(slope):
        slope = inter = None  # unusable slope: no scaling (as nibabel)
    elif not math.isfinite(inter):
        raise InvalidMetadataError(f"{name}: scl_inter must be finite (got={inter})")
    return NiftiHeader(nib_image, file, gz, offset, stored, shape, slope, inter)


def field_of(message: str) -> str:
    """The header field a nibabel error message is about, as a prefix ("" when unknown)."""
    for key, field in (("data code", "datatype"), ("vox offset", "vox_offset"), ("intercept", "scl_inter"),
                       ("w2 should be", "qform quatern"), ("read length", "extension esize"),
                       ("slope", "scl_slope"), ("dim", "dim"), ("magic", "magic"), ("sizeof_hdr", "sizeof_hdr")):
        if key in message:
            return f"{field} "
    return ""


def check_affine(affine: np.ndarray, what: str, path: str) -> np.ndarray:
    """affine, or InvalidMetadataError when it holds NaN/inf or is singular."""
    if not np.isfinite(affine).all():
        raise InvalidMetadataError(f"{os.path.basename(str(path))}: the {what} holds NaN or inf")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InvalidMetadataError(f"{os.path.basename(str(path))}: the {what} is singular (a zero row or column)")
    return affine


_SPACE_CODES = {"meter": "meter", "millimeter": "mm", "micrometer": "micron"}
_TIME_CODES = {"second": "sec", "millisecond": "msec", "microsecond": "usec"}


def _forms_for(hdr: Any, template: Any, affine: np.ndarray) -> None:
    """Set hdr's qform and sform for the data being written.

    A fresh image (no template) gets voxcore's codes: sform and qform both aligned (2), both
    holding the affine (qform: its rigid part). An image with a header keeps that header's
    codes and forms as they are (0 stays 0: no code is invented), unless its affine no longer
    matches them; then the affine goes into the forms the template codes (if it codes neither,
    voxcore's codes, since an affine without a code would be dropped)."""
    if template is not None and np.allclose(hdr.get_best_affine(), affine, atol=1e-6, equal_nan=True):
        return
    q_code = int(template["qform_code"]) if template is not None else 0
    s_code = int(template["sform_code"]) if template is not None else 0
    if not q_code and not s_code:
        q_code = s_code = 2
    hdr.set_sform(affine, code=s_code)
    hdr.set_qform(affine, code=q_code)




def build_header(data: np.ndarray, affine: np.ndarray, template: Any, slope: float | None,
                 inter: float | None, units: tuple, pair: bool = False) -> tuple[Any, bytes]:
    """The header for writing data (x fastest, native order) as a single file, and its bytes up
    to vox_offset (header, extensions, padding); pair=True: the header of a .hdr/.img pair
    (magic "ni1"/"ni2", the data at offset 0 of the .img), and the .hdr file's bytes.

    NIfTI-1, or NIfTI-2 when a dimension exceeds 32767 or the template is NIfTI-2. A template
    header keeps its fields (description, intent, qform/sform and their codes, extensions)."""
    import nibabel as nib

    if template is not None and not hasattr(template, "get_sform"):
        template = None  # an Analyze 7.5 header has no NIfTI forms or units: a fresh NIfTI header
    big = any(s > 32767 for s in data.shape) or isinstance(template, nib.Nifti2Header)
    if pair:
        from nibabel.nifti1 import Nifti1PairHeader
        from nibabel.nifti2 import Nifti2PairHeader

        cls = Nifti2PairHeader if big else Nifti1PairHeader
    else:
        cls = nib.Nifti2Header if big else nib.Nifti1Header
    hdr = cls() if template is None else cls.from_header(template)
    native = "<" if np.little_endian else ">"
    if hdr.endianness != native:
        hdr = hdr.as_byteswapped(native)
    try:
        hdr.set_data_dtype(data.dtype)
    except Exception as e:  # noqa: BLE001 -- nibabel's HeaderDataError and friends
        raise InvalidArgumentError(f"NIfTI cannot store dtype {data.dtype} ({e})") from None
    hdr.set_data_shape(data.shape)
    _forms_for(hdr, template, affine)
    hdr.set_slope_inter(slope if slope is not None else np.nan, inter if inter is not None else np.nan)
    space = next((u for u in units[:3] if u), None)
    time_code = _TIME_CODES.get(units[3]) if len(units) > 3 else None
    if time_code is None and template is not None:  # a 3-D image keeps the file's time unit
        time_code = template.get_xyzt_units()[1]
    hdr.set_xyzt_units(_SPACE_CODES.get(space, "unknown"), time_code or "unknown")
    hdr["vox_offset"] = 0  # single file: nibabel places the data after the header and its extensions
    head = io.BytesIO()
    hdr.write_to(head)
    if not pair:
        offset = int(hdr["vox_offset"])
        head.write(b"\0" * (offset - head.tell()))
    return hdr, head.getvalue()
