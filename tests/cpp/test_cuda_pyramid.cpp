// cuda::downsample against the CPU downsample. Three layers, so that a machine without a GPU
// still checks most of it: the argument checks (any CUDA build, host pointers: they fail before
// memory is touched), the per-voxel kernel bodies run on the host over every output voxel (every
// build), and the kernels on a device (skipped without one).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iomanip>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../../cuda/detail/pyramid_kernels.cuh"
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"
#include "voxcore/pyramid.hpp"
#include "voxcore/transform.hpp"

// tests/cpp/CMakeLists.txt defines VOXCORE_WITH_CUDA (0 or 1) and links the CUDA runtime for 1.
#if defined(VOXCORE_WITH_CUDA) && VOXCORE_WITH_CUDA
#include <cuda_runtime.h>
#define VOXCORE_TEST_CUDA_RUNTIME 1
#endif

namespace voxcore {
namespace {

namespace kernels = cuda::detail;

const DType kDTypes[] = {DType::kInt8,  DType::kUInt8,  DType::kInt16, DType::kUInt16,  DType::kInt32,
                         DType::kUInt32, DType::kInt64, DType::kUInt64, DType::kFloat32, DType::kFloat64};
const Method kMethods[] = {Method::kMean, Method::kGaussian, Method::kMode,
                           Method::kNearest, Method::kMin, Method::kMax};

const char* method_name(Method m) {
  switch (m) {
    case Method::kMean: return "mean";
    case Method::kGaussian: return "gaussian";
    case Method::kMode: return "mode";
    case Method::kNearest: return "nearest";
    case Method::kMin: return "min";
    case Method::kMax: return "max";
  }
  return "?";
}

int64_t count(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

// ---- test data ----

template <typename T>
T random_value(std::mt19937_64& rng, Method method) {
  if (method == Method::kMode) {
    // Few distinct values: long runs and ties. Floats also get NaNs, which count as one value.
    const uint64_t r = rng() % 5;
    if constexpr (std::is_floating_point<T>::value) {
      if (r == 4) return std::numeric_limits<T>::quiet_NaN();
    }
    return static_cast<T>(r);
  }
  if constexpr (std::is_floating_point<T>::value) {
    // Magnitudes from 2^-20 to 2^20, so a float sum's rounding depends on the order of the adds;
    // now and then a NaN or an infinity.
    const uint64_t r = rng();
    if (r % 61 == 0) return std::numeric_limits<T>::quiet_NaN();
    if (r % 67 == 0) return (r & 1) ? std::numeric_limits<T>::infinity() : -std::numeric_limits<T>::infinity();
    const double mantissa = static_cast<double>(rng() >> 11) / 9007199254740992.0 + 0.5;
    const int exponent = static_cast<int>(rng() % 41) - 20;
    return static_cast<T>(((r >> 7) & 1 ? -1.0 : 1.0) * std::ldexp(mantissa, exponent));
  } else {
    return static_cast<T>(rng());  // the full range: sums must not overflow
  }
}

// A view of `shape` into a byte buffer. Layouts: 0 C-contiguous; 1 every other item of the last
// axis, axis 0 reversed and an offset on axis 1; 2 axes reversed in memory (transposed strides);
// 3 C-contiguous at an odd byte address (misaligned for every multi-byte type).
struct Buffer {
  std::vector<uint8_t> bytes;
  ArrayView view;
};

Buffer make_buffer(DType dt, const Shape& shape, int layout) {
  const int rank = static_cast<int>(shape.size());
  const int64_t item = static_cast<int64_t>(itemsize(dt));
  Shape base = shape;
  if (layout == 1 && rank > 0) {
    base.back() *= 2;
    if (rank > 1) base[1] += 3;
  }
  if (layout == 2) base.assign(shape.rbegin(), shape.rend());
  std::vector<int64_t> cstride(rank);
  int64_t s = item;
  for (int a = rank - 1; a >= 0; --a) {
    cstride[a] = s;
    s *= base[a];
  }
  Buffer b;
  b.bytes.assign(static_cast<std::size_t>(count(base) * item + 16), 0);
  int64_t offset = layout == 3 ? 1 : 0;
  std::vector<int64_t> strides(rank);
  for (int a = 0; a < rank; ++a) strides[a] = layout == 2 ? cstride[rank - 1 - a] : cstride[a];
  if (layout == 1 && rank > 0) {
    strides.back() *= 2;
    if (rank > 1) offset += 3 * strides[1];
    offset += (shape[0] - 1) * strides[0];
    strides[0] = -strides[0];
  }
  b.view.data = b.bytes.data() + offset;
  b.view.dtype = dt;
  b.view.shape = shape;
  b.view.byte_strides = strides;
  return b;
}

template <typename T>
void fill_random(const ArrayView& v, Method method, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> idx(v.shape.size(), 0);
  const int64_t n = count(v.shape);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int a = v.rank() - 1; a >= 0; --a) {
      off += (rem % v.shape[a]) * v.byte_strides[a];
      rem /= v.shape[a];
    }
    const T x = random_value<T>(rng, method);
    std::memcpy(static_cast<uint8_t*>(v.data) + off, &x, sizeof(T));
  }
}

void fill_random(const ArrayView& v, Method method, uint64_t seed) {
  kernels::visit_dtype(v.dtype, [&](auto tag) { fill_random<typename decltype(tag)::type>(v, method, seed); });
}

// The view's items in C order.
std::vector<uint8_t> gather(const ArrayView& v) {
  std::vector<uint8_t> out(static_cast<std::size_t>(count(v.shape)) * itemsize(v.dtype));
  copy(v, ArrayView::contiguous(out.data(), v.dtype, v.shape));
  return out;
}

// Equal bits, or both NaN (a NaN's sign and payload differ between CPUs and GPUs). Gaussian:
// integers within 1, floats within a few units of rounding.
template <typename T>
std::string first_difference(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, Method method) {
  const std::size_t n = want.size() / sizeof(T);
  for (std::size_t i = 0; i < n; ++i) {
    T g, w;
    std::memcpy(&g, got.data() + i * sizeof(T), sizeof(T));
    std::memcpy(&w, want.data() + i * sizeof(T), sizeof(T));
    if (std::memcmp(&g, &w, sizeof(T)) == 0) continue;
    if constexpr (std::is_floating_point<T>::value) {
      if (std::isnan(g) && std::isnan(w)) continue;
      if (method == Method::kGaussian && std::isfinite(w) &&
          std::abs(static_cast<double>(g) - static_cast<double>(w)) <=
              8 * std::numeric_limits<T>::epsilon() * std::max(1.0, std::abs(static_cast<double>(w)))) {
        continue;
      }
    } else {
      if (method == Method::kGaussian && (g > w ? g - w : w - g) <= 1) continue;
    }
    std::ostringstream out;
    out << std::setprecision(17) << "item " << i << ": got " << +g << ", want " << +w;
    return out.str();
  }
  return "";
}

std::string first_difference(DType dt, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                             Method method) {
  std::string out;
  kernels::visit_dtype(dt, [&](auto tag) { out = first_difference<typename decltype(tag)::type>(got, want, method); });
  return out;
}

struct Case {
  Shape shape;
  std::vector<int64_t> factors;
};

// Odd shapes, partial edge windows, factors beyond the extent, unit axes, rank 1 to 6 (rank 5
// and up take the kernels' general path), mode windows above kModeLocal.
const Case kCases[] = {
    {{7, 10, 9}, {2, 2, 2}},     {{7, 10, 9}, {1, 2, 3}},       {{9, 5, 11}, {3, 1, 2}},
    {{6, 8, 7}, {4, 4, 4}},      {{33}, {2}},                   {{31}, {5}},
    {{5, 1, 13, 4}, {2, 2, 3, 2}}, {{3, 4, 1}, {1, 2, 2}},      {{1, 1, 1}, {1, 1, 1}},
    {{2, 3, 4, 5, 3}, {2, 2, 2, 2, 2}}, {{2, 1, 3, 1, 4, 3}, {1, 1, 2, 1, 2, 2}}, {{19, 17}, {9, 8}},
    {{3, 2}, {4, 5}},
};

std::string describe(DType dt, Method m, const Case& c, int src_layout, int dst_layout) {
  std::string s = std::string(dtype_name(dt)) + " " + method_name(m) + " shape=[";
  for (int64_t v : c.shape) s += std::to_string(v) + ",";
  s += "] factors=[";
  for (int64_t v : c.factors) s += std::to_string(v) + ",";
  return s + "] layouts=" + std::to_string(src_layout) + "/" + std::to_string(dst_layout);
}

// ---- argument checks ----

TEST(CudaDownsample, StubThrowsUnavailable) {
  if (cuda::is_compiled()) GTEST_SKIP() << "CUDA kernels are compiled in";
  uint8_t a[8] = {}, b[1] = {};
  try {
    cuda::downsample(ArrayView::contiguous(a, DType::kUInt8, {2, 2, 2}),
                     ArrayView::contiguous(b, DType::kUInt8, {1, 1, 1}), {2, 2, 2}, Method::kMean);
    FAIL() << "stub did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

TEST(CudaDownsample, RejectsBadArgumentsLikeTheCpu) {
  if (!cuda::is_compiled()) GTEST_SKIP() << "built without CUDA";
  // Host pointers are fine here: every check fails before any device work.
  alignas(16) uint8_t a[512] = {}, b[512] = {};
  struct Bad {
    ArrayView src, dst;
    std::vector<int64_t> factors;
  };
  const auto view = [](uint8_t* p, DType dt, Shape s) { return ArrayView::contiguous(p, dt, std::move(s)); };
  const std::vector<Bad> bad = {
      {view(a, DType::kUInt16, {4, 6}), view(b, DType::kInt16, {2, 3}), {2, 2}},          // dtype
      {view(a, DType::kUInt16, {4, 6}), view(b, DType::kUInt16, {2, 3, 1}), {2, 2}},      // rank
      {view(a, DType::kUInt16, {4, 6}), view(b, DType::kUInt16, {2, 3}), {2, 2, 2}},      // factor count
      {view(a, DType::kUInt16, {4, 6}), view(b, DType::kUInt16, {2, 3}), {2, 0}},         // factor < 1
      {view(a, DType::kUInt16, {5, 6}), view(b, DType::kUInt16, {2, 3}), {2, 2}},         // dst shape
      {view(a, DType::kBool, {4, 6}), view(b, DType::kBool, {2, 3}), {2, 2}},             // unsupported
      {view(a, DType::kFloat16, {4, 6}), view(b, DType::kFloat16, {2, 3}), {2, 2}},
      {view(a, DType::kComplex64, {4, 6}), view(b, DType::kComplex64, {2, 3}), {2, 2}},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    std::string cpu_message;
    ErrorCode cpu_code = ErrorCode::kCuda;
    try {
      downsample(bad[i].src, bad[i].dst, bad[i].factors, Method::kMean);
      ADD_FAILURE() << "CPU accepted bad case " << i;
    } catch (const Error& e) {
      cpu_code = e.code();
      cpu_message = e.what();
    }
    try {
      cuda::downsample(bad[i].src, bad[i].dst, bad[i].factors, Method::kMean);
      ADD_FAILURE() << "GPU accepted bad case " << i;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), cpu_code) << "case " << i;
      std::string expected = cpu_message;
      const std::string where = "[downsample]";
      if (expected.compare(0, where.size(), where) == 0) expected.replace(0, where.size(), "[cuda::downsample]");
      EXPECT_EQ(std::string(e.what()), expected) << "case " << i;
    }
  }
  // An empty source is no work: nothing is checked or touched (not even the pointers).
  cuda::downsample(ArrayView::contiguous(nullptr, DType::kFloat32, {0, 5}),
                   ArrayView::contiguous(nullptr, DType::kFloat32, {0, 3}), {2, 2}, Method::kGaussian);
}

// ---- the kernel bodies, run on the host ----

// Every output voxel through kernels::downsample_voxel, as the kernel would, on host memory.
void run_bodies_on_host(const ArrayView& src, const ArrayView& dst, const std::vector<int64_t>& factors,
                        Method method) {
  const kernels::Plan plan = kernels::make_plan(src, dst, factors, method);
  const bool small = kernels::plan_rank(plan) <= kernels::kSmallRank;
  kernels::visit_dtype(src.dtype, [&](auto type) {
    using T = typename decltype(type)::type;
    kernels::visit_method(method, [&](auto how) {
      constexpr Method M = decltype(how)::value;
      if (small) {
        const auto p = kernels::make_params<kernels::kSmallRank>(plan, plan.weights.data());
        for (int64_t i = 0; i < p.total; ++i) kernels::downsample_voxel<T, M, kernels::kSmallRank>(p, i);
      } else {
        const auto p = kernels::make_params<kMaxRank>(plan, plan.weights.data());
        for (int64_t i = 0; i < p.total; ++i) kernels::downsample_voxel<T, M, kMaxRank>(p, i);
      }
    });
  });
}

TEST(CudaDownsampleKernels, HostRunMatchesCpu) {
  uint64_t seed = 1;
  for (DType dt : kDTypes) {
    for (Method m : kMethods) {
      for (const Case& c : kCases) {
        for (int layout = 0; layout < 4; ++layout) {
          const int dst_layout = layout == 1 ? 1 : 0;
          Buffer src = make_buffer(dt, c.shape, layout);
          fill_random(src.view, m, ++seed);
          const Shape out_shape = downsampled_shape(c.shape, c.factors);
          Buffer want = make_buffer(dt, out_shape, 0), got = make_buffer(dt, out_shape, dst_layout);
          downsample(src.view, want.view, c.factors, m);
          run_bodies_on_host(src.view, got.view, c.factors, m);
          const std::string diff = first_difference(dt, gather(got.view), gather(want.view), m);
          EXPECT_EQ(diff, "") << describe(dt, m, c, layout, dst_layout);
        }
      }
    }
  }
}

// ---- on a device ----

#if defined(VOXCORE_TEST_CUDA_RUNTIME)
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(std::size_t n) { EXPECT_EQ(cudaMalloc(&ptr, n == 0 ? 1 : n), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(ptr); }
};

// The host buffer's view moved to a device copy of the buffer (same offsets and strides).
ArrayView on_device(const Buffer& host, const DeviceBuffer& dev) {
  ArrayView v = host.view;
  v.data = static_cast<uint8_t*>(dev.ptr) + (static_cast<const uint8_t*>(host.view.data) - host.bytes.data());
  return v;
}

// cuda::downsample on a device copy of a random source, compared with the CPU downsample.
std::string compare_on_device(DType dt, Method m, const Case& c, int src_layout, int dst_layout, uint64_t seed,
                              cudaStream_t stream = nullptr) {
  Buffer src = make_buffer(dt, c.shape, src_layout);
  fill_random(src.view, m, seed);
  const Shape out_shape = downsampled_shape(c.shape, c.factors);
  Buffer want = make_buffer(dt, out_shape, 0), got = make_buffer(dt, out_shape, dst_layout);
  downsample(src.view, want.view, c.factors, m);
  DeviceBuffer d_src(src.bytes.size()), d_dst(got.bytes.size());
  EXPECT_EQ(cudaMemcpy(d_src.ptr, src.bytes.data(), src.bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
  cuda::downsample(on_device(src, d_src), on_device(got, d_dst), c.factors, m, stream);
  EXPECT_EQ(cudaMemcpy(got.bytes.data(), d_dst.ptr, got.bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  const std::string diff = first_difference(dt, gather(got.view), gather(want.view), m);
  return diff.empty() ? diff : describe(dt, m, c, src_layout, dst_layout) + ": " + diff;
}
#endif

TEST(CudaDownsample, MatchesCpu) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if !defined(VOXCORE_TEST_CUDA_RUNTIME)
  GTEST_SKIP() << "test binary built without the CUDA runtime";
#else
  uint64_t seed = 1000;
  for (DType dt : kDTypes) {
    for (Method m : kMethods) {
      for (const Case& c : kCases) {
        for (int layout = 0; layout < 4; ++layout) {
          EXPECT_EQ(compare_on_device(dt, m, c, layout, layout == 1 ? 1 : 0, ++seed), "");
        }
      }
    }
  }
#endif
}

TEST(CudaDownsample, LargeVolumesOnAStream) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if !defined(VOXCORE_TEST_CUDA_RUNTIME)
  GTEST_SKIP() << "test binary built without the CUDA runtime";
#else
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (Method m : kMethods) {
    EXPECT_EQ(compare_on_device(DType::kUInt16, m, {{67, 130, 301}, {2, 2, 2}}, 0, 0, 7, stream), "");
    EXPECT_EQ(compare_on_device(DType::kFloat32, m, {{40, 90, 101}, {1, 3, 2}}, 1, 1, 8, stream), "");
  }
  EXPECT_EQ(compare_on_device(DType::kUInt8, Method::kMean, {{3000000}, {3}}, 0, 0, 9, stream), "");
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
#endif
}

TEST(CudaDownsample, RankZeroIsACopy) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#if !defined(VOXCORE_TEST_CUDA_RUNTIME)
  GTEST_SKIP() << "test binary built without the CUDA runtime";
#else
  const int64_t value = (int64_t{1} << 62) + 1;  // not a double: no round trip through one
  DeviceBuffer s(8), d(8);
  ASSERT_EQ(cudaMemcpy(s.ptr, &value, 8, cudaMemcpyHostToDevice), cudaSuccess);
  for (Method m : kMethods) {
    ASSERT_EQ(cudaMemset(d.ptr, 0, 8), cudaSuccess);
    cuda::downsample(ArrayView::contiguous(s.ptr, DType::kInt64, {}), ArrayView::contiguous(d.ptr, DType::kInt64, {}),
                     {}, m);
    int64_t got = 0;
    ASSERT_EQ(cudaMemcpy(&got, d.ptr, 8, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(got, value) << method_name(m);
  }
#endif
}

TEST(CudaDownsample, RejectsHostMemory) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  std::vector<uint16_t> a(64), b(16);
  try {
    cuda::downsample(ArrayView::contiguous(a.data(), DType::kUInt16, {8, 8}),
                     ArrayView::contiguous(b.data(), DType::kUInt16, {4, 4}), {2, 2}, Method::kMean);
    FAIL() << "host pointers accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace voxcore
