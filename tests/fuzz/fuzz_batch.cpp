// libFuzzer target: ChunkBatch decode_into and encode (the zarr-python pipeline's engine) over
// chunk and shard bytes from the fuzzer, from caller memory or from an in-memory store.
//
// Input: byte 0 picks a chain from make_chain, byte 1 holds flags (bit 0: bytes come from a store,
// bit 1: the store is batched, bit 2: also write a pattern over each item's region, bit 3:
// write_empty, bit 4: regions as given, not clamped into the chunk), byte 2 the number of items
// (1 to 3); then per item and axis (start, step, count) bytes; then records
// [item][length: 2 bytes LE][bytes] that set an item's stored bytes.
//
// decode_into and encode must succeed or throw voxcore::Error; a region decode agrees with the
// whole-chunk decode; a write over chunks that decode merges: the region holds the pattern and
// the rest what was stored.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "voxcore/batch.hpp"
#include "voxcore/error.hpp"

#include "fuzz_support.hpp"

namespace {

using voxcore::ArrayView;
using voxcore::ByteBuffer;
using voxcore::ByteRange;
using voxcore::ChunkBatch;
using voxcore::ChunkBytes;
using voxcore::ChunkRegion;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::DType;
using voxcore::Shape;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_batch: contract violated: %s\n", what);
  std::abort();
}

using voxcore_fuzz::attempt;
using voxcore_fuzz::codec;
using voxcore_fuzz::InlineExecutor;
using voxcore_fuzz::MemoryStore;
using voxcore_fuzz::Reader;
using voxcore_fuzz::sharding;
using voxcore_fuzz::volume;

struct Chain {
  std::vector<CodecSpec> codecs;
  Shape chunk;
  DType dtype;
  std::vector<uint8_t> fill;
};

Chain make_chain(int which) {
  const CodecSpec bytes = codec(CodecId::kBytes);
  switch (which) {
    case 0:
      return {{bytes, codec(CodecId::kZstd, 1)}, {6, 5}, DType::kUInt16, {}};
    case 1:  // per-inner-chunk: index at the end with a checksum
      return {{sharding({2, 3}, {bytes, codec(CodecId::kZstd, 1)}, true, true)}, {4, 6}, DType::kUInt8, {}};
    case 2:  // per-inner-chunk: index at the start, no checksum
      return {{sharding({2, 2}, {bytes, codec(CodecId::kGzip, 1)}, false, false)}, {4, 4},
              DType::kInt32, {7, 0, 0, 0}};
    case 3:  // sharding followed by a compressor: whole shards through the chain
      return {{sharding({2, 4}, {bytes}, true, true), codec(CodecId::kZstd, 1)}, {4, 4}, DType::kUInt16, {}};
    case 4: {
      CodecSpec t = codec(CodecId::kTranspose);
      t.order = {1, 0};
      CodecSpec big = bytes;
      big.endian = voxcore::Endian::kBig;
      return {{t, big, codec(CodecId::kCrc32c)}, {3, 4}, DType::kUInt16, {1, 0}};
    }
    default:  // rank 1, uncompressed inner chunks
      return {{sharding({4}, {bytes}, false, true)}, {12}, DType::kUInt16, {}};
  }
}
constexpr int kChains = 6;

