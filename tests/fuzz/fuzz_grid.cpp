// libFuzzer target: the chunk grid planner (ChunkGrid, overlaps, chunk_key) and check_key.
//
// Input: byte 0 is the rank (mod 7), byte 1 the key encoding; then per axis four values (array
// shape, chunk shape, box start, box shape), each one byte selecting a small value, a special
// value (0, -1, INT64_MAX, 2^62, ...) or 8 raw bytes; the remaining bytes are a store key.
// ChunkGrid may throw voxcore::Error for bad shapes; overlaps() is compared with an independent
// oracle (computed in 128-bit arithmetic) whenever the box spans at most kMaxChunks chunks.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "voxcore/error.hpp"
#include "voxcore/grid.hpp"
#include "voxcore/store.hpp"

namespace {

using voxcore::Box;
using voxcore::ChunkGrid;
using voxcore::ChunkKeyEncoding;
using voxcore::ErrorCode;
using voxcore::Shape;
using i128 = __int128;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxChunks = 4096;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_grid: contract violated: %s\n", what);
  std::abort();
}

struct Reader {
  const uint8_t* p;
  std::size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  int64_t value() {
    static const int64_t kSpecial[] = {
        0, 1, -1, 2, kMax, kMin, kMax - 1, kMin + 1, int64_t{1} << 31, int64_t{1} << 32,
        int64_t{1} << 59, int64_t{1} << 60, int64_t{1} << 62, (int64_t{1} << 62) + 1,
        3037000499, 3037000500, 4096, 65536, kMax / 2, kMax / 2 + 1, -(int64_t{1} << 62),
        (int64_t{1} << 59) - 1, kMax / 3, 1000000007};
    const uint8_t sel = byte();
    if (sel < 0x80) return static_cast<int64_t>(sel) - 8;
    if (sel < 0xC0) return kSpecial[(sel & 0x3F) % (sizeof(kSpecial) / sizeof(kSpecial[0]))];
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{byte()} << (8 * i);
    return static_cast<int64_t>(v);
  }
};

// Structural safety of a key, independent of check_key's implementation.
bool key_is_safe(const std::string& key) {
  if (key.empty() || key.front() == '/') return false;
  for (char c : key) {
    if (c == '\0' || c == '\\') return false;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = std::min(key.find('/', start), key.size());
    const std::string seg = key.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (end == key.size()) return true;
    start = end + 1;
  }
}

