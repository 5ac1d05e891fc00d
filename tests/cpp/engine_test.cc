// Engine behaviour with a FakeLauncher (scripted exits and results, no
// processes) and a real Datastore in a TempDir: what the engine records for
// successes, failures, retries, @catch fallbacks and resume clones.
#include "engine/engine.h"

#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/datastore.h"
#include "test_util.h"

namespace cairn {
namespace {

using nlohmann::json;

// How one scripted attempt ends.
struct Ending {
  ExitKind kind = ExitKind::kExited;
  int exit_code = 0;
  int signal = 0;
  std::string result = R"({"artifacts": []})";
  std::string stdout_text;   // delivered through the OutputSink before the exit
  std::string stderr_text;
  // Held tasks end only once every task not held has been reported: a
  // sibling still running when another task fails.
  bool hold = false;
};

// A Launcher that runs nothing: each started task ends as the script says
// for its (step, attempt), one task per Wait() call, in start order.
class FakeLauncher : public Launcher {
 public:
  using Script = std::function<Ending(const std::string& step, int attempt)>;
  explicit FakeLauncher(Script script) : script_(std::move(script)) {}

  Status Start(const TaskCommand& command) override {
    json payload = json::parse(command.payload);
    started_.push_back(payload);
    running_.push_back({command.key, script_(payload["step"], payload["attempt"])});
    return Status::OK();
  }

  Result<std::vector<TaskExit>> Wait(int, int, OutputSink* sink) override {
    std::vector<TaskExit> exits;
    if (running_.empty()) return exits;
    auto it = running_.begin();
    while (it != running_.end() && it->second.hold) ++it;
    if (it == running_.end()) it = running_.begin();  // only held ones left
    auto [key, ending] = *it;
    running_.erase(it);
    if (sink != nullptr && !ending.stdout_text.empty()) sink->OnOutput(key, 1, ending.stdout_text);
    if (sink != nullptr && !ending.stderr_text.empty()) sink->OnOutput(key, 2, ending.stderr_text);
    TaskExit exit;
    exit.key = key;
    exit.kind = ending.kind;
    exit.exit_code = ending.exit_code;
    exit.signal = ending.signal;
    exit.result = ending.kind == ExitKind::kExited ? ending.result : "";
    exit.started_at = exit.finished_at = 1.0;
    exits.push_back(std::move(exit));
    return exits;
  }

  void KillAll() override {}
  // A killed task ends at once, killed by SIGKILL, as a real launcher reports it.
  void Kill(TaskKey key) override {
    for (auto& [running_key, ending] : running_) {
      if (running_key != key) continue;
      killed_.push_back(key);
      ending.kind = ExitKind::kSignaled;
      ending.signal = 9;
      ending.hold = false;
    }
  }
  int running() const override { return static_cast<int>(running_.size()); }
  const std::vector<TaskKey>& killed() const { return killed_; }

  // Payloads of the tasks started, in order.
  const std::vector<json>& started() const { return started_; }
  std::vector<std::string> started_steps() const {
    std::vector<std::string> steps;
    for (const json& p : started_) steps.push_back(p["step"]);
    return steps;
  }

 private:
  Script script_;
  std::deque<std::pair<TaskKey, Ending>> running_;
  std::vector<json> started_;
  std::vector<TaskKey> killed_;
};

// A FakeLauncher whose task of `step`, once started, does not end until a
// second (read-only) connection sees its row: the engine must commit a
// started task's row by itself. Gives up after 10 s (the test then fails).
class WatchingLauncher : public FakeLauncher {
 public:
  WatchingLauncher(Script script, std::string root, std::string step)
      : FakeLauncher(std::move(script)), root_(std::move(root)), step_(std::move(step)) {}

  Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd, OutputSink* sink) override {
    if (seen.status.empty() && std::chrono::steady_clock::now() < deadline_) {
      for (const json& p : started()) {
        if (p["step"] != step_) continue;
        CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Datastore::Mode::kReadOnly));
        CAIRN_ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, reader->Tasks(p["run_id"].get<int64_t>(), step_));
        if (!tasks.empty()) {
          seen = tasks[0];
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // as a real launcher waits
        return std::vector<TaskExit>{};
      }
    }
    return FakeLauncher::Wait(timeout_ms, wake_fd, sink);
  }

  TaskRecord seen;  // the row the reader saw while the task ran

 private:
  std::string root_, step_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
};

