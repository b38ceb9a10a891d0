#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "voxcore/api.hpp"
#include "voxcore/buffer.hpp"

namespace voxcore {

// A bounded LRU of decoded chunks (native byte order, C order), shared by any number of arrays
// (each array uses its own owner id). Thread-safe. A renderer's brick cache can be one of these.
class VOXCORE_API ChunkCache {
 public:
  explicit ChunkCache(std::size_t capacity_bytes);
  ~ChunkCache();

  using Value = std::shared_ptr<const ByteBuffer>;
  // nullptr on a miss. A hit becomes most recently used.
  Value get(uint64_t owner, int64_t chunk) const;
  // Inserts (or replaces) and evicts least recently used entries beyond the capacity. A value
  // larger than the capacity is not kept.
  void put(uint64_t owner, int64_t chunk, Value value);
  void erase(uint64_t owner, int64_t chunk);
  void clear();

  std::size_t capacity_bytes() const noexcept;
  std::size_t size_bytes() const;
  // A fresh owner id for an array that shares this cache.
  static uint64_t new_owner_id() noexcept;

  // A buffer of size bytes (contents undefined) for a decoded chunk. When its last reference
  // goes (evicted, or its cache destroyed) the memory returns to a process-wide pool of recycled
  // buffers, so a cache that churns does not page-fault fresh memory for every decode. The pool
  // keeps at most VOXCORE_BUFFER_POOL_BYTES (default 256 MiB; 0 disables it).
  static std::shared_ptr<ByteBuffer> allocate(std::size_t size);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace voxcore
