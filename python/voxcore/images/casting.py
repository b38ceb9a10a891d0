"""How written values are converted to an image's dtype."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def cast_for_write(data: Any, dtype: np.dtype, casting: str) -> np.ndarray:
    """data as a native-order array of dtype (no copy when it already is one) by numpy's casting
    rule, except: under "same_kind" any integer type may go to any other, and below "unsafe"
    integers outside dtype's range raise instead of wrapping. A Python int, float or complex is
    judged by its value (NEP 50), so img[...] = 5 works for every integer dtype it fits."""
    if casting not in _CASTINGS:
        raise InvalidArgumentError(f"casting must be one of {_CASTINGS} (got={casting!r:.20})")
    arr = np.asarray(data)
    if arr.dtype != dtype:
        src = np.min_scalar_type(data) if type(data) in (int, float, complex) else arr.dtype
        ints = src.kind in "iu" and dtype.kind in "iu"
        if not (np.can_cast(src, dtype, casting) or (ints and casting == "same_kind")):
            raise InvalidArgumentError(
                f"cannot write {arr.dtype} data into a {dtype} array with casting={casting!r} "
                "(pass casting=\"unsafe\" to convert anyway)")
        if ints and casting != "unsafe" and arr.size and not np.can_cast(arr.dtype, dtype, "safe"):
            info = np.iinfo(dtype)
            lo, hi = int(arr.min()), int(arr.max())
            if lo < info.min or hi > info.max:
                raise InvalidArgumentError(
                    f"values out of range of the array's {dtype} (range=[{info.min}, {info.max}], "
                    f"got=[{lo}, {hi}]); pass casting=\"unsafe\" to wrap them")
        arr = arr.astype(dtype)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr
