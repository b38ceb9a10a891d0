#include "detail/shard_io.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "voxcore/transform.hpp"

namespace voxcore::detail {

uint64_t max_stored_bytes(const CodecChain& chain) noexcept {
  // Every codec here expands incompressible data by far less than 2x plus its framing.
  uint64_t bound = static_cast<uint64_t>(chain.chunk_nbytes()) * 2 + (uint64_t{1} << 20);
  if (const ShardLayout* layout = chain.sharding()) {
    bound += static_cast<uint64_t>(layout->index_nbytes()) +
             static_cast<uint64_t>(layout->num_inner_chunks()) * kInnerChunkOverhead;
  }
  return bound;
}

ByteBuffer& fetch_scratch() noexcept {
  thread_local ByteBuffer buffer;
  return buffer;
}

ByteBuffer& chunk_scratch() noexcept {
  thread_local ByteBuffer buffer;
  return buffer;
}

void rethrow_keyed(const Error& e, const char* where, const std::string& key, int64_t inner) {
  std::string what = e.what();
  if (what.find("(key=" + key + ")") != std::string::npos ||
      what.find("(key=" + key + ",") != std::string::npos) {
    throw e;
  }
  what += " (key=" + key;
  if (inner >= 0) what += ", inner chunk " + std::to_string(inner);
  what += ")";
  const std::string prefix = std::string("[") + where + "]";
  if (what.compare(0, prefix.size(), prefix) == 0) throw Error(e.code(), what, e.sys_errno());
  fail(e.code(), where, what, e.sys_errno());
}

ArrayView region_view(const ArrayView& chunk, const ChunkRegion& region) {
  ArrayView v = chunk;
  auto* p = static_cast<uint8_t*>(chunk.data);
  for (std::size_t i = 0; i < region.start.size(); ++i) {
    p += region.start[i] * chunk.byte_strides[i];
    v.byte_strides[i] = chunk.byte_strides[i] * region.step[i];
  }
  v.data = p;
  v.shape = region.count;
  return v;
}

void decode_region(const CodecChain& chain, const uint8_t* src, std::size_t size,
                   const ChunkRegion& region, const ArrayView& dst) {
  if (region.covers(chain.chunk_shape())) {
    chain.decode_into(src, size, dst);
    return;
  }
  bool unit = true;
  for (int64_t s : region.step) unit = unit && s == 1;
  if (unit && chain.decode_part(src, size, region.start, region.count, dst)) return;
  ByteBuffer& scratch = chunk_scratch();
  scratch.resize(static_cast<std::size_t>(chain.chunk_nbytes()));
  const ArrayView whole = ArrayView::contiguous(scratch.data(), chain.dtype(), chain.chunk_shape());
  chain.decode_into(src, size, whole);
  copy(region_view(whole, region), dst);
}

namespace {

void check_not_empty(const StoredBytes& existing, const char* where) {
  VOXCORE_EXPECT(!existing.present || existing.size > 0, ErrorCode::kCorrupt, where,
                 "stored chunk is empty (0 bytes)");
}

}  // namespace

bool merge_encode(const CodecChain& chain, const ArrayView& value, const ChunkRegion& region,
                  const StoredBytes& existing, const void* fill, bool write_empty, ByteBuffer& out,
                  const char* where) {
  if (region.covers(chain.chunk_shape())) {
    if (!write_empty && all_equal(value, fill)) return false;
    chain.encode(value, out);
    return true;
  }
  ByteBuffer& scratch = chunk_scratch();
  scratch.resize(static_cast<std::size_t>(chain.chunk_nbytes()));
  const ArrayView whole = ArrayView::contiguous(scratch.data(), chain.dtype(), chain.chunk_shape());
  check_not_empty(existing, where);
  if (existing.present) {
    chain.decode_into(existing.data, existing.size, whole);
  } else {
    voxcore::fill(whole, fill);
  }
  copy(value, region_view(whole, region));
  if (!write_empty && all_equal(whole, fill)) return false;
  chain.encode(whole, out);
  return true;
}

// ---- shard index --------------------------------------------------------------------------------

const ShardLayout* per_inner_layout(const CodecChain& chain, std::size_t num_codecs) noexcept {
  return num_codecs == 1 ? chain.sharding() : nullptr;
}

ByteRange shard_index_range(const ShardLayout& layout) noexcept {
  const auto n = static_cast<uint64_t>(layout.index_nbytes());
  return layout.index_at_end() ? ByteRange::suffix(n) : ByteRange::range(0, n);
}

void decode_shard_index(const ShardLayout& layout, const uint8_t* index, std::size_t size,
                        uint64_t shard_size, std::vector<ShardIndexEntry>& entries, const char* where) {
  const auto n = static_cast<uint64_t>(layout.index_nbytes());
  VOXCORE_EXPECT(size == n, ErrorCode::kCorrupt, where,
                 "shard shorter than its index (expected=" + std::to_string(n) +
                     " index bytes, got=" + std::to_string(size) + ")");
  layout.decode_index(index, size, shard_size, entries);
  // The inner chunks lie in [lo, hi): the shard less its index.
  const bool known = shard_size != UINT64_MAX;
  const uint64_t lo = layout.index_at_end() ? 0 : n;
  const uint64_t hi = !known ? UINT64_MAX : layout.index_at_end() ? shard_size - n : shard_size;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const ShardIndexEntry& e = entries[i];
    if (e.empty() || (e.offset >= lo && e.offset <= hi && e.nbytes <= hi - e.offset)) continue;
    fail(ErrorCode::kCorrupt, where,
         "sharding_indexed: inner chunk overlaps the shard index (entry=" + std::to_string(i) +
             ", offset=" + std::to_string(e.offset) + ", nbytes=" + std::to_string(e.nbytes) +
             ", data region=[" + std::to_string(lo) + ", " +
             (known ? std::to_string(hi) : std::string("end")) + "))");
  }
}

