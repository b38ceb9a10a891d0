// TIFF's LZW (Compression 5) and PackBits (32773) decoders, bounded by the caller's buffer.
#include <cstdint>
#include <string>

#include "detail/codec_ops.hpp"
#include "detail/tiff_tile.hpp"

namespace voxcore::detail {

namespace {

constexpr int kClear = 256;
constexpr int kEnd = 257;
constexpr int kFirst = 258;
constexpr int kTableSize = 4096;

struct LzwTable {
  uint16_t prefix[kTableSize];
  uint8_t suffix[kTableSize];
  uint8_t first[kTableSize];
  uint16_t length[kTableSize];
  LzwTable() {
    for (int i = 0; i < 256; ++i) {
      prefix[i] = 0;
      suffix[i] = first[i] = static_cast<uint8_t>(i);
      length[i] = 1;
    }
  }
};

[[noreturn]] void lzw_corrupt(const std::string& what) { corrupt(CodecId::kTiff, "LZW: " + what); }

}  // namespace

std::size_t lzw_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap) {
  if (n >= 2 && src[0] == 0 && (src[1] & 1)) {
    lzw_corrupt("old-style (LSB-first) LZW is not decoded");
  }
  thread_local LzwTable t;
  std::size_t pos = 0, out = 0;
  uint32_t acc = 0;
  int have = 0, width = 9, next = kFirst, prev = -1;
  for (;;) {
    while (have < width && pos < n) {
      acc = (acc << 8) | src[pos++];
      have += 8;
    }
    if (have < width) break;  // the data ends without an end code: what was decoded stands
    const int code = static_cast<int>((acc >> (have - width)) & ((1u << width) - 1));
    have -= width;
    if (code == kEnd) break;
    if (code == kClear) {
      width = 9;
      next = kFirst;
      prev = -1;
      continue;
    }
    int emit = code;
    if (prev < 0) {
      if (code > 255) lzw_corrupt("first code after a clear is not a literal (got=" + std::to_string(code) + ")");
    } else if (code <= next && next < kTableSize) {
      // the new entry: prev's string and the first byte of code's (code == next: of prev's own)
      t.prefix[next] = static_cast<uint16_t>(prev);
      t.first[next] = t.first[prev];
      t.suffix[next] = code == next ? t.first[prev] : t.first[code];
      t.length[next] = static_cast<uint16_t>(t.length[prev] + 1);
      ++next;
      if (next == (1 << width) - 1 && width < 12) ++width;
    } else if (code >= next) {
      lzw_corrupt("code beyond the table (code=" + std::to_string(code) + ", entries=" + std::to_string(next) + ")");
    }
    const std::size_t len = t.length[emit];
    if (len > cap - out) {
      lzw_corrupt("decodes past the tile (max=" + std::to_string(cap) + " bytes)");
    }
    uint8_t* p = dst + out + len - 1;
    int c = emit;
    while (c >= kFirst) {
      *p-- = t.suffix[c];
      c = t.prefix[c];
    }
    *p = static_cast<uint8_t>(c);
    out += len;
    prev = code;
  }
  return out;
}

std::size_t packbits_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap) {
  std::size_t pos = 0, out = 0;
  while (pos < n && out < cap) {
    const auto h = static_cast<int8_t>(src[pos++]);
    if (h >= 0) {
      const std::size_t k = static_cast<std::size_t>(h) + 1;
      if (k > n - pos || k > cap - out) corrupt(CodecId::kTiff, "PackBits: a literal run past the data or tile");
      for (std::size_t i = 0; i < k; ++i) dst[out + i] = src[pos + i];
      pos += k;
      out += k;
    } else if (h != -128) {
      const std::size_t k = static_cast<std::size_t>(1 - h);
      if (pos >= n || k > cap - out) corrupt(CodecId::kTiff, "PackBits: a repeat run past the data or tile");
      for (std::size_t i = 0; i < k; ++i) dst[out + i] = src[pos];
      ++pos;
      out += k;
    }
  }
  return out;
}

}  // namespace voxcore::detail
