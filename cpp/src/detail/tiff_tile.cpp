// TiffTile: one TIFF tile or strip decoded into its chunk: decompression (straight into the
// destination when its rows are laid out as the tile's), then byte order and predictor.
#include "detail/tiff_tile.hpp"

#include <cstring>
#include <string>

#include "detail/codec_ops.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore::detail {

namespace {

[[noreturn]] void bad_params(ErrorCode code, const std::string& what) {
  fail(code, kPrepareWhere, "tiff: " + what);
}

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16;
}

// Horizontal differencing undone in place on one row of `count` values, `samples` apart.
template <typename T>
void undo_horizontal(uint8_t* row, int64_t count, int samples) {
  T* v = reinterpret_cast<T*>(row);
  for (int64_t i = samples; i < count; ++i) v[i] = static_cast<T>(v[i] + v[i - samples]);
}

// The floating-point predictor undone on one row of `count` values of `item` bytes: bytes were
// differenced `samples` apart over the row, after being split into byte planes, most
// significant plane first. The result is in native byte order.
void undo_floating_point(uint8_t* row, int64_t count, int samples, int item, ByteBuffer& tmp) {
  const int64_t n = count * item;
  for (int64_t i = samples; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + row[i - samples]);
  tmp.resize(static_cast<std::size_t>(n));
  std::memcpy(tmp.data(), row, static_cast<std::size_t>(n));
  for (int64_t k = 0; k < count; ++k) {
    for (int b = 0; b < item; ++b) {
      const int plane = kNativeEndian == Endian::kLittle ? item - 1 - b : b;
      row[k * item + b] = tmp.data()[plane * count + k];
    }
  }
}

struct TileScratch {
  ByteBuffer tile;
  ByteBuffer row;
  ArrayView view;
};

TileScratch& tile_scratch() {
  thread_local TileScratch s;
  return s;
}

}  // namespace

std::unique_ptr<TiffTile> TiffTile::prepare(const CodecSpec& spec, const Shape& shape, DType dtype) {
  auto t = std::make_unique<TiffTile>();
  t->p = spec.tiff;
  t->endian = spec.endian;
  t->dtype = dtype;
  const TiffCodecParams& p = t->p;
  switch (p.compression) {
    case 1: case 5: case 7: case 8: case 32946: case 32773: case 50000: break;
    default:
      bad_params(ErrorCode::kUnsupported,
                 "compression " + std::to_string(p.compression) + " is not decoded by the core");
  }
  const int rank = static_cast<int>(shape.size());
  const int axes = p.samples > 1 ? 3 : 2;
  if (p.samples < 1 || rank < axes || (p.samples > 1 && shape[rank - 1] != p.samples)) {
    bad_params(ErrorCode::kInvalidMetadata,
               "chunk shape does not end with (rows, cols" + std::string(p.samples > 1 ? ", samples" : "") +
                   ") (samples=" + std::to_string(p.samples) + ", rank=" + std::to_string(rank) + ")");
  }
  for (int i = 0; i < rank - axes; ++i) {
    if (shape[i] != 1) bad_params(ErrorCode::kInvalidMetadata, "a tile's leading chunk axes must be 1");
  }
  const auto item = static_cast<int64_t>(itemsize(dtype));
  t->rows = shape[rank - axes];
  t->cols = shape[rank - axes + 1];
  t->row_bytes = t->cols * p.samples * item;
  t->nbytes = t->rows * t->row_bytes;
  if (p.last_rows < 0 || p.last_rows >= t->rows) {
    bad_params(ErrorCode::kInvalidMetadata, "last strip rows out of range (rows=" + std::to_string(t->rows) +
                                                ", got=" + std::to_string(p.last_rows) + ")");
  }
  if (p.compression == 7) {
    if (dtype != DType::kUInt8) bad_params(ErrorCode::kUnsupported, "JPEG tiles other than 8-bit");
    if (p.samples != 1 && p.samples != 3) {
      bad_params(ErrorCode::kUnsupported, "JPEG tiles of " + std::to_string(p.samples) + " samples");
    }
    if (p.predictor != 1) bad_params(ErrorCode::kInvalidMetadata, "JPEG tiles take no predictor");
  }
  if (p.predictor == 2 && is_float(dtype)) {
    bad_params(ErrorCode::kInvalidMetadata, "horizontal predictor on floating-point samples");
  }
  if (p.predictor == 3 && !is_float(dtype)) {
    bad_params(ErrorCode::kInvalidMetadata, "floating-point predictor on integer samples");
  }
  if (p.predictor < 1 || p.predictor > 3) {
    bad_params(ErrorCode::kUnsupported, "predictor " + std::to_string(p.predictor));
  }
  return t;
}

