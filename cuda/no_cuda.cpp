// Compiled instead of the .cu files when voxcore is built without CUDA.
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"

namespace voxcore::cuda {

bool is_available() noexcept { return false; }
int device_count() noexcept { return 0; }
bool is_compiled() noexcept { return false; }

void permute_flip(const ArrayView&, const ArrayView&, const std::vector<int>&,
                  const std::vector<bool>&, Stream) {
  fail(ErrorCode::kUnavailable, "cuda::permute_flip", "voxcore was built without CUDA");
}

void downsample(const ArrayView&, const ArrayView&, const std::vector<int64_t>&, Method, Stream) {
  fail(ErrorCode::kUnavailable, "cuda::downsample", "voxcore was built without CUDA");
}

}  // namespace voxcore::cuda
