// CodecChain, sharding_indexed and crc32c: round trips, golden bytes written by numcodecs /
// zarr-python / the zstd CLI, and bad input (each asserting the error code and the codec named).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "detail/codec_ops.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/thread_pool.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {
namespace {

constexpr uint64_t kNone = ~uint64_t{0};

// ---- helpers -------------------------------------------------------------------------------

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

int64_t count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Smooth data with a little noise, as bytes of `dtype` (bit patterns only: compared bytewise).
std::vector<uint8_t> make_data(const Shape& shape, DType dtype, unsigned seed = 1) {
  const std::size_t item = itemsize(dtype);
  const int64_t n = count(shape);
  std::vector<uint8_t> out(static_cast<std::size_t>(n) * item);
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t v = static_cast<uint64_t>(i / 3) * 2654435761u % 1000 / 50 + rng() % 4;
    for (std::size_t b = 0; b < item; ++b) {
      out[static_cast<std::size_t>(i) * item + b] = static_cast<uint8_t>(b == 0 ? v : (v >> 3) + b);
    }
  }
  return out;
}

CodecSpec bytes_codec(Endian endian = Endian::kLittle) {
  CodecSpec s;
  s.id = CodecId::kBytes;
  s.endian = endian;
  return s;
}
CodecSpec transpose(std::vector<int> order) {
  CodecSpec s;
  s.id = CodecId::kTranspose;
  s.order = std::move(order);
  return s;
}
CodecSpec codec(CodecId id, int level = 1) {
  CodecSpec s;
  s.id = id;
  s.level = level;
  return s;
}
CodecSpec blosc(const std::string& cname, int clevel, int shuffle, int typesize = 0) {
  CodecSpec s;
  s.id = CodecId::kBlosc;
  s.cname = cname;
  s.level = clevel;
  s.shuffle = shuffle;
  s.typesize = typesize;
  return s;
}
CodecSpec sharding(Shape inner, std::vector<CodecSpec> inner_codecs, bool crc = true,
                   bool at_end = true) {
  CodecSpec s;
  s.id = CodecId::kSharding;
  s.inner_chunk_shape = std::move(inner);
  s.inner_codecs = std::move(inner_codecs);
  s.index_codecs = {bytes_codec()};
  if (crc) s.index_codecs.push_back(codec(CodecId::kCrc32c));
  s.index_at_end = at_end;
  return s;
}

std::vector<int> reversed(std::size_t rank) {
  std::vector<int> o(rank);
  for (std::size_t i = 0; i < rank; ++i) o[i] = static_cast<int>(rank - 1 - i);
  return o;
}

// Runs fn and checks it throws voxcore::Error with `code` and a message containing `needle`.
void expect_error(const std::function<void()>& fn, ErrorCode code, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown (expected " << error_code_name(code) << " naming '" << needle
                  << "')";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << "got " << error_code_name(e.code()) << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message does not name '" << needle << "': " << e.what();
  }
}

std::vector<uint8_t> encode(const CodecChain& chain, std::vector<uint8_t> data) {
  ByteBuffer out;
  chain.encode(ArrayView::contiguous(data.data(), chain.dtype(), chain.chunk_shape()), out);
  return std::vector<uint8_t>(out.data(), out.data() + out.size());
}

std::vector<uint8_t> decode(const CodecChain& chain, const std::vector<uint8_t>& encoded) {
  std::vector<uint8_t> out(static_cast<std::size_t>(chain.chunk_nbytes()), 0xAB);
  chain.decode_into(encoded.data(), encoded.size(),
                    ArrayView::contiguous(out.data(), chain.dtype(), chain.chunk_shape()));
  return out;
}

std::function<void()> decoding(const CodecChain& chain, std::vector<uint8_t> encoded) {
  return [&chain, encoded] { decode(chain, encoded); };
}

// Encodes, decodes into a contiguous, a padded (strided) and an F-order destination, and checks
// every result and that the padding was not touched.
void check_round_trip(const std::vector<CodecSpec>& specs, const Shape& shape, DType dtype,
                      const std::vector<uint8_t>& fill = {}) {
  auto chain = CodecChain::prepare(specs, shape, dtype, fill);
  const std::vector<uint8_t> data = make_data(shape, dtype);
  const std::vector<uint8_t> encoded = encode(*chain, data);
  ASSERT_EQ(decode(*chain, encoded), data);

  // Strided: a buffer with a 1-element margin on every side.
  const std::size_t item = itemsize(dtype);
  Shape padded = shape;
  for (auto& d : padded) d += 2;
  std::vector<uint8_t> big(static_cast<std::size_t>(count(padded)) * item, 0xCD);
  ArrayView outer = ArrayView::contiguous(big.data(), dtype, padded);
  ArrayView inner = outer.subview(Shape(shape.size(), 1), shape);
  chain->decode_into(encoded.data(), encoded.size(), inner);
  std::vector<uint8_t> gathered(data.size());
  ArrayView dense = ArrayView::contiguous(gathered.data(), dtype, shape);
  copy(inner, dense);
  EXPECT_EQ(gathered, data);
  std::size_t untouched = 0;
  for (uint8_t b : big) untouched += b == 0xCD;
  EXPECT_GE(untouched, big.size() - data.size());

  // F order destination: a permuted view of a reversed-shape buffer.
  Shape rev(shape.rbegin(), shape.rend());
  std::vector<uint8_t> fbuf(data.size());
  ArrayView fview = ArrayView::contiguous(fbuf.data(), dtype, rev).permuted(reversed(shape.size()));
  chain->decode_into(encoded.data(), encoded.size(), fview);
  std::fill(gathered.begin(), gathered.end(), 0);
  copy(fview, dense);
  EXPECT_EQ(gathered, data);

  // Encoding from a strided source gives the same bytes.
  copy(ArrayView::contiguous(const_cast<uint8_t*>(data.data()), dtype, shape), inner);
  ByteBuffer again;
  chain->encode(inner, again);
  ASSERT_EQ(again.size(), encoded.size());
  EXPECT_EQ(0, std::memcmp(again.data(), encoded.data(), encoded.size()));
}

// ---- crc32c --------------------------------------------------------------------------------

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(detail::crc32c_portable("123456789", 9, 0), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(Crc32c, HardwareMatchesPortableAtAnyAlignmentAndSplit) {
  // Sizes around the 3-way interleaving blocks (3 x 256 and 3 x 8192 bytes) too.
  std::vector<uint8_t> buf(100000);
  std::mt19937 rng(7);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t len : {0, 1, 3, 7, 8, 9, 15, 16, 63, 500, 767, 768, 769, 991, 1543, 24575,
                            24576, 24577, 25345, 50000, 99000}) {
      const uint32_t a = crc32c(buf.data() + start, len);
      EXPECT_EQ(a, detail::crc32c_portable(buf.data() + start, len, 0)) << start << " " << len;
      const std::size_t half = len / 3;
      EXPECT_EQ(a, crc32c(buf.data() + start + half, len - half, crc32c(buf.data() + start, half)));
    }
  }
}

