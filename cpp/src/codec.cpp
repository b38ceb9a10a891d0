// CodecChain: validation of a zarr codec chain, chunk decode/encode through it, and the
// sharding_indexed layout (whole-shard decode/encode, shard index).
#include "voxcore/codec.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {

namespace detail {

const char* codec_name(CodecId id) noexcept {
  switch (id) {
    case CodecId::kTranspose: return "transpose";
    case CodecId::kBytes: return "bytes";
    case CodecId::kSharding: return "sharding_indexed";
    case CodecId::kBlosc: return "blosc";
    case CodecId::kZstd: return "zstd";
    case CodecId::kLz4: return "lz4";
    case CodecId::kGzip: return "gzip";
    case CodecId::kZlib: return "zlib";
    case CodecId::kCrc32c: return "crc32c";
  }
  return "unknown";
}

void corrupt(CodecId id, const std::string& what) {
  fail(ErrorCode::kCorrupt, kDecodeWhere, std::string(codec_name(id)) + ": " + what);
}

void check_decoded_size(CodecId id, std::size_t got, std::size_t cap, bool exact) {
  if (exact && got != cap) {
    corrupt(id, "decoded size mismatch (expected=" + std::to_string(cap) +
                    ", got=" + std::to_string(got) + ")");
  }
  if (got > cap) {
    corrupt(id, "decoded size exceeds bound (max=" + std::to_string(cap) +
                    ", got=" + std::to_string(got) + ")");
  }
}

}  // namespace detail

namespace {

using detail::codec_name;
using detail::kDecodeWhere;
using detail::kEncodeWhere;
using detail::kPrepareWhere;

constexpr const char* kIndexWhere = "ShardLayout::decode_index";
constexpr uint64_t kEmpty = ~uint64_t{0};

std::string hex32(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int i = 0; i < 8; ++i) s[9 - i] = digits[(v >> (4 * i)) & 0xF];
  return s;
}

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + ")";
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere, std::string(what) + " overflows int64");
  }
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere, std::string(what) + " overflows int64");
  }
  return r;
}

// One validated bytes->bytes codec. dec_size/dec_exact describe its decoded side: the exact byte
// count, or an upper bound when an earlier codec in the chain has a data-dependent size.
struct Step {
  CodecId id = CodecId::kZstd;
  int level = 0;
  bool checksum = false;
  detail::BloscParams blosc;
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

Scratch& scratch(int depth) {
  thread_local Scratch s[2];
  return s[depth];
}

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

void set_contiguous(ArrayView& v, void* data, DType dtype, const Shape& shape) {
  v.data = data;
  v.dtype = dtype;
  v.shape.assign(shape.begin(), shape.end());
  v.byte_strides.resize(shape.size());
  int64_t stride = static_cast<int64_t>(itemsize(dtype));
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    v.byte_strides[i] = stride;
    stride *= shape[i];
  }
}

// v = src.permuted(perm) without allocating after warm-up.
void set_permuted(ArrayView& v, const ArrayView& src, const std::vector<int>& perm) {
  v.data = src.data;
  v.dtype = src.dtype;
  v.shape.resize(perm.size());
  v.byte_strides.resize(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    v.shape[i] = src.shape[perm[i]];
    v.byte_strides[i] = src.byte_strides[perm[i]];
  }
}

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
                    std::vector<ShardIndexEntry>& out) const override {
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

  void encode_index(const std::vector<ShardIndexEntry>& entries, ByteBuffer& out) const override {
    VOXCORE_EXPECT(entries.size() == static_cast<std::size_t>(num_), ErrorCode::kInvalidArgument,
                   "ShardLayout::encode_index",
                   "sharding_indexed: wrong number of entries (expected=" + std::to_string(num_) +
                       ", got=" + std::to_string(entries.size()) + ")");
    out.resize(static_cast<std::size_t>(index_nbytes_));
    write_index(entries, out.data());
  }

  void write_index(const std::vector<ShardIndexEntry>& entries, uint8_t* dst) const noexcept {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      detail::store_le64(dst + 16 * i, entries[i].offset);
      detail::store_le64(dst + 16 * i + 8, entries[i].nbytes);
    }
    if (crc_) {
      const std::size_t body = entries.size() * 16;
      detail::store_le32(dst + body, crc32c(dst, body));
    }
  }
};

}  // namespace

