#include "voxcore/transform.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"

// The device tests need the CUDA runtime in the test binary: tests/cpp/CMakeLists.txt defines
// VOXCORE_WITH_CUDA (0 or 1) for the tests and links CUDA::cudart_static when it is 1.
#if defined(VOXCORE_WITH_CUDA) && VOXCORE_WITH_CUDA
#include <cuda_runtime.h>
#define VOXCORE_TEST_CUDA_RUNTIME 1
#endif

namespace voxcore {
namespace {

// One dtype per itemsize the kernels specialise on.
const DType kDTypes[] = {DType::kUInt8, DType::kUInt16, DType::kFloat32, DType::kFloat64, DType::kComplex128};

std::vector<uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

int64_t count(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

const uint8_t* at(const ArrayView& v, const std::vector<int64_t>& idx) {
  const auto* p = static_cast<const uint8_t*>(v.data);
  for (int i = 0; i < v.rank(); ++i) p += idx[i] * v.byte_strides[i];
  return p;
}

// Advances a C-order multi-index; false after the last one.
bool next(std::vector<int64_t>& idx, const Shape& shape) {
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (++idx[i] < shape[i]) return true;
    idx[i] = 0;
  }
  return false;
}

// Element-by-element reference for permute_flip into a fresh C-order buffer.
std::vector<uint8_t> reference(const ArrayView& src, const std::vector<int>& perm, const std::vector<bool>& flips) {
  const int rank = src.rank();
  const std::size_t item = itemsize(src.dtype);
  Shape out_shape(rank);
  for (int i = 0; i < rank; ++i) out_shape[i] = src.shape[perm[i]];
  std::vector<uint8_t> out(static_cast<std::size_t>(count(out_shape)) * item);
  if (out.empty()) return out;
  std::vector<int64_t> idx(rank, 0), sidx(rank, 0);
  std::size_t pos = 0;
  do {
    for (int i = 0; i < rank; ++i) sidx[perm[i]] = flips[i] ? out_shape[i] - 1 - idx[i] : idx[i];
    std::memcpy(out.data() + pos, at(src, sidx), item);
    pos += item;
  } while (next(idx, out_shape));
  return out;
}

// Packs a strided view into C-order bytes.
std::vector<uint8_t> pack(const ArrayView& v) {
  const std::size_t item = itemsize(v.dtype);
  std::vector<uint8_t> out(static_cast<std::size_t>(count(v.shape)) * item);
  if (out.empty()) return out;
  std::vector<int64_t> idx(v.rank(), 0);
  std::size_t pos = 0;
  do {
    std::memcpy(out.data() + pos, at(v, idx), item);
    pos += item;
  } while (next(idx, v.shape));
  return out;
}

void check_permute_flip(const ArrayView& src, const std::vector<int>& perm, const std::vector<bool>& flips,
                        Executor* executor = nullptr) {
  Shape out_shape(src.rank());
  for (int i = 0; i < src.rank(); ++i) out_shape[i] = src.shape[perm[i]];
  std::vector<uint8_t> out(static_cast<std::size_t>(count(out_shape)) * itemsize(src.dtype) + 1, 0xAB);
  permute_flip(src, ArrayView::contiguous(out.data(), src.dtype, out_shape), perm, flips, executor);
  EXPECT_EQ(out.back(), 0xAB) << "wrote past the end";
  out.pop_back();
  std::string what = std::string(dtype_name(src.dtype)) + " perm=";
  for (int p : perm) what += std::to_string(p);
  what += " flips=";
  for (bool f : flips) what += f ? '1' : '0';
  ASSERT_TRUE(out == reference(src, perm, flips)) << what;
}

std::vector<std::vector<int>> all_perms(int rank) {
  std::vector<int> p(rank);
  std::iota(p.begin(), p.end(), 0);
  std::vector<std::vector<int>> out;
  do out.push_back(p);
  while (std::next_permutation(p.begin(), p.end()));
  return out;
}

std::vector<bool> flips_from_mask(int rank, int mask) {
  std::vector<bool> f(rank);
  for (int i = 0; i < rank; ++i) f[i] = (mask >> i) & 1;
  return f;
}

TEST(TransformCopy, ContiguousAndChunkScatter) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    auto chunk = random_bytes(16 * 16 * 16 * item, 1);
    std::vector<uint8_t> big(40 * 50 * 60 * item, 0);
    ArrayView dst = ArrayView::contiguous(big.data(), dt, {40, 50, 60}).subview({3, 20, 33}, {16, 16, 16});
    copy(ArrayView::contiguous(chunk.data(), dt, {16, 16, 16}), dst);
    EXPECT_TRUE(pack(dst) == chunk) << dtype_name(dt);
    // Nothing outside the box was written.
    const uint8_t zero[16] = {};
    ArrayView whole = ArrayView::contiguous(big.data(), dt, {40, 50, 60});
    EXPECT_TRUE(all_equal(whole.subview({0, 0, 0}, {3, 50, 60}), zero));
    EXPECT_TRUE(all_equal(whole.subview({19, 0, 0}, {21, 50, 60}), zero));
    EXPECT_TRUE(all_equal(whole.subview({3, 0, 0}, {16, 20, 60}), zero));
    EXPECT_TRUE(all_equal(whole.subview({3, 20, 0}, {16, 16, 33}), zero));
    EXPECT_TRUE(all_equal(whole.subview({3, 20, 49}, {16, 16, 11}), zero));
  }
}

