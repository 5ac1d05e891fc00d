// Helpers shared by the C++ tests: TempDir, and ASSERT_OK / EXPECT_OK that
// print the Status message on failure (leveldb's util/testutil.h).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <gtest/gtest.h>

#include "util/result.h"
#include "util/status.h"

namespace cairn {
namespace test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the TempDir goes out of scope.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/cairn-test-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty if the directory could not be made.
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace test
}  // namespace cairn

// Accept a Status or a Result<T>.
#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    const auto& _test_r = (expr);                                       \
    const ::cairn::Status& _test_st = ::cairn::test::StatusOf(_test_r); \
    ASSERT_TRUE(_test_st.ok()) << _test_st.ToString();                  \
  } while (0)
#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    const auto& _test_r = (expr);                                       \
    const ::cairn::Status& _test_st = ::cairn::test::StatusOf(_test_r); \
    EXPECT_TRUE(_test_st.ok()) << _test_st.ToString();                  \
  } while (0)

// `lhs = expr.value()` for a Result expression, failing the test (and
// returning) if it holds an error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(CAIRN_CONCAT(_test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)            \
  auto tmp = (expr);                                         \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();          \
  lhs = std::move(tmp).value()
