#include "bindings/errors.h"

#include "util/result.h"

namespace py = pybind11;

namespace cairn {
namespace {
// Owned by the module: pybind11 keeps these alive for the interpreter's life.
PyObject* g_error = nullptr;
PyObject* g_graph_error = nullptr;
PyObject* g_not_found = nullptr;
PyObject* g_datastore_error = nullptr;
PyObject* g_version_error = nullptr;
}  // namespace

void BindErrors(py::module_& m) {
  static py::exception<std::runtime_error> error(m, "Error");
  static py::exception<std::runtime_error> graph_error(m, "GraphError", error.ptr());
  static py::exception<std::runtime_error> not_found(m, "NotFoundError", error.ptr());
  static py::exception<std::runtime_error> datastore_error(m, "DatastoreError", error.ptr());
  static py::exception<std::runtime_error> version_error(m, "DatastoreVersionError", datastore_error.ptr());
  g_error = error.ptr();
  g_graph_error = graph_error.ptr();
  g_not_found = not_found.ptr();
  g_datastore_error = datastore_error.ptr();
  g_version_error = version_error.ptr();
}

void ThrowStatus(const Status& status) {
  PyObject* type = g_error;
  switch (status.code()) {
    case Status::Code::kInvalidGraph: type = g_graph_error; break;
    case Status::Code::kNotFound: type = g_not_found; break;
    case Status::Code::kIOError:
    case Status::Code::kCorruption:
    case Status::Code::kNoSpace: type = g_datastore_error; break;
    case Status::Code::kVersionMismatch: type = g_version_error; break;
    case Status::Code::kInterrupted: type = PyExc_KeyboardInterrupt; break;
    case Status::Code::kInvalidArgument: type = PyExc_ValueError; break;
    default: break;
  }
  PyErr_SetString(type, status.message().c_str());
  throw py::error_already_set();
}

}  // namespace cairn
