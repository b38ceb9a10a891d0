#include "voxcore/cuda.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

// The device test needs the CUDA runtime in the test binary: tests/cpp/CMakeLists.txt defines
// VOXCORE_WITH_CUDA (0 or 1) for the tests and links CUDA::cudart_static when it is 1.
#if defined(VOXCORE_WITH_CUDA) && VOXCORE_WITH_CUDA
#include <cuda_runtime.h>
#define VOXCORE_TEST_CUDA_RUNTIME 1
#endif

namespace voxcore {
namespace {

TEST(CudaBuild, IsCompiledMatchesBuild) {
#if defined(VOXCORE_WITH_CUDA)
  EXPECT_EQ(cuda::is_compiled(), VOXCORE_WITH_CUDA != 0);
#endif
  // Whatever the build, the queries agree with each other and never throw.
  EXPECT_EQ(cuda::is_available(), cuda::device_count() > 0);
  if (!cuda::is_compiled()) {
    EXPECT_FALSE(cuda::is_available());
    EXPECT_EQ(cuda::device_count(), 0);
  }
}

TEST(CudaPermuteFlip, StubThrowsUnavailable) {
  if (cuda::is_compiled()) GTEST_SKIP() << "CUDA kernels are compiled in";
  uint8_t a[4] = {}, b[4] = {};
  try {
    cuda::permute_flip(ArrayView::contiguous(a, DType::kUInt8, {2, 2}), ArrayView::contiguous(b, DType::kUInt8, {2, 2}),
                       {1, 0}, {false, false});
    FAIL() << "stub did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

TEST(CudaPermuteFlip, RejectsBadArgumentsBeforeTouchingMemory) {
  if (!cuda::is_compiled()) GTEST_SKIP() << "built without CUDA";
  // Host pointers are fine here: validation fails before any device work.
  uint8_t a[24] = {}, b[24] = {};
  ArrayView src = ArrayView::contiguous(a, DType::kUInt8, {2, 3, 4});
  for (const auto& perm : std::vector<std::vector<int>>{{2, 1}, {2, 2, 0}, {0, 1, 2}}) {
    try {
      cuda::permute_flip(src, ArrayView::contiguous(b, DType::kUInt8, {4, 3, 2}), perm,
                         std::vector<bool>(perm.size(), false));
      FAIL() << "accepted a bad perm/shape";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
}

#if defined(VOXCORE_TEST_CUDA_RUNTIME)
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(std::size_t n) { EXPECT_EQ(cudaMalloc(&ptr, n == 0 ? 1 : n), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(ptr); }
};

// Runs cuda::permute_flip on a device copy of host_src (a view of `src_shape` with the given
// byte strides relative to an offset into the buffer) and compares it with the CPU kernel.
void compare_with_cpu(DType dt, const Shape& shape, const std::vector<int>& perm, const std::vector<bool>& flips,
                      bool stepped) {
  const std::size_t item = itemsize(dt);
  Shape base_shape = shape;
  if (stepped) base_shape.back() *= 2;  // the source uses every other item of its fastest axis
  const int64_t base_count = std::accumulate(base_shape.begin(), base_shape.end(), int64_t{1}, std::multiplies<>());
  std::vector<uint8_t> host(static_cast<std::size_t>(base_count) * item);
  std::mt19937 rng(static_cast<unsigned>(shape.size() * 131 + item));
  for (auto& x : host) x = static_cast<uint8_t>(rng());

  ArrayView host_src = ArrayView::contiguous(host.data(), dt, base_shape);
  if (stepped) {
    host_src.shape = shape;
    host_src.byte_strides.back() *= 2;
  }
  Shape out_shape(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) out_shape[i] = shape[perm[i]];
  const int64_t out_count = std::accumulate(out_shape.begin(), out_shape.end(), int64_t{1}, std::multiplies<>());
  std::vector<uint8_t> expected(static_cast<std::size_t>(out_count) * item);
  permute_flip(host_src, ArrayView::contiguous(expected.data(), dt, out_shape), perm, flips);

  DeviceBuffer d_src(host.size()), d_dst(expected.size());
  ASSERT_EQ(cudaMemcpy(d_src.ptr, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  ArrayView dev_src = host_src;
  dev_src.data = d_src.ptr;
  cuda::permute_flip(dev_src, ArrayView::contiguous(d_dst.ptr, dt, out_shape), perm, flips);
  std::vector<uint8_t> got(expected.size());
  ASSERT_EQ(cudaMemcpy(got.data(), d_dst.ptr, got.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(got == expected) << dtype_name(dt) << " rank=" << shape.size() << " stepped=" << stepped;
}
#endif

TEST(CudaPermuteFlip, MatchesCpu) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if !defined(VOXCORE_TEST_CUDA_RUNTIME)
  GTEST_SKIP() << "test binary built without the CUDA runtime";
#else
  const DType dtypes[] = {DType::kUInt8, DType::kUInt16, DType::kFloat32, DType::kFloat64, DType::kComplex128};
  for (DType dt : dtypes) {
    std::vector<int> perm3 = {0, 1, 2};
    do {
      for (int mask = 0; mask < 8; ++mask) {
        const std::vector<bool> flips = {bool(mask & 1), bool(mask & 2), bool(mask & 4)};
        compare_with_cpu(dt, {37, 70, 45}, perm3, flips, false);
      }
      compare_with_cpu(dt, {9, 33, 65}, perm3, {true, false, true}, true);
    } while (std::next_permutation(perm3.begin(), perm3.end()));
    compare_with_cpu(dt, {1000}, {0}, {true}, false);
    compare_with_cpu(dt, {67, 150}, {1, 0}, {false, true}, false);
    compare_with_cpu(dt, {3, 5, 7, 2, 9}, {4, 2, 0, 3, 1}, {true, false, true, true, false}, false);
    compare_with_cpu(dt, {128, 1, 96}, {2, 1, 0}, {false, true, false}, false);
  }
#endif
}

TEST(CudaPermuteFlip, RejectsHostMemory) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  std::vector<uint16_t> a(64), b(64);
  try {
    cuda::permute_flip(ArrayView::contiguous(a.data(), DType::kUInt16, {8, 8}),
                       ArrayView::contiguous(b.data(), DType::kUInt16, {8, 8}), {1, 0}, {false, false});
    FAIL() << "host pointers accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(CudaPermuteFlip, LargeTransposeMatchesCpu) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if !defined(VOXCORE_TEST_CUDA_RUNTIME)
  GTEST_SKIP() << "test binary built without the CUDA runtime";
#else
  compare_with_cpu(DType::kUInt16, {256, 256, 256}, {2, 1, 0}, {true, false, false}, false);
  // More outer indices than grid.z allows and more b-tiles than grid.y allows.
  compare_with_cpu(DType::kUInt8, {70000, 2, 3}, {0, 2, 1}, {false, true, false}, false);
  compare_with_cpu(DType::kUInt8, {3, 2100000}, {1, 0}, {true, false}, false);
#endif
}

}  // namespace
}  // namespace voxcore
