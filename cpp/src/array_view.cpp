#include "voxcore/array_view.hpp"

#include <cassert>

namespace voxcore {

ArrayView ArrayView::contiguous(void* data, DType dtype, Shape shape) {
  ArrayView view;
  view.data = data;
  view.dtype = dtype;
  view.byte_strides.assign(shape.size(), 0);
  int64_t stride = static_cast<int64_t>(itemsize(dtype));
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    view.byte_strides[i] = stride;
    stride *= shape[i];
  }
  view.shape = std::move(shape);
  return view;
}

int64_t ArrayView::num_elements() const noexcept {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

bool ArrayView::is_c_contiguous() const noexcept {
  int64_t expected = static_cast<int64_t>(itemsize(dtype));
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape[i] != 1 && byte_strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

ArrayView ArrayView::subview(const Shape& offset, const Shape& sub_shape) const {
  assert(offset.size() == shape.size() && sub_shape.size() == shape.size());
  ArrayView view = *this;
  auto* p = static_cast<uint8_t*>(data);
  for (int i = 0; i < rank(); ++i) p += offset[i] * byte_strides[i];
  view.data = p;
  view.shape = sub_shape;
  return view;
}

ArrayView ArrayView::permuted(const std::vector<int>& perm) const {
  ArrayView view = *this;
  for (std::size_t i = 0; i < perm.size(); ++i) {
    view.shape[i] = shape[perm[i]];
    view.byte_strides[i] = byte_strides[perm[i]];
  }
  return view;
}

ArrayView ArrayView::flipped(int axis) const {
  ArrayView view = *this;
  if (shape[axis] > 0) {
    view.data = static_cast<uint8_t*>(data) + (shape[axis] - 1) * byte_strides[axis];
  }
  view.byte_strides[axis] = -byte_strides[axis];
  return view;
}

}  // namespace voxcore
