"""A 2-D image (a slide) as a PNG that fits a size: the finest level small enough, shrunk further
by block means when even the coarsest level is larger (matplotlib writes the PNG)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import InvalidArgumentError
from .images.registry import open as vc_open


def _fit_level(img: Any, size: int) -> int:
    """The finest level whose height and width both fit in size (else the coarsest)."""
    y, x = img.dims.index("y"), img.dims.index("x")
    for k, lv in enumerate(img.levels):
        if max(lv.shape[y], lv.shape[x]) <= size:
            return k
    return len(img.levels) - 1


def _rgb(img: Any, level: int) -> np.ndarray:
    """The level as (y, x, 3) or (y, x) values for a PNG: RGB as it is, channels scaled."""
    dims = img.dims
    if not {"y", "x"} <= set(dims) or any(d not in ("y", "x", "c") for d in dims):
        raise InvalidArgumentError(f"a 2-D view needs y, x (and c) axes (dims={dims})")
    data = img.read(level=level)
    order = [dims.index(d) for d in ("y", "x", "c") if d in dims]
    data = data.transpose(order)
    if data.ndim == 3 and data.shape[2] in (3, 4) and data.dtype == np.uint8:
        return data[..., :3]
    if data.ndim == 3:
        data = data[..., :3] if data.shape[2] >= 3 else data[..., 0]
    data = data.astype(np.float64)
    lo, hi = np.percentile(data, [1, 99.5])
    return np.clip((data - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def thumbnail(source: Any, out: str | os.PathLike, size: int = 1024) -> str:
    """Write a 2-D image (path or opened image) as a PNG at most `size` pixels on each side,
    from the level that fits; returns the PNG's path."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("voxcore view needs matplotlib: pip install 'voxcore[view]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = vc_open(source) if isinstance(source, (str, os.PathLike)) else source
    if size < 16:
        raise InvalidArgumentError(f"size must be at least 16 pixels (got={size})")
    data = _rgb(img, _fit_level(img, size))
    f = -(-max(data.shape[:2]) // size)
    if f > 1:  # block means down to the size (the coarsest level was still too large)
        h, w = (data.shape[0] // f) * f, (data.shape[1] // f) * f
        blocks = data[:h, :w].reshape(h // f, f, w // f, f, *data.shape[2:]).astype(np.float64)
        data = blocks.mean(axis=(1, 3))
        data = data.astype(np.uint8) if data.max() > 1 else data
    out = os.fspath(out)
    plt.imsave(out, data, cmap="gray" if data.ndim == 2 else None)
    return out
