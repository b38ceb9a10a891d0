#pragma once
// Private: decoding one TIFF tile or strip (CodecId::kTiff). tiff_tile.cpp checks the parameters
// against the chunk and runs the decompressor, byte order and predictor; the decompressors that
// are TIFF's own live beside it (tiff_jpeg.cpp: JPEG with shared tables through libjpeg-turbo;
// tiff_lzw.cpp: LZW and PackBits).
//
// Every decoder writes into a caller-owned buffer of `cap` bytes and never past it, and returns
// how many it wrote; a stream that claims more than cap is refused (kCorrupt), never allocated.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "voxcore/array_view.hpp"
#include "voxcore/codec.hpp"
#include "voxcore/dtype.hpp"

namespace voxcore::detail {

// The prepared decoder of one kind of tile: chunk geometry and the tags that say how to decode.
struct TiffTile {
  TiffCodecParams p;
  Endian endian = Endian::kLittle;
  DType dtype = DType::kUInt8;
  int64_t rows = 0, cols = 0;  // of a whole tile (strip)
  int64_t row_bytes = 0;       // cols * samples * itemsize
  int64_t nbytes = 0;          // rows * row_bytes

  // Checks params against the chunk shape and dtype (kInvalidMetadata / kUnsupported).
  static std::unique_ptr<TiffTile> prepare(const CodecSpec& spec, const Shape& chunk_shape,
                                           DType dtype);
  // Decodes src into dst, a view of the whole tile (any strides). A short last strip leaves its
  // missing rows zero. Throws kCorrupt naming what is wrong.
  void decode(const uint8_t* src, std::size_t n, const ArrayView& dst) const;
  // Decodes only [start, start + count) of the tile into dst (shape == count) when that costs
  // less than a whole decode (JPEG: rows before the part skipped, rows after it not decoded,
  // columns cropped), giving exactly a whole decode's pixels there. False, nothing written: it
  // cannot (another compression, or dst's rows are not laid out as the tile's).
  bool decode_part(const uint8_t* src, std::size_t n, const Shape& start, const Shape& count,
                   const ArrayView& dst) const;
};

// A part of a JPEG frame: rows [r0, r1), columns [c0, c1).
struct JpegPart {
  int64_t r0, r1, c0, c1;
};

// JPEG (tiff_jpeg.cpp): decodes a baseline or progressive 8-bit stream, after the shared tables
// when given, into rows of `row_stride` bytes at dst; the frame must be `cols` wide and `rows`
// or `alt_rows` (a short last strip, 0: none) high with `samples` components. ycbcr: the stream
// holds YCbCr (converted to RGB); otherwise RGB or gray as stored. Returns the rows decoded.
// With part, only those rows and columns are written (row 0 of dst is the part's first row) and
// the part's row count is returned.
int64_t jpeg_decode(const uint8_t* tables, std::size_t tables_n, const uint8_t* src,
                    std::size_t n, bool ycbcr, int samples, int64_t cols, int64_t rows,
                    int64_t alt_rows, uint8_t* dst, int64_t row_stride,
                    const JpegPart* part = nullptr);

// TIFF LZW (MSB-first codes, 9 to 12 bits, code width grows one code early) and PackBits
// (tiff_lzw.cpp).
std::size_t lzw_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap);
std::size_t packbits_decode(const uint8_t* src, std::size_t n, uint8_t* dst, std::size_t cap);

}  // namespace voxcore::detail
