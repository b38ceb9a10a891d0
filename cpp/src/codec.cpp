// CodecChain's public face: prepare, the accessors, and decode_into/encode with their argument
// checks. The chain itself lives in detail/codec_chain.cpp and the files beside it.
#include "voxcore/codec.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "detail/checked.hpp"
#include "detail/codec_chain.hpp"
#include "detail/codec_ops.hpp"
#include "voxcore/error.hpp"

namespace voxcore {

using detail::kDecodeWhere;
using detail::kEncodeWhere;
using detail::shape_str;

CodecChain::CodecChain(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CodecChain::~CodecChain() = default;

std::shared_ptr<const CodecChain> CodecChain::prepare(const std::vector<CodecSpec>& specs,
                                                      const Shape& chunk_shape, DType dtype,
                                                      const std::vector<uint8_t>& fill_value) {
  return std::shared_ptr<const CodecChain>(
      new CodecChain(Impl::build(specs, chunk_shape, dtype, fill_value, 0)));
}

const Shape& CodecChain::chunk_shape() const noexcept { return impl_->chunk_shape; }
DType CodecChain::dtype() const noexcept { return impl_->dtype; }
int64_t CodecChain::chunk_nbytes() const noexcept { return impl_->chunk_nbytes; }
const ShardLayout* CodecChain::sharding() const noexcept { return impl_->shard.get(); }
bool CodecChain::is_identity_layout() const noexcept {
  return impl_->a2b == CodecId::kBytes && impl_->perm.empty() && impl_->swap == 1;
}

namespace {
void check_view(const ArrayView& v, const CodecChain& chain, const char* where) {
  if (v.dtype != chain.dtype() || v.shape != chain.chunk_shape() ||
      v.byte_strides.size() != v.shape.size() || v.data == nullptr) {
    fail(ErrorCode::kInvalidArgument, where,
         std::string("view does not match the chunk (expected dtype=") + dtype_name(chain.dtype()) +
             " shape=" + shape_str(chain.chunk_shape()) + ", got dtype=" + dtype_name(v.dtype) +
             " shape=" + shape_str(v.shape) + (v.data == nullptr ? ", null data" : "") + ")");
  }
}
}  // namespace

void CodecChain::decode_into(const uint8_t* src, std::size_t size, const ArrayView& dst) const {
  check_view(dst, *this, kDecodeWhere);
  if (src == nullptr && size > 0) {
    fail(ErrorCode::kInvalidArgument, kDecodeWhere, "null source with non-zero size");
  }
  static const uint8_t kNothing = 0;
  impl_->decode(src != nullptr ? src : &kNothing, size, dst);
}

bool CodecChain::decode_part(const uint8_t* src, std::size_t size, const Shape& start, const Shape& count,
                             const ArrayView& dst) const {
  if (!impl_->tiff || src == nullptr || dst.data == nullptr || dst.dtype != impl_->dtype ||
      dst.shape != count || start.size() != count.size() || count.size() != impl_->chunk_shape.size()) {
    return false;
  }
  for (std::size_t i = 0; i < count.size(); ++i) {
    if (start[i] < 0 || count[i] <= 0 || start[i] > impl_->chunk_shape[i] - count[i]) return false;
  }
  return impl_->tiff->decode_part(src, size, start, count, dst);
}

void CodecChain::encode(const ArrayView& src, ByteBuffer& out) const {
  check_view(src, *this, kEncodeWhere);
  out.clear();
  impl_->encode_append(src, out);
}

}  // namespace voxcore
