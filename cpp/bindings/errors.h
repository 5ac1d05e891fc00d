// The extension's exception types and the one place a Status becomes one.
#pragma once

#include <pybind11/pybind11.h>

#include "util/result.h"
#include "util/status.h"

namespace cairn {

void BindErrors(pybind11::module_& m);
// Throws the Python exception for a non-OK status. REQUIRES: !status.ok()
[[noreturn]] void ThrowStatus(const Status& status);
inline void ThrowIfError(const Status& status) {
  if (!status.ok()) ThrowStatus(status);
}
template <typename T>
T Unwrap(Result<T>&& result) {
  if (!result.ok()) ThrowStatus(result.status());
  return std::move(result).value();
}

}  // namespace cairn
