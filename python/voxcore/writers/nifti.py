"""NIfTI saves: the file appears whole (temp file, fsync, rename), .nii.gz compressed in parallel."""

from __future__ import annotations

import errno
import math
import os
import stat
import tempfile
import threading
from typing import Any

import numpy as np

from .. import _resources
from .._core import gzip_members
from ..errors import InvalidArgumentError
from ..formats.nifti import SUFFIXES, build_header
from ..images.model import ImageModel
from ..operations.pyramid import as_pyramid

_SAVE_SLICE = 64 << 20  # payload bytes compressed per gzip_members call while saving
_WRITING: set[str] = set()  # temp files this process is writing now (its threads' saves)
_WRITING_LOCK = threading.Lock()


def _as_nifti(obj: Any) -> tuple[np.ndarray, np.ndarray, Any, float | None, float | None, tuple]:
    """(x-fastest array, affine, template header or None, slope, inter, units) for what save takes.

    A NIfTI image gives its header as the template, with the affine that header gives (sform,
    else qform, else pixdim; whatever affine_source the image was opened with): its forms are
    written as they are."""
    parts = obj.nifti_parts() if isinstance(obj, ImageModel) else None
    if parts is not None:
        return parts
    obj = as_pyramid(obj).image
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


def pair_paths(path: str) -> tuple[str, str] | None:
    """(header, image) paths of the .hdr/.img pair that path names (either file, each .gz
    when path is), or None for a single-file path."""
    low = path.lower()
    gz = ".gz" if low.endswith(".gz") else ""
    stem = path[:len(path) - len(gz)]
    if not stem.lower().endswith((".hdr", ".img")):
        return None
    stem = stem[:-4]
    return f"{stem}.hdr{gz}", f"{stem}.img{gz}"


def _as_dtype(data: np.ndarray, slope: float | None, inter: float | None, dtype: Any
              ) -> tuple[np.ndarray, Any, float | None, float | None]:
    """(geometry of the stored array, payload, slope, inter) for storing data's values as dtype,
    with the scl_slope / scl_inter nibabel's array writers choose (its rounding, clipping and
    NaN handling too): nibabel reads back what it would have written."""
    from nibabel.arraywriters import WriterError, make_array_writer

    try:
        out = np.dtype(dtype)
    except TypeError as e:
        raise InvalidArgumentError(f"dtype: not a dtype (got={dtype!r:.40}; {e})") from None
    values = data if slope is None else data * np.float64(slope) + np.float64(inter or 0.0)
    if out == values.dtype:
        return values, np.ascontiguousarray(values.T).reshape(-1).view(np.uint8), None, None
    try:
        writer = make_array_writer(values, out, True, True)
    except (WriterError, TypeError, ValueError) as e:
        raise InvalidArgumentError(f"NIfTI cannot store these values as {out} ({e})") from None
    import io

    buf = io.BytesIO()
    writer.to_fileobj(buf, order="F")
    payload = np.frombuffer(buf.getbuffer(), np.uint8)
    geometry = np.lib.stride_tricks.as_strided(np.zeros(1, out), data.shape, (0,) * data.ndim)
    s, i = getattr(writer, "slope", 1.0), getattr(writer, "inter", 0.0)
    if float(s) == 1.0 and float(i) == 0.0:
        return geometry, payload, None, None
    return geometry, payload, float(s), float(i)


