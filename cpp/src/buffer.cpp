#include "voxcore/buffer.hpp"

#include <cstring>

namespace voxcore {

void ByteBuffer::reserve(std::size_t n) {
  if (n <= capacity_) return;
  std::unique_ptr<uint8_t[]> fresh(new uint8_t[n]);  // uninitialised on purpose
  if (size_ > 0) std::memcpy(fresh.get(), data_.get(), size_);
  data_ = std::move(fresh);
  capacity_ = n;
}

void ByteBuffer::resize(std::size_t n) {
  if (n > capacity_) {
    std::size_t grown = capacity_ + capacity_ / 2;
    reserve(n > grown ? n : grown);
  }
  size_ = n;
}

void ByteBuffer::append(const void* src, std::size_t n) {
  if (n == 0) return;
  std::size_t old = size_;
  resize(old + n);
  std::memcpy(data_.get() + old, src, n);
}

}  // namespace voxcore
