"""NIfTI-1 / NIfTI-2 images: nibabel parses the header, the C++ core moves the bytes.

- .nii: regions are read with pread from the outermost axis range they touch, never the rest.
- .nii.gz (and .img.gz): a whole read inflates the stream once by libdeflate (any number of
  gzip members) into one buffer, kept while caching="fill" (nibabel's default) until uncache().
  A region read streams instead: the bytes before the outermost-axis span it touches are
  inflated in bounded windows and dropped, the span is inflated into its buffer, and the rest
  of the stream is never read, so a region costs its span in memory whatever the header
  claims. Only with caching="fill" and an image of at most REGION_FILL_MAX bytes does a region
  read inflate and keep the whole image (repeated slicing then inflates once).
- .hdr/.img pairs: vox_offset is an offset into the .img file. In a single file a vox_offset
  below the header's end (0 included) means the header's end, 352 (NIfTI-2: 544).
- Only the header (and its extensions) is inflated at open; nibabel parses it from those bytes.
- Bytes after the image inside a .gz stream are checked (every member) and ignored, as nibabel
  ignores them; bytes that are not gzip are refused.

Every buffer a read allocates (the result, the span, the whole image) is checked against the
memory available first (LimitExceededError). A save writes NAME.tmp-PID beside the target and
renames it over; OS errors (ENOSPC, EIO, ...) come out as OSError with the target as filename,
and the temp file is removed. Before writing, temp files of dead writers beside it are removed.

Values: read() gives the stored values in the stored type (byte-swapped to native order);
read(dtype=np.float32) applies scl_slope/scl_inter like nibabel (not when the slope is 0 or
NaN). The numpy shape is nibabel's (x, y, z, t, ...): the file is x-fastest (Fortran order).
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
import threading
import warnings
import zlib
from typing import Any

import numpy as np

from .. import _core, _resources
from ..errors import (
    CorruptDataError,
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
)

SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")
DIMS = ("x", "y", "z", "t", "u", "v", "w")
# nibabel's xyzt unit names -> UDUNITS-2 names (None: unknown)
_UNITS = {"meter": "meter", "mm": "millimeter", "micron": "micrometer", "sec": "second",
          "msec": "millisecond", "usec": "microsecond", "unknown": None}
AFFINE_SOURCES = ("best", "sform", "qform", "fallback")
# caching="fill": a region read of a .gz image up to this size inflates and keeps the whole image;
# beyond it, region reads stream their span (a whole read() still fills the cache).
REGION_FILL_MAX = 256 << 20
_INFLATE_WINDOW = 4 << 20  # decoded bytes per zlib call while streaming a .gz
_READ_BLOCK = 1 << 20  # compressed bytes per file read while streaming
_SAVE_SLICE = 64 << 20  # payload bytes compressed per gzip_members call while saving
_WRITING: set[str] = set()  # temp files this process is writing now (its threads' saves)
_WRITING_LOCK = threading.Lock()
# NIfTI datatype code -> bits per voxel (nifti1.h)
_BITPIX = {2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32, 1024: 64,
           1280: 64, 1536: 128, 1792: 128, 2048: 256, 2304: 32}


def is_nifti_path(path: str) -> bool:
    """A NIfTI file name; a pair's missing half still counts (its absence is reported on open)."""
    low = path.lower()
    if not low.endswith(SUFFIXES):
        return False
    if os.path.isfile(path):
        return True
    hdr, img, single = _pair_paths(path)
    return not single and (os.path.isfile(hdr) or os.path.isfile(img))


def _pair_paths(path: str) -> tuple[str, str, bool]:
    """(header file, image file, single) for a .nii[.gz] or either half of a pair."""
    low = path.lower()
    for hdr_end, img_end in ((".hdr.gz", ".img.gz"), (".img.gz", ".img.gz"), (".hdr", ".img"), (".img", ".img")):
        if low.endswith(hdr_end):
            stem = path[:-len(hdr_end)]
            gz = hdr_end.endswith(".gz")
            return stem + (".hdr.gz" if gz else ".hdr"), stem + (".img.gz" if gz else ".img"), False
    return path, path, True


