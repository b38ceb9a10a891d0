#pragma once
#include <cstdint>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/dtype.hpp"

namespace voxcore {

using Shape = std::vector<int64_t>;

inline constexpr int kMaxRank = 32;

// A non-owning strided N-d view: pointer + dtype + shape + byte strides (may be negative).
// Permuting or flipping a view only rewrites strides; materialising is transform.hpp's job.
struct VOXCORE_API ArrayView {
  void* data = nullptr;
  DType dtype = DType::kUInt8;
  Shape shape;
  std::vector<int64_t> byte_strides;

  // C-order contiguous view of `shape` at `data`.
  static ArrayView contiguous(void* data, DType dtype, Shape shape);

  int rank() const noexcept { return static_cast<int>(shape.size()); }
  int64_t num_elements() const noexcept;
  bool is_c_contiguous() const noexcept;
  // View of the box [offset, offset + shape); no bounds checks beyond an assert-level check.
  ArrayView subview(const Shape& offset, const Shape& sub_shape) const;
  // Result axis i is this view's axis perm[i].
  ArrayView permuted(const std::vector<int>& perm) const;
  ArrayView flipped(int axis) const;
};

}  // namespace voxcore
