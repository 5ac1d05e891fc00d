// Graph::FromSpec on the valid shapes: parsing, successors and predecessors,
// matching joins, ReachableFrom. validate_test.cc covers invalid specs.
#include "graph/graph.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace cairn {
namespace {

std::string ReadGraphFile(const std::string& name) {
  std::ifstream in(std::string(CAIRN_TEST_GRAPHS_DIR) + "/" + name + ".json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<Graph> Load(const std::string& name) { return Graph::FromSpec(ReadGraphFile(name)); }

// The names of `ids`, for readable expectations.
std::vector<std::string> Names(const Graph& graph, const std::vector<StepId>& ids) {
  std::vector<std::string> names;
  for (StepId id : ids) names.push_back(graph.step(id).name);
  return names;
}

std::string JoinOf(const Graph& graph, const char* split) {
  StepId join = graph.step(graph.Find(split)).matching_join;
  return join == kNoStep ? "" : graph.step(join).name;
}

using Strings = std::vector<std::string>;

TEST(GraphTest, EveryShapeValidates) {
  for (const char* shape :
       {"linear", "branch", "nested_branch", "foreach", "nested_foreach",
        "foreach_in_branch", "branch_in_foreach", "switch", "switch_in_foreach",
        "recursive_switch"}) {
    SCOPED_TRACE(shape);
    std::string spec = ReadGraphFile(shape);
    ASSERT_FALSE(spec.empty()) << "missing tests/graphs/" << shape << ".json";
    Result<Graph> graph = Graph::FromSpec(spec);
    ASSERT_OK(graph);
    EXPECT_EQ(graph->step(graph->start()).name, "start");
    EXPECT_EQ(graph->step(graph->end()).name, "end");
  }
}

TEST(GraphTest, LinearKeepsNamesLinesAndEdges) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("linear"));
  EXPECT_EQ(graph.flow_name(), "LinearFlow");
  EXPECT_EQ(graph.file(), "/flows/linear.py");
  ASSERT_EQ(graph.steps().size(), 3u);
  const Step& start = graph.step(graph.start());
  EXPECT_EQ(start.line, 5);
  EXPECT_EQ(start.doc, "The first step.");
  EXPECT_EQ(start.transition, Transition::kLinear);
  EXPECT_EQ(Names(graph, start.next), Strings({"a"}));
  EXPECT_TRUE(start.prev.empty());
  const Step& a = graph.step(graph.Find("a"));
  EXPECT_EQ(Names(graph, a.prev), Strings({"start"}));
  EXPECT_EQ(graph.step(graph.end()).transition, Transition::kEnd);
  EXPECT_TRUE(graph.step(graph.end()).next.empty());
  EXPECT_EQ(graph.Find("nope"), kNoStep);
}

TEST(GraphTest, BranchJoinHasBothBranchesAsPrev) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("branch"));
  const Step& start = graph.step(graph.start());
  EXPECT_EQ(start.transition, Transition::kBranch);
  EXPECT_EQ(Names(graph, start.next), Strings({"a", "b"}));
  EXPECT_EQ(JoinOf(graph, "start"), "join");
  const Step& join = graph.step(graph.Find("join"));
  EXPECT_TRUE(join.is_join);
  EXPECT_EQ(Names(graph, join.prev), Strings({"a", "b"}));
}

TEST(GraphTest, NestedSplitsMatchTheirOwnJoins) {
  ASSERT_OK_AND_ASSIGN(Graph nested_branch, Load("nested_branch"));
  EXPECT_EQ(JoinOf(nested_branch, "start"), "join");
  EXPECT_EQ(JoinOf(nested_branch, "a"), "a_join");

  ASSERT_OK_AND_ASSIGN(Graph nested_foreach, Load("nested_foreach"));
  EXPECT_EQ(nested_foreach.step(nested_foreach.start()).foreach_var, "rows");
  EXPECT_EQ(JoinOf(nested_foreach, "start"), "outer_join");
  EXPECT_EQ(JoinOf(nested_foreach, "outer"), "inner_join");

  ASSERT_OK_AND_ASSIGN(Graph foreach_in_branch, Load("foreach_in_branch"));
  EXPECT_EQ(JoinOf(foreach_in_branch, "start"), "join");
  EXPECT_EQ(JoinOf(foreach_in_branch, "fan"), "fan_join");

  ASSERT_OK_AND_ASSIGN(Graph branch_in_foreach, Load("branch_in_foreach"));
  EXPECT_EQ(JoinOf(branch_in_foreach, "start"), "join");
  EXPECT_EQ(JoinOf(branch_in_foreach, "item"), "item_join");
}

TEST(GraphTest, NonSplitStepsHaveNoMatchingJoin) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("switch_in_foreach"));
  EXPECT_EQ(JoinOf(graph, "start"), "join");
  EXPECT_EQ(JoinOf(graph, "pick"), "");
  EXPECT_EQ(JoinOf(graph, "small"), "");
}

