#pragma once
// Private: the prepared state of a CodecChain (CodecChain::Impl) and what its parts share.
// codec_chain.cpp builds a chain and runs chunks through it, codec_steps.cpp holds the
// bytes->bytes codecs, codec_shard.cpp the sharding_indexed layout; codec.cpp is the public face.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "detail/codec_ops.hpp"
#include "detail/tiff_tile.hpp"
#include "voxcore/array_view.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/codec.hpp"

namespace voxcore {
namespace detail {

// One validated bytes->bytes codec. dec_size/dec_exact describe its decoded side: the exact byte
// count, or an upper bound when an earlier codec in the chain has a data-dependent size.
struct Step {
  CodecId id = CodecId::kZstd;
  int level = 0;
  bool checksum = false;
  BloscParams blosc;
  int64_t dec_size = 0;
  bool dec_exact = true;
};

// Per-thread, per-nesting-depth scratch (depth 0: a chunk or shard; depth 1: a shard's inner
// chunks), reused across calls so the decode path allocates nothing after warm-up.
struct Scratch {
  ByteBuffer bufs[2];
  std::vector<ShardIndexEntry> entries;
  ArrayView stored;  // the chunk seen in the stored (transposed) axis order
  ArrayView tmp;     // contiguous view of scratch bytes
  ArrayView sub;     // one inner chunk of a shard
  std::vector<int64_t> coord;
  std::vector<int64_t> step;
};

inline Scratch& scratch(int depth) {
  thread_local Scratch s[2];
  return s[depth];
}

// "0x" and 8 hex digits, for checksums in messages.
inline std::string hex32(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int i = 0; i < 8; ++i) s[9 - i] = digits[(v >> (4 * i)) & 0xF];
  return s;
}

// The bytes->bytes codecs, one step at a time (codec_steps.cpp). run_decoder writes at most
// st.dec_size bytes to out and returns how many; crc_check verifies and strips the trailing
// CRC32C, returning the payload size; run_encoder appends the encoded bytes to out.
std::size_t run_decoder(const Step& st, const uint8_t* in, std::size_t n, uint8_t* out);
std::size_t crc_check(const uint8_t* p, std::size_t n);
void run_encoder(const Step& st, const uint8_t* in, std::size_t n, ByteBuffer& out);

// The sharding_indexed layout of one shard shape (codec_shard.cpp).
class ShardLayoutImpl final : public ShardLayout {
 public:
  Shape shard_shape_, inner_shape_, per_shard_;
  int64_t num_ = 0;
  std::shared_ptr<const CodecChain> inner_;
  bool at_end_ = true;
  bool crc_ = false;
  int64_t index_nbytes_ = 0;

  const Shape& shard_shape() const noexcept override { return shard_shape_; }
  const Shape& inner_chunk_shape() const noexcept override { return inner_shape_; }
  const Shape& chunks_per_shard() const noexcept override { return per_shard_; }
  int64_t num_inner_chunks() const noexcept override { return num_; }
  const CodecChain& inner() const noexcept override { return *inner_; }
  bool index_at_end() const noexcept override { return at_end_; }
  int64_t index_nbytes() const noexcept override { return index_nbytes_; }

  void decode_index(const uint8_t* src, std::size_t size, uint64_t shard_size,
                    std::vector<ShardIndexEntry>& out) const override;
  void encode_index(const std::vector<ShardIndexEntry>& entries, ByteBuffer& out) const override;
  void write_index(const std::vector<ShardIndexEntry>& entries, uint8_t* dst) const noexcept;
};

}  // namespace detail

struct CodecChain::Impl {
  Shape chunk_shape;
  DType dtype = DType::kUInt8;
  int64_t chunk_nbytes = 0;
  std::vector<uint8_t> fill;
  std::vector<int> perm;  // empty: no transpose; else stored axis i is chunk axis perm[i]
  Shape stored_shape;
  CodecId a2b = CodecId::kBytes;
  std::size_t swap = 1;  // unit to byte-swap by (1: none)
  std::unique_ptr<detail::ShardLayoutImpl> shard;
  std::unique_ptr<detail::TiffTile> tiff;  // a2b == kTiff
  std::vector<detail::Step> steps;  // bytes->bytes codecs in list (encode) order
  int64_t max_encoded = 0;
  int depth = 0;

  // codec_chain.cpp: the whole chain.
  static std::unique_ptr<Impl> build(const std::vector<CodecSpec>& specs, const Shape& chunk_shape,
                                     DType dtype, const std::vector<uint8_t>& fill, int depth);
  void decode(const uint8_t* src, std::size_t size, const ArrayView& dst) const;
  void encode_append(const ArrayView& src, ByteBuffer& out) const;

  // codec_steps.cpp: appends one bytes->bytes codec; size/exact describe its decoded side on
  // entry and its encoded side on return.
  void add_step(const CodecSpec& spec, int64_t& size, bool& exact);

  // codec_shard.cpp: sets up `shard` for a sharding_indexed spec over stored_shape (the inner
  // chain prepared too) and sets size/exact to the bound on an encoded shard.
  void add_shard_layout(const CodecSpec& spec, int64_t& size, bool& exact);
  void decode_shard(const uint8_t* src, std::size_t size, const ArrayView& stored) const;
  void encode_shard(const ArrayView& stored, ByteBuffer& out) const;
};

}  // namespace voxcore
