"""voxcore: fast chunked volumetric and multi-resolution images with a C++ core.

>>> import voxcore as vc
>>> img = vc.open("volume.zarr")          # Zarr v2/v3 array or OME-Zarr group
>>> block = img[0:64, 100:200, ::2]       # numpy array, decoded in parallel in C++
"""

from . import _core
from .errors import (
    CorruptDataError,
    CudaError,
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
    UnavailableError,
    UnsafePathError,
    UnsupportedError,
    VoxcoreError,
)
from .image import Image, create_array, open

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Set the number of threads the core uses (default: VOXCORE_NUM_THREADS or all cores)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the core uses."""
    return _core.get_num_threads()


__all__ = [
    "CorruptDataError", "CudaError", "Image", "InvalidArgumentError", "InvalidMetadataError",
    "LimitExceededError", "UnavailableError", "UnsafePathError", "UnsupportedError", "VoxcoreError",
    "create_array", "get_num_threads", "open", "set_num_threads",
]
