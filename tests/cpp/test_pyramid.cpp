#include "voxcore/pyramid.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iomanip>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../../cuda/detail/pyramid_kernels.cuh"
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"
#include "voxcore/thread_pool.hpp"
#include "voxcore/transform.hpp"

// tests/cpp/CMakeLists.txt defines VOXCORE_WITH_CUDA (0 or 1) and links the CUDA runtime for 1.
#if defined(VOXCORE_WITH_CUDA) && VOXCORE_WITH_CUDA
#include <cuda_runtime.h>
#define VOXCORE_TEST_CUDA_RUNTIME 1
#endif

namespace voxcore {
namespace {

__extension__ typedef __int128 Int128;

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

template <typename T> DType dtype_of();
template <> DType dtype_of<uint8_t>() { return DType::kUInt8; }
template <> DType dtype_of<int8_t>() { return DType::kInt8; }
template <> DType dtype_of<uint16_t>() { return DType::kUInt16; }
template <> DType dtype_of<int16_t>() { return DType::kInt16; }
template <> DType dtype_of<uint32_t>() { return DType::kUInt32; }
template <> DType dtype_of<int32_t>() { return DType::kInt32; }
template <> DType dtype_of<uint64_t>() { return DType::kUInt64; }
template <> DType dtype_of<int64_t>() { return DType::kInt64; }
template <> DType dtype_of<float>() { return DType::kFloat32; }
template <> DType dtype_of<double>() { return DType::kFloat64; }

int64_t count(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

bool next(std::vector<int64_t>& idx, const Shape& shape) {
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (++idx[i] < shape[i]) return true;
    idx[i] = 0;
  }
  return false;
}

template <typename T>
T get(const ArrayView& v, const std::vector<int64_t>& idx) {
  const auto* p = static_cast<const uint8_t*>(v.data);
  for (int i = 0; i < v.rank(); ++i) p += idx[i] * v.byte_strides[i];
  T x;
  std::memcpy(&x, p, sizeof(T));
  return x;
}

template <typename T>
bool is_nan(T x) {
  return x != x;
}

// ---- the naive reference: every output voxel, every voxel of its window ----

template <typename T>
T ref_reduce(std::vector<T> w, Method method) {
  switch (method) {
    case Method::kMean: {
      if constexpr (std::is_floating_point<T>::value) {
        double s = 0;
        for (T x : w) s += x;
        return static_cast<T>(s / static_cast<double>(w.size()));
      } else {
        Int128 s = 0;
        for (T x : w) s += x;
        const Int128 c = static_cast<Int128>(w.size());
        const Int128 q = s >= 0 ? (2 * s + c) / (2 * c) : -((-2 * s + c) / (2 * c));
        return static_cast<T>(q);
      }
    }
    case Method::kMin:
    case Method::kMax: {
      for (T x : w) {
        if (is_nan(x)) return x;
      }
      return method == Method::kMin ? *std::min_element(w.begin(), w.end()) : *std::max_element(w.begin(), w.end());
    }
    case Method::kMode: {
      T best{};
      std::size_t best_n = 0;
      for (T v : w) {
        std::size_t n = 0;
        for (T x : w) n += (x == v || (is_nan(x) && is_nan(v)));
        // NaN is ordered above every number.
        const bool smaller = is_nan(best) ? !is_nan(v) : (!is_nan(v) && v < best);
        if (n > best_n || (n == best_n && smaller)) {
          best = v;
          best_n = n;
        }
      }
      return best;
    }
    default:
      return w[0];  // kNearest: the first voxel of the window
  }
}

template <typename T>
std::vector<T> reference(const ArrayView& src, const std::vector<int64_t>& f, Method method) {
  const Shape out_shape = downsampled_shape(src.shape, f);
  const int rank = src.rank();
  std::vector<T> out;
  if (count(out_shape) == 0) return out;
  std::vector<int64_t> o(rank, 0);
  do {
    if (method == Method::kGaussian) {
      // Product of per-axis normalised weights (sigma = f/2, 3 sigma, replicate edges).
      std::vector<std::vector<std::pair<int64_t, double>>> taps(rank);
      for (int a = 0; a < rank; ++a) {
        if (f[a] == 1) {
          taps[a].push_back({o[a], 1.0});
          continue;
        }
        const double sigma = f[a] / 2.0, c = o[a] * f[a] + (f[a] - 1) / 2.0;
        double sum = 0;
        for (int64_t k = -1000; k <= 1000; ++k) {
          const double x = k - c;
          if (std::abs(x) > 3 * sigma) continue;
          const double g = std::exp(-x * x / (2 * sigma * sigma));
          taps[a].push_back({std::clamp<int64_t>(k, 0, src.shape[a] - 1), g});
          sum += g;
        }
        for (auto& t : taps[a]) t.second /= sum;
      }
      double acc = 0;
      std::vector<int64_t> t(rank, 0), tn(rank), idx(rank);
      for (int a = 0; a < rank; ++a) tn[a] = static_cast<int64_t>(taps[a].size());
      do {
        double w = 1;
        for (int a = 0; a < rank; ++a) {
          idx[a] = taps[a][t[a]].first;
          w *= taps[a][t[a]].second;
        }
        acc += w * static_cast<double>(get<T>(src, idx));
      } while (next(t, tn));
      if constexpr (std::is_floating_point<T>::value) {
        out.push_back(static_cast<T>(acc));
      } else {
        const double r = std::round(acc);
        out.push_back(r <= static_cast<double>(std::numeric_limits<T>::lowest())  ? std::numeric_limits<T>::lowest()
                      : r >= static_cast<double>(std::numeric_limits<T>::max()) ? std::numeric_limits<T>::max()
                                                                                 : static_cast<T>(r));
      }
      continue;
    }
    Shape win(rank);
    for (int a = 0; a < rank; ++a) win[a] = std::min(f[a], src.shape[a] - o[a] * f[a]);
    std::vector<int64_t> w(rank, 0), idx(rank);
    std::vector<T> vals;
    do {
      for (int a = 0; a < rank; ++a) idx[a] = o[a] * f[a] + w[a];
      vals.push_back(get<T>(src, idx));
    } while (next(w, win));
    out.push_back(ref_reduce<T>(vals, method));
  } while (next(o, out_shape));
  return out;
}

// ---- test data ----

template <typename T>
T random_value(std::mt19937_64& rng, bool small) {
  if (small) return static_cast<T>(rng() % 4);  // many ties for mode
  if constexpr (std::is_floating_point<T>::value) {
    // Multiples of 1/8 in [-512, 512): every window sum is exact in double, in any order.
    return static_cast<T>(static_cast<double>(static_cast<int64_t>(rng() % 8192) - 4096) / 8);
  } else {
    return static_cast<T>(rng());  // the full range: sums must not overflow
  }
}

// A source of `shape` in one of three layouts: C-contiguous, every other element of the last axis,
// or that with axis 0 reversed (negative stride).
template <typename T>
ArrayView make_source(std::vector<T>& storage, const Shape& shape, int layout, std::mt19937_64& rng, bool small) {
  Shape base = shape;
  if (layout > 0) base.back() *= 2;
  storage.resize(static_cast<std::size_t>(std::max<int64_t>(1, count(base))));
  for (T& x : storage) x = random_value<T>(rng, small);
  ArrayView v = ArrayView::contiguous(storage.data(), dtype_of<T>(), base);
  if (layout > 0) {
    v.shape = shape;
    v.byte_strides.back() *= 2;
  }
  if (layout == 2) v = v.flipped(0);
  return v;
}

template <typename T>
void expect_matches(const std::vector<T>& got, const std::vector<T>& want, Method method, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (is_nan(want[i])) {
      ASSERT_TRUE(is_nan(got[i])) << what << " at " << i;
    } else if (method == Method::kGaussian) {
      // Same formula, different summation order; computed in double, so 64-bit integers beyond
      // 2^53 are only as exact as a double (errors scale with the inputs, not the result).
      const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
      const double tol = std::is_floating_point<T>::value ? 1e-5 * (1 + std::abs(w)) : sizeof(T) < 8 ? 1.0
                                                                  : 1e-14 * static_cast<double>(std::numeric_limits<T>::max());
      ASSERT_NEAR(g, w, tol) << what << " at " << i;
    } else {
      ASSERT_EQ(got[i], want[i]) << what << " at " << i;
    }
  }
}

template <typename T>
void check_against_reference(Executor* executor) {
  const std::vector<Shape> shapes = {{7}, {8}, {5, 7}, {4, 6}, {5, 6, 7}, {3, 4, 5, 7}, {2, 3, 1, 9}};
  std::mt19937_64 rng(42);
  for (const Shape& shape : shapes) {
    const int rank = static_cast<int>(shape.size());
    std::vector<std::vector<int64_t>> factor_sets(4, std::vector<int64_t>(rank));
    for (int a = 0; a < rank; ++a) {
      factor_sets[0][a] = 1;
      factor_sets[1][a] = 2;
      factor_sets[2][a] = 3;
      factor_sets[3][a] = a == 0 ? 1 : (a % 2 ? 2 : 3);  // mixed, e.g. {1,2,3,2}
    }
    for (const auto& f : factor_sets) {
      for (int layout = 0; layout < 3; ++layout) {
        for (bool small : {false, true}) {
          std::vector<T> storage;
          const ArrayView src = make_source<T>(storage, shape, layout, rng, small);
          const Shape out_shape = downsampled_shape(shape, f);
          for (Method method : kMethods) {
            std::vector<T> out(static_cast<std::size_t>(count(out_shape)));
            downsample(src, ArrayView::contiguous(out.data(), dtype_of<T>(), out_shape), f, method, executor);
            std::string what = std::string(dtype_name(dtype_of<T>())) + " " + method_name(method) + " rank " +
                               std::to_string(rank) + " layout " + std::to_string(layout) + " f0 " +
                               std::to_string(f[0]) + " f_last " + std::to_string(f.back());
            expect_matches<T>(out, reference<T>(src, f, method), method, what);
          }
        }
      }
    }
  }
}

TEST(DownsampleReference, UInt8) { check_against_reference<uint8_t>(nullptr); }
TEST(DownsampleReference, UInt16) { check_against_reference<uint16_t>(nullptr); }
TEST(DownsampleReference, Int16) { check_against_reference<int16_t>(nullptr); }
TEST(DownsampleReference, Int8) { check_against_reference<int8_t>(nullptr); }
TEST(DownsampleReference, UInt32) { check_against_reference<uint32_t>(nullptr); }
TEST(DownsampleReference, Int64) { check_against_reference<int64_t>(nullptr); }
TEST(DownsampleReference, UInt64) { check_against_reference<uint64_t>(nullptr); }
TEST(DownsampleReference, Float32) { check_against_reference<float>(nullptr); }
TEST(DownsampleReference, Float64) { check_against_reference<double>(nullptr); }

// Large enough to be split across the pool; a strided destination too.
TEST(DownsampleReference, ParallelAndStridedDestination) {
  ThreadPool pool(4);
  std::mt19937_64 rng(7);
  const Shape shape = {21, 70, 401};
  const std::vector<int64_t> f = {2, 2, 2};
  std::vector<uint16_t> storage;
  const ArrayView src = make_source<uint16_t>(storage, shape, 0, rng, false);
  const Shape out_shape = downsampled_shape(shape, f);
  for (Method method : kMethods) {
    if (method == Method::kGaussian) continue;  // the product-weight reference is too slow here
    std::vector<uint16_t> out(static_cast<std::size_t>(count(out_shape)) * 2);
    ArrayView dst = ArrayView::contiguous(out.data(), DType::kUInt16, out_shape);
    for (auto& s : dst.byte_strides) s *= 2;
    dst.byte_strides.back() = 4;
    downsample(src, dst, f, method, &pool);
    std::vector<uint16_t> got;
    std::vector<int64_t> idx(3, 0);
    do got.push_back(get<uint16_t>(dst, idx)); while (next(idx, out_shape));
    expect_matches<uint16_t>(got, reference<uint16_t>(src, f, method), method, method_name(method));
  }
  // Gaussian: pooled equals single-threaded.
  std::vector<uint16_t> a(static_cast<std::size_t>(count(out_shape))), b(a.size());
  downsample(src, ArrayView::contiguous(a.data(), DType::kUInt16, out_shape), f, Method::kGaussian, &pool);
  ThreadPool one(1);
  downsample(src, ArrayView::contiguous(b.data(), DType::kUInt16, out_shape), f, Method::kGaussian, &one);
  EXPECT_EQ(a, b);
}

// ---- specific promises ----

template <typename T>
std::vector<T> run1(std::vector<T> in, int64_t f, Method method) {
  const Shape out_shape = downsampled_shape({static_cast<int64_t>(in.size())}, {f});
  std::vector<T> out(static_cast<std::size_t>(out_shape[0]));
  downsample(ArrayView::contiguous(in.data(), dtype_of<T>(), {static_cast<int64_t>(in.size())}),
             ArrayView::contiguous(out.data(), dtype_of<T>(), out_shape), {f}, method);
  return out;
}

TEST(DownsampleMean, RoundsHalfAwayFromZero) {
  EXPECT_EQ(run1<uint8_t>({1, 2}, 2, Method::kMean), std::vector<uint8_t>{2});
  EXPECT_EQ(run1<uint8_t>({1, 1, 2}, 3, Method::kMean), std::vector<uint8_t>{1});
  EXPECT_EQ(run1<uint8_t>({1, 2, 2}, 3, Method::kMean), std::vector<uint8_t>{2});
  EXPECT_EQ(run1<int16_t>({-1, -2}, 2, Method::kMean), std::vector<int16_t>{-2});
  EXPECT_EQ(run1<int16_t>({-1, 2}, 2, Method::kMean), std::vector<int16_t>{1});
  EXPECT_EQ(run1<int32_t>({-1, -1, -2}, 3, Method::kMean), std::vector<int32_t>{-1});
  // The partial window at the end averages only what exists.
  EXPECT_EQ(run1<uint16_t>({1, 2, 4, 6, 9}, 2, Method::kMean), (std::vector<uint16_t>{2, 5, 9}));
  EXPECT_EQ(run1<float>({1, 2, 4}, 2, Method::kMean), (std::vector<float>{1.5f, 4.0f}));
}

TEST(DownsampleMean, NoOverflowAtExtremes) {
  const uint64_t u = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(run1<uint64_t>({u, u, u, u - 1}, 4, Method::kMean), std::vector<uint64_t>{u});
  EXPECT_EQ(run1<uint64_t>({u, u - 2}, 2, Method::kMean), std::vector<uint64_t>{u - 1});
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(run1<int64_t>({lo, lo, lo}, 3, Method::kMean), std::vector<int64_t>{lo});
  EXPECT_EQ(run1<int64_t>({hi, hi}, 2, Method::kMean), std::vector<int64_t>{hi});
  EXPECT_EQ(run1<int64_t>({lo, hi}, 2, Method::kMean), std::vector<int64_t>{-1});  // -0.5
  EXPECT_EQ(run1<int8_t>({-128, -128, -128}, 3, Method::kMean), std::vector<int8_t>{-128});
  EXPECT_EQ(run1<int8_t>({127, 127}, 2, Method::kMean), std::vector<int8_t>{127});
  EXPECT_EQ(run1<int8_t>({-128, 127}, 2, Method::kMean), std::vector<int8_t>{-1});
  // A big u16 window still sums exactly (wider than the 32-bit fast accumulator allows).
  std::vector<uint16_t> big(70000, 65535);
  EXPECT_EQ(run1<uint16_t>(big, 70000, Method::kMean), std::vector<uint16_t>{65535});
  std::vector<uint8_t> bytes(1000, 255);
  EXPECT_EQ(run1<uint8_t>(bytes, 1000, Method::kMean), std::vector<uint8_t>{255});
}

TEST(DownsampleMode, TiesGoToSmallest) {
  EXPECT_EQ(run1<uint8_t>({3, 1, 3, 1}, 4, Method::kMode), std::vector<uint8_t>{1});
  EXPECT_EQ(run1<int16_t>({5, -2, -2, 5, 7, 7}, 6, Method::kMode), std::vector<int16_t>{-2});
  EXPECT_EQ(run1<int32_t>({9, 4, 9, 4, 9}, 5, Method::kMode), std::vector<int32_t>{9});
  EXPECT_EQ(run1<uint16_t>({9, 8, 7}, 2, Method::kMode), (std::vector<uint16_t>{8, 7}));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(run1<double>({nan, 1.0}, 2, Method::kMode), std::vector<double>{1.0});
  EXPECT_TRUE(std::isnan(run1<double>({nan, nan, 1.0}, 3, Method::kMode)[0]));
}

TEST(DownsampleNaN, PropagatesThroughMinMaxMean) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Method m : {Method::kMin, Method::kMax, Method::kMean}) {
    for (const std::vector<float>& in : {std::vector<float>{nan, 1, 2}, {1, nan, 2}, {1, 2, nan}}) {
      EXPECT_TRUE(std::isnan(run1<float>(in, 3, m)[0])) << method_name(m);
    }
    const auto out = run1<float>({nan, 1, 2, 3}, 2, m);  // only the NaN's window
    EXPECT_TRUE(std::isnan(out[0]));
    EXPECT_FALSE(std::isnan(out[1]));
  }
  EXPECT_EQ(run1<float>({2, -1, 5}, 3, Method::kMin), std::vector<float>{-1});
  EXPECT_EQ(run1<float>({2, -1, 5}, 3, Method::kMax), std::vector<float>{5});
}

TEST(DownsampleNearest, TakesTheFirstVoxelOfEachWindow) {
  EXPECT_EQ(run1<int32_t>({0, 1, 2, 3, 4, 5, 6}, 3, Method::kNearest), (std::vector<int32_t>{0, 3, 6}));
}

TEST(DownsampleGaussian, ConstantStaysConstant) {
  const Shape shape = {9, 10, 5};
  const std::vector<int64_t> f = {2, 3, 1};
  const Shape out_shape = downsampled_shape(shape, f);
  std::vector<uint16_t> in(static_cast<std::size_t>(count(shape)), 1234), out(count(out_shape));
  downsample(ArrayView::contiguous(in.data(), DType::kUInt16, shape),
             ArrayView::contiguous(out.data(), DType::kUInt16, out_shape), f, Method::kGaussian);
  for (uint16_t v : out) ASSERT_EQ(v, 1234);
  std::vector<float> fin(in.size(), 0.7f), fout(out.size());
  downsample(ArrayView::contiguous(fin.data(), DType::kFloat32, shape),
             ArrayView::contiguous(fout.data(), DType::kFloat32, out_shape), f, Method::kGaussian);
  for (float v : fout) ASSERT_NEAR(v, 0.7f, 1e-6f);
}

TEST(DownsampleGaussian, ImpulseKeepsItsMass) {
  // Each output voxel stands for prod(f) input voxels, so sum(out) * prod(f) ~ the impulse.
  for (int64_t fac : {2, 3, 4}) {
    const Shape shape = {40, 41};
    const std::vector<int64_t> f = {fac, fac};
    const Shape out_shape = downsampled_shape(shape, f);
    std::vector<double> in(static_cast<std::size_t>(count(shape)), 0.0), out(count(out_shape));
    in[20 * 41 + 21] = 1.0;
    downsample(ArrayView::contiguous(in.data(), DType::kFloat64, shape),
               ArrayView::contiguous(out.data(), DType::kFloat64, out_shape), f, Method::kGaussian);
    const double mass = std::accumulate(out.begin(), out.end(), 0.0) * static_cast<double>(fac * fac);
    EXPECT_NEAR(mass, 1.0, 0.05) << fac;
    for (double v : out) EXPECT_GE(v, 0.0);
  }
}

