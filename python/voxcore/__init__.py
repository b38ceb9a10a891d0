"""voxcore: fast chunked volumetric and multi-resolution images with a C++ core.

>>> import voxcore as vc
>>> img = vc.open("volume.zarr")          # Zarr v2/v3 array or OME-Zarr group
>>> block = img[0:64, 100:200, ::2]       # numpy array, decoded in parallel in C++
"""

from ._threads import get_num_threads, set_num_threads
from ._version import __version__ as __version__
from .errors import (
    CorruptDataError,
    CudaError,
    IgnoredRangeWarning,
    InferredMetadataWarning,
    InvalidArgumentError,
    InvalidMetadataError,
    LimitExceededError,
    StoreError,
    TargetNotReplaceableError,
    UnalignedWriteWarning,
    UnavailableError,
    UnsafeMetadataPathError,
    UnsafePathError,
    UnsupportedError,
    VoxcoreError,
)
from .images.bbox import BoundingBox, Mag
from .images.memory import MemoryImage, from_array
from .images.model import ImageModel
from .images.nifti import NiftiArray, NiftiImage, reorient
from .images.collection import Series
from .images.plate import Plate, Well
from .images.registry import open
from .images.slide import SlideImage
from .images.view import View
from .images.zarr import Image, ImageLevel
from .operations.datadef import Array, DataDefinition
from .operations.downsample import downsample
from .operations.pyramid import Level, Pyramid, build_pyramid
from .writers.arrays import create_array
from .writers.acquire import create
from .writers.plate import PlateWriter, create_plate
from .validate import validate
from .writers.save import save
from .writers.stream import PyramidWriter

__all__ = [
    "Array",
    "BoundingBox",
    "CorruptDataError",
    "CudaError",
    "DataDefinition",
    "Image",
    "ImageLevel",
    "ImageModel",
    "InvalidArgumentError",
    "IgnoredRangeWarning",
    "InferredMetadataWarning",
    "InvalidMetadataError",
    "Level",
    "LimitExceededError",
    "Mag",
    "MemoryImage",
    "NiftiArray",
    "NiftiImage",
    "Pyramid",
    "Plate",
    "PlateWriter",
    "PyramidWriter",
    "Series",
    "SlideImage",
    "StoreError",
    "TargetNotReplaceableError",
    "UnalignedWriteWarning",
    "UnavailableError",
    "UnsafeMetadataPathError",
    "UnsafePathError",
    "UnsupportedError",
    "View",
    "VoxcoreError",
    "Well",
    "build_pyramid",
    "create",
    "create_array",
    "create_plate",
    "downsample",
    "from_array",
    "get_num_threads",
    "open",
    "reorient",
    "save",
    "set_num_threads",
    "validate",
]