struct CodecChain::Impl {
  Shape chunk_shape;
  DType dtype = DType::kUInt8;
  int64_t chunk_nbytes = 0;
  std::vector<uint8_t> fill;
  std::vector<int> perm;  // empty: no transpose; else stored axis i is chunk axis perm[i]
  Shape stored_shape;
  CodecId a2b = CodecId::kBytes;
  std::size_t swap = 1;  // unit to byte-swap by (1: none)
  std::unique_ptr<ShardLayoutImpl> shard;
  std::vector<Step> steps;  // bytes->bytes codecs in list (encode) order
  int64_t max_encoded = 0;
  int depth = 0;

  static std::unique_ptr<Impl> build(const std::vector<CodecSpec>& specs, const Shape& chunk_shape,
                                     DType dtype, const std::vector<uint8_t>& fill, int depth);
  void add_step(const CodecSpec& spec, int64_t& size, bool& exact);

  void decode(const uint8_t* src, std::size_t size, const ArrayView& dst) const;
  void decode_shard(const uint8_t* src, std::size_t size, const ArrayView& stored) const;
  void encode_append(const ArrayView& src, ByteBuffer& out) const;
  void encode_shard(const ArrayView& stored, ByteBuffer& out) const;
};

// ---- prepare -------------------------------------------------------------------------------

