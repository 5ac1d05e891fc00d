// Plan decisions, driven by hand as ninja's PlanTest does: FindWork, then
// TaskSucceeded or TaskFailed. No processes, no clock.
#include "sched/plan.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graph/graph.h"
#include "test_util.h"

namespace cairn {
namespace {

using Strings = std::vector<std::string>;
using Keys = std::vector<TaskKey>;

class PlanTest : public ::testing::Test {
 protected:
  // Builds the graph from a tests/graphs file and a Plan over it.
  void LoadShape(const std::string& name) {
    std::ifstream in(std::string(CAIRN_TEST_GRAPHS_DIR) + "/" + name + ".json");
    std::stringstream text;
    text << in.rdbuf();
    LoadSpec(text.str());
  }
  void LoadSpec(const std::string& spec) {
    Result<Graph> graph = Graph::FromSpec(spec);
    ASSERT_OK(graph);
    graph_.emplace(std::move(graph).value());
    plan_ = std::make_unique<Plan>(*graph_);
  }

  std::string StepOf(TaskKey key) const {
    return graph_->step(plan_->task(key).step).name;
  }
  // Hands out every ready task, in order.
  Keys TakeAll() {
    Keys keys;
    while (std::optional<TaskKey> key = plan_->FindWork()) keys.push_back(*key);
    return keys;
  }
  Strings StepsOf(const Keys& keys) const {
    Strings names;
    for (TaskKey key : keys) names.push_back(StepOf(key));
    return names;
  }
  // Takes the one ready task and checks it belongs to `step`.
  TaskKey TakeOne(const std::string& step) {
    std::optional<TaskKey> key = plan_->FindWork();
    EXPECT_TRUE(key.has_value()) << "nothing ready, expected " << step;
    if (!key) return 0;
    EXPECT_EQ(StepOf(*key), step);
    return *key;
  }
  void Succeed(TaskKey key, TaskOutcome outcome = {}) {
    EXPECT_OK(plan_->TaskSucceeded(key, outcome));
  }
  static TaskOutcome Items(int n) {
    TaskOutcome outcome;
    outcome.foreach_count = n;
    return outcome;
  }
  static TaskOutcome Case(const std::string& value) {
    TaskOutcome outcome;
    outcome.switch_case = value;
    return outcome;
  }

  std::optional<Graph> graph_;
  std::unique_ptr<Plan> plan_;
};

TEST_F(PlanTest, LinearRunsOneStepAfterAnother) {
  LoadShape("linear");
  EXPECT_EQ(plan_->Start(), 1);
  EXPECT_FALSE(plan_->Done());
  TaskKey start = TakeOne("start");
  EXPECT_EQ(plan_->running(), 1);
  EXPECT_EQ(plan_->FindWork(), std::nullopt);
  Succeed(start);
  TaskKey a = TakeOne("a");
  EXPECT_EQ(a, 2);
  EXPECT_EQ(plan_->task(a).parents, Keys({start}));
  Succeed(a);
  TaskKey end = TakeOne("end");
  EXPECT_EQ(end, 3);
  EXPECT_FALSE(plan_->Done());
  Succeed(end);
  EXPECT_TRUE(plan_->Done());
  EXPECT_FALSE(plan_->failed());
  EXPECT_EQ(plan_->size(), 3u);
  EXPECT_EQ(plan_->CloneKey(start), "start[]#0");
  EXPECT_EQ(plan_->task(end).state, TaskState::kSucceeded);
}

TEST_F(PlanTest, BranchCreatesJoinOnlyAfterEveryBranch) {
  LoadShape("branch");
  plan_->Start();
  TaskKey start = TakeOne("start");
  Succeed(start);
  Keys branches = TakeAll();
  ASSERT_EQ(StepsOf(branches), Strings({"a", "b"}));
  const PlannedTask& a = plan_->task(branches[0]);
  ASSERT_EQ(a.stack.size(), 1u);
  EXPECT_EQ(a.stack[0].split_task, start);
  EXPECT_EQ(a.stack[0].index, 0);
  EXPECT_EQ(a.stack[0].width, 2);
  EXPECT_FALSE(a.stack[0].foreach);
  EXPECT_EQ(plan_->task(branches[1]).stack[0].index, 1);
  EXPECT_EQ(plan_->CloneKey(branches[1]), "b[1]#0");

  // b finishes first; the join still lists its parents in split order.
  Succeed(branches[1]);
  EXPECT_EQ(plan_->FindWork(), std::nullopt);
  EXPECT_EQ(plan_->size(), 3u);
  Succeed(branches[0]);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, branches);
  EXPECT_TRUE(plan_->task(join).stack.empty());
  EXPECT_EQ(plan_->CloneKey(join), "join[]#0");
}

TEST_F(PlanTest, NestedBranchJoinsInnerSplitFirst) {
  LoadShape("nested_branch");
  plan_->Start();
  Succeed(TakeOne("start"));
  Keys outer = TakeAll();
  ASSERT_EQ(StepsOf(outer), Strings({"a", "b"}));
  Succeed(outer[0]);
  Succeed(outer[1]);
  Keys inner = TakeAll();
  ASSERT_EQ(StepsOf(inner), Strings({"a1", "a2"}));
  EXPECT_EQ(plan_->CloneKey(inner[1]), "a2[0.1]#0");
  Succeed(inner[1]);
  Succeed(inner[0]);
  TaskKey a_join = TakeOne("a_join");
  EXPECT_EQ(plan_->task(a_join).parents, inner);
  ASSERT_EQ(plan_->task(a_join).stack.size(), 1u);
  Succeed(a_join);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, Keys({a_join, outer[1]}));
}