TEST(TransformCopy, NegativeAndOddStrides) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    auto bytes = random_bytes(9 * 14 * 21 * item, 2);
    ArrayView base = ArrayView::contiguous(bytes.data(), dt, {9, 14, 21});
    // Every other row, every third column, flipped along two axes.
    ArrayView src = base;
    src.shape = {9, 7, 7};
    src.byte_strides = {base.byte_strides[0], 2 * base.byte_strides[1], 3 * base.byte_strides[2]};
    src = src.flipped(0).flipped(2);
    const auto expected = pack(src);
    // Into a contiguous destination, and into a strided, flipped one.
    std::vector<uint8_t> out(expected.size());
    copy(src, ArrayView::contiguous(out.data(), dt, src.shape));
    EXPECT_TRUE(out == expected) << dtype_name(dt);
    std::vector<uint8_t> wide(9 * 7 * 14 * item, 0);
    ArrayView dst = ArrayView::contiguous(wide.data(), dt, {9, 7, 14});
    dst.shape = {9, 7, 7};
    dst.byte_strides[2] *= 2;
    dst = dst.flipped(1);
    copy(src, dst);
    EXPECT_TRUE(pack(dst) == expected) << dtype_name(dt);
  }
}

TEST(TransformCopy, FortranOrderDestinationTransposes) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    const Shape shape = {33, 70, 129};
    auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * item, 3);
    ArrayView src = ArrayView::contiguous(bytes.data(), dt, shape);
    std::vector<uint8_t> out(bytes.size());
    // A Fortran-order view of out: the destination's fastest axis is the source's slowest.
    ArrayView dst = ArrayView::contiguous(out.data(), dt, {129, 70, 33}).permuted({2, 1, 0});
    copy(src, dst);
    EXPECT_TRUE(pack(dst) == bytes) << dtype_name(dt);
  }
}

TEST(TransformCopy, ScalarEmptyAndMismatch) {
  uint32_t a = 0xDEADBEEF, b = 0;
  copy(ArrayView::contiguous(&a, DType::kUInt32, {}), ArrayView::contiguous(&b, DType::kUInt32, {}));
  EXPECT_EQ(b, a);
  copy(ArrayView::contiguous(nullptr, DType::kUInt32, {0, 5}), ArrayView::contiguous(nullptr, DType::kUInt32, {0, 5}));
  uint8_t buf[64] = {};
  try {
    copy(ArrayView::contiguous(buf, DType::kUInt8, {4, 4}), ArrayView::contiguous(buf, DType::kUInt8, {4, 5}));
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  try {
    copy(ArrayView::contiguous(buf, DType::kUInt8, {4}), ArrayView::contiguous(buf, DType::kInt8, {4}));
    FAIL() << "dtype mismatch accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(TransformCopy, ParallelMatchesSerial) {
  ThreadPool pool(3);
  // Many rows, one long row (split into column ranges), and a reversed long row.
  for (const Shape& shape : {Shape{300, 100, 77}, Shape{3'000'001}, Shape{2, 1'500'001}}) {
    auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * 2, 4);
    ArrayView src = ArrayView::contiguous(bytes.data(), DType::kUInt16, shape);
    std::vector<uint8_t> out(bytes.size(), 0);
    copy(src, ArrayView::contiguous(out.data(), DType::kUInt16, shape), &pool);
    EXPECT_TRUE(out == bytes);
    ArrayView flipped = src.flipped(src.rank() - 1);
    copy(flipped, ArrayView::contiguous(out.data(), DType::kUInt16, shape), &pool);
    EXPECT_TRUE(out == pack(flipped));
  }
}

TEST(TransformCopy, RgbPixelsIntoPlanes) {
  // Interleaved (rows, cols, 3) bytes into (3, rows, cols) planes (a slide tile into c, y, x),
  // also a window of a wider plane, from an odd source address, serially and split by a pool.
  ThreadPool pool(2);
  struct Case { int64_t rows, cols, width; };
  for (const Case& c : {Case{1, 1, 1}, Case{3, 15, 15}, Case{2, 16, 19}, Case{5, 17, 40}, Case{4, 47, 47},
                        Case{7, 100, 131}, Case{1, 2'000'003, 2'000'003}, Case{600, 1000, 1000}}) {
    auto bytes = random_bytes(static_cast<std::size_t>(c.rows * c.cols * 3) + 1, 21);
    ArrayView src = ArrayView::contiguous(bytes.data() + 1, DType::kUInt8, Shape{c.rows, c.cols, 3});
    const int64_t plane = c.rows * c.width;
    for (ThreadPool* executor : {static_cast<ThreadPool*>(nullptr), &pool}) {
      std::vector<uint8_t> out(static_cast<std::size_t>(3 * plane), 0xEE);
      ArrayView dst{out.data(), DType::kUInt8, Shape{c.rows, c.cols, 3}, {c.width, 1, plane}};
      copy(src, dst, executor);
      bool same = true;
      for (int64_t ch = 0; ch < 3 && same; ++ch) {
        for (int64_t y = 0; y < c.rows && same; ++y) {
          for (int64_t x = 0; x < c.width && same; ++x) {
            const uint8_t got = out[static_cast<std::size_t>(ch * plane + y * c.width + x)];
            const uint8_t want = x < c.cols ? bytes[static_cast<std::size_t>(1 + (y * c.cols + x) * 3 + ch)] : 0xEE;
            same = got == want;
          }
        }
      }
      EXPECT_TRUE(same) << c.rows << "x" << c.cols << " in rows of " << c.width << (executor ? " (pool)" : "");
    }
  }
}

TEST(TransformCopy, LargeCopyIntoUnalignedDestination) {
  // Past the streaming-store threshold, into a destination at an odd address, rows and one run.
  ThreadPool pool(2);
  for (const Shape& shape : {Shape{9, 2'000'003}, Shape{18'000'005}}) {
    auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * 2, 12);
    std::vector<uint8_t> out(bytes.size() + 3, 0);
    copy(ArrayView::contiguous(bytes.data(), DType::kUInt16, shape),
         ArrayView::contiguous(out.data() + 1, DType::kUInt16, shape), &pool);
    EXPECT_EQ(out[0], 0);
    EXPECT_EQ(out[bytes.size() + 1], 0);
    EXPECT_EQ(std::memcmp(out.data() + 1, bytes.data(), bytes.size()), 0);
  }
}

