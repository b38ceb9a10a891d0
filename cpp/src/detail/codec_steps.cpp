// The bytes->bytes codecs of a chain: blosc, zstd, lz4, gzip, zlib and crc32c. add_step checks
// one codec's parameters when a chain is prepared; the run_* functions apply it to one chunk.
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "detail/checked.hpp"
#include "detail/codec_chain.hpp"
#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"

namespace voxcore {

using detail::checked_add;
using detail::codec_name;
using detail::kPrepareWhere;

void CodecChain::Impl::add_step(const CodecSpec& spec, int64_t& size, bool& exact) {
  detail::Step st;
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
    size = checked_add(size, 4, kPrepareWhere, "encoded size bound");
  } else {
    // Generous bound on any encoder's expansion of incompressible data (zstd, lz4, blosc, deflate
    // all stay far below it); only used to size buffers for chains with stacked compressors.
    size = checked_add(checked_add(size, size / 16, kPrepareWhere, "encoded size bound"), 256, kPrepareWhere,
                       "encoded size bound");
    exact = false;
  }
  steps.push_back(std::move(st));
}

namespace detail {

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

}  // namespace detail
}  // namespace voxcore