// ---- round trips ---------------------------------------------------------------------------

TEST(CodecRoundTrip, EveryCodecDtypeAndShape) {
  const std::vector<Shape> shapes = {{1}, {7}, {3, 5, 7}, {1, 1, 1}, {17, 3, 9}, {2, 3, 4, 5}};
  const std::vector<DType> dtypes = {DType::kUInt8,   DType::kInt16,     DType::kUInt16,
                                     DType::kFloat32, DType::kFloat64,   DType::kComplex64,
                                     DType::kComplex128};
  for (const Shape& shape : shapes) {
    CodecSpec zstd_ck = codec(CodecId::kZstd, 3);
    zstd_ck.checksum = true;
    const std::vector<std::pair<std::string, std::vector<CodecSpec>>> chains = {
        {"bytes", {bytes_codec()}},
        {"bytes-be", {bytes_codec(Endian::kBig)}},
        {"zstd1", {bytes_codec(), codec(CodecId::kZstd, 1)}},
        {"zstd3-checksum", {bytes_codec(), zstd_ck}},
        {"zstd-negative", {bytes_codec(), codec(CodecId::kZstd, -5)}},
        {"lz4", {bytes_codec(), codec(CodecId::kLz4, 1)}},
        {"gzip", {bytes_codec(), codec(CodecId::kGzip, 5)}},
        {"gzip0", {bytes_codec(), codec(CodecId::kGzip, 0)}},
        {"zlib", {bytes_codec(), codec(CodecId::kZlib, 1)}},
        {"blosc-lz4", {bytes_codec(), blosc("lz4", 5, 1)}},
        {"blosc-zstd-bit", {bytes_codec(), blosc("zstd", 3, 2)}},
        {"blosc-blosclz-noshuffle", {bytes_codec(), blosc("blosclz", 9, 0, 1)}},
        {"blosc-zlib-auto", {bytes_codec(), blosc("zlib", 1, -1)}},
        {"crc", {bytes_codec(), codec(CodecId::kCrc32c)}},
        {"zstd-crc", {bytes_codec(), codec(CodecId::kZstd), codec(CodecId::kCrc32c)}},
        {"crc-zstd", {bytes_codec(), codec(CodecId::kCrc32c), codec(CodecId::kZstd)}},
        {"zstd-gzip", {bytes_codec(), codec(CodecId::kZstd), codec(CodecId::kGzip)}},
        {"lz4-blosc", {bytes_codec(), codec(CodecId::kLz4), blosc("lz4", 5, 0)}},
        {"F-order-be-zstd",
         {transpose(reversed(shape.size())), bytes_codec(Endian::kBig), codec(CodecId::kZstd)}},
        {"F-order-crc", {transpose(reversed(shape.size())), bytes_codec(), codec(CodecId::kCrc32c)}},
        {"two-transposes",
         {transpose(reversed(shape.size())), transpose(reversed(shape.size())), bytes_codec(),
          codec(CodecId::kLz4)}},
    };
    for (DType dtype : dtypes) {
      for (const auto& [name, specs] : chains) {
        SCOPED_TRACE(name + " " + dtype_name(dtype) + " rank " + std::to_string(shape.size()) +
                     " n=" + std::to_string(count(shape)));
        check_round_trip(specs, shape, dtype);
      }
    }
  }
}

TEST(CodecRoundTrip, RotatingTransposeOnOddShape) {
  check_round_trip({transpose({2, 0, 1}), bytes_codec(), codec(CodecId::kZstd)}, {5, 6, 7},
                   DType::kUInt16);
  check_round_trip({transpose({1, 2, 0}), bytes_codec(Endian::kBig), codec(CodecId::kGzip)},
                   {5, 6, 7}, DType::kFloat64);
  check_round_trip({bytes_codec(), codec(CodecId::kZstd)}, {64, 64, 64}, DType::kUInt16);
}

TEST(CodecRoundTrip, ThreadsShareOneChain) {
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {32, 32, 8},
                                   DType::kUInt16);
  auto shard = CodecChain::prepare(
      {sharding({8, 8, 8}, {bytes_codec(), codec(CodecId::kLz4)})}, {32, 32, 8}, DType::kUInt16);
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const auto& c = t % 2 ? *chain : *shard;
      bool good = true;
      for (int i = 0; i < 20; ++i) {
        auto data = make_data(c.chunk_shape(), c.dtype(), static_cast<unsigned>(t * 100 + i));
        good = good && decode(c, encode(c, data)) == data;
      }
      ok[t] = good;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_TRUE(ok[t]) << "thread " << t;
}

TEST(CodecChainInfo, Accessors) {
  auto plain = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {4, 5}, DType::kInt32);
  EXPECT_EQ(plain->chunk_nbytes(), 80);
  EXPECT_EQ(plain->chunk_shape(), (Shape{4, 5}));
  EXPECT_EQ(plain->dtype(), DType::kInt32);
  EXPECT_TRUE(plain->is_identity_layout());
  EXPECT_EQ(plain->sharding(), nullptr);
  EXPECT_FALSE(CodecChain::prepare({bytes_codec(Endian::kBig)}, {4}, DType::kInt32)
                   ->is_identity_layout());
  EXPECT_TRUE(CodecChain::prepare({bytes_codec(Endian::kBig)}, {4}, DType::kUInt8)
                  ->is_identity_layout());
  EXPECT_FALSE(CodecChain::prepare({transpose({1, 0}), bytes_codec()}, {4, 5}, DType::kUInt8)
                   ->is_identity_layout());
  EXPECT_TRUE(CodecChain::prepare({transpose({1, 0}), transpose({1, 0}), bytes_codec()}, {4, 5},
                                  DType::kUInt8)
                  ->is_identity_layout());
}

// ---- golden bytes --------------------------------------------------------------------------