TEST(TransformFill, ContiguousStridedAndWide) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    std::vector<uint8_t> buf(10 * 12 * 14 * item, 0);
    ArrayView whole = ArrayView::contiguous(buf.data(), dt, {10, 12, 14});
    const auto value = random_bytes(item, 5);
    // Strided and flipped box: only its elements change.
    ArrayView box = whole.subview({2, 1, 3}, {5, 4, 9});
    box.byte_strides[1] *= 2;
    box = box.flipped(2);
    fill(box, value.data());
    EXPECT_TRUE(all_equal(box, value.data())) << dtype_name(dt);
    std::vector<int64_t> idx(3, 0);
    int64_t changed = 0;
    do {
      if (std::memcmp(at(whole, idx), value.data(), item) == 0) ++changed;
    } while (next(idx, whole.shape));
    EXPECT_EQ(changed, 5 * 4 * 9) << dtype_name(dt);
    fill(whole, value.data());
    EXPECT_TRUE(all_equal(whole, value.data())) << dtype_name(dt);
  }
  // Uniform bytes take the memset path.
  std::vector<uint16_t> v(1000, 1);
  const uint16_t ff = 0xFFFF;
  fill(ArrayView::contiguous(v.data(), DType::kUInt16, {10, 100}), &ff);
  EXPECT_EQ(std::count(v.begin(), v.end(), 0xFFFF), 1000);
}

TEST(TransformAllEqual, DetectsAnyDifference) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    std::vector<uint8_t> buf(7 * 9 * 5000 * item, 0);
    ArrayView whole = ArrayView::contiguous(buf.data(), dt, {7, 9, 5000});
    const auto value = random_bytes(item, 6);
    fill(whole, value.data());
    EXPECT_TRUE(all_equal(whole, value.data()));
    EXPECT_TRUE(all_equal(whole.flipped(1), value.data()));
    // A difference in one byte of the last element, then in the first.
    buf.back() ^= 1;
    EXPECT_FALSE(all_equal(whole, value.data())) << dtype_name(dt);
    EXPECT_FALSE(all_equal(whole.flipped(0).flipped(2), value.data())) << dtype_name(dt);
    EXPECT_TRUE(all_equal(whole.subview({0, 0, 0}, {7, 9, 4999}), value.data())) << dtype_name(dt);
    buf.back() ^= 1;
    buf.front() ^= 0x80;
    EXPECT_FALSE(all_equal(whole, value.data())) << dtype_name(dt);
  }
  EXPECT_TRUE(all_equal(ArrayView::contiguous(nullptr, DType::kUInt8, {3, 0}), "x"));
}

TEST(TransformByteswap, AllUnits) {
  std::vector<uint8_t> b(48);
  std::iota(b.begin(), b.end(), 0);
  auto c = b;
  byteswap_inplace(c.data(), 48, 1);
  EXPECT_TRUE(c == b);
  for (std::size_t unit : {2, 4, 8, 16, 3}) {
    c = b;
    const std::size_t n = 48 / unit;
    byteswap_inplace(c.data(), n, unit);
    for (std::size_t i = 0; i < n * unit; ++i) {
      EXPECT_EQ(c[i], b[(i / unit) * unit + (unit - 1 - i % unit)]) << "unit=" << unit << " i=" << i;
    }
    byteswap_inplace(c.data(), n, unit);
    EXPECT_TRUE(c == b) << "unit=" << unit;
  }
}

TEST(TransformPermuteFlip, Rank3AllPermsAndFlips) {
  // Odd sizes; the second shape spans several tiles with ragged edges.
  for (const Shape& shape : {Shape{3, 5, 7}, Shape{37, 70, 45}}) {
    for (DType dt : kDTypes) {
      auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * itemsize(dt), 7);
      ArrayView src = ArrayView::contiguous(bytes.data(), dt, shape);
      for (const auto& perm : all_perms(3)) {
        for (int mask = 0; mask < 8; ++mask) check_permute_flip(src, perm, flips_from_mask(3, mask));
      }
    }
  }
}