class _GzipStream:
    """Sequential inflate of a gzip file: any number of members, zero padding between them.

    skip() drops decoded bytes and readinto() fills a caller's buffer; either holds at most
    _INFLATE_WINDOW decoded bytes plus _READ_BLOCK compressed bytes at a time. Both return how
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
                self._in = self._f.read(_READ_BLOCK)
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
            out = self.read1(min(_INFLATE_WINDOW, n - done))
            if not out:
                break
            done += len(out)
        return done

    def readinto(self, view: memoryview) -> int:
        done = 0
        while done < len(view):
            out = self.read1(min(_INFLATE_WINDOW, len(view) - done))
            if not out:
                break
            view[done:done + len(out)] = out
            done += len(out)
        return done


def _read_head(path: str, need: int | None) -> bytes:
    """The first `need` bytes of a file as stored, inflated when it is gzip (all of it when
    need is None); fewer when the file is shorter. Only as much of a .gz is inflated as needed."""
    with open(path, "rb") as f:
        if not path.lower().endswith(".gz"):
            return f.read() if need is None else f.read(need)
        stream = _GzipStream(f, os.path.basename(path))
        parts, got = [], 0  # grown as the stream delivers: need may be a lying vox_offset
        while need is None or got < need:
            part = stream.read1(_INFLATE_WINDOW if need is None else min(_INFLATE_WINDOW, need - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
    return b"".join(parts)


def _load_header(path: str) -> tuple[Any, str]:
    """nibabel's image object for the header (never its data), and the file holding the data.

    The header bytes are checked as stored first: sizeof_hdr must be 348 (NIfTI-1) or 540
    (NIfTI-2) in either byte order, with the matching magic (nibabel repairs a wrong sizeof_hdr
    silently; a reader must not guess what else is wrong). A single file's vox_offset below the
    header's end means the header's end (352 / 544, FORMATS.md), as the NIfTI standard says.
    Only the header and its extensions are inflated from a .gz, not the data.
    """
    import io

    import nibabel as nib
    from nibabel.fileholders import FileHolder

    name = os.path.basename(path)
    hdr_path, img_path, single = _pair_paths(path)
    if not os.path.isfile(hdr_path):
        raise FileNotFoundError(2, f"{name}: the pair's header is missing", hdr_path)
    if not os.path.isfile(img_path):
        raise FileNotFoundError(2, f"{name}: the pair's image file {os.path.basename(img_path)} is missing "
                                   "(a pair needs both .hdr and .img)", img_path)
    head = _read_head(hdr_path, 544)
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
    room = os.path.getsize(hdr_path) * (1032 if hdr_path.lower().endswith(".gz") else 1)
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
        head = head[:size] + _read_head(hdr_path, int(vox) if single else None)[size:]
    else:
        head = head[:end]
    klass = {(348, True): nib.Nifti1Image, (348, False): nib.Nifti1Pair,
             (540, True): nib.Nifti2Image, (540, False): nib.Nifti2Pair}[(size, single)]
    holder = FileHolder(filename=img_path, fileobj=io.BytesIO(head))
    file_map = {"image": holder} if single else {"header": holder, "image": FileHolder(filename=img_path)}
    return klass.from_file_map(file_map, mmap=False, keep_file_open=False), img_path


class NiftiImage:
    """A NIfTI image opened lazily by :func:`voxcore.open`; the header is nibabel's."""

    def __init__(self, path: str, caching: str = "fill", affine_source: str = "best"):
        self.path = path
        if caching not in ("fill", "unchanged"):
            raise InvalidArgumentError(f"caching must be 'fill' or 'unchanged' (got={caching!r:.20})")
        if affine_source not in AFFINE_SOURCES:
            raise InvalidArgumentError(f"affine_source must be one of {AFFINE_SOURCES} (got={affine_source!r:.20})")
        name = os.path.basename(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nibabel's own complaints become our errors below
                self._nib, self._file = _load_header(path)
        except (FileNotFoundError, InvalidMetadataError, CorruptDataError):
            raise
        except MemoryError:
            raise LimitExceededError(f"{name}: the header's extensions claim more memory than exists") from None
        except Exception as e:  # noqa: BLE001 -- HeaderDataError, struct/overflow/value errors
            raise InvalidMetadataError(f"{name}: bad NIfTI header: {_field_of(str(e))}"
                                       f"({type(e).__name__}: {e})") from None
        self.caching = caching
        self.affine_source = affine_source
        self.header = self._nib.header
        self._gz = self._file.lower().endswith(".gz")
        # The loaded image's header has offset and scaling moved into its array proxy.
        proxy = self._nib.dataobj
        try:
            offset = float(proxy.offset)
            self._stored = np.dtype(proxy.dtype)
            self._shape = tuple(int(s) for s in proxy.shape)
            slope, inter = float(proxy.slope), float(proxy.inter)
        except (ValueError, TypeError, OverflowError) as e:
            raise InvalidMetadataError(f"{name}: bad NIfTI header field ({e})") from None
        if not math.isfinite(offset) or offset < 0 or offset > 2 ** 62:
            raise InvalidMetadataError(f"{name}: vox_offset must be a finite offset >= 0 (got={offset})")
        self._offset = int(offset)
        if not self._shape or any(d < 1 for d in self._shape):
            raise InvalidMetadataError(f"{name}: dim must hold 1-7 extents >= 1 (got={self._shape})")
        bitpix = int(self.header["bitpix"])
        if self._stored.fields is None and bitpix != self._stored.itemsize * 8:
            raise InvalidMetadataError(
                f"{name}: bitpix disagrees with datatype (expected={self._stored.itemsize * 8}, got={bitpix})")
        nbytes = math.prod(self._shape) * self._stored.itemsize  # Python ints: no overflow
        size = os.path.getsize(self._file)
        if self._gz:
            # deflate cannot expand past ~1032:1; a claim beyond that is a lie, refused before allocating
            if self._offset + nbytes > 1032 * size + (1 << 20):
                raise CorruptDataError(
                    f"{name}: dim {self._shape} and datatype after vox_offset {self._offset} claim "
                    f"{self._offset + nbytes} bytes, more than the {size}-byte gzip stream can hold "
                    f"(truncated or a lying header)")
        elif self._offset + nbytes > size:
            raise CorruptDataError(
                f"{name}: NIfTI data truncated: dim {self._shape} x {self._stored.itemsize} bytes after "
                f"vox_offset {self._offset} need {self._offset + nbytes} bytes, the file has {size}")
        self._nbytes = nbytes
        if slope == 0 or not math.isfinite(slope):
            self._slope, self._inter = None, None  # unusable slope: no scaling (as nibabel)
        else:
            if not math.isfinite(inter):
                raise InvalidMetadataError(f"{name}: scl_inter must be finite (got={inter})")
            self._slope, self._inter = slope, inter
        self._cache: np.ndarray | None = None

    # -- description ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def dtype(self) -> np.dtype:
        """The stored type in native byte order (RGB24/RGBA32 are structured u1 records)."""
        return self._stored.newbyteorder("=") if self._stored.fields is None else self._stored

    @property
    def nbytes(self) -> int:
        return math.prod(self._shape) * self._stored.itemsize

    @property
    def dims(self) -> tuple[str, ...]:
        return DIMS[:self.ndim]

    @property
    def scale(self) -> tuple[float, ...]:
        """Voxel size per axis (pixdim)."""
        zooms = tuple(float(z) for z in self.header.get_zooms()[:self.ndim])
        if not all(math.isfinite(z) for z in zooms):
            raise InvalidMetadataError(f"{os.path.basename(self.path)}: pixdim must be finite (got={zooms})")
        return zooms

    @property
    def affine(self) -> np.ndarray:
        """4x4 voxel -> RAS+ world (mm) affine from affine_source ("best": sform, else qform,
        else the pixdim fallback, as nibabel)."""
        h = self.header
        if self.affine_source == "best":
            return _finite(np.array(self._nib.affine, dtype=np.float64), "affine (sform/qform/pixdim)", self.path)
        if self.affine_source == "sform":
            aff, code = h.get_sform(coded=True)
        elif self.affine_source == "qform":
            aff, code = h.get_qform(coded=True)
        else:
            aff, code = h.get_base_affine(), 1
        if aff is None or not code:
            raise InvalidMetadataError(f"the {self.affine_source} is not set (its code is 0) in {self.path}")
        return _finite(np.array(aff, dtype=np.float64), self.affine_source, self.path)

    @property
    def translation(self) -> tuple[float, ...]:
        """World position of voxel 0 on the spatial axes (affine column 3), then toffset for t."""
        t = [float(v) for v in self.affine[:3, 3]][:min(3, self.ndim)]
        if self.ndim > 3:
            t.append(float(self.header["toffset"]) if "toffset" in self.header else 0.0)
        return tuple(t + [0.0] * (self.ndim - len(t)))

    @property
    def units(self) -> tuple[str | None, ...]:
        space, time = self.header.get_xyzt_units()
        per = [_UNITS.get(space)] * min(3, self.ndim)
        if self.ndim > 3:
            per.append(_UNITS.get(time))
        return tuple(per + [None] * (self.ndim - len(per)))

    @property
    def orientation(self) -> tuple[str, ...]:
        """Axis codes of the affine, e.g. ('R', 'A', 'S')."""
        import nibabel as nib

        codes = tuple(nib.aff2axcodes(self.affine))
        if None in codes:
            raise InvalidMetadataError(f"{os.path.basename(self.path)}: the affine is singular (axes={codes})")
        return codes

    @property
    def slope_inter(self) -> tuple[float | None, float | None]:
        return self._slope, self._inter

    def __repr__(self) -> str:
        try:
            where = f"scale={self.scale} orientation={''.join(self.orientation)}"
        except InvalidMetadataError:
            where = "affine=unusable"
        return f"<voxcore.{type(self).__name__} {self.path} shape={self.shape} dtype={self.dtype} {where}>"

    # -- reading ----------------------------------------------------------------------------
    def _decoded(self) -> np.ndarray:
        """The whole stored array (Fortran order, stored byte order), from the cache or the file."""
        if self._cache is not None:
            return self._cache
        need = self._offset + self.nbytes
        name = os.path.basename(self._file)
        if self._gz:
            import mmap

            buf = _alloc(need, f"{name}: the whole image {self._shape} {self.dtype}, inflated")
            with open(self._file, "rb") as f:
                # inflate straight from the page cache: no copy of the compressed bytes
                packed = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
                try:
                    # bytes past the image in the stream are checked and dropped (nibabel ignores them)
                    got = _core.gunzip_into(packed, buf, discard_excess=True)
                except CorruptDataError as e:
                    raise CorruptDataError(f"{name}: {str(e).split('] ', 1)[-1]}") from None
                finally:
                    if not isinstance(packed, bytes):
                        packed.close()
            if got < need:
                raise CorruptDataError(
                    f"NIfTI data truncated (file={self._file}, expected={need} bytes, got={got})")
            raw = buf[self._offset:]
        else:
            raw = _alloc(self.nbytes, f"{name}: the whole image {self._shape} {self.dtype}")
            self._pread(raw, self._offset)
        arr = raw.view(self._stored).reshape(self._shape, order="F")
        if self.caching == "fill":
            arr.flags.writeable = False
            self._cache = arr
        return arr

    def _pread(self, buf: np.ndarray, offset: int) -> None:
        fd = os.open(self._file, os.O_RDONLY)
        try:
            view = memoryview(buf).cast("B")
            done = 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], offset + done)
                if n == 0:
                    raise CorruptDataError(
                        f"NIfTI data truncated (file={self._file}, expected={offset + len(view)} bytes, "
                        f"got={offset + done})")
                done += n
        finally:
            os.close(fd)

    def _inflate_span(self, buf: np.ndarray, offset: int) -> None:
        """Decoded bytes [offset, offset + len(buf)) of the .gz stream into buf: the bytes before
        are inflated window by window and dropped, nothing after the span is read."""
        view = memoryview(buf).cast("B")
        with open(self._file, "rb") as f:
            stream = _GzipStream(f, os.path.basename(self._file))
            got = stream.skip(offset)
            if got == offset:
                got += stream.readinto(view)
        if got < offset + len(view):
            raise CorruptDataError(
                f"NIfTI data truncated (file={self._file}, expected={offset + len(view)} decoded bytes, "
                f"got={got})")

    def _region(self, region: Any) -> tuple:
        if region is None:
            return (slice(None),) * self.ndim
        if isinstance(region, dict):
            unknown = [k for k in region if k not in self.dims]
            if unknown:
                raise InvalidArgumentError(f"unknown dimension {unknown[0]!r}; dims are {self.dims}")
            return tuple(region.get(d, slice(None)) for d in self.dims)
        return region if isinstance(region, tuple) else (region,)

    def _streams_regions(self) -> bool:
        """Whether a region read fetches only its span (else it inflates and keeps the whole)."""
        return not (self._gz and self.caching == "fill" and self.nbytes <= REGION_FILL_MAX)

    def _scalar_dtype(self, dtype: Any, what: str) -> np.dtype:
        """dtype as a numpy dtype that the stored values can be cast to (RGB records cannot)."""
        try:
            dtype = np.dtype(dtype)
        except TypeError as e:
            raise InvalidArgumentError(f"{what}: not a dtype (got={dtype!r:.40}; {e})") from None
        if self._stored.fields is not None and dtype != self._stored:
            kind = "RGBA32" if len(self._stored.fields) == 4 else "RGB24"
            raise InvalidArgumentError(
                f"{os.path.basename(str(self.path))}: {kind} data (records of uint8 fields "
                f"{', '.join(self._stored.names)}) cannot be cast to a scalar dtype (got={dtype}); "
                f"read without dtype, then use the fields, e.g. a['R'].astype(np.float32)")
        return dtype

    def read(self, region: Any = None, *, dtype: Any = None) -> np.ndarray:
        """Stored values of a region (numpy indexing or {dim: index}); with dtype, scaled values.

        dtype=np.float32 / np.float64 gives scl_slope * stored + scl_inter, as nibabel's
        get_fdata (which is float64 only). Without dtype the stored values come back in native
        byte order; from a cached .gz image they may be a read-only view of the cache. RGB24 /
        RGBA32 images come back as records (fields R, G, B[, A]); they take no dtype.
        A region of a .nii reads only the outermost-axis range it touches; of a .nii.gz, it
        inflates the stream up to the end of that range, holding only the range (see the module
        notes for caching="fill").
        """
        index = self._region(region)
        if dtype is not None:
            dtype = self._scalar_dtype(dtype, "read(dtype=)")
            if dtype.kind != "f":
                raise InvalidArgumentError(f"scaled reads need a float dtype (got={dtype})")
        data = None
        if self._cache is None and region is not None and self._streams_regions():
            data = self._read_outer(index)
        if data is None:
            data = self._decoded()[index]
        if not data.dtype.isnative and data.dtype.fields is None:
            _check_memory(data.nbytes, f"{os.path.basename(str(self.path))}: the values in native byte order")
            data = data.astype(data.dtype.newbyteorder("="))
        if dtype is None:
            return data
        what = f"{os.path.basename(str(self.path))}: the values as {dtype}"
        _check_memory(data.size * dtype.itemsize, what)
        try:
            out = np.asarray(data, dtype=dtype)
            if out is data or np.shares_memory(out, data):
                out = out.copy()
        except MemoryError:
            raise LimitExceededError(f"{what}: {data.size * dtype.itemsize} bytes cannot be allocated") from None
        if self._slope is not None and self._slope != 1.0:
            out *= dtype.type(self._slope)
        if self._inter is not None and self._inter != 0.0:
            out += dtype.type(self._inter)
        return out

    def _read_outer(self, index: tuple) -> np.ndarray | None:
        """Fetch only the range of the outermost (slowest) axis the region touches: pread from a
        .nii, a streamed inflate from a .gz (None: the index needs the whole array)."""
        index = _expand(tuple(index), self.ndim)
        if index is None:  # fancy indexing, newaxis or a bad index: numpy on the whole array
            return None
        last = self.ndim - 1
        while last > 0 and self._shape[last] == 1:
            last -= 1
        sel = index[last] if last < len(index) else slice(None)
        n = self._shape[last]
        if isinstance(sel, (int, np.integer)):
            i = int(sel) + (n if sel < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {sel} is out of bounds for axis {last} with size {n}")
            lo, hi = i, i + 1
            rest = index[:last] + (0,) + index[last + 1:]
        elif isinstance(sel, slice):
            r = range(*sel.indices(n))
            if len(r) == 0:  # an empty selection: its shape, no I/O
                return np.broadcast_to(np.zeros((), self._stored), self._shape)[index].copy()
            lo, hi = min(r[0], r[-1]), max(r[0], r[-1]) + 1
            stop = r.stop - lo
            local = slice(r.start - lo, stop if stop >= 0 else None, r.step)
            rest = index[:last] + (local,) + index[last + 1:]
        else:
            return None
        if self._gz and hi - lo == n:  # the whole stream: one libdeflate pass is faster
            return None
        plane = math.prod(self._shape[:last]) * self._stored.itemsize
        buf = _alloc((hi - lo) * plane, f"{os.path.basename(self._file)}: the span {lo}:{hi} of axis "
                                        f"{DIMS[last]} that the region touches")
        (self._inflate_span if self._gz else self._pread)(buf, self._offset + lo * plane)
        part_shape = self._shape[:last] + (hi - lo,) + self._shape[last + 1:]
        out = buf.view(self._stored).reshape(part_shape, order="F")[rest]
        # a small region of a large span: keep its values, not the span
        return out.copy() if 2 * out.nbytes <= buf.nbytes else out

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if dtype is not None:
            dtype = self._scalar_dtype(dtype, "__array__(dtype=)")
        a = self.read()
        if dtype is None or dtype == a.dtype:
            return a
        _check_memory(a.size * dtype.itemsize, f"{os.path.basename(str(self.path))}: the values as {dtype}")
        return a.astype(dtype)

    def uncache(self) -> None:
        """Drop the decoded buffer (the next read inflates / reads the file again)."""
        self._cache = None

    def to_dask(self, chunks: Any = None):
        """A dask array of the stored values whose blocks (slabs along the slowest axis unless
        chunks says otherwise) are read by the core; tasks carry the path, never data."""
        from .._dask import to_dask

        return to_dask(self, 0, chunks)

    def as_closest_canonical(self) -> NiftiArray:
        """The image reoriented to the RAS+ axis order closest to its affine, as nibabel's
        as_closest_canonical (same array values and affine); see :func:`reorient`."""
        return reorient(self, "RAS")


class NiftiArray(NiftiImage):
    """An in-memory NIfTI image (what :func:`reorient` returns): array, header and affine."""

    def __init__(self, data: np.ndarray, nib_image: Any, slope: float | None, inter: float | None,
                 path: str | None = None):
        self._nib = nib_image
        self.header = nib_image.header
        self.path = path or "<memory>"
        self.caching, self.affine_source = "fill", "best"
        self._file, self._gz, self._offset = None, False, 0
        self._stored = data.dtype
        self._shape = tuple(int(v) for v in data.shape)
        self._slope, self._inter = slope, inter
        self._cache = data

    @property
    def data(self) -> np.ndarray:
        """The stored values (x fastest, like nibabel's arrays)."""
        return self._cache

    def uncache(self) -> None:
        """Nothing to drop: the array is the image."""


def reorient(img: NiftiImage, target: str = "RAS", *, dtype: Any = None, device: str = "cpu") -> NiftiArray:
    """The image with its axes permuted and flipped so they point to `target` (e.g. "RAS",
    "LPS"), and the affine updated to match: the same array and affine as nibabel's
    ``as_reoriented(ornt_transform(io_orientation(affine), axcodes2ornt(target)))``.

    The data move is one pass of the core's cache-blocked, threaded permute+flip. Axes past
    the third (time, ...) are kept in place. dtype=np.float32 / np.float64 also applies
    scl_slope/scl_inter in that pass (the values of ``img.read(dtype=...)``, reoriented; the
    result then has no scaling left). device="cuda" moves the data on the GPU (the CUDA twin of
    the kernel, CuPy needed): the result's ``data`` is a CuPy array.
    """
    import nibabel as nib
    from nibabel import orientations as no

    if not isinstance(img, NiftiImage):
        raise InvalidArgumentError(f"reorient takes a NIfTI image from voxcore.open (got={type(img).__name__})")
    codes = tuple(str(target).upper())
    if len(codes) != 3 or {c for c in codes} - set("LRAPSI") or len({no.axcodes2ornt((c,))[0][0]
                                                                    for c in codes}) != 3:
        raise InvalidArgumentError(f"target must name three different axes from L/R, A/P, S/I (got={target!r:.20})")
    if img.ndim < 3:
        raise InvalidArgumentError(f"reorient needs 3 spatial axes (shape={img.shape})")
    if device not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"device must be 'cpu' or 'cuda' (got={device!r:.20})")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise InvalidArgumentError(f"scaled reorientation needs float32 or float64 (got={dtype})")
    affine = img.affine
    ornt = no.ornt_transform(no.io_orientation(affine), no.axcodes2ornt(codes))
    src = img.read()
    n = src.ndim
    # nibabel: flip the input axes marked -1, then transpose by argsort(ornt[:, 0]).
    perm = list(np.argsort(ornt[:, 0]).astype(int)) + list(range(3, n))
    flips = [bool(ornt[p, 1] == -1) if j < 3 else False for j, p in enumerate(perm)]
    # The arrays are x-fastest (Fortran order): run the C-order kernel on the transposed views.
    perm_t = [n - 1 - perm[n - 1 - k] for k in range(n)]
    flips_t = [flips[n - 1 - k] for k in range(n)]
    slope, inter = img._slope, img._inter
    scaled = dtype is not None
    if scaled and src.dtype.kind not in "iuf":
        raise InvalidArgumentError(f"scaled reorientation needs integer or float data (got={src.dtype})")
    if device == "cpu":
        _check_memory(src.size * (dtype.itemsize if scaled else src.dtype.itemsize),
                      f"reorient of {os.path.basename(str(img.path))}: the moved array")
    if device == "cuda":
        moved = _reorient_device(src, perm_t, flips_t, dtype, slope, inter)
    elif src.dtype.fields is not None:  # RGB records: move their bytes, a last axis kept in place
        as_bytes = np.ascontiguousarray(src.T)[..., None].view(np.uint8)
        moved = _core.permute_flip(as_bytes, perm_t + [n], flips_t + [False])
        moved = moved.view(src.dtype)[..., 0].T
    elif scaled:
        moved = _core.permute_flip(src.T, perm_t, flips_t, dtype, 1.0 if slope is None else slope,
                                   0.0 if inter is None else inter).T
    else:
        moved = _core.permute_flip(src.T, perm_t, flips_t).T
    new_affine = affine @ no.inv_ornt_aff(ornt, src.shape)
    cls = nib.Nifti2Image if isinstance(img._nib, (nib.Nifti2Image, nib.Nifti2Pair)) else nib.Nifti1Image
    header = img.header.copy()
    if scaled:
        header.set_data_dtype(dtype)
        header.set_slope_inter(np.nan, np.nan)
        slope = inter = None
    out = cls(moved if device == "cpu" else np.empty((0,) * n, dtype or src.dtype), new_affine, header=header)
    # nibabel recodes a moved affine as sform aligned / qform unknown. The world is the source's,
    # so the source's codes stay and each coded form is moved with the voxels (a source that
    # codes neither form keeps nibabel's aligned sform: an uncoded affine would be lost).
    q_code, s_code = int(img.header["qform_code"]), int(img.header["sform_code"])
    if q_code or s_code:
        to_src = no.inv_ornt_aff(ornt, src.shape)  # new voxel -> source voxel
        out.header.set_sform(img.header.get_sform() @ to_src if s_code else None, code=s_code)
        out.header.set_qform(img.header.get_qform() @ to_src if q_code else None, code=q_code)
    if device == "cuda":
        out.header.set_data_shape(moved.shape)
    return NiftiArray(moved, out, slope, inter, img.path)