namespace {

void check_holds_index(const ShardLayout& layout, uint64_t size, const char* where) {
  const auto n = static_cast<uint64_t>(layout.index_nbytes());
  VOXCORE_EXPECT(size >= n, ErrorCode::kCorrupt, where,
                 "shard smaller than its index (expected>=" + std::to_string(n) + " bytes, got=" +
                     std::to_string(size) + ")");
}

}  // namespace

void shard_index_of(const ShardLayout& layout, const uint8_t* shard, std::size_t size,
                    std::vector<ShardIndexEntry>& entries, const char* where) {
  check_holds_index(layout, size, where);
  const auto n = static_cast<std::size_t>(layout.index_nbytes());
  const uint8_t* index = layout.index_at_end() ? shard + (size - n) : shard;
  decode_shard_index(layout, index, n, size, entries, where);
}

void read_shard_index(const ShardLayout& layout, Store::Snapshot& shard,
                      std::vector<ShardIndexEntry>& entries, const char* where) {
  const uint64_t size = shard.size();
  check_holds_index(layout, size, where);
  const auto n = static_cast<uint64_t>(layout.index_nbytes());
  ByteBuffer& bytes = fetch_scratch();
  const std::size_t got = shard.read(layout.index_at_end() ? size - n : 0, n, bytes);
  decode_shard_index(layout, bytes.data(), got, size, entries, where);
}

void check_inner_size(const ShardIndexEntry& entry, std::size_t got, const char* where) {
  VOXCORE_EXPECT(got == entry.nbytes, ErrorCode::kCorrupt, where,
                 "shard shorter than its index claims (expected=" + std::to_string(entry.nbytes) +
                     " bytes at offset " + std::to_string(entry.offset) + ", got=" +
                     std::to_string(got) + ")");
}

// ---- inner chunks -------------------------------------------------------------------------------

