#include "engine/task_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace cairn {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TaskLogTest, OutputIsInTheFileBeforeTheLogCloses) {
  test::TempDir dir;
  std::vector<std::string> lines;
  TaskLog log(dir.Join("logs/1/start/1.0"), [&](int, std::string_view line) { lines.emplace_back(line); });
  ASSERT_OK(log.Append(1, "first line\npartial"));
  // A reader of a running task (cairn ui) sees what arrived so far.
  EXPECT_EQ(ReadFile(dir.Join("logs/1/start/1.0.out")), "first line\npartial");
  ASSERT_OK(log.Append(2, "oops\n"));
  EXPECT_EQ(ReadFile(dir.Join("logs/1/start/1.0.err")), "oops\n");
  ASSERT_OK(log.Close());
  EXPECT_EQ(lines, (std::vector<std::string>{"first line", "oops", "partial"}));
}

}  // namespace
}  // namespace cairn
