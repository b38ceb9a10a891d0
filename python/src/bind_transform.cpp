// Bindings for transform.hpp (host arrays) and cuda.hpp (device arrays).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "buffers.hpp"
#include "voxcore/cuda.hpp"
#include "voxcore/error.hpp"
#include "voxcore/thread_pool.hpp"
#include "voxcore/transform.hpp"

namespace py = pybind11;
using voxcore::ArrayView;

namespace {

// A view of device memory described by an object's __cuda_array_interface__ (v2/v3).
ArrayView cuda_view_of(const py::object& obj, bool writable, const char* where) {
  if (!py::hasattr(obj, "__cuda_array_interface__")) {
    voxcore::fail(voxcore::ErrorCode::kInvalidArgument, where,
                  "expected an object with __cuda_array_interface__ (got=" +
                      std::string(py::str(py::type::of(obj).attr("__name__"))) + ")");
  }
  const py::dict cai = obj.attr("__cuda_array_interface__");
  if (cai.contains("mask") && !cai["mask"].is_none()) {
    voxcore::fail(voxcore::ErrorCode::kUnsupported, where, "masked device arrays are not supported");
  }
  const py::tuple data = cai["data"];
  if (writable && data[1].cast<bool>()) {
    voxcore::fail(voxcore::ErrorCode::kInvalidArgument, where, "output device array is read-only");
  }
  ArrayView view;
  view.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  view.dtype = voxcore::python::dtype_from_numpy(py::dtype(cai["typestr"].cast<std::string>()));
  for (const auto& n : cai["shape"].cast<py::tuple>()) view.shape.push_back(n.cast<int64_t>());
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    for (const auto& s : cai["strides"].cast<py::tuple>()) view.byte_strides.push_back(s.cast<int64_t>());
  } else {
    view.byte_strides = ArrayView::contiguous(nullptr, view.dtype, view.shape).byte_strides;
  }
  return view;
}

}  // namespace

void init_transform(py::module_& m) {
  m.def(
      "permute_flip",
      [](const py::array& src, const std::vector<int>& perm, const std::vector<bool>& flips, const py::object& dtype,
         double slope, double inter) {
        const ArrayView sv = voxcore::python::view_of(src, false);
        // An out-of-range axis gets extent 0 here; permute_flip then rejects the perm.
        std::vector<py::ssize_t> shape(perm.size(), 0);
        for (std::size_t i = 0; i < perm.size(); ++i) {
          if (perm[i] >= 0 && perm[i] < sv.rank()) shape[i] = static_cast<py::ssize_t>(sv.shape[perm[i]]);
        }
        const bool convert = !dtype.is_none();
        py::array out(convert ? py::dtype::from_args(dtype) : voxcore::python::numpy_dtype(sv.dtype), shape);
        const ArrayView dv = voxcore::python::view_of(out, true);
        {
          py::gil_scoped_release release;
          if (convert) {
            voxcore::permute_flip_scale(sv, dv, perm, flips, slope, inter, &voxcore::default_executor());
          } else {
            voxcore::permute_flip(sv, dv, perm, flips, &voxcore::default_executor());
          }
        }
        return out;
      },
      py::arg("src"), py::arg("perm"), py::arg("flips"), py::arg("dtype") = py::none(), py::arg("slope") = 1.0,
      py::arg("inter") = 0.0,
      R"doc(Return a new C-contiguous array: src with its axes permuted, then flipped.

Axis i of the result is axis perm[i] of src, reversed where flips[i] is true; the same as
np.ascontiguousarray(np.flip(src.transpose(perm), [i for i, f in enumerate(flips) if f])).
With dtype (float32 or float64) the values are also converted and scaled in the same pass:
dtype(v) * slope + inter, each operation rounded in dtype, as numpy's astype, *= and +=.
src may have any strides. Runs on voxcore's thread pool with the GIL released.)doc");

  m.def("cuda_is_available", &voxcore::cuda::is_available,
        R"doc(True when voxcore was built with CUDA and a CUDA device is usable.)doc");
  m.def("cuda_is_compiled", &voxcore::cuda::is_compiled,
        R"doc(True when this build contains the CUDA kernels (whether or not a device is present).)doc");
  m.def("cuda_device_count", &voxcore::cuda::device_count, R"doc(Number of usable CUDA devices (0 without CUDA).)doc");

  m.def(
      "cuda_permute_flip",
      [](const py::object& src, const py::object& dst, const std::vector<int>& perm, const std::vector<bool>& flips,
         std::uintptr_t stream) {
        const ArrayView sv = cuda_view_of(src, false, "cuda_permute_flip");
        const ArrayView dv = cuda_view_of(dst, true, "cuda_permute_flip");
        {
          py::gil_scoped_release release;
          voxcore::cuda::permute_flip(sv, dv, perm, flips, reinterpret_cast<voxcore::cuda::Stream>(stream));
        }
        return dst;
      },
      py::arg("src"), py::arg("dst"), py::arg("perm"), py::arg("flips"), py::arg("stream") = 0,
      R"doc(Device permute_flip: writes src with axes permuted and flipped into dst; returns dst.

src and dst expose __cuda_array_interface__ (e.g. CuPy arrays) on the current device; dst must
have shape [src.shape[p] for p in perm] and src's dtype, any strides. The kernel runs on
`stream` (a cudaStream_t as an int, e.g. cupy.cuda.get_current_stream().ptr; 0 is the
default stream), which is synchronised before returning. Raises UnavailableError in a build
without CUDA.)doc");

  m.def(
      "cuda_downsample",
      [](const py::object& src, const py::object& dst, const std::vector<int64_t>& factors, const std::string& method,
         std::uintptr_t stream) {
        const voxcore::Method how = voxcore::python::method_from_name(method, "cuda_downsample");
        const ArrayView sv = cuda_view_of(src, false, "cuda_downsample");
        const ArrayView dv = cuda_view_of(dst, true, "cuda_downsample");
        {
          py::gil_scoped_release release;
          voxcore::cuda::downsample(sv, dv, factors, how, reinterpret_cast<voxcore::cuda::Stream>(stream));
        }
        return dst;
      },
      py::arg("src"), py::arg("dst"), py::arg("factors"), py::arg("method") = "mean", py::arg("stream") = 0,
      R"doc(Device downsample: reduces src by integer factors per axis into dst; returns dst.

src and dst expose __cuda_array_interface__ (e.g. CuPy arrays) on the current device; dst must
have shape ceil(src.shape / factors) and src's dtype, any strides. method: mean, gaussian,
mode, nearest, min, max, with the values of downsample on the host. The kernel runs on
`stream` (a cudaStream_t as an int; 0 is the default stream), which is synchronised before
returning. Raises UnavailableError in a build without CUDA.)doc");
}
