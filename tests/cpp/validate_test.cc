// The problems Graph::FromSpec reports for invalid flows. Each
// tests/graphs/invalid_*.json lists its expected problems under
// "expected_problems": the start of each line of the message, in order.
#include "graph/validate.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graph/graph.h"
#include "test_util.h"

namespace cairn {
namespace {

std::string GraphPath(const std::string& name) {
  return std::string(CAIRN_TEST_GRAPHS_DIR) + "/" + name + ".json";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The lines of the InvalidGraph message for `spec`; fails the test if the
// spec is valid or fails for another reason.
std::vector<std::string> Problems(const std::string& spec) {
  Result<Graph> graph = Graph::FromSpec(spec);
  EXPECT_FALSE(graph.ok()) << "the spec should be invalid";
  if (graph.ok()) return {};
  EXPECT_EQ(graph.status().code(), Status::Code::kInvalidGraph) << graph.status().ToString();
  std::vector<std::string> lines;
  std::stringstream message(graph.status().message());
  for (std::string line; std::getline(message, line);) lines.push_back(line);
  return lines;
}

// Checks a tests/graphs file against its "expected_problems".
void ExpectFileProblems(const std::string& name) {
  SCOPED_TRACE(name);
  std::string spec = ReadFile(GraphPath(name));
  ASSERT_FALSE(spec.empty()) << "missing " << GraphPath(name);
  std::vector<std::string> expected =
      nlohmann::json::parse(spec).at("expected_problems").get<std::vector<std::string>>();
  std::vector<std::string> lines = Problems(spec);
  ASSERT_EQ(lines.size(), expected.size()) << ::testing::PrintToString(lines);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].rfind(expected[i], 0), 0u)
        << "line:     " << lines[i] << "\nexpected: " << expected[i] << "...";
  }
}

// A single problem whose line contains every one of `parts`.
void ExpectOneProblem(const std::string& spec, const std::vector<std::string>& parts) {
  std::vector<std::string> lines = Problems(spec);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  for (const std::string& part : parts) {
    EXPECT_NE(lines[0].find(part), std::string::npos) << lines[0] << "\nlacks: " << part;
  }
}

TEST(ValidateTest, NoStartStep) { ExpectFileProblems("invalid_no_start"); }
TEST(ValidateTest, NoEndStepAndAStepWithoutNext) { ExpectFileProblems("invalid_no_end"); }
TEST(ValidateTest, UnreachableStep) { ExpectFileProblems("invalid_unreachable"); }
TEST(ValidateTest, NextNamesAnUnknownStep) { ExpectFileProblems("invalid_unknown_next"); }
TEST(ValidateTest, EndCallsNext) { ExpectFileProblems("invalid_end_with_next"); }
TEST(ValidateTest, StartTakesInputs) { ExpectFileProblems("invalid_start_inputs"); }
TEST(ValidateTest, JoinWithoutSplit) { ExpectFileProblems("invalid_join_without_split"); }
TEST(ValidateTest, BranchThatSkipsTheJoin) { ExpectFileProblems("invalid_branch_mismatch"); }
TEST(ValidateTest, OneJoinClosingTwoSplits) { ExpectFileProblems("invalid_two_splits_one_join"); }
TEST(ValidateTest, ForeachWithoutJoin) { ExpectFileProblems("invalid_foreach_without_join"); }
TEST(ValidateTest, StepWithoutInputsMergingBranches) {
  ExpectFileProblems("invalid_merge_without_join");
}
TEST(ValidateTest, LoopWithoutSwitch) { ExpectFileProblems("invalid_cycle"); }
TEST(ValidateTest, ProblemsFoundByPython) { ExpectFileProblems("invalid_python_problems"); }
TEST(ValidateTest, DuplicateStepNames) { ExpectFileProblems("invalid_duplicate_step"); }
TEST(ValidateTest, DuplicateSwitchCase) { ExpectFileProblems("invalid_switch_cases"); }
TEST(ValidateTest, SwitchJumpingOutOfAForeach) {
  ExpectFileProblems("invalid_switch_escapes_foreach");
}
TEST(ValidateTest, ManyProblemsAtOnce) { ExpectFileProblems("invalid_many"); }

