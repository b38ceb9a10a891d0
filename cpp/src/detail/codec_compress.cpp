// zstd, numcodecs-LZ4 and gzip/zlib kernels (see codec_ops.hpp for the contract).
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"

namespace voxcore::detail {
namespace {

std::string num(std::size_t v) { return std::to_string(v); }

// ---- zstd ----------------------------------------------------------------------------------

struct ZstdFree {
  void operator()(ZSTD_DCtx* c) const noexcept { ZSTD_freeDCtx(c); }
  void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
};

ZSTD_DCtx* zstd_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdFree> ctx;
  if (!ctx) {
    ctx.reset(ZSTD_createDCtx());
    if (!ctx) throw std::bad_alloc();
  }
  return ctx.get();
}

ZSTD_CCtx* zstd_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdFree> ctx;
  if (!ctx) {
    ctx.reset(ZSTD_createCCtx());
    if (!ctx) throw std::bad_alloc();
  }
  return ctx.get();
}

// ---- libdeflate ----------------------------------------------------------------------------

struct Deflaters {
  libdeflate_decompressor* decompressor = nullptr;
  libdeflate_compressor* compressors[13] = {};
  ~Deflaters() {
    libdeflate_free_decompressor(decompressor);
    for (auto* c : compressors) libdeflate_free_compressor(c);
  }
};

Deflaters& deflaters() {
  thread_local Deflaters d;
  return d;
}

libdeflate_decompressor* deflate_decompressor() {
  Deflaters& d = deflaters();
  if (d.decompressor == nullptr) {
    d.decompressor = libdeflate_alloc_decompressor();
    if (d.decompressor == nullptr) throw std::bad_alloc();
  }
  return d.decompressor;
}

libdeflate_compressor* deflate_compressor(int level) {
  level = std::clamp(level, 0, 12);
  Deflaters& d = deflaters();
  if (d.compressors[level] == nullptr) {
    d.compressors[level] = libdeflate_alloc_compressor(level);
    if (d.compressors[level] == nullptr) throw std::bad_alloc();
  }
  return d.compressors[level];
}

}  // namespace

// ---- zstd ----------------------------------------------------------------------------------

std::size_t zstd_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                        bool exact) {
  if (n == 0) corrupt(CodecId::kZstd, "empty input (expected a zstd frame, got=0 bytes)");
  const std::size_t r = ZSTD_decompressDCtx(zstd_dctx(), dst, cap, src, n);
  if (ZSTD_isError(r)) {
    if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
      const unsigned long long claim = ZSTD_getFrameContentSize(src, n);
      const bool known = claim != ZSTD_CONTENTSIZE_UNKNOWN && claim != ZSTD_CONTENTSIZE_ERROR &&
                         claim > cap;
      corrupt(CodecId::kZstd, std::string("decoded size exceeds ") +
                                  (exact ? "expected (expected=" : "bound (max=") + num(cap) +
                                  ", got=" + (known ? std::to_string(claim) : ">" + num(cap)) +
                                  ")");
    }
    corrupt(CodecId::kZstd, std::string("invalid data (") + ZSTD_getErrorName(r) +
                                ", input=" + num(n) + " bytes)");
  }
  check_decoded_size(CodecId::kZstd, r, cap, exact);
  return r;
}

void zstd_encode(const uint8_t* src, std::size_t n, int level, bool checksum, ByteBuffer& out) {
  ZSTD_CCtx* cctx = zstd_cctx();
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  const std::size_t base = out.size();
  const std::size_t bound = ZSTD_compressBound(n);
  out.resize(base + bound);
  const std::size_t r = ZSTD_compress2(cctx, out.data() + base, bound, src, n);
  if (ZSTD_isError(r)) {
    out.resize(base);
    fail(ErrorCode::kInvalidArgument, kEncodeWhere,
         std::string("zstd: compression failed (") + ZSTD_getErrorName(r) + ")");
  }
  out.resize(base + r);
}

bool zstd_level_valid(int level) noexcept {
  return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
}