def save_nifti(obj: Any, path: str, level: int = 1, durable: bool = True, overwrite: bool = False,
               dtype: Any = None) -> str:
    """Write obj as NIfTI-1 (NIfTI-2 when a dimension exceeds 32767): .nii, or .nii.gz compressed
    in parallel as independent gzip members (ISA-L at level <= 3); a .hdr / .img path (or
    .img.gz) writes the pair, header in the .hdr (magic "ni1"), data from offset 0 of the .img,
    as nibabel's Nifti1Pair reads it.

    A NIfTI source keeps its header: qform and sform with their codes as they are. A fresh image
    gets sform and qform both holding the affine (qform: its rigid part), codes 2.
    Each file appears whole: it is written to PATH.tmp-PID, fsync'd (durable) and renamed over
    its path (a pair: the .img first, then the .hdr); temp files of dead writers in the directory
    are removed first. An OS error (disk full, file too large, I/O error) raises OSError with its
    errno and path as filename; the temp file is removed and a file already at path is left as
    it was. Returns the path of the header (the .nii itself for a single file).

    dtype: the on-disk type; the values (scaled by the source's slope and intercept) are stored
    with the scl_slope / scl_inter nibabel chooses for that type, as nibabel's
    ``set_data_dtype`` + ``save`` do."""
    data, affine, template, slope, inter, units = _as_nifti(obj)
    if data.ndim < 1 or data.ndim > 7:
        raise InvalidArgumentError(f"NIfTI holds 1 to 7 dimensions (got={data.ndim})")
    pair = pair_paths(path)
    targets = [path] if pair is None else list(pair)
    for p in targets:
        if os.path.exists(p) and not overwrite:
            raise FileExistsError(errno.EEXIST, "the target exists (pass overwrite=True)", p)
    if data.dtype.fields is None and not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    if dtype is not None:
        data, payload, slope, inter = _as_dtype(data, slope, inter, dtype)
    else:
        payload = np.ascontiguousarray(data.T).reshape(-1).view(np.uint8)
    _, head = build_header(data, affine, template, slope, inter, units, pair=pair is not None)
    _remove_stale_temps(os.path.dirname(os.path.abspath(path)))
    if pair is None:
        _write_whole(path, [head, payload], level, durable)
        return path
    _write_whole(pair[1], [payload], level, durable)
    _write_whole(pair[0], [head], level, durable)
    return pair[0]


def save_nifti_remote(obj: Any, file: Any, level: int = 1, overwrite: bool = False, dtype: Any = None) -> str:
    """save_nifti to a file behind a URL (a voxcore._files.RemoteFile): written to a local
    temporary directory first (as :func:`save_nifti` writes it), then each file uploaded by one
    PUT, a pair's .img before its .hdr. An object is replaced whole or not at all, so a failed
    upload leaves the object that was there. Returns the header's URL."""
    pair = pair_paths(file.path)
    targets = [file] if pair is None else [file.sibling(pair[1]), file.sibling(pair[0])]
    for t in targets:
        if not overwrite and t.isfile():
            raise FileExistsError(errno.EEXIST, "the target exists (pass overwrite=True)", t.path)
    with tempfile.TemporaryDirectory(prefix="voxcore-upload-") as d:
        local = os.path.join(d, file.name)
        save_nifti(obj, local, level=level, durable=False, overwrite=True, dtype=dtype)
        local_pair = pair_paths(local)
        for t, src in zip(targets, [local] if local_pair is None else [local_pair[1], local_pair[0]]):
            t.put(src)
    return file.path if pair is None else pair[0]


def _write_whole(path: str, parts: list, level: int, durable: bool) -> None:
    """parts (bytes / uint8 arrays) as the file at path, gzip members when it ends in .gz: a
    temp file beside it, fsync'd (durable) and renamed over it; OSError names path."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp-{os.getpid()}"
    with _WRITING_LOCK:
        if tmp in _WRITING:
            raise FileExistsError(errno.EEXIST, "another thread of this process is saving to this path", path)
        _WRITING.add(tmp)
    try:
        if os.path.lexists(tmp):  # left by an earlier process that had this PID (a restarted container)
            os.remove(tmp)
        with open(tmp, "xb") as f:
            gz = path.lower().endswith(".gz")
            for part in parts:
                if not gz:
                    f.write(memoryview(part))
                elif isinstance(part, bytes):
                    import gzip

                    f.write(gzip.compress(part, compresslevel=1, mtime=0))
                else:
                    # slice by slice (whole 4 MiB members each), written by Python so that a
                    # failed write keeps its errno; the same stream as one call over the whole
                    for lo in range(0, max(len(part), 1), _SAVE_SLICE):
                        f.write(memoryview(gzip_members(part[lo:lo + _SAVE_SLICE], level)))
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
