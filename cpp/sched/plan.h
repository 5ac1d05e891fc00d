// Plan: one run's scheduling state. Pure logic: no clock, no files, no
// processes. The Engine asks it for work and tells it what finished; the Plan
// grows tasks on fan-out (branch, foreach), merges them on fan-in (join), and
// decides retries.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "util/result.h"

namespace cairn {

// A task's id within its run; also its pathspec's task id.
using TaskKey = int64_t;

// One level of nesting created by a split (static branch or foreach).
struct SplitFrame {
  TaskKey split_task = 0;  // the task that split
  StepId split_step = kNoStep;
  int index = 0;           // branch position or foreach index
  int width = 0;           // number of branches or foreach items
  bool foreach = false;
};

enum class TaskState { kWaiting, kReady, kRunning, kSucceeded, kFailed };

struct PlannedTask {
  TaskKey key = 0;
  StepId step = kNoStep;
  std::vector<TaskKey> parents;     // join: in split order
  std::vector<SplitFrame> stack;    // innermost split last
  int attempt = 0;                  // attempts started so far minus one
  int occurrence = 0;               // nth task of this step with this stack (switch loops)
  bool fallback = false;            // @catch fallback attempt
  TaskState state = TaskState::kWaiting;
  // A task of a @parallel step: the split task whose gang it belongs to.
  TaskKey gang = 0;
};

// What a finished task tells the Plan about where the flow goes next.
struct TaskOutcome {
  int foreach_count = -1;          // kForeach steps: number of items
  std::string switch_case;         // kSwitch steps: the chosen case value
};

enum class FailureAction { kRetry, kFallback, kFail };

class Plan {
 public:
  // `graph` must outlive the Plan.
  explicit Plan(const Graph& graph);
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // Creates the start task. Call once.
  TaskKey Start();

  // Takes the next ready task and marks it running; nullopt if none is ready.
  // Hands out nothing once the run has failed.
  std::optional<TaskKey> FindWork();

  // Records success and creates the successors that became ready.
  // Fails (kInvalidArgument) on an outcome that does not fit the step: a
  // foreach count < 1, an unknown switch value. The task is then failed.
  Status TaskSucceeded(TaskKey key, const TaskOutcome& outcome);

  // Records a failed attempt and says what happens next. kRetry: the task
  // waits for Requeue (the Engine owns the delay). kFallback: the next attempt
  // is a @catch fallback (Requeue it). kFail: the run has failed.
  FailureAction TaskFailed(TaskKey key);
  void Requeue(TaskKey key);

  // @parallel gangs. When the first ready task is a gang member: the gang's
  // size if all its members are ready, in a row, else -1. 0 when the first
  // ready task is no gang member, or none is ready. The Engine starts a gang
  // only when it is whole and fits, so that all its tasks start or none.
  int ReadyGang() const;
  // The members of a gang by split task, in node order (empty: no such gang).
  const std::vector<TaskKey>& GangMembers(TaskKey gang) const;
  // The largest gang that can ever start (the Engine's --max-workers): a
  // wider num_parallel fails its split step instead of waiting forever.
  void set_max_gang(int max_gang) { max_gang_ = max_gang; }

  const PlannedTask& task(TaskKey key) const;
  const Graph& graph() const { return graph_; }
  // Key used by resume to match a task with its twin in the origin run:
  // "step[i.j...]#occurrence".
  std::string CloneKey(TaskKey key) const;

  bool failed() const { return failed_; }
  // True when the end task succeeded, or the run failed and nothing runs.
  bool Done() const;
  int running() const { return running_; }
  size_t size() const { return tasks_.size(); }

 private:
  TaskKey AddTask(StepId step, std::vector<TaskKey> parents, std::vector<SplitFrame> stack);
  void Arrive(TaskKey from, StepId to);
  // Arrive with an explicit stack: a branch or foreach pushes a frame first.
  void Enter(TaskKey from, StepId to, std::vector<SplitFrame> stack);
  PlannedTask& mutable_task(TaskKey key);

  const Graph& graph_;
  std::vector<PlannedTask> tasks_;          // index = key - 1
  std::deque<TaskKey> ready_;
  // Join bookkeeping: (join step, split task) -> arrivals by index.
  std::map<std::pair<StepId, TaskKey>, std::map<int, TaskKey>> arrivals_;
  std::map<std::pair<StepId, std::string>, int> occurrences_;
  std::map<TaskKey, std::vector<TaskKey>> gangs_;  // split task -> members
  int max_gang_ = 1 << 30;
  int running_ = 0;
  int awaiting_retry_ = 0;                  // failed, waiting for Requeue
  bool failed_ = false;
  bool end_succeeded_ = false;
};

}  // namespace cairn
