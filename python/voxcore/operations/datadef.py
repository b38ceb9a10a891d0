"""DataDefinition: the volume renderer's view of the data (the Clara Viz model).

A DataDefinition holds arrays (density "DXYZ", mask "MXYZ", ...), each with its resolution
levels, the order of its dimensions (fastest varying first, as Clara Viz), how to permute and
flip them into the renderer's frame, and the physical size of an element along each; plus a
free-form settings dict saved to and loaded from JSON. A renderer asks for bricks with
:meth:`DataDefinition.fetch`; levels opened from files are read on demand, never whole.

>>> dd = vc.DataDefinition()
>>> dd.append("ct.nii.gz", "DXYZ")
>>> dd.append("seg.ome.zarr", "MXYZ")
>>> brick = dd.fetch(dd.arrays[0], level=0, offset=(0, 64, 64, 32), size=(1, 64, 64, 64))
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..images.registry import open as vc_open

_SPATIAL = "XYZ"


def _check_order(order: str) -> str:
    order = str(order)
    letters = set(order)
    if len(order) != len(letters) or not set(_SPATIAL[:2]) <= letters or letters - set("DMCXYZT"):
        raise InvalidArgumentError(
            f"dimension_order must be distinct letters from D, M, C, X, Y, Z, T with at least X and Y "
            f"(got={order!r:.20})")
    if order[0] not in "DMC" or sum(c in "DMC" for c in order) != 1:
        raise InvalidArgumentError(f"dimension_order must start with one component letter D, M or C (got={order!r:.20})")
    return order


class Array:
    """One array of a DataDefinition: levels (finest first) plus how to place them.

    levels: numpy arrays (or voxcore images) in C order whose shape is the reverse of
    dimension_order (fastest varying last in numpy terms), e.g. "DXYZ" -> (Z, Y, X, D).
    permute_axes / flip_axes / element_sizes follow dimension_order (one per letter): the
    renderer's axis j is data axis permute_axes[j], reversed where flip_axes[j] (after the
    permute); element_sizes are the data axes' physical sizes.
    """

    def __init__(self, levels: Sequence[Any] = (), dimension_order: str = "DXYZ",
                 permute_axes: Sequence[int] | None = None, flip_axes: Sequence[bool] | None = None,
                 element_sizes: Sequence[float] | None = None):
        self.dimension_order = _check_order(dimension_order)
        n = len(self.dimension_order)
        self.levels = list(levels)
        for k, lv in enumerate(self.levels):
            if len(lv.shape) != n:
                raise InvalidArgumentError(
                    f"level {k} has {len(lv.shape)} dimensions, dimension_order {self.dimension_order!r} has {n}")
        self.permute_axes = list(range(n)) if permute_axes is None else [int(p) for p in permute_axes]
        if sorted(self.permute_axes) != list(range(n)):
            raise InvalidArgumentError(f"permute_axes must be a permutation of 0..{n - 1} (got={self.permute_axes})")
        self.flip_axes = [False] * n if flip_axes is None else [bool(f) for f in flip_axes]
        self.element_sizes = [1.0] * n if element_sizes is None else [float(e) for e in element_sizes]
        if len(self.flip_axes) != n or len(self.element_sizes) != n or not all(e > 0 for e in self.element_sizes):
            raise InvalidArgumentError(f"flip_axes and element_sizes need {n} entries (element sizes > 0)")

    def shape(self, level: int = 0) -> tuple[int, ...]:
        """Extent per dimension_order letter (fastest first) at a level."""
        return tuple(reversed(self._level(level).shape))

    def _level(self, level: int) -> Any:
        if not 0 <= level < len(self.levels):
            raise InvalidArgumentError(f"level out of range (levels={len(self.levels)}, got={level})")
        return self.levels[level]

    def __repr__(self) -> str:
        return (f"<voxcore.Array {self.dimension_order} levels={[self.shape(k) for k in range(len(self.levels))]} "
                f"element_sizes={self.element_sizes}>")


class _Reversed:
    """A lazy level whose numpy axes are those of an image, with a unit component axis added last."""

    def __init__(self, read_region, shape: tuple[int, ...], dtype: np.dtype):
        self._read, self.shape, self.dtype = read_region, shape, dtype

    def __getitem__(self, index: tuple) -> np.ndarray:
        return self._read(index)


def _levels_of(img: Any) -> tuple[list, list[float], list[int], list[bool]]:
    """Lazy levels in (Z, Y, X, 1) layout, element sizes (X, Y, Z), and the permute/flip that
    bring an anatomical image (NIfTI) to RAS."""
    dims = tuple(img.dims)
    if len(dims) != 3 or set(dims) != {"x", "y", "z"}:
        what = "3-D images" if img.anatomical else "3-D z, y, x images"
        raise InvalidArgumentError(f"DataDefinition takes {what} (dims={dims}, shape={img.shape})")
    axes = [dims.index(d) for d in ("z", "y", "x")]  # image axis of each of Z, Y, X
    back = [axes.index(i) for i in range(3)]  # Z/Y/X position of each image axis

    levels = []
    for k, lv in enumerate(img.levels):
        def read(index, k=k):
            region = tuple(index[back[i]] for i in range(3))
            part = np.ascontiguousarray(img.read(region, level=k).transpose(axes))
            return part[..., None][(slice(None),) * 3 + (index[3],)]

        levels.append(_Reversed(read, tuple(lv.shape[i] for i in axes) + (1,), img.dtype))
    scale = img.levels[0].scale
    sizes = [scale[dims.index(d)] for d in ("x", "y", "z")]
    if not img.anatomical:
        return levels, sizes, [0, 1, 2, 3], [False] * 4
    from nibabel import orientations as no

    ornt = no.io_orientation(img.affine)
    perm = [0] + [int(np.where(ornt[:, 0] == k)[0][0]) + 1 for k in range(3)]
    flips = [False] + [bool(ornt[p - 1, 1] == -1) for p in perm[1:]]
    return levels, sizes, perm, flips


class DataDefinition:
    """Arrays and settings for a renderer. DataDefinition(path) appends path as "DXYZ"."""

    def __init__(self, path: str | os.PathLike | None = None, dimension_order: str = "DXYZ"):
        self.arrays: list[Array] = []
        self.settings: dict = {}
        if path is not None:
            self.append(path, dimension_order)

    def append(self, path: str | os.PathLike, dimension_order: str) -> Array:
        """Open a NIfTI file or (OME-)Zarr image lazily and add it as one array ("DXYZ" density,
        "MXYZ" mask). NIfTI arrays get the permute/flip that brings them to RAS."""
        order = _check_order(dimension_order)
        if len(order) != 4 or order[1:] != "XYZ":
            raise InvalidArgumentError(f"append takes component-first 3-D orders like DXYZ or MXYZ (got={order!r})")
        levels, sizes, perm, flips = _levels_of(vc_open(path))
        arr = Array(levels, order, perm, flips, [1.0] + [float(s) for s in sizes])
        self.arrays.append(arr)
        return arr

    def fetch(self, array: Array | int, level: int, offset: Sequence[int], size: Sequence[int]) -> np.ndarray:
        """The region [offset, offset + size) of an array's level, both in dimension_order
        (fastest first), as a C-ordered numpy array of shape reversed(size): what a renderer's
        brick callback returns. Regions past the edge are refused."""
        arr = self.arrays[array] if isinstance(array, int) else array
        lv = arr._level(level)
        extent = arr.shape(level)
        offset, size = [int(v) for v in offset], [int(v) for v in size]
        if len(offset) != len(extent) or len(size) != len(extent) or any(
                o < 0 or s < 0 or o + s > e for o, s, e in zip(offset, size, extent)):
            raise InvalidArgumentError(
                f"region outside the array (shape={extent}, offset={tuple(offset)}, size={tuple(size)})")
        index = tuple(slice(o, o + s) for o, s in zip(reversed(offset), reversed(size)))
        return np.ascontiguousarray(lv[index])

    def save_settings(self, path: str | os.PathLike) -> None:
        """Write settings as JSON."""
        with open(path, "w") as f:
            json.dump(self.settings, f, indent=2, allow_nan=False)

    def load_settings(self, path: str | os.PathLike) -> dict:
        """Read settings from JSON (replacing the current ones); returns them."""
        with open(path) as f:
            try:
                settings = json.load(f)
            except json.JSONDecodeError as e:
                raise InvalidArgumentError(f"settings are not JSON ({path}: {e})") from None
        if not isinstance(settings, dict):
            raise InvalidArgumentError(f"settings must be a JSON object ({path})")
        self.settings = settings
        return settings

    def __repr__(self) -> str:
        return f"<voxcore.DataDefinition arrays={self.arrays}>"
