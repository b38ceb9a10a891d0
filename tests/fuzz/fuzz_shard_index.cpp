// libFuzzer target: ShardLayout::decode_index on arbitrary bytes and shard sizes.
//
// Input: byte 0 picks a shard layout (entries per shard), byte 1 holds flags (bit 0: index has a
// crc32c, bit 1: index at the start, bit 2: fix up the crc so entry checks are reached, bit 3:
// shard size unknown), bytes 2..9 the shard size (LE), the rest is the encoded index.
// decode_index is checked against an independent oracle in both directions: it accepts exactly
// the indexes whose checksum matches and whose non-empty entries lie inside [0, shard_size).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <vector>

#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"

namespace {

using voxcore::CodecChain;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::Shape;
using voxcore::ShardIndexEntry;
using voxcore::ShardLayout;

constexpr uint64_t kNone = ~uint64_t{0};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_shard_index: contract violated: %s\n", what);
  std::abort();
}

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t le64(const uint8_t* p) { return le(p, 8); }

struct LayoutKind {
  Shape shard, inner;
};
const LayoutKind kLayouts[] = {
    {{4}, {4}},                 // 1 entry
    {{8}, {4}},                 // 2
    {{4, 4}, {2, 2}},           // 4
    {{2, 2, 2}, {1, 1, 1}},     // 8
    {{6, 6, 6}, {2, 2, 2}},     // 27
    {{16, 16}, {2, 2}},         // 64
    {{}, {}},                   // rank 0: 1 entry
    {{3, 5}, {1, 1}},           // 15
};
constexpr int kNumLayouts = sizeof(kLayouts) / sizeof(kLayouts[0]);

const ShardLayout& layout_for(int which, bool crc, bool at_end) {
  static std::shared_ptr<const CodecChain> cache[kNumLayouts][2][2];
  auto& slot = cache[which][crc][at_end];
  if (!slot) {
    CodecSpec bytes;
    bytes.id = CodecId::kBytes;
    CodecSpec s;
    s.id = CodecId::kSharding;
    s.inner_chunk_shape = kLayouts[which].inner;
    s.inner_codecs = {bytes};
    s.index_codecs = {bytes};
    if (crc) {
      CodecSpec c;
      c.id = CodecId::kCrc32c;
      s.index_codecs.push_back(c);
    }
    s.index_at_end = at_end;
    slot = CodecChain::prepare({s}, kLayouts[which].shard, voxcore::DType::kUInt16);
  }
  return *slot->sharding();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 10) return 0;
  const int which = data[0] % kNumLayouts;
  const uint8_t flags = data[1];
  const bool crc = flags & 1, at_end = !(flags & 2), fix_crc = flags & 4;
  const uint64_t shard_size = (flags & 8) ? kNone : le64(data + 2);
  const ShardLayout& layout = layout_for(which, crc, at_end);

  // Exactly sized copy so ASan sees any read past the index.
  std::vector<uint8_t> index(data + 10, data + size);
  const auto num = static_cast<std::size_t>(layout.num_inner_chunks());
  const bool size_ok = index.size() == static_cast<std::size_t>(layout.index_nbytes());
  if (size_ok && crc && fix_crc) {
    const uint32_t c = voxcore::crc32c(index.data(), num * 16);
    for (int i = 0; i < 4; ++i) index[num * 16 + i] = static_cast<uint8_t>(c >> (8 * i));
  }

  // The oracle.
  bool valid = size_ok;
  if (valid && crc) {
    const uint32_t c = voxcore::crc32c(index.data(), num * 16);
    const auto stored = static_cast<uint32_t>(le(index.data() + num * 16, 4));
    valid = c == stored;
  }
  for (std::size_t i = 0; valid && i < num; ++i) {
    const uint64_t off = le64(index.data() + 16 * i), len = le64(index.data() + 16 * i + 8);
    if (off == kNone && len == kNone) continue;
    const unsigned __int128 end = static_cast<unsigned __int128>(off) + len;
    valid = off != kNone && len != kNone && end <= kNone &&
            (shard_size == kNone || end <= shard_size);
  }

  std::vector<ShardIndexEntry> out;
  bool accepted = false;
  try {
    layout.decode_index(index.empty() ? nullptr : index.data(), index.size(), shard_size, out);
    accepted = true;
  } catch (const voxcore::Error& e) {
    if (e.code() != voxcore::ErrorCode::kCorrupt) die("decode_index threw a code other than kCorrupt");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-voxcore exception: %s\n", e.what());
    die("decode_index threw something other than voxcore::Error");
  }
  if (accepted && !valid) die("decode_index accepted an invalid index");
  if (!accepted && valid) die("decode_index rejected a valid index");
  if (!accepted) return 0;

  if (out.size() != num) die("decode_index returned the wrong number of entries");
  for (std::size_t i = 0; i < num; ++i) {
    const ShardIndexEntry& e = out[i];
    if (e.offset != le64(index.data() + 16 * i) || e.nbytes != le64(index.data() + 16 * i + 8)) {
      die("decoded entry differs from the stored entry");
    }
    if (e.empty()) continue;
    if (e.offset == kNone || e.nbytes == kNone || e.offset > kNone - e.nbytes) {
      die("accepted entry is half empty or overflows");
    }
    if (shard_size != kNone && e.offset + e.nbytes > shard_size) die("accepted entry out of range");
  }
  voxcore::ByteBuffer again;
  layout.encode_index(out, again);
  if (again.size() != index.size() ||
      (num > 0 && !std::equal(index.begin(), index.end(), again.data()))) {
    die("encode_index(decode_index(x)) != x");
  }
  return 0;
}
