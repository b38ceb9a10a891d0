"""Exception classes raised by voxcore (the C++ core maps its error codes onto these)."""


class VoxcoreError(Exception):
    """Base class of every voxcore-specific error."""


class InvalidArgumentError(VoxcoreError, ValueError):
    """An argument cannot be used (shape or dtype mismatch, bad option)."""


class InvalidMetadataError(VoxcoreError, ValueError):
    """Array, codec or image metadata is inconsistent or out of range."""


class CorruptDataError(VoxcoreError, ValueError):
    """Stored bytes do not decode to what the metadata promises."""


class LimitExceededError(VoxcoreError, ValueError):
    """A size or count is beyond a safety limit or overflows."""


class UnsafePathError(VoxcoreError, ValueError):
    """A key or path would leave the store, or is malformed."""


class TargetNotReplaceableError(VoxcoreError, FileExistsError):
    """overwrite=True met a target that holds more than a Zarr hierarchy (or is a file)."""


class UnsafeMetadataPathError(InvalidMetadataError, UnsafePathError):
    """A path in metadata (an OME dataset path, a label name) leaves its group or is malformed."""


class StoreError(VoxcoreError, OSError):
    """A store failed to serve or take a key (the message names the store and the key)."""


class UnsupportedError(VoxcoreError, NotImplementedError):
    """Valid input that voxcore does not implement (e.g. an unknown codec)."""


class UnavailableError(VoxcoreError, RuntimeError):
    """A feature that this build does not contain (e.g. CUDA)."""


class CudaError(VoxcoreError, RuntimeError):
    """A CUDA runtime call failed."""


class InferredMetadataWarning(UserWarning):
    """Metadata a reader had to infer (an OME-Zarr multiscale without axes: dims by rank)."""


class IgnoredRangeWarning(UserWarning):
    """A server answered a byte-range request with the whole object (read correctly, slowly)."""


class UnalignedWriteWarning(UserWarning):
    """A write that covers chunks (or shards) only partly: they are read, merged and rewritten."""
