// TIFF tiles: the kTiff codec (uncompressed with predictors and byte order, PackBits and LZW
// against streams from other encoders, JPEG with shared tables written by libjpeg here) and
// TiffStore (tiles by offset and byte count, and the files that lie about them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include <jpeglib.h>
}

#include "voxcore/chunked_array.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/error.hpp"
#include "voxcore/tiff_store.hpp"

namespace voxcore {
namespace {

namespace fs = std::filesystem;

CodecSpec tiff_codec(int compression, int samples = 1, int predictor = 1) {
  CodecSpec s;
  s.id = CodecId::kTiff;
  s.tiff.compression = compression;
  s.tiff.samples = samples;
  s.tiff.predictor = predictor;
  return s;
}

std::vector<uint8_t> decode(const CodecSpec& spec, const Shape& shape, DType dtype,
                            const std::vector<uint8_t>& bytes) {
  auto chain = CodecChain::prepare({spec}, shape, dtype);
  std::vector<uint8_t> out(static_cast<std::size_t>(chain->chunk_nbytes()), 0xEE);
  chain->decode_into(bytes.data(), bytes.size(), ArrayView::contiguous(out.data(), dtype, shape));
  return out;
}

template <typename F>
ErrorCode code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kUnavailable;  // nothing thrown
}

TEST(TiffTile, UncompressedWithHorizontalPredictorInEitherByteOrder) {
  // 2 rows of 3 RGB uint16 pixels, differenced along each row per sample, big-endian
  const std::vector<uint16_t> values = {100, 200, 300, 110, 190, 330, 90, 250, 300,
                                        5, 6, 7, 8, 9, 10, 11, 12, 13};
  std::vector<uint8_t> be;
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 9; ++i) {
      const uint16_t v = values[r * 9 + i];
      const uint16_t d = i < 3 ? v : static_cast<uint16_t>(v - values[r * 9 + i - 3]);
      be.push_back(static_cast<uint8_t>(d >> 8));
      be.push_back(static_cast<uint8_t>(d & 0xFF));
    }
  }
  CodecSpec spec = tiff_codec(1, 3, 2);
  spec.endian = Endian::kBig;
  const auto out = decode(spec, {2, 3, 3}, DType::kUInt16, be);
  std::vector<uint16_t> got(18);
  std::memcpy(got.data(), out.data(), 36);
  EXPECT_EQ(got, values);
}

TEST(TiffTile, PackBitsAsTheTiffSpecWritesIt) {
  // The worked example of the TIFF 6.0 specification (section 9).
  const std::vector<uint8_t> packed = {0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80,
                                       0x00, 0x2A, 0x22, 0xF7, 0xAA};
  const std::vector<uint8_t> want = {0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00,
                                     0x2A, 0x22, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA};
  EXPECT_EQ(decode(tiff_codec(32773), {1, 24}, DType::kUInt8, packed), want);
  const std::vector<uint8_t> runs_past = {0xF0, 0xAA};  // 17 bytes into a 4-byte tile
  EXPECT_EQ(code_of([&] { decode(tiff_codec(32773), {1, 4}, DType::kUInt8, runs_past); }), ErrorCode::kCorrupt);
}