TEST(CodecGolden, BytesBigEndianAndTranspose) {
  auto be = CodecChain::prepare({bytes_codec(Endian::kBig)}, {2}, DType::kUInt16);
  uint16_t values[2] = {0x0102, 0x0304};
  std::vector<uint8_t> raw(4);
  std::memcpy(raw.data(), values, 4);
  EXPECT_EQ(encode(*be, raw), (std::vector<uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ(decode(*be, {1, 2, 3, 4}), raw);

  // zarr v3 transpose order [1, 0] stores the 2x3 chunk as its 3x2 transpose (F order).
  auto tr = CodecChain::prepare({transpose({1, 0}), bytes_codec()}, {2, 3}, DType::kUInt8);
  EXPECT_EQ(encode(*tr, {0, 1, 2, 3, 4, 5}), (std::vector<uint8_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(decode(*tr, {0, 3, 1, 4, 2, 5}), (std::vector<uint8_t>{0, 1, 2, 3, 4, 5}));
  // Rank 3, order [2, 0, 1]: stored[k][i][j] = chunk[i][j][k].
  auto t3 = CodecChain::prepare({transpose({2, 0, 1}), bytes_codec()}, {2, 1, 3}, DType::kUInt8);
  EXPECT_EQ(encode(*t3, {0, 1, 2, 3, 4, 5}), (std::vector<uint8_t>{0, 3, 1, 4, 2, 5}));
}

TEST(CodecGolden, ZstdFrameFromTheZstdCli) {
  // `printf 'hello hello hello voxcore zstd golden\n' x3 | zstd -19`
  const auto frame = from_hex(
      "28b52ffd24721d0100d068656c6c6f20766f78636f7265207a737464"
      "20676f6c64656e0a0200322994852b45fb8bb00a");
  const std::string line = "hello hello hello voxcore zstd golden\n";
  const std::string text = line + line + line;
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)},
                                   {static_cast<int64_t>(text.size())}, DType::kUInt8);
  EXPECT_EQ(decode(*chain, frame), std::vector<uint8_t>(text.begin(), text.end()));
}

// numcodecs 0.16 encodings of (np.arange(256) // 4).astype('<u2').
std::vector<uint8_t> numcodecs_input() {
  std::vector<uint8_t> raw(512);
  for (int i = 0; i < 256; ++i) {
    raw[2 * i] = static_cast<uint8_t>(i / 4);
    raw[2 * i + 1] = 0;
  }
  return raw;
}

TEST(CodecGolden, NumcodecsFrames) {
  const std::vector<std::pair<CodecSpec, std::string>> cases = {
      {codec(CodecId::kZstd),
       "28b52ffd600001b5040082c4100c10383e06a0646d300f9f9302fefefefe0b45027130140803410070db353d"
       "cb31fcba2dbbaa297a9a25398a21f8791db76919765915354911f4380db328097218ee013f20e0c759f26596"
       "255f6659f26596255f6659f26596255f6659e4cb2c4bbeccb2e4cb2c4bbeccb2e4cb2c4bbeccb2e4cb4c967c"
       "9965c99759967c9965c99759967c9965c99759967c320359ca775858"},
      {blosc("zstd", 3, 2),
       "02019402000200000002000043000000140000002b00000028b52ffd6000010d010038f000ff00ffff000a80"
       "30f1013c401d74386226f342581129ebbba65c238df301"},
      {codec(CodecId::kGzip),
       "1f8b0800570b026b04ff25c1c36100000000b1d4b66ddb6ef7dfaa8f4bc8800eea900eeb888eea988eeb844e"
       "ea944eeb8cceea9cceeb822eea922eeb8aaeea9aaeeb866eea966eeb8eeeea9eeeeb811eea911eeb899eea99"
       "9eeb855eea955eeb8ddeea9ddeeb833eea933eeb8bbeea9bbeeb877eea977eeb8ffeea9ffe033568696000020000"},
      {codec(CodecId::kZlib),
       "780125c1c36100000000b1d4b66ddb6ef7dfaa8f4bc8800eea900eeb888eea988eeb844eea944eeb8cceea9c"
       "ceeb822eea922eeb8aaeea9aaeeb866eea966eeb8eeeea9eeeeb811eea911eeb899eea999eeb855eea955eeb"
       "8ddeea9ddeeb833eea933eeb8bbeea9bbeeb877eea977eeb8ffeea9ffe03f8ac1f81"},
  };
  const auto expected = numcodecs_input();
  for (const auto& [spec, hex] : cases) {
    SCOPED_TRACE(hex.substr(0, 8));
    auto chain = CodecChain::prepare({bytes_codec(), spec}, {256}, DType::kUInt16);
    EXPECT_EQ(decode(*chain, from_hex(hex)), expected);
  }
}

TEST(CodecGolden, NumcodecsLz4FramingIsByteIdentical) {
  // numcodecs.LZ4(acceleration=1): a 4-byte LE size prefix, then the LZ4 block.
  std::string hex = "00020000130001001301020013020200";
  for (int v = 3; v <= 0x3e; ++v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "13%02x0200", v);
    hex += buf;
  }
  hex += "803f003f003f003f00";
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kLz4)}, {256}, DType::kUInt16);
  const auto frame = from_hex(hex);
  EXPECT_EQ(decode(*chain, frame), numcodecs_input());
  EXPECT_EQ(encode(*chain, numcodecs_input()), frame);
}

// ---- bad input: compressors ----------------------------------------------------------------

TEST(CodecBadInput, TruncatedAndEmptyInputForEveryCompressor) {
  const std::vector<std::pair<std::string, CodecSpec>> codecs = {
      {"zstd", codec(CodecId::kZstd)},   {"lz4", codec(CodecId::kLz4)},
      {"gzip", codec(CodecId::kGzip)},   {"zlib", codec(CodecId::kZlib)},
      {"blosc", blosc("lz4", 5, 1)},     {"blosc", blosc("zstd", 5, 2)},
      {"crc32c", codec(CodecId::kCrc32c)}, {"bytes", bytes_codec()}};
  for (const auto& [name, spec] : codecs) {
    SCOPED_TRACE(name);
    std::vector<CodecSpec> specs = {bytes_codec()};
    if (spec.id != CodecId::kBytes) specs.push_back(spec);
    auto chain = CodecChain::prepare(specs, {40, 30}, DType::kUInt16);
    const auto good = encode(*chain, make_data({40, 30}, DType::kUInt16));
    ASSERT_EQ(decode(*chain, good), make_data({40, 30}, DType::kUInt16));
    expect_error(decoding(*chain, {}), ErrorCode::kCorrupt, name);
    for (std::size_t keep : {std::size_t{1}, std::size_t{3}, good.size() / 2, good.size() - 1}) {
      SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(good.size()));
      expect_error(decoding(*chain, std::vector<uint8_t>(good.begin(), good.begin() + keep)),
                   ErrorCode::kCorrupt, name);
    }
    // Null source with zero size is just empty input.
    std::vector<uint8_t> out(static_cast<std::size_t>(chain->chunk_nbytes()));
    expect_error([&] {
      chain->decode_into(nullptr, 0, ArrayView::contiguous(out.data(), DType::kUInt16, {40, 30}));
    }, ErrorCode::kCorrupt, name);
  }
}