std::unique_ptr<CodecChain::Impl> CodecChain::Impl::build(const std::vector<CodecSpec>& specs,
                                                          const Shape& chunk_shape, DType dtype,
                                                          const std::vector<uint8_t>& fill,
                                                          int depth) {
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.depth = depth;
  c.dtype = dtype;
  c.chunk_shape = chunk_shape;
  const int rank = static_cast<int>(chunk_shape.size());
  if (rank > kMaxRank) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere,
         "chunk rank too large (max=" + std::to_string(kMaxRank) + ", got=" + std::to_string(rank) + ")");
  }
  const auto item = static_cast<int64_t>(itemsize(dtype));
  int64_t nbytes = item;
  for (int64_t d : chunk_shape) {
    if (d <= 0) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
           "chunk shape must be positive (got=" + shape_str(chunk_shape) + ")");
    }
    nbytes = checked_mul(nbytes, d, "chunk byte count");
  }
  if (nbytes > kMaxChunkBytes) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere,
         "chunk too large (max=" + std::to_string(kMaxChunkBytes) + " bytes, got=" +
             std::to_string(nbytes) + ", shape=" + shape_str(chunk_shape) + ")");
  }
  c.chunk_nbytes = nbytes;
  if (fill.empty()) {
    c.fill.assign(static_cast<std::size_t>(item), 0);
  } else if (fill.size() == static_cast<std::size_t>(item)) {
    c.fill = fill;
  } else {
    fail(ErrorCode::kInvalidArgument, kPrepareWhere,
         "fill_value must be itemsize bytes (expected=" + std::to_string(item) + ", got=" +
             std::to_string(fill.size()) + ")");
  }

  std::vector<int> perm(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) perm[i] = i;
  const CodecSpec* a2b = nullptr;
  int64_t size = 0;    // bytes after the codecs so far (exact or bound)
  bool exact = true;
  for (const CodecSpec& spec : specs) {
    switch (spec.id) {
      case CodecId::kTranspose: {
        if (a2b != nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string("transpose must come before the array->bytes codec (got it after ") +
                   codec_name(a2b->id) + ")");
        }
        bool ok = static_cast<int>(spec.order.size()) == rank;
        std::vector<bool> seen(static_cast<std::size_t>(rank), false);
        for (std::size_t i = 0; ok && i < spec.order.size(); ++i) {
          const int o = spec.order[i];
          ok = o >= 0 && o < rank && !seen[o];
          if (ok) seen[o] = true;
        }
        if (!ok) {
          std::string got;
          for (int o : spec.order) got += (got.empty() ? "" : ", ") + std::to_string(o);
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               "transpose: order is not a permutation of the chunk axes (rank=" +
                   std::to_string(rank) + ", got=[" + got + "])");
        }
        std::vector<int> composed(perm.size());
        for (int i = 0; i < rank; ++i) composed[i] = perm[spec.order[i]];
        perm.swap(composed);
        break;
      }
      case CodecId::kBytes:
      case CodecId::kSharding:
        if (a2b != nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string("more than one array->bytes codec (") + codec_name(spec.id) +
                   " after " + codec_name(a2b->id) + ")");
        }
        a2b = &spec;
        break;
      case CodecId::kBlosc:
      case CodecId::kZstd:
      case CodecId::kLz4:
      case CodecId::kGzip:
      case CodecId::kZlib:
      case CodecId::kCrc32c:
        if (a2b == nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string(codec_name(spec.id)) +
                   " (bytes->bytes) must come after the array->bytes codec");
        }
        break;
      default:
        fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
             "unknown codec id (got=" + std::to_string(static_cast<int>(spec.id)) + ")");
    }
  }
  if (a2b == nullptr) {
    fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
         "codec chain has no array->bytes codec (expected bytes or sharding_indexed)");
  }

  bool identity = true;
  for (int i = 0; i < rank; ++i) identity = identity && perm[i] == i;
  c.stored_shape.resize(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) c.stored_shape[i] = chunk_shape[perm[i]];
  if (!identity) c.perm = std::move(perm);

  c.a2b = a2b->id;
  if (a2b->id == CodecId::kBytes) {
    if (a2b->endian != Endian::kLittle && a2b->endian != Endian::kBig) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere, "bytes: unknown endian");
    }
    if (a2b->endian != kNativeEndian) c.swap = swap_unit(dtype);
    size = nbytes;
    exact = true;
  } else {
    if (depth > 0) {
      fail(ErrorCode::kUnsupported, kPrepareWhere,
           "sharding_indexed: nested sharding is not supported");
    }
    const CodecSpec& s = *a2b;
    auto layout = std::make_unique<ShardLayoutImpl>();
    layout->shard_shape_ = c.stored_shape;
    layout->inner_shape_ = s.inner_chunk_shape;
    layout->at_end_ = s.index_at_end;
    if (static_cast<int>(s.inner_chunk_shape.size()) != rank) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
           "sharding_indexed: inner chunk_shape rank differs from the shard (expected=" +
               std::to_string(rank) + ", got=" + shape_str(s.inner_chunk_shape) + ")");
    }
    int64_t num = 1;
    layout->per_shard_.resize(static_cast<std::size_t>(rank));
    for (int i = 0; i < rank; ++i) {
      const int64_t inner = s.inner_chunk_shape[i], outer = c.stored_shape[i];
      if (inner <= 0 || outer % inner != 0) {
        fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
             "sharding_indexed: inner chunk_shape must divide the shard shape (shard=" +
                 shape_str(c.stored_shape) + ", inner=" + shape_str(s.inner_chunk_shape) + ")");
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
    const auto& ic = s.index_codecs;
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
        build(s.inner_codecs, s.inner_chunk_shape, dtype, c.fill, depth + 1);
    const int64_t inner_max = inner->max_encoded;
    layout->inner_.reset(new CodecChain(std::move(inner)));
    size = checked_add(layout->index_nbytes_, checked_mul(num, inner_max, "shard size bound"),
                       "shard size bound");
    exact = false;
    c.shard = std::move(layout);
  }

  bool after = false;
  for (const CodecSpec& spec : specs) {
    if (&spec == a2b) {
      after = true;
    } else if (after) {
      c.add_step(spec, size, exact);
    }
  }
  c.max_encoded = size;
  return impl;
}