TEST(TiffTile, LzwStreamFromAnotherEncoder) {
  // imagecodecs.lzw_encode(b"TOBEORNOTTOBEORTOBEORNOT#" * 40)
  const std::vector<uint8_t> lzw = {
      0x80, 0x15, 0x09, 0xe4, 0x22, 0x29, 0x3c, 0xa4, 0x4e, 0x27, 0x95, 0x20, 0x50, 0x48, 0x34, 0x2e, 0x0b, 0x07,
      0x84, 0x88, 0xe1, 0xd0, 0x68, 0x44, 0x2a, 0x07, 0x0f, 0x89, 0xc4, 0x0a, 0x91, 0x28, 0xbc, 0x52, 0x13, 0x19,
      0x8c, 0xc5, 0x63, 0x90, 0xc8, 0xd4, 0x82, 0x3b, 0x1a, 0x91, 0xc3, 0xe2, 0xb2, 0x69, 0x24, 0x8a, 0x43, 0x1f,
      0x93, 0xcb, 0xe3, 0x73, 0x29, 0x64, 0xaa, 0x23, 0x34, 0x98, 0xc9, 0xe5, 0xd3, 0xa9, 0x84, 0x92, 0x65, 0x29,
      0x8f, 0x45, 0xa7, 0xd3, 0xc9, 0x9d, 0x12, 0x6b, 0x41, 0xa0, 0x49, 0x67, 0x32, 0xd9, 0xbd, 0x1a, 0x97, 0x36,
      0xa2, 0xd3, 0x28, 0x51, 0x8a, 0x25, 0x26, 0x57, 0x4f, 0xa4, 0x4e, 0x28, 0x75, 0x2a, 0xb4, 0xf6, 0xa9, 0x5c,
      0xad, 0x57, 0xea, 0x15, 0xda, 0x9c, 0x36, 0xab, 0x61, 0xb3, 0x58, 0x29, 0xd5, 0xbb, 0x1d, 0xa0, 0xa5, 0x3f,
      0xb7, 0x5c, 0x2d, 0x76, 0x2a, 0xcd, 0xce, 0xd3, 0x6d, 0xbb, 0x5b, 0xec, 0xf7, 0x9b, 0x95, 0x4a, 0x8f, 0x28,
      0xb8, 0xde, 0xef, 0xd5, 0x8c, 0x05, 0xf3, 0x05, 0x50, 0xbf, 0xce, 0xf0, 0x76, 0xcb, 0xae, 0x2e, 0xe9, 0x85,
      0xc7, 0x5d, 0xf1, 0xb8, 0x8c, 0x26, 0x2b, 0x29, 0x8c, 0xc8, 0x65, 0xf1, 0xf9, 0x6a, 0x0e, 0x26, 0x9b, 0x91,
      0xbd, 0x57, 0x20, 0x20};
  std::string want;
  for (int i = 0; i < 40; ++i) want += "TOBEORNOTTOBEORTOBEORNOT#";
  const auto out = decode(tiff_codec(5), {40, 25}, DType::kUInt8, lzw);
  EXPECT_EQ(std::string(out.begin(), out.end()), want);
  // the same stream into a tile too small for it, and cut short
  EXPECT_EQ(code_of([&] { decode(tiff_codec(5), {20, 25}, DType::kUInt8, lzw); }), ErrorCode::kCorrupt);
  std::vector<uint8_t> cut(lzw.begin(), lzw.begin() + 60);
  EXPECT_EQ(code_of([&] { decode(tiff_codec(5), {40, 25}, DType::kUInt8, cut); }), ErrorCode::kCorrupt);
}

TEST(TiffTile, AShortLastStripIsAcceptedOnlyAtItsDeclaredLength) {
  CodecSpec spec = tiff_codec(1);
  spec.tiff.last_rows = 2;
  const std::vector<uint8_t> two_rows(8, 7);  // 2 of 4 rows of 4 bytes
  auto out = decode(spec, {4, 4}, DType::kUInt8, two_rows);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 8), two_rows);
  EXPECT_EQ(std::vector<uint8_t>(out.begin() + 8, out.end()), std::vector<uint8_t>(8, 0));
  const std::vector<uint8_t> three_rows(12, 7);
  EXPECT_EQ(code_of([&] { decode(spec, {4, 4}, DType::kUInt8, three_rows); }), ErrorCode::kCorrupt);
}

