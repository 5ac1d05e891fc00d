#include "engine/task_io.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn {
namespace {

using nlohmann::json;

Result<std::vector<ArtifactRecord>> ArtifactsFrom(const json& list) {
  std::vector<ArtifactRecord> out;
  if (!list.is_array()) return Status::InvalidArgument("artifacts must be a list");
  out.reserve(list.size());
  for (const json& a : list) {
    if (!a.is_array() || a.size() != 5) return Status::InvalidArgument("malformed artifact entry");
    out.push_back(ArtifactRecord{a[0].get<std::string>(), a[1].get<std::string>(), a[2].get<int64_t>(),
                                 a[3].get<std::string>(), a[4].get<std::string>()});
  }
  return out;
}

}  // namespace

json ArtifactsToJson(const std::vector<ArtifactRecord>& artifacts) {
  json list = json::array();
  for (const auto& a : artifacts) list.push_back(json::array({a.name, a.digest, a.size, a.type, a.encoding}));
  return list;
}

Result<std::vector<ArtifactRecord>> ArtifactsFromJson(std::string_view text) {
  try {
    return ArtifactsFrom(json::parse(text));
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("artifact list: ") + e.what());
  }
}

std::string JoinBlobs(json& doc,
                      const std::vector<std::pair<const std::string*, const std::string*>>& blobs) {
  if (blobs.empty()) return doc.dump();
  json index = json::array();
  size_t total = 0;
  for (const auto& [digest, data] : blobs) {
    index.push_back(json::array({*digest, data->size()}));
    total += data->size();
  }
  doc["blobs"] = std::move(index);
  std::string text = doc.dump();
  text.reserve(text.size() + 1 + total);
  text.push_back('\0');
  for (const auto& [digest, data] : blobs) text.append(*data);
  return text;
}

Result<TaskResult> ParseTaskResult(std::string_view text) {
  try {
    size_t nul = text.find('\0');
    std::string_view binary = nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1);
    json doc = json::parse(text.substr(0, nul));
    if (!doc.is_object()) return Status::InvalidArgument("task result is not a JSON object");
    TaskResult result;
    if (doc.contains("blobs")) {
      size_t offset = 0;
      for (const json& b : doc["blobs"]) {
        size_t length = b.at(1).get<size_t>();
        if (offset + length > binary.size()) return Status::InvalidArgument("task result: blob section is short");
        result.blobs.emplace_back(b.at(0).get<std::string>(), std::string(binary.substr(offset, length)));
        offset += length;
      }
    }
    json kept = json::object();
    if (doc.contains("exception")) {
      const json& e = doc["exception"];
      // One line: the run's failure summary is a single line; the full message
      // and traceback stay in the task's stderr and result.
      std::string message = e.value("message", std::string());
      message = message.substr(0, message.find('\n'));
      // A MetaflowException subclass is titled by its headline, as Metaflow prints it.
      std::string title = e.value("headline", e.value("type", std::string("Exception")));
      result.exception = title + ": " + message;
      kept["exception"] = e;
    }
    if (doc.contains("caught") && doc["caught"].is_string()) {
      result.caught = doc["caught"].get<std::string>();
      kept["caught"] = result.caught;
    }
    if (doc.contains("artifacts")) {
      auto artifacts = ArtifactsFrom(doc["artifacts"]);
      if (!artifacts.ok()) return artifacts.status();
      result.artifacts = std::move(artifacts).value();
    }
    if (doc.contains("foreach_count")) {
      result.outcome.foreach_count = doc["foreach_count"].get<int>();
      kept["foreach_count"] = result.outcome.foreach_count;
    }
    if (doc.contains("switch_case")) {
      result.outcome.switch_case = doc["switch_case"].get<std::string>();
      kept["switch_case"] = result.outcome.switch_case;
    }
    // Entries the step added to its metadata (profile(...)): kept with the task.
    if (doc.contains("metadata") && doc["metadata"].is_array()) kept["metadata"] = doc["metadata"];
    result.outcome_json = kept.dump();
    return result;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("malformed task result: ") + e.what());
  }
}

static const char* SignalName(int sig) {
  switch (sig) {
    case 1: return "SIGHUP";
    case 2: return "SIGINT";
    case 6: return "SIGABRT";
    case 7: return "SIGBUS";
    case 8: return "SIGFPE";
    case 9: return "SIGKILL: out of memory, or killed by hand";
    case 11: return "SIGSEGV";
    case 13: return "SIGPIPE";
    case 15: return "SIGTERM";
    default: return "signal";
  }
}

std::string DescribeExit(const TaskExit& exit, double timeout_s, const std::string& lost_reason) {
  switch (exit.kind) {
    case ExitKind::kExited:
      return exit.exit_code == 0 ? "the task exited without reporting a result"
                                 : fmt::format("the task exited with code {}", exit.exit_code);
    case ExitKind::kSignaled:
      return fmt::format("the task was killed by signal {} ({})", exit.signal, SignalName(exit.signal));
    case ExitKind::kTimedOut:
      return fmt::format("the task timed out after {:g} s", timeout_s);
    case ExitKind::kLost:
      break;
  }
  return lost_reason.empty() ? "the task was lost (its worker process died)" : lost_reason;
}

const char* AttemptStatus(ExitKind kind) {
  switch (kind) {
    case ExitKind::kTimedOut: return "timeout";
    case ExitKind::kSignaled: return "killed";
    case ExitKind::kLost: return "lost";
    case ExitKind::kExited: break;
  }
  return "failed";
}

TaskOutcome OutcomeFromJson(std::string_view result_json) {
  TaskOutcome outcome;
  json doc = json::parse(result_json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return outcome;
  if (doc.contains("foreach_count") && doc["foreach_count"].is_number_integer()) {
    outcome.foreach_count = doc["foreach_count"].get<int>();
  }
  if (doc.contains("switch_case") && doc["switch_case"].is_string()) {
    outcome.switch_case = doc["switch_case"].get<std::string>();
  }
  return outcome;
}

}  // namespace cairn
