// Graph: the validated, immutable DAG (plus switch loops) of a flow's steps,
// built once from a GraphSpec (JSON text made by the Python side).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace cairn {

using StepId = int32_t;
inline constexpr StepId kNoStep = -1;

// How a step leaves: the shape of its self.next(...) call.
enum class Transition {
  kLinear,   // self.next(self.a)
  kBranch,   // self.next(self.a, self.b): static split, all run
  kForeach,  // self.next(self.a, foreach="items"): one task per item
  kSwitch,   // self.next({"x": self.a, ...}, condition="var"): one runs
  kEnd,      // the end step: no next
};

// Per-step execution options from decorators (@retry, @timeout, @catch).
struct TaskOptions {
  int retries = 0;                   // extra attempts after the first
  double retry_delay_s = 0;          // wait between attempts
  double timeout_s = 0;              // 0: none
  bool catch_failure = false;        // @catch: run a fallback after the last retry
  std::string catch_var;             // @catch(var=...)
  std::string backend;               // "": local; "ray": on the cluster (@ray, --with ray)
};

struct Step {
  std::string name;
  int line = 0;                      // source line of the def, for errors
  std::string doc;
  // Digest of the step's source and decorator arguments (graph.py); equal
  // across runs means the same code. Empty: unknown (never equal).
  std::string code_hash;
  Transition transition = Transition::kLinear;
  bool is_join = false;              // takes `inputs`
  std::vector<StepId> next;          // every possible successor, in source order
  std::string foreach_var;           // kForeach
  std::string switch_var;            // kSwitch
  std::vector<std::pair<std::string, StepId>> switch_cases;  // kSwitch, value -> step
  std::vector<StepId> prev;          // steps whose next includes this one
  // kBranch and kForeach: the join step that closes this split.
  StepId matching_join = kNoStep;
  // kForeach made by self.next(..., num_parallel=N) into a @parallel step:
  // its N tasks are a gang (they start together and fail or retry together).
  bool parallel = false;
  TaskOptions options;
};

class Graph {
 public:
  // Parses and validates a GraphSpec. On failure the Status is kInvalidGraph
  // (or kInvalidArgument for malformed JSON) and its message lists every
  // problem, one per line, each as "file:line: step 'name': what is wrong".
  static Result<Graph> FromSpec(std::string_view spec_json);

  const std::string& flow_name() const { return flow_name_; }
  const std::string& file() const { return file_; }
  const std::vector<Step>& steps() const { return steps_; }
  const Step& step(StepId id) const { return steps_.at(static_cast<size_t>(id)); }
  StepId Find(std::string_view name) const;  // kNoStep if absent
  StepId start() const { return start_; }
  StepId end() const { return end_; }
  // Steps reachable from `from` (inclusive), for resume's re-run set.
  std::vector<bool> ReachableFrom(StepId from) const;

 private:
  friend class GraphBuilder;
  std::string flow_name_;
  std::string file_;
  std::vector<Step> steps_;
  StepId start_ = kNoStep;
  StepId end_ = kNoStep;
};

}  // namespace cairn
