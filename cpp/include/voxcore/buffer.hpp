#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "voxcore/api.hpp"

namespace voxcore {

// A growable byte buffer whose new bytes are left uninitialised (no memset on resize), so scratch
// buffers reused across chunks cost nothing per chunk. Move-only.
class VOXCORE_API ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(std::size_t size) { resize(size); }
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  uint8_t* data() noexcept { return data_.get(); }
  const uint8_t* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }

  // Keeps the first min(old, n) bytes; bytes beyond are uninitialised. Never shrinks capacity.
  void resize(std::size_t n);
  void reserve(std::size_t n);
  void clear() noexcept { size_ = 0; }
  void append(const void* src, std::size_t n);

 private:
  std::unique_ptr<uint8_t[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace voxcore