// ---- lz4 -----------------------------------------------------------------------------------

std::size_t lz4_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap,
                       bool exact) {
  if (n < 4) {
    corrupt(CodecId::kLz4, "truncated input (expected>=4 bytes for the size prefix, got=" +
                               num(n) + ")");
  }
  const uint32_t claim = load_le32(src);
  if (exact && claim != cap) {
    corrupt(CodecId::kLz4,
            "size prefix mismatch (expected=" + num(cap) + ", got=" + num(claim) + ")");
  }
  if (claim > cap) {
    corrupt(CodecId::kLz4, "size prefix exceeds bound (max=" + num(cap) + ", got=" + num(claim) + ")");
  }
  if (claim > static_cast<uint32_t>(INT_MAX) || n - 4 > static_cast<std::size_t>(INT_MAX)) {
    corrupt(CodecId::kLz4, "block too large for lz4 (input=" + num(n) + ", prefix=" + num(claim) + ")");
  }
  const int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src + 4),
                                    reinterpret_cast<char*>(dst), static_cast<int>(n - 4),
                                    static_cast<int>(claim));
  if (r < 0) corrupt(CodecId::kLz4, "invalid data (input=" + num(n) + " bytes)");
  if (static_cast<uint32_t>(r) != claim) {
    corrupt(CodecId::kLz4,
            "decoded size mismatch (expected=" + num(claim) + ", got=" + num(static_cast<std::size_t>(r)) + ")");
  }
  return claim;
}

void lz4_encode(const uint8_t* src, std::size_t n, int acceleration, ByteBuffer& out) {
  if (n > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE)) {
    fail(ErrorCode::kLimitExceeded, kEncodeWhere,
         "lz4: input too large (max=" + num(LZ4_MAX_INPUT_SIZE) + ", got=" + num(n) + ")");
  }
  const int bound = LZ4_compressBound(static_cast<int>(n));
  const std::size_t base = out.size();
  out.resize(base + 4 + static_cast<std::size_t>(bound));
  store_le32(out.data() + base, static_cast<uint32_t>(n));
  const int r = LZ4_compress_fast(reinterpret_cast<const char*>(src),
                                  reinterpret_cast<char*>(out.data() + base + 4),
                                  static_cast<int>(n), bound, std::max(acceleration, 1));
  if (r <= 0 && n > 0) {
    out.resize(base);
    fail(ErrorCode::kInvalidArgument, kEncodeWhere, "lz4: compression failed");
  }
  out.resize(base + 4 + static_cast<std::size_t>(r));
}

std::size_t lz4_max_input() noexcept { return LZ4_MAX_INPUT_SIZE; }

// ---- gzip / zlib ---------------------------------------------------------------------------

