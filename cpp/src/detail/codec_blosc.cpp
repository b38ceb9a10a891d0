// Blosc1 frames as numcodecs/zarr write them, through the context API only (no global state).
#include <blosc.h>

#include <string>

#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"

namespace voxcore::detail {
namespace {
std::string num(std::size_t v) { return std::to_string(v); }
}  // namespace

std::size_t blosc_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                         bool exact) {
  if (n < BLOSC_MIN_HEADER_LENGTH) {
    corrupt(CodecId::kBlosc, "truncated input (expected>=" + num(BLOSC_MIN_HEADER_LENGTH) +
                                 " header bytes, got=" + num(n) + ")");
  }
  std::size_t nbytes = 0, cbytes = 0, blocksize = 0;
  blosc_cbuffer_sizes(src, &nbytes, &cbytes, &blocksize);
  if (cbytes > n) {
    corrupt(CodecId::kBlosc,
            "truncated frame (header cbytes=" + num(cbytes) + ", got=" + num(n) + " bytes)");
  }
  if (exact && nbytes != cap) {
    corrupt(CodecId::kBlosc, "decoded size mismatch (expected=" + num(cap) +
                                 ", got=" + num(nbytes) + " in the frame header)");
  }
  if (nbytes > cap) {
    corrupt(CodecId::kBlosc,
            "decoded size exceeds bound (max=" + num(cap) + ", got=" + num(nbytes) + ")");
  }
  std::size_t validated = 0;
  if (blosc_cbuffer_validate(src, cbytes, &validated) != 0 || validated != nbytes) {
    corrupt(CodecId::kBlosc, "invalid frame header (cbytes=" + num(cbytes) +
                                 ", nbytes=" + num(nbytes) + ")");
  }
  if (nbytes == 0) return 0;
  const int r = blosc_decompress_ctx(src, dst, nbytes, 1);
  if (r < 0 || static_cast<std::size_t>(r) != nbytes) {
    corrupt(CodecId::kBlosc, "invalid data (expected=" + num(nbytes) +
                                 " bytes, blosc_decompress_ctx returned " + std::to_string(r) + ")");
  }
  return nbytes;
}

void blosc_encode(const uint8_t* src, std::size_t n, const BloscParams& p, ByteBuffer& out) {
  if (n > static_cast<std::size_t>(BLOSC_MAX_BUFFERSIZE)) {
    fail(ErrorCode::kLimitExceeded, kEncodeWhere,
         "blosc: input too large (max=" + num(BLOSC_MAX_BUFFERSIZE) + ", got=" + num(n) + ")");
  }
  const std::size_t base = out.size();
  const std::size_t cap = n + BLOSC_MAX_OVERHEAD;
  out.resize(base + cap);
  const int r = blosc_compress_ctx(p.clevel, p.shuffle, static_cast<std::size_t>(p.typesize), n,
                                   src, out.data() + base, cap, p.cname.c_str(),
                                   static_cast<std::size_t>(p.blocksize), 1);
  if (r <= 0) {
    out.resize(base);
    fail(ErrorCode::kInvalidArgument, kEncodeWhere,
         "blosc: compression failed (cname=" + p.cname + ", returned " + std::to_string(r) + ")");
  }
  out.resize(base + static_cast<std::size_t>(r));
}

bool blosc_cname_known(const std::string& cname) noexcept {
  return blosc_compname_to_compcode(cname.c_str()) >= 0;
}

std::size_t blosc_max_input() noexcept { return BLOSC_MAX_BUFFERSIZE; }

}  // namespace voxcore::detail
