#include "engine/task_log.h"

#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

namespace cairn {
namespace {
constexpr size_t kTailLines = 20;
constexpr size_t kTailBytes = 4096;
constexpr size_t kMaxLine = 64 * 1024;  // longer "lines" are shown in pieces
}  // namespace

TaskLog::TaskLog(std::string base, LineFn on_line) : base_(std::move(base)), on_line_(std::move(on_line)) {}

TaskLog::~TaskLog() { (void)Close(); }

std::string TaskLog::BasePath(const std::string& root, int64_t run_id, const std::string& step,
                              int64_t task_id, int attempt) {
  return fmt::format("{}/logs/{}/{}/{}.{}", root, run_id, step, task_id, attempt);
}

Status TaskLog::Append(int s, std::string_view data) {
  Stream& st = stream(s);
  if (!st.file) {
    std::string path = base_ + (s == 2 ? ".err" : ".out");
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    st.file = std::fopen(path.c_str(), "ab");
    if (!st.file) return Status::FromErrno(errno, "opening log " + path);
  }
  // Flushed at once, so readers (`cairn ui`, `logs` of a running task) see
  // output as it arrives; Append runs once per pipe read, not per line. A
  // write that fails (a full disk) loses the file's copy, not the lines the
  // console shows.
  Status written;
  if (std::fwrite(data.data(), 1, data.size(), st.file) != data.size() || std::fflush(st.file) != 0) {
    written = Status::FromErrno(errno, "writing log " + base_);
  }
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) {
      st.partial.append(data.substr(pos));
      if (st.partial.size() >= kMaxLine) {
        on_line_(s, st.partial);
        st.partial.clear();
      }
      break;
    }
    std::string_view piece = data.substr(pos, nl - pos);
    std::string line;
    if (!st.partial.empty()) {
      line = std::move(st.partial);
      st.partial.clear();
      line.append(piece);
      piece = line;
    }
    on_line_(s, piece);
    if (s == 2) {
      tail_.emplace_back(piece.substr(0, kTailBytes));
      tail_bytes_ += tail_.back().size();
      while (tail_.size() > kTailLines || tail_bytes_ > kTailBytes) {
        tail_bytes_ -= tail_.front().size();
        tail_.pop_front();
      }
    }
    pos = nl + 1;
  }
  return written;
}

Status TaskLog::Close() {
  Status result;
  for (int s : {1, 2}) {
    Stream& st = stream(s);
    if (!st.partial.empty()) {
      on_line_(s, st.partial);
      if (s == 2) tail_.push_back(st.partial);
      st.partial.clear();
    }
    if (st.file) {
      if (std::fclose(st.file) != 0 && result.ok()) result = Status::FromErrno(errno, "closing log " + base_);
      st.file = nullptr;
    }
  }
  return result;
}

std::string TaskLog::StderrTail() const {
  std::string out;
  for (const auto& line : tail_) {
    out += "    ";
    out += line;
    out += '\n';
  }
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace cairn