void CodecChain::Impl::add_step(const CodecSpec& spec, int64_t& size, bool& exact) {
  Step st;
  st.id = spec.id;
  st.dec_size = size;
  st.dec_exact = exact;
  const char* name = codec_name(spec.id);
  auto invalid = [&](const std::string& what) {
    fail(ErrorCode::kInvalidMetadata, kPrepareWhere, std::string(name) + ": " + what);
  };
  auto too_big = [&](std::size_t max) {
    if (exact && static_cast<uint64_t>(size) > max) {
      fail(ErrorCode::kLimitExceeded, kPrepareWhere,
           std::string(name) + ": chunk too large for this codec (max=" + std::to_string(max) +
               ", got=" + std::to_string(size) + ")");
    }
  };
  switch (spec.id) {
    case CodecId::kZstd:
      if (!detail::zstd_level_valid(spec.level)) {
        invalid("level out of range (got=" + std::to_string(spec.level) + ")");
      }
      st.level = spec.level;
      st.checksum = spec.checksum;
      break;
    case CodecId::kLz4:
      too_big(detail::lz4_max_input());
      st.level = spec.level < 1 ? 1 : spec.level;
      break;
    case CodecId::kGzip:
    case CodecId::kZlib:
      st.level = spec.level < 0 ? 6 : (spec.level > 12 ? 12 : spec.level);
      break;
    case CodecId::kBlosc: {
      too_big(detail::blosc_max_input());
      if (!detail::blosc_cname_known(spec.cname)) invalid("unknown cname (got=" + spec.cname + ")");
      if (spec.level < 0 || spec.level > 9) {
        invalid("clevel out of range (expected 0..9, got=" + std::to_string(spec.level) + ")");
      }
      const int typesize = spec.typesize == 0 ? static_cast<int>(itemsize(dtype)) : spec.typesize;
      if (typesize < 1 || typesize > 255) {
        invalid("typesize out of range (expected 1..255, got=" + std::to_string(spec.typesize) + ")");
      }
      if (spec.shuffle < -1 || spec.shuffle > 2) {
        invalid("shuffle must be -1, 0, 1 or 2 (got=" + std::to_string(spec.shuffle) + ")");
      }
      if (spec.blocksize < 0) invalid("blocksize must be >= 0 (got=" + std::to_string(spec.blocksize) + ")");
      st.blosc.clevel = spec.level;
      // numcodecs AUTOSHUFFLE (-1): bit-shuffle for 1-byte items, else byte-shuffle.
      st.blosc.shuffle = spec.shuffle == -1 ? (typesize == 1 ? 2 : 1) : spec.shuffle;
      st.blosc.typesize = typesize;
      st.blosc.blocksize = spec.blocksize;
      st.blosc.cname = spec.cname;
      break;
    }
    case CodecId::kCrc32c:
      break;
    default:
      break;  // unreachable: build() only passes bytes->bytes codecs
  }
  if (spec.id == CodecId::kCrc32c) {
    size = checked_add(size, 4, "encoded size bound");
  } else {
    // Generous bound on any encoder's expansion of incompressible data (zstd, lz4, blosc, deflate
    // all stay far below it); only used to size buffers for chains with stacked compressors.
    size = checked_add(checked_add(size, size / 16, "encoded size bound"), 256, "encoded size bound");
    exact = false;
  }
  steps.push_back(std::move(st));
}

// ---- decode --------------------------------------------------------------------------------