void TiffTile::decode(const uint8_t* src, std::size_t n, const ArrayView& dst) const {
  const int rank = static_cast<int>(dst.shape.size());
  const auto item = static_cast<int64_t>(itemsize(dtype));
  const int axes = p.samples > 1 ? 3 : 2;
  const int row_axis = rank - axes;
  // The rows of dst are laid out as the tile's (samples interleaved, columns packed)?
  bool rows_direct = dst.byte_strides[row_axis + 1] == p.samples * item &&
                     (p.samples == 1 || dst.byte_strides[rank - 1] == item);
  const int64_t row_stride = dst.byte_strides[row_axis];
  const bool contiguous = rows_direct && row_stride == row_bytes;
  TileScratch& s = tile_scratch();

  uint8_t* out;
  int64_t stride;
  if (contiguous || (rows_direct && p.compression == 7)) {
    out = static_cast<uint8_t*>(dst.data);
    stride = row_stride;
  } else {
    s.tile.resize(static_cast<std::size_t>(nbytes));
    out = s.tile.data();
    stride = row_bytes;
    rows_direct = false;
  }

  int64_t rows_got = rows;
  if (p.compression == 7) {
    const uint8_t* tables = p.jpeg_tables.empty() ? nullptr : p.jpeg_tables.data();
    rows_got = jpeg_decode(tables, p.jpeg_tables.size(), src, n, p.photometric == 6, p.samples, cols,
                           rows, p.last_rows, out, stride);
  } else {
    const auto cap = static_cast<std::size_t>(nbytes);
    std::size_t got = 0;
    switch (p.compression) {
      case 1:
        got = n < cap ? n : cap;  // a strip may hold more bytes than its rows need
        std::memcpy(out, src, got);
        break;
      case 5: got = lzw_decode(src, n, out, cap); break;
      case 32773: got = packbits_decode(src, n, out, cap); break;
      case 50000: got = zstd_decode(src, n, out, cap, /*exact=*/false); break;
      default: got = deflate_decode(CodecId::kZlib, src, n, out, cap, /*exact=*/false); break;
    }
    const auto last = static_cast<std::size_t>(p.last_rows * row_bytes);
    if (got != cap && !(p.last_rows > 0 && got == last)) {
      corrupt(CodecId::kTiff, "tile decodes to " + std::to_string(got) + " bytes (expected=" +
                                  std::to_string(cap) +
                                  (p.last_rows > 0 ? " or " + std::to_string(last) : std::string()) + ")");
    }
    rows_got = static_cast<int64_t>(got) / row_bytes;
  }
  for (int64_t r = rows_got; r < rows; ++r) std::memset(out + r * stride, 0, static_cast<std::size_t>(row_bytes));

  const int64_t count = cols * p.samples;
  const bool swap = item > 1 && endian != kNativeEndian && p.predictor != 3;
  for (int64_t r = 0; r < rows_got && (swap || p.predictor != 1); ++r) {
    uint8_t* row = out + r * stride;
    if (p.predictor == 3) {
      undo_floating_point(row, count, p.samples, static_cast<int>(item), s.row);
      continue;
    }
    if (swap) byteswap_inplace(row, static_cast<std::size_t>(count), static_cast<std::size_t>(item));
    if (p.predictor == 2) {
      switch (item) {
        case 1: undo_horizontal<uint8_t>(row, count, p.samples); break;
        case 2: undo_horizontal<uint16_t>(row, count, p.samples); break;
        case 4: undo_horizontal<uint32_t>(row, count, p.samples); break;
        default: undo_horizontal<uint64_t>(row, count, p.samples); break;
      }
    }
  }

  if (out != dst.data) {  // through the scratch tile: place it in dst
    s.view.data = out;
    s.view.dtype = dtype;
    s.view.shape = dst.shape;
    s.view.byte_strides.resize(dst.shape.size());
    int64_t st = item;
    for (int i = rank - 1; i >= 0; --i) {
      s.view.byte_strides[i] = st;
      st *= dst.shape[i];
    }
    copy(s.view, dst);
  }
}

bool TiffTile::decode_part(const uint8_t* src, std::size_t n, const Shape& start, const Shape& count,
                           const ArrayView& dst) const {
  if (p.compression != 7) return false;
  const int rank = static_cast<int>(dst.shape.size());
  const int axes = p.samples > 1 ? 3 : 2;
  const int ra = rank - axes;
  if (p.samples > 1 && (start[rank - 1] != 0 || count[rank - 1] != p.samples)) return false;
  if (dst.byte_strides[ra + 1] != p.samples || (p.samples > 1 && dst.byte_strides[rank - 1] != 1)) return false;
  const JpegPart part{start[ra], start[ra] + count[ra], start[ra + 1], start[ra + 1] + count[ra + 1]};
  // a short last strip's frame ends early: the rows past it are zero, as in a whole decode
  if (p.last_rows > 0 && part.r1 > p.last_rows) return false;
  const uint8_t* tables = p.jpeg_tables.empty() ? nullptr : p.jpeg_tables.data();
  jpeg_decode(tables, p.jpeg_tables.size(), src, n, p.photometric == 6, p.samples, cols, rows, p.last_rows,
              static_cast<uint8_t*>(dst.data), dst.byte_strides[ra], &part);
  return true;
}

}  // namespace voxcore::detail
