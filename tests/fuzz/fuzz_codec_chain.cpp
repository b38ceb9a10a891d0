// libFuzzer target: CodecChain::decode_into on arbitrary encoded chunks.
//
// Input: byte 0 picks a codec chain from kChains, byte 1 picks a chunk shape/dtype (low 4 bits)
// and a destination layout (top 2 bits); the rest is the encoded chunk. decode_into must succeed
// or throw voxcore::Error, and never write outside the destination view. When it succeeds, the
// decoded chunk must survive encode -> decode unchanged.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace {

using voxcore::CodecChain;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::DType;
using voxcore::Endian;
using voxcore::Shape;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_codec_chain: contract violated: %s\n", what);
  std::abort();
}

// ---- chunk shapes and dtypes ---------------------------------------------------------------

struct ChunkKind {
  DType dtype;
  Shape shape;
  Shape inner;  // inner chunk shape for the sharding chains (divides shape)
};

const std::vector<ChunkKind>& kinds() {
  static const std::vector<ChunkKind> k = {
      {DType::kUInt8, {16, 16}, {8, 8}},
      {DType::kUInt16, {4, 8, 8}, {2, 4, 4}},
      {DType::kFloat32, {3, 5, 7}, {1, 5, 7}},
      {DType::kInt64, {10}, {5}},
      {DType::kFloat64, {6, 4}, {3, 2}},
      {DType::kComplex64, {4, 4}, {2, 2}},
      {DType::kUInt8, {}, {}},
      {DType::kInt16, {2, 1, 3, 1, 2, 1}, {1, 1, 3, 1, 1, 1}},
      {DType::kBool, {7, 9}, {7, 3}},
      {DType::kUInt32, {32, 32}, {16, 16}},
  };
  return k;
}

// ---- codec chains --------------------------------------------------------------------------

CodecSpec bytes(Endian e = Endian::kLittle) {
  CodecSpec s;
  s.id = CodecId::kBytes;
  s.endian = e;
  return s;
}
CodecSpec simple(CodecId id, int level = 0) {
  CodecSpec s;
  s.id = id;
  s.level = level;
  return s;
}
CodecSpec blosc(const char* cname, int shuffle) {
  CodecSpec s;
  s.id = CodecId::kBlosc;
  s.cname = cname;
  s.shuffle = shuffle;
  s.level = 5;
  return s;
}
CodecSpec transpose_reversed(std::size_t rank) {
  CodecSpec s;
  s.id = CodecId::kTranspose;
  for (std::size_t i = 0; i < rank; ++i) s.order.push_back(static_cast<int>(rank - 1 - i));
  return s;
}
CodecSpec sharding(const Shape& inner, std::vector<CodecSpec> inner_codecs, bool index_crc,
                   bool at_end) {
  CodecSpec s;
  s.id = CodecId::kSharding;
  s.inner_chunk_shape = inner;
  s.inner_codecs = std::move(inner_codecs);
  s.index_codecs = {bytes()};
  if (index_crc) s.index_codecs.push_back(simple(CodecId::kCrc32c));
  s.index_at_end = at_end;
  return s;
}

// The chains seen in real Zarr data (v2 via numcodecs, v3 via zarr-python), plus stacks.
std::vector<CodecSpec> make_chain(int which, const ChunkKind& k) {
  const std::size_t rank = k.shape.size();
  switch (which) {
    case 0: return {bytes(), simple(CodecId::kZstd, 3)};
    case 1: return {bytes(), blosc("lz4", 1)};
    case 2: return {bytes(), blosc("zstd", 2)};
    case 3: return {bytes(), blosc("zlib", 0)};
    case 4: return {bytes(), simple(CodecId::kLz4, 1)};
    case 5: return {bytes(), simple(CodecId::kGzip, 5)};
    case 6: return {bytes(), simple(CodecId::kZlib, 5)};
    case 7: return {bytes(), simple(CodecId::kCrc32c)};
    case 8: return {transpose_reversed(rank), bytes(Endian::kBig), simple(CodecId::kZstd, 1)};
    case 9:
      return {sharding(k.inner, {bytes(), simple(CodecId::kZstd, 1)}, true, true)};
    case 10:
      return {sharding(k.inner, {bytes(), simple(CodecId::kZstd, 1)}, true, false)};
    case 11: return {bytes(), simple(CodecId::kZstd, 1), simple(CodecId::kCrc32c)};
    case 12: return {bytes(Endian::kBig), simple(CodecId::kCrc32c), simple(CodecId::kZstd, 1)};
    case 13:
      return {sharding(k.inner,
                       {transpose_reversed(rank), bytes(Endian::kBig), simple(CodecId::kCrc32c)},
                       false, true),
              simple(CodecId::kZstd, 1)};
    case 14: return {sharding(k.inner, {bytes(), blosc("lz4", 1)}, true, true)};
    default: return {bytes(), simple(CodecId::kGzip, 1), simple(CodecId::kZstd, 1)};
  }
}
constexpr int kChains = 16;

