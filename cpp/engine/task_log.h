// TaskLog: one attempt's stdout and stderr on their way to the console and
// to log files (root/logs/<run>/<step>/<task>.<attempt>.out|err). Files are
// created on the first byte, so silent tasks cost no files; output is never
// held in memory beyond one partial line and a short stderr tail.
#pragma once

#include <cstdio>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace cairn {

class TaskLog {
 public:
  using LineFn = std::function<void(int stream, std::string_view line)>;
  // `base` is the path without ".out"/".err".
  TaskLog(std::string base, LineFn on_line);
  ~TaskLog();
  TaskLog(const TaskLog&) = delete;
  TaskLog& operator=(const TaskLog&) = delete;

  Status Append(int stream, std::string_view data);
  // Flushes partial lines to the console and closes the files.
  Status Close();
  // The last lines of stderr, for failure messages.
  std::string StderrTail() const;

  // root/logs/<run>/<step>/<task>.<attempt>; add ".out" or ".err".
  static std::string BasePath(const std::string& root, int64_t run_id, const std::string& step,
                              int64_t task_id, int attempt);

 private:
  struct Stream {
    std::FILE* file = nullptr;
    std::string partial;
  };
  Stream& stream(int s) { return s == 2 ? err_ : out_; }

  std::string base_;
  LineFn on_line_;
  Stream out_, err_;
  std::deque<std::string> tail_;
  size_t tail_bytes_ = 0;
};

}  // namespace cairn
