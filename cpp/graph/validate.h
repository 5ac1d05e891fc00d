// Whole-graph checks of a flow (Metaflow's lint): reachability, loops, and
// that every branch or foreach is closed by exactly one join. Graph::FromSpec
// runs them after it has checked each step on its own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "graph/graph.h"

namespace cairn {

// A step's name names a folder (logs/<run>/<step>/): one file name at most.
inline constexpr size_t kMaxStepNameBytes = 255;

// One thing wrong with a GraphSpec, tied to a source line.
struct GraphProblem {
  int line = 0;
  std::string step;  // empty: a flow-level problem
  std::string what;  // what is wrong and how to fix it
};

// Source facts the checks need but a Step does not keep.
struct StepSource {
  int def_line = 0;   // line of the def (Step::line)
  int next_line = 0;  // line of the self.next call; 0 if there is none
  // Some successor is unknown: the call is missing or names a step that does
  // not exist. That is reported already; the checks a missing edge would set
  // off (unreachable steps, splits without a join) are then skipped.
  bool next_incomplete = false;
  // The line to blame for a problem in the self.next call.
  int NextOrDefLine() const { return next_line > 0 ? next_line : def_line; }
};

// Runs the whole-graph checks over `steps`, whose `next` already holds
// resolved ids, and appends every problem found to `problems`. Fills in each
// Step's `prev`, and `matching_join` for every split whose join it can tell.
// `start` or `end` may be kNoStep (already reported by the caller).
// REQUIRES: sources.size() == steps->size().
void ValidateSteps(const std::vector<StepSource>& sources, StepId start,
                   StepId end, std::vector<Step>* steps,
                   std::vector<GraphProblem>* problems);

// Steps reachable from `from` (inclusive) following every next edge. Defined
// in graph.cc, next to Graph::ReachableFrom.
std::vector<bool> ReachableSteps(const std::vector<Step>& steps, StepId from);

// The message of a Status::InvalidGraph: one problem per line, sorted by
// line, each "file:line: step 'name': what" ("flow 'Name'" for flow-level
// problems). Exact duplicates are dropped.
std::string FormatProblems(std::string_view file, std::string_view flow,
                           std::vector<GraphProblem> problems);

}  // namespace cairn
