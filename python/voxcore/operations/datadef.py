"""DataDefinition: the renderer's view of the data (the Clara Viz model).

A DataDefinition holds arrays (density "DXYZ", mask "MXYZ", a slide's colour "CXY", ...), each
with its resolution levels, the order of its dimensions (fastest varying first, as Clara Viz),
how to permute and flip them into the renderer's frame, and the physical size of an element
along each, one list per level; plus a free-form settings dict saved to and loaded from JSON. A
renderer asks for bricks or tiles with :meth:`DataDefinition.fetch` (or Clara's on-demand
callback, :attr:`DataDefinition.fetch_func`); levels opened from files are read on demand,
never whole, and an :class:`Array` may be served by a user ``fetch_func`` instead.

>>> dd = vc.DataDefinition()
>>> dd.append("ct.nii.gz", "DXYZ")
>>> dd.append("slide.svs", "CXY")
>>> tile = dd.fetch(dd.arrays[1], level=2, offset=(0, 512, 256), size=(3, 256, 256))
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..images.nifti_reorient import axis_codes
from ..images.registry import open as vc_open

_SPATIAL = {"X": "x", "Y": "y", "Z": "z", "T": "t"}
_COMPONENT = "DMC"


def _check_order(order: str) -> str:
    order = str(order)
    letters = set(order)
    if len(order) != len(letters) or not {"X", "Y"} <= letters or letters - set(_COMPONENT + "XYZT"):
        raise InvalidArgumentError(
            f"dimension_order must be distinct letters from D, M, C, X, Y, Z, T with at least X and Y "
            f"(got={order!r:.20})")
    if order[0] not in _COMPONENT or sum(c in _COMPONENT for c in order) != 1:
        raise InvalidArgumentError(f"dimension_order must start with one component letter D, M or C (got={order!r:.20})")
    return order


# fetch_func(level, offset, size) -> array of shape reversed(size): a user's on-demand data
FetchFunc = Callable[[int, Sequence[int], Sequence[int]], Any]


class Array:
    """One array of a DataDefinition: levels (finest first) plus how to place them.

    levels: numpy arrays (or voxcore images, or placeholders with .shape and .dtype when
    fetch_func serves the data) in C order whose shape is the reverse of dimension_order
    (fastest varying last in numpy terms), e.g. "DXYZ" -> (Z, Y, X, D), "CXY" -> (Y, X, C).
    permute_axes / flip_axes follow dimension_order (one per letter): the renderer's axis j is
    data axis permute_axes[j], reversed where flip_axes[j] (after the permute). element_sizes:
    one list per level of each letter's physical size (1.0 for components); a single flat list
    is level 0's, and the coarser levels' are scaled by their extents.
    fetch_func(level, offset, size): when given, :meth:`DataDefinition.fetch` asks it for the
    region (offset and size in dimension_order, in that level's elements) instead of reading
    the levels, and checks what it returns.
    """

    def __init__(self, levels: Sequence[Any] = (), dimension_order: str = "DXYZ",
                 permute_axes: Sequence[int] | None = None, flip_axes: Sequence[bool] | None = None,
                 element_sizes: Sequence[Any] | None = None, fetch_func: FetchFunc | None = None):
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
        if len(self.flip_axes) != n:
            raise InvalidArgumentError(f"flip_axes needs {n} entries")
        self.element_sizes = self._sizes_per_level(element_sizes)
        if fetch_func is not None and not callable(fetch_func):
            raise InvalidArgumentError("fetch_func must be callable (level, offset, size) -> array")
        self.fetch_func = fetch_func
        # what the caller gave (the rest are defaults that follow dimension_order and levels)
        self._given = {"permute_axes": permute_axes is not None, "flip_axes": flip_axes is not None,
                       "element_sizes": element_sizes is not None}
        self._ready = True

    _CHECKED = ("levels", "dimension_order", "permute_axes", "flip_axes", "element_sizes", "fetch_func")

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a field after construction runs the constructor's checks on the result
        (Clara sets them one by one): a bad value raises and leaves the array as it was."""
        if name not in self._CHECKED or not self.__dict__.get("_ready"):
            object.__setattr__(self, name, value)
            return
        state = {k: getattr(self, k) if self._given.get(k, True) else None for k in self._CHECKED}
        state[name] = value
        checked = Array(**state)
        given = dict(self._given)
        if name in given:
            given[name] = value is not None
        for k in self._CHECKED:
            object.__setattr__(self, k, getattr(checked, k))
        object.__setattr__(self, "_given", given)

    def _sizes_per_level(self, sizes: Sequence[Any] | None) -> list[list[float]]:
        n, count = len(self.dimension_order), max(len(self.levels), 1)
        if sizes is None:
            sizes = [1.0] * n
        sizes = list(sizes)
        if sizes and all(np.ndim(s) == 0 for s in sizes):  # level 0's: scale by the extents
            base = [float(s) for s in sizes]
            if len(base) != n:
                raise InvalidArgumentError(f"element_sizes need {n} entries (got={len(base)})")
            out = [base]
            for k in range(1, len(self.levels)):
                ext0, ext = self.shape(0), self.shape(k)
                out.append([b if c in _COMPONENT else b * e0 / e
                            for b, c, e0, e in zip(base, self.dimension_order, ext0, ext)])
        else:
            out = [[float(v) for v in s] for s in sizes]
            if len(out) != count or any(len(s) != n for s in out):
                raise InvalidArgumentError(
                    f"element_sizes need one list of {n} per level (levels={count}, got={len(out)} lists)")
        if not all(v > 0 and np.isfinite(v) for s in out for v in s):
            raise InvalidArgumentError("element sizes must be finite and > 0")
        return out

    @property
    def element_size(self) -> list[float]:
        """Level 0's element sizes (Clara's single-level name)."""
        return self.element_sizes[0]

    def shape(self, level: int = 0) -> tuple[int, ...]:
        """Extent per dimension_order letter (fastest first) at a level."""
        return tuple(reversed(self._level(level).shape))

    def _level(self, level: int) -> Any:
        if not 0 <= level < len(self.levels):
            raise InvalidArgumentError(f"level out of range (levels={len(self.levels)}, got={level})")
        return self.levels[level]

    def __repr__(self) -> str:
        return (f"<voxcore.Array {self.dimension_order} levels={[self.shape(k) for k in range(len(self.levels))]} "
                f"element_sizes={self.element_sizes[0]}>")


class _Lazy:
    """A level read on demand: numpy axes in reversed dimension_order, drawn from an image's."""

    def __init__(self, read_region, shape: tuple[int, ...], dtype: np.dtype):
        self._read, self.shape, self.dtype = read_region, shape, dtype

    def __getitem__(self, index: tuple) -> np.ndarray:
        return self._read(index)


def _source_axes(dims: tuple[str, ...], order: str) -> list[int | None]:
    """For each numpy axis (reversed order), the image axis it reads, or None (a unit
    component axis, for an image without a "c" axis)."""
    src: list[int | None] = []
    for letter in reversed(order):
        d = _SPATIAL.get(letter, "c")
        if d not in dims:
            if letter in _COMPONENT:
                src.append(None)
                continue
            raise InvalidArgumentError(f"dimension_order {order!r} has {letter} but the image has dims {dims}")
        src.append(dims.index(d))
    if sorted(s for s in src if s is not None) != list(range(len(dims))):
        raise InvalidArgumentError(
            f"dimension_order {order!r} does not match the image's dims {dims}: use "
            f"{'CXY' if len(dims) <= 3 and 'z' not in dims else 'DXYZ'}-style orders")
    return src


def _levels_of(img: Any, order: str, orientation: tuple[str, ...]) -> tuple[list, list[list[float]], list[int], list[bool]]:
    """Lazy levels in reversed-order layout, element sizes per level, and the permute/flip that
    bring an anatomical image (NIfTI) to orientation (nibabel axis codes: where each renderer
    axis points)."""
    dims = tuple(img.dims)
    src = _source_axes(dims, order)
    perm = [s for s in src if s is not None]
    units = [j for j, s in enumerate(src) if s is None]

    levels, sizes = [], []
    for k, lv in enumerate(img.levels):
        def read(index, k=k):
            region = tuple(index[src.index(i)] for i in range(len(dims)))
            part = np.asarray(img.read(region, level=k)).transpose(perm)
            for j in units:
                part = np.expand_dims(part, j)[(slice(None),) * j + (index[j],)]
            return part

        levels.append(_Lazy(read, tuple(1 if s is None else lv.shape[s] for s in src), img.dtype))
        scale = lv.scale
        sizes.append([1.0 if c in _COMPONENT else float(scale[dims.index(_SPATIAL[c])]) for c in order])
    n = len(order)
    if not img.anatomical or order[1:] != "XYZ":
        return levels, sizes, list(range(n)), [False] * n
    from nibabel import orientations as no

    ornt = no.ornt_transform(no.io_orientation(img.affine), no.axcodes2ornt(orientation))
    permute = [0] + [int(np.where(ornt[:, 0] == k)[0][0]) + 1 for k in range(3)]
    flips = [False] + [bool(ornt[p - 1, 1] == -1) for p in permute[1:]]
    return levels, sizes, permute, flips


#: Clara Viz's own frame for volumes it reads with ITK: ITK's RIP coordinate orientation (named
#: in ITK's "from" convention), which in nibabel's axis codes ("to" convention) is L, S, A.
CLARA_ORIENTATION = "LSA"


class DataDefinition:
    """Arrays and settings for a renderer. DataDefinition(path) appends path with the order its
    dimensions imply ("DXYZ" for 3-D images, "CXY" for 2-D ones; see :meth:`append`)."""

    CLARA_ORIENTATION = CLARA_ORIENTATION

    def __init__(self, path: str | os.PathLike | None = None, dimension_order: str = "", *,
                 orientation: str = "RAS", storage_options: dict | None = None):
        self.arrays: list[Array] = []
        self.settings: dict = {}
        if path is not None:
            self.append(path, dimension_order, orientation=orientation, storage_options=storage_options)

    def append(self, path: str | os.PathLike, dimension_order: str = "", *,
               orientation: str = "RAS", storage_options: dict | None = None) -> Array:
        """Open a file lazily (NIfTI, (OME-)Zarr, a TIFF slide) and add it as one array:
        "DXYZ" density or "MXYZ" mask for 3-D images, "CXY" for 2-D ones (the default when
        dimension_order is empty: DXYZ for 3-D, CXY for 2-D, as Clara Viz infers it).

        An anatomical image (NIfTI, Analyze) gets the permute_axes/flip_axes that bring its
        axes closest to orientation, in nibabel's axis codes (where each renderer axis X, Y, Z
        points): "RAS" (voxcore's default, nibabel's canonical frame) or
        :data:`CLARA_ORIENTATION` ("LSA": the frame Clara Viz's own ITK reader brings volumes
        to, ITK's "RIP"; the same permute/flip as ITK's OrientImageFilter given the image's
        direction matrix). Images without an anatomical frame (OME-Zarr, slides) are never
        permuted or flipped. path may be a URL (with storage_options=, as :func:`voxcore.open`)."""
        img = vc_open(path, storage_options=storage_options)
        codes = axis_codes(orientation, "orientation")
        if not dimension_order:
            spatial = [d for d in img.dims if d != "c"]
            dimension_order = "CXY" if len(spatial) == 2 else "DXYZ"
        order = _check_order(dimension_order)
        levels, sizes, perm, flips = _levels_of(img, order, codes)
        arr = Array(levels, order, perm, flips, sizes)
        self.arrays.append(arr)
        return arr

    def fetch(self, array: Array | int, level: int, offset: Sequence[int], size: Sequence[int]) -> np.ndarray:
        """The region [offset, offset + size) of an array's level, both in dimension_order
        (fastest first) in that level's elements, as a C-ordered numpy array of shape
        reversed(size): what a renderer's brick or tile callback returns. Regions past the edge
        are refused. An array with a fetch_func is served by it (its result is checked)."""
        arr = self.arrays[array] if isinstance(array, int) else array
        lv = arr._level(level)
        extent = arr.shape(level)
        offset, size = [int(v) for v in offset], [int(v) for v in size]
        if len(offset) != len(extent) or len(size) != len(extent) or any(
                o < 0 or s < 0 or o + s > e for o, s, e in zip(offset, size, extent)):
            raise InvalidArgumentError(
                f"region outside the array (shape={extent}, offset={tuple(offset)}, size={tuple(size)})")
        want = tuple(reversed(size))
        if arr.fetch_func is not None:
            data = np.asarray(arr.fetch_func(level, tuple(offset), tuple(size)))
            if data.shape != want:
                raise InvalidArgumentError(f"fetch_func returned shape {data.shape} (expected={want})")
            dtype = getattr(lv, "dtype", data.dtype)
            return np.ascontiguousarray(data, dtype=dtype)
        index = tuple(slice(o, o + s) for o, s in zip(reversed(offset), reversed(size)))
        return np.ascontiguousarray(lv[index])

    @property
    def fetch_func(self):
        """Clara Viz's on-demand fetch: fetch_func(context, array_id, level_index, offset, size,
        fetch_callback_func) finds the array whose dimension_order is array_id, fetches the
        region and hands it to fetch_callback_func(context, level_index, offset, size, data)."""
        def fetch(context, array_id, level_index, offset, size, fetch_callback_func):
            for arr in self.arrays:
                if arr.dimension_order == array_id:
                    data = self.fetch(arr, level_index, offset, size)
                    fetch_callback_func(context, level_index, offset, size, data)
                    return True
            raise InvalidArgumentError(f"no array with dimension_order {array_id!r}")
        return fetch

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
