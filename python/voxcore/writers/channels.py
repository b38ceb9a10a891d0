"""The omero channels a writer puts beside its multiscales (save, create)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..formats import omero


def channels_with_windows(source: Sequence[Any], dims: Sequence[str], shape: Sequence[int], dtype: Any,
                          coarsest: Callable[[], np.ndarray] | None) -> list[dict]:
    """source's channels checked, missing colours and labels filled in, and each missing window
    the data's range at the coarsest level (coarsest() reads it; None: the dtype's range, or
    0..1 for floats, until the data exists). The window's min/max: the dtype's range for
    integers, the data's for floats."""
    dims = tuple(dims)
    c = dims.index("c") if "c" in dims else None
    n = shape[c] if c is not None else 1
    dtype = np.dtype(dtype)
    need = [i for i in range(n) if i >= len(source) or not isinstance(source[i], dict)
            or source[i].get("window") is None]
    ints = dtype.kind in "iu"
    full = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if ints else (0.0, 1.0)
    windows = [(0.0, 0.0)] * n
    if need and len(source) == n:
        if coarsest is None:
            windows = [full] * n
        else:
            data = coarsest()
            for i in need:
                part = data if c is None else np.take(data, i, axis=c)
                windows[i] = (float(part.min()), float(part.max())) if part.size else (0.0, 0.0)
    value_range = full if ints else (min((w[0] for w in windows), default=0.0),
                                     max((w[1] for w in windows), default=1.0))
    return omero.channels_for(source, n, windows, value_range)