// A result whose one artifact is named after the step.
std::string ResultWith(const std::string& name, char digit) {
  return json{{"artifacts", json::array({json::array({name, std::string(32, digit), 3, "int", "pickle5"})})}}
      .dump();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_OK_AND_ASSIGN(store_, Datastore::Open(dir_.path(), Datastore::Mode::kReadWrite));
  }

  // Loads a tests/graphs shape; `retries`/`catch_step` adjust one step's options.
  void LoadShape(const std::string& name, const std::string& step = "", int retries = 0,
                 bool catch_failure = false) {
    json spec = json::parse(ReadFile(std::string(CAIRN_TEST_GRAPHS_DIR) + "/" + name + ".json"));
    for (json& s : spec["steps"]) {
      if (s["name"] != step) continue;
      s["options"]["retries"] = retries;
      s["options"]["catch"] = catch_failure;
    }
    spec_ = spec.dump();
    Result<Graph> graph = Graph::FromSpec(spec_);
    ASSERT_OK(graph);
    graph_ = std::make_unique<Graph>(std::move(graph).value());
  }

  Result<RunSummary> Run(FakeLauncher& launcher, int64_t origin_run_id = 0,
                         std::vector<std::string> resume_steps = {}) {
    RunOptions options;
    options.root = dir_.path();
    options.graph_json = spec_;
    options.max_workers = 4;
    options.origin_run_id = origin_run_id;
    options.resume_steps = std::move(resume_steps);
    NoteSink sink;
    Engine engine(*graph_, *store_, launcher, sink);
    Result<RunSummary> summary = engine.Run(options);
    notes_ = sink.notes;
    return summary;
  }

  // Gives `step` a code hash in the spec (as graph.py does).
  void SetCodeHash(const std::string& step, const std::string& hash) {
    json spec = json::parse(spec_);
    for (json& s : spec["steps"]) {
      if (s["name"] == step) s["code_hash"] = hash;
    }
    spec_ = spec.dump();
    Result<Graph> graph = Graph::FromSpec(spec_);
    ASSERT_OK(graph);
    graph_ = std::make_unique<Graph>(std::move(graph).value());
  }

  struct NoteSink : EventSink {
    void Note(const std::string& line) override { notes.push_back(line); }
    std::vector<std::string> notes;
  };

  // The recorded task of `step` in `run_id` (the first, if several).
  TaskRecord TaskOf(int64_t run_id, const std::string& step) {
    Result<std::vector<TaskRecord>> tasks = store_->Tasks(run_id, step);
    EXPECT_OK(tasks);
    EXPECT_FALSE(tasks.ok() && tasks.value().empty()) << "no task of " << step;
    return tasks.ok() && !tasks.value().empty() ? tasks.value()[0] : TaskRecord{};
  }

  test::TempDir dir_;
  std::unique_ptr<Datastore> store_;
  std::string spec_;
  std::unique_ptr<Graph> graph_;
  std::vector<std::string> notes_;   // of the last Run
};

TEST_F(EngineTest, LinearRunRecordsEveryTaskWithArtifactsAndLogs) {
  LoadShape("linear");
  FakeLauncher launcher([](const std::string& step, int) {
    Ending e;
    e.result = ResultWith(step + "_value", step == "start" ? 'a' : 'b');
    e.stdout_text = "hello from " + step + "\n";
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "succeeded");
  EXPECT_EQ(summary.tasks_succeeded, 3);
  EXPECT_EQ(launcher.started_steps(), (std::vector<std::string>{"start", "a", "end"}));

  ASSERT_OK_AND_ASSIGN(RunRecord run, store_->GetRun("LinearFlow", summary.run_id));
  EXPECT_EQ(run.status, "succeeded");
  TaskRecord a = TaskOf(summary.run_id, "a");
  EXPECT_EQ(a.status, "succeeded");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].status, "succeeded");
  // Its artifacts are what its result listed.
  std::vector<std::string> names;
  for (const auto& art : a.artifacts) names.push_back(art.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a_value"}));
  EXPECT_EQ(ReadFile(dir_.Join("logs/" + std::to_string(summary.run_id) + "/a/" +
                               std::to_string(a.task_id) + ".0.out")),
            "hello from a\n");
  // The next task was handed its input's artifacts.
  const json& end_payload = launcher.started()[2];
  EXPECT_EQ(end_payload["inputs"][0]["step"], "a");
  EXPECT_EQ(end_payload["inputs"][0]["artifacts"][0][0], "a_value");
}

