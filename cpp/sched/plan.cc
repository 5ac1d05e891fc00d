#include "sched/plan.h"

#include <utility>

#include "util/check.h"

namespace cairn {

namespace {

// "i.j.k": the branch or foreach index at each level of nesting. Together
// with the step it names a task's place in the run, independent of task keys.
std::string IndexPath(const std::vector<SplitFrame>& stack) {
  std::string path;
  for (const SplitFrame& frame : stack) {
    if (!path.empty()) path += ".";
    path += std::to_string(frame.index);
  }
  return path;
}

}  // namespace

Plan::Plan(const Graph& graph) : graph_(graph) {}

TaskKey Plan::Start() {
  CAIRN_CHECK(tasks_.empty());
  CAIRN_CHECK(graph_.start() != kNoStep);
  return AddTask(graph_.start(), {}, {});
}

std::optional<TaskKey> Plan::FindWork() {
  if (failed_ || ready_.empty()) return std::nullopt;
  TaskKey key = ready_.front();
  ready_.pop_front();
  PlannedTask& t = mutable_task(key);
  CAIRN_CHECK(t.state == TaskState::kReady);
  t.state = TaskState::kRunning;
  ++running_;
  return key;
}

Status Plan::TaskSucceeded(TaskKey key, const TaskOutcome& outcome) {
  PlannedTask& t = mutable_task(key);
  CAIRN_CHECK(t.state == TaskState::kRunning);
  t.state = TaskState::kSucceeded;
  --running_;
  // Successors of a failed run would never be handed out; planning them only
  // leaves tasks that look ready but never run.
  if (failed_) return Status::OK();

  // Copies: creating successors grows tasks_, which may move `t`.
  const StepId step_id = t.step;
  const std::vector<SplitFrame> base = t.stack;
  const Step& step = graph_.step(step_id);
  switch (step.transition) {
    case Transition::kLinear:
      CAIRN_CHECK(step.next.size() == 1);
      Arrive(key, step.next[0]);
      break;
    case Transition::kBranch: {
      int width = static_cast<int>(step.next.size());
      for (int i = 0; i < width; ++i) {
        std::vector<SplitFrame> stack = base;
        stack.push_back({key, step_id, i, width, /*foreach=*/false});
        Enter(key, step.next[static_cast<size_t>(i)], std::move(stack));
      }
      break;
    }
    case Transition::kForeach: {
      int width = outcome.foreach_count;
      if (width < 1) {
        mutable_task(key).state = TaskState::kFailed;
        failed_ = true;
        // The Engine names the step and task; the message says what is wrong.
        return Status::InvalidArgument(
            "foreach produced no items: " +
            (width < 0 ? "the task reported no count for " + step.foreach_var
                       : step.foreach_var + " is empty") +
            "; a foreach needs at least one item");
      }
      if (step.parallel && width > max_gang_) {
        mutable_task(key).state = TaskState::kFailed;
        failed_ = true;
        return Status::InvalidArgument(
            "num_parallel=" + std::to_string(width) + " is more than --max-workers " +
            std::to_string(max_gang_) + ": a @parallel gang starts all its tasks at once; raise "
            "--max-workers to at least " + std::to_string(width));
      }
      CAIRN_CHECK(step.next.size() == 1);
      const size_t first = tasks_.size();
      for (int i = 0; i < width; ++i) {
        std::vector<SplitFrame> stack = base;
        stack.push_back({key, step_id, i, width, /*foreach=*/true});
        Enter(key, step.next[0], std::move(stack));
      }
      if (step.parallel) {
        // The @parallel step is no join (Python checks), so each Enter added
        // one task, in node order.
        std::vector<TaskKey>& members = gangs_[key];
        for (size_t i = first; i < tasks_.size(); ++i) {
          tasks_[i].gang = key;
          members.push_back(tasks_[i].key);
        }
      }
      break;
    }
    case Transition::kSwitch: {
      StepId target = kNoStep;
      for (const auto& [value, to] : step.switch_cases) {
        if (value == outcome.switch_case) target = to;
      }
      if (target == kNoStep) {
        mutable_task(key).state = TaskState::kFailed;
        failed_ = true;
        std::string cases;
        for (const auto& switch_case : step.switch_cases) {
          cases += (cases.empty() ? "'" : ", '") + switch_case.first + "'";
        }
        return Status::InvalidArgument(
            "switch value '" + outcome.switch_case + "' of " + step.switch_var +
            " is not a case; the cases are " + cases);
      }
      Arrive(key, target);
      break;
    }
    case Transition::kEnd:
      end_succeeded_ = true;
      break;
  }
  return Status::OK();
}

FailureAction Plan::TaskFailed(TaskKey key) {
  PlannedTask& t = mutable_task(key);
  CAIRN_CHECK(t.state == TaskState::kRunning);
  --running_;
  const TaskOptions& options = graph_.step(t.step).options;
  // Once the run has failed nothing more is handed out, so another attempt
  // would only wait to be dropped.
  FailureAction action = FailureAction::kFail;
  if (!failed_ && !t.fallback && t.attempt + 1 < options.retries + 1) {
    action = FailureAction::kRetry;
  } else if (!failed_ && !t.fallback && options.catch_failure) {
    action = FailureAction::kFallback;
  }
  if (action == FailureAction::kFail) {
    t.state = TaskState::kFailed;
    failed_ = true;
    return action;
  }
  t.state = TaskState::kWaiting;
  ++awaiting_retry_;
  return action;
}

void Plan::Requeue(TaskKey key) {
  PlannedTask& t = mutable_task(key);
  CAIRN_CHECK(t.state == TaskState::kWaiting);
  // TaskFailed said kRetry while retries were left, else kFallback.
  if (t.attempt + 1 >= graph_.step(t.step).options.retries + 1) t.fallback = true;
  ++t.attempt;
  --awaiting_retry_;
  t.state = TaskState::kReady;
  ready_.push_back(key);
}

int Plan::ReadyGang() const {
  if (ready_.empty()) return 0;
  TaskKey gang = task(ready_.front()).gang;
  if (gang == 0) return 0;
  const std::vector<TaskKey>& members = GangMembers(gang);
  if (ready_.size() < members.size()) return -1;
  for (size_t i = 0; i < members.size(); ++i) {
    if (ready_[i] != members[i]) return -1;
  }
  return static_cast<int>(members.size());
}

const std::vector<TaskKey>& Plan::GangMembers(TaskKey gang) const {
  static const std::vector<TaskKey> kNone;
  auto it = gangs_.find(gang);
  return it == gangs_.end() ? kNone : it->second;
}

const PlannedTask& Plan::task(TaskKey key) const {
  CAIRN_CHECK(key >= 1 && static_cast<size_t>(key) <= tasks_.size());
  return tasks_[static_cast<size_t>(key - 1)];
}

PlannedTask& Plan::mutable_task(TaskKey key) {
  CAIRN_CHECK(key >= 1 && static_cast<size_t>(key) <= tasks_.size());
  return tasks_[static_cast<size_t>(key - 1)];
}

std::string Plan::CloneKey(TaskKey key) const {
  const PlannedTask& t = task(key);
  return graph_.step(t.step).name + "[" + IndexPath(t.stack) + "]#" +
         std::to_string(t.occurrence);
}

bool Plan::Done() const {
  if (end_succeeded_) return true;
  if (running_ > 0) return false;
  return failed_ || (ready_.empty() && awaiting_retry_ == 0);
}

TaskKey Plan::AddTask(StepId step, std::vector<TaskKey> parents,
                      std::vector<SplitFrame> stack) {
  PlannedTask t;
  t.key = static_cast<TaskKey>(tasks_.size()) + 1;
  t.step = step;
  t.occurrence = occurrences_[{step, IndexPath(stack)}]++;
  t.parents = std::move(parents);
  t.stack = std::move(stack);
  t.state = TaskState::kReady;
  tasks_.push_back(std::move(t));
  ready_.push_back(tasks_.back().key);
  return tasks_.back().key;
}

void Plan::Arrive(TaskKey from, StepId to) {
  Enter(from, to, task(from).stack);
}

void Plan::Enter(TaskKey from, StepId to, std::vector<SplitFrame> stack) {
  if (!graph_.step(to).is_join) {
    AddTask(to, {from}, std::move(stack));
    return;
  }
  // A valid graph only reaches a join inside the split it closes.
  CAIRN_CHECK(!stack.empty());
  const SplitFrame& frame = stack.back();
  auto slot = std::make_pair(to, frame.split_task);
  std::map<int, TaskKey>& arrived = arrivals_[slot];
  CAIRN_CHECK(arrived.emplace(frame.index, from).second);
  if (static_cast<int>(arrived.size()) < frame.width) return;
  std::vector<TaskKey> parents;
  parents.reserve(arrived.size());
  for (const auto& [index, parent] : arrived) parents.push_back(parent);
  arrivals_.erase(slot);
  stack.pop_back();
  AddTask(to, std::move(parents), std::move(stack));
}

}  // namespace cairn