TEST(DownsampleGaussian, ClampsIntegers) {
  EXPECT_EQ(run1<uint8_t>({255, 255, 255, 255, 255}, 2, Method::kGaussian), (std::vector<uint8_t>{255, 255, 255}));
  EXPECT_EQ(run1<int8_t>({-128, -128, -128}, 2, Method::kGaussian), (std::vector<int8_t>{-128, -128}));
}

void expect_code(ErrorCode code, const std::function<void()>& fn) {
  try {
    fn();
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
  }
}

TEST(DownsampleArguments, BadArgumentsThrow) {
  std::vector<uint8_t> in(24), out(24);
  const ArrayView src = ArrayView::contiguous(in.data(), DType::kUInt8, {4, 6});
  const auto dst = [&](DType t, Shape s) { return ArrayView::contiguous(out.data(), t, s); };
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt8, {2, 2}), {2, 2}, Method::kMean); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt16, {2, 3}), {2, 2}, Method::kMean); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt8, {2, 3}), {2}, Method::kMean); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt8, {4, 6}), {0, 1}, Method::kMean); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt8, {2, 3}), {2, -2}, Method::kMax); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample(src, dst(DType::kUInt8, {6}), {4}, Method::kMean); });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsampled_shape({4, 6}, {2}); });
  const ArrayView bsrc = ArrayView::contiguous(in.data(), DType::kBool, {4, 6});
  expect_code(ErrorCode::kUnsupported, [&] { downsample(bsrc, dst(DType::kBool, {2, 3}), {2, 2}, Method::kMean); });
}