TEST(CodecBadInput, WrongCodecsBytes) {
  auto gz = CodecChain::prepare({bytes_codec(), codec(CodecId::kGzip)}, {100}, DType::kUInt8);
  auto zs = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {100}, DType::kUInt8);
  auto bl = CodecChain::prepare({bytes_codec(), blosc("lz4", 5, 1)}, {100}, DType::kUInt8);
  const auto gz_bytes = encode(*gz, make_data({100}, DType::kUInt8));
  const auto zs_bytes = encode(*zs, make_data({100}, DType::kUInt8));
  expect_error(decoding(*zs, gz_bytes), ErrorCode::kCorrupt, "zstd");
  expect_error(decoding(*gz, zs_bytes), ErrorCode::kCorrupt, "gzip");
  expect_error(decoding(*bl, zs_bytes), ErrorCode::kCorrupt, "blosc");
}

TEST(CodecBadInput, ZstdDecodesToTooManyOrTooFewBytes) {
  auto small = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {1000}, DType::kUInt8);
  auto large = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {2000}, DType::kUInt8);
  const auto small_frame = encode(*small, make_data({1000}, DType::kUInt8));
  const auto large_frame = encode(*large, make_data({2000}, DType::kUInt8));
  expect_error(decoding(*large, small_frame), ErrorCode::kCorrupt,
               "zstd: decoded size mismatch (expected=2000, got=1000)");
  expect_error(decoding(*small, large_frame), ErrorCode::kCorrupt,
               "zstd: decoded size exceeds expected (expected=1000, got=2000)");
  // A bomb: 64 MiB of zeros in a tiny frame, against a 1000-byte chunk. Nothing is allocated
  // from the claim; the decoder stops at the destination's end.
  auto huge = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {1 << 26}, DType::kUInt8);
  std::vector<uint8_t> zeros(size_t{1} << 26, 0);
  const auto bomb = encode(*huge, zeros);
  zeros = {};
  EXPECT_LT(bomb.size(), 100000u);
  expect_error(decoding(*small, bomb), ErrorCode::kCorrupt, "zstd: decoded size exceeds expected");
  // Two concatenated frames decode as one chunk.
  auto half = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {500}, DType::kUInt8);
  auto data = make_data({1000}, DType::kUInt8);
  auto two = encode(*half, std::vector<uint8_t>(data.begin(), data.begin() + 500));
  auto second = encode(*half, std::vector<uint8_t>(data.begin() + 500, data.end()));
  two.insert(two.end(), second.begin(), second.end());
  EXPECT_EQ(decode(*small, two), data);
}

TEST(CodecBadInput, GzipSizeChecksAndMultiMember) {
  auto g1000 = CodecChain::prepare({bytes_codec(), codec(CodecId::kGzip)}, {1000}, DType::kUInt8);
  auto g500 = CodecChain::prepare({bytes_codec(), codec(CodecId::kGzip)}, {500}, DType::kUInt8);
  auto data = make_data({1000}, DType::kUInt8);
  auto a = encode(*g500, std::vector<uint8_t>(data.begin(), data.begin() + 500));
  auto b = encode(*g500, std::vector<uint8_t>(data.begin() + 500, data.end()));
  expect_error(decoding(*g1000, a), ErrorCode::kCorrupt, "gzip: decoded size mismatch (expected=1000, got=500)");
  auto ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  EXPECT_EQ(decode(*g1000, ab), data);
  expect_error(decoding(*g500, ab), ErrorCode::kCorrupt, "gzip: decoded size exceeds expected");
  // Flipping a payload bit breaks the CRC32/ISIZE trailer check.
  auto bad = a;
  bad[bad.size() / 2] ^= 0x10;
  expect_error(decoding(*g500, bad), ErrorCode::kCorrupt, "gzip");
  // Trailing garbage after the member is not silently ignored.
  auto junk = a;
  junk.push_back(0x42);
  expect_error(decoding(*g500, junk), ErrorCode::kCorrupt, "gzip");
}

TEST(CodecBadInput, Lz4PrefixThatLies) {
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kLz4)}, {1000}, DType::kUInt8);
  const auto good = encode(*chain, make_data({1000}, DType::kUInt8));
  ASSERT_EQ(good[0] | good[1] << 8, 1000);
  auto bigger = good;
  bigger[0] = 0xE9;  // 1001
  expect_error(decoding(*chain, bigger), ErrorCode::kCorrupt,
               "lz4: size prefix mismatch (expected=1000, got=1001)");
  auto smaller = good;
  smaller[0] = 0xE7;  // 999
  expect_error(decoding(*chain, smaller), ErrorCode::kCorrupt,
               "lz4: size prefix mismatch (expected=1000, got=999)");
  auto huge = good;
  huge[3] = 0x7F;
  expect_error(decoding(*chain, huge), ErrorCode::kCorrupt, "lz4: size prefix mismatch");
  // A prefix that matches the chunk over a block that holds fewer bytes.
  auto c500 = CodecChain::prepare({bytes_codec(), codec(CodecId::kLz4)}, {500}, DType::kUInt8);
  auto short_block = encode(*c500, make_data({500}, DType::kUInt8));
  short_block[0] = 0xE8;
  short_block[1] = 0x03;  // claims 1000
  expect_error(decoding(*chain, short_block), ErrorCode::kCorrupt, "lz4");
}

TEST(CodecBadInput, BloscHeaderThatLies) {
  auto chain = CodecChain::prepare({bytes_codec(), blosc("lz4", 5, 1)}, {1000}, DType::kUInt16);
  const auto good = encode(*chain, make_data({1000}, DType::kUInt16));
  auto patch32 = [](std::vector<uint8_t> v, std::size_t at, uint32_t value) {
    detail::store_le32(v.data() + at, value);
    return v;
  };
  ASSERT_EQ(detail::load_le32(good.data() + 4), 2000u);  // header nbytes
  expect_error(decoding(*chain, patch32(good, 4, 2008)), ErrorCode::kCorrupt,
               "blosc: decoded size mismatch (expected=2000, got=2008");
  expect_error(decoding(*chain, patch32(good, 4, 1992)), ErrorCode::kCorrupt,
               "blosc: decoded size mismatch (expected=2000, got=1992");
  expect_error(decoding(*chain, patch32(good, 4, 0x7FFFFFFF)), ErrorCode::kCorrupt,
               "blosc: decoded size mismatch");
  // cbytes beyond the input.
  expect_error(decoding(*chain, patch32(good, 12, static_cast<uint32_t>(good.size() + 1))),
               ErrorCode::kCorrupt, "blosc: truncated frame");
  // Trailing bytes after the frame are tolerated (cbytes <= input size).
  auto padded = good;
  padded.push_back(0);
  EXPECT_EQ(decode(*chain, padded), make_data({1000}, DType::kUInt16));
  // Garbage payload behind a valid header.
  auto bad = good;
  for (std::size_t i = 16; i < bad.size(); ++i) bad[i] = static_cast<uint8_t>(i * 31);
  expect_error(decoding(*chain, bad), ErrorCode::kCorrupt, "blosc");
}

