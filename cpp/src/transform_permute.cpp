// permute_flip() and permute_flip_scale() of strided views: the source's strides permuted and
// flipped, then copied by the copy engine (transform_copy.cpp), or converted tile by tile.
// Built with -ffp-contract=off (cpp/CMakeLists.txt): see scale_row.
#include "voxcore/transform.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "detail/permute_plan.hpp"
#include "voxcore/error.hpp"

namespace voxcore {

namespace detail {

ArrayView permuted_flipped(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                           const std::vector<bool>& flips, const char* where) {
  const int rank = src.rank();
  if (static_cast<int>(perm.size()) != rank || static_cast<int>(flips.size()) != rank) {
    fail(ErrorCode::kInvalidArgument, where,
         "perm/flips length must equal rank (expected=" + std::to_string(rank) +
             ", got=" + std::to_string(perm.size()) + "/" + std::to_string(flips.size()) + ")");
  }
  check_strides(src, where);
  check_strides(dst, where);
  bool seen[kMaxRank] = {};
  for (int axis : perm) {
    if (axis < 0 || axis >= rank || seen[axis]) {
      fail(ErrorCode::kInvalidArgument, where,
           "perm is not a permutation of the axes (got axis=" + std::to_string(axis) + ")");
    }
    seen[axis] = true;
  }
  ArrayView view = src.permuted(perm);
  for (int i = 0; i < rank; ++i) {
    if (flips[i]) view = view.flipped(i);
  }
  return view;
}

}  // namespace detail

using detail::permuted_flipped;

void permute_flip(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                  const std::vector<bool>& flips, Executor* executor) {
  const ArrayView view = permuted_flipped(src, dst, perm, flips, "permute_flip");
  detail::check_same(view, dst, "permute_flip");
  copy(view, dst, executor);
}

namespace {

// dst row[i] = D(src row[i]) * slope + inter, the multiply and the add each rounded in D (no
// fused multiply-add: this file is built with -ffp-contract=off), as numpy's astype then *= and
// += in the destination dtype.
template <typename S, typename D>
void scale_row(const uint8_t* src, uint8_t* dst, int64_t n, D slope, D inter, bool mul, bool add) {
  const S* s = reinterpret_cast<const S*>(src);
  D* d = reinterpret_cast<D*>(dst);
  if (mul && add) {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]) * slope + inter;
  } else if (mul) {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]) * slope;
  } else if (add) {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]) + inter;
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
  }
}

using ScaleRowFn = void (*)(const uint8_t*, uint8_t*, int64_t, double, double, bool, bool);

template <typename S, typename D>
void scale_row_erased(const uint8_t* src, uint8_t* dst, int64_t n, double slope, double inter, bool mul, bool add) {
  scale_row<S, D>(src, dst, n, static_cast<D>(slope), static_cast<D>(inter), mul, add);
}

template <typename D>
ScaleRowFn scale_row_for(DType src) {
  switch (src) {
    case DType::kInt8: return &scale_row_erased<int8_t, D>;
    case DType::kUInt8: return &scale_row_erased<uint8_t, D>;
    case DType::kInt16: return &scale_row_erased<int16_t, D>;
    case DType::kUInt16: return &scale_row_erased<uint16_t, D>;
    case DType::kInt32: return &scale_row_erased<int32_t, D>;
    case DType::kUInt32: return &scale_row_erased<uint32_t, D>;
    case DType::kInt64: return &scale_row_erased<int64_t, D>;
    case DType::kUInt64: return &scale_row_erased<uint64_t, D>;
    case DType::kFloat32: return &scale_row_erased<float, D>;
    case DType::kFloat64: return &scale_row_erased<double, D>;
    default: return nullptr;
  }
}

}  // namespace

