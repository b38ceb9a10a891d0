// libFuzzer target: the TIFF tile decoders (CodecId::kTiff) on arbitrary tile bytes.
//
// Input: byte 0 picks a tile kind from kKinds (compression, predictor, samples, dtype, byte order,
// a short last strip), byte 1 bit 0 also decodes into a destination whose rows are strided inside
// a canary-filled parent, bit 1 says shared JPEG tables follow (2 bytes LE length, then the
// tables stream); the rest is the tile. decode_into must succeed or throw voxcore::Error and never write outside the tile's
// view; a successful decode gives the same values whatever the destination layout.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"

#include "fuzz_support.hpp"

namespace {

using voxcore::ArrayView;
using voxcore::CodecChain;
using voxcore::CodecId;
using voxcore::CodecSpec;
using voxcore::DType;
using voxcore::Endian;
using voxcore::Shape;

constexpr uint8_t kCanary = 0xA5;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_tiff_tile: contract violated: %s\n", what);
  std::abort();
}

struct Kind {
  int compression, predictor, samples, photometric;
  DType dtype;
  Endian endian;
  int64_t last_rows;
  Shape shape;
};

const Kind kKinds[] = {
    {7, 1, 3, 6, DType::kUInt8, Endian::kLittle, 0, {16, 16, 3}},    // JPEG YCbCr
    {7, 1, 3, 2, DType::kUInt8, Endian::kLittle, 0, {16, 16, 3}},    // JPEG RGB
    {7, 1, 1, 1, DType::kUInt8, Endian::kLittle, 3, {8, 16}},        // JPEG gray strip
    {8, 1, 1, 1, DType::kUInt8, Endian::kLittle, 0, {8, 8}},         // deflate
    {8, 2, 3, 2, DType::kUInt16, Endian::kBig, 0, {8, 8, 3}},        // deflate + predictor, MM
    {8, 3, 1, 1, DType::kFloat32, Endian::kLittle, 0, {4, 8}},       // deflate + float predictor
    {5, 1, 1, 1, DType::kUInt8, Endian::kLittle, 0, {16, 16}},       // LZW
    {5, 2, 1, 1, DType::kUInt16, Endian::kLittle, 2, {8, 8}},        // LZW + predictor, short strip
    {32773, 1, 1, 1, DType::kUInt8, Endian::kLittle, 0, {8, 8}},     // PackBits
    {50000, 1, 3, 2, DType::kUInt8, Endian::kLittle, 0, {4, 4, 3}},  // zstd
    {1, 2, 1, 1, DType::kInt32, Endian::kBig, 5, {8, 4}},            // uncompressed strip
};
constexpr int kNumKinds = sizeof(kKinds) / sizeof(kKinds[0]);

std::shared_ptr<const CodecChain> chain_for(int which, const std::vector<uint8_t>& tables) {
  const Kind& k = kKinds[which];
  CodecSpec s;
  s.id = CodecId::kTiff;
  s.endian = k.endian;
  s.tiff.compression = k.compression;
  s.tiff.predictor = k.predictor;
  s.tiff.samples = k.samples;
  s.tiff.photometric = k.photometric;
  s.tiff.last_rows = k.last_rows;
  s.tiff.jpeg_tables = tables;
  return CodecChain::prepare({s}, k.shape, k.dtype);
}

bool decode(const CodecChain& chain, const uint8_t* p, std::size_t n, const ArrayView& dst) {
  return voxcore_fuzz::attempt("fuzz_tiff_tile", [&] { chain.decode_into(p, n, dst); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int which = data[0] % kNumKinds;
  const bool strided = data[1] & 1;
  const uint8_t* tile = data + 2;
  std::size_t n = size - 2;
  std::vector<uint8_t> tables;
  if (data[1] & 2) {
    if (n < 2) return 0;
    const std::size_t len = tile[0] | std::size_t{tile[1]} << 8;
    if (len > n - 2) return 0;
    tables.assign(tile + 2, tile + 2 + len);
    tile += 2 + len;
    n -= 2 + len;
  }
  auto chain = chain_for(which, tables);
  const Kind& k = kKinds[which];
  const auto nbytes = static_cast<std::size_t>(chain->chunk_nbytes());

  std::vector<uint8_t> flat(nbytes, kCanary);
  const bool ok = decode(*chain, tile, n, ArrayView::contiguous(flat.data(), k.dtype, k.shape));
  if (!strided) return 0;
  // the same tile into a sub-view: every row of the parent has one element of margin each side
  Shape parent = k.shape;
  const std::size_t col_axis = k.samples > 1 ? parent.size() - 2 : parent.size() - 1;
  parent[col_axis] += 2;
  std::vector<uint8_t> big(nbytes / static_cast<std::size_t>(k.shape[col_axis]) * static_cast<std::size_t>(parent[col_axis]),
                           kCanary);
  Shape offset(parent.size(), 0);
  offset[col_axis] = 1;
  ArrayView view = ArrayView::contiguous(big.data(), k.dtype, parent).subview(offset, k.shape);
  const bool ok2 = decode(*chain, tile, n, view);
  if (ok != ok2) die("a tile decodes into one layout and not the other");
  if (!ok) return 0;
  // compare element rows, and the margins still hold the canary
  const std::size_t item = voxcore::itemsize(k.dtype);
  const std::size_t row = static_cast<std::size_t>(k.shape[col_axis]) * (k.samples > 1 ? k.samples : 1) * item;
  const std::size_t prow = row / static_cast<std::size_t>(k.shape[col_axis]) * static_cast<std::size_t>(parent[col_axis]);
  const std::size_t unit = row / static_cast<std::size_t>(k.shape[col_axis]);
  for (std::size_t r = 0; r < nbytes / row; ++r) {
    if (std::memcmp(&big[r * prow + unit], &flat[r * row], row) != 0) die("layouts decode differently");
    for (std::size_t b = 0; b < unit; ++b) {
      if (big[r * prow + b] != kCanary || big[r * prow + unit + row + b] != kCanary) die("wrote outside the tile");
    }
  }
  return 0;
}