TEST(TiffTile, ParametersThatCannotDescribeATileAreRefused) {
  EXPECT_EQ(code_of([] { CodecChain::prepare({tiff_codec(34712)}, {8, 8}, DType::kUInt8); }),
            ErrorCode::kUnsupported);  // JPEG 2000: not the core's
  EXPECT_EQ(code_of([] { CodecChain::prepare({tiff_codec(7, 3)}, {8, 8, 3}, DType::kUInt16); }),
            ErrorCode::kUnsupported);  // 16-bit JPEG
  EXPECT_EQ(code_of([] { CodecChain::prepare({tiff_codec(1, 3)}, {8, 8, 4}, DType::kUInt8); }),
            ErrorCode::kInvalidMetadata);  // samples differ from the chunk's last axis
  EXPECT_EQ(code_of([] { CodecChain::prepare({tiff_codec(1, 1, 3)}, {8, 8}, DType::kUInt16); }),
            ErrorCode::kInvalidMetadata);  // floating-point predictor on integers
  CodecSpec zstd;
  zstd.id = CodecId::kZstd;
  EXPECT_EQ(code_of([&] { CodecChain::prepare({tiff_codec(1), zstd}, {8, 8}, DType::kUInt8); }),
            ErrorCode::kInvalidMetadata);
  auto chain = CodecChain::prepare({tiff_codec(8)}, {8, 8}, DType::kUInt8);
  std::vector<uint8_t> tile(64);
  ByteBuffer out;
  EXPECT_EQ(code_of([&] { chain->encode(ArrayView::contiguous(tile.data(), DType::kUInt8, {8, 8}), out); }),
            ErrorCode::kUnsupported);
}

// ---- JPEG: tables-only stream + abbreviated tile streams, as Aperio writes them --------------

struct JpegEncoder {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  JpegEncoder() {
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
  }
  ~JpegEncoder() {
    jpeg_destroy_compress(&c);
    std::free(buf);
  }
  void setup(int w, int h) {
    c.image_width = static_cast<JDIMENSION>(w);
    c.image_height = static_cast<JDIMENSION>(h);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
  }
  std::vector<uint8_t> take() {
    std::vector<uint8_t> out(buf, buf + size);
    std::free(buf);
    buf = nullptr;
    size = 0;
    return out;
  }
  std::vector<uint8_t> tables(int w, int h) {
    setup(w, h);
    jpeg_mem_dest(&c, &buf, &size);
    jpeg_write_tables(&c);
    return take();
  }
  // An abbreviated stream (no tables) of an RGB image, rows of w*3 bytes.
  std::vector<uint8_t> image(const std::vector<uint8_t>& rgb, int w, int h, bool with_tables) {
    setup(w, h);
    jpeg_mem_dest(&c, &buf, &size);
    if (!with_tables) jpeg_suppress_tables(&c, TRUE);
    jpeg_start_compress(&c, with_tables ? TRUE : FALSE);
    while (c.next_scanline < c.image_height) {
      JSAMPROW row = const_cast<JSAMPROW>(rgb.data() + c.next_scanline * w * 3);
      jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    return take();
  }
};

std::vector<uint8_t> gradient(int w, int h) {
  std::vector<uint8_t> rgb(static_cast<std::size_t>(w * h * 3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(y * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 4);
      p[1] = static_cast<uint8_t>(y * 4);
      p[2] = static_cast<uint8_t>(128);
    }
  }
  return rgb;
}

TEST(TiffTile, JpegWithSharedTablesDecodesAndLiesAreCaught) {
  JpegEncoder enc;
  const auto rgb = gradient(64, 48);
  CodecSpec spec = tiff_codec(7, 3);
  spec.tiff.photometric = 6;
  spec.tiff.jpeg_tables = enc.tables(64, 48);
  const auto tile = enc.image(rgb, 64, 48, /*with_tables=*/false);
  const auto out = decode(spec, {48, 64, 3}, DType::kUInt8, tile);
  int worst = 0;
  for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - rgb[i]));
  EXPECT_LE(worst, 8);  // quality 90 of a smooth gradient

  // into a destination whose rows are strided (a tile inside a larger read)
  auto chain = CodecChain::prepare({spec}, {48, 64, 3}, DType::kUInt8);
  std::vector<uint8_t> wide(48 * 100 * 3, 0xEE);
  ArrayView dst = ArrayView::contiguous(wide.data(), DType::kUInt8, {48, 100, 3}).subview({0, 10, 0}, {48, 64, 3});
  chain->decode_into(tile.data(), tile.size(), dst);
  for (int y = 0; y < 48; ++y) {
    ASSERT_EQ(std::memcmp(&wide[(y * 100 + 10) * 3], &out[y * 64 * 3], 64 * 3), 0) << "row " << y;
    ASSERT_EQ(wide[(y * 100 + 9) * 3 + 2], 0xEE);
    ASSERT_EQ(wide[(y * 100 + 74) * 3], 0xEE);
  }

  // a frame whose size differs from the tile's; a stream cut short; no tables at all
  EXPECT_EQ(code_of([&] { decode(spec, {32, 64, 3}, DType::kUInt8, tile); }), ErrorCode::kCorrupt);
  std::vector<uint8_t> cut(tile.begin(), tile.begin() + static_cast<long>(tile.size() / 2));
  EXPECT_EQ(code_of([&] { decode(spec, {48, 64, 3}, DType::kUInt8, cut); }), ErrorCode::kCorrupt);
  CodecSpec bare = spec;
  bare.tiff.jpeg_tables.clear();
  EXPECT_EQ(code_of([&] { decode(bare, {48, 64, 3}, DType::kUInt8, tile); }), ErrorCode::kCorrupt);
  // and the tables still work after those failures
  EXPECT_EQ(decode(spec, {48, 64, 3}, DType::kUInt8, tile), out);
}

