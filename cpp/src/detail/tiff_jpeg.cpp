// JPEG tiles and strips through libjpeg-turbo's libjpeg API: the shared JPEGTables stream (as
// Aperio and tifffile write it) is read into the decoder before each abbreviated tile stream,
// scanlines go straight into the destination rows, and every libjpeg error or corrupt-data
// warning becomes kCorrupt. libjpeg reports errors by longjmp, so the part that
// calls it (run) holds no object with a destructor.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

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
                    uint8_t* dst, int64_t row_stride) {
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
  const int outcome = run(&d.cinfo, &d.err, &r);
  if (outcome == kOk) return static_cast<int64_t>(r.got_h);
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