std::vector<InnerPart> inner_parts(const ShardLayout& layout, const ChunkRegion& r) {
  const Shape& inner = layout.inner_chunk_shape();
  const Shape& per_shard = layout.chunks_per_shard();
  const std::size_t rank = inner.size();
  std::vector<InnerPart> out;
  // Per axis: (inner chunk coordinate, start in it, count, offset in the region).
  std::vector<std::vector<std::array<int64_t, 4>>> axes(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    if (r.count[d] == 0) return out;
    const int64_t step = r.step[d];
    const int64_t first = r.start[d], last = first + (r.count[d] - 1) * step;
    for (int64_t c = first / inner[d]; c <= last / inner[d]; ++c) {
      const int64_t lo = c * inner[d], hi = lo + inner[d] - 1;
      const int64_t k0 = lo <= first ? 0 : (lo - first + step - 1) / step;
      const int64_t k1 = std::min<int64_t>(r.count[d] - 1, (hi - first) / step);
      if (k0 > k1) continue;  // a step larger than the inner chunk skips it
      axes[d].push_back({c, first + k0 * step - lo, k1 - k0 + 1, k0});
    }
  }
  std::vector<std::size_t> pos(rank, 0);
  for (;;) {
    InnerPart part{0, Shape(rank), ChunkRegion{Shape(rank), r.step, Shape(rank)}, Shape(rank)};
    for (std::size_t d = 0; d < rank; ++d) {
      const auto& a = axes[d][pos[d]];
      part.number = part.number * per_shard[d] + a[0];
      part.index[d] = a[0];
      part.region.start[d] = a[1];
      part.region.count[d] = a[2];
      part.offset[d] = a[3];
    }
    out.push_back(std::move(part));
    std::size_t d = rank;
    for (; d > 0; --d) {
      if (++pos[d - 1] < axes[d - 1].size()) break;
      pos[d - 1] = 0;
    }
    if (d == 0) return out;
  }
}

ShardWrite::ShardWrite(const ShardLayout& layout, const ChunkRegion& region, const ArrayView& value,
                       const StoredBytes& existing, const char* where)
    : layout_(&layout), value_(value), existing_(existing) {
  if (existing.present) {
    check_not_empty(existing, where);
    shard_index_of(layout, existing.data, existing.size, stored_, where);
  }
  parts_ = inner_parts(layout, region);
  const auto n = static_cast<std::size_t>(layout.num_inner_chunks());
  part_of_.assign(n, -1);
  for (std::size_t p = 0; p < parts_.size(); ++p) {
    part_of_[static_cast<std::size_t>(parts_[p].number)] = static_cast<int64_t>(p);
  }
  encoded_.resize(n);
  result_.resize(n);
}

void ShardWrite::encode_inner(int64_t i, const void* fill, bool write_empty, const char* where) {
  const auto k = static_cast<std::size_t>(i);
  StoredBytes old;
  if (!stored_.empty() && !stored_[k].empty()) {
    old = {existing_.data + stored_[k].offset, static_cast<std::size_t>(stored_[k].nbytes), true};
  }
  if (part_of_[k] < 0) {  // untouched: as stored (or absent)
    result_[k] = old;
    return;
  }
  const InnerPart& part = parts_[static_cast<std::size_t>(part_of_[k])];
  const ArrayView value = value_.subview(part.offset, part.region.count);
  if (merge_encode(layout_->inner(), value, part.region, old, fill, write_empty, encoded_[k], where)) {
    result_[k] = {encoded_[k].data(), encoded_[k].size(), true};
  } else {
    result_[k] = StoredBytes{};
  }
}

bool ShardWrite::assemble(ByteBuffer& out) const {
  const auto n = static_cast<std::size_t>(layout_->num_inner_chunks());
  const auto index_n = static_cast<uint64_t>(layout_->index_nbytes());
  uint64_t total = 0;
  bool any = false;
  for (const StoredBytes& r : result_) {
    if (!r.present) continue;
    any = true;
    total += r.size;
  }
  if (!any) return false;
  const bool at_end = layout_->index_at_end();
  out.resize(static_cast<std::size_t>(total + index_n));
  std::vector<ShardIndexEntry> index(n);
  uint64_t offset = at_end ? 0 : index_n;
  for (std::size_t i = 0; i < n; ++i) {
    const StoredBytes& r = result_[i];
    if (!r.present) continue;
    if (r.size > 0) std::memcpy(out.data() + offset, r.data, r.size);
    index[i] = {offset, r.size};
    offset += r.size;
  }
  ByteBuffer index_bytes;
  layout_->encode_index(index, index_bytes);
  std::memcpy(out.data() + (at_end ? total : 0), index_bytes.data(), index_bytes.size());
  return true;
}

}  // namespace voxcore::detail
