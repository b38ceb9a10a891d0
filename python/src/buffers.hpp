#pragma once
// Conversions between numpy arrays and voxcore views (no copies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "voxcore/array_view.hpp"
#include "voxcore/dtype.hpp"

namespace voxcore::python {

namespace py = pybind11;

// The voxcore dtype of a native-byte-order numpy dtype; InvalidArgument otherwise.
DType dtype_from_numpy(const py::dtype& dtype);
py::dtype numpy_dtype(DType dtype);
// A view of a numpy array's memory (any strides); writable requires a writeable array.
ArrayView view_of(const py::array& array, bool writable);

}  // namespace voxcore::python
