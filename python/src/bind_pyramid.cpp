// Bindings for pyramid.hpp: downsample a numpy array by integer factors.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "buffers.hpp"
#include "voxcore/error.hpp"
#include "voxcore/pyramid.hpp"

namespace py = pybind11;

namespace voxcore::python {

voxcore::Method method_from_name(const std::string& name, const char* where) {
  if (name == "mean") return voxcore::Method::kMean;
  if (name == "gaussian") return voxcore::Method::kGaussian;
  if (name == "mode") return voxcore::Method::kMode;
  if (name == "nearest") return voxcore::Method::kNearest;
  if (name == "min") return voxcore::Method::kMin;
  if (name == "max") return voxcore::Method::kMax;
  voxcore::fail(voxcore::ErrorCode::kInvalidArgument, where,
                "unknown method (expected mean|gaussian|mode|nearest|min|max, got=" + name + ")");
}

}  // namespace voxcore::python

using voxcore::python::method_from_name;

void init_pyramid(py::module_& m) {
  m.def(
      "downsample",
      [](const py::array& src, const std::vector<int64_t>& factors, const std::string& method) {
        const voxcore::Method how = method_from_name(method, "downsample");
        const voxcore::ArrayView sv = voxcore::python::view_of(src, false);
        const voxcore::Shape shape = voxcore::downsampled_shape(sv.shape, factors);
        py::array out(voxcore::python::numpy_dtype(sv.dtype), std::vector<py::ssize_t>(shape.begin(), shape.end()));
        const voxcore::ArrayView dv = voxcore::python::view_of(out, true);
        {
          py::gil_scoped_release release;
          voxcore::downsample(sv, dv, factors, how, &voxcore::default_executor());
        }
        return out;
      },
      py::arg("src"), py::arg("factors"), py::arg("method") = "mean",
      R"doc(Reduce src by integer factors per axis; returns a new C-contiguous array of shape
ceil(src.shape / factors). method: mean (integers round half away from zero), gaussian, mode
(ties -> smallest), nearest (src[::f]), min, max. Partial edge windows use what exists.)doc");
  m.def(
      "downsample_levels",
      [](const py::array& src, const std::vector<std::vector<int64_t>>& steps, const std::string& method) {
        const voxcore::Method how = method_from_name(method, "downsample");
        const voxcore::ArrayView sv = voxcore::python::view_of(src, false);
        py::list outs;
        std::vector<voxcore::ArrayView> views;
        voxcore::Shape shape = sv.shape;
        for (const auto& step : steps) {
          shape = voxcore::downsampled_shape(shape, step);
          py::array out(voxcore::python::numpy_dtype(sv.dtype), std::vector<py::ssize_t>(shape.begin(), shape.end()));
          views.push_back(voxcore::python::view_of(out, true));
          outs.append(out);
        }
        {
          py::gil_scoped_release release;
          voxcore::downsample_levels(sv, views, steps, how, &voxcore::default_executor());
        }
        return outs;
      },
      py::arg("src"), py::arg("steps"), py::arg("method") = "mean",
      R"doc(Several levels in one pass: a list of new arrays, level k+1 = level k reduced by steps[k]
(factors relative to the previous level). Same values as calling downsample level by level.)doc");
}
