// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): SSE4.2 when the CPU has it, else a
// slicing-by-8 table. The choice is made once, on first use.
#include <array>
#include <cstdint>
#include <cstring>

#include "voxcore/codec.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define VOXCORE_CRC32C_X86 1
#endif

namespace voxcore {
namespace {

using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables make_tables() noexcept {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

// Operates on the inverted register value (crc ^ ~0).
uint32_t crc32c_software(const uint8_t* p, std::size_t n, uint32_t c) noexcept {
  static const Tables t = make_tables();
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
    c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
    --n;
  }
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return c;
}

#ifdef VOXCORE_CRC32C_X86
// Three independent streams hide the 3-cycle latency of the crc32 instruction; their registers
// are combined by "appending zeros" with precomputed GF(2) shift tables (after Mark Adler's
// crc32c.c). kLong and kShort must be powers of two.
constexpr std::size_t kLong = 8192;
constexpr std::size_t kShort = 256;

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

uint32_t gf2_times(const uint32_t* mat, uint32_t vec) noexcept {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if (vec & 1u) sum ^= *mat;
  }
  return sum;
}

void gf2_square(uint32_t* square, const uint32_t* mat) noexcept {
  for (int n = 0; n < 32; ++n) square[n] = gf2_times(mat, mat[n]);
}

// Table applying len (a power of two) zero bytes to a CRC register.
ShiftTable make_shift(std::size_t len) noexcept {
  uint32_t even[32], odd[32];
  odd[0] = 0x82F63B78u;  // one zero bit
  for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  gf2_square(even, odd);  // two zero bits
  gf2_square(odd, even);  // four zero bits
  const uint32_t* op = nullptr;
  for (;;) {
    gf2_square(even, odd);
    len >>= 1;
    if (len == 0) {
      op = even;
      break;
    }
    gf2_square(odd, even);
    len >>= 1;
    if (len == 0) {
      op = odd;
      break;
    }
  }
  ShiftTable t{};
  for (uint32_t n = 0; n < 256; ++n) {
    for (int b = 0; b < 4; ++b) t[b][n] = gf2_times(op, n << (8 * b));
  }
  return t;
}

inline uint32_t shift(const ShiftTable& t, uint32_t crc) noexcept {
  return t[0][crc & 0xFF] ^ t[1][(crc >> 8) & 0xFF] ^ t[2][(crc >> 16) & 0xFF] ^ t[3][crc >> 24];
}

#if defined(__x86_64__)
template <std::size_t kBlock>
__attribute__((target("sse4.2"))) uint64_t crc32c_3way(const uint8_t*& p, std::size_t& n,
                                                       uint64_t c0, const ShiftTable& t) noexcept {
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + kBlock;
    do {
      uint64_t a, b, c;
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + kBlock, 8);
      std::memcpy(&c, p + 2 * kBlock, 8);
      c0 = _mm_crc32_u64(c0, a);
      c1 = _mm_crc32_u64(c1, b);
      c2 = _mm_crc32_u64(c2, c);
      p += 8;
    } while (p < end);
    c0 = shift(t, static_cast<uint32_t>(c0)) ^ c1;
    c0 = shift(t, static_cast<uint32_t>(c0)) ^ c2;
    p += 2 * kBlock;
    n -= 3 * kBlock;
  }
  return c0;
}
#endif

__attribute__((target("sse4.2"))) uint32_t crc32c_hardware(const uint8_t* p, std::size_t n,
                                                            uint32_t c) noexcept {
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(c, *p++);
    --n;
  }
#if defined(__x86_64__)
  uint64_t c64 = c;
  if (n >= 3 * kShort) {
    static const ShiftTable long_shift = make_shift(kLong);
    static const ShiftTable short_shift = make_shift(kShort);
    c64 = crc32c_3way<kLong>(p, n, c64, long_shift);
    c64 = crc32c_3way<kShort>(p, n, c64, short_shift);
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
#endif
  while (n >= 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    c = _mm_crc32_u32(c, v);
    p += 4;
    n -= 4;
  }
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return c;
}
#endif

using CrcFn = uint32_t (*)(const uint8_t*, std::size_t, uint32_t) noexcept;

CrcFn pick() noexcept {
#ifdef VOXCORE_CRC32C_X86
  if (__builtin_cpu_supports("sse4.2")) return &crc32c_hardware;
#endif
  return &crc32c_software;
}

}  // namespace

namespace detail {
// For tests: the portable implementation, whatever the CPU.
VOXCORE_API uint32_t crc32c_portable(const void* data, std::size_t size, uint32_t crc) noexcept {
  return ~crc32c_software(static_cast<const uint8_t*>(data), size, ~crc);
}
}  // namespace detail

uint32_t crc32c(const void* data, std::size_t size, uint32_t crc) noexcept {
  static const CrcFn fn = pick();
  if (size == 0) return crc;
  return ~fn(static_cast<const uint8_t*>(data), size, ~crc);
}

}  // namespace voxcore