// Catches invalid_*.json files added without a test above.
TEST(ValidateTest, EveryInvalidShapeReportsItsExpectedProblems) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CAIRN_TEST_GRAPHS_DIR)) {
    std::string stem = entry.path().stem().string();
    if (stem.rfind("invalid_", 0) != 0 || entry.path().extension() != ".json") continue;
    ++files;
    ExpectFileProblems(stem);
  }
  EXPECT_GE(files, 15);
}

TEST(ValidateTest, ProblemsAreSortedByLineAndNameFileLineAndStep) {
  std::vector<std::string> lines = Problems(ReadFile(GraphPath("invalid_many")));
  std::regex format(R"(^/flows/invalid_many\.py:(\d+): (step|flow) '[^']+': .+$)");
  int previous = 0;
  for (const std::string& line : lines) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(line, match, format)) << line;
    int number = std::stoi(match[1].str());
    EXPECT_LE(previous, number) << line;
    previous = number;
  }
}

TEST(ValidateTest, SwitchWithNoCases) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "linear", "next": ["end"], "next_line": 4},
    {"name": "pick", "line": 6, "transition": "switch", "next_line": 8,
     "switch": {"var": "mode", "cases": []}},
    {"name": "end", "line": 9, "transition": "end"}]})",
                   {"f.py:8: step 'pick': ", "switch with no cases"});
}

TEST(ValidateTest, BranchNamingAStepTwice) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "branch", "next": ["a", "a"], "next_line": 4},
    {"name": "a", "line": 6, "transition": "linear", "next": ["join"], "next_line": 7},
    {"name": "join", "line": 9, "transition": "linear", "next": ["end"], "next_line": 10,
     "is_join": true},
    {"name": "end", "line": 12, "transition": "end"}]})",
                   {"f.py:4: step 'start': ", "names 'a' twice"});
}

TEST(ValidateTest, SplitClosedByTwoJoins) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "branch", "next": ["a", "b"], "next_line": 4},
    {"name": "a", "line": 6, "transition": "linear", "next": ["j1"], "next_line": 7},
    {"name": "b", "line": 9, "transition": "linear", "next": ["j2"], "next_line": 10},
    {"name": "j1", "line": 12, "transition": "linear", "next": ["end"], "next_line": 13,
     "is_join": true},
    {"name": "j2", "line": 15, "transition": "linear", "next": ["end"], "next_line": 16,
     "is_join": true},
    {"name": "end", "line": 18, "transition": "end"}]})",
                   {"f.py:4: step 'start': ", "different joins ('j1' and 'j2')"});
}

TEST(ValidateTest, SwitchLoopLeavingAForeachWithoutItsJoin) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "linear", "next": ["fan"], "next_line": 4},
    {"name": "fan", "line": 6, "transition": "foreach", "next": ["body"], "next_line": 7,
     "foreach": "items"},
    {"name": "body", "line": 9, "transition": "switch", "next_line": 10,
     "switch": {"var": "v", "cases": [["again", "fan"], ["done", "join"]]}},
    {"name": "join", "line": 12, "transition": "linear", "next": ["end"], "next_line": 13,
     "is_join": true},
    {"name": "end", "line": 15, "transition": "end"}]})",
                   {"f.py:6: step 'fan': ", "through 'body' inside the foreach of 'fan'",
                    "must go through its join"});
}

TEST(ValidateTest, JoinAlsoReachedOutsideItsSplit) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "branch", "next": ["a", "b"], "next_line": 4},
    {"name": "a", "line": 6, "transition": "linear", "next": ["join"], "next_line": 7},
    {"name": "b", "line": 9, "transition": "linear", "next": ["join"], "next_line": 10},
    {"name": "join", "line": 12, "transition": "linear", "next": ["again"], "next_line": 13,
     "is_join": true},
    {"name": "again", "line": 15, "transition": "switch", "next_line": 16,
     "switch": {"var": "v", "cases": [["yes", "join"], ["no", "end"]]}},
    {"name": "end", "line": 18, "transition": "end"}]})",
                   {"f.py:12: step 'join': ", "joins steps from different splits",
                    "'again' outside any split"});
}