TEST_F(PlanTest, ForeachAddsOneTaskPerItemAndJoinsInSplitOrder) {
  LoadShape("foreach");
  plan_->Start();
  TaskKey start = TakeOne("start");
  Succeed(start, Items(5));
  Keys work = TakeAll();
  ASSERT_EQ(work.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const PlannedTask& t = plan_->task(work[static_cast<size_t>(i)]);
    EXPECT_EQ(StepOf(t.key), "work");
    ASSERT_EQ(t.stack.size(), 1u);
    EXPECT_EQ(t.stack[0].index, i);
    EXPECT_EQ(t.stack[0].width, 5);
    EXPECT_TRUE(t.stack[0].foreach);
    EXPECT_EQ(t.occurrence, 0);
  }
  EXPECT_EQ(plan_->CloneKey(work[3]), "work[3]#0");
  for (TaskKey key : {work[4], work[1], work[3], work[0]}) Succeed(key);
  EXPECT_EQ(plan_->FindWork(), std::nullopt);
  Succeed(work[2]);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, work);
  Succeed(join);
  Succeed(TakeOne("end"));
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, ForeachWithNoItemsFailsTheRun) {
  LoadShape("foreach");
  plan_->Start();
  TaskKey start = TakeOne("start");
  Status status = plan_->TaskSucceeded(start, Items(0));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("foreach produced no items"), std::string::npos);
  EXPECT_TRUE(plan_->failed());
  EXPECT_EQ(plan_->task(start).state, TaskState::kFailed);
  EXPECT_EQ(plan_->FindWork(), std::nullopt);
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, NestedForeachJoinsEachLevel) {
  LoadShape("nested_foreach");
  plan_->Start();
  Succeed(TakeOne("start"), Items(2));
  Keys outer = TakeAll();
  ASSERT_EQ(StepsOf(outer), Strings({"outer", "outer"}));
  Succeed(outer[0], Items(3));
  Succeed(outer[1], Items(3));
  Keys inner = TakeAll();
  ASSERT_EQ(inner.size(), 6u);
  EXPECT_EQ(plan_->CloneKey(inner[0]), "inner[0.0]#0");
  EXPECT_EQ(plan_->CloneKey(inner[5]), "inner[1.2]#0");
  std::reverse(inner.begin(), inner.end());
  for (TaskKey key : inner) Succeed(key);
  Keys inner_joins = TakeAll();
  ASSERT_EQ(StepsOf(inner_joins), Strings({"inner_join", "inner_join"}));
  // Reversed, the second outer item's inner tasks finished first.
  EXPECT_EQ(plan_->CloneKey(inner_joins[0]), "inner_join[1]#0");
  EXPECT_EQ(plan_->task(inner_joins[0]).parents, Keys({inner[2], inner[1], inner[0]}));
  Succeed(inner_joins[0]);
  Succeed(inner_joins[1]);
  TaskKey outer_join = TakeOne("outer_join");
  EXPECT_EQ(plan_->task(outer_join).parents, Keys({inner_joins[1], inner_joins[0]}));
  Succeed(outer_join);
  Succeed(TakeOne("end"));
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, ForeachInsideBranchJoinsBothLevels) {
  LoadShape("foreach_in_branch");
  plan_->Start();
  Succeed(TakeOne("start"));
  Keys branches = TakeAll();
  ASSERT_EQ(StepsOf(branches), Strings({"fan", "side"}));
  Succeed(branches[1]);
  Succeed(branches[0], Items(2));
  Keys work = TakeAll();
  ASSERT_EQ(StepsOf(work), Strings({"work", "work"}));
  EXPECT_EQ(plan_->CloneKey(work[1]), "work[0.1]#0");
  Succeed(work[0]);
  Succeed(work[1]);
  TaskKey fan_join = TakeOne("fan_join");
  Succeed(fan_join);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, Keys({fan_join, branches[1]}));
}

