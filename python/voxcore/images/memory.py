"""MemoryImage: an array with OME axes and voxel geometry, and from_array, which makes one.

The in-memory (or lazily wrapped) image kind of the image model: what :func:`build_pyramid`
and :func:`save` take when given a plain array.

>>> img = vc.from_array(arr, dims=("z", "y", "x"), scale=(2.0, 0.5, 0.5), units=("micrometer",) * 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..formats import ngff
from .model import ImageModel


class MemoryImage(ImageModel):
    """An array with OME axes, voxel size (scale), origin (translation) and units.

    data is a numpy array, a device array (cupy) or a lazy array (voxcore.Image, dask, zarr,
    anything with shape, dtype and slicing) that is read slab by slab when saved.
    """

    def __init__(self, data: Any, dims, scale, translation, units, name, channels=None):
        self.data = data
        self.dims = dims
        self._channels = channels
        self._scale, self._translation, self._units = scale, translation, units
        self.name = name

    @property
    def scale(self) -> tuple[float, ...]:
        return self._scale

    @scale.setter
    def scale(self, value) -> None:
        self._scale = value

    @property
    def translation(self) -> tuple[float, ...]:
        return self._translation

    @translation.setter
    def translation(self, value) -> None:
        self._translation = value

    @property
    def units(self) -> tuple[str | None, ...]:
        return self._units

    @units.setter
    def units(self, value) -> None:
        self._units = value

    @property
    def channels(self) -> list[dict] | None:
        return self._channels

    @channels.setter
    def channels(self, value) -> None:
        self._channels = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.data, np.ndarray)

    @property
    def affine(self) -> np.ndarray:
        kept = getattr(self, "nifti_affine", None)  # a NIfTI image's own (rotations included)
        return super().affine if kept is None else np.asarray(kept, dtype=np.float64)

    @property
    def ome(self) -> dict:
        """dims, scale, translation, units and name (what from_array lends a copy)."""
        return {"dims": self.dims, "scale": self.scale, "translation": self.translation, "units": self.units,
                "name": self.name}

    def _read_level0(self, region: Any) -> np.ndarray:
        part = self.data[region]
        if hasattr(part, "__cuda_array_interface__"):
            return part.get()
        return np.asarray(part)

    def reference(self) -> tuple | None:
        """The data's own reference when it is an image with files (read there by workers)."""
        return self.data.reference() if isinstance(self.data, ImageModel) else None

    def __repr__(self) -> str:
        return f"<voxcore.MemoryImage shape={self.shape} dtype={self.dtype} dims={self.dims} scale={self.scale}>"


def _is_lazy(obj: Any) -> bool:
    """An array read on demand (voxcore.Image, dask, zarr, h5py ...) rather than converted."""
    return (not isinstance(obj, np.ndarray) and hasattr(obj, "shape") and hasattr(obj, "dtype")
            and hasattr(obj, "__getitem__") and not hasattr(obj, "__cuda_array_interface__"))


def from_array(array: Any, dims: Sequence[str] | None = None, scale: Sequence[float] | None = None,
               translation: Sequence[float] | None = None, units: Sequence[str | None] | None = None,
               name: str | None = None) -> MemoryImage:
    """An image from an array, with OME axes and voxel geometry.

    array: numpy (not copied when native-order), cupy (stays on the device), an on-disk or lazy
    array (voxcore.Image, dask, zarr: read slab by slab when saved, never whole), or anything
    with __array__ / DLPack. A voxcore.Image opened from OME-Zarr lends its own dims, scale,
    translation and units unless given; so does an ngff-zarr ``NgffImage`` (its dask data stays
    lazy).

    dims default by rank: (y, x), (z, y, x), (c, z, y, x), (t, c, z, y, x): the last 2-3 axes are
    space, earlier ones channel then time. scale defaults to 1 per axis, translation to 0, units
    to none. units are UDUNITS-2 names ("micrometer", "second"); channel axes take None. scale,
    translation and units may also be dicts by axis name ({"z": 2.0, "y": 0.5}, as ngff-zarr
    takes them): axes left out keep the default.
    """
    if isinstance(array, MemoryImage) and dims is scale is translation is units is name is None:
        return array  # already one (what it keeps, e.g. a NIfTI affine, stays)
    if type(array).__name__ == "NgffImage" and hasattr(array, "dims") and hasattr(array, "data"):
        # ngff-zarr's image: its dims, scale and translation (dicts by axis), units and name
        given = array
        array = given.data
        dims = tuple(given.dims) if dims is None else dims
        scale = dict(given.scale or {}) if scale is None else scale
        translation = dict(given.translation or {}) if translation is None else translation
        if units is None and getattr(given, "axes_units", None):
            units = {d: u for d, u in given.axes_units.items() if d in given.dims}
        name = getattr(given, "name", None) if name is None else name
    if isinstance(array, ImageModel) and dims is None:
        converted = array.ome_image()  # a kind whose axes map differently (NIfTI: reversed)
        if converted is not None:
            return converted
    geo = getattr(array, "ome", None)
    if geo is not None:
        dims = geo["dims"] if dims is None else dims
        scale = geo["scale"] if scale is None else scale
        translation = geo["translation"] if translation is None else translation
        units = geo["units"] if units is None else units
        name = geo.get("name") if name is None else name
        channels = geo.get("channels")
    else:
        channels = getattr(array, "channels", None) if isinstance(array, MemoryImage) else None
    if isinstance(array, MemoryImage):
        arr = array.data
    elif hasattr(array, "__cuda_array_interface__") or _is_lazy(array):
        arr = array
    elif hasattr(array, "__array__") or not hasattr(array, "__dlpack__"):
        arr = np.asarray(array)
    else:
        arr = np.from_dlpack(array)
    if isinstance(arr, np.ndarray) and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    ndim = len(arr.shape)
    dims = ngff.default_dims(ndim) if dims is None else tuple(str(d) for d in dims)
    if len(dims) != ndim:
        raise InvalidArgumentError(f"dims length differs from the array rank (expected={ndim}, got={len(dims)})")
    scale = ngff.per_axis_dict(scale, dims, 1.0, "scale")
    translation = ngff.per_axis_dict(translation, dims, 0.0, "translation")
    units = ngff.per_axis_dict(units, dims, None, "units")
    ngff.check_axes(dims, units)
    n = ndim
    scale_t = ngff.check_vector((1.0,) * n if scale is None else scale, n, "scale", positive=True)
    trans_t = ngff.check_vector((0.0,) * n if translation is None else translation, n, "translation")
    units_t = (None,) * n if units is None else tuple(units)
    out = MemoryImage(arr, dims, scale_t, trans_t, units_t, name, channels)
    if channels is not None and "c" in dims and len(channels) != arr.shape[dims.index("c")]:
        out.channels = None  # a different channel axis: the source's channels do not apply
    return out