TEST(TransformPermuteFlip, OtherRanks) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    for (const Shape& shape : {Shape{131}, Shape{67, 150}, Shape{5, 6, 19, 33}, Shape{3, 4, 2, 5, 17}, Shape{1, 40, 1, 3}}) {
      const int rank = static_cast<int>(shape.size());
      auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * item, 8);
      ArrayView src = ArrayView::contiguous(bytes.data(), dt, shape);
      const auto perms = all_perms(rank);
      for (std::size_t i = 0; i < perms.size(); i += (rank == 5 ? 7 : 1)) {
        for (int mask = 0; mask < (1 << rank); mask += (rank >= 4 ? 3 : 1)) {
          check_permute_flip(src, perms[i], flips_from_mask(rank, mask));
        }
      }
    }
  }
}

TEST(TransformPermuteFlip, NonContiguousSources) {
  for (DType dt : kDTypes) {
    const std::size_t item = itemsize(dt);
    auto bytes = random_bytes(20 * 90 * 100 * item, 9);
    ArrayView base = ArrayView::contiguous(bytes.data(), dt, {20, 90, 100});
    // A box, a flipped box, a box with a stepped fastest axis, and an already permuted view.
    ArrayView stepped = base.subview({1, 2, 3}, {17, 80, 40});
    stepped.byte_strides[2] *= 2;
    for (const ArrayView& src : {base.subview({2, 5, 7}, {11, 70, 90}), base.subview({0, 10, 1}, {19, 66, 71}).flipped(1),
                                 stepped, base.permuted({2, 0, 1}).subview({4, 3, 5}, {77, 13, 50})}) {
      for (const auto& perm : all_perms(3)) {
        check_permute_flip(src, perm, {true, false, true});
        check_permute_flip(src, perm, {false, true, false});
      }
    }
  }
}

TEST(TransformPermuteFlip, ThreadedLargeTranspose) {
  ThreadPool pool(4);
  const Shape shape = {96, 130, 260};
  for (DType dt : {DType::kUInt8, DType::kUInt16, DType::kFloat64}) {
    auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * itemsize(dt), 10);
    ArrayView src = ArrayView::contiguous(bytes.data(), dt, shape);
    check_permute_flip(src, {2, 1, 0}, {true, false, false}, &pool);
    check_permute_flip(src, {0, 2, 1}, {false, true, true}, &pool);
    check_permute_flip(src, {1, 0, 2}, {false, false, true}, &pool);
  }
}

TEST(TransformPermuteFlip, StreamedOutputIntoUnalignedView) {
  // Outputs large enough for the streaming-store path, written into a box of a wider array that
  // starts at an odd address, so rows start at different offsets within their cache lines.
  ThreadPool pool(2);
  const std::pair<DType, Shape> cases[] = {{DType::kUInt8, {301, 331, 330}},
                                           {DType::kUInt16, {250, 257, 263}},
                                           {DType::kComplex128, {127, 129, 131}}};
  for (const auto& [dt, shape] : cases) {
    const std::size_t item = itemsize(dt);
    auto bytes = random_bytes(static_cast<std::size_t>(count(shape)) * item, 11);
    ArrayView src = ArrayView::contiguous(bytes.data(), dt, shape);
    const Shape wide_shape = {shape[2] + 1, shape[1], shape[0] + 1};
    std::vector<uint8_t> out(static_cast<std::size_t>(count(wide_shape)) * item + 1, 0);
    ArrayView wide = ArrayView::contiguous(out.data() + 1, dt, wide_shape);
    ArrayView dst = wide.subview({1, 0, 1}, {shape[2], shape[1], shape[0]});
    permute_flip(src, dst, {2, 1, 0}, {true, false, true}, &pool);
    EXPECT_TRUE(pack(dst) == reference(src, {2, 1, 0}, {true, false, true})) << dtype_name(dt);
    const uint8_t zero[16] = {};
    EXPECT_TRUE(all_equal(wide.subview({0, 0, 0}, {1, shape[1], shape[0] + 1}), zero)) << dtype_name(dt);
    EXPECT_TRUE(all_equal(wide.subview({0, 0, 0}, {shape[2] + 1, shape[1], 1}), zero)) << dtype_name(dt);
    EXPECT_EQ(out[0], 0);
  }
}

