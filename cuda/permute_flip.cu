// Device permute_flip and the CUDA availability queries.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "detail/permute_flip_kernels.cuh"
#include "detail/permute_plan.hpp"
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"

namespace voxcore::cuda {
namespace {

using detail::GeneralParams;
using detail::kTile;
using detail::kTileRows;
using detail::Plan;
using detail::TileParams;
using detail::Word16;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    fail(ErrorCode::kCuda, "cuda::permute_flip",
         std::string(what) + " failed (" + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + ")");
  }
}

template <typename T>
__global__ void general_kernel(GeneralParams p) {
  const int64_t step = int64_t{blockDim.x} * gridDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < p.total; i += step) {
    detail::general_element<T>(p, i);
  }
}

// grid.x: tiles along a; grid.y, grid.z: tiles along b and outer indices, strided when they
// exceed the grid limits. Loop bounds are uniform across the block, so the barriers are safe.
template <typename T>
__global__ void __launch_bounds__(kTile * kTileRows) tiled_kernel(TileParams p) {
  __shared__ T tile[kTile * (kTile + 1)];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t a0 = int64_t{blockIdx.x} * kTile;
  for (int64_t outer = blockIdx.z; outer < p.outer_count; outer += gridDim.z) {
    int64_t so, d_o;
    detail::outer_offsets(p, outer, so, d_o);
    for (int64_t tb = blockIdx.y; tb < p.tiles_b; tb += gridDim.y) {
      const int64_t b0 = tb * kTile;
      detail::tile_load<T>(p, tile, so, a0, b0, tx, ty);
      __syncthreads();
      detail::tile_store<T>(p, tile, d_o, a0, b0, tx, ty);
      __syncthreads();
    }
  }
}

template <typename T>
void launch(const Plan& plan, cudaStream_t stream) {
  const int b = detail::tile_axis(plan);
  if (b >= 0) {
    const TileParams t = detail::make_tile_params(plan, plan.rank - 1, b);
    if (t.tiles_a > 0x7fffffff) {
      fail(ErrorCode::kLimitExceeded, "cuda::permute_flip", "axis too long (got=" + std::to_string(t.na) + ")");
    }
    const dim3 grid(static_cast<unsigned>(t.tiles_a), static_cast<unsigned>(std::min<int64_t>(t.tiles_b, 65535)),
                    static_cast<unsigned>(std::min<int64_t>(t.outer_count, 65535)));
    tiled_kernel<T><<<grid, dim3(kTile, kTileRows), 0, stream>>>(t);
  } else {
    GeneralParams g;
    g.src = plan.src;
    g.dst = plan.dst;
    g.rank = plan.rank;
    g.total = plan.total;
    for (int i = 0; i < plan.rank; ++i) {
      g.n[i] = plan.n[i];
      g.ss[i] = plan.ss[i];
      g.ds[i] = plan.ds[i];
    }
    constexpr int kThreads = 256;
    const int64_t blocks = std::min<int64_t>((plan.total + kThreads - 1) / kThreads, int64_t{1} << 20);
    general_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(g);
  }
  check(cudaGetLastError(), "kernel launch");
}

// A host pointer would fault inside the kernel and poison the context; refuse it up front.
void check_device_pointer(const void* ptr, const char* which) {
  cudaPointerAttributes attr{};
  check(cudaPointerGetAttributes(&attr, ptr), "cudaPointerGetAttributes");
  if (attr.type == cudaMemoryTypeUnregistered) {
    fail(ErrorCode::kInvalidArgument, "cuda::permute_flip", std::string(which) + " is not CUDA memory");
  }
  if (attr.type == cudaMemoryTypeDevice) {
    int current = 0;
    check(cudaGetDevice(&current), "cudaGetDevice");
    if (attr.device != current) {
      fail(ErrorCode::kInvalidArgument, "cuda::permute_flip",
           std::string(which) + " is on another device (expected=" + std::to_string(current) +
               ", got=" + std::to_string(attr.device) + ")");
    }
  }
}

}  // namespace

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls do not see it
    return 0;
  }
  return n;
}

bool is_available() noexcept { return device_count() > 0; }

bool is_compiled() noexcept { return true; }

void permute_flip(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                  const std::vector<bool>& flips, Stream stream) {
  // The CPU permute_flip's checks, in its order and with its messages.
  const ArrayView view = ::voxcore::detail::permuted_flipped(src, dst, perm, flips, "cuda::permute_flip");
  ::voxcore::detail::check_same(view, dst, "cuda::permute_flip");
  if (src.num_elements() == 0) return;
  check_device_pointer(src.data, "src");
  check_device_pointer(dst.data, "dst");
  const int item = static_cast<int>(itemsize(src.dtype));
  const Plan plan = detail::make_plan(view, dst, item);
  auto s = static_cast<cudaStream_t>(stream);
  switch (plan.word) {
    case 1: launch<uint8_t>(plan, s); break;
    case 2: launch<uint16_t>(plan, s); break;
    case 4: launch<uint32_t>(plan, s); break;
    case 8: launch<uint64_t>(plan, s); break;
    case 16: launch<Word16>(plan, s); break;
    default: fail(ErrorCode::kUnsupported, "cuda::permute_flip", "itemsize " + std::to_string(item) + " is not supported");
  }
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

}  // namespace voxcore::cuda
