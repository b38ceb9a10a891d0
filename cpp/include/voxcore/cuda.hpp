#pragma once
#include <cstdint>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/pyramid.hpp"

// GPU operations. No CUDA types here: a consumer compiles without the CUDA toolkit. In a build
// without CUDA every function below except is_available()/device_count() throws kUnavailable.
namespace voxcore::cuda {

// An opaque cudaStream_t (nullptr: the default stream).
using Stream = void*;

// True when the library was built with CUDA and a usable device is present.
VOXCORE_API bool is_available() noexcept;
VOXCORE_API int device_count() noexcept;
// True when this build contains the CUDA kernels (whether or not a device is present).
VOXCORE_API bool is_compiled() noexcept;

// Device-memory twin of voxcore::permute_flip: src and dst point to device memory.
// Enqueued on stream; synchronises the stream before returning. Throws kCuda on a CUDA error.
VOXCORE_API void permute_flip(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                              const std::vector<bool>& flips, Stream stream = nullptr);

// Device-memory twin of voxcore::downsample: src and dst point to device memory, any strides.
// The same shapes, dtypes, checks and error codes, and the same values: bit for bit but for a
// NaN's sign and payload and, for mode, which of -0.0 and 0.0 stands for a tie; gaussian up to
// floating-point rounding (integers within 1). Enqueued on stream; synchronises the stream
// before returning. Throws kCuda on a CUDA error.
VOXCORE_API void downsample(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                            Method method, Stream stream = nullptr);

}  // namespace voxcore::cuda
