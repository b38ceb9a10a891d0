"""Turning numpy-style keys and dict regions into boxes for the core."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Selection:
    start: list[int]  # box start per axis (may be negative / past the end with pad)
    shape: list[int]  # box shape per axis
    steps: list[int]  # 1, or the numpy step to apply after reading the box
    squeeze: list[int]  # axes given as integers (dropped from the result)

    @property
    def simple(self) -> bool:
        return all(s == 1 for s in self.steps)


def _expand(key: Any, dims: Sequence[str], ndim: int) -> list:
    if key is None:
        return [slice(None)] * ndim
    if isinstance(key, dict):
        out: list = [slice(None)] * ndim
        for name, value in key.items():
            if name not in dims:
                raise KeyError(f"unknown dimension {name!r}; dims are {tuple(dims)}")
            out[list(dims).index(name)] = value
        return out
    if not isinstance(key, tuple):
        key = (key,)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        fill = ndim - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1:]
    if len(key) > ndim:
        raise IndexError(f"too many indices: array is {ndim}-dimensional, got {len(key)}")
    return list(key) + [slice(None)] * (ndim - len(key))


def select(key: Any, shape: Sequence[int], dims: Sequence[str], pad: bool = False) -> Selection:
    """Box, steps and squeezed axes of key over an array of shape."""
    items = _expand(key, dims, len(shape))
    sel = Selection([], [], [], [])
    for axis, (k, n) in enumerate(zip(items, shape)):
        if isinstance(k, slice):
            if pad:
                if k.step not in (None, 1):
                    raise IndexError("pad=True supports only unit steps")
                start = 0 if k.start is None else operator.index(k.start)
                stop = n if k.stop is None else operator.index(k.stop)
                sel.start.append(start)
                sel.shape.append(max(stop - start, 0))
                sel.steps.append(1)
                continue
            start, stop, step = k.indices(n)
            count = len(range(start, stop, step))
            if count == 0:
                sel.start.append(0)
                sel.shape.append(0)
                sel.steps.append(1)
            elif step > 0:
                sel.start.append(start)
                sel.shape.append((count - 1) * step + 1)
                sel.steps.append(step)
            else:
                last = start + (count - 1) * step
                sel.start.append(last)
                sel.shape.append(start - last + 1)
                sel.steps.append(step)
        else:
            try:
                i = operator.index(k)
            except TypeError:
                raise IndexError(
                    f"only integers, slices, '...' and dicts are valid indices (got {type(k).__name__})"
                ) from None
            if not pad:
                if i < -n or i >= n:
                    raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
                i %= n
            sel.start.append(i)
            sel.shape.append(1)
            sel.steps.append(1)
            sel.squeeze.append(axis)
    return sel