TEST(GraphTest, SwitchKeepsCasesInOrder) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("switch"));
  const Step& start = graph.step(graph.start());
  EXPECT_EQ(start.transition, Transition::kSwitch);
  EXPECT_EQ(start.switch_var, "mode");
  ASSERT_EQ(start.switch_cases.size(), 2u);
  EXPECT_EQ(start.switch_cases[0].first, "low");
  EXPECT_EQ(graph.step(start.switch_cases[0].second).name, "small");
  EXPECT_EQ(start.switch_cases[1].first, "high");
  EXPECT_EQ(graph.step(start.switch_cases[1].second).name, "big");
  EXPECT_EQ(Names(graph, start.next), Strings({"small", "big"}));
  EXPECT_EQ(Names(graph, graph.step(graph.end()).prev), Strings({"small", "big"}));
}

TEST(GraphTest, SwitchCasesSharingAStepListItOnceInNext) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Graph::FromSpec(R"({"flow": "F", "steps": [
    {"name": "start", "transition": "switch",
     "switch": {"var": "v", "cases": [["x", "a"], ["y", "end"], ["z", "a"]]}},
    {"name": "a", "transition": "linear", "next": ["end"]},
    {"name": "end", "transition": "end"}]})"));
  const Step& start = graph.step(graph.start());
  EXPECT_EQ(start.switch_cases.size(), 3u);
  EXPECT_EQ(Names(graph, start.next), Strings({"a", "end"}));
  EXPECT_EQ(Names(graph, graph.step(graph.Find("a")).prev), Strings({"start"}));
}

TEST(GraphTest, RecursiveSwitchLoopsBackToItsBody) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("recursive_switch"));
  const Step& work = graph.step(graph.Find("work"));
  EXPECT_EQ(Names(graph, work.prev), Strings({"start", "check"}));
  std::vector<bool> from_check = graph.ReachableFrom(graph.Find("check"));
  EXPECT_TRUE(from_check[static_cast<size_t>(graph.Find("work"))]);
  EXPECT_TRUE(from_check[static_cast<size_t>(graph.Find("check"))]);
  EXPECT_TRUE(from_check[static_cast<size_t>(graph.end())]);
  EXPECT_FALSE(from_check[static_cast<size_t>(graph.start())]);
}

TEST(GraphTest, ReachableFromIncludesTheStepAndWhatFollows) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Load("branch"));
  std::vector<bool> reach = graph.ReachableFrom(graph.Find("a"));
  std::vector<std::string> names;
  for (size_t i = 0; i < reach.size(); ++i) {
    if (reach[i]) names.push_back(graph.steps()[i].name);
  }
  EXPECT_EQ(names, Strings({"a", "join", "end"}));
  std::vector<bool> all = graph.ReachableFrom(graph.start());
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 5);
}

TEST(GraphTest, MissingOptionalKeysTakeDefaults) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "linear", "next": ["end"]},
    {"name": "end", "transition": "end"}]})"));
  const Step& start = graph.step(graph.start());
  EXPECT_EQ(start.line, 0);
  EXPECT_EQ(start.doc, "");
  EXPECT_FALSE(start.is_join);
  EXPECT_EQ(start.options.retries, 0);
  EXPECT_EQ(start.options.timeout_s, 0);
  EXPECT_FALSE(start.options.catch_failure);
}

TEST(GraphTest, ReadsTaskOptions) {
  ASSERT_OK_AND_ASSIGN(Graph graph, Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "linear", "next": ["end"],
     "options": {"retries": 3, "retry_delay_s": 1.5, "timeout_s": 60,
                 "catch": true, "catch_var": "err"}},
    {"name": "end", "transition": "end", "foreach": null}]})"));
  const TaskOptions& options = graph.step(graph.start()).options;
  EXPECT_EQ(options.retries, 3);
  EXPECT_DOUBLE_EQ(options.retry_delay_s, 1.5);
  EXPECT_DOUBLE_EQ(options.timeout_s, 60);
  EXPECT_TRUE(options.catch_failure);
  EXPECT_EQ(options.catch_var, "err");
}

TEST(GraphTest, MalformedJsonIsInvalidArgument) {
  for (const char* spec :
       {"", "{", "[]", R"({"flow": "F"})", R"({"steps": {}})",
        R"({"steps": [{"transition": "end"}]})",
        R"({"steps": [{"name": "start"}]})",
        R"({"steps": [{"name": "start", "transition": "jump"}]})",
        R"({"steps": [{"name": "start", "transition": "end", "line": "five"}]})",
        R"({"steps": [{"name": "start", "transition": "switch",
                       "switch": {"var": "v", "cases": [["x"]]}}]})"}) {
    SCOPED_TRACE(spec);
    Result<Graph> graph = Graph::FromSpec(spec);
    ASSERT_FALSE(graph.ok());
    EXPECT_EQ(graph.status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(GraphTest, TypeErrorNamesTheStepIndex) {
  Result<Graph> graph = Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "linear", "next": ["end"]},
    {"name": "end", "transition": "end", "is_join": "no"}]})");
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.status().message().find("steps[1]"), std::string::npos)
      << graph.status().message();
}

}  // namespace
}  // namespace cairn