std::size_t deflate_decode(CodecId id, const uint8_t* src, std::size_t n, uint8_t* dst,
                           std::size_t cap, bool exact, bool discard_excess) {
  const bool gzip = id == CodecId::kGzip;
  const char* unit = gzip ? "gzip member" : "zlib stream";
  if (n == 0) corrupt(id, std::string("empty input (expected a ") + unit + ", got=0 bytes)");
  libdeflate_decompressor* d = deflate_decompressor();
  std::size_t in_pos = 0, out_pos = 0;
  int member = 0;
  while (in_pos < n) {
    std::size_t in_used = 0, out_used = 0;
    libdeflate_result r =
        gzip ? libdeflate_gzip_decompress_ex(d, src + in_pos, n - in_pos, dst + out_pos,
                                             cap - out_pos, &in_used, &out_used)
             : libdeflate_zlib_decompress_ex(d, src + in_pos, n - in_pos, dst + out_pos,
                                             cap - out_pos, &in_used, &out_used);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE && gzip && discard_excess) {
      // Decode this member whole into scratch (deflate expands at most ~1032:1, so the room
      // needed is bounded by the input left), keep what fits, drop the rest.
      const std::size_t limit = (n - in_pos) * 1032 + (std::size_t{1} << 20);
      std::size_t room = std::min(limit, std::max<std::size_t>(std::size_t{1} << 20, 2 * (cap - out_pos)));
      std::vector<uint8_t> scratch;
      for (;;) {
        scratch.resize(room);
        r = libdeflate_gzip_decompress_ex(d, src + in_pos, n - in_pos, scratch.data(), room, &in_used, &out_used);
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE || room >= limit) break;
        room = std::min(limit, room * 2);
      }
      if (r == LIBDEFLATE_SUCCESS && in_used != 0) {
        const std::size_t keep = std::min(out_used, cap - out_pos);
        std::memcpy(dst + out_pos, scratch.data(), keep);
        out_used = keep;
      }
    }
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
      corrupt(id, std::string("decoded size exceeds ") + (exact ? "expected (expected=" : "bound (max=") +
                      num(cap) + ", got>" + num(cap) + ")");
    }
    if (r != LIBDEFLATE_SUCCESS || in_used == 0) {
      corrupt(id, std::string("invalid data in ") + unit + " " + std::to_string(member) +
                      " (at input byte " + num(in_pos) + " of " + num(n) + ")");
    }
    in_pos += in_used;
    out_pos += out_used;
    ++member;
    // Python's gzip reader accepts zero padding after a member.
    if (gzip) {
      while (in_pos < n && src[in_pos] == 0) ++in_pos;
    }
  }
  check_decoded_size(id, out_pos, cap, exact);
  return out_pos;
}

void deflate_encode(CodecId id, const uint8_t* src, std::size_t n, int level, ByteBuffer& out) {
  libdeflate_compressor* c = deflate_compressor(level);
  const bool gzip = id == CodecId::kGzip;
  const std::size_t bound =
      gzip ? libdeflate_gzip_compress_bound(c, n) : libdeflate_zlib_compress_bound(c, n);
  const std::size_t base = out.size();
  out.resize(base + bound);
  const std::size_t r = gzip ? libdeflate_gzip_compress(c, src, n, out.data() + base, bound)
                             : libdeflate_zlib_compress(c, src, n, out.data() + base, bound);
  if (r == 0) {
    out.resize(base);
    fail(ErrorCode::kInvalidArgument, kEncodeWhere,
         std::string(codec_name(id)) + ": compression failed");
  }
  out.resize(base + r);
}

void isal_gzip_encode(const uint8_t* src, std::size_t n, int level, ByteBuffer& out) {
  level = std::clamp(level, 0, 3);
  static const uint32_t kLevelBuf[4] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
                                        ISAL_DEF_LVL3_DEFAULT};
  thread_local std::vector<uint8_t> level_buf;
  level_buf.resize(kLevelBuf[level]);
  isal_zstream s;
  isal_deflate_init(&s);
  s.level = static_cast<uint32_t>(level);
  s.level_buf = level_buf.data();
  s.level_buf_size = kLevelBuf[level];
  s.gzip_flag = IGZIP_GZIP;
  s.end_of_stream = 1;
  s.flush = NO_FLUSH;
  s.next_in = const_cast<uint8_t*>(src);
  s.avail_in = static_cast<uint32_t>(n);
  if (n > UINT32_MAX) fail(ErrorCode::kLimitExceeded, kEncodeWhere, "gzip: member too large (max=4 GiB)");
  const std::size_t base = out.size();
  std::size_t cap = n + n / 64 + 1024;  // stored blocks cost 5 bytes per 64 KiB, plus header/trailer
  for (;;) {
    out.resize(base + cap);
    s.next_out = out.data() + base + s.total_out;
    s.avail_out = static_cast<uint32_t>(std::min<std::size_t>(cap - s.total_out, UINT32_MAX));
    if (isal_deflate(&s) != COMP_OK) {
      out.resize(base);
      fail(ErrorCode::kInvalidArgument, kEncodeWhere, "gzip: igzip compression failed");
    }
    if (s.internal_state.state == ZSTATE_END) break;
    cap *= 2;  // out of room: grow and continue the same stream
  }
  out.resize(base + s.total_out);
}

}  // namespace voxcore::detail
