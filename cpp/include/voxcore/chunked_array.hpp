#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "voxcore/api.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/chunk_cache.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/grid.hpp"
#include "voxcore/store.hpp"
#include "voxcore/thread_pool.hpp"

namespace voxcore {

// Everything the core needs to know about one Zarr array (parsed from metadata by the caller).
struct ArraySpec {
  Shape shape;
  Shape chunk_shape;  // the outer grid: the shard shape for a sharded array
  DType dtype = DType::kUInt8;
  std::vector<uint8_t> fill_value;  // itemsize bytes, native order; empty means zeros
  std::vector<CodecSpec> codecs;
  ChunkKeyEncoding key_encoding;
  bool write_empty_chunks = false;  // false: a chunk equal to the fill value is erased, not written
};

struct WriteJob;
class WriteRun;
// Writes of several arrays as one parallel loop (see WriteJob below).
VOXCORE_API void write_all(const std::vector<WriteJob>& jobs, WriteRun* run);

// A run of writes, to one array or several, whose durability is settled once at its end: the sets of
// every write given the run go on while it lasts (for a durable FileStore, on the I/O threads), and
// finish() waits for them, syncs each directory they renamed into or created directories in, and
// throws the first failure. For a tree that is published only after the run (a save built beside
// its target), so that the last fsyncs of one write overlap the encoding of the next instead of
// ending each write with a wait. Every array written through a run, and its store, must outlive
// the run's finish() (or its destruction, which waits and syncs best effort).
class VOXCORE_API WriteRun {
 public:
  WriteRun();
  ~WriteRun();
  WriteRun(const WriteRun&) = delete;
  WriteRun& operator=(const WriteRun&) = delete;
  void finish();

  struct Impl;

 private:
  friend class ChunkedArray;
  friend void write_all(const std::vector<WriteJob>& jobs, WriteRun* run);
  std::unique_ptr<Impl> impl_;
};

// Reads and writes boxes of a chunked array. Reads are thread-safe; concurrent writes to disjoint
// boxes are safe even when they share a chunk or shard (read-modify-write is serialised per
// chunk/shard within the process).
class VOXCORE_API ChunkedArray {
 public:
  // Validates the spec (kInvalidMetadata). cache may be null; executor null means the default pool.
  ChunkedArray(ArraySpec spec, std::shared_ptr<Store> store,
               std::shared_ptr<ChunkCache> cache = nullptr, Executor* executor = nullptr);
  ~ChunkedArray();

  const ArraySpec& spec() const noexcept;
  const ChunkGrid& grid() const noexcept;
  const CodecChain& codecs() const noexcept;

  // Fills dst (shape == box.shape, dtype == spec().dtype, any strides) with box's contents.
  // Parts of the box outside the array, and missing chunks, get the fill value.
  void read_into(const Box& box, const ArrayView& dst) const;
  // Writes src (shape == box.shape) at box, which must lie inside the array (kInvalidArgument).
  // Durable when it returns; with a run, when run->finish() returns (the values are in place,
  // atomically, as each set completes either way).
  void write(const Box& box, const ArrayView& src, WriteRun* run = nullptr);

  struct Impl;

 private:
  friend void write_all(const std::vector<WriteJob>& jobs, WriteRun* run);
  std::unique_ptr<Impl> impl_;
};

// One box of one array to write: write_all's unit.
struct WriteJob {
  ChunkedArray* array = nullptr;
  Box box;
  ArrayView src;
};

// The jobs' writes as one parallel loop over all their chunks (e.g. every level of a pyramid):
// no array's last chunks leave the other threads waiting before the next array starts. Each
// job is checked before anything is written; the same values and durability as each array's
// write() in turn (which it falls back to for batched stores and for few large shards).
// (declared above, before the classes that befriend it; run may be null)

}  // namespace voxcore
