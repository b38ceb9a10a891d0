"""NiftiImage: NIfTI-1 / NIfTI-2 images read lazily; nibabel parses the header, the core moves the bytes.

The NIfTI image kind of the image model; its metadata mapping is :mod:`voxcore.formats.nifti`.

- .nii: regions are read with pread from the outermost axis range they touch, never the rest.
- .nii.gz (and .img.gz): a whole read inflates the stream once by libdeflate (any number of
  gzip members) into one buffer, kept while caching="fill" (nibabel's default) until uncache().
  A region read streams instead: the bytes before the outermost-axis span it touches are
  inflated in bounded windows and dropped, the span is inflated into its buffer, and the rest
  of the stream is never read, so a region costs its span in memory whatever the header
  claims. Only with caching="fill" and an image of at most REGION_FILL_MAX bytes does a region
  read inflate and keep the whole image (repeated slicing then inflates once).
- Bytes after the image inside a .gz stream are checked (every member) and ignored, as nibabel
  ignores them; bytes that are not gzip are refused.

Every buffer a read allocates (the result, the span, the whole image) is checked against the
memory available first (LimitExceededError).

Values: read() gives the stored values in the stored type (byte-swapped to native order);
read(dtype=np.float32) applies scl_slope/scl_inter like nibabel (not when the slope is 0 or
NaN). The numpy shape is nibabel's (x, y, z, t, ...): the file is x-fastest (Fortran order).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from ..errors import (
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
)
from ..formats import nifti as meta
from ..formats.nifti import AFFINE_SOURCES, DIMS
from .memory import from_array
from .model import ImageModel, copy_into
from .._files import LocalFile, RemoteFile
from .nifti_io import alloc_bytes, check_memory, expand
from .nifti_reorient import reoriented

# caching="fill": a region read of a .gz image up to this size inflates and keeps the whole image;
# beyond it, region reads stream their span (a whole read() still fills the cache).
REGION_FILL_MAX = 256 << 20


def _is_nibabel_image(source: Any) -> bool:
    """A nibabel NIfTI-1/2 image (or pair) object."""
    if type(source).__module__.split(".")[0] != "nibabel":
        return False
    import nibabel as nib

    return isinstance(source, (nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair))


def _file_of(source: Any, path: str | None) -> LocalFile | RemoteFile | None:
    """The file source (joined with path) names: a local path or a URL's RemoteFile."""
    if isinstance(source, (LocalFile, RemoteFile)):
        if path:
            return None
        return source
    if not isinstance(source, (str, os.PathLike)):
        return None
    root = os.fspath(source)
    return LocalFile(os.path.join(root, path) if path else root)


def opens(source: Any, path: str | None) -> bool:
    """Whether source (joined with path) names a NIfTI file (or either half of a pair, local or
    behind a URL), or is a nibabel NIfTI image."""
    if _is_nibabel_image(source):
        return True
    file = _file_of(source, path)
    return file is not None and meta.is_nifti_path(file)


def from_nibabel(img: Any) -> NiftiArray:
    """A nibabel NIfTI image as a voxcore image: its stored values (read once), header and
    affine; saving it writes what nibabel would."""
    header = img.header
    proxy = img.dataobj
    stored = np.asarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asarray(proxy)
    slope, inter = header.get_slope_inter()
    clean = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    slope, inter = clean(slope), clean(inter)
    if slope == 0:
        slope = inter = None
    data = stored if stored.dtype.isnative else stored.astype(stored.dtype.newbyteorder("="))
    data = np.asfortranarray(data)
    data.flags.writeable = False
    return NiftiArray(data, img, slope, inter, getattr(img, "get_filename", lambda: None)() or None)


def nifti_from_array(data: Any, affine: Any, header: Any = None) -> NiftiArray:
    """A NIfTI image from data in NIfTI order (x, y, z[, t, ...], as nibabel's arrays) and a 4x4
    affine (+ a nibabel header whose other fields are kept), no nibabel object needed."""
    import nibabel as nib

    arr = np.asarray(data)
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.isfinite(aff).all():
        raise InvalidArgumentError(f"affine must be a finite 4x4 matrix (got shape={aff.shape})")
    if not 1 <= arr.ndim <= 7:
        raise InvalidArgumentError(f"NIfTI holds 1 to 7 dimensions (got={arr.ndim})")
    big = any(n > 32767 for n in arr.shape)
    try:
        img = (nib.Nifti2Image if big else nib.Nifti1Image)(arr, aff, header=header)
    except Exception as e:  # noqa: BLE001 -- nibabel's HeaderDataError and friends
        raise InvalidArgumentError(f"NIfTI cannot hold this data ({e})") from None
    return from_nibabel(img)