TEST(TiffTile, AJpegPartGivesTheWholeDecodesPixels) {
  JpegEncoder enc;
  std::vector<uint8_t> rgb(96 * 80 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>((i * 2654435761u) >> 24 ^ (i / 7));
  CodecSpec spec = tiff_codec(7, 3);
  spec.tiff.photometric = 6;
  const auto tile = enc.image(rgb, 96, 80, /*with_tables=*/true);
  auto chain = CodecChain::prepare({spec}, {80, 96, 3}, DType::kUInt8);
  const auto whole = decode(spec, {80, 96, 3}, DType::kUInt8, tile);
  const int parts[][4] = {{0, 80, 0, 96}, {33, 47, 5, 90}, {0, 1, 95, 96}, {79, 80, 0, 96}, {17, 64, 40, 41}};
  for (const auto& q : parts) {
    const int64_t h = q[1] - q[0], w = q[3] - q[2];
    std::vector<uint8_t> out(static_cast<std::size_t>(h * w * 3));
    ASSERT_TRUE(chain->decode_part(tile.data(), tile.size(), {q[0], q[2], 0}, {h, w, 3},
                                   ArrayView::contiguous(out.data(), DType::kUInt8, {h, w, 3})));
    for (int64_t y = 0; y < h; ++y) {
      ASSERT_EQ(std::memcmp(&out[y * w * 3], &whole[((q[0] + y) * 96 + q[2]) * 3], w * 3), 0)
          << "part " << q[0] << ":" << q[1] << "," << q[2] << ":" << q[3] << " row " << y;
    }
  }
  // not for other compressions, nor samples taken apart
  std::vector<uint8_t> one(3);
  EXPECT_FALSE(chain->decode_part(tile.data(), tile.size(), {0, 0, 1}, {1, 1, 1},
                                  ArrayView::contiguous(one.data(), DType::kUInt8, {1, 1, 1})));
  auto raw = CodecChain::prepare({tiff_codec(1, 3)}, {80, 96, 3}, DType::kUInt8);
  EXPECT_FALSE(raw->decode_part(rgb.data(), rgb.size(), {0, 0, 0}, {1, 1, 3},
                                ArrayView::contiguous(one.data(), DType::kUInt8, {1, 1, 3})));
}

// ---- TiffStore ---------------------------------------------------------------------------

fs::path write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / ("voxcore-tiff-" + name + "-" + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                           static_cast<std::streamsize>(bytes.size()));
  return p;
}

