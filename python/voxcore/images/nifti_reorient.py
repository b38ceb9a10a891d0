"""Reorientation of a NIfTI image: nibabel's orientation algebra, the core's permute+flip.

The plan (which axes to permute and flip, the new affine and header) is nibabel's
``as_reoriented(ornt_transform(io_orientation(affine), axcodes2ornt(target)))``; the data move
is one pass of the core's cache-blocked, threaded permute+flip (or its CUDA twin).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._core import cuda_permute_flip, permute_flip
from ..errors import InvalidArgumentError
from .nifti_io import check_memory


def axis_codes(codes: Any, what: str) -> tuple[str, ...]:
    """Three nibabel axis codes (where each axis points: one of L/R, A/P, S/I each), checked."""
    from nibabel import orientations as no

    out = tuple(str(codes).upper())
    if len(out) != 3 or set(out) - set("LRAPSI") or len({no.axcodes2ornt((c,))[0][0] for c in out}) != 3:
        raise InvalidArgumentError(f"{what} must name three different axes from L/R, A/P, S/I (got={codes!r:.20})")
    return out


def reoriented(img: Any, target: str, dtype: Any, device: str) -> tuple:
    """(moved array, nibabel image with the new header and affine, slope, inter) of a NIfTI
    image reoriented to target (see :func:`voxcore.reorient`)."""
    import nibabel as nib
    from nibabel import orientations as no

    codes = axis_codes(target, "target")
    if img.ndim < 2:
        raise InvalidArgumentError(f"reorient needs 2 or 3 spatial axes (shape={img.shape})")
    if device not in ("cpu", "cuda"):
        raise InvalidArgumentError(f"device must be 'cpu' or 'cuda' (got={device!r:.20})")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise InvalidArgumentError(f"scaled reorientation needs float32 or float64 (got={dtype})")
    affine = img.affine
    ornt = no.ornt_transform(no.io_orientation(affine), no.axcodes2ornt(codes))
    src = img.read()
    plane = src.ndim == 2  # a 2-D image is the volume (x, y, 1) (NIfTI's dim[3] = 1)
    if plane:
        src = src[..., None]
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
        check_memory(src.size * (dtype.itemsize if scaled else src.dtype.itemsize),
                      f"reorient of {os.path.basename(str(img.path))}: the moved array")
    if device == "cuda":
        moved = _reorient_device(src, perm_t, flips_t, dtype, slope, inter)
    elif src.dtype.fields is not None:  # RGB records: move their bytes, a last axis kept in place
        as_bytes = np.ascontiguousarray(src.T)[..., None].view(np.uint8)
        moved = permute_flip(as_bytes, perm_t + [n], flips_t + [False])
        moved = moved.view(src.dtype)[..., 0].T
    elif scaled:
        moved = permute_flip(src.T, perm_t, flips_t, dtype, 1.0 if slope is None else slope,
                                   0.0 if inter is None else inter).T
    else:
        moved = permute_flip(src.T, perm_t, flips_t).T
    new_affine = affine @ no.inv_ornt_aff(ornt, src.shape)
    if plane and perm[2] == 2:  # the plane stays the target's first two axes: still 2-D
        moved = moved[..., 0]
    cls = nib.Nifti2Image if isinstance(img._nib, (nib.Nifti2Image, nib.Nifti2Pair)) else nib.Nifti1Image
    header = img.header.copy()
    if scaled:
        header.set_data_dtype(dtype)
        header.set_slope_inter(np.nan, np.nan)
        slope = inter = None
    out = cls(moved if device == "cpu" else np.empty((0,) * moved.ndim, dtype or src.dtype), new_affine,
              header=header)
    # nibabel recodes a moved affine as sform aligned / qform unknown. The world is the source's,
    # so the source's codes stay and each coded form is moved with the voxels (a source that
    # codes neither form keeps nibabel's aligned sform: an uncoded affine would be lost).
    nifti = hasattr(img.header, "get_sform")  # (an Analyze 7.5 header has no forms: nibabel's sform)
    q_code, s_code = (int(img.header["qform_code"]), int(img.header["sform_code"])) if nifti else (0, 0)
    if q_code or s_code:
        to_src = no.inv_ornt_aff(ornt, src.shape)  # new voxel -> source voxel
        out.header.set_sform(img.header.get_sform() @ to_src if s_code else None, code=s_code)
        out.header.set_qform(img.header.get_qform() @ to_src if q_code else None, code=q_code)
    if device == "cuda":
        out.header.set_data_shape(moved.shape)
    return moved, out, slope, inter


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
    cuda_permute_flip(dev.T, out.T, perm_t, flips_t, stream)
    if dtype is None:
        return out
    res = out.astype(dtype)
    if slope is not None and slope != 1.0:
        res *= dtype.type(slope)
    if inter is not None and inter != 0.0:
        res += dtype.type(inter)
    return res

