// libFuzzer target: ChunkedArray reads (and read-modify-write) over an in-memory store whose chunk
// and shard bytes come from the fuzzer.
//
// Input: byte 0 picks an array spec from kSpecs, byte 1 holds flags (bit 0: batched store, bit 1:
// chunk cache, bit 2: also write a box then read it back, bit 3: move the box start on axis 0
// next to INT64_MAX or INT64_MIN); then one (start, size) byte pair per axis for the box; then
// records [key number][length: 2 bytes LE][bytes] that fill the store (key number indexes the
// array's chunk keys). read_into must succeed or throw voxcore::Error, and a box read must agree
// with the whole-array read.
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

#include "voxcore/chunked_array.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

#include "fuzz_support.hpp"

namespace {

using voxcore::ArraySpec;
using voxcore::ArrayView;
using voxcore::Box;
using voxcore::ByteBuffer;
using voxcore::ByteRange;
using voxcore::ChunkKeyEncoding;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::DType;
using voxcore::Shape;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_chunked_array: contract violated: %s\n", what);
  std::abort();
}

using voxcore_fuzz::attempt;
using voxcore_fuzz::codec;
using voxcore_fuzz::InlineExecutor;
using voxcore_fuzz::MemoryStore;
using voxcore_fuzz::Reader;
using voxcore_fuzz::sharding;
using voxcore_fuzz::volume;