// What the datastore holds when the first task starts: a kill -9 of the
// engine at that moment must leave a run that resume can continue.
class RecordAtFirstStart : public FakeLauncher {
 public:
  RecordAtFirstStart(Datastore& store, Script script) : FakeLauncher(std::move(script)), store_(store) {}
  Status Start(const TaskCommand& command) override {
    if (!seen_) {
      seen_ = true;
      int64_t run_id = json::parse(command.payload)["run_id"];
      Result<std::vector<TaskRecord>> tasks = store_.Tasks(run_id, "_parameters");
      if (tasks.ok()) params_ = tasks.value();
    }
    return FakeLauncher::Start(command);
  }
  std::vector<TaskRecord> params_;

 private:
  Datastore& store_;
  bool seen_ = false;
};

TEST_F(EngineTest, ParametersAreCommittedWithTheRunBeforeAnyTaskStarts) {
  LoadShape("linear");
  RecordAtFirstStart launcher(*store_, [](const std::string&, int) { return Ending{}; });
  RunOptions options;
  options.root = dir_.path();
  options.graph_json = spec_;
  options.param_artifacts_json = json::array({json::array({"greeting", std::string(32, 'c'), 7, "str", "pickle5"})}).dump();
  EventSink sink;
  Engine engine(*graph_, *store_, launcher, sink);
  ASSERT_OK(engine.Run(options));
  ASSERT_EQ(launcher.params_.size(), 1u);
  ASSERT_EQ(launcher.params_[0].artifacts.size(), 1u);
  EXPECT_EQ(launcher.params_[0].artifacts[0].name, "greeting");
}

TEST_F(EngineTest, FailureFailsTheRunWhileARunningSiblingFinishes) {
  LoadShape("branch");
  FakeLauncher launcher([](const std::string& step, int) {
    Ending e;
    if (step == "a") {
      e.exit_code = 1;
      e.result = R"({"exception": {"type": "ValueError", "message": "no good", "traceback": ""}})";
      e.stderr_text = "Traceback...\nValueError: no good\n";
    }
    if (step == "b") e.hold = true;  // still running when a fails
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "failed");
  EXPECT_EQ(summary.failure, "step 'a' (task 2) failed: ValueError: no good");
  // Nothing new starts after the failure; the join never runs.
  EXPECT_EQ(launcher.started_steps(), (std::vector<std::string>{"start", "a", "b"}));

  TaskRecord a = TaskOf(summary.run_id, "a");
  EXPECT_EQ(a.status, "failed");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].status, "failed");
  EXPECT_EQ(a.attempts[0].exit_code, 1);
  EXPECT_EQ(a.attempts[0].reason, "ValueError: no good");
  EXPECT_TRUE(a.artifacts.empty());
  TaskRecord b = TaskOf(summary.run_id, "b");
  EXPECT_EQ(b.status, "succeeded");
  ASSERT_OK_AND_ASSIGN(RunRecord run, store_->GetRun("BranchFlow", summary.run_id));
  EXPECT_EQ(run.status, "failed");
}