TEST(TransformPermuteFlip, RejectsBadArguments) {
  std::vector<uint8_t> a(24), b(24);
  ArrayView src = ArrayView::contiguous(a.data(), DType::kUInt8, {2, 3, 4});
  ArrayView dst = ArrayView::contiguous(b.data(), DType::kUInt8, {4, 3, 2});
  auto code_of = [&](const std::vector<int>& perm, const std::vector<bool>& flips, const ArrayView& d) {
    try {
      permute_flip(src, d, perm, flips);
    } catch (const Error& e) {
      return static_cast<int>(e.code());
    }
    return -1;
  };
  const int invalid = static_cast<int>(ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of({2, 1, 0}, {false, false, false}, dst), -1);
  EXPECT_EQ(code_of({2, 1}, {false, false}, dst), invalid);
  EXPECT_EQ(code_of({2, 1, 0}, {false, false}, dst), invalid);
  EXPECT_EQ(code_of({2, 2, 0}, {false, false, false}, dst), invalid);
  EXPECT_EQ(code_of({3, 1, 0}, {false, false, false}, dst), invalid);
  EXPECT_EQ(code_of({0, 1, 2}, {false, false, false}, dst), invalid);  // dst has the wrong shape
  ArrayView wrong_dtype = ArrayView::contiguous(b.data(), DType::kInt8, {4, 3, 2});
  EXPECT_EQ(code_of({2, 1, 0}, {false, false, false}, wrong_dtype), invalid);
}

// permute_flip_scale equals the same-dtype permute_flip followed by a per-element convert, multiply
// and add rounded in the destination type (numpy's astype, *=, +=).
template <typename S, typename D>
void check_permute_flip_scale(const Shape& shape, DType st, DType dt, const std::vector<int>& perm,
                              const std::vector<bool>& flips, double slope, double inter, Executor* executor) {
  std::mt19937 rng(12);
  std::vector<S> src_data(static_cast<std::size_t>(count(shape)));
  for (auto& v : src_data) v = static_cast<S>(rng() % 2000) - static_cast<S>(std::is_signed_v<S> ? 1000 : 0);
  ArrayView src = ArrayView::contiguous(src_data.data(), st, shape);
  const std::vector<uint8_t> moved = reference(src, perm, flips);
  const S* m = reinterpret_cast<const S*>(moved.data());
  Shape out_shape(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) out_shape[i] = shape[perm[i]];
  std::vector<D> out(src_data.size() + 1, D(-7));
  permute_flip_scale(src, ArrayView::contiguous(out.data(), dt, out_shape), perm, flips, slope, inter, executor);
  EXPECT_EQ(out.back(), D(-7)) << "wrote past the end";
  for (std::size_t i = 0; i < src_data.size(); ++i) {
    D want = static_cast<D>(m[i]);
    if (slope != 1.0) want = want * static_cast<D>(slope);
    if (inter != 0.0) want = want + static_cast<D>(inter);
    ASSERT_EQ(out[i], want) << dtype_name(st) << "->" << dtype_name(dt) << " at " << i;
  }
}

TEST(TransformPermuteFlipScale, MatchesPermuteThenScale) {
  ThreadPool pool(3);
  for (const Shape& shape : {Shape{3, 5, 7}, Shape{37, 70, 45}, Shape{2, 9, 130, 3}}) {
    const int rank = static_cast<int>(shape.size());
    for (const auto& perm : all_perms(rank)) {
      const std::vector<bool> flips = flips_from_mask(rank, static_cast<int>(perm[0] * 3 + 1));
      check_permute_flip_scale<uint16_t, float>(shape, DType::kUInt16, DType::kFloat32, perm, flips, 0.37, -12.5, &pool);
      check_permute_flip_scale<int16_t, double>(shape, DType::kInt16, DType::kFloat64, perm, flips, 2.0, 0.0, nullptr);
      check_permute_flip_scale<float, float>(shape, DType::kFloat32, DType::kFloat32, perm, flips, 1.0, 3.25, &pool);
      check_permute_flip_scale<int64_t, float>(shape, DType::kInt64, DType::kFloat32, perm, flips, 1.0, 0.0, nullptr);
    }
  }
}

