"""voxcore: fast chunked volumetric and multi-resolution images with a C++ core.

>>> import voxcore as vc
>>> img = vc.open("volume.zarr")          # Zarr v2/v3 array or OME-Zarr group
>>> block = img[0:64, 100:200, ::2]       # numpy array, decoded in parallel in C++
"""

import operator

from . import _core
from ._stream import PyramidWriter
from .datadef import Array, DataDefinition
from .errors import (
    CorruptDataError,
    CudaError,
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
    TargetNotReplaceableError,
    UnalignedWriteWarning,
    UnavailableError,
    UnsafeMetadataPathError,
    UnsafePathError,
    UnsupportedError,
    VoxcoreError,
)
from .formats.nifti import NiftiArray, NiftiImage, reorient
from .image import Image, create_array, open
from .pyramid import Level, MemoryImage, Pyramid, build_pyramid, create, from_array, save
from .view import View

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Set the number of threads the core uses (default: VOXCORE_NUM_THREADS or all cores).

    1 <= n <= max(256, 2 x cores) (``_core.max_threads()``): a larger count raises
    LimitExceededError. Threads start when work first needs them. Safe at any moment: open
    handles keep working and use the new count from their next call.
    """
    n = operator.index(n)
    if n > _core.max_threads():
        raise LimitExceededError(
            f"set_num_threads: at most {_core.max_threads()} threads (max(256, 2 x cores)), got {n}")
    _core.set_num_threads(n)


def downsample(array, factors, method: str = "mean"):
    """Reduce a numpy array by integer factors per axis in the C++ core (GIL released).

    factors: one int for every axis, or a sequence per axis. method: "mean" (integers round half
    away from zero), "gaussian", "mode" (labels; ties -> smallest value), "nearest" (array[::f]),
    "min", "max". The result has shape ceil(shape / factors); partial edge windows use the
    voxels that exist.

    A device array (anything with ``__cuda_array_interface__``, e.g. a CuPy array) is reduced
    on its own device by the CUDA kernels, on CuPy's current stream, into a new CuPy array: the
    same values as on the host (gaussian up to floating-point rounding).
    """
    import numpy as np

    if hasattr(array, "__cuda_array_interface__"):
        import cupy as cp

        arr = cp.asarray(array)
        f = [int(factors)] * arr.ndim if np.isscalar(factors) else [int(x) for x in factors]
        if len(f) == arr.ndim and all(k >= 1 for k in f):
            shape = tuple(-(-n // k) for n, k in zip(arr.shape, f))
        else:
            shape = arr.shape  # the core rejects the factors before looking at the output
        with arr.device:
            out = cp.empty(shape, dtype=arr.dtype)
            stream = cp.cuda.get_current_stream().ptr
            return _core.cuda_downsample(arr, out, f, method, stream)

    arr = np.asarray(array)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    f = [int(factors)] * arr.ndim if np.isscalar(factors) else [int(x) for x in factors]
    return _core.downsample(arr, f, method)


def get_num_threads() -> int:
    """The number of threads the core uses."""
    return _core.get_num_threads()


__all__ = [
    "Array",
    "CorruptDataError",
    "CudaError",
    "DataDefinition",
    "Image",
    "InvalidArgumentError",
    "InvalidMetadataError",
    "Level",
    "LimitExceededError",
    "MemoryImage",
    "NiftiArray",
    "NiftiImage",
    "Pyramid",
    "PyramidWriter",
    "TargetNotReplaceableError",
    "UnalignedWriteWarning",
    "UnavailableError",
    "UnsafeMetadataPathError",
    "UnsafePathError",
    "UnsupportedError",
    "View",
    "VoxcoreError",
    "build_pyramid",
    "create",
    "create_array",
    "downsample",
    "from_array",
    "get_num_threads",
    "open",
    "reorient",
    "save",
    "set_num_threads",
]