TEST(CodecBadInput, CrcMismatchAndChunkSize) {
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kCrc32c)}, {10}, DType::kUInt8);
  auto good = encode(*chain, make_data({10}, DType::kUInt8));
  ASSERT_EQ(good.size(), 14u);
  EXPECT_EQ(detail::load_le32(good.data() + 10), crc32c(good.data(), 10));
  auto bad = good;
  bad[3] ^= 1;
  expect_error(decoding(*chain, bad), ErrorCode::kCorrupt, "crc32c: checksum mismatch (expected=");
  auto plain = CodecChain::prepare({bytes_codec()}, {10}, DType::kUInt8);
  expect_error(decoding(*plain, std::vector<uint8_t>(11)), ErrorCode::kCorrupt,
               "bytes: chunk size mismatch (expected=10, got=11)");
  // crc then zstd: the decompressed payload must carry the 4 checksum bytes.
  auto cz = CodecChain::prepare({bytes_codec(), codec(CodecId::kCrc32c), codec(CodecId::kZstd)},
                                {10}, DType::kUInt8);
  auto z10 = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd)}, {10}, DType::kUInt8);
  expect_error(decoding(*cz, encode(*z10, make_data({10}, DType::kUInt8))), ErrorCode::kCorrupt,
               "zstd: decoded size mismatch (expected=14, got=10)");
}

TEST(CodecBadInput, StackedCompressorsBoundTheMiddleStage) {
  // zstd then gzip: the gzip payload is a zstd frame of unknown size, bounded from metadata.
  auto chain = CodecChain::prepare({bytes_codec(), codec(CodecId::kZstd), codec(CodecId::kGzip)},
                                   {1000}, DType::kUInt8);
  auto gz = CodecChain::prepare({bytes_codec(), codec(CodecId::kGzip)}, {100000}, DType::kUInt8);
  expect_error(decoding(*chain, encode(*gz, std::vector<uint8_t>(100000, 1))), ErrorCode::kCorrupt,
               "gzip: decoded size exceeds bound");
}

TEST(CodecBadInput, DestinationMustMatch) {
  auto chain = CodecChain::prepare({bytes_codec()}, {4, 4}, DType::kUInt16);
  std::vector<uint8_t> src(32), dst(64);
  expect_error([&] {
    chain->decode_into(src.data(), src.size(), ArrayView::contiguous(dst.data(), DType::kUInt16, {4, 8}));
  }, ErrorCode::kInvalidArgument, "shape");
  expect_error([&] {
    chain->decode_into(src.data(), src.size(), ArrayView::contiguous(dst.data(), DType::kInt16, {4, 4}));
  }, ErrorCode::kInvalidArgument, "dtype");
  ByteBuffer out;
  expect_error([&] { chain->encode(ArrayView::contiguous(dst.data(), DType::kUInt16, {16}), out); },
               ErrorCode::kInvalidArgument, "shape");
}

// ---- prepare errors ------------------------------------------------------------------------

TEST(CodecPrepare, ChainOrderAndParameters) {
  auto prep = [](std::vector<CodecSpec> specs, Shape shape = {4, 4, 4},
                 DType dtype = DType::kUInt16) {
    return [specs, shape, dtype] { CodecChain::prepare(specs, shape, dtype); };
  };
  const auto bad = ErrorCode::kInvalidMetadata;
  expect_error(prep({}), bad, "no array->bytes codec");
  expect_error(prep({transpose({0, 1, 2})}), bad, "no array->bytes codec");
  expect_error(prep({codec(CodecId::kZstd), bytes_codec()}), bad, "zstd");
  expect_error(prep({codec(CodecId::kCrc32c), bytes_codec()}), bad, "crc32c");
  expect_error(prep({bytes_codec(), bytes_codec()}), bad, "more than one array->bytes codec");
  expect_error(prep({sharding({2, 2, 2}, {bytes_codec()}), bytes_codec()}), bad,
               "more than one array->bytes codec");
  expect_error(prep({bytes_codec(), transpose({2, 1, 0})}), bad, "transpose");
  expect_error(prep({transpose({0, 0, 1}), bytes_codec()}), bad, "transpose");
  expect_error(prep({transpose({0, 1}), bytes_codec()}), bad, "transpose");
  expect_error(prep({transpose({0, 1, 3}), bytes_codec()}), bad, "transpose");
  expect_error(prep({transpose({-1, 0, 1}), bytes_codec()}), bad, "transpose");
  CodecSpec unknown;
  unknown.id = static_cast<CodecId>(99);
  expect_error(prep({bytes_codec(), unknown}), bad, "unknown codec");
  expect_error(prep({bytes_codec(), blosc("nope", 5, 1)}), bad, "blosc: unknown cname");
  expect_error(prep({bytes_codec(), blosc("lz4", 10, 1)}), bad, "blosc: clevel");
  expect_error(prep({bytes_codec(), blosc("lz4", 5, 7)}), bad, "blosc: shuffle");
  expect_error(prep({bytes_codec(), blosc("lz4", 5, 1, 300)}), bad, "blosc: typesize");
  expect_error(prep({bytes_codec(), codec(CodecId::kZstd, 1000)}), bad, "zstd: level");
  expect_error(prep({bytes_codec()}, {4, 0, 4}), bad, "chunk shape");
  expect_error(prep({bytes_codec()}, {4, -1}), bad, "chunk shape");
  expect_error(prep({bytes_codec()}, {1 << 20, 1 << 20, 1 << 20}), ErrorCode::kLimitExceeded,
               "chunk too large");
  expect_error(prep({bytes_codec()}, {int64_t{1} << 40, int64_t{1} << 40}),
               ErrorCode::kLimitExceeded, "overflows");
  expect_error(prep({bytes_codec()}, Shape(33, 1)), ErrorCode::kLimitExceeded, "rank");
  expect_error(prep({bytes_codec(), codec(CodecId::kLz4)}, {1 << 16, 1 << 16}, DType::kUInt8),
               ErrorCode::kLimitExceeded, "lz4");
  expect_error([] { CodecChain::prepare({bytes_codec()}, {4}, DType::kUInt16, {1, 2, 3}); },
               ErrorCode::kInvalidArgument, "fill_value");
  // A rank-0 chunk is one element.
  EXPECT_EQ(CodecChain::prepare({bytes_codec()}, {}, DType::kFloat64)->chunk_nbytes(), 8);
  check_round_trip({bytes_codec(), codec(CodecId::kZstd)}, {}, DType::kFloat64);
}