TEST(DownsampleShape, CeilPerAxis) {
  EXPECT_EQ(downsampled_shape({512, 7, 1, 0}, {2, 2, 3, 2}), (Shape{256, 4, 1, 0}));
  EXPECT_EQ(downsampled_shape({}, {}), Shape{});
}

TEST(DownsampleShape, EmptyAndScalar) {
  std::vector<float> in(1, 3.5f), out(1, 0.0f);
  downsample(ArrayView::contiguous(in.data(), DType::kFloat32, {}), ArrayView::contiguous(out.data(), DType::kFloat32, {}),
             {}, Method::kMean);
  EXPECT_EQ(out[0], 3.5f);
  downsample(ArrayView::contiguous(in.data(), DType::kFloat32, {0, 3}),
             ArrayView::contiguous(out.data(), DType::kFloat32, {0, 2}), {2, 2}, Method::kGaussian);
}

// downsample_levels equals level-after-level downsample(), for every method, odd shapes
// (partial blocks and partial windows), ranks 1-4, uneven steps and a pool that splits blocks.
template <typename T>
void check_levels(const Shape& shape, const std::vector<std::vector<int64_t>>& steps, Executor* executor) {
  std::mt19937_64 rng(11);
  std::vector<T> in(static_cast<std::size_t>(count(shape)));
  for (auto& v : in) v = static_cast<T>(rng() % 50);
  const ArrayView src = ArrayView::contiguous(in.data(), dtype_of<T>(), shape);
  for (Method method : kMethods) {
    std::vector<std::vector<T>> fused(steps.size()), plain(steps.size());
    std::vector<ArrayView> fused_views, plain_views;
    Shape s = shape;
    for (std::size_t k = 0; k < steps.size(); ++k) {
      s = downsampled_shape(s, steps[k]);
      fused[k].assign(static_cast<std::size_t>(count(s)), T(0));
      plain[k].assign(fused[k].size(), T(1));
      fused_views.push_back(ArrayView::contiguous(fused[k].data(), dtype_of<T>(), s));
      plain_views.push_back(ArrayView::contiguous(plain[k].data(), dtype_of<T>(), s));
    }
    downsample_levels(src, fused_views, steps, method, executor);
    ArrayView prev = src;
    for (std::size_t k = 0; k < steps.size(); ++k) {
      downsample(prev, plain_views[k], steps[k], method, executor);
      prev = plain_views[k];
      EXPECT_EQ(fused[k], plain[k]) << method_name(method) << " level " << k + 1;
    }
  }
}

