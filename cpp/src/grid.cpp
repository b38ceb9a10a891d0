#include "voxcore/grid.hpp"

#include <algorithm>

#include "detail/checked.hpp"
#include "voxcore/error.hpp"

namespace voxcore {

using detail::checked_add;
using detail::checked_mul;
using detail::shape_str;

ChunkGrid::ChunkGrid(Shape array_shape, Shape chunk_shape)
    : array_shape_(std::move(array_shape)), chunk_shape_(std::move(chunk_shape)) {
  const char* where = "ChunkGrid";
  VOXCORE_EXPECT(static_cast<int>(array_shape_.size()) <= kMaxRank, ErrorCode::kLimitExceeded, where,
                 "rank exceeds " + std::to_string(kMaxRank) +
                     " (got=" + std::to_string(array_shape_.size()) + ")");
  VOXCORE_EXPECT(array_shape_.size() == chunk_shape_.size(), ErrorCode::kInvalidMetadata, where,
                 "chunk shape rank differs from array rank (expected=" +
                     std::to_string(array_shape_.size()) +
                     ", got=" + std::to_string(chunk_shape_.size()) + ")");
  grid_shape_.resize(array_shape_.size());
  num_chunks_ = 1;
  chunk_elements_ = 1;
  for (std::size_t i = 0; i < array_shape_.size(); ++i) {
    VOXCORE_EXPECT(array_shape_[i] >= 0, ErrorCode::kInvalidMetadata, where,
                   "shape must be >= 0 (shape=" + shape_str(array_shape_) + ")");
    VOXCORE_EXPECT(chunk_shape_[i] >= 1, ErrorCode::kInvalidMetadata, where,
                   "chunk shape must be >= 1 (chunks=" + shape_str(chunk_shape_) + ")");
    // ceil without overflow
    grid_shape_[i] = array_shape_[i] / chunk_shape_[i] + (array_shape_[i] % chunk_shape_[i] != 0);
    // The last chunk's end must be representable: origin + chunk never overflows later.
    (void)checked_mul(grid_shape_[i], chunk_shape_[i], where);
    num_chunks_ = checked_mul(num_chunks_, grid_shape_[i], where);
    chunk_elements_ = checked_mul(chunk_elements_, chunk_shape_[i], where);
  }
  int64_t total = 1;
  for (int64_t s : array_shape_) total = checked_mul(total, s, where);
  (void)checked_mul(chunk_elements_, 16, where);  // bytes of the largest dtype must fit too
}

int64_t ChunkGrid::linear_index(const Shape& chunk_index) const noexcept {
  int64_t linear = 0;
  for (std::size_t i = 0; i < chunk_index.size(); ++i) linear = linear * grid_shape_[i] + chunk_index[i];
  return linear;
}

Shape ChunkGrid::chunk_origin(const Shape& chunk_index) const {
  Shape origin(chunk_index.size());
  for (std::size_t i = 0; i < chunk_index.size(); ++i) origin[i] = chunk_index[i] * chunk_shape_[i];
  return origin;
}

std::vector<ChunkGrid::Overlap> ChunkGrid::overlaps(const Box& box) const {
  const int r = rank();
  VOXCORE_EXPECT(static_cast<int>(box.start.size()) == r && static_cast<int>(box.shape.size()) == r,
                 ErrorCode::kInvalidArgument, "ChunkGrid::overlaps",
                 "box rank differs from array rank (expected=" + std::to_string(r) + ")");
  Shape lo(r), hi(r), c_lo(r), c_hi(r);
  for (int i = 0; i < r; ++i) {
    VOXCORE_EXPECT(box.shape[i] >= 0, ErrorCode::kInvalidArgument, "ChunkGrid::overlaps",
                   "box shape must be >= 0 (got=" + shape_str(box.shape) + ")");
    const int64_t end = checked_add(box.start[i], box.shape[i], "ChunkGrid::overlaps");
    lo[i] = std::max<int64_t>(box.start[i], 0);
    hi[i] = std::min<int64_t>(end, array_shape_[i]);
    if (lo[i] >= hi[i]) return {};
    c_lo[i] = lo[i] / chunk_shape_[i];
    c_hi[i] = (hi[i] - 1) / chunk_shape_[i];
  }
  std::vector<Overlap> result;
  int64_t count = 1;
  for (int i = 0; i < r; ++i) count *= c_hi[i] - c_lo[i] + 1;
  result.reserve(static_cast<std::size_t>(count));
  Shape idx = c_lo;
  for (;;) {
    Overlap o;
    o.chunk_index = idx;
    o.in_chunk.resize(r);
    o.in_box.resize(r);
    o.shape.resize(r);
    o.full_chunk = true;
    for (int i = 0; i < r; ++i) {
      const int64_t origin = idx[i] * chunk_shape_[i];
      const int64_t a = std::max(lo[i], origin);
      const int64_t b = std::min(hi[i], origin + chunk_shape_[i]);
      o.in_chunk[i] = a - origin;
      o.in_box[i] = a - box.start[i];
      o.shape[i] = b - a;
      o.full_chunk = o.full_chunk && o.shape[i] == chunk_shape_[i];
    }
    result.push_back(std::move(o));
    int axis = r - 1;
    for (; axis >= 0; --axis) {
      if (++idx[axis] <= c_hi[axis]) break;
      idx[axis] = c_lo[axis];
    }
    if (axis < 0) break;
  }
  return result;
}

std::string chunk_key(const ChunkKeyEncoding& encoding, const Shape& chunk_index) {
  std::string key;
  key.reserve(8 + chunk_index.size() * 4);
  if (encoding.kind == ChunkKeyEncoding::Kind::kDefault) {
    key += 'c';
    for (int64_t i : chunk_index) {
      key += encoding.separator;
      key += std::to_string(i);
    }
    return key;
  }
  if (chunk_index.empty()) return "0";
  for (std::size_t i = 0; i < chunk_index.size(); ++i) {
    if (i) key += encoding.separator;
    key += std::to_string(chunk_index[i]);
  }
  return key;
}

}  // namespace voxcore
