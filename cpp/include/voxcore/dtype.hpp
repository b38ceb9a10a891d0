#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "voxcore/api.hpp"

namespace voxcore {

// Element types, always in native byte order in memory (the bytes codec handles endianness).
enum class DType : uint8_t {
  kBool, kInt8, kUInt8, kInt16, kUInt16, kInt32, kUInt32, kInt64, kUInt64,
  kFloat16, kFloat32, kFloat64, kComplex64, kComplex128,
};

VOXCORE_API std::size_t itemsize(DType dtype) noexcept;
// Size of the unit that is byte-swapped (a complex64 swaps two 4-byte halves).
VOXCORE_API std::size_t swap_unit(DType dtype) noexcept;
// numpy names: "bool", "int8", ..., "float64", "complex128".
VOXCORE_API const char* dtype_name(DType dtype) noexcept;
// Throws Error(kInvalidMetadata) for an unknown name.
VOXCORE_API DType dtype_from_name(const std::string& name);

enum class Endian : uint8_t { kLittle, kBig };
inline constexpr Endian kNativeEndian =
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    Endian::kBig;
#else
    Endian::kLittle;
#endif

}  // namespace voxcore