namespace {

std::size_t run_decoder(const Step& st, const uint8_t* in, std::size_t n, uint8_t* out) {
  const auto cap = static_cast<std::size_t>(st.dec_size);
  switch (st.id) {
    case CodecId::kZstd: return detail::zstd_decode(in, n, out, cap, st.dec_exact);
    case CodecId::kLz4: return detail::lz4_decode(in, n, out, cap, st.dec_exact);
    case CodecId::kGzip:
    case CodecId::kZlib: return detail::deflate_decode(st.id, in, n, out, cap, st.dec_exact);
    case CodecId::kBlosc: return detail::blosc_decode(in, n, out, cap, st.dec_exact);
    default: detail::corrupt(st.id, "not a decompressor");
  }
}

// Verifies and strips the trailing CRC32C; returns the payload size.
std::size_t crc_check(const uint8_t* p, std::size_t n) {
  if (n < 4) {
    detail::corrupt(CodecId::kCrc32c,
                    "truncated input (expected>=4 bytes, got=" + std::to_string(n) + ")");
  }
  const uint32_t stored = detail::load_le32(p + n - 4);
  const uint32_t computed = crc32c(p, n - 4);
  if (stored != computed) {
    detail::corrupt(CodecId::kCrc32c, "checksum mismatch (expected=" + hex32(stored) +
                                          ", got=" + hex32(computed) + ")");
  }
  return n - 4;
}

void run_encoder(const Step& st, const uint8_t* in, std::size_t n, ByteBuffer& out) {
  switch (st.id) {
    case CodecId::kZstd: detail::zstd_encode(in, n, st.level, st.checksum, out); return;
    case CodecId::kLz4: detail::lz4_encode(in, n, st.level, out); return;
    case CodecId::kGzip:
    case CodecId::kZlib: detail::deflate_encode(st.id, in, n, st.level, out); return;
    case CodecId::kBlosc: detail::blosc_encode(in, n, st.blosc, out); return;
    case CodecId::kCrc32c: {
      const std::size_t base = out.size();
      out.resize(base + n + 4);
      if (n > 0) std::memcpy(out.data() + base, in, n);
      detail::store_le32(out.data() + base + n, crc32c(in, n));
      return;
    }
    default: return;
  }
}

}  // namespace

void CodecChain::Impl::decode(const uint8_t* src, std::size_t size, const ArrayView& dst) const {
  Scratch& s = scratch(depth);
  const bool direct = a2b == CodecId::kBytes && perm.empty() && dst.is_c_contiguous();
  const uint8_t* cur = src;
  std::size_t n = size;
  int cur_buf = -1;  // which scratch buffer holds cur (-1: caller memory or dst)
  for (std::size_t k = steps.size(); k-- > 0;) {
    const Step& st = steps[k];
    if (st.id == CodecId::kCrc32c) {
      n = crc_check(cur, n);
      continue;
    }
    uint8_t* out;
    if (k == 0 && direct) {
      out = static_cast<uint8_t*>(dst.data);  // dec_size == chunk_nbytes here
      cur_buf = -1;
    } else {
      const int b = cur_buf == 0 ? 1 : 0;
      s.bufs[b].resize(static_cast<std::size_t>(st.dec_size));
      out = s.bufs[b].data();
      cur_buf = b;
    }
    n = run_decoder(st, cur, n, out);
    cur = out;
  }

  if (a2b == CodecId::kSharding) {
    if (perm.empty()) {
      decode_shard(cur, n, dst);
    } else {
      set_permuted(s.stored, dst, perm);
      decode_shard(cur, n, s.stored);
    }
    return;
  }
  if (n != static_cast<uint64_t>(chunk_nbytes)) {
    detail::corrupt(CodecId::kBytes, "chunk size mismatch (expected=" + std::to_string(chunk_nbytes) +
                                         ", got=" + std::to_string(n) + ")");
  }
  const std::size_t count = n / swap;  // itemsize is a multiple of the swap unit
  if (direct) {
    if (cur != dst.data) std::memcpy(dst.data, cur, n);
    if (swap > 1) byteswap_inplace(dst.data, count, swap);
    return;
  }
  if (swap > 1) {
    if (cur_buf < 0) {
      s.bufs[0].resize(n);
      std::memcpy(s.bufs[0].data(), cur, n);
      cur = s.bufs[0].data();
    }
    byteswap_inplace(const_cast<uint8_t*>(cur), count, swap);
  }
  set_contiguous(s.tmp, const_cast<uint8_t*>(cur), dtype, stored_shape);
  if (perm.empty()) {
    copy(s.tmp, dst);
  } else {
    set_permuted(s.stored, dst, perm);
    copy(s.tmp, s.stored);
  }
}

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
           "sharding_indexed: inner chunk " + shape_str(s.coord) + ": " + what);
    }
  });
}

// ---- encode --------------------------------------------------------------------------------