ArraySpec make_spec(int which) {
  ArraySpec s;
  const CodecSpec bytes = codec(CodecId::kBytes);
  switch (which) {
    case 0:
      s.shape = {10, 12}, s.chunk_shape = {4, 5}, s.dtype = DType::kUInt16;
      s.codecs = {bytes, codec(CodecId::kZstd, 1)};
      break;
    case 1: {
      s.shape = {7, 9}, s.chunk_shape = {3, 4}, s.dtype = DType::kFloat32;
      CodecSpec b = codec(CodecId::kBlosc, 5);
      b.cname = "lz4";
      b.shuffle = 1;
      s.codecs = {bytes, b};
      s.key_encoding = {ChunkKeyEncoding::Kind::kV2, '.'};
      break;
    }
    case 2:  // plain sharding chain: per-inner-chunk reads
      s.shape = {16, 12}, s.chunk_shape = {8, 6}, s.dtype = DType::kUInt8;
      s.codecs = {sharding({4, 3}, {bytes, codec(CodecId::kZstd, 1)}, true, true)};
      break;
    case 3:
      s.shape = {9, 8}, s.chunk_shape = {6, 4}, s.dtype = DType::kInt32;
      s.codecs = {sharding({3, 2}, {bytes, codec(CodecId::kGzip, 1)}, false, false)};
      s.fill_value = {7, 0, 0, 0};
      break;
    case 4:  // sharding followed by a compressor: whole-shard reads
      s.shape = {8, 8}, s.chunk_shape = {4, 8}, s.dtype = DType::kUInt16;
      s.codecs = {sharding({2, 4}, {bytes}, true, true), codec(CodecId::kZstd, 1)};
      break;
    case 5:
      s.shape = {100}, s.chunk_shape = {16}, s.dtype = DType::kInt64;
      s.codecs = {bytes, codec(CodecId::kCrc32c)};
      s.key_encoding = {ChunkKeyEncoding::Kind::kV2, '/'};
      break;
    default: {
      s.shape = {5, 6, 7}, s.chunk_shape = {2, 3, 4}, s.dtype = DType::kUInt8;
      CodecSpec t = codec(CodecId::kTranspose);
      t.order = {2, 0, 1};
      s.codecs = {t, bytes, codec(CodecId::kLz4, 1)};
      break;
    }
  }
  return s;
}
constexpr int kSpecs = 7;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static InlineExecutor executor;
  Reader in{data, size};
  const int which = in.byte() % kSpecs;
  const uint8_t flags = in.byte();
  ArraySpec spec = make_spec(which);
  const int rank = static_cast<int>(spec.shape.size());
  const std::size_t item = voxcore::itemsize(spec.dtype);

  Box box{Shape(rank), Shape(rank)};
  for (int i = 0; i < rank; ++i) {
    box.start[i] = static_cast<int8_t>(in.byte()) % (spec.shape[i] + 4);
    box.shape[i] = in.byte() % (spec.shape[i] + 5);
  }
  if ((flags & 8) && rank > 0) {
    static const int64_t kExtreme[] = {INT64_MAX, INT64_MAX - 3, INT64_MIN, INT64_MIN + 2};
    box.start[0] = kExtreme[static_cast<uint64_t>(box.start[0]) % 4];
  }

  auto store = std::make_shared<MemoryStore>(flags & 1);
  const voxcore::ChunkGrid grid(spec.shape, spec.chunk_shape);
  std::vector<std::string> keys;
  for (const auto& o : grid.overlaps(Box{Shape(rank, 0), spec.shape})) {
    keys.push_back(voxcore::chunk_key(spec.key_encoding, o.chunk_index));
  }
  while (in.n > 0) {
    const std::string& key = keys[in.byte() % keys.size()];
    std::size_t len = in.byte();
    len |= std::size_t{in.byte()} << 8;
    len = std::min(len, in.n);
    store->values[key].assign(in.p, in.p + len);
    in.p += len;
    in.n -= len;
  }

  auto cache = (flags & 2) ? std::make_shared<voxcore::ChunkCache>(1 << 16) : nullptr;
  voxcore::ChunkedArray array(spec, store, cache, &executor);
  const std::vector<uint8_t> fill = spec.fill_value.empty() ? std::vector<uint8_t>(item, 0)
                                                            : spec.fill_value;

  // The whole array, then the box; where both succeed they must agree.
  std::vector<uint8_t> whole(static_cast<std::size_t>(volume(spec.shape)) * item);
  const ArrayView whole_view = ArrayView::contiguous(whole.data(), spec.dtype, spec.shape);
  const bool whole_ok = attempt("read_into(whole)", [&] {
    array.read_into(Box{Shape(rank, 0), spec.shape}, whole_view);
  });
  std::vector<uint8_t> part(static_cast<std::size_t>(volume(box.shape)) * item);
  const ArrayView part_view = ArrayView::contiguous(part.data(), spec.dtype, box.shape);
  const bool part_ok = attempt("read_into(box)", [&] { array.read_into(box, part_view); });
  if (whole_ok && part_ok && !part.empty()) {
    Shape idx(rank, 0);
    for (std::size_t e = 0; e < part.size() / item; ++e) {
      bool inside = true;
      std::size_t src = 0;
      for (int i = 0; i < rank; ++i) {
        const __int128 c = static_cast<__int128>(box.start[i]) + idx[i];
        inside = inside && c >= 0 && c < spec.shape[i];
        src = src * static_cast<std::size_t>(spec.shape[i]) + static_cast<std::size_t>(inside ? c : 0);
      }
      const uint8_t* want = inside ? &whole[src * item] : fill.data();
      if (std::memcmp(&part[e * item], want, item) != 0) die("box read differs from whole read");
      for (int i = rank - 1; i >= 0; --i) {
        if (++idx[i] < box.shape[i]) break;
        idx[i] = 0;
      }
    }
  }

  if (!(flags & 4)) return 0;
  // Write a pattern into the part of the box inside the array, then read it back.
  Box wbox{Shape(rank), Shape(rank)};
  for (int i = 0; i < rank; ++i) {
    const __int128 end = static_cast<__int128>(box.start[i]) + box.shape[i];
    wbox.start[i] = std::min(std::max<int64_t>(box.start[i], 0), spec.shape[i]);
    wbox.shape[i] = static_cast<int64_t>(std::max<__int128>(
        std::min<__int128>(end, spec.shape[i]) - wbox.start[i], 0));
  }
  std::vector<uint8_t> src(static_cast<std::size_t>(volume(wbox.shape)) * item);
  for (std::size_t b = 0; b < src.size(); ++b) src[b] = static_cast<uint8_t>(b * 37 + flags);
  const ArrayView src_view = ArrayView::contiguous(src.data(), spec.dtype, wbox.shape);
  if (!attempt("write", [&] { array.write(wbox, src_view); })) return 0;
  std::vector<uint8_t> back(src.size());
  const ArrayView back_view = ArrayView::contiguous(back.data(), spec.dtype, wbox.shape);
  // Other chunks may still be corrupt; when the read succeeds, it must return what was written.
  if (attempt("read_into(written)", [&] { array.read_into(wbox, back_view); }) && back != src) {
    die("read after write returned different values");
  }
  return 0;
}
