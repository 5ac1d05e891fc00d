// Status: the outcome of an operation that can fail in an expected way
// (leveldb style). Core APIs never throw; they return Status or Result<T>.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace cairn {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,
    kInvalidGraph,
    kNotFound,
    kIOError,
    kCorruption,
    kInterrupted,
    kNoSpace,
    kVersionMismatch,
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status InvalidGraph(std::string msg) { return {Code::kInvalidGraph, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status Interrupted(std::string msg) { return {Code::kInterrupted, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status VersionMismatch(std::string msg) { return {Code::kVersionMismatch, std::move(msg)}; }
  // An errno-based I/O failure; ENOSPC/EDQUOT become kNoSpace.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

#define CAIRN_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::cairn::Status _st = (expr);          \
    if (!_st.ok()) return _st;             \
  } while (0)

}  // namespace cairn