def _reorient_device(src: np.ndarray, perm_t: list[int], flips_t: list[bool], dtype: np.dtype | None,
                     slope: float | None, inter: float | None):
    """permute_flip on the current CUDA device (CuPy's current stream), then scaling there."""
    try:
        import cupy as cp
    except ImportError:
        raise ImportError("device='cuda' needs CuPy: pip install 'voxcore[gpu]'") from None
    if src.dtype.fields is not None:
        raise InvalidArgumentError("device='cuda' handles numeric data (RGB records: use the CPU)")
    dev = cp.asarray(src)
    shape_t = tuple(src.shape[::-1][p] for p in perm_t)  # the kernel's (C-order) output shape
    out = cp.empty(shape_t[::-1], src.dtype)
    stream = cp.cuda.get_current_stream().ptr
    _core.cuda_permute_flip(dev.T, out.T, perm_t, flips_t, stream)
    if dtype is None:
        return out
    res = out.astype(dtype)
    if slope is not None and slope != 1.0:
        res *= dtype.type(slope)
    if inter is not None and inter != 0.0:
        res += dtype.type(inter)
    return res


def _field_of(message: str) -> str:
    """The header field a nibabel error message is about, as a prefix ("" when unknown)."""
    for key, field in (("data code", "datatype"), ("vox offset", "vox_offset"), ("intercept", "scl_inter"),
                       ("w2 should be", "qform quatern"), ("read length", "extension esize"),
                       ("slope", "scl_slope"), ("dim", "dim"), ("magic", "magic"), ("sizeof_hdr", "sizeof_hdr")):
        if key in message:
            return f"{field} "
    return ""


