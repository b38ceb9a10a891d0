#pragma once
// Private: the chunk and shard I/O shared by ChunkedArray (chunked_array.cpp) and ChunkBatch
// (batch.cpp), one copy of each mechanism: the stored-size limit, per-thread scratch, error
// keying, reading and checking a shard index, planning which inner chunks a region touches,
// decoding part of a chunk, and merging a write into stored chunks and shards.
//
// Functions that fail throw Error under the caller's `where` without naming the key; callers
// catch and name it with rethrow_keyed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "voxcore/array_view.hpp"
#include "voxcore/batch.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/store.hpp"

namespace voxcore::detail {

// ---- limits -------------------------------------------------------------------------------------

// Allowance per inner chunk of a shard for framing (codec headers, checksums) beyond the bound on
// the data itself.
inline constexpr uint64_t kInnerChunkOverhead = 512;

// No stored encoding of one chunk of chain (a whole shard when chain has sharding_indexed) is
// larger than this: a larger stored value is refused before it is read (kCorrupt).
uint64_t max_stored_bytes(const CodecChain& chain) noexcept;

// ---- scratch and errors -------------------------------------------------------------------------

// This thread's scratch for bytes fetched from a store, and for one decoded chunk; reused across
// chunks so that nothing is allocated per chunk after warm-up.
ByteBuffer& fetch_scratch() noexcept;
ByteBuffer& chunk_scratch() noexcept;

// Throws e again with the key (and inner chunk number, when inner >= 0) named:
// "[where] <what> (key=K, inner chunk N)". A message that names the key already is rethrown as it is.
[[noreturn]] void rethrow_keyed(const Error& e, const char* where, const std::string& key,
                                int64_t inner = -1);

// ---- chunks -------------------------------------------------------------------------------------

// The stored bytes of a chunk or inner chunk: present, or none.
struct StoredBytes {
  const uint8_t* data = nullptr;
  std::size_t size = 0;
  bool present = false;
};

// The region's elements of a chunk-shaped view.
ArrayView region_view(const ArrayView& chunk, const ChunkRegion& region);

// Decodes the chunk in (src, size) and writes its region into dst (region-shaped): straight into
// dst when the region covers the chunk, else through chunk_scratch().
void decode_region(const CodecChain& chain, const uint8_t* src, std::size_t size,
                   const ChunkRegion& region, const ArrayView& dst);

// Encodes into out the chunk that is `existing` (decoded; none: the fill value) with value
// (region-shaped) written over region. Returns false, encoding nothing, when the result equals the
// fill value and write_empty is false. Present but empty existing bytes are kCorrupt.
bool merge_encode(const CodecChain& chain, const ArrayView& value, const ChunkRegion& region,
                  const StoredBytes& existing, const void* fill, bool write_empty, ByteBuffer& out,
                  const char* where);

// ---- shard index --------------------------------------------------------------------------------

// The layout whose inner chunks are read and written one by one: the chain's sharding when the
// chain (of num_codecs codecs) is exactly [sharding_indexed], else nullptr. A transpose before it,
// or bytes->bytes codecs after it, change the shard's bytes: then whole shards go through the
// chain like ordinary chunks.
const ShardLayout* per_inner_layout(const CodecChain& chain, std::size_t num_codecs) noexcept;

// The bytes of a shard that hold its index, for a store read by range.
ByteRange shard_index_range(const ShardLayout& layout) noexcept;

// Decodes an index read by shard_index_range (size must be index_nbytes(): kCorrupt when the
// shard was shorter) into entries. shard_size (UINT64_MAX: unknown) bounds every entry, which must
// also lie outside the index itself.
void decode_shard_index(const ShardLayout& layout, const uint8_t* index, std::size_t size,
                        uint64_t shard_size, std::vector<ShardIndexEntry>& entries, const char* where);

// The index of a whole shard in memory (kCorrupt when it is shorter than its index).
void shard_index_of(const ShardLayout& layout, const uint8_t* shard, std::size_t size,
                    std::vector<ShardIndexEntry>& entries, const char* where);

// The index of one version of a shard, read through fetch_scratch().
void read_shard_index(const ShardLayout& layout, Store::Snapshot& shard,
                      std::vector<ShardIndexEntry>& entries, const char* where);

// kCorrupt unless got bytes were read for entry (the shard is shorter than its index claims).
void check_inner_size(const ShardIndexEntry& entry, std::size_t got, const char* where);

// ---- inner chunks -------------------------------------------------------------------------------

// One inner chunk that a region of a shard touches: which (its C-order number and coordinates in
// the shard), which of its elements (a region of the inner chunk), and where they lie in the
// region's element grid.
struct InnerPart {
  int64_t number = 0;
  Shape index;
  ChunkRegion region;
  Shape offset;
};

// The inner chunks that region (inside the shard) touches, in C order.
std::vector<InnerPart> inner_parts(const ShardLayout& layout, const ChunkRegion& region);

// A write of value (region-shaped) over region of one shard, whose stored bytes are existing:
// inner chunks the region touches are merged and re-encoded, the others keep their stored bytes.
// existing must outlive the ShardWrite.
class ShardWrite {
 public:
  // Reads existing's index (kCorrupt).
  ShardWrite(const ShardLayout& layout, const ChunkRegion& region, const ArrayView& value,
             const StoredBytes& existing, const char* where);

  int64_t num_inner() const noexcept { return layout_->num_inner_chunks(); }
  // Inner chunk i's new bytes (see merge_encode). Distinct i may run concurrently.
  void encode_inner(int64_t i, const void* fill, bool write_empty, const char* where);
  // Lays out the shard (every encode_inner done) into out; false when it holds no inner chunk.
  bool assemble(ByteBuffer& out) const;

 private:
  const ShardLayout* layout_;
  ArrayView value_;
  StoredBytes existing_;
  std::vector<ShardIndexEntry> stored_;  // empty: nothing stored
  std::vector<InnerPart> parts_;
  std::vector<int64_t> part_of_;  // per inner chunk: its part, or -1 (untouched)
  std::vector<ByteBuffer> encoded_;
  std::vector<StoredBytes> result_;
};

}  // namespace voxcore::detail
