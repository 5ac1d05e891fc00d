// cairn._core: the C++ engine seen from Python. Glue only: convert types,
// release the GIL around long calls, turn Status into exceptions.
#include <pybind11/pybind11.h>

#include "bindings/errors.h"

namespace py = pybind11;

namespace cairn {
void BindGraph(py::module_& m);
void BindStore(py::module_& m);
void BindEngine(py::module_& m);
}  // namespace cairn

PYBIND11_MODULE(_core, m) {
  m.doc() = "cairn's C++ engine (private; use the cairn package)";
  cairn::BindErrors(m);
  cairn::BindGraph(m);
  cairn::BindStore(m);
  cairn::BindEngine(m);
}
