// sharding_indexed: the shard layout set up when a chain is prepared, the shard index (decode,
// validate, encode), and whole-shard decode and encode through the inner chain.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/codec_chain.hpp"
#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {

using detail::checked_add;
using detail::checked_mul;
using detail::codec_name;
using detail::kDecodeWhere;
using detail::kPrepareWhere;
using detail::Scratch;
using detail::scratch;
using detail::shape_str;
using detail::ShardLayoutImpl;

namespace {

constexpr const char* kIndexWhere = "ShardLayout::decode_index";
constexpr uint64_t kEmpty = ~uint64_t{0};

// Calls fn(i, s.sub) for every inner chunk i of a shard (C order), s.sub viewing that inner
// chunk of `stored` (the shard in stored axis order).
template <typename Fn>
void for_each_inner_chunk(const Shape& inner_shape, const Shape& per_shard, int64_t count,
                          const ArrayView& stored, Scratch& s, Fn&& fn) {
  const int rank = stored.rank();
  s.sub.data = stored.data;
  s.sub.dtype = stored.dtype;
  s.sub.shape.assign(inner_shape.begin(), inner_shape.end());
  s.sub.byte_strides.assign(stored.byte_strides.begin(), stored.byte_strides.end());
  s.coord.assign(static_cast<std::size_t>(rank), 0);
  s.step.resize(static_cast<std::size_t>(rank));
  for (int d = 0; d < rank; ++d) s.step[d] = inner_shape[d] * stored.byte_strides[d];
  auto* base = static_cast<uint8_t*>(stored.data);
  for (int64_t i = 0; i < count; ++i) {
    uint8_t* p = base;
    for (int d = 0; d < rank; ++d) p += s.coord[d] * s.step[d];
    s.sub.data = p;
    fn(i, s.sub);
    for (int d = rank - 1; d >= 0; --d) {
      if (++s.coord[d] < per_shard[d]) break;
      s.coord[d] = 0;
    }
  }
}

}  // namespace

// ---- prepare -------------------------------------------------------------------------------

void CodecChain::Impl::add_shard_layout(const CodecSpec& spec, int64_t& size, bool& exact) {
  const int rank = static_cast<int>(chunk_shape.size());
  if (depth > 0) {
    fail(ErrorCode::kUnsupported, kPrepareWhere,
         "sharding_indexed: nested sharding is not supported");
  }
  auto layout = std::make_unique<ShardLayoutImpl>();
  layout->shard_shape_ = stored_shape;
  layout->inner_shape_ = spec.inner_chunk_shape;
  layout->at_end_ = spec.index_at_end;
  if (static_cast<int>(spec.inner_chunk_shape.size()) != rank) {
    fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
         "sharding_indexed: inner chunk_shape rank differs from the shard (expected=" +
             std::to_string(rank) + ", got=" + shape_str(spec.inner_chunk_shape) + ")");
  }
  int64_t num = 1;
  layout->per_shard_.resize(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    const int64_t inner = spec.inner_chunk_shape[i], outer = stored_shape[i];
    if (inner <= 0 || outer % inner != 0) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
           "sharding_indexed: inner chunk_shape must divide the shard shape (shard=" +
               shape_str(stored_shape) + ", inner=" + shape_str(spec.inner_chunk_shape) + ")");
    }
    layout->per_shard_[i] = outer / inner;
    num *= outer / inner;  // <= shard elements, cannot overflow
  }
  if (num > kMaxShardEntries) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere,
         "sharding_indexed: too many inner chunks per shard (max=" +
             std::to_string(kMaxShardEntries) + ", got=" + std::to_string(num) + ")");
  }
  layout->num_ = num;
  const auto& ic = spec.index_codecs;
  const bool index_ok = (ic.size() == 1 || ic.size() == 2) && ic[0].id == CodecId::kBytes &&
                        ic[0].endian == Endian::kLittle &&
                        (ic.size() == 1 || ic[1].id == CodecId::kCrc32c);
  if (!index_ok) {
    std::string got;
    for (const auto& x : ic) got += (got.empty() ? "" : ", ") + std::string(codec_name(x.id));
    fail(ErrorCode::kUnsupported, kPrepareWhere,
         "sharding_indexed: index_codecs must be bytes (little endian) optionally followed by "
         "crc32c (got=[" + got + "])");
  }
  layout->crc_ = ic.size() == 2;
  layout->index_nbytes_ = num * 16 + (layout->crc_ ? 4 : 0);
  std::unique_ptr<Impl> inner =
      build(spec.inner_codecs, spec.inner_chunk_shape, dtype, fill, depth + 1);
  const int64_t inner_max = inner->max_encoded;
  layout->inner_.reset(new CodecChain(std::move(inner)));
  size = checked_add(layout->index_nbytes_, checked_mul(num, inner_max, kPrepareWhere, "shard size bound"),
                     kPrepareWhere, "shard size bound");
  exact = false;
  shard = std::move(layout);
}

// ---- the shard index -----------------------------------------------------------------------