// A plainly harmless key: '/'-separated segments of [A-Za-z0-9_-], at most 4096 bytes.
bool key_is_plain(const std::string& key) {
  if (key.size() > 4096 || !key_is_safe(key)) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// check_key throws kUnsafePath or returns, and returns only for safe keys.
bool key_accepted(const std::string& key) {
  try {
    voxcore::check_key(key);
    return true;
  } catch (const voxcore::Error& e) {
    if (e.code() != ErrorCode::kUnsafePath) die("check_key threw a code other than kUnsafePath");
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-voxcore exception: %s\n", e.what());
    die("check_key threw something other than voxcore::Error");
  }
}

void check_key_target(const std::string& key) {
  const bool accepted = key_accepted(key);
  if (accepted && !key_is_safe(key)) die("check_key accepted an unsafe key");
  if (!accepted && key_is_plain(key)) die("check_key rejected a plain key");
}

void check_overlaps(const ChunkGrid& grid, const Box& box, const ChunkKeyEncoding& enc) {
  const int r = grid.rank();
  const Shape& shape = grid.array_shape();
  const Shape& chunk = grid.chunk_shape();
  // The oracle: per axis the clipped range [lo, hi) and its chunk range [c_lo, c_hi].
  bool invalid = false, empty = false;
  i128 count = 1;
  std::vector<i128> lo(r), hi(r), c_lo(r), c_hi(r);
  for (int i = 0; i < r; ++i) {
    const i128 end = static_cast<i128>(box.start[i]) + box.shape[i];
    if (box.shape[i] < 0 || end > kMax) {
      invalid = true;
      continue;
    }
    lo[i] = std::max<i128>(box.start[i], 0);
    hi[i] = std::min<i128>(end, shape[i]);
    if (lo[i] >= hi[i]) {
      empty = true;
      continue;
    }
    c_lo[i] = lo[i] / chunk[i];
    c_hi[i] = (hi[i] - 1) / chunk[i];
    count *= c_hi[i] - c_lo[i] + 1;
    if (count > kMaxChunks) count = kMaxChunks + 1;  // saturate: stays bounded
  }
  if (!invalid && !empty && count > kMaxChunks) return;  // too many to enumerate

  std::vector<ChunkGrid::Overlap> result;
  try {
    result = grid.overlaps(box);
  } catch (const voxcore::Error& e) {
    if (!invalid) die("overlaps threw for a valid box");
    if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kLimitExceeded) {
      die("overlaps threw an unexpected error code");
    }
    return;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-voxcore exception: %s\n", e.what());
    die("overlaps threw something other than voxcore::Error");
  }
  if (invalid || empty) {
    if (!result.empty()) die("overlaps returned chunks for an empty or invalid box");
    return;
  }
  if (static_cast<i128>(result.size()) != count) die("overlaps returned the wrong number of chunks");

  const ChunkKeyEncoding v2{ChunkKeyEncoding::Kind::kV2, enc.separator};
  int64_t prev_linear = -1;
  for (const auto& o : result) {
    if (static_cast<int>(o.chunk_index.size()) != r || static_cast<int>(o.in_chunk.size()) != r ||
        static_cast<int>(o.in_box.size()) != r || static_cast<int>(o.shape.size()) != r) {
      die("overlap has the wrong rank");
    }
    bool full = true;
    for (int i = 0; i < r; ++i) {
      const i128 idx = o.chunk_index[i];
      if (idx < c_lo[i] || idx > c_hi[i]) die("chunk index outside the box's chunk range");
      const i128 origin = idx * chunk[i];
      const i128 a = std::max(lo[i], origin), b = std::min(hi[i], origin + chunk[i]);
      if (o.in_chunk[i] != a - origin) die("in_chunk differs from the oracle");
      if (o.shape[i] != b - a || o.shape[i] <= 0) die("overlap shape differs from the oracle");
      if (o.in_box[i] != a - box.start[i]) die("in_box differs from the oracle");
      // Inside both the chunk and the box (implied by the oracle, kept as the stated contract).
      if (o.in_chunk[i] < 0 || static_cast<i128>(o.in_chunk[i]) + o.shape[i] > chunk[i]) {
        die("overlap extends outside the chunk");
      }
      if (o.in_box[i] < 0 || static_cast<i128>(o.in_box[i]) + o.shape[i] > box.shape[i]) {
        die("overlap extends outside the box");
      }
      full = full && o.shape[i] == chunk[i];
    }
    if (o.full_chunk != full) die("full_chunk flag is wrong");
    const int64_t linear = grid.linear_index(o.chunk_index);
    if (linear <= prev_linear || linear >= grid.num_chunks()) {
      die("overlaps are not in C order of chunk index, or linear_index is out of range");
    }
    prev_linear = linear;
    const Shape origin = grid.chunk_origin(o.chunk_index);
    for (int i = 0; i < r; ++i) {
      if (origin[i] != static_cast<i128>(o.chunk_index[i]) * chunk[i]) die("chunk_origin is wrong");
    }
    // Keys of valid chunk indices: chunk_key never throws and check_key accepts them.
    for (const auto& e : {enc, v2}) {
      std::string key;
      try {
        key = voxcore::chunk_key(e, o.chunk_index);
      } catch (...) {
        die("chunk_key threw for a valid chunk index");
      }
      if (!key_accepted(key)) die("check_key rejected a key made by chunk_key");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Reader in{data, size};
  const int rank = in.byte() % 7;
  const uint8_t enc_byte = in.byte();
  ChunkKeyEncoding enc;
  enc.kind = (enc_byte & 1) ? ChunkKeyEncoding::Kind::kV2 : ChunkKeyEncoding::Kind::kDefault;
  enc.separator = (enc_byte & 2) ? '.' : '/';
  Shape shape(rank), chunk(rank);
  Box box{Shape(rank), Shape(rank)};
  for (int i = 0; i < rank; ++i) {
    shape[i] = in.value();
    chunk[i] = in.value();
    box.start[i] = in.value();
    box.shape[i] = in.value();
  }
  check_key_target(std::string(reinterpret_cast<const char*>(in.p), in.n));

  bool constructed = false;
  try {
    ChunkGrid grid(shape, chunk);
    constructed = true;
    for (int i = 0; i < rank; ++i) {
      if (shape[i] < 0 || chunk[i] < 1) die("ChunkGrid accepted a negative shape or chunk");
      const i128 g = (static_cast<i128>(shape[i]) + chunk[i] - 1) / chunk[i];
      if (grid.grid_shape()[i] != g) die("grid_shape is not ceil(shape / chunk)");
    }
    check_overlaps(grid, box, enc);
  } catch (const voxcore::Error& e) {
    if (constructed) {
      std::fprintf(stderr, "%s\n", e.what());
      die("voxcore::Error from a constructed grid outside overlaps()");
    }
    if (e.code() != ErrorCode::kInvalidMetadata && e.code() != ErrorCode::kLimitExceeded) {
      die("ChunkGrid threw an unexpected error code");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-voxcore exception: %s\n", e.what());
    die("ChunkGrid threw something other than voxcore::Error");
  }
  return 0;
}
