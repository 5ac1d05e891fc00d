#include "engine/engine_log.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_util.h"

namespace cairn {
namespace {

using test::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int64_t SizeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// Sets $CAIRN_LOG_LEVEL for one test.
class ScopedLevel {
 public:
  explicit ScopedLevel(const char* level) { ::setenv("CAIRN_LOG_LEVEL", level, 1); }
  ~ScopedLevel() { ::unsetenv("CAIRN_LOG_LEVEL"); }
};

TaskEvent Event(int64_t task_id) {
  TaskEvent t;
  t.run_id = 7;
  t.step = "train";
  t.task_id = task_id;
  return t;
}

TEST(EngineLogTest, WritesTheRunsEventsAtInfo) {
  TempDir dir;
  {
    EngineLog log;
    ASSERT_OK(log.Open(dir.path(), 7));
    RunOptions options;
    log.RunStarted(options, 7, "F");
    log.TaskStarted(Event(1));
    TaskExit exit;
    exit.kind = ExitKind::kSignaled;
    exit.signal = 9;
    log.TaskExited(Event(1), exit, "killed", "the task was killed by signal 9");
    log.TaskRetry(Event(1), 2);
    log.Committed(3, 0.001, Status::OK());
    RunSummary summary;
    summary.run_id = 7;
    summary.status = "failed";
    log.RunFinished(summary);
  }
  std::string text = Slurp(EngineLog::PathFor(dir.path(), 7));
  for (const char* expected : {"run F/7 started", "task 7/train/1 started",
                               "task 7/train/1 killed: signaled (exit code -1, signal 9",
                               "the task was killed by signal 9", "will be retried in 2.0 s",
                               "committed 3 task record(s)", "run 7 failed"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

TEST(EngineLogTest, LevelComesFromTheEnvironment) {
  TempDir dir;
  ScopedLevel level("warning");
  {
    EngineLog log;
    ASSERT_OK(log.Open(dir.path(), 7));
    log.TaskStarted(Event(1));
    log.Error("the run stopped", Status::IOError("disk gone"));
  }
  std::string text = Slurp(EngineLog::PathFor(dir.path(), 7));
  EXPECT_EQ(text.find("started"), std::string::npos) << text;
  EXPECT_NE(text.find("the run stopped: "), std::string::npos) << text;
}

TEST(EngineLogTest, AnUnknownLevelIsAnErrorNamingTheChoices) {
  ScopedLevel level("loud");
  Status st = EngineLog::CheckEnvironment();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("trace, debug, info, warning, error, off"), std::string::npos);
}

TEST(EngineLogTest, OffWritesNoFile) {
  TempDir dir;
  ScopedLevel level("off");
  EngineLog log;
  ASSERT_OK(log.Open(dir.path(), 7));
  log.TaskStarted(Event(1));
  log.Flush();
  EXPECT_EQ(SizeOf(EngineLog::PathFor(dir.path(), 7)), -1);
}

TEST(EngineLogTest, RotatesSoTheLogStaysBounded) {
  TempDir dir;
  {
    EngineLog log;
    ASSERT_OK(log.Open(dir.path(), 7));
    TaskEvent t = Event(0);
    t.step = std::string(200, 's');
    // About 3.5 times the bound.
    for (size_t written = 0; written < 3 * kEngineLogFileBytes + kEngineLogFileBytes / 2; written += 250) {
      log.TaskStarted(t);
    }
  }
  std::string base = dir.path() + "/logs/7/engine";
  int64_t total = 0;
  for (const std::string& path : {base + ".log", base + ".1.log", base + ".2.log"}) {
    int64_t size = SizeOf(path);
    ASSERT_GT(size, 0) << path;
    EXPECT_LE(size, static_cast<int64_t>(kEngineLogFileBytes)) << path;
    total += size;
  }
  EXPECT_EQ(SizeOf(base + ".3.log"), -1);
  EXPECT_LE(total, static_cast<int64_t>((kEngineLogBackups + 1) * kEngineLogFileBytes));
}

}  // namespace
}  // namespace cairn
