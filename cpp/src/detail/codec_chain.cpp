// CodecChain::Impl: a chain checked and built when it is prepared (codec order, transpose,
// bytes endianness), and chunks run through it: the bytes->bytes steps, then the array->bytes
// codec (bytes, with any byte swap and transpose, or a whole shard).
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/codec_chain.hpp"
#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"
#include "voxcore/transform.hpp"

namespace voxcore {

using detail::checked_mul;
using detail::codec_name;
using detail::crc_check;
using detail::kPrepareWhere;
using detail::run_decoder;
using detail::run_encoder;
using detail::Scratch;
using detail::scratch;
using detail::shape_str;
using detail::Step;

namespace {

void set_contiguous(ArrayView& v, void* data, DType dtype, const Shape& shape) {
  v.data = data;
  v.dtype = dtype;
  v.shape.assign(shape.begin(), shape.end());
  v.byte_strides.resize(shape.size());
  int64_t stride = static_cast<int64_t>(itemsize(dtype));
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    v.byte_strides[i] = stride;
    stride *= shape[i];
  }
}

// v = src.permuted(perm) without allocating after warm-up.
void set_permuted(ArrayView& v, const ArrayView& src, const std::vector<int>& perm) {
  v.data = src.data;
  v.dtype = src.dtype;
  v.shape.resize(perm.size());
  v.byte_strides.resize(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    v.shape[i] = src.shape[perm[i]];
    v.byte_strides[i] = src.byte_strides[perm[i]];
  }
}

}  // namespace

// ---- prepare -------------------------------------------------------------------------------

std::unique_ptr<CodecChain::Impl> CodecChain::Impl::build(const std::vector<CodecSpec>& specs,
                                                          const Shape& chunk_shape, DType dtype,
                                                          const std::vector<uint8_t>& fill,
                                                          int depth) {
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.depth = depth;
  c.dtype = dtype;
  c.chunk_shape = chunk_shape;
  const int rank = static_cast<int>(chunk_shape.size());
  if (rank > kMaxRank) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere,
         "chunk rank too large (max=" + std::to_string(kMaxRank) + ", got=" + std::to_string(rank) + ")");
  }
  const auto item = static_cast<int64_t>(itemsize(dtype));
  int64_t nbytes = item;
  for (int64_t d : chunk_shape) {
    if (d <= 0) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
           "chunk shape must be positive (got=" + shape_str(chunk_shape) + ")");
    }
    nbytes = checked_mul(nbytes, d, kPrepareWhere, "chunk byte count");
  }
  if (nbytes > kMaxChunkBytes) {
    fail(ErrorCode::kLimitExceeded, kPrepareWhere,
         "chunk too large (max=" + std::to_string(kMaxChunkBytes) + " bytes, got=" +
             std::to_string(nbytes) + ", shape=" + shape_str(chunk_shape) + ")");
  }
  c.chunk_nbytes = nbytes;
  if (fill.empty()) {
    c.fill.assign(static_cast<std::size_t>(item), 0);
  } else if (fill.size() == static_cast<std::size_t>(item)) {
    c.fill = fill;
  } else {
    fail(ErrorCode::kInvalidArgument, kPrepareWhere,
         "fill_value must be itemsize bytes (expected=" + std::to_string(item) + ", got=" +
             std::to_string(fill.size()) + ")");
  }

  std::vector<int> perm(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) perm[i] = i;
  const CodecSpec* a2b = nullptr;
  int64_t size = 0;    // bytes after the codecs so far (exact or bound)
  bool exact = true;
  for (const CodecSpec& spec : specs) {
    switch (spec.id) {
      case CodecId::kTranspose: {
        if (a2b != nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string("transpose must come before the array->bytes codec (got it after ") +
                   codec_name(a2b->id) + ")");
        }
        bool ok = static_cast<int>(spec.order.size()) == rank;
        std::vector<bool> seen(static_cast<std::size_t>(rank), false);
        for (std::size_t i = 0; ok && i < spec.order.size(); ++i) {
          const int o = spec.order[i];
          ok = o >= 0 && o < rank && !seen[o];
          if (ok) seen[o] = true;
        }
        if (!ok) {
          std::string got;
          for (int o : spec.order) got += (got.empty() ? "" : ", ") + std::to_string(o);
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               "transpose: order is not a permutation of the chunk axes (rank=" +
                   std::to_string(rank) + ", got=[" + got + "])");
        }
        std::vector<int> composed(perm.size());
        for (int i = 0; i < rank; ++i) composed[i] = perm[spec.order[i]];
        perm.swap(composed);
        break;
      }
      case CodecId::kBytes:
      case CodecId::kSharding:
      case CodecId::kTiff:
        if (a2b != nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string("more than one array->bytes codec (") + codec_name(spec.id) +
                   " after " + codec_name(a2b->id) + ")");
        }
        a2b = &spec;
        break;
      case CodecId::kBlosc:
      case CodecId::kZstd:
      case CodecId::kLz4:
      case CodecId::kGzip:
      case CodecId::kZlib:
      case CodecId::kCrc32c:
        if (a2b == nullptr) {
          fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
               std::string(codec_name(spec.id)) +
                   " (bytes->bytes) must come after the array->bytes codec");
        }
        break;
      default:
        fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
             "unknown codec id (got=" + std::to_string(static_cast<int>(spec.id)) + ")");
    }
  }
  if (a2b == nullptr) {
    fail(ErrorCode::kInvalidMetadata, kPrepareWhere,
         "codec chain has no array->bytes codec (expected bytes or sharding_indexed)");
  }

  bool identity = true;
  for (int i = 0; i < rank; ++i) identity = identity && perm[i] == i;
  c.stored_shape.resize(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) c.stored_shape[i] = chunk_shape[perm[i]];
  if (!identity) c.perm = std::move(perm);

  c.a2b = a2b->id;
  if (a2b->id == CodecId::kTiff) {
    if (specs.size() != 1) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere, "tiff is a chain of its own (no other codecs)");
    }
    c.tiff = detail::TiffTile::prepare(*a2b, chunk_shape, dtype);
    c.max_encoded = nbytes;
    return impl;
  }
  if (a2b->id == CodecId::kBytes) {
    if (a2b->endian != Endian::kLittle && a2b->endian != Endian::kBig) {
      fail(ErrorCode::kInvalidMetadata, kPrepareWhere, "bytes: unknown endian");
    }
    if (a2b->endian != kNativeEndian) c.swap = swap_unit(dtype);
    size = nbytes;
    exact = true;
  } else {
    c.add_shard_layout(*a2b, size, exact);
  }

  bool after = false;
  for (const CodecSpec& spec : specs) {
    if (&spec == a2b) {
      after = true;
    } else if (after) {
      c.add_step(spec, size, exact);
    }
  }
  c.max_encoded = size;
  return impl;
}