void CodecChain::Impl::encode_append(const ArrayView& src, ByteBuffer& out) const {
  Scratch& s = scratch(depth);
  const ArrayView* stored = &src;
  if (!perm.empty()) {
    set_permuted(s.stored, src, perm);
    stored = &s.stored;
  }
  ByteBuffer& target = steps.empty() ? out : s.bufs[0];
  if (!steps.empty()) target.clear();
  if (a2b == CodecId::kBytes) {
    const std::size_t base = target.size();
    const auto n = static_cast<std::size_t>(chunk_nbytes);
    target.resize(base + n);
    uint8_t* p = target.data() + base;
    if (stored->is_c_contiguous()) {
      std::memcpy(p, stored->data, n);
    } else {
      set_contiguous(s.tmp, p, dtype, stored_shape);
      copy(*stored, s.tmp);
    }
    if (swap > 1) byteswap_inplace(p, n / swap, swap);
  } else {
    encode_shard(*stored, target);
  }
  int cur = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const bool last = k + 1 == steps.size();
    ByteBuffer& next = last ? out : s.bufs[1 - cur];
    if (!last) next.clear();
    run_encoder(steps[k], s.bufs[cur].data(), s.bufs[cur].size(), next);
    cur = 1 - cur;
  }
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

// ---- CodecChain ----------------------------------------------------------------------------

CodecChain::CodecChain(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodecChain::~CodecChain() = default;

std::shared_ptr<const CodecChain> CodecChain::prepare(const std::vector<CodecSpec>& specs,
                                                      const Shape& chunk_shape, DType dtype,
                                                      const std::vector<uint8_t>& fill_value) {
  return std::shared_ptr<const CodecChain>(
      new CodecChain(Impl::build(specs, chunk_shape, dtype, fill_value, 0)));
}

const Shape& CodecChain::chunk_shape() const noexcept { return impl_->chunk_shape; }
DType CodecChain::dtype() const noexcept { return impl_->dtype; }
int64_t CodecChain::chunk_nbytes() const noexcept { return impl_->chunk_nbytes; }
const ShardLayout* CodecChain::sharding() const noexcept { return impl_->shard.get(); }
bool CodecChain::is_identity_layout() const noexcept {
  return impl_->a2b == CodecId::kBytes && impl_->perm.empty() && impl_->swap == 1;
}

namespace {
void check_view(const ArrayView& v, const CodecChain& chain, const char* where) {
  if (v.dtype != chain.dtype() || v.shape != chain.chunk_shape() ||
      v.byte_strides.size() != v.shape.size() || v.data == nullptr) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string("view does not match the chunk (expected dtype=") + dtype_name(chain.dtype()) +
             " shape=" + shape_str(chain.chunk_shape()) + ", got dtype=" + dtype_name(v.dtype) +
             " shape=" + shape_str(v.shape) + (v.data == nullptr ? ", null data" : "") + ")");
  }
}
}  // namespace

void CodecChain::decode_into(const uint8_t* src, std::size_t size, const ArrayView& dst) const {
  check_view(dst, *this, kDecodeWhere);
  if (src == nullptr && size > 0) {
    fail(ErrorCode::kInvalidArgument, kDecodeWhere, "null source with non-zero size");
  }
  static const uint8_t kNothing = 0;
  impl_->decode(src != nullptr ? src : &kNothing, size, dst);
}

void CodecChain::encode(const ArrayView& src, ByteBuffer& out) const {
  check_view(src, *this, kEncodeWhere);
  out.clear();
  impl_->encode_append(src, out);
}

namespace {

// Faults in the pages of a large fresh output buffer on another thread while the (single-
// threaded) inflate writes it, so the decoder does not stop for page faults. MADV_POPULATE_WRITE
// maps pages without touching their bytes, so racing the decoder is harmless; where the kernel
// lacks it this does nothing.
class Prefault {
 public:
  Prefault(uint8_t* dst, std::size_t size) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    if (size < (std::size_t{32} << 20)) return;
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(dst) + page - 1) / page * page;
    const std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(dst) + size) / page * page;
    if (hi <= lo) return;
    thread_ = std::thread([this, lo, hi] {
      constexpr std::uintptr_t kStep = std::uintptr_t{4} << 20;
      for (std::uintptr_t p = lo; p < hi && !stop_.load(std::memory_order_relaxed); p += kStep) {
        if (madvise(reinterpret_cast<void*>(p), std::min(kStep, hi - p), MADV_POPULATE_WRITE) != 0) break;
      }
    });
