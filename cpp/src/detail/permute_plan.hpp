#pragma once
// Private: the argument checks of copy() and permute_flip() and the plan of a strided copy, shared
// by the CPU engine (transform_copy.cpp, transform_permute.cpp) and the CUDA kernels
// (cuda/permute_flip.cu), so that both accept the same arguments with the same messages and walk
// the same normalised problem. Host code only; g++ and nvcc compile it alike.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "voxcore/array_view.hpp"

namespace voxcore::detail {

// kInvalidArgument under `where` unless v has one stride per axis and rank <= kMaxRank.
void check_strides(const ArrayView& v, const char* where);
// kInvalidArgument under `where` unless src and dst have the same dtype and shape (the message
// gives dst's as expected, src's as got).
void check_same(const ArrayView& src, const ArrayView& dst, const char* where);
// src seen through perm, then flipped along the permuted axes where flips says. Checks first
// (kInvalidArgument under `where`): perm and flips one entry per axis, perm a permutation, src and
// dst with usable strides. Does not compare the result with dst.
ArrayView permuted_flipped(const ArrayView& src, const ArrayView& dst, const std::vector<int>& perm,
                           const std::vector<bool>& flips, const char* where);

// Source rank plus one: the CUDA kernels may split a misaligned item into an extra innermost axis
// of smaller words.
inline constexpr int kPlanRankCap = kMaxRank + 1;

// A copy dst[i] = src[i] normalised: size-1 axes dropped, destination strides made non-negative
// (an axis walked backwards in both views maps the same elements), axes ordered by decreasing
// destination stride and neighbours merged where both views are contiguous across them. Lives on
// the stack.
struct StridePlan {
  int rank = 0;
  int64_t n[kPlanRankCap];
  int64_t ss[kPlanRankCap];
  int64_t ds[kPlanRankCap];
  const uint8_t* src = nullptr;
  uint8_t* dst = nullptr;

  int64_t outer_rows() const {
    int64_t r = 1;
    for (int i = 0; i + 1 < rank; ++i) r *= n[i];
    return r;
  }
};

// Building a plan: plan_start, then plan_axis per axis (any order), then plan_merge.
inline void plan_start(StridePlan& p, const uint8_t* src, uint8_t* dst) {
  p.rank = 0;
  p.src = src;
  p.dst = dst;
}

inline void plan_axis(StridePlan& p, int64_t n, int64_t s, int64_t d) {
  if (n == 1) return;
  if (d < 0) {
    p.src += (n - 1) * s;
    p.dst += (n - 1) * d;
    s = -s;
    d = -d;
  }
  int j = p.rank++;
  for (; j > 0 && p.ds[j - 1] < d; --j) {
    p.n[j] = p.n[j - 1];
    p.ss[j] = p.ss[j - 1];
    p.ds[j] = p.ds[j - 1];
  }
  p.n[j] = n;
  p.ss[j] = s;
  p.ds[j] = d;
}

inline void plan_merge(StridePlan& p) {
  int m = 0;
  for (int i = 0; i < p.rank; ++i) {
    if (m > 0 && p.ss[m - 1] == p.ss[i] * p.n[i] && p.ds[m - 1] == p.ds[i] * p.n[i]) {
      p.n[m - 1] *= p.n[i];
      p.ss[m - 1] = p.ss[i];
      p.ds[m - 1] = p.ds[i];
    } else {
      p.n[m] = p.n[i];
      p.ss[m] = p.ss[i];
      p.ds[m] = p.ds[i];
      ++m;
    }
  }
  p.rank = m;
}

// The plan of copying `shape` items from src to dst, strides in bytes (at most kMaxRank axes).
inline void make_plan(const uint8_t* src, const int64_t* src_strides, uint8_t* dst, const int64_t* dst_strides,
                      const Shape& shape, StridePlan& p) {
  plan_start(p, src, dst);
  for (std::size_t i = 0; i < shape.size(); ++i) plan_axis(p, shape[i], src_strides[i], dst_strides[i]);
  plan_merge(p);
}

// The plan axis the source moves fastest along (the smallest |source stride|, the last axis when
// it ties). When it is not the last axis (the destination's fastest), the copy is a transpose of
// those two axes and runs in tiles. rank >= 1.
inline int fastest_src_axis(const StridePlan& p) {
  int b = p.rank - 1;
  for (int i = 0; i < p.rank; ++i) {
    if (std::llabs(p.ss[i]) < std::llabs(p.ss[b])) b = i;
  }
  return b;
}

}  // namespace voxcore::detail