TEST_F(EngineTest, ParallelGangIsKilledAndRetriedWholeWhenOneNodeFails) {
  spec_ = R"({"flow": "ParallelFlow", "file": "/flows/parallel.py", "steps": [
    {"name": "start", "line": 5, "transition": "foreach", "next": ["train"],
     "foreach": "_parallel_ubf_iter", "parallel": true},
    {"name": "train", "line": 10, "transition": "linear", "next": ["join"], "options": {"retries": 1}},
    {"name": "join", "line": 15, "transition": "linear", "next": ["end"], "is_join": true},
    {"name": "end", "line": 20, "transition": "end"}]})";
  ASSERT_OK_AND_ASSIGN(Graph graph, Graph::FromSpec(spec_));
  graph_ = std::make_unique<Graph>(std::move(graph));
  int train_starts = 0;
  FakeLauncher launcher([&train_starts](const std::string& step, int attempt) {
    Ending e;
    if (step == "start") e.result = R"({"artifacts": [], "foreach_count": 3})";
    if (step == "train" && attempt == 0) {
      // Node 1 fails; nodes 0 and 2 would run on until they are killed.
      if (train_starts++ == 1) {
        e.exit_code = 1;
        e.result = R"({"exception": {"type": "RuntimeError", "message": "node 1 fails", "traceback": ""}})";
      } else {
        e.hold = true;
      }
    }
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "succeeded");
  EXPECT_EQ(launcher.started_steps(), (std::vector<std::string>{
      "start", "train", "train", "train", "train", "train", "train", "join", "end"}));
  EXPECT_EQ(launcher.killed(), (std::vector<TaskKey>{2, 4}));
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> train, store_->Tasks(summary.run_id, "train"));
  ASSERT_EQ(train.size(), 3u);
  std::vector<std::string> first;
  for (const TaskRecord& t : train) {
    ASSERT_EQ(t.attempts.size(), 2u);
    first.push_back(t.attempts[0].status + ": " + t.attempts[0].reason);
    EXPECT_EQ(t.attempts[1].status, "succeeded");
  }
  EXPECT_EQ(first, (std::vector<std::string>{
      "killed: its @parallel gang was stopped: task 3 failed", "failed: RuntimeError: node 1 fails",
      "killed: its @parallel gang was stopped: task 3 failed"}));
  // The join has every node as an input, in node order.
  EXPECT_EQ(TaskOf(summary.run_id, "join").parents, (std::vector<TaskKey>{2, 3, 4}));
}

TEST_F(EngineTest, AStartedTaskIsCommittedAsRunningThenReplacedWhenItFinishes) {
  LoadShape("linear");
  WatchingLauncher launcher([](const std::string& step, int) { return Ending{}; }, dir_.path(), "a");
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "succeeded");
  EXPECT_EQ(launcher.seen.status, "running");
  EXPECT_EQ(launcher.seen.finished_at, 0);
  ASSERT_EQ(launcher.seen.attempts.size(), 1u);
  EXPECT_EQ(launcher.seen.attempts[0].status, "running");
  EXPECT_TRUE(launcher.seen.artifacts.empty());

  TaskRecord a = TaskOf(summary.run_id, "a");
  EXPECT_EQ(a.status, "succeeded");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].status, "succeeded");
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> all, store_->Tasks(summary.run_id));
  EXPECT_EQ(all.size(), 4u);  // _parameters, start, a, end: one row each
}

