#include "voxcore/dtype.hpp"

#include <cstring>

#include "voxcore/error.hpp"

namespace voxcore {
namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t itemsize;
  std::size_t swap_unit;
};

constexpr DTypeInfo kInfo[] = {
    {DType::kBool, "bool", 1, 1},         {DType::kInt8, "int8", 1, 1},
    {DType::kUInt8, "uint8", 1, 1},       {DType::kInt16, "int16", 2, 2},
    {DType::kUInt16, "uint16", 2, 2},     {DType::kInt32, "int32", 4, 4},
    {DType::kUInt32, "uint32", 4, 4},     {DType::kInt64, "int64", 8, 8},
    {DType::kUInt64, "uint64", 8, 8},     {DType::kFloat16, "float16", 2, 2},
    {DType::kFloat32, "float32", 4, 4},   {DType::kFloat64, "float64", 8, 8},
    {DType::kComplex64, "complex64", 8, 4}, {DType::kComplex128, "complex128", 16, 8},
};

const DTypeInfo& info(DType dtype) noexcept { return kInfo[static_cast<int>(dtype)]; }

}  // namespace

std::size_t itemsize(DType dtype) noexcept { return info(dtype).itemsize; }
std::size_t swap_unit(DType dtype) noexcept { return info(dtype).swap_unit; }
const char* dtype_name(DType dtype) noexcept { return info(dtype).name; }

DType dtype_from_name(const std::string& name) {
  for (const auto& entry : kInfo) {
    if (name == entry.name) return entry.dtype;
  }
  fail(ErrorCode::kInvalidMetadata, "dtype_from_name", "unknown data type (got=" + name + ")");
}

}  // namespace voxcore