// ---- decode and encode ---------------------------------------------------------------------

void CodecChain::Impl::decode(const uint8_t* src, std::size_t size, const ArrayView& dst) const {
  if (tiff) {
    tiff->decode(src, size, dst);
    return;
  }
  Scratch& s = scratch(depth);
  const bool direct = a2b == CodecId::kBytes && perm.empty() && dst.is_c_contiguous();
  const uint8_t* cur = src;
  std::size_t n = size;
  int cur_buf = -1;  // which scratch buffer holds cur (-1: caller memory or dst)
  for (std::size_t k = steps.size(); k-- > 0;) {
    const Step& st = steps[k];
    if (st.id == CodecId::kCrc32c) {
      n = crc_check(cur, n);
      continue;
    }
    uint8_t* out;
    if (k == 0 && direct) {
      out = static_cast<uint8_t*>(dst.data);  // dec_size == chunk_nbytes here
      cur_buf = -1;
    } else {
      const int b = cur_buf == 0 ? 1 : 0;
      s.bufs[b].resize(static_cast<std::size_t>(st.dec_size));
      out = s.bufs[b].data();
      cur_buf = b;
    }
    n = run_decoder(st, cur, n, out);
    cur = out;
  }

  if (a2b == CodecId::kSharding) {
    if (perm.empty()) {
      decode_shard(cur, n, dst);
    } else {
      set_permuted(s.stored, dst, perm);
      decode_shard(cur, n, s.stored);
    }
    return;
  }
  if (n != static_cast<uint64_t>(chunk_nbytes)) {
    detail::corrupt(CodecId::kBytes, "chunk size mismatch (expected=" + std::to_string(chunk_nbytes) +
                                         ", got=" + std::to_string(n) + ")");
  }
  const std::size_t count = n / swap;  // itemsize is a multiple of the swap unit
  if (direct) {
    if (cur != dst.data) std::memcpy(dst.data, cur, n);
    if (swap > 1) byteswap_inplace(dst.data, count, swap);
    return;
  }
  if (swap > 1) {
    if (cur_buf < 0) {
      s.bufs[0].resize(n);
      std::memcpy(s.bufs[0].data(), cur, n);
      cur = s.bufs[0].data();
    }
    byteswap_inplace(const_cast<uint8_t*>(cur), count, swap);
  }
  set_contiguous(s.tmp, const_cast<uint8_t*>(cur), dtype, stored_shape);
  if (perm.empty()) {
    copy(s.tmp, dst);
  } else {
    set_permuted(s.stored, dst, perm);
    copy(s.tmp, s.stored);
  }
}

void CodecChain::Impl::encode_append(const ArrayView& src, ByteBuffer& out) const {
  if (tiff) fail(ErrorCode::kUnsupported, detail::kEncodeWhere, "tiff: TIFF tiles are read only");
  Scratch& s = scratch(depth);
  const ArrayView* stored = &src;
  if (!perm.empty()) {
    set_permuted(s.stored, src, perm);
    stored = &s.stored;
  }
  ByteBuffer& target = steps.empty() ? out : s.bufs[0];
  if (!steps.empty()) target.clear();
  if (a2b == CodecId::kBytes) {
    const std::size_t base = target.size();
    const auto n = static_cast<std::size_t>(chunk_nbytes);
    target.resize(base + n);
    uint8_t* p = target.data() + base;
    if (stored->is_c_contiguous()) {
      std::memcpy(p, stored->data, n);
    } else {
      set_contiguous(s.tmp, p, dtype, stored_shape);
      copy(*stored, s.tmp);
    }
    if (swap > 1) byteswap_inplace(p, n / swap, swap);
  } else {
    encode_shard(*stored, target);
  }
  int cur = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const bool last = k + 1 == steps.size();
    ByteBuffer& next = last ? out : s.bufs[1 - cur];
    if (!last) next.clear();
    run_encoder(steps[k], s.bufs[cur].data(), s.bufs[cur].size(), next);
    cur = 1 - cur;
  }
}

}  // namespace voxcore