namespace detail {

void ShardLayoutImpl::decode_index(const uint8_t* src, std::size_t size, uint64_t shard_size,
                                   std::vector<ShardIndexEntry>& out) const {
  if (size != static_cast<uint64_t>(index_nbytes_)) {
    fail(ErrorCode::kCorrupt, kIndexWhere,
         "sharding_indexed: index size mismatch (expected=" + std::to_string(index_nbytes_) +
             ", got=" + std::to_string(size) + ")");
  }
  const std::size_t body = static_cast<std::size_t>(num_) * 16;
  if (crc_) {
    const uint32_t stored = detail::load_le32(src + body);
    const uint32_t computed = crc32c(src, body);
    if (stored != computed) {
      fail(ErrorCode::kCorrupt, kIndexWhere,
           "sharding_indexed: index crc32c checksum mismatch (expected=" + hex32(stored) +
               ", got=" + hex32(computed) + ")");
    }
  }
  out.resize(static_cast<std::size_t>(num_));
  for (int64_t i = 0; i < num_; ++i) {
    const uint64_t offset = detail::load_le64(src + 16 * i);
    const uint64_t nbytes = detail::load_le64(src + 16 * i + 8);
    ShardIndexEntry& e = out[static_cast<std::size_t>(i)];
    e.offset = offset;
    e.nbytes = nbytes;
    if (e.empty()) continue;
    auto bad = [&](const char* what) {
      fail(ErrorCode::kCorrupt, kIndexWhere,
           std::string("sharding_indexed: index entry ") + what + " (entry=" +
               std::to_string(i) + ", offset=" + std::to_string(offset) +
               ", nbytes=" + std::to_string(nbytes) + ", shard_size=" +
               (shard_size == kEmpty ? std::string("unknown") : std::to_string(shard_size)) + ")");
    };
    if (offset == kEmpty || nbytes == kEmpty) bad("is half empty");
    if (offset > kEmpty - nbytes) bad("overflows");
    if (shard_size != kEmpty && offset + nbytes > shard_size) bad("is out of range");
  }
}

void ShardLayoutImpl::encode_index(const std::vector<ShardIndexEntry>& entries, ByteBuffer& out) const {
  VOXCORE_EXPECT(entries.size() == static_cast<std::size_t>(num_), ErrorCode::kInvalidArgument,
                 "ShardLayout::encode_index",
                 "sharding_indexed: wrong number of entries (expected=" + std::to_string(num_) +
                     ", got=" + std::to_string(entries.size()) + ")");
  out.resize(static_cast<std::size_t>(index_nbytes_));
  write_index(entries, out.data());
}

void ShardLayoutImpl::write_index(const std::vector<ShardIndexEntry>& entries, uint8_t* dst) const noexcept {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    detail::store_le64(dst + 16 * i, entries[i].offset);
    detail::store_le64(dst + 16 * i + 8, entries[i].nbytes);
  }
  if (crc_) {
    const std::size_t body = entries.size() * 16;
    detail::store_le32(dst + body, crc32c(dst, body));
  }
}

}  // namespace detail

// ---- whole shards --------------------------------------------------------------------------

void CodecChain::Impl::decode_shard(const uint8_t* src, std::size_t size,
                                    const ArrayView& stored) const {
  const ShardLayoutImpl& layout = *shard;
  Scratch& s = scratch(depth);
  const auto index_nbytes = static_cast<std::size_t>(layout.index_nbytes_);
  if (size < index_nbytes) {
    detail::corrupt(CodecId::kSharding, "shard smaller than its index (expected>=" +
                                            std::to_string(index_nbytes) +
                                            " bytes, got=" + std::to_string(size) + ")");
  }
  const uint8_t* index = layout.at_end_ ? src + (size - index_nbytes) : src;
  layout.decode_index(index, index_nbytes, size, s.entries);
  const uint64_t lo = layout.at_end_ ? 0 : index_nbytes;
  const uint64_t hi = layout.at_end_ ? size - index_nbytes : size;

  const Impl& inner = *layout.inner_->impl_;
  for_each_inner_chunk(layout.inner_shape_, layout.per_shard_, layout.num_, stored, s,
                       [&](int64_t i, const ArrayView& sub) {
    const ShardIndexEntry& e = s.entries[static_cast<std::size_t>(i)];
    if (e.empty()) {
      voxcore::fill(sub, fill.data());
      return;
    }
    if (e.offset < lo || e.offset + e.nbytes > hi) {
      detail::corrupt(CodecId::kSharding,
                      "inner chunk overlaps the shard index (entry=" + std::to_string(i) +
                          ", offset=" + std::to_string(e.offset) + ", nbytes=" +
                          std::to_string(e.nbytes) + ", data region=[" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "))");
    }
    try {
      inner.decode(src + e.offset, static_cast<std::size_t>(e.nbytes), sub);
    } catch (const Error& err) {
      std::string what = err.what();
      if (!what.empty() && what[0] == '[') {
        const std::size_t close = what.find("] ");
        if (close != std::string::npos) what.erase(0, close + 2);
      }
      fail(err.code(), kDecodeWhere,
           "sharding_indexed: inner chunk " + shape_str(s.coord, '(', ')') + ": " + what);
    }
  });
}

void CodecChain::Impl::encode_shard(const ArrayView& stored, ByteBuffer& out) const {
  const ShardLayoutImpl& layout = *shard;
  Scratch& s = scratch(depth);
  const std::size_t base = out.size();
  const auto index_nbytes = static_cast<std::size_t>(layout.index_nbytes_);
  if (!layout.at_end_) out.resize(base + index_nbytes);
  s.entries.assign(static_cast<std::size_t>(layout.num_), ShardIndexEntry{});

  const Impl& inner = *layout.inner_->impl_;
  for_each_inner_chunk(layout.inner_shape_, layout.per_shard_, layout.num_, stored, s,
                       [&](int64_t i, const ArrayView& sub) {
    if (all_equal(sub, fill.data())) return;  // stays empty: the fill value
    const std::size_t offset = out.size() - base;
    inner.encode_append(sub, out);
    s.entries[static_cast<std::size_t>(i)] = {offset, out.size() - base - offset};
  });
  if (layout.at_end_) {
    const std::size_t pos = out.size();
    out.resize(pos + index_nbytes);
    layout.write_index(s.entries, out.data() + pos);
  } else {
    layout.write_index(s.entries, out.data() + base);
  }
}

}  // namespace voxcore
