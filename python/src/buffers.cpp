#include "buffers.hpp"

#include <string>

#include "voxcore/error.hpp"

namespace voxcore::python {

DType dtype_from_numpy(const py::dtype& dtype) {
  const char kind = dtype.kind();
  const auto size = dtype.itemsize();
  const char order = dtype.byteorder();
  const bool native = order == '=' || order == '|' ||
                      (order == '<' && kNativeEndian == Endian::kLittle) ||
                      (order == '>' && kNativeEndian == Endian::kBig);
  if (native) {
    switch (kind) {
      case 'b': if (size == 1) return DType::kBool; break;
      case 'i':
        if (size == 1) return DType::kInt8;
        if (size == 2) return DType::kInt16;
        if (size == 4) return DType::kInt32;
        if (size == 8) return DType::kInt64;
        break;
      case 'u':
        if (size == 1) return DType::kUInt8;
        if (size == 2) return DType::kUInt16;
        if (size == 4) return DType::kUInt32;
        if (size == 8) return DType::kUInt64;
        break;
      case 'f':
        if (size == 2) return DType::kFloat16;
        if (size == 4) return DType::kFloat32;
        if (size == 8) return DType::kFloat64;
        break;
      case 'c':
        if (size == 8) return DType::kComplex64;
        if (size == 16) return DType::kComplex128;
        break;
      default: break;
    }
  }
  fail(ErrorCode::kInvalidArgument, "dtype_from_numpy",
       "unsupported numpy dtype (got=" + std::string(py::str(dtype)) + ")");
}

py::dtype numpy_dtype(DType dtype) { return py::dtype(dtype_name(dtype)); }

ArrayView view_of(const py::array& array, bool writable) {
  if (writable && !array.writeable()) {
    fail(ErrorCode::kInvalidArgument, "view_of", "output array is read-only");
  }
  ArrayView view;
  view.data = const_cast<void*>(array.data());
  view.dtype = dtype_from_numpy(array.dtype());
  const auto rank = static_cast<std::size_t>(array.ndim());
  view.shape.resize(rank);
  view.byte_strides.resize(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    view.shape[i] = static_cast<int64_t>(array.shape(i));
    view.byte_strides[i] = static_cast<int64_t>(array.strides(i));
  }
  return view;
}

}  // namespace voxcore::python
