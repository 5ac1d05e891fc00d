#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/errors.h"
#include "graph/graph.h"

namespace py = pybind11;

namespace cairn {

void BindGraph(py::module_& m) {
  // Validates a GraphSpec; raises GraphError listing every problem. Returns,
  // for each split step, the join that closes it (used by `show`).
  m.def("validate_graph", [](const std::string& spec_json) {
    Graph graph = Unwrap(Graph::FromSpec(spec_json));
    py::dict joins;
    for (const Step& s : graph.steps()) {
      if (s.matching_join != kNoStep) joins[py::str(s.name)] = graph.step(s.matching_join).name;
    }
    return joins;
  });
}

}  // namespace cairn