TEST(ShardPrepare, LayoutErrors) {
  auto prep = [](CodecSpec spec, Shape shape = {8, 8}) {
    return [spec, shape] { CodecChain::prepare({spec}, shape, DType::kUInt16); };
  };
  expect_error(prep(sharding({3, 4}, {bytes_codec()})), ErrorCode::kInvalidMetadata,
               "sharding_indexed: inner chunk_shape must divide");
  expect_error(prep(sharding({0, 4}, {bytes_codec()})), ErrorCode::kInvalidMetadata,
               "sharding_indexed");
  expect_error(prep(sharding({4}, {bytes_codec()})), ErrorCode::kInvalidMetadata,
               "sharding_indexed");
  expect_error(prep(sharding({4, 4}, {sharding({2, 2}, {bytes_codec()})})),
               ErrorCode::kUnsupported, "nested sharding");
  expect_error(prep(sharding({4, 4}, {codec(CodecId::kZstd)})), ErrorCode::kInvalidMetadata,
               "zstd");
  CodecSpec big_endian_index = sharding({4, 4}, {bytes_codec()});
  big_endian_index.index_codecs = {bytes_codec(Endian::kBig)};
  expect_error(prep(big_endian_index), ErrorCode::kUnsupported, "index_codecs");
  CodecSpec zstd_index = sharding({4, 4}, {bytes_codec()});
  zstd_index.index_codecs = {bytes_codec(), codec(CodecId::kZstd)};
  expect_error(prep(zstd_index), ErrorCode::kUnsupported, "index_codecs");
  CodecSpec no_index = sharding({4, 4}, {bytes_codec()});
  no_index.index_codecs.clear();
  expect_error(prep(no_index), ErrorCode::kUnsupported, "index_codecs");
  expect_error([] {
    CodecChain::prepare({sharding({1, 1}, {bytes_codec()})}, {1 << 13, 1 << 12}, DType::kUInt8);
  }, ErrorCode::kLimitExceeded, "too many inner chunks");

  auto chain = CodecChain::prepare({sharding({2, 4}, {bytes_codec()}, true, false)}, {8, 8},
                                   DType::kUInt16);
  const ShardLayout* layout = chain->sharding();
  ASSERT_NE(layout, nullptr);
  EXPECT_EQ(layout->shard_shape(), (Shape{8, 8}));
  EXPECT_EQ(layout->inner_chunk_shape(), (Shape{2, 4}));
  EXPECT_EQ(layout->chunks_per_shard(), (Shape{4, 2}));
  EXPECT_EQ(layout->num_inner_chunks(), 8);
  EXPECT_EQ(layout->index_nbytes(), 8 * 16 + 4);
  EXPECT_FALSE(layout->index_at_end());
  EXPECT_EQ(layout->inner().chunk_shape(), (Shape{2, 4}));
  EXPECT_TRUE(layout->inner().is_identity_layout());
  EXPECT_FALSE(chain->is_identity_layout());
}

// ---- sharding ------------------------------------------------------------------------------

// zarr-python 3.1 shards of np.arange(16, dtype='<u2').reshape(4, 4) with [0:2, 2:4] = 0,
// inner chunks (2, 2), codecs [bytes], index_codecs [bytes, crc32c], fill_value 0.
const char* kZarrShardEnd =
    "0000010004000500080009000c000d000a000b000e000f0000000000000000000800000000000000ffffffffffff"
    "ffffffffffffffffffff0800000000000000080000000000000010000000000000000800000000000000002c1579";
const char* kZarrShardStart =
    "44000000000000000800000000000000ffffffffffffffffffffffffffffffff4c000000000000000800000000"
    "0000005400000000000000080000000000000070dbd5fb0000010004000500080009000c000d000a000b000e000f00";

std::vector<uint8_t> zarr_shard_data() {
  std::vector<uint8_t> raw(32, 0);
  for (int i = 0; i < 16; ++i) {
    const int r = i / 4, c = i % 4;
    raw[2 * i] = (r < 2 && c >= 2) ? 0 : static_cast<uint8_t>(i);
  }
  return raw;
}

TEST(ShardGolden, ZarrPythonShardsIndexAtEndAndStart) {
  for (bool at_end : {true, false}) {
    SCOPED_TRACE(at_end ? "end" : "start");
    auto chain = CodecChain::prepare({sharding({2, 2}, {bytes_codec()}, true, at_end)}, {4, 4},
                                     DType::kUInt16);
    const auto golden = from_hex(at_end ? kZarrShardEnd : kZarrShardStart);
    EXPECT_EQ(decode(*chain, golden), zarr_shard_data());
    EXPECT_EQ(encode(*chain, zarr_shard_data()), golden);
    std::vector<ShardIndexEntry> entries;
    const ShardLayout& layout = *chain->sharding();
    const uint8_t* index = at_end ? golden.data() + golden.size() - 68 : golden.data();
    layout.decode_index(index, 68, golden.size(), entries);
    ASSERT_EQ(entries.size(), 4u);
    EXPECT_FALSE(entries[0].empty());
    EXPECT_TRUE(entries[1].empty());
    EXPECT_EQ(entries[2].nbytes, 8u);
    ByteBuffer again;
    layout.encode_index(entries, again);
    EXPECT_EQ(0, std::memcmp(again.data(), index, 68));
  }
}

TEST(ShardRoundTrip, IndexPlacementCrcCompressionAndEmptyInnerChunks) {
  const Shape shard_shape = {8, 12, 6};
  for (bool at_end : {true, false}) {
    for (bool crc : {true, false}) {
      for (int inner_kind = 0; inner_kind < 3; ++inner_kind) {
        SCOPED_TRACE(std::string(at_end ? "end" : "start") + (crc ? " crc" : "") + " inner " +
                     std::to_string(inner_kind));
        std::vector<CodecSpec> inner = {bytes_codec()};
        if (inner_kind == 1) inner.push_back(codec(CodecId::kZstd));
        if (inner_kind == 2) inner = {transpose({2, 1, 0}), bytes_codec(Endian::kBig),
                                      blosc("lz4", 5, 1), codec(CodecId::kCrc32c)};
        const std::vector<CodecSpec> specs = {sharding({4, 3, 2}, inner, crc, at_end)};
        check_round_trip(specs, shard_shape, DType::kUInt16);

        // Zero out some inner chunks: they must be stored as empty entries.
        auto chain = CodecChain::prepare(specs, shard_shape, DType::kUInt16);
        auto data = make_data(shard_shape, DType::kUInt16);
        ArrayView view = ArrayView::contiguous(data.data(), DType::kUInt16, shard_shape);
        uint16_t zero = 0;
        fill(view.subview({0, 0, 0}, {4, 3, 2}), &zero);
        fill(view.subview({4, 9, 4}, {4, 3, 2}), &zero);
        const auto encoded = encode(*chain, data);
        EXPECT_EQ(decode(*chain, encoded), data);
        const ShardLayout& layout = *chain->sharding();
        const auto n = static_cast<std::size_t>(layout.index_nbytes());
        std::vector<ShardIndexEntry> entries;
        layout.decode_index(at_end ? encoded.data() + encoded.size() - n : encoded.data(), n,
                            encoded.size(), entries);
        ASSERT_EQ(entries.size(), 2u * 4 * 3);
        int empty = 0;
        for (const auto& e : entries) empty += e.empty();
        EXPECT_EQ(empty, 2);
        EXPECT_TRUE(entries.front().empty());
        EXPECT_TRUE(entries.back().empty());
      }
    }
  }
}

