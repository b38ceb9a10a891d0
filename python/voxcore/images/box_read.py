"""Reading a numpy-style region of a level through a box reader: the one place selections
(integers, slices with steps, dicts by dim, pad=) become boxes for the core and results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._indexing import select
from .model import alloc, check_out, copy_into

# read_box(start, dst): fills dst, a C-contiguous or strided numpy array, with the box
# [start, start + dst.shape) (the fill value outside the array).
BoxReader = Callable[[list[int], np.ndarray], None]


def read_region(read_box: BoxReader, shape: Sequence[int], dims: Sequence[str], dtype: np.dtype,
                region: Any, out: np.ndarray | None, pad: bool, source: str,
                as_dtype: Any = None) -> np.ndarray:
    """region of an array of shape/dtype as a numpy array (or into out), read box-wise."""
    if as_dtype is not None and np.dtype(as_dtype) != dtype:
        data = read_region(read_box, shape, dims, dtype, region, None, pad, source)
        return copy_into(data.astype(np.dtype(as_dtype)), out)
    sel = select(region, shape, dims, pad=pad)
    result_shape = tuple(s if st == 1 else len(range(0, s, abs(st)))
                         for s, st, in zip(sel.shape, sel.steps))
    result_shape = tuple(n for i, n in enumerate(result_shape) if i not in sel.squeeze)
    if out is not None:
        check_out(out, result_shape, dtype)

    def new(box_shape):
        return alloc(tuple(box_shape), dtype, f"read of shape {tuple(box_shape)} {dtype} from {source}")

    if sel.simple:
        dst = out if out is not None else new(result_shape)
        read_box(sel.start, np.expand_dims(dst, tuple(sel.squeeze)) if sel.squeeze else dst)
        return dst
    box = new(sel.shape)
    read_box(sel.start, box)
    index = tuple(0 if i in sel.squeeze else slice(None, None, st) for i, st in enumerate(sel.steps))
    picked = box[index]
    if out is not None:
        np.copyto(out, picked)
        return out
    return np.ascontiguousarray(picked)