def _finite(affine: np.ndarray, what: str, path: str) -> np.ndarray:
    if not np.isfinite(affine).all():
        raise InvalidMetadataError(f"{os.path.basename(str(path))}: the {what} holds NaN or inf")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InvalidMetadataError(f"{os.path.basename(str(path))}: the {what} is singular (a zero row or column)")
    return affine


def _check_memory(nbytes: int, what: str) -> None:
    """LimitExceededError before an allocation of nbytes that cannot fit in memory."""
    _resources.check_allocation(int(nbytes), what)


def _alloc(nbytes: int, what: str) -> np.ndarray:
    """An uninitialised uint8 buffer of nbytes, refused (LimitExceededError) when it cannot fit:
    checked against the memory available first, and a MemoryError (an address-space limit) is
    reported the same way."""
    _check_memory(nbytes, what)
    try:
        return np.empty(nbytes, np.uint8)
    except MemoryError:
        raise LimitExceededError(f"{what}: {nbytes} bytes cannot be allocated in this process") from None


def _expand(index: tuple, ndim: int) -> tuple | None:
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


_SPACE_CODES = {"meter": "meter", "millimeter": "mm", "micrometer": "micron"}
_TIME_CODES = {"second": "sec", "millisecond": "msec", "microsecond": "usec"}


def _as_nifti(obj: Any) -> tuple[np.ndarray, np.ndarray, Any, float | None, float | None, tuple]:
    """(x-fastest array, affine, template header or None, slope, inter, units) for what save takes.

    A NIfTI image gives its header as the template, with the affine that header gives (sform,
    else qform, else pixdim; whatever affine_source the image was opened with): its forms are
    written as they are."""
    if isinstance(obj, NiftiImage):
        affine = np.array(obj.header.get_best_affine(), dtype=np.float64)
        return obj.read(), affine, obj.header, obj._slope, obj._inter, obj.units
    from ..pyramid import MemoryImage, Pyramid, from_array

    if isinstance(obj, Pyramid):
        obj = obj.image
    if not isinstance(obj, MemoryImage):
        obj = from_array(obj)
    # OME order is t, c, z, y, x (x fastest in C order): reversed, it is NIfTI's x, y, z, t.
    data = np.asarray(obj.data if obj.in_memory else obj.data[...])
    dims = obj.dims
    if "c" in dims and obj.shape[dims.index("c")] != 1:
        raise InvalidArgumentError(f"NIfTI has no channel axis: save one channel at a time (dims={dims})")
    keep = [i for i, d in enumerate(dims) if d != "c"]
    data = data.reshape([obj.shape[i] for i in keep])
    rev = keep[::-1]
    space = [i for i in rev if dims[i] in ("x", "y", "z")]
    affine = np.eye(4)
    for k, i in enumerate(space):
        affine[k, k] = obj.scale[i]
        affine[k, 3] = obj.translation[i]
    units = tuple(obj.units[i] for i in rev)
    kept = getattr(obj, "nifti_affine", None)  # a NIfTI image's own affine (rotations included)
    # the header of the NIfTI image this one was made from, if it kept it: its data are that
    # image's stored values, so its forms, codes and scaling still apply
    header = getattr(obj, "nifti_header", None)
    slope = inter = None
    if header is not None:
        slope, inter = (float(header["scl_slope"]), float(header["scl_inter"]))
        if slope == 0 or not math.isfinite(slope):
            slope = inter = None  # no scaling, as the reader treats it
        elif not math.isfinite(inter):
            inter = None
    return data.T, (affine if kept is None else np.asarray(kept, dtype=np.float64)), header, slope, inter, units