const CodecChain& chain_for(int which, int kind) {
  static std::shared_ptr<const CodecChain> cache[kChains][16];
  auto& slot = cache[which][kind];
  if (!slot) {
    const ChunkKind& k = kinds()[static_cast<std::size_t>(kind)];
    try {
      slot = CodecChain::prepare(make_chain(which, k), k.shape, k.dtype);
    } catch (const voxcore::Error& e) {
      std::fprintf(stderr, "chain %d kind %d: %s\n", which, kind, e.what());
      die("a chain from the table does not prepare");
    }
  }
  return *slot;
}

// ---- the target ----------------------------------------------------------------------------

constexpr uint8_t kCanary = 0xA5;

bool decode_ok(const CodecChain& chain, const uint8_t* p, std::size_t n,
               const voxcore::ArrayView& dst) {
  try {
    chain.decode_into(p, n, dst);
    return true;
  } catch (const voxcore::Error&) {
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-voxcore exception: %s\n", e.what());
    die("decode_into threw something other than voxcore::Error");
  } catch (...) {
    die("decode_into threw a non-std exception");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int which = data[0] % kChains;
  const int kind = (data[1] & 0x0F) % static_cast<int>(kinds().size());
  const int layout = data[1] >> 6;  // 0,3: contiguous; 1: flipped axis 0; 2: padded last axis
  const uint8_t* payload = data + 2;
  const std::size_t n = size - 2;

  const CodecChain& chain = chain_for(which, kind);
  const ChunkKind& k = kinds()[static_cast<std::size_t>(kind)];
  const auto nbytes = static_cast<std::size_t>(chain.chunk_nbytes());
  const std::size_t item = voxcore::itemsize(k.dtype);
  const std::size_t rank = k.shape.size();

  // The destination: exactly sized heap memory (ASan sees any overrun), or a sub-view of a
  // canary-filled parent padded by one element on each side of the last axis.
  std::vector<uint8_t> buf;
  voxcore::ArrayView dst;
  std::size_t row = 0;  // padded layout: parent row length in elements
  if (layout == 2 && rank > 0) {
    Shape parent = k.shape;
    parent.back() += 2;
    row = static_cast<std::size_t>(parent.back());
    buf.assign(nbytes / static_cast<std::size_t>(k.shape.back()) * row, kCanary);
    Shape offset(rank, 0);
    offset.back() = 1;
    dst = voxcore::ArrayView::contiguous(buf.data(), k.dtype, parent).subview(offset, k.shape);
  } else {
    buf.assign(nbytes, kCanary);
    dst = voxcore::ArrayView::contiguous(buf.data(), k.dtype, k.shape);
    if (layout == 1 && rank > 0) dst = dst.flipped(0);
  }

  const bool ok = decode_ok(chain, payload, n, dst);

  if (row != 0) {
    const std::size_t elems = buf.size() / item;
    for (std::size_t e = 0; e < elems; ++e) {
      const std::size_t j = e % row;
      if (j != 0 && j != row - 1) continue;
      for (std::size_t b = 0; b < item; ++b) {
        if (buf[e * item + b] != kCanary) die("decode_into wrote outside the destination view");
      }
    }
  }
  if (!ok) return 0;

  // Same bytes into a contiguous chunk: must succeed and agree with the strided result.
  std::vector<uint8_t> a(nbytes), b(nbytes);
  auto va = voxcore::ArrayView::contiguous(a.data(), k.dtype, k.shape);
  auto vb = voxcore::ArrayView::contiguous(b.data(), k.dtype, k.shape);
  if (!decode_ok(chain, payload, n, va)) die("decode_into is not deterministic");
  voxcore::copy(dst, vb);
  if (a != b) die("strided and contiguous decodes differ");

  // Round trip: encode what was decoded, decode it again.
  voxcore::ByteBuffer enc;
  try {
    chain.encode(va, enc);
  } catch (const voxcore::Error& e) {
    std::fprintf(stderr, "encode: %s\n", e.what());
    die("encode of a decoded chunk failed");
  }
  std::fill(b.begin(), b.end(), uint8_t{0x5A});
  if (!decode_ok(chain, enc.data(), enc.size(), vb)) die("decode of a fresh encode failed");
  if (a != b) die("encode/decode round trip changed the chunk");
  return 0;
}
