#include "voxcore/error.hpp"

namespace voxcore {

void fail(ErrorCode code, const char* where, const std::string& what, int sys_errno) {
  std::string message;
  message.reserve(what.size() + 32);
  message += '[';
  message += where;
  message += "] ";
  message += what;
  throw Error(code, message, sys_errno);
}

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kInvalidMetadata: return "InvalidMetadata";
    case ErrorCode::kCorrupt: return "Corrupt";
    case ErrorCode::kLimitExceeded: return "LimitExceeded";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kIo: return "Io";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kCuda: return "Cuda";
    case ErrorCode::kUnsafePath: return "UnsafePath";
  }
  return "Unknown";
}

}  // namespace voxcore
