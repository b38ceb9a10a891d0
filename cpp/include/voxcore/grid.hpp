#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"

namespace voxcore {

// A box [start, start + shape) in array coordinates. start may be negative and the box may extend
// beyond the array (reads pad with the fill value).
struct Box {
  Shape start;
  Shape shape;
};

// A regular chunk grid over an array.
class VOXCORE_API ChunkGrid {
 public:
  // Throws kInvalidMetadata for rank > kMaxRank, negative shapes, non-positive chunk sizes, or
  // a chunk count / chunk byte size that overflows int64.
  ChunkGrid(Shape array_shape, Shape chunk_shape);

  int rank() const noexcept { return static_cast<int>(array_shape_.size()); }
  const Shape& array_shape() const noexcept { return array_shape_; }
  const Shape& chunk_shape() const noexcept { return chunk_shape_; }
  const Shape& grid_shape() const noexcept { return grid_shape_; }
  int64_t num_chunks() const noexcept { return num_chunks_; }
  int64_t chunk_elements() const noexcept { return chunk_elements_; }

  // One chunk overlapping a box: which chunk, which part of it (chunk-local coordinates), and
  // where that part lands relative to the box start.
  struct Overlap {
    Shape chunk_index;
    Shape in_chunk;      // offset of the part inside the chunk
    Shape in_box;        // offset of the part inside the box
    Shape shape;         // size of the part
    bool full_chunk;     // the part is the whole chunk (chunk_shape, chunk inside the array)
  };
  // Chunks overlapping box ∩ array, in C order of chunk index.
  std::vector<Overlap> overlaps(const Box& box) const;
  int64_t linear_index(const Shape& chunk_index) const noexcept;
  // The chunk's origin in array coordinates.
  Shape chunk_origin(const Shape& chunk_index) const;

 private:
  Shape array_shape_, chunk_shape_, grid_shape_;
  int64_t num_chunks_ = 0;
  int64_t chunk_elements_ = 0;
};

// How chunk indices become store keys.
struct ChunkKeyEncoding {
  enum class Kind : uint8_t { kDefault, kV2 };  // v3 "default" ("c/1/2") or "v2" ("1.2")
  Kind kind = Kind::kDefault;
  char separator = '/';
};

// default: "c" + sep + "1" + sep + "2" ("c" for rank 0); v2: "1" + sep + "2" ("0" for rank 0).
VOXCORE_API std::string chunk_key(const ChunkKeyEncoding& encoding, const Shape& chunk_index);

}  // namespace voxcore
