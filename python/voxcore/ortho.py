"""Three orthogonal slices of a volume in one PNG, at physical aspect ratio (matplotlib).

NIfTI images are shown in RAS+ (reoriented like nibabel's as_closest_canonical), neurological
convention: the subject's right on the right of the axial and coronal views, each side labelled
with its direction (R/L, A/P, S/I). OME-Zarr and Zarr images have no anatomical frame: sides are
labelled with the axis and its direction (x+, x-, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidArgumentError
from .images.registry import open as vc_open


def _planes(img: Any, level: int, at: Sequence[int] | None):
    """(name, 2-D array [rows=vertical axis bottom-up, cols=horizontal], (w_size, h_size), labels
    (left, right, bottom, top)) for the three planes through `at` (x, y, z voxels)."""
    if img.anatomical:  # NIfTI: shown in RAS+
        if level:
            raise InvalidArgumentError("an anatomical (NIfTI) image has one level")
        vol = img.canonical()
        data = vol.read()
        while data.ndim > 3:
            data = data[..., 0]
        if data.ndim != 3 or data.dtype.fields is not None:
            raise InvalidArgumentError(f"view needs a 3-D scalar image (shape={img.shape}, dtype={img.dtype})")
        sx, sy, sz = (float(v) for v in vol.scale[:3])
        xyz = data  # x, y, z = R, A, S
        names = (("L", "R"), ("P", "A"), ("I", "S"))
    else:
        dims = tuple(img.dims)
        space = [d for d in dims if d in ("x", "y", "z")]
        if space != ["z", "y", "x"] or any(img.levels[level].shape[i] != 1 for i, d in enumerate(dims)
                                           if d not in ("x", "y", "z")):
            raise InvalidArgumentError(f"view needs one z, y, x volume (dims={dims})")
        region = tuple(0 if d not in ("x", "y", "z") else slice(None) for d in dims)
        zyx = img.read(region, level=level)
        xyz = zyx.transpose(2, 1, 0)
        scale = img.levels[level].scale
        sz, sy, sx = (float(scale[dims.index(d)]) for d in ("z", "y", "x"))
        names = (("x-", "x+"), ("y-", "y+"), ("z-", "z+"))
    nx, ny, nz = xyz.shape
    cx, cy, cz = (n // 2 for n in xyz.shape) if at is None else (int(v) for v in at)
    for c, n, a in ((cx, nx, "x"), (cy, ny, "y"), (cz, nz, "z")):
        if not 0 <= c < n:
            raise InvalidArgumentError(f"--at {a}={c} is outside the volume (0..{n - 1})")
    return [
        ("axial", xyz[:, :, cz].T, (nx * sx, ny * sy), names[0] + names[1]),
        ("coronal", xyz[:, cy, :].T, (nx * sx, nz * sz), names[0] + names[2]),
        ("sagittal", xyz[cx, :, :].T, (ny * sy, nz * sz), names[1] + names[2]),
    ]


def ortho(source: Any, out: str | os.PathLike, level: int = 0, at: Sequence[int] | None = None) -> str:
    """Write three orthogonal slices of `source` (a path or an opened image) through voxel `at`
    (x, y, z; default the centre) to the PNG `out`; returns its path."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("voxcore view needs matplotlib: pip install 'voxcore[view]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = vc_open(source) if isinstance(source, (str, os.PathLike)) else source
    planes = _planes(img, int(level), at)
    values = np.concatenate([p[1].ravel().astype(np.float64) for p in planes])
    finite = values[np.isfinite(values)]
    lo, hi = (np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0))
    widths = [p[2][0] for p in planes]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), gridspec_kw={"width_ratios": widths})
    for ax, (name, plane, (w, h), (left, right, bottom, top)) in zip(axes, planes):
        ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, origin="lower",
                  extent=(0, w, 0, h), interpolation="nearest")
        ax.set_aspect("equal")
        ax.set_title(name, color="white")
        ax.set_xticks([])
        ax.set_yticks([])
        style = {"color": "yellow", "fontsize": 12, "fontweight": "bold"}
        ax.text(0.02, 0.5, left, transform=ax.transAxes, ha="left", va="center", **style)
        ax.text(0.98, 0.5, right, transform=ax.transAxes, ha="right", va="center", **style)
        ax.text(0.5, 0.02, bottom, transform=ax.transAxes, ha="center", va="bottom", **style)
        ax.text(0.5, 0.98, top, transform=ax.transAxes, ha="center", va="top", **style)
    fig.tight_layout()
    out = os.fspath(out)
    fig.savefig(out, dpi=100, facecolor="black")
    plt.close(fig)
    return out