TEST_F(PlanTest, BranchStraightIntoJoinCountsAsAnArrival) {
  LoadSpec(R"({"steps": [
    {"name": "start", "transition": "branch", "next": ["a", "join"]},
    {"name": "a", "transition": "linear", "next": ["join"]},
    {"name": "join", "transition": "linear", "next": ["end"], "is_join": true},
    {"name": "end", "transition": "end"}]})");
  plan_->Start();
  TaskKey start = TakeOne("start");
  Succeed(start);
  TaskKey a = TakeOne("a");
  EXPECT_EQ(plan_->FindWork(), std::nullopt);
  Succeed(a);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, Keys({a, start}));
}

TEST_F(PlanTest, SwitchRunsOnlyTheChosenCase) {
  LoadShape("switch");
  plan_->Start();
  Succeed(TakeOne("start"), Case("high"));
  Keys next = TakeAll();
  EXPECT_EQ(StepsOf(next), Strings({"big"}));
  EXPECT_TRUE(plan_->task(next[0]).stack.empty());
  Succeed(next[0]);
  Succeed(TakeOne("end"));
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, SwitchWithUnknownValueFailsNamingTheCases) {
  LoadShape("switch");
  plan_->Start();
  TaskKey start = TakeOne("start");
  Status status = plan_->TaskSucceeded(start, Case("medium"));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("'medium'"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("'low', 'high'"), std::string::npos) << status.message();
  EXPECT_TRUE(plan_->failed());
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, SwitchInsideForeachJoinsTheChosenTasks) {
  LoadShape("switch_in_foreach");
  plan_->Start();
  Succeed(TakeOne("start"), Items(3));
  Keys picks = TakeAll();
  ASSERT_EQ(picks.size(), 3u);
  Succeed(picks[2], Case("low"));
  Succeed(picks[0], Case("high"));
  Succeed(picks[1], Case("low"));
  Keys chosen = TakeAll();
  ASSERT_EQ(StepsOf(chosen), Strings({"small", "big", "small"}));
  for (TaskKey key : chosen) Succeed(key);
  TaskKey join = TakeOne("join");
  // In item order: big (item 0), small (item 1), small (item 2).
  EXPECT_EQ(plan_->task(join).parents, Keys({chosen[1], chosen[2], chosen[0]}));
}

TEST_F(PlanTest, RecursiveSwitchLoopsUntilItPicksTheExit) {
  LoadShape("recursive_switch");
  plan_->Start();
  Succeed(TakeOne("start"));
  Strings clone_keys;
  for (int round = 0; round < 3; ++round) {
    TaskKey work = TakeOne("work");
    EXPECT_EQ(plan_->task(work).occurrence, round);
    Succeed(work);
    TaskKey check = TakeOne("check");
    EXPECT_EQ(plan_->task(check).occurrence, round);
    EXPECT_EQ(plan_->task(check).parents, Keys({work}));
    clone_keys.push_back(plan_->CloneKey(work));
    clone_keys.push_back(plan_->CloneKey(check));
    Succeed(check, Case(round < 2 ? "again" : "done"));
  }
  EXPECT_EQ(clone_keys, Strings({"work[]#0", "check[]#0", "work[]#1", "check[]#1",
                                 "work[]#2", "check[]#2"}));
  Succeed(TakeOne("end"));
  EXPECT_TRUE(plan_->Done());
}

