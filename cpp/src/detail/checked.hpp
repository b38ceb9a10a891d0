#pragma once
#include <cstdint>
#include <string>

#include "voxcore/error.hpp"

namespace voxcore::detail {

// int64 arithmetic that throws kLimitExceeded instead of overflowing.
inline int64_t checked_mul(int64_t a, int64_t b, const char* where) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, where,
         "size overflows int64 (" + std::to_string(a) + " * " + std::to_string(b) + ")");
  }
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* where) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, where,
         "size overflows int64 (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  }
  return r;
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

}  // namespace voxcore::detail
