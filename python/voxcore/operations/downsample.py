"""downsample: reduce an array by integer factors per axis in the core (or on its CUDA device)."""

from __future__ import annotations

import numpy as np

from .._core import cuda_downsample
from .._core import downsample as core_downsample


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
            return cuda_downsample(arr, out, f, method, stream)

    arr = np.asarray(array)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    f = [int(factors)] * arr.ndim if np.isscalar(factors) else [int(x) for x in factors]
    return core_downsample(arr, f, method)