std::string RetrySpec(int retries, bool catch_failure) {
  return std::string(R"({"steps": [{"name": "start", "transition": "linear", "next": ["end"],)") +
         R"("options": {"retries": )" + std::to_string(retries) +
         R"(, "catch": )" + (catch_failure ? "true" : "false") +
         R"(}}, {"name": "end", "transition": "end"}]})";
}

TEST_F(PlanTest, FailedTaskRetriesThenFailsTheRun) {
  LoadSpec(RetrySpec(2, false));
  plan_->Start();
  TaskKey start = TakeOne("start");
  for (int attempt = 0; attempt < 2; ++attempt) {
    EXPECT_EQ(plan_->task(start).attempt, attempt);
    EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kRetry);
    EXPECT_EQ(plan_->task(start).state, TaskState::kWaiting);
    EXPECT_EQ(plan_->FindWork(), std::nullopt);
    EXPECT_FALSE(plan_->Done()) << "a task awaits its retry";
    plan_->Requeue(start);
    EXPECT_EQ(TakeOne("start"), start);
  }
  EXPECT_EQ(plan_->task(start).attempt, 2);
  EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kFail);
  EXPECT_EQ(plan_->task(start).state, TaskState::kFailed);
  EXPECT_FALSE(plan_->task(start).fallback);
  EXPECT_TRUE(plan_->failed());
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, CatchRunsAFallbackAfterTheLastRetry) {
  LoadSpec(RetrySpec(1, true));
  plan_->Start();
  TaskKey start = TakeOne("start");
  EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kRetry);
  plan_->Requeue(start);
  TakeOne("start");
  EXPECT_FALSE(plan_->task(start).fallback);
  EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kFallback);
  plan_->Requeue(start);
  TakeOne("start");
  EXPECT_TRUE(plan_->task(start).fallback);
  EXPECT_EQ(plan_->task(start).attempt, 2);
  // A fallback that succeeds lets the run go on.
  Succeed(start);
  Succeed(TakeOne("end"));
  EXPECT_TRUE(plan_->Done());
  EXPECT_FALSE(plan_->failed());
}

TEST_F(PlanTest, FailedFallbackFailsTheRun) {
  LoadSpec(RetrySpec(0, true));
  plan_->Start();
  TaskKey start = TakeOne("start");
  EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kFallback);
  plan_->Requeue(start);
  TakeOne("start");
  EXPECT_EQ(plan_->TaskFailed(start), FailureAction::kFail);
  EXPECT_TRUE(plan_->failed());
}

TEST_F(PlanTest, FailureStopsNewWorkButDoneWaitsForRunningTasks) {
  LoadShape("foreach");
  plan_->Start();
  Succeed(TakeOne("start"), Items(3));
  TaskKey first = TakeOne("work");
  TaskKey second = TakeOne("work");
  EXPECT_EQ(plan_->TaskFailed(first), FailureAction::kFail);
  EXPECT_TRUE(plan_->failed());
  EXPECT_EQ(plan_->FindWork(), std::nullopt) << "the third item must not start";
  EXPECT_FALSE(plan_->Done()) << "the second item is still running";
  EXPECT_EQ(plan_->running(), 1);
  Succeed(second);
  EXPECT_EQ(plan_->running(), 0);
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, NoRetryOnceTheRunHasFailed) {
  LoadSpec(R"({"steps": [
    {"name": "start", "transition": "branch", "next": ["a", "b"]},
    {"name": "a", "transition": "linear", "next": ["join"]},
    {"name": "b", "transition": "linear", "next": ["join"], "options": {"retries": 3}},
    {"name": "join", "transition": "linear", "next": ["end"], "is_join": true},
    {"name": "end", "transition": "end"}]})");
  plan_->Start();
  Succeed(TakeOne("start"));
  Keys branches = TakeAll();
  EXPECT_EQ(plan_->TaskFailed(branches[0]), FailureAction::kFail);
  EXPECT_EQ(plan_->TaskFailed(branches[1]), FailureAction::kFail);
  EXPECT_TRUE(plan_->Done());
}

