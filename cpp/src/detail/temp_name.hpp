#pragma once
// The marker in the names of temp files that FileStore writes (".NAME.vxtmp-PID-SALT-N"); keys
// never contain it (check_key), so a temp file is never read as a key.
namespace voxcore::detail {
inline constexpr const char* kTempMarker = ".vxtmp-";
}  // namespace voxcore::detail
