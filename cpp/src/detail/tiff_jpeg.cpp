// JPEG tiles and strips through libjpeg-turbo's libjpeg API: the shared JPEGTables stream (as
// Aperio and tifffile write it) is read into the decoder before each abbreviated tile stream,
// scanlines go straight into the destination rows, and every libjpeg error or corrupt-data
// warning becomes kCorrupt. libjpeg reports errors by longjmp, so the part that
// calls it (run) holds no object with a destructor.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include <jpeglib.h>
}

#include "detail/codec_ops.hpp"
#include "detail/tiff_tile.hpp"

namespace voxcore::detail {

namespace {

struct ErrorSink {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorSink*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) mean corrupt data (a truncated stream is padded with gray, say): refused.
void on_message(j_common_ptr c, int level) {
  if (level < 0) on_error(c);
}

struct Decoder {
  jpeg_decompress_struct cinfo{};
  ErrorSink err{};
  bool used = false;  // cinfo may hold tables of an earlier stream
  Decoder() {
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = on_error;
    err.mgr.emit_message = on_message;
    err.message[0] = '\0';
    jpeg_create_decompress(&cinfo);
  }
  ~Decoder() { jpeg_destroy_decompress(&cinfo); }
};

Decoder& decoder() {
  thread_local Decoder d;
  return d;
}

enum Outcome { kOk = 0, kLibjpeg = 1, kSize = 2, kTables = 3 };

struct Request {
  const uint8_t* tables;
  std::size_t tables_n;
  bool load_tables;
  const uint8_t* src;
  std::size_t n;
  bool ycbcr;
  int samples;
  JDIMENSION cols;
  JDIMENSION rows;
  JDIMENSION alt_rows;
  uint8_t* dst;
  int64_t row_stride;
  // a part: rows [r0, r1) and columns [c0, c1) only (r1 == 0: the whole frame)
  JDIMENSION r0, r1, c0, c1;
  uint8_t* row;  // a scratch row of the frame's width
  // out
  JDIMENSION got_w, got_h;
  int got_components, got_precision;
};

int run(jpeg_decompress_struct* c, ErrorSink* err, Request* r) {
  if (setjmp(err->jump)) return kLibjpeg;
  if (r->load_tables) {
    jpeg_mem_src(c, const_cast<unsigned char*>(r->tables), static_cast<unsigned long>(r->tables_n));
    if (jpeg_read_header(c, FALSE) != JPEG_HEADER_TABLES_ONLY) return kTables;
  }
  jpeg_mem_src(c, const_cast<unsigned char*>(r->src), static_cast<unsigned long>(r->n));
  jpeg_read_header(c, TRUE);
  r->got_w = c->image_width;
  r->got_h = c->image_height;
  r->got_components = c->num_components;
  r->got_precision = c->data_precision;
  if (c->image_width != r->cols || (c->image_height != r->rows && c->image_height != r->alt_rows) ||
      c->num_components != r->samples || c->data_precision != 8) {
    return kSize;
  }
  if (r->samples == 3) {
    if (r->ycbcr) {
      c->jpeg_color_space = JCS_YCbCr;
    } else if (!c->saw_JFIF_marker) {
      c->jpeg_color_space = JCS_RGB;  // photometric RGB: the components are stored as they are
    }
    c->out_color_space = JCS_RGB;
  } else {
    c->out_color_space = JCS_GRAYSCALE;
  }
  jpeg_start_decompress(c);
  if (r->r1 > 0) {
    // Decode a margin of one iMCU around the part, so that the upsampling of its edge pixels sees
    // the same neighbours as in a whole decode; the rows before it are skipped (entropy-decoded
    // only), the rows after it never decoded.
    const JDIMENSION mx = static_cast<JDIMENSION>(c->max_h_samp_factor * DCTSIZE);
    const JDIMENSION my = static_cast<JDIMENSION>(c->max_v_samp_factor * DCTSIZE);
    JDIMENSION x0 = r->c0 > mx ? r->c0 - mx : 0;
    JDIMENSION w = (r->c1 + mx < c->output_width ? r->c1 + mx : c->output_width) - x0;
    jpeg_crop_scanline(c, &x0, &w);
    const JDIMENSION skip = r->r0 / my > 1 ? (r->r0 / my - 1) * my : 0;
    if (skip > 0) jpeg_skip_scanlines(c, skip);
    const std::size_t px = static_cast<std::size_t>(r->samples);
    while (c->output_scanline < r->r1) {
      const JDIMENSION at = c->output_scanline;
      JSAMPROW one = r->row;
      jpeg_read_scanlines(c, &one, 1);
      if (at >= r->r0) {
        std::memcpy(r->dst + static_cast<int64_t>(at - r->r0) * r->row_stride, r->row + (r->c0 - x0) * px,
                    (r->c1 - r->c0) * px);
      }
    }
    jpeg_abort_decompress(c);
    return kOk;
  }
  JSAMPROW rows[16];
  while (c->output_scanline < c->output_height) {
    const JDIMENSION at = c->output_scanline;
    JDIMENSION k = 0;
    for (; k < 16 && at + k < c->output_height; ++k) rows[k] = r->dst + static_cast<int64_t>(at + k) * r->row_stride;
    jpeg_read_scanlines(c, rows, k);
  }
  jpeg_abort_decompress(c);  // the frame is read; what follows it does not matter
  return kOk;
}

}  // namespace

int64_t jpeg_decode(const uint8_t* tables, std::size_t tables_n, const uint8_t* src, std::size_t n,
                    bool ycbcr, int samples, int64_t cols, int64_t rows, int64_t alt_rows,
                    uint8_t* dst, int64_t row_stride, const JpegPart* part) {
  if (n == 0) corrupt(CodecId::kTiff, "JPEG: empty stream");
  Decoder& d = decoder();
  if (tables_n == 0 && d.used) {  // a stream of its own: no tables left from an earlier one
    jpeg_destroy_decompress(&d.cinfo);
    jpeg_create_decompress(&d.cinfo);
  }
  d.used = true;
  Request r{};
  r.tables = tables;
  r.tables_n = tables_n;
  // read before every tile: a tile may carry tables of its own that replace the shared ones
  r.load_tables = tables_n > 0;
  r.src = src;
  r.n = n;
  r.ycbcr = ycbcr;
  r.samples = samples;
  r.cols = static_cast<JDIMENSION>(cols);
  r.rows = static_cast<JDIMENSION>(rows);
  r.alt_rows = static_cast<JDIMENSION>(alt_rows > 0 ? alt_rows : rows);
  r.dst = dst;
  r.row_stride = row_stride;
  thread_local std::vector<uint8_t> row;
  if (part != nullptr) {
    r.r0 = static_cast<JDIMENSION>(part->r0);
    r.r1 = static_cast<JDIMENSION>(part->r1);
    r.c0 = static_cast<JDIMENSION>(part->c0);
    r.c1 = static_cast<JDIMENSION>(part->c1);
    row.resize(static_cast<std::size_t>(cols * samples));
    r.row = row.data();
  }
  const int outcome = run(&d.cinfo, &d.err, &r);
  if (outcome == kOk) return part != nullptr ? part->r1 - part->r0 : static_cast<int64_t>(r.got_h);
  jpeg_abort_decompress(&d.cinfo);
  switch (outcome) {
    case kSize:
      corrupt(CodecId::kTiff, "JPEG frame is " + std::to_string(r.got_w) + "x" + std::to_string(r.got_h) + " with " +
                                  std::to_string(r.got_components) + " components of " +
                                  std::to_string(r.got_precision) + " bits (expected=" + std::to_string(cols) + "x" +
                                  std::to_string(rows) + " with " + std::to_string(samples) +
                                  " components of 8 bits)");
    case kTables: corrupt(CodecId::kTiff, "JPEGTables is not a tables-only JPEG stream");
    default: corrupt(CodecId::kTiff, std::string("JPEG: ") + d.err.message);
  }
}

}  // namespace voxcore::detail
