#include "util/status.h"

#include <cerrno>
#include <cstring>

namespace cairn {

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg = std::string(context) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(msg));
  return IOError(std::move(msg));
}

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: name = "Invalid argument"; break;
    case Code::kInvalidGraph: name = "Invalid graph"; break;
    case Code::kNotFound: name = "Not found"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kCorruption: name = "Corruption"; break;
    case Code::kInterrupted: name = "Interrupted"; break;
    case Code::kNoSpace: name = "No space"; break;
    case Code::kVersionMismatch: name = "Version mismatch"; break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace cairn
