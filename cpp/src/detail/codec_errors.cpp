// Codec names and the kCorrupt errors that name them, shared by every codec kernel.
#include <cstddef>
#include <string>

#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"

namespace voxcore::detail {

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
    case CodecId::kTiff: return "tiff";
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

}  // namespace voxcore::detail
