// voxcore._core: the compiled core. Each area binds itself; this file only calls them in order.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void init_errors(py::module_& m);
void init_array(py::module_& m);
void init_transform(py::module_& m);
void init_pyramid(py::module_& m);
void init_codec(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "voxcore's compiled core (C++): codecs, stores, chunked arrays, transforms.";
  init_errors(m);
  init_array(m);
  init_transform(m);
  init_pyramid(m);
  init_codec(m);
}