#endif
  }
  ~Prefault() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }
  Prefault(const Prefault&) = delete;
  Prefault& operator=(const Prefault&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::size_t gunzip(const uint8_t* src, std::size_t size, uint8_t* dst, std::size_t cap, bool discard_excess) {
  Prefault prefault(dst, cap);
  return detail::deflate_decode(CodecId::kGzip, src, size, dst, cap, false, discard_excess);
}

void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block, ByteBuffer& out,
                  Executor* executor) {
  if (block == 0) fail(ErrorCode::kInvalidArgument, "gzip_members", "block must be > 0");
  if (executor == nullptr) executor = &default_executor();
  const std::size_t count = size == 0 ? 1 : (size + block - 1) / block;
  std::vector<ByteBuffer> parts(count);
  executor->parallel_for(static_cast<int64_t>(count), [&](int64_t i) {
    const std::size_t lo = static_cast<std::size_t>(i) * block, n = std::min(block, size - lo);
    if (level <= 3) {
      detail::isal_gzip_encode(src + lo, n, level, parts[static_cast<std::size_t>(i)]);
    } else {
      detail::deflate_encode(CodecId::kGzip, src + lo, n, level, parts[static_cast<std::size_t>(i)]);
    }
  });
  std::size_t total = 0;
  for (const ByteBuffer& p : parts) total += p.size();
  const std::size_t base = out.size();
  out.resize(base + total);
  uint8_t* dst = out.data() + base;
  for (const ByteBuffer& p : parts) {
    std::memcpy(dst, p.data(), p.size());
    dst += p.size();
  }
}

void gzip_members(const uint8_t* src, std::size_t size, int level, std::size_t block,
                  const std::function<void(const uint8_t*, std::size_t)>& sink, Executor* executor) {
  if (block == 0) fail(ErrorCode::kInvalidArgument, "gzip_members", "block must be > 0");
  if (executor == nullptr) executor = &default_executor();
  const std::size_t count = size == 0 ? 1 : (size + block - 1) / block;
  std::vector<ByteBuffer> parts(count);
  std::vector<uint8_t> ready(count, 0);
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::atomic<bool> abort{false};
  std::exception_ptr error;
  // A driver thread runs the parallel compression (it takes part in it); this thread hands the
  // finished members to sink in order as they complete.
  std::thread driver([&] {
    try {
      executor->parallel_for(static_cast<int64_t>(count), [&](int64_t i) {
        if (abort.load(std::memory_order_relaxed)) return;
        const std::size_t k = static_cast<std::size_t>(i), lo = k * block, n = std::min(block, size - lo);
        ByteBuffer part;
        if (level <= 3) {
          detail::isal_gzip_encode(src + lo, n, level, part);
        } else {
          detail::deflate_encode(CodecId::kGzip, src + lo, n, level, part);
        }
        std::lock_guard<std::mutex> lock(mu);
        parts[k] = std::move(part);
        ready[k] = 1;
        cv.notify_all();
      });
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
    cv.notify_all();
  });
  std::exception_ptr sink_error;
  for (std::size_t k = 0; k < count; ++k) {
    ByteBuffer part;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ready[k] != 0 || finished; });
      if (ready[k] == 0) break;  // the compression failed
      part = std::move(parts[k]);
    }
    try {
      sink(part.data(), part.size());
    } catch (...) {
      sink_error = std::current_exception();
      abort.store(true, std::memory_order_relaxed);
      break;
    }
  }
  driver.join();
  if (sink_error) std::rethrow_exception(sink_error);
  if (error) std::rethrow_exception(error);
}

}  // namespace voxcore
