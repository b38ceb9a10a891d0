// The one place where voxcore::Error becomes a Python exception (classes in voxcore/errors.py).
#include <pybind11/pybind11.h>

#include "voxcore/error.hpp"

namespace py = pybind11;

void init_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const voxcore::Error& e) {
      using voxcore::ErrorCode;
      const char* cls = nullptr;
      switch (e.code()) {
        case ErrorCode::kInvalidArgument: cls = "InvalidArgumentError"; break;
        case ErrorCode::kInvalidMetadata: cls = "InvalidMetadataError"; break;
        case ErrorCode::kCorrupt: cls = "CorruptDataError"; break;
        case ErrorCode::kLimitExceeded: cls = "LimitExceededError"; break;
        case ErrorCode::kUnsafePath: cls = "UnsafePathError"; break;
        case ErrorCode::kUnsupported: cls = "UnsupportedError"; break;
        case ErrorCode::kUnavailable: cls = "UnavailableError"; break;
        case ErrorCode::kCuda: cls = "CudaError"; break;
        case ErrorCode::kNotFound:
          PyErr_SetString(PyExc_FileNotFoundError, e.what());
          return;
        case ErrorCode::kIo: {
          py::object err = py::module_::import("builtins").attr("OSError")(e.sys_errno(), e.what());
          PyErr_SetObject(PyExc_OSError, err.ptr());
          return;
        }
      }
      py::object type = py::module_::import("voxcore.errors").attr(cls);
      PyErr_SetString(type.ptr(), e.what());
    }
  });
}