TEST(ShardRoundTrip, FillValueTransposeAndOuterBytesCodecs) {
  // Non-zero fill value: fill-only inner chunks are omitted and come back as the fill value.
  const std::vector<uint8_t> fill7 = {7, 0, 0, 0};
  auto chain = CodecChain::prepare({sharding({2, 2}, {bytes_codec(), codec(CodecId::kZstd)})},
                                   {4, 4}, DType::kInt32, fill7);
  std::vector<uint8_t> sevens(64);
  for (int i = 0; i < 16; ++i) std::memcpy(sevens.data() + 4 * i, fill7.data(), 4);
  const auto encoded = encode(*chain, sevens);
  EXPECT_EQ(encoded.size(), 4u * 16 + 4);  // index only
  EXPECT_EQ(decode(*chain, encoded), sevens);
  check_round_trip({sharding({2, 2}, {bytes_codec(), codec(CodecId::kGzip)})}, {4, 6},
                   DType::kInt32, fill7);

  // A transpose before sharding, and bytes->bytes codecs over the whole shard.
  check_round_trip({transpose({1, 0, 2}), sharding({3, 2, 5}, {bytes_codec(), codec(CodecId::kLz4)})},
                   {4, 9, 5}, DType::kFloat32);
  check_round_trip({sharding({2, 2}, {bytes_codec()}), codec(CodecId::kCrc32c)}, {4, 4},
                   DType::kUInt16);
  check_round_trip({sharding({2, 3}, {bytes_codec(), codec(CodecId::kZstd)}, false),
                    codec(CodecId::kGzip), codec(CodecId::kCrc32c)},
                   {6, 6}, DType::kFloat64);
}

// ---- sharding: bad input -------------------------------------------------------------------

std::vector<uint8_t> make_index(const std::vector<std::pair<uint64_t, uint64_t>>& entries,
                                bool crc) {
  std::vector<uint8_t> out(entries.size() * 16 + (crc ? 4 : 0));
  for (std::size_t i = 0; i < entries.size(); ++i) {
    detail::store_le64(out.data() + 16 * i, entries[i].first);
    detail::store_le64(out.data() + 16 * i + 8, entries[i].second);
  }
  if (crc) detail::store_le32(out.data() + entries.size() * 16, crc32c(out.data(), entries.size() * 16));
  return out;
}

TEST(ShardBadIndex, DecodeIndexValidation) {
  auto chain = CodecChain::prepare({sharding({2}, {bytes_codec()}, true)}, {4}, DType::kUInt8);
  const ShardLayout& layout = *chain->sharding();
  std::vector<ShardIndexEntry> out;
  auto check = [&](const std::vector<uint8_t>& index, uint64_t shard_size) {
    return [&layout, &out, index, shard_size] {
      layout.decode_index(index.data(), index.size(), shard_size, out);
    };
  };
  // Valid: one chunk, one empty.
  auto ok = make_index({{0, 2}, {kNone, kNone}}, true);
  layout.decode_index(ok.data(), ok.size(), 2 + 36, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].offset, 0u);
  EXPECT_EQ(out[0].nbytes, 2u);
  EXPECT_TRUE(out[1].empty());

  expect_error(check(std::vector<uint8_t>(ok.begin(), ok.end() - 1), 100), ErrorCode::kCorrupt,
               "sharding_indexed: index size mismatch (expected=36, got=35)");
  expect_error(check({}, 100), ErrorCode::kCorrupt, "index size mismatch");
  auto flipped = ok;
  flipped[0] ^= 1;
  expect_error(check(flipped, 100), ErrorCode::kCorrupt, "crc32c checksum mismatch");
  expect_error(check(make_index({{30, 10}, {kNone, kNone}}, true), 38), ErrorCode::kCorrupt,
               "out of range");
  expect_error(check(make_index({{kNone - 10, 100}, {kNone, kNone}}, true), kNone),
               ErrorCode::kCorrupt, "overflows");
  expect_error(check(make_index({{kNone - 1, 2}, {kNone, kNone}}, true), kNone),
               ErrorCode::kCorrupt, "overflows");
  expect_error(check(make_index({{kNone, 2}, {kNone, kNone}}, true), 100), ErrorCode::kCorrupt,
               "half empty");
  expect_error(check(make_index({{0, 2}, {4, kNone}}, true), 100), ErrorCode::kCorrupt,
               "half empty");
  // With an unknown shard size, range is not checked, but overflow still is.
  layout.decode_index(make_index({{1000, 10}, {kNone, kNone}}, true).data(), 36, kNone, out);
  EXPECT_EQ(out[0].offset, 1000u);
}