TEST(DownsampleLevels, EqualsLevelByLevel) {
  ThreadPool pool(3);
  check_levels<uint16_t>({37, 50, 61}, {{2, 2, 2}, {2, 2, 2}, {2, 2, 2}}, &pool);
  check_levels<uint8_t>({9, 130, 129}, {{1, 2, 2}, {1, 2, 2}, {3, 2, 2}}, &pool);
  check_levels<float>({5, 3, 40, 41}, {{1, 2, 2, 2}, {1, 1, 2, 2}}, &pool);
  check_levels<int32_t>({1001}, {{2}, {3}, {2}}, &pool);
  check_levels<int64_t>({70, 300}, {{2, 2}, {2, 2}}, &pool);
  check_levels<double>({300, 2, 3}, {{2, 2, 2}, {2, 1, 2}, {4, 1, 1}}, nullptr);
}

TEST(DownsampleLevels, BadInput) {
  std::vector<uint16_t> in(64), a(16), b(4);
  const ArrayView src = ArrayView::contiguous(in.data(), DType::kUInt16, {8, 8});
  const ArrayView l1 = ArrayView::contiguous(a.data(), DType::kUInt16, {4, 4});
  expect_code(ErrorCode::kInvalidArgument, [&] {
    downsample_levels(src, {l1}, {{2, 2}, {2, 2}}, Method::kMean);  // a step without a level
  });
  expect_code(ErrorCode::kInvalidArgument, [&] {
    downsample_levels(src, {l1, ArrayView::contiguous(b.data(), DType::kUInt16, {2, 3})}, {{2, 2}, {2, 2}},
                      Method::kMean);  // level 2 has the wrong shape
  });
  expect_code(ErrorCode::kInvalidArgument, [&] {
    downsample_levels(src, {ArrayView::contiguous(a.data(), DType::kInt16, {4, 4})}, {{2, 2}}, Method::kMax);
  });
  expect_code(ErrorCode::kInvalidArgument, [&] { downsample_levels(src, {l1}, {{2, 0}}, Method::kMean); });
  downsample_levels(src, {}, {}, Method::kMean);  // no levels: nothing to do
}

// ---- cuda::downsample (cuda.hpp) against the CPU downsample ----
//
// Three layers, so that a machine without a GPU still checks most of it: the argument checks (any
// CUDA build, host pointers: they fail before memory is touched), the per-voxel kernel bodies run
// on the host over every output voxel (every build), and the kernels on a device (skipped without
// one).

namespace kernels = cuda::detail;

const DType kDTypes[] = {DType::kInt8,  DType::kUInt8,  DType::kInt16, DType::kUInt16,  DType::kInt32,
                         DType::kUInt32, DType::kInt64, DType::kUInt64, DType::kFloat32, DType::kFloat64};

// ---- cuda: test data ----

template <typename T>
T random_device_input(std::mt19937_64& rng, Method method) {
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
    const T x = random_device_input<T>(rng, method);
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

// ---- cuda: argument checks ----

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

// ---- cuda: the kernel bodies, run on the host ----

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

// ---- cuda: on a device ----

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
