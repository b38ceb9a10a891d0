#pragma once
// Private: the bytes->bytes codec kernels used by CodecChain (detail/codec_steps.cpp).
//
// Decoders write into a caller-owned buffer of `cap` bytes and never past it. When `exact`, the
// result must be exactly `cap` bytes; otherwise at most `cap` (cap is then an upper bound computed
// from metadata). Sizes claimed inside the payload are checked against cap, never allocated.
// Failures throw Error(kCorrupt, "[CodecChain::decode_into] <codec>: ... (expected=..., got=...)").
//
// Encoders append their output to `out` (out.size() grows by the encoded size). Contexts and
// (de)compressors are thread_local, so all functions are thread-safe.
#include <cstddef>
#include <cstdint>
#include <string>

#include "voxcore/api.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/codec.hpp"

namespace voxcore::detail {

inline constexpr const char* kDecodeWhere = "CodecChain::decode_into";
inline constexpr const char* kEncodeWhere = "CodecChain::encode";
inline constexpr const char* kPrepareWhere = "CodecChain::prepare";

// Zarr names: "transpose", "bytes", "sharding_indexed", "blosc", "zstd", "lz4", "gzip", ...
const char* codec_name(CodecId id) noexcept;

// kCorrupt naming the codec: "[CodecChain::decode_into] <codec>: <what>".
[[noreturn]] void corrupt(CodecId id, const std::string& what);
// Checks a decoded size against cap (exact or bound); throws kCorrupt otherwise.
void check_decoded_size(CodecId id, std::size_t got, std::size_t cap, bool exact);

std::size_t zstd_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                        bool exact);
void zstd_encode(const uint8_t* src, std::size_t n, int level, bool checksum, ByteBuffer& out);
bool zstd_level_valid(int level) noexcept;

// numcodecs LZ4: 4-byte LE uncompressed size + one LZ4 block.
std::size_t lz4_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                       bool exact);
void lz4_encode(const uint8_t* src, std::size_t n, int acceleration, ByteBuffer& out);
std::size_t lz4_max_input() noexcept;

// id is kGzip (gzip members) or kZlib (zlib streams); level is libdeflate's 0..12.
// discard_excess (gzip only): decoded bytes past cap are checked (every member must still be
// valid) and dropped instead of refused; the result is then at most cap.
std::size_t deflate_decode(CodecId id, const uint8_t* src, std::size_t n, uint8_t* dst,
                           std::size_t cap, bool exact, bool discard_excess = false);
void deflate_encode(CodecId id, const uint8_t* src, std::size_t n, int level, ByteBuffer& out);
// One gzip member by ISA-L's igzip (levels 0-3; several times libdeflate's speed at level 1).
void isal_gzip_encode(const uint8_t* src, std::size_t n, int level, ByteBuffer& out);

// Blosc1 frames.
struct BloscParams {
  int clevel = 5;
  int shuffle = 1;
  int typesize = 1;
  int blocksize = 0;
  std::string cname = "lz4";
};
std::size_t blosc_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                         bool exact);
void blosc_encode(const uint8_t* src, std::size_t n, const BloscParams& params, ByteBuffer& out);
bool blosc_cname_known(const std::string& cname) noexcept;
std::size_t blosc_max_input() noexcept;

// CRC32C by the portable table code whatever the CPU (tests compare it with crc32c()).
VOXCORE_API uint32_t crc32c_portable(const void* data, std::size_t size, uint32_t crc) noexcept;

inline void store_le32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t load_le32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline void store_le64(uint8_t* p, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t load_le64(const uint8_t* p) noexcept {
  return uint64_t{load_le32(p)} | uint64_t{load_le32(p + 4)} << 32;
}

}  // namespace voxcore::detail