TEST(TransformPermuteFlipScale, RejectsBadArguments) {
  std::vector<uint16_t> a(24);
  std::vector<float> b(24);
  std::vector<int32_t> c(24);
  ArrayView src = ArrayView::contiguous(a.data(), DType::kUInt16, {2, 3, 4});
  auto code_of = [&](const std::vector<int>& perm, const ArrayView& d) {
    try {
      permute_flip_scale(src, d, perm, {false, false, false}, 2.0, 1.0);
    } catch (const Error& e) {
      return static_cast<int>(e.code());
    }
    return -1;
  };
  const ArrayView good = ArrayView::contiguous(b.data(), DType::kFloat32, {4, 3, 2});
  EXPECT_EQ(code_of({2, 1, 0}, good), -1);
  EXPECT_EQ(code_of({2, 1, 1}, good), static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_EQ(code_of({0, 1, 2}, good), static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_EQ(code_of({2, 1, 0}, ArrayView::contiguous(c.data(), DType::kInt32, {4, 3, 2})),
            static_cast<int>(ErrorCode::kUnsupported));
}


// ---- cuda::permute_flip (cuda.hpp) against the CPU permute_flip ----
//
// The argument checks run in any CUDA build (host pointers: they fail before memory is touched);
// the kernels run on a device and are skipped without one.

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

TEST(CudaPermuteFlip, RejectsBadArgumentsLikeTheCpu) {
  if (!cuda::is_compiled()) GTEST_SKIP() << "built without CUDA";
  // Host pointers are fine here: every check fails before any device work.
  uint8_t a[24] = {}, b[24] = {};
  struct Bad {
    ArrayView src, dst;
    std::vector<int> perm;
    std::vector<bool> flips;
  };
  const ArrayView src = ArrayView::contiguous(a, DType::kUInt8, {2, 3, 4});
  const ArrayView dst = ArrayView::contiguous(b, DType::kUInt8, {4, 3, 2});
  ArrayView short_strides = src;
  short_strides.byte_strides.pop_back();
  const std::vector<bool> none(3, false);
  const std::vector<Bad> bad = {
      {src, dst, {2, 1}, {false, false}},                                        // perm length
      {src, dst, {2, 1, 0}, {false, false}},                                     // flips length
      {src, dst, {2, 2, 0}, none},                                               // repeated axis
      {src, dst, {3, 1, 0}, none},                                               // axis out of range
      {src, ArrayView::contiguous(b, DType::kUInt8, {2, 3, 4}), {2, 1, 0}, none},  // dst shape
      {src, ArrayView::contiguous(b, DType::kInt8, {4, 3, 2}), {2, 1, 0}, none},   // dst dtype
      {short_strides, dst, {2, 1, 0}, none},                                     // src strides
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    std::string cpu_message;
    ErrorCode cpu_code = ErrorCode::kCuda;
    try {
      permute_flip(bad[i].src, bad[i].dst, bad[i].perm, bad[i].flips);
      ADD_FAILURE() << "CPU accepted bad case " << i;
    } catch (const Error& e) {
      cpu_code = e.code();
      cpu_message = e.what();
    }
    try {
      cuda::permute_flip(bad[i].src, bad[i].dst, bad[i].perm, bad[i].flips);
      ADD_FAILURE() << "GPU accepted bad case " << i;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), cpu_code) << "case " << i;
      std::string expected = cpu_message;
      const std::string where = "[permute_flip]";
      if (expected.compare(0, where.size(), where) == 0) expected.replace(0, where.size(), "[cuda::permute_flip]");
      EXPECT_EQ(std::string(e.what()), expected) << "case " << i;
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
