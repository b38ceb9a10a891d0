#pragma once
// Conversions between numpy arrays and voxcore views (no copies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "voxcore/array_view.hpp"
#include "voxcore/dtype.hpp"
#include "voxcore/pyramid.hpp"

namespace voxcore::python {

namespace py = pybind11;

// The voxcore dtype of a native-byte-order numpy dtype; InvalidArgument otherwise.
DType dtype_from_numpy(const py::dtype& dtype);
py::dtype numpy_dtype(DType dtype);
// A view of a numpy array's memory (any strides); writable requires a writeable array.
ArrayView view_of(const py::array& array, bool writable);
// The downsample method a Python name stands for (mean|gaussian|mode|nearest|min|max);
// kInvalidArgument under `where` otherwise. Defined in bind_pyramid.cpp.
Method method_from_name(const std::string& name, const char* where);

}  // namespace voxcore::python
