// The JSON documents exchanged with a task process: the payload the engine
// hands it (which task, its inputs' artifacts) and the result it hands back
// (its artifacts, where the flow goes next, or the exception that failed it).
// Documented in docs/architecture.md.
#pragma once

#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "exec/launcher.h"
#include "sched/plan.h"
#include "store/datastore.h"
#include "util/result.h"

namespace cairn {

struct TaskResult {
  std::vector<ArtifactRecord> artifacts;
  TaskOutcome outcome;
  std::string exception;     // "ValueError: bad value" if the step raised
  std::string caught;        // what @catch caught, if the step failed but the flow goes on
  std::string outcome_json;  // what is kept in TaskRecord::result_json
  // Small blobs the task produced: (digest, content). See SplitBlobs.
  std::vector<std::pair<std::string, std::string>> blobs;
};

// Payloads and results are a JSON document, then optionally a NUL byte and
// the content of small blobs, back to back, in the order of the document's
// "blobs" list of [digest, length]. Raw bytes: no base64 on the hot path.
// Appends the blob section for `blobs` to `doc` (which lacks "blobs") and
// returns the whole text.
std::string JoinBlobs(nlohmann::json& doc,
                      const std::vector<std::pair<const std::string*, const std::string*>>& blobs);

// Parses what a task wrote to its result channel.
Result<TaskResult> ParseTaskResult(std::string_view text);

// [[name, digest, size, type, encoding], ...] <-> records.
nlohmann::json ArtifactsToJson(const std::vector<ArtifactRecord>& artifacts);
Result<std::vector<ArtifactRecord>> ArtifactsFromJson(std::string_view text);

// One line saying how a task ended, for a task that left no exception of its
// own: "the task was killed by signal 11 (SIGSEGV)". `lost_reason` is used
// for kLost when not empty.
std::string DescribeExit(const TaskExit& exit, double timeout_s, const std::string& lost_reason);
// The attempt status recorded for an exit: failed, timeout, killed or lost.
const char* AttemptStatus(ExitKind kind);

// Reads a TaskOutcome back from TaskRecord::result_json (resume clones).
TaskOutcome OutcomeFromJson(std::string_view result_json);

}  // namespace cairn
