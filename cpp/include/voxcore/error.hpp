#pragma once
#include <stdexcept>
#include <string>

#include "voxcore/api.hpp"

namespace voxcore {

// The one error family. Messages read "[function] what failed (key=..., expected=..., got=...)".
enum class ErrorCode {
  kInvalidArgument,  // caller passed something unusable (shape mismatch, bad option)
  kInvalidMetadata,  // array/codec metadata is inconsistent or out of range
  kCorrupt,          // stored bytes do not decode to what the metadata promises
  kLimitExceeded,    // a size or count is beyond a safety cap or overflows int64
  kNotFound,         // a required key/file does not exist (a missing chunk is NOT this)
  kIo,               // the operating system refused (errno is kept)
  kUnsupported,      // valid but not implemented (codec, nested sharding, ...)
  kUnavailable,      // a feature not compiled in (e.g. CUDA)
  kCuda,             // a CUDA runtime call failed
  kUnsafePath,       // a key that would escape the store or is malformed
};

class VOXCORE_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, int sys_errno = 0)
      : std::runtime_error(message), code_(code), sys_errno_(sys_errno) {}
  ErrorCode code() const noexcept { return code_; }
  int sys_errno() const noexcept { return sys_errno_; }

 private:
  ErrorCode code_;
  int sys_errno_;
};

// Throws Error(code, "[where] what"). Build `what` only on the failure path.
[[noreturn]] VOXCORE_API void fail(ErrorCode code, const char* where, const std::string& what,
                                   int sys_errno = 0);

const char* error_code_name(ErrorCode code) noexcept;

}  // namespace voxcore

// Check a condition; the message arguments are evaluated only when it fails.
#define VOXCORE_EXPECT(cond, code, where, what)       \
  do {                                                \
    if (!(cond)) ::voxcore::fail((code), (where), (what)); \
  } while (0)
