// error.hpp, dtype.hpp, array_view.hpp, buffer.hpp
#include <gtest/gtest.h>

#include <cstring>

#include "voxcore/array_view.hpp"
#include "voxcore/buffer.hpp"
#include "voxcore/dtype.hpp"
#include "voxcore/error.hpp"

using namespace voxcore;

TEST(Basics, ErrorMessageAndCode) {
  try {
    fail(ErrorCode::kCorrupt, "decode", "size mismatch (expected=4, got=2)");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_STREQ(e.what(), "[decode] size mismatch (expected=4, got=2)");
  }
  EXPECT_STREQ(error_code_name(ErrorCode::kUnsafePath), "UnsafePath");
}

TEST(Basics, DTypes) {
  EXPECT_EQ(itemsize(DType::kUInt16), 2u);
  EXPECT_EQ(itemsize(DType::kComplex128), 16u);
  EXPECT_EQ(swap_unit(DType::kComplex64), 4u);
  EXPECT_EQ(dtype_from_name("float32"), DType::kFloat32);
  EXPECT_STREQ(dtype_name(DType::kInt8), "int8");
  EXPECT_THROW(dtype_from_name("float128"), Error);
}

TEST(Basics, ArrayViewStrides) {
  uint16_t data[2 * 3 * 4];
  for (int i = 0; i < 24; ++i) data[i] = static_cast<uint16_t>(i);
  auto v = ArrayView::contiguous(data, DType::kUInt16, {2, 3, 4});
  EXPECT_EQ(v.byte_strides, (std::vector<int64_t>{24, 8, 2}));
  EXPECT_TRUE(v.is_c_contiguous());
  EXPECT_EQ(v.num_elements(), 24);
  auto s = v.subview({1, 1, 2}, {1, 2, 2});
  EXPECT_EQ(*static_cast<uint16_t*>(s.data), 12 + 4 + 2);
  EXPECT_FALSE(s.is_c_contiguous());
  auto p = v.permuted({2, 1, 0});
  EXPECT_EQ(p.shape, (Shape{4, 3, 2}));
  auto f = v.flipped(2);
  EXPECT_EQ(*static_cast<uint16_t*>(f.data), 3);
  EXPECT_EQ(f.byte_strides[2], -2);
}

TEST(Basics, ByteBufferKeepsPrefix) {
  ByteBuffer b;
  b.append("abc", 3);
  b.resize(1000);
  EXPECT_EQ(std::memcmp(b.data(), "abc", 3), 0);
  EXPECT_GE(b.capacity(), 1000u);
  b.resize(2);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_GE(b.capacity(), 1000u);
}