// Calls fn(element offset in the chunk, element offset in the region) for each region element.
template <class Fn>
void for_each_element(const ChunkRegion& r, const Shape& chunk, Fn&& fn) {
  const std::size_t rank = chunk.size();
  const int64_t total = volume(r.count);
  Shape k(rank, 0);
  for (int64_t e = 0; e < total; ++e) {
    int64_t at = 0;
    for (std::size_t d = 0; d < rank; ++d) at = at * chunk[d] + r.start[d] + k[d] * r.step[d];
    fn(at, e);
    for (std::size_t d = rank; d-- > 0;) {
      if (++k[d] < r.count[d]) break;
      k[d] = 0;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static InlineExecutor executor;
  Reader in{data, size};
  const int which = in.byte() % kChains;
  const uint8_t flags = in.byte();
  const std::size_t n = 1 + in.byte() % 3;
  const Chain c = make_chain(which);
  const std::size_t rank = c.chunk.size();
  const std::size_t item = voxcore::itemsize(c.dtype);
  const std::vector<uint8_t> fill = c.fill.empty() ? std::vector<uint8_t>(item, 0) : c.fill;

  std::vector<ChunkRegion> regions(n);
  for (auto& r : regions) {
    r = {Shape(rank), Shape(rank), Shape(rank)};
    for (std::size_t d = 0; d < rank; ++d) {
      const int64_t len = c.chunk[d];
      r.start[d] = in.byte() % (len + 1);
      r.step[d] = 1 + in.byte() % 4;
      r.count[d] = in.byte() % (len + 1);
      if (!(flags & 16)) {  // clamp into the chunk
        r.start[d] = std::min(r.start[d], len - 1);
        r.count[d] = std::min(r.count[d], (len - 1 - r.start[d]) / r.step[d] + 1);
      }
    }
  }
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < n; ++i) keys.push_back("k/" + std::to_string(i));
  std::map<std::string, std::vector<uint8_t>> stored;
  while (in.n > 0) {
    const std::string& key = keys[in.byte() % n];
    std::size_t len = in.byte();
    len |= std::size_t{in.byte()} << 8;
    len = std::min(len, in.n);
    stored[key].assign(in.p, in.p + len);
    in.p += len;
    in.n -= len;
  }

  std::unique_ptr<ChunkBatch> batch;
  if (!attempt("ChunkBatch", [&] {
        batch = std::make_unique<ChunkBatch>(c.codecs, c.chunk, c.dtype, c.fill, &executor);
      })) {
    die("a valid chain was refused");
  }
  const bool use_store = flags & 1;
  MemoryStore store(flags & 2);
  store.values = stored;
  auto source = [&](const std::string& key) {
    if (use_store) return ChunkBytes::store();
    const auto it = stored.find(key);
    return it == stored.end() ? ChunkBytes{} : ChunkBytes::memory(it->second.data(), it->second.size());
  };
  voxcore::Store* s = use_store ? &store : nullptr;

  // Every chunk whole, then every region; where both succeed they agree.
  const int64_t elems = volume(c.chunk);
  std::vector<std::vector<uint8_t>> whole(n, std::vector<uint8_t>(static_cast<std::size_t>(elems) * item));
  std::vector<voxcore::DecodeItem> items(n);
  for (std::size_t i = 0; i < n; ++i) {
    items[i] = {keys[i], source(keys[i]), ArrayView::contiguous(whole[i].data(), c.dtype, c.chunk),
                ChunkRegion::whole(c.chunk)};
  }
  const bool whole_ok = attempt("decode_into(whole)", [&] { batch->decode_into(items, s); });
  bool valid = true;
  std::vector<std::vector<uint8_t>> parts(n);
  for (std::size_t i = 0; i < n; ++i) {
    valid = valid && regions[i].fits(c.chunk);
    parts[i].resize(static_cast<std::size_t>(volume(regions[i].count)) * item);
    items[i].dst = ArrayView::contiguous(parts[i].data(), c.dtype, regions[i].count);
    items[i].region = regions[i];
  }
  const bool part_ok = attempt("decode_into(regions)", [&] { batch->decode_into(items, s); });
  if (part_ok && !valid) die("a region outside the chunk was decoded");
  if (whole_ok && part_ok) {
    for (std::size_t i = 0; i < n; ++i) {
      for_each_element(regions[i], c.chunk, [&](int64_t at, int64_t e) {
        if (std::memcmp(&parts[i][e * item], &whole[i][at * item], item) != 0) {
          die("region decode differs from whole decode");
        }
      });
    }
  }

  if (!(flags & 4)) return 0;
  // A pattern over each region, merged with what is stored.
  std::vector<std::vector<uint8_t>> values(n);
  std::vector<voxcore::EncodeItem> writes(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i].resize(parts[i].size());
    for (std::size_t b = 0; b < values[i].size(); ++b) values[i][b] = static_cast<uint8_t>(b * 29 + i + flags);
    writes[i].key = keys[i];
    writes[i].value = ArrayView::contiguous(values[i].data(), c.dtype, regions[i].count);
    writes[i].region = regions[i];
    writes[i].existing = source(keys[i]);
  }
  const bool write_empty = flags & 8;
  const bool wrote = attempt("encode", [&] { batch->encode(writes, write_empty, s); });
  if (wrote && !valid) die("a region outside the chunk was encoded");
  if (!wrote) {
    if (whole_ok && valid) die("a write over chunks that decode failed");
    return 0;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<uint8_t> encoded;
    if (use_store) {
      const auto it = store.values.find(keys[i]);
      if (it != store.values.end()) encoded = it->second;
      if ((it != store.values.end()) == writes[i].empty) die("the store disagrees with empty");
    } else if (!writes[i].empty) {
      encoded.assign(writes[i].encoded.data(), writes[i].encoded.data() + writes[i].encoded.size());
    }
    std::vector<uint8_t> back(static_cast<std::size_t>(elems) * item);
    std::vector<voxcore::DecodeItem> one{{keys[i],
                                          writes[i].empty ? ChunkBytes{}
                                                          : ChunkBytes::memory(encoded.data(), encoded.size()),
                                          ArrayView::contiguous(back.data(), c.dtype, c.chunk),
                                          ChunkRegion::whole(c.chunk)}};
    const bool back_ok = attempt("decode_into(written)", [&] { batch->decode_into(one); });
    if (!whole_ok) continue;  // untouched inner chunks keep their (maybe corrupt) bytes
    if (!back_ok) die("a merged write does not decode");
    std::vector<uint8_t> want = whole[i];
    for_each_element(regions[i], c.chunk, [&](int64_t at, int64_t e) {
      std::memcpy(&want[at * item], &values[i][e * item], item);
    });
    if (back != want) die("read after write differs from the merge");
  }
  return 0;
}