TEST(ShardBadInput, WholeShardDecode) {
  auto chain = CodecChain::prepare({sharding({2}, {bytes_codec(), codec(CodecId::kZstd)}, true)},
                                   {4}, DType::kUInt8);
  const auto good = encode(*chain, {1, 2, 3, 4});
  ASSERT_EQ(decode(*chain, good), (std::vector<uint8_t>{1, 2, 3, 4}));
  expect_error(decoding(*chain, {}), ErrorCode::kCorrupt, "sharding_indexed: shard smaller than its index");
  expect_error(decoding(*chain, std::vector<uint8_t>(good.begin() + 1, good.end())),
               ErrorCode::kCorrupt, "sharding_indexed");
  auto truncated = std::vector<uint8_t>(good.begin(), good.end() - 1);
  expect_error(decoding(*chain, truncated), ErrorCode::kCorrupt, "sharding_indexed");

  // An entry that points into the index region itself.
  auto layout_chain = CodecChain::prepare({sharding({2}, {bytes_codec()}, false, false)}, {4},
                                          DType::kUInt8);
  auto into_index = make_index({{0, 2}, {kNone, kNone}}, false);
  into_index.push_back(9);
  into_index.push_back(9);
  expect_error(decoding(*layout_chain, into_index), ErrorCode::kCorrupt,
               "sharding_indexed: inner chunk overlaps the shard index");

  // A corrupt inner chunk: the error names the shard, the inner chunk and the inner codec.
  auto bad_inner = good;
  bad_inner[0] ^= 0xFF;  // zstd magic of inner chunk 0
  expect_error(decoding(*chain, bad_inner), ErrorCode::kCorrupt,
               "sharding_indexed: inner chunk (0): zstd");
  // An inner entry of the wrong size for an uncompressed inner chunk.
  auto raw = CodecChain::prepare({sharding({2}, {bytes_codec()}, false, false)}, {4},
                                 DType::kUInt8);
  auto shard = make_index({{32, 3}, {kNone, kNone}}, false);
  shard.insert(shard.end(), {5, 6, 7});
  expect_error(decoding(*raw, shard), ErrorCode::kCorrupt,
               "inner chunk (0): bytes: chunk size mismatch (expected=2, got=3)");
  // Fill-only decode: all entries empty.
  auto empty = make_index({{kNone, kNone}, {kNone, kNone}}, false);
  EXPECT_EQ(decode(*raw, empty), (std::vector<uint8_t>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace voxcore

namespace voxcore {
namespace {

// gunzip: the NIfTI .gz path. Members concatenated (parallel writers) and zero padding decode
// to the concatenated payloads; output past cap or bad bytes raise kCorrupt.
TEST(Gunzip, MembersPaddingAndBounds) {
  std::vector<uint8_t> a(100000), b(70001);
  std::mt19937 rng(5);
  for (auto& v : a) v = static_cast<uint8_t>(rng() % 7);
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  ByteBuffer one, two;
  detail::deflate_encode(CodecId::kGzip, a.data(), a.size(), 1, one);
  detail::deflate_encode(CodecId::kGzip, b.data(), b.size(), 6, two);
  std::vector<uint8_t> file(one.data(), one.data() + one.size());
  file.insert(file.end(), two.data(), two.data() + two.size());
  file.insert(file.end(), 8, 0);  // trailing zero padding
  std::vector<uint8_t> out(a.size() + b.size() + 10, 0xEE);
  ASSERT_EQ(gunzip(file.data(), file.size(), out.data(), out.size()), a.size() + b.size());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), out.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), out.begin() + static_cast<std::ptrdiff_t>(a.size())));
  const auto code_of = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kUnavailable;  // "no throw"
  };
  EXPECT_EQ(code_of([&] { gunzip(file.data(), file.size(), out.data(), a.size() + 5); }), ErrorCode::kCorrupt);
  std::vector<uint8_t> bad = file;
  bad[one.size() / 2] ^= 0xFF;
  EXPECT_EQ(code_of([&] { gunzip(bad.data(), bad.size(), out.data(), out.size()); }), ErrorCode::kCorrupt);
  EXPECT_EQ(code_of([&] { gunzip(file.data(), one.size() - 3, out.data(), out.size()); }), ErrorCode::kCorrupt);
  EXPECT_EQ(code_of([&] { gunzip(file.data(), 0, out.data(), out.size()); }), ErrorCode::kCorrupt);
  // discard_excess: what fits is kept (inside the first member, or exactly at its end), the rest
  // is decoded, checked and dropped; damage past cap is still refused.
  for (std::size_t cap : {std::size_t{5000}, a.size(), a.size() + 7}) {
    std::vector<uint8_t> part(cap + 1, 0xEE);
    ASSERT_EQ(gunzip(file.data(), file.size(), part.data(), cap, true), cap);
    EXPECT_TRUE(std::equal(part.begin(), part.begin() + static_cast<std::ptrdiff_t>(std::min(cap, a.size())), a.begin()));
    EXPECT_EQ(part[cap], 0xEE) << "wrote past cap";
    std::vector<uint8_t> late = file;
    late[one.size() + two.size() / 2] ^= 0xFF;  // inside the second member
    EXPECT_EQ(code_of([&] { gunzip(late.data(), late.size(), part.data(), cap, true); }), ErrorCode::kCorrupt);
  }
}

}  // namespace
}  // namespace voxcore

namespace voxcore {
namespace {

TEST(GzipMembers, ParallelMembersRoundTrip) {
  std::vector<uint8_t> a(1000003);
  std::mt19937 rng(9);
  for (auto& v : a) v = static_cast<uint8_t>(rng() % 11);
  ThreadPool pool(3);
  for (std::size_t block : {std::size_t{1000}, std::size_t{65536}, std::size_t{1} << 24}) {
    ByteBuffer out;
    gzip_members(a.data(), a.size(), block == 65536 ? 6 : 1, block, out, &pool);  // libdeflate / igzip
    std::vector<uint8_t> back(a.size());
    ASSERT_EQ(gunzip(out.data(), out.size(), back.data(), back.size()), a.size());
    EXPECT_EQ(back, a) << block;
  }
  // The streaming form hands sink one member per block, in order (a gzip file of the input);
  // a throwing sink stops it. (Bytes are not compared with the buffer form: igzip's output for
  // a member can differ by a byte depending on the thread that compressed it; both are valid.)
  for (std::size_t block : {std::size_t{1000}, std::size_t{65536}}) {
    std::vector<uint8_t> streamed;
    std::size_t calls = 0;
    gzip_members(a.data(), a.size(), 1, block, [&](const uint8_t* p, std::size_t n) {
      streamed.insert(streamed.end(), p, p + n);
      ++calls;
    }, &pool);
    EXPECT_EQ(calls, (a.size() + block - 1) / block);
    std::vector<uint8_t> back(a.size());
    ASSERT_EQ(gunzip(streamed.data(), streamed.size(), back.data(), back.size()), a.size());
    EXPECT_EQ(back, a) << block;
    std::size_t seen = 0;
    try {
      gzip_members(a.data(), a.size(), 1, block, [&](const uint8_t*, std::size_t) {
        if (++seen == 3) fail(ErrorCode::kUnavailable, "sink", "disk full");
      }, &pool);
      ADD_FAILURE() << "no throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      EXPECT_EQ(seen, 3u);
    }
  }
  ByteBuffer empty;
  gzip_members(a.data(), 0, 6, 4096, empty, &pool);  // one empty member: still a gzip file
  std::vector<uint8_t> none(1);
  EXPECT_EQ(gunzip(empty.data(), empty.size(), none.data(), 1), 0u);
  try {
    gzip_members(a.data(), a.size(), 1, 0, empty, &pool);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace voxcore
