// Device downsample: one thread per output voxel, the bodies in detail/pyramid_kernels.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "detail/pyramid_args.hpp"
#include "detail/pyramid_kernels.cuh"
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"

namespace voxcore::cuda {
namespace {

constexpr const char* kWhere = "cuda::downsample";

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    fail(ErrorCode::kCuda, kWhere,
         std::string(what) + " failed (" + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + ")");
  }
}

// A host pointer would fault inside the kernel and poison the context; refuse it up front.
void check_device_pointer(const void* ptr, const char* which) {
  cudaPointerAttributes attr{};
  check(cudaPointerGetAttributes(&attr, ptr), "cudaPointerGetAttributes");
  if (attr.type == cudaMemoryTypeUnregistered) {
    fail(ErrorCode::kInvalidArgument, kWhere, std::string(which) + " is not CUDA memory");
  }
  if (attr.type == cudaMemoryTypeDevice) {
    int current = 0;
    check(cudaGetDevice(&current), "cudaGetDevice");
    if (attr.device != current) {
      fail(ErrorCode::kInvalidArgument, kWhere,
           std::string(which) + " is on another device (expected=" + std::to_string(current) +
               ", got=" + std::to_string(attr.device) + ")");
    }
  }
}

// The gaussian weights in device memory for the duration of one call.
class DeviceWeights {
 public:
  DeviceWeights() = default;
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;
  ~DeviceWeights() {
    if (ptr_ != nullptr) cudaFree(ptr_);  // synchronises; errors here are not reported
  }
  const double* upload(const std::vector<double>& w, cudaStream_t stream) {
    const std::size_t bytes = w.size() * sizeof(double);
    check(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes), "cudaMalloc");
    check(cudaMemcpyAsync(ptr_, w.data(), bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
    return ptr_;
  }

 private:
  double* ptr_ = nullptr;
};

template <typename T, Method M, int R>
__global__ void downsample_kernel(const detail::Params<R> p) {
  const int64_t step = int64_t{blockDim.x} * gridDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < p.total; i += step) {
    detail::downsample_voxel<T, M, R>(p, i);
  }
}

template <typename T, Method M, int R>
void launch(const detail::Plan& plan, const double* weights, cudaStream_t stream) {
  const detail::Params<R> p = detail::make_params<R>(plan, weights);
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((plan.total + kThreads - 1) / kThreads, int64_t{1} << 20);
  downsample_kernel<T, M, R><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace

void downsample(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors, Method method,
                Stream stream) {
  voxcore::detail::check_downsample_args(src, dst, factors, kWhere);  // shared with the host
  if (src.num_elements() == 0) return;
  check_device_pointer(src.data, "src");
  check_device_pointer(dst.data, "dst");
  auto s = static_cast<cudaStream_t>(stream);
  if (src.rank() == 0) {
    // One voxel, copied as is (as on the CPU: no round trip through double).
    check(cudaMemcpyAsync(dst.data, src.data, itemsize(src.dtype), cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return;
  }
  const detail::Plan plan = detail::make_plan(src, dst, factors, method);
  DeviceWeights weights;
  const double* w = method == Method::kGaussian ? weights.upload(plan.weights, s) : nullptr;
  const bool small = detail::plan_rank(plan) <= detail::kSmallRank;
  detail::visit_dtype(src.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    detail::visit_method(method, [&](auto how) {
      constexpr Method M = decltype(how)::value;
      if (small) {
        launch<T, M, detail::kSmallRank>(plan, w, s);
      } else {
        launch<T, M, kMaxRank>(plan, w, s);
      }
    });
  });
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

}  // namespace voxcore::cuda