TEST(ValidateTest, SelfLoopWithoutSwitch) {
  std::vector<std::string> lines = Problems(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "linear", "next": ["start"], "next_line": 4},
    {"name": "end", "line": 6, "transition": "end"}]})");
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("f.py:4: step 'start': self.next leads back to 'start', a loop "
                           "(start -> start)", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("f.py:6: step 'end': not reachable", 0), 0u) << lines[1];
}

TEST(ValidateTest, LoopWithoutSwitchBehindASwitchCase) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "switch", "next_line": 4,
     "switch": {"var": "v", "cases": [["x", "a"], ["y", "end"]]}},
    {"name": "a", "line": 6, "transition": "linear", "next": ["b"], "next_line": 7},
    {"name": "b", "line": 9, "transition": "linear", "next": ["a"], "next_line": 10},
    {"name": "end", "line": 12, "transition": "end"}]})",
                   {"f.py:10: step 'b': ", "leads back to 'a', a loop (a -> b -> a)"});
}

TEST(ValidateTest, SwitchLoopWithoutExit) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "switch", "next_line": 4,
     "switch": {"var": "v", "cases": [["x", "a"], ["y", "end"]]}},
    {"name": "a", "line": 6, "transition": "linear", "next": ["b"], "next_line": 7},
    {"name": "b", "line": 9, "transition": "switch", "next_line": 10,
     "switch": {"var": "v", "cases": [["again", "a"]]}},
    {"name": "end", "line": 12, "transition": "end"}]})",
                   {"f.py:6: step 'a': ", "no path from here reaches 'end'"});
}

TEST(ValidateTest, NegativeRetries) {
  ExpectOneProblem(R"({"flow": "F", "file": "f.py", "steps": [
    {"name": "start", "line": 3, "transition": "linear", "next": ["end"], "next_line": 4,
     "options": {"retries": -1}},
    {"name": "end", "line": 6, "transition": "end"}]})",
                   {"f.py:3: step 'start': ", "retries"});
}

TEST(ValidateTest, FlowLevelProblemUsesFlowNameWhenFileIsMissing) {
  ExpectOneProblem(R"({"flow": "F", "steps": [{"name": "end", "transition": "end"}]})",
                   {"F:1: flow 'F': no start step"});
}

TEST(ValidateTest, EndMayBeAJoin) {
  EXPECT_OK(Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "branch", "next": ["a", "b"]},
    {"name": "a", "transition": "linear", "next": ["end"]},
    {"name": "b", "transition": "linear", "next": ["end"]},
    {"name": "end", "transition": "end", "is_join": true}]})"));
}

TEST(ValidateTest, BranchMayLeadStraightToItsJoin) {
  EXPECT_OK(Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "branch", "next": ["a", "join"]},
    {"name": "a", "transition": "linear", "next": ["join"]},
    {"name": "join", "transition": "linear", "next": ["end"], "is_join": true},
    {"name": "end", "transition": "end"}]})"));
}

TEST(ValidateTest, SwitchLoopInsideAForeachIsValid) {
  EXPECT_OK(Graph::FromSpec(R"({"steps": [
    {"name": "start", "transition": "foreach", "next": ["work"], "foreach": "items"},
    {"name": "work", "transition": "switch",
     "switch": {"var": "v", "cases": [["again", "work"], ["done", "join"]]}},
    {"name": "join", "transition": "linear", "next": ["end"], "is_join": true},
    {"name": "end", "transition": "end"}]})"));
}

TEST(ValidateTest, FormatProblemsDropsExactDuplicates) {
  std::string message = FormatProblems("f.py", "F", {{2, "b", "x"}, {1, "a", "y"}, {2, "b", "x"}});
  EXPECT_EQ(message, "f.py:1: step 'a': y\nf.py:2: step 'b': x");
}

}  // namespace
}  // namespace cairn