TEST_F(PlanTest, WideForeachPlansQuickly) {
  LoadShape("foreach");
  const int kItems = 10000;
  auto begin = std::chrono::steady_clock::now();
  plan_->Start();
  Succeed(TakeOne("start"), Items(kItems));
  Keys work = TakeAll();
  ASSERT_EQ(work.size(), static_cast<size_t>(kItems));
  // Out of order, as parallel tasks finish.
  for (size_t i = 0; i < work.size(); i += 2) Succeed(work[i]);
  for (size_t i = 1; i < work.size(); i += 2) Succeed(work[i]);
  TaskKey join = TakeOne("join");
  Succeed(join);
  Succeed(TakeOne("end"));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_TRUE(plan_->Done());
  EXPECT_EQ(plan_->task(join).parents, work);
  EXPECT_EQ(plan_->CloneKey(work.back()), "work[9999]#0");
  EXPECT_LT(seconds, 0.5);
}

// self.next(self.train, num_parallel=N) into a @parallel step: a foreach whose
// tasks are a gang, handed out whole.
constexpr char kParallelSpec[] = R"({"flow": "ParallelFlow", "file": "/flows/parallel.py", "steps": [
  {"name": "start", "line": 5, "transition": "foreach", "next": ["train"], "foreach": "_parallel_ubf_iter",
   "parallel": true},
  {"name": "train", "line": 10, "transition": "linear", "next": ["join"]},
  {"name": "join", "line": 15, "transition": "linear", "next": ["end"], "is_join": true},
  {"name": "end", "line": 20, "transition": "end"}]})";

TEST_F(PlanTest, ParallelSplitMakesAGangThatIsReadyWhole) {
  LoadSpec(kParallelSpec);
  plan_->Start();
  EXPECT_EQ(plan_->ReadyGang(), 0);  // start is no gang member
  TaskKey start = TakeOne("start");
  Succeed(start, Items(3));
  EXPECT_EQ(plan_->ReadyGang(), 3);
  Keys members = plan_->GangMembers(start);
  ASSERT_EQ(members.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(plan_->task(members[static_cast<size_t>(i)]).gang, start);
    EXPECT_EQ(plan_->task(members[static_cast<size_t>(i)]).stack.back().index, i);
  }
  Keys taken = TakeAll();
  EXPECT_EQ(taken, members);
  EXPECT_EQ(plan_->ReadyGang(), 0);

  // A failed attempt: the Engine fails every member, then requeues them in a
  // row; the gang is ready whole again only once all are back.
  for (TaskKey key : members) EXPECT_EQ(plan_->TaskFailed(key), FailureAction::kFail);
  EXPECT_TRUE(plan_->failed());
}

TEST_F(PlanTest, ParallelGangIsRequeuedWholeAndJoinsAllNodes) {
  std::string spec = kParallelSpec;
  spec.replace(spec.find(R"("next": ["join"]})"), 17, R"("next": ["join"], "options": {"retries": 1}})");
  LoadSpec(spec);
  plan_->Start();
  TaskKey start = TakeOne("start");
  Succeed(start, Items(2));
  Keys members = TakeAll();
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(plan_->TaskFailed(members[0]), FailureAction::kRetry);
  plan_->Requeue(members[0]);
  EXPECT_EQ(plan_->ReadyGang(), -1);  // one member back: not whole yet
  EXPECT_EQ(plan_->TaskFailed(members[1]), FailureAction::kRetry);
  plan_->Requeue(members[1]);
  EXPECT_EQ(plan_->ReadyGang(), 2);
  EXPECT_EQ(TakeAll(), members);
  Succeed(members[1]);
  Succeed(members[0]);
  TaskKey join = TakeOne("join");
  EXPECT_EQ(plan_->task(join).parents, members);
}

TEST_F(PlanTest, ParallelWiderThanMaxWorkersFailsTheSplit) {
  LoadSpec(kParallelSpec);
  plan_->set_max_gang(2);
  plan_->Start();
  TaskKey start = TakeOne("start");
  Status st = plan_->TaskSucceeded(start, Items(3));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("num_parallel=3 is more than --max-workers 2"), std::string::npos);
  EXPECT_TRUE(plan_->failed());
}

}  // namespace
}  // namespace cairn