TEST_F(EngineTest, RetryThenSuccessRecordsBothAttempts) {
  LoadShape("linear", "a", /*retries=*/2);
  FakeLauncher launcher([](const std::string& step, int attempt) {
    Ending e;
    if (step == "a" && attempt == 0) {
      e.kind = ExitKind::kSignaled;
      e.signal = 11;
      e.stderr_text = "Fatal Python error: Segmentation fault\n";
    }
    e.stdout_text = "attempt " + std::to_string(attempt) + "\n";
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "succeeded");
  EXPECT_EQ(launcher.started_steps(), (std::vector<std::string>{"start", "a", "a", "end"}));
  EXPECT_EQ(launcher.started()[2]["attempt"], 1);

  TaskRecord a = TaskOf(summary.run_id, "a");
  EXPECT_EQ(a.status, "succeeded");
  ASSERT_EQ(a.attempts.size(), 2u);
  EXPECT_EQ(a.attempts[0].attempt, 0);
  EXPECT_EQ(a.attempts[0].status, "killed");
  EXPECT_EQ(a.attempts[0].signal, 11);
  EXPECT_EQ(a.attempts[0].reason, "the task was killed by signal 11 (SIGSEGV)");
  EXPECT_EQ(a.attempts[1].attempt, 1);
  EXPECT_EQ(a.attempts[1].status, "succeeded");
  // Each attempt has its own log.
  std::string base = dir_.Join("logs/" + std::to_string(summary.run_id) + "/a/" + std::to_string(a.task_id));
  EXPECT_EQ(ReadFile(base + ".0.out"), "attempt 0\n");
  EXPECT_EQ(ReadFile(base + ".0.err"), "Fatal Python error: Segmentation fault\n");
  EXPECT_EQ(ReadFile(base + ".1.out"), "attempt 1\n");
}

TEST_F(EngineTest, CatchRunsAFallbackAttemptThatKnowsTheFailure) {
  LoadShape("linear", "a", /*retries=*/0, /*catch_failure=*/true);
  FakeLauncher launcher([](const std::string& step, int attempt) {
    Ending e;
    if (step == "a" && attempt == 0) e.kind = ExitKind::kTimedOut;
    if (step == "a" && attempt == 1) e.result = R"({"artifacts": [], "caught": "TaskTimeout: slow"})";
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary summary, Run(launcher));
  EXPECT_EQ(summary.status, "succeeded");
  const json& fallback = launcher.started()[2];
  EXPECT_EQ(fallback["fallback"], true);
  EXPECT_EQ(fallback["failure_status"], "timeout");
  EXPECT_EQ(fallback["failure"], "the task timed out after 0 s");
  TaskRecord a = TaskOf(summary.run_id, "a");
  ASSERT_EQ(a.attempts.size(), 2u);
  EXPECT_EQ(a.attempts[0].status, "timeout");
  EXPECT_EQ(a.attempts[1].status, "succeeded");
  EXPECT_EQ(a.attempts[1].reason, "@catch caught: TaskTimeout: slow");
}

TEST_F(EngineTest, ResumeClonesWhatSucceededBeforeTheFailedStep) {
  LoadShape("branch");
  FakeLauncher first([](const std::string& step, int) {
    Ending e;
    e.result = ResultWith(step + "_value", 'c');
    if (step == "b") e.exit_code = 3;
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary failed, Run(first));
  ASSERT_EQ(failed.status, "failed");
  TaskRecord origin_a = TaskOf(failed.run_id, "a");

  FakeLauncher second([](const std::string& step, int) {
    Ending e;
    e.result = ResultWith(step + "_value", 'd');
    return e;
  });
  ASSERT_OK_AND_ASSIGN(RunSummary resumed, Run(second, failed.run_id));
  EXPECT_EQ(resumed.status, "succeeded");
  EXPECT_EQ(resumed.tasks_cloned, 2);
  // Only the failed step and what follows it ran again.
  EXPECT_EQ(second.started_steps(), (std::vector<std::string>{"b", "join", "end"}));

  TaskRecord a = TaskOf(resumed.run_id, "a");
  EXPECT_EQ(a.origin, "BranchFlow/" + std::to_string(failed.run_id) + "/a/" + std::to_string(origin_a.task_id));
  ASSERT_EQ(a.artifacts.size(), 1u);
  EXPECT_EQ(a.artifacts[0].digest, origin_a.artifacts[0].digest);  // same blob, no copy
  EXPECT_EQ(a.attempts[0].reason, "cloned");
  EXPECT_EQ(TaskOf(resumed.run_id, "b").origin, "");
  // The re-run join got the clone's artifacts as an input.
  const json& join = second.started()[1];
  EXPECT_EQ(join["inputs"][0]["artifacts"][0][1], std::string(32, 'c'));
  EXPECT_EQ(join["origin_run_id"], failed.run_id);
  ASSERT_OK_AND_ASSIGN(RunRecord run, store_->GetRun("BranchFlow", resumed.run_id));
  EXPECT_EQ(run.origin_run_id, failed.run_id);
}

// A foreach of 5 whose splits 3 and 4 failed (as an interrupted run's
// killed splits do): the scripted 'work' task fails from its `fail_from`th start.
FakeLauncher::Script ForeachScript(int fail_from, char digit) {
  auto started = std::make_shared<int>(0);
  return [=](const std::string& step, int) {
    Ending e;
    if (step == "start") {
      e.result = json{{"artifacts", json::array({json::array({"items", std::string(32, 'i'), 3, "list", "pickle5"})})},
                      {"foreach_count", 5}}.dump();
    } else {
      e.result = ResultWith(step + "_value", digit);
    }
    if (step == "work" && (*started)++ >= fail_from) e.exit_code = 1;
    return e;
  };
}

TEST_F(EngineTest, ResumeClonesTheFinishedSplitsOfAStepWhoseCodeIsUnchanged) {
  LoadShape("foreach");
  SetCodeHash("work", "hash-of-work");
  FakeLauncher first(ForeachScript(3, 'a'));
  ASSERT_OK_AND_ASSIGN(RunSummary failed, Run(first));
  ASSERT_EQ(failed.status, "failed");

  FakeLauncher second(ForeachScript(100, 'b'));
  ASSERT_OK_AND_ASSIGN(RunSummary resumed, Run(second, failed.run_id));
  EXPECT_EQ(resumed.status, "succeeded");
  // start and 3 finished splits cloned; the 2 failed splits, join and end ran.
  EXPECT_EQ(resumed.tasks_cloned, 4);
  EXPECT_EQ(second.started_steps(), (std::vector<std::string>{"work", "work", "join", "end"}));
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> work, store_->Tasks(resumed.run_id, "work"));
  int cloned = 0;
  for (const TaskRecord& t : work) cloned += t.origin.empty() ? 0 : 1;
  EXPECT_EQ(cloned, 3);
  EXPECT_EQ(notes_, (std::vector<std::string>{"cloned 3 of 5 splits of 'work': its code is unchanged since run " +
                                              std::to_string(failed.run_id)}));
}

TEST_F(EngineTest, ResumeRerunsEverySplitOfAStepWhoseCodeChanged) {
  LoadShape("foreach");
  SetCodeHash("work", "hash-of-work");
  FakeLauncher first(ForeachScript(3, 'a'));
  ASSERT_OK_AND_ASSIGN(RunSummary failed, Run(first));

  SetCodeHash("work", "hash-of-the-edited-work");
  FakeLauncher second(ForeachScript(100, 'b'));
  ASSERT_OK_AND_ASSIGN(RunSummary resumed, Run(second, failed.run_id));
  EXPECT_EQ(resumed.status, "succeeded");
  EXPECT_EQ(resumed.tasks_cloned, 1);  // start only
  EXPECT_EQ(second.started_steps().size(), 7u);
  EXPECT_EQ(notes_, (std::vector<std::string>{"re-running every task of 'work': its code changed since run " +
                                              std::to_string(failed.run_id)}));
}

TEST_F(EngineTest, ResumeRerunsEverySplitWithoutAKnownHashOrWhenAStepIsNamed) {
  LoadShape("foreach");  // no code hashes: an origin from before them
  FakeLauncher first(ForeachScript(3, 'a'));
  ASSERT_OK_AND_ASSIGN(RunSummary failed, Run(first));
  FakeLauncher second(ForeachScript(100, 'b'));
  ASSERT_OK_AND_ASSIGN(RunSummary resumed, Run(second, failed.run_id));
  EXPECT_EQ(resumed.tasks_cloned, 1);
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("recorded no code hash"), std::string::npos) << notes_[0];

  // Hashes equal, but `resume work` asks for the step to run again.
  SetCodeHash("work", "hash-of-work");
  FakeLauncher third(ForeachScript(3, 'a'));
  ASSERT_OK_AND_ASSIGN(RunSummary hashed, Run(third));
  FakeLauncher fourth(ForeachScript(100, 'b'));
  ASSERT_OK_AND_ASSIGN(RunSummary named, Run(fourth, hashed.run_id, {"work"}));
  EXPECT_EQ(named.status, "succeeded");
  EXPECT_EQ(named.tasks_cloned, 1);
  EXPECT_EQ(fourth.started_steps().size(), 7u);
}

}  // namespace
}  // namespace cairn