void permute_flip_scale(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                        const std::vector<bool>& flips, double slope, double inter, Executor* executor) {
  const char* where = "permute_flip_scale";
  ScaleRowFn row = nullptr;
  if (dst.dtype == DType::kFloat32) row = scale_row_for<float>(src.dtype);
  if (dst.dtype == DType::kFloat64) row = scale_row_for<double>(src.dtype);
  if (row == nullptr) {
    fail(ErrorCode::kUnsupported, where,
         std::string("converts integer/float to float32/float64 (got=") + dtype_name(src.dtype) + "->" +
             dtype_name(dst.dtype) + ")");
  }
  const int rank = src.rank();
  const ArrayView view = permuted_flipped(src, dst, perm, flips, where);
  if (view.shape != dst.shape) {
    fail(ErrorCode::kInvalidArgument, where, "dst must have the permuted shape");
  }
  if (rank == 0) {
    row(static_cast<const uint8_t*>(src.data), static_cast<uint8_t*>(dst.data), 1, slope, inter, slope != 1.0,
        inter != 0.0);
    return;
  }
  for (int64_t n : dst.shape) {
    if (n == 0) return;
  }
  // Cache-sized tiles of dst: the permute moves a tile into a contiguous scratch (the copy engine's
  // tiled transposes), then the conversion streams it into dst while it is still in cache.
  const int last = rank - 1;
  int fast = last;  // the dst axis that is the fastest-moving one in the source
  for (int i = 0; i < rank; ++i) {
    if (std::llabs(view.byte_strides[i]) < std::llabs(view.byte_strides[fast]) && dst.shape[i] > 1) fast = i;
  }
  Shape tile(rank, 1);
  tile[last] = std::min<int64_t>(dst.shape[last], fast == last ? 4096 : 64);
  if (fast != last) tile[fast] = std::min<int64_t>(dst.shape[fast], 64);
  constexpr int64_t kTileElements = int64_t{1} << 16;
  int64_t elems = tile[last] * (fast == last ? 1 : tile[fast]);
  for (int i = last - 1; i >= 0 && elems < kTileElements; --i) {
    if (i == fast) continue;
    tile[i] = std::min<int64_t>(dst.shape[i], std::max<int64_t>(1, kTileElements / elems));
    elems *= tile[i];
  }
  Shape grid(rank);
  int64_t tiles = 1;
  for (int i = 0; i < rank; ++i) {
    grid[i] = (dst.shape[i] + tile[i] - 1) / tile[i];
    tiles *= grid[i];
  }
  const std::size_t src_item = itemsize(src.dtype);
  const bool mul = slope != 1.0, add = inter != 0.0;
  auto body = [&](int64_t t) {
    thread_local std::vector<uint8_t> scratch;
    Shape off(rank), ext(rank);
    int64_t rest = t, count = 1;
    for (int i = last; i >= 0; --i) {
      const int64_t g = rest % grid[i];
      rest /= grid[i];
      off[i] = g * tile[i];
      ext[i] = std::min(tile[i], dst.shape[i] - off[i]);
      count *= ext[i];
    }
    if (scratch.size() < static_cast<std::size_t>(count) * src_item) scratch.resize(count * src_item);
    const ArrayView part = ArrayView::contiguous(scratch.data(), src.dtype, ext);
    copy(view.subview(off, ext), part, nullptr);
    const ArrayView out = dst.subview(off, ext);
    const int64_t row_len = ext[last], rows = count / row_len;
    const bool dense = out.byte_strides[last] == static_cast<int64_t>(itemsize(dst.dtype));
    std::vector<uint8_t> tmp;
    if (!dense) tmp.resize(row_len * itemsize(dst.dtype));
    Shape idx(rank, 0);
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* d = static_cast<uint8_t*>(out.data);
      for (int i = 0; i < last; ++i) d += idx[i] * out.byte_strides[i];
      const uint8_t* s = scratch.data() + r * row_len * src_item;
      if (dense) {
        row(s, d, row_len, slope, inter, mul, add);
      } else {
        row(s, tmp.data(), row_len, slope, inter, mul, add);
        const std::size_t k = itemsize(dst.dtype);
        for (int64_t j = 0; j < row_len; ++j) std::memcpy(d + j * out.byte_strides[last], tmp.data() + j * k, k);
      }
      for (int i = last - 1; i >= 0; --i) {
        if (++idx[i] < ext[i]) break;
        idx[i] = 0;
      }
    }
  };
  if (executor == nullptr || executor->concurrency() <= 1 || tiles < 2) {
    for (int64_t t = 0; t < tiles; ++t) body(t);
  } else {
    executor->parallel_for(tiles, body);
  }
}

}  // namespace voxcore
