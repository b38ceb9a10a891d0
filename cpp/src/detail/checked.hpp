#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "voxcore/error.hpp"

namespace voxcore::detail {

// int64 arithmetic that throws kLimitExceeded instead of overflowing:
// "[where] <what> overflows int64 (a * b)".
inline int64_t checked_mul(int64_t a, int64_t b, const char* where, const char* what = "size") {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, where,
         std::string(what) + " overflows int64 (" + std::to_string(a) + " * " + std::to_string(b) + ")");
  }
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* where, const char* what = "size") {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    fail(ErrorCode::kLimitExceeded, where,
         std::string(what) + " overflows int64 (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  }
  return r;
}

// A shape or box corner in messages: "[4, 0, 4]". Chunk coordinates read as tuples, "(0, 1)":
// pass open='(' and close=')'.
inline std::string shape_str(const std::vector<int64_t>& s, char open = '[', char close = ']') {
  std::string out(1, open);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + close;
}

}  // namespace voxcore::detail
