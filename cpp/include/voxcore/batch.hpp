#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/store.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

// The elements start + k * step (0 <= k < count) of each axis of one chunk.
struct ChunkRegion {
  Shape start, step, count;

  static ChunkRegion whole(const Shape& chunk_shape);
  // [start, start + shape) with step 1.
  static ChunkRegion box(const Shape& start, const Shape& shape);
  // True when the region lies inside a chunk of chunk_shape (rank equal, step >= 1, no overflow).
  bool fits(const Shape& chunk_shape) const noexcept;
  // True when the region is the whole chunk in order (what decode_into may write straight to).
  bool covers(const Shape& chunk_shape) const noexcept;
};

// Where the encoded bytes of one chunk come from.
struct ChunkBytes {
  enum class From : uint8_t {
    kNone,    // no chunk: the fill value
    kMemory,  // size bytes at data (caller memory, alive for the call)
    kStore,   // the item's key in the store given to the call (missing key: the fill value)
  };
  From from = From::kNone;
  const uint8_t* data = nullptr;
  std::size_t size = 0;

  static ChunkBytes memory(const uint8_t* data, std::size_t size) { return {From::kMemory, data, size}; }
  static ChunkBytes store() { return {From::kStore, nullptr, 0}; }
};

// One chunk to decode: region of the chunk `key` lands in dst.
struct DecodeItem {
  std::string key;  // the chunk's key in the store; names the chunk in errors
  ChunkBytes source;
  ArrayView dst;       // shape == region.count, dtype == the chain's; any strides, writable
  ChunkRegion region;  // inside the chunk
};

// One chunk to encode: value is the new content of region of the chunk `key`.
struct EncodeItem {
  std::string key;      // the chunk's key in the store; names the chunk in errors
  ArrayView value;      // shape == region.count, dtype == the chain's; any strides (0: broadcast)
  ChunkRegion region;   // inside the chunk; where it does not cover the chunk, value is merged
  ChunkBytes existing;  // over these stored bytes (kNone: over the fill value)
  // Results, without a store: the encoded bytes, or empty == true when there is nothing to store
  // (every chunk, or inner chunk of a shard, equals the fill value and write_empty is false).
  ByteBuffer encoded;
  bool empty = false;
};

// A codec chain prepared once for one chunk shape, dtype and fill value, that decodes and encodes
// many chunks in one call on an executor: the engine of zarr-python's codec pipeline, where every
// chunk of one read or write comes at once. A chain that is exactly [sharding_indexed] is split
// into inner chunks, each its own task: a read of part of a shard in a store reads only its index
// and the inner chunks needed; a write into part of a shard re-encodes only the inner chunks it
// touches and keeps the others' stored bytes. Shard I/O, size limits and error keys are
// ChunkedArray's. Immutable after construction; calls may run concurrently.
class VOXCORE_API ChunkBatch {
 public:
  // Validates the chain (CodecChain::prepare's errors). fill_value: itemsize bytes in native
  // order (empty: zeros). executor null means the default pool.
  ChunkBatch(const std::vector<CodecSpec>& codecs, const Shape& chunk_shape, DType dtype,
             std::vector<uint8_t> fill_value = {}, Executor* executor = nullptr);
  ~ChunkBatch();

  const CodecChain& chain() const noexcept;
  const std::vector<uint8_t>& fill_value() const noexcept;
  // True when the chain is exactly [sharding_indexed] (inner chunks are separate tasks).
  bool sharded() const noexcept;

  // Decodes every item into its dst; missing chunks and inner chunks get the fill value. Checks
  // every item first (kInvalidArgument naming the item: dtype, region, kStore without a store).
  // A failing chunk throws its error with the key (and inner chunk) named; other items' dsts
  // may be partly written. store may be null when no item reads from it.
  void decode_into(const std::vector<DecodeItem>& items, Store* store = nullptr) const;
  // Encodes every item (merged over its existing bytes where its region does not cover the
  // chunk). write_empty false: a chunk, or inner chunk of a shard, equal to the fill value is
  // left out. Without a store the results are in each item's encoded / empty; with one, every
  // key is written (empty: erased) and each item's `empty` says which. Items are checked and
  // errors name keys as in decode_into; a failure may leave other items written.
  //
  // Both call a store's get/snapshot/set/erase from the executor's threads, except a batched
  // store, which is called from the calling thread only (get_many, set_many, erase; whole values).
  void encode(std::vector<EncodeItem>& items, bool write_empty, Store* store = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace voxcore