def _with_path(e: OSError, path: str) -> OSError:
    """e as an OSError of the same errno (and subclass) that names the target path."""
    return OSError(e.errno, e.strerror or str(e), path)


def _remove_stale_temps(directory: str) -> None:
    """Remove the NIfTI temp files (NAME.tmp-PID, NAME a NIfTI file name) that writers which no
    longer run left in directory. Files of live writers, other names and directories stay; a
    file that cannot be removed is left for the next save."""
    for name in _resources.stale_temp_files(directory):
        stem, sep, _ = name.rpartition(".tmp-")
        if not sep or not stem.lower().endswith(SUFFIXES):
            continue
        full = os.path.join(directory, name)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.remove(full)
        except OSError:
            pass


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


def save_nifti(obj: Any, path: str, level: int = 1, durable: bool = True, overwrite: bool = False) -> str:
    """Write obj as NIfTI-1 (NIfTI-2 when a dimension exceeds 32767): .nii, or .nii.gz compressed
    in parallel as independent gzip members (ISA-L at level <= 3).

    A NIfTI source keeps its header: qform and sform with their codes as they are. A fresh image
    gets sform and qform both holding the affine (qform: its rigid part), codes 2.
    The file appears whole: it is written to PATH.tmp-PID, fsync'd (durable) and renamed over
    path; temp files of dead writers in the directory are removed first. An OS error (disk full,
    file too large, I/O error) raises OSError with its errno and path as filename; the temp file
    is removed and a file already at path is left as it was."""
    import io

    import nibabel as nib

    data, affine, template, slope, inter, units = _as_nifti(obj)
    if data.ndim < 1 or data.ndim > 7:
        raise InvalidArgumentError(f"NIfTI holds 1 to 7 dimensions (got={data.ndim})")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(errno.EEXIST, "the target exists (pass overwrite=True)", path)
    big = any(s > 32767 for s in data.shape)
    cls = nib.Nifti2Header if big or isinstance(template, nib.Nifti2Header) else nib.Nifti1Header
    # from_header keeps the template's fields (description, intent, qform/sform and their codes,
    # extensions of the same class)
    hdr = cls() if template is None else cls.from_header(template)
    if data.dtype.fields is None and not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
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
    hdr["vox_offset"] = 0  # let nibabel place the data after the header and its extensions
    head = io.BytesIO()
    hdr.write_to(head)
    offset = int(hdr["vox_offset"])
    head.write(b"\0" * (offset - head.tell()))
    payload = np.ascontiguousarray(data.T).reshape(-1).view(np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temps(directory)
    tmp = f"{path}.tmp-{os.getpid()}"
    with _WRITING_LOCK:
        if tmp in _WRITING:
            raise FileExistsError(errno.EEXIST, "another thread of this process is saving to this path", path)
        _WRITING.add(tmp)
    try:
        if os.path.lexists(tmp):  # left by an earlier process that had this PID (a restarted container)
            os.remove(tmp)
        with open(tmp, "xb") as f:
            if path.lower().endswith(".gz"):
                import gzip

                f.write(gzip.compress(head.getvalue(), compresslevel=1, mtime=0))
                # slice by slice (whole 4 MiB members each), written by Python so that a failed
                # write keeps its errno; the same stream as one call over the whole payload
                for lo in range(0, max(len(payload), 1), _SAVE_SLICE):
                    f.write(memoryview(_core.gzip_members(payload[lo:lo + _SAVE_SLICE], level)))
            else:
                f.write(head.getvalue())
                f.write(memoryview(payload))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _resources.fsync_dir(directory)
    except OSError as e:
        raise _with_path(e, path) from e
    finally:
        try:
            os.remove(tmp)  # after a failure (renamed away on success)
        except OSError:
            pass  # absent, or left for the next save into this directory
        with _WRITING_LOCK:
            _WRITING.discard(tmp)
    return path