TEST(TiffStore, ServesTilesByOffsetToAChunkedArrayAndNamesBadOnes) {
  // a 5x6 uint8 image in 4x4 tiles (2x2 grid, edge tiles padded), uncompressed, tiles stored
  // out of order with a gap, plus a tile whose byte count is 0 and one that runs past the end
  std::vector<uint8_t> file(8, 0xFF);
  std::vector<uint64_t> offsets(4), counts(4, 16);
  const int order[4] = {3, 1, 0, 2};
  for (int n : order) {
    offsets[n] = file.size();
    const int ty = n / 2, tx = n % 2;
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 4; ++x) file.push_back(static_cast<uint8_t>((ty * 4 + y) * 10 + tx * 4 + x));
    }
  }
  const fs::path path = write_file("ok", file);
  ArraySpec spec;
  spec.shape = {5, 6};
  spec.chunk_shape = {4, 4};
  spec.dtype = DType::kUInt8;
  spec.codecs = {tiff_codec(1)};
  spec.key_encoding.kind = ChunkKeyEncoding::Kind::kV2;
  spec.key_encoding.separator = '.';
  ChunkedArray arr(spec, std::make_shared<TiffStore>(path.string(), Shape{2, 2}, offsets, counts));
  std::vector<uint8_t> out(30);
  arr.read_into(Box{{0, 0}, {5, 6}}, ArrayView::contiguous(out.data(), DType::kUInt8, {5, 6}));
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 6; ++x) ASSERT_EQ(out[y * 6 + x], y * 10 + x) << y << "," << x;
  }

  auto bad = offsets;
  auto bad_counts = counts;
  bad_counts[1] = 0;
  bad[2] = file.size() - 4;
  ChunkedArray broken(spec, std::make_shared<TiffStore>(path.string(), Shape{2, 2}, bad, bad_counts));
  auto message = [&](const Box& box) {
    try {
      std::vector<uint8_t> o(static_cast<std::size_t>(box.shape[0] * box.shape[1]));
      broken.read_into(box, ArrayView::contiguous(o.data(), DType::kUInt8, box.shape));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string zero = message(Box{{0, 4}, {2, 2}});
  EXPECT_NE(zero.find("byte count 0"), std::string::npos) << zero;
  EXPECT_NE(zero.find(path.string()), std::string::npos) << zero;
  const std::string past = message(Box{{4, 0}, {1, 2}});
  EXPECT_NE(past.find("beyond the end of the file"), std::string::npos) << past;
  EXPECT_NE(past.find("tile=2"), std::string::npos) << past;

  EXPECT_EQ(code_of([&] { TiffStore(path.string(), {2, 2}, {1, 2, 3}, {1, 2, 3}); }), ErrorCode::kInvalidMetadata);
  EXPECT_EQ(code_of([&] { TiffStore("/nonexistent/x.tif", {1}, {0}, {1}); }), ErrorCode::kIo);
  TiffStore store(path.string(), {2, 2}, offsets, counts);
  ByteBuffer b;
  EXPECT_EQ(code_of([&] { store.get("2.0", ByteRange::whole(), b); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { store.get("0", ByteRange::whole(), b); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { store.set("0.0", b.data(), 0); }), ErrorCode::kUnsupported);
  TiffStore sparse(path.string(), {2, 2}, {0, offsets[1], offsets[2], offsets[3]}, {0, 16, 16, 16});
  EXPECT_FALSE(sparse.get("0.0", ByteRange::whole(), b));  // offset and count 0: no tile
  fs::remove(path);
}

}  // namespace
}  // namespace voxcore