def open_image(source: Any, path: str | None = None, *, caching: str = "fill", affine_source: str = "best",
               **_other: Any) -> NiftiImage:
    """A NIfTI file opened lazily (see :func:`voxcore.open` for the options), or a nibabel image."""
    if _is_nibabel_image(source):
        return from_nibabel(source)
    file = _file_of(source, path)
    return NiftiImage(file.path if isinstance(file, LocalFile) else file, caching=caching,
                      affine_source=affine_source)


class NiftiImage(ImageModel):
    """A NIfTI image opened lazily by :func:`voxcore.open`; the header is nibabel's.

    ``vc.NiftiImage(data, affine, header=None)`` builds one in memory instead: data in NIfTI
    order (x, y, z[, t]) as nibabel's arrays, a 4x4 affine, optionally a nibabel header whose
    other fields are kept (see :func:`nifti_from_array`)."""

    def __new__(cls, source: Any = None, *args: Any, **kwargs: Any):
        if cls is NiftiImage and source is not None and not isinstance(source, (str, os.PathLike, LocalFile,
                                                                                RemoteFile)):
            return nifti_from_array(source, *args, **kwargs)  # NiftiArray.__init__ then sees it is ready
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike | RemoteFile, caching: str = "fill", affine_source: str = "best"):
        file = path if isinstance(path, (LocalFile, RemoteFile)) else LocalFile(os.fspath(path))
        self.path = path if isinstance(path, (str, os.PathLike)) else file.path
        if caching not in ("fill", "unchanged"):
            raise InvalidArgumentError(f"caching must be 'fill' or 'unchanged' (got={caching!r:.20})")
        if affine_source not in AFFINE_SOURCES:
            raise InvalidArgumentError(f"affine_source must be one of {AFFINE_SOURCES} (got={affine_source!r:.20})")
        h = meta.read_header(file)
        self.caching = caching
        self.affine_source = affine_source
        self._nib, self._file, self.header = h.image, h.file, h.image.header
        self._head_file = file  # what was opened (a pair's either half), for reopening
        self._gz, self._offset, self._stored, self._shape = h.gz, h.offset, h.stored, h.shape
        self._slope, self._inter = h.slope, h.inter
        self._cache: np.ndarray | None = None

    # -- description ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """The stored type in native byte order (RGB24/RGBA32 are structured u1 records)."""
        return self._stored.newbyteorder("=") if self._stored.fields is None else self._stored

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
            return meta.check_affine(np.array(self._nib.affine, dtype=np.float64), "affine (sform/qform/pixdim)", self.path)
        if not hasattr(h, "get_sform"):
            raise InvalidMetadataError(f"an Analyze 7.5 header has no {self.affine_source} "
                                       f"(affine_source='best' gives its affine): {self.path}")
        if self.affine_source == "sform":
            aff, code = h.get_sform(coded=True)
        elif self.affine_source == "qform":
            aff, code = h.get_qform(coded=True)
        else:
            aff, code = h.get_base_affine(), 1
        if aff is None or not code:
            raise InvalidMetadataError(f"the {self.affine_source} is not set (its code is 0) in {self.path}")
        return meta.check_affine(np.array(aff, dtype=np.float64), self.affine_source, self.path)

    @property
    def translation(self) -> tuple[float, ...]:
        """World position of voxel 0 on the spatial axes (affine column 3), then toffset for t."""
        t = [float(v) for v in self.affine[:3, 3]][:min(3, self.ndim)]
        if self.ndim > 3:
            t.append(float(self.header["toffset"]) if "toffset" in self.header else 0.0)
        return tuple(t + [0.0] * (self.ndim - len(t)))

    @property
    def units(self) -> tuple[str | None, ...]:
        if not hasattr(self.header, "get_xyzt_units"):  # Analyze 7.5: millimetres, no time unit
            return tuple(["millimeter"] * min(3, self.ndim) + [None] * (self.ndim - min(3, self.ndim)))
        space, time = self.header.get_xyzt_units()
        per = [meta.UNITS.get(space)] * min(3, self.ndim)
        if self.ndim > 3:
            per.append(meta.UNITS.get(time))
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
        what = f"{self._file.name}: the whole image {self._shape} {self.dtype}"
        if self._gz:
            raw = alloc_bytes(self._offset + self.nbytes, f"{what}, inflated")
            self._file.inflate_into(raw)
            raw = raw[self._offset:]
        else:
            raw = alloc_bytes(self.nbytes, what)
            self._file.pread_into(raw, self._offset)
        arr = raw.view(self._stored).reshape(self._shape, order="F")
        if self.caching == "fill":
            arr.flags.writeable = False
            self._cache = arr
        return arr

    @property
    def in_memory(self) -> bool:
        """Whether the whole image is held (nibabel's in_memory): after a whole read with
        caching="fill", until uncache()."""
        return self._cache is not None

    @property
    def slicer(self) -> _Slicer:
        """``img.slicer[...]``: a new in-memory image of the region with its affine moved and
        scaled as nibabel's slicer does (crops, steps and flips; spatial axes take slices, not
        integers), its header and scaling kept. Reads only the region."""
        return _Slicer(self)

    def _streams_regions(self) -> bool:
        """Whether a region read fetches only its span (else it inflates and keeps the whole: a
        small .gz, or any .gz behind a URL, whose stream is fetched whole either way)."""
        remote = isinstance(self._file, RemoteFile)
        return not (self._gz and self.caching == "fill" and (remote or self.nbytes <= REGION_FILL_MAX))

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

    def read(self, region: Any = None, *, level: int = 0, out: np.ndarray | None = None,
             dtype: Any = None, pad: bool = False) -> np.ndarray:
        """Stored values of a region (numpy indexing or {dim: index}); with dtype, scaled values.

        dtype=np.float32 / np.float64 gives scl_slope * stored + scl_inter, as nibabel's
        get_fdata (which is float64 only). Without dtype the stored values come back in native
        byte order; from a cached .gz image they may be a read-only view of the cache. RGB24 /
        RGBA32 images come back as records (fields R, G, B[, A]); they take no dtype.
        A region of a .nii reads only the outermost-axis range it touches; of a .nii.gz, it
        inflates the stream up to the end of that range, holding only the range (see the module
        notes for caching="fill"). out: a destination of the result's shape and dtype (then a
        copy, never the cache). pad=True: unit-step slices taken literally, 0 outside the image.
        A NIfTI image has one level (level=0). With caching="fill", a whole read (no region,
        out or pad) returns the same read-only array each time for the same dtype, as
        nibabel's get_fdata does; read(out=...) or np.array(...) gives a writable copy.
        """
        if level:
            self._level_image(level)  # raises: one level only
        if dtype is not None:
            dtype = self._scalar_dtype(dtype, "read(dtype=)")
            if dtype.kind != "f":
                raise InvalidArgumentError(f"scaled reads need a float dtype (got={dtype})")
        keep = region is None and not pad and out is None and self.caching == "fill"
        kept = getattr(self, "_whole", None)
        same = kept is not None and (kept[0] is None if dtype is None else kept[0] is not None and kept[0] == dtype)
        if keep and same:  # (np.dtype("f8") == None is True: None is compared by identity)
            return kept[1]  # nibabel's get_fdata contract: the same (read-only) array again
        if pad:
            data = self._read_padded(region)
        else:
            data = self._stored_values(self._index(region), whole=region is None)
        if dtype is not None:
            data = self._scaled(data, dtype)
        if keep:
            data.flags.writeable = False
            self._whole = (dtype, data)
        return copy_into(data, out)

    def _read_level0(self, region: Any) -> np.ndarray:
        return self._stored_values(region, whole=False)

    def _stored_values(self, index: tuple, whole: bool) -> np.ndarray:
        """The stored values at index in native byte order (a region of a file fetches only
        its outermost-axis span unless the whole image is cached or kept)."""
        data = None
        if self._cache is None and not whole and self._streams_regions():
            data = self._read_outer(index)
        if data is None:
            data = self._decoded()[index]
        if not data.dtype.isnative and data.dtype.fields is None:
            check_memory(data.nbytes, f"{os.path.basename(str(self.path))}: the values in native byte order")
            data = data.astype(data.dtype.newbyteorder("="))
        return data

    def _scaled(self, data: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """scl_slope * data + scl_inter as dtype, in a new array."""
        what = f"{os.path.basename(str(self.path))}: the values as {dtype}"
        check_memory(data.size * dtype.itemsize, what)
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
        index = expand(tuple(index), self.ndim)
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
        buf = alloc_bytes((hi - lo) * plane, f"{self._file.name}: the span {lo}:{hi} of axis "
                                        f"{DIMS[last]} that the region touches")
        (self._file.inflate_span if self._gz else self._file.pread_into)(buf, self._offset + lo * plane)
        part_shape = self._shape[:last] + (hi - lo,) + self._shape[last + 1:]
        out = buf.view(self._stored).reshape(part_shape, order="F")[rest]
        # a small region of a large span: keep its values, not the span
        return out.copy() if 2 * out.nbytes <= buf.nbytes else out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if dtype is not None:
            dtype = self._scalar_dtype(dtype, "__array__(dtype=)")
        a = self.read()
        if dtype is None or dtype == a.dtype:
            return a
        check_memory(a.size * dtype.itemsize, f"{os.path.basename(str(self.path))}: the values as {dtype}")
        return a.astype(dtype)

    def uncache(self) -> None:
        """Drop the decoded buffer (the next read inflates / reads the file again)."""
        self._cache = None
        self._whole = None

    # -- the image model ---------------------------------------------------------------------
    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def anatomical(self) -> bool:
        return True

    def canonical(self) -> NiftiArray:
        return reorient(self, "RAS")

    def to_dask(self, chunks: Any = None, level: int = 0):
        """A dask array of the stored values whose blocks (slabs along the slowest axis unless
        chunks says otherwise) are read by the core; tasks carry the path, never data."""
        return super().to_dask(level=level, chunks=chunks)

    def block_unit(self, level: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Any block (a file has no chunks); preferred: slabs along the slowest axis."""
        if level:
            self._level_image(level)
        last = max([i for i, s in enumerate(self.shape) if s > 1] or [0])
        return (1,) * self.ndim, tuple(1 if i == last else s for i, s in enumerate(self.shape))

    def reference(self) -> tuple | None:
        where = self._head_file if isinstance(self._head_file, RemoteFile) else os.path.abspath(str(self.path))
        return (NiftiImage, (where, self.caching, self.affine_source))

    def nifti_parts(self) -> tuple:
        """(x-fastest stored values, the header's own affine, header, slope, inter, units): a
        NIfTI save writes the header's forms as they are, whatever affine_source says. An
        Analyze 7.5 header has no forms: its image's affine (SPM's .mat when there is one)."""
        best = self.header.get_best_affine() if hasattr(self.header, "get_sform") else self._nib.affine
        affine = np.array(best, dtype=np.float64)
        return self.read(), affine, self.header, self._slope, self._inter, self.units

    def ome_image(self) -> Any:
        """An OME-ordered image (t, z, y, x) of this (x, y, z, t) image, without copying: the
        x-fastest array reversed is C-ordered. scale and translation come from the zooms and the
        affine's origin (toffset for t). A rotation or flip in the affine, which OME 0.4/0.5
        cannot express, is kept as the image's `nifti_affine` (saved under the group's
        "voxcore" attributes) and a warning says so."""
        data = self.read()
        n = data.ndim
        if n > 4:
            raise InvalidArgumentError(f"NIfTI images past 4-D have no OME axes (shape={data.shape})")
        dims = tuple(reversed(("x", "y", "z", "t")[:n]))
        affine = self.affine
        rot = affine[:3, :3]
        if not np.allclose(rot, np.diag(np.abs(np.diag(rot)))):
            warnings.warn(f"{self.path}: the affine's rotation/flips ({''.join(self.orientation)}) cannot be "
                          "stored in OME-Zarr 0.4/0.5; axes keep the file's order and the full affine is saved "
                          "in the group's 'voxcore' attributes", UserWarning, stacklevel=2)
        out = from_array(data.T, dims=dims, scale=tuple(reversed(self.scale)),
                         translation=tuple(reversed(self.translation)), units=tuple(reversed(self.units)),
                         name=os.path.basename(str(self.path)))
        out.nifti_affine = affine
        out.nifti_header = self.header  # a NIfTI save keeps the source's forms and codes
        return out

    def update_header(self) -> None:
        """Harmonise the header with the image, as nibabel's ``update_header``: its data shape,
        and, when the header's best affine is no longer the image's affine (the one it was
        opened or made with), that affine written into the sform (code aligned) and the qform
        (code unknown). A header edited by hand is what a NIfTI save writes until then."""
        self._nib.update_header()

    def as_closest_canonical(self) -> NiftiArray:
        """The image reoriented to the RAS+ axis order closest to its affine, as nibabel's
        as_closest_canonical (same array values and affine); see :func:`reorient`."""
        return reorient(self, "RAS")


class _Slicer:
    def __init__(self, img: NiftiImage):
        self._img = img

    def __getitem__(self, key: Any) -> NiftiArray:
        from nibabel.spatialimages import SpatialFirstSlicer

        img = self._img
        rules = SpatialFirstSlicer(img._nib)  # nibabel's rules (shape and affine only)
        try:
            canonical = rules.check_slicing(key)
        except ValueError as e:
            raise IndexError(*e.args) from None
        if any(k is None for k in canonical):
            raise IndexError("slicer: new axes are not allowed")
        affine = rules.slice_affine(canonical)
        stored = img.read(tuple(canonical))
        if any(n == 0 for n in stored.shape):
            raise IndexError(f"slicer: empty slice (shape={stored.shape})")
        stored = np.asfortranarray(stored)
        new = img._nib.__class__(stored, affine, img.header)
        stored.flags.writeable = False
        return NiftiArray(stored, new, img._slope, img._inter)


class NiftiArray(NiftiImage):
    """An in-memory NIfTI image (what :func:`reorient` returns): array, header and affine."""

    def __init__(self, data: np.ndarray, nib_image: Any = None, slope: float | None = None,
                 inter: float | None = None, path: str | None = None):
        if self.__dict__.get("_ready"):  # made by NiftiImage(data, affine): already whole
            return
        self._nib = nib_image
        self.header = nib_image.header
        self.path = path or "<memory>"
        self.caching, self.affine_source = "fill", "best"
        self._file, self._gz, self._offset = None, False, 0
        self._stored = data.dtype
        self._shape = tuple(int(v) for v in data.shape)
        self._slope, self._inter = slope, inter
        self._cache = data
        self._ready = True

    @property
    def data(self) -> np.ndarray:
        """The stored values (x fastest, like nibabel's arrays)."""
        return self._cache

    @property
    def in_memory(self) -> bool:
        return True

    def reference(self) -> tuple | None:
        return None  # no file holds these values

    def uncache(self) -> None:
        """Nothing to drop: the array is the image."""




def reorient(img: NiftiImage, target: str = "RAS", *, dtype: Any = None, device: str = "cpu") -> NiftiArray:
    """The image with its axes permuted and flipped so they point to `target` (e.g. "RAS",
    "LPS"), and the affine updated to match: the same array and affine as nibabel's
    ``as_reoriented(ornt_transform(io_orientation(affine), axcodes2ornt(target)))``.

    The data move is one pass of the core's cache-blocked, threaded permute+flip. Axes past
    the third (time, ...) are kept in place. A 2-D image is the volume (x, y, 1), reoriented
    as nibabel reorients that volume; the result stays 2-D when the plane keeps the target's
    first two axes, else it is the 3-D volume with its length-1 axis moved (nibabel itself
    refuses 2-D data unless it is already in the target orientation). dtype=np.float32 / np.float64 also applies
    scl_slope/scl_inter in that pass (the values of ``img.read(dtype=...)``, reoriented; the
    result then has no scaling left). device="cuda" moves the data on the GPU (the CUDA twin of
    the kernel, CuPy needed): the result's ``data`` is a CuPy array.
    """
    if not isinstance(img, NiftiImage):
        raise InvalidArgumentError(f"reorient takes a NIfTI image from voxcore.open (got={type(img).__name__})")
    moved, nib_image, slope, inter = reoriented(img, target, dtype, device)
    return NiftiArray(moved, nib_image, slope, inter, img.path)
