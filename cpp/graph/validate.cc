#include "graph/validate.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <utility>

namespace cairn {

namespace {

using Edge = std::pair<StepId, StepId>;

std::string Quote(std::string_view name) {
  std::string quoted;
  quoted.reserve(name.size() + 2);
  quoted += '\'';
  quoted += name;
  quoted += '\'';
  return quoted;
}

bool IsSplit(const Step& step) {
  return step.transition == Transition::kBranch ||
         step.transition == Transition::kForeach;
}

const char* SplitKind(const Step& step) {
  return step.transition == Transition::kForeach ? "foreach" : "branch";
}

// Finds loops that do not pass through a switch: a depth-first walk over
// every edge except those leaving a switch step, from each reachable step in
// turn (a loop may sit behind a switch case). Each back edge closes such a
// loop; it is reported and returned so that the split walk can ignore it
// instead of reporting the same mistake again.
std::set<Edge> CheckLoops(const std::vector<Step>& steps,
                          const std::vector<StepSource>& sources, StepId start,
                          const std::vector<bool>& reachable,
                          std::vector<GraphProblem>* problems) {
  enum Color { kWhite, kGray, kBlack };
  std::set<Edge> back_edges;
  std::vector<Color> color(steps.size(), kWhite);
  auto name = [&](StepId id) -> const std::string& {
    return steps[static_cast<size_t>(id)].name;
  };
  // Start first, so that a loop is named from where the run enters it.
  std::vector<size_t> roots = {static_cast<size_t>(start)};
  for (size_t i = 0; i < steps.size(); ++i) roots.push_back(i);
  for (size_t root : roots) {
    if (!reachable[root] || color[root] != kWhite) continue;
    // Each entry is a step and how many of its edges have been followed; the
    // entries are the current path, which names the loop.
    std::vector<std::pair<StepId, size_t>> path = {{static_cast<StepId>(root), 0}};
    color[root] = kGray;
    while (!path.empty()) {
      const StepId from = path.back().first;
      const Step& step = steps[static_cast<size_t>(from)];
      size_t& next_index = path.back().second;
      if (step.transition == Transition::kSwitch || next_index >= step.next.size()) {
        color[static_cast<size_t>(from)] = kBlack;
        path.pop_back();
        continue;
      }
      const StepId to = step.next[next_index++];
      Color& to_color = color[static_cast<size_t>(to)];
      if (to_color == kWhite) {
        to_color = kGray;
        path.push_back({to, 0});
      } else if (to_color == kGray) {
        back_edges.insert({from, to});
        std::string loop;
        bool on_loop = false;
        for (const auto& entry : path) {
          on_loop = on_loop || entry.first == to;
          if (on_loop) loop += name(entry.first) + " -> ";
        }
        loop += name(to);
        problems->push_back(
            {sources[static_cast<size_t>(from)].NextOrDefLine(), step.name,
             "self.next leads back to " + Quote(name(to)) + ", a loop (" + loop +
                 ") that does not go through a switch; only a switch may loop: "
                 "self.next({\"again\": self." + name(to) +
                 ", \"done\": self.<next step>}, condition=\"<attribute>\")"});
      }
    }
  }
  return back_edges;
}

// A switch loop whose every case leads back never finishes. Reports each step
// where a run enters such a dead end: no path from it reaches end, but one
// does from a step before it.
void CheckReachesEnd(const std::vector<Step>& steps, StepId start, StepId end,
                     const std::vector<bool>& reachable,
                     std::vector<GraphProblem>* problems) {
  std::vector<bool> live(steps.size(), false);
  std::vector<StepId> todo = {end};
  live[static_cast<size_t>(end)] = true;
  while (!todo.empty()) {
    StepId id = todo.back();
    todo.pop_back();
    for (StepId prev : steps[static_cast<size_t>(id)].prev) {
      if (live[static_cast<size_t>(prev)]) continue;
      live[static_cast<size_t>(prev)] = true;
      todo.push_back(prev);
    }
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!reachable[i] || live[i]) continue;
    const Step& step = steps[i];
    bool entered_from_live =
        std::any_of(step.prev.begin(), step.prev.end(), [&](StepId prev) {
          return reachable[static_cast<size_t>(prev)] && live[static_cast<size_t>(prev)];
        });
    if (static_cast<StepId>(i) != start && !entered_from_live) continue;
    problems->push_back(
        {step.line, step.name,
         "no path from here reaches 'end', so a run that gets here never "
         "finishes; give the switch that loops a case that leads on to 'end'"});
  }
}

// A split still open on some path: the split step and which of its branches
// the path took (always 0 for a foreach: every item runs the same steps).
struct Frame {
  StepId split = kNoStep;
  int index = 0;
  bool operator==(const Frame&) const = default;
};
using Stack = std::vector<Frame>;

// Walks from start carrying the stack of open splits, as Metaflow's graph.py
// does with split_parents: a branch or foreach pushes, a join pops, a switch
// neither. Every step has one place in the nesting, so a step expands only
// from its first arrival and later arrivals are only compared with it; that
// keeps the walk linear and lets switch loops terminate. The checks that
// need every arrival (joins, splits) run afterwards in Report().
class SplitWalk {
 public:
  SplitWalk(const std::vector<Step>& steps,
            const std::vector<StepSource>& sources,
            const std::set<Edge>& ignored, StepId start, StepId end,
            bool incomplete, std::vector<GraphProblem>* problems)
      : steps_(steps), sources_(sources), ignored_(ignored), start_(start),
        end_(end), incomplete_(incomplete), problems_(problems),
        visited_(steps.size(), false), first_from_(steps.size(), kNoStep),
        first_stack_(steps.size()),
        conflicted_(steps.size(), false), merged_(steps.size(), false),
        arrivals_(steps.size()) {}

  void Walk();
  // Reports what the walk found wrong and sets matching_join on `steps`.
  void Report(std::vector<Step>* steps);

 private:
  struct Arrival {
    StepId from = kNoStep;
    Stack stack;  // as the path enters the step
  };

  const Step& step(StepId id) const { return steps_[static_cast<size_t>(id)]; }
  bool IsJoin(StepId id) const { return id != start_ && step(id).is_join; }
  void Visit(StepId id, const Arrival& arrival);
  void Expand(StepId id, const Stack& inside);
  void ReportConflict(StepId id, const Arrival& arrival);
  void ReportJoin(StepId join);
  void ReportSplit(StepId split, std::vector<Step>* steps);
  void ReportLeaksToEnd();
  std::string From(StepId from) const;
  std::string Where(const Stack& stack) const;
  void Add(int line, StepId id, std::string what) {
    problems_->push_back({line, step(id).name, std::move(what)});
  }

  const std::vector<Step>& steps_;
  const std::vector<StepSource>& sources_;
  const std::set<Edge>& ignored_;
  const StepId start_;
  const StepId end_;
  const bool incomplete_;  // some edges are missing: see StepSource
  std::vector<GraphProblem>* problems_;

  std::deque<std::pair<StepId, Arrival>> queue_;
  std::vector<bool> visited_;
  std::vector<StepId> first_from_;
  std::vector<Stack> first_stack_;
  std::vector<bool> conflicted_;  // a later arrival disagreed; reported
  // By split: a step without inputs merges some of its branches. That was
  // reported at the merging step, so the split's join is not blamed too.
  std::vector<bool> merged_;
  std::vector<std::vector<Arrival>> arrivals_;  // by join step: every arrival
  std::vector<Arrival> leaks_;  // reaching end inside a split (after any pop)
  // By split: the joins that closed it, and which branch indices each got.
  std::map<StepId, std::map<StepId, std::set<int>>> closers_;
  std::set<StepId> bad_joins_;  // joins already reported as mismatched
};

void SplitWalk::Walk() {
  queue_.push_back({start_, Arrival{}});
  while (!queue_.empty()) {
    auto [id, arrival] = std::move(queue_.front());
    queue_.pop_front();
    Visit(id, arrival);
  }
}

void SplitWalk::Visit(StepId id, const Arrival& arrival) {
  size_t i = static_cast<size_t>(id);
  bool join = IsJoin(id);
  if (join) arrivals_[i].push_back(arrival);
  Stack inside = arrival.stack;
  if (join && !inside.empty()) inside.pop_back();
  if (id == end_) {
    if (!inside.empty()) leaks_.push_back({arrival.from, inside});
    visited_[i] = true;
    return;
  }
  if (!visited_[i]) {
    visited_[i] = true;
    first_from_[i] = arrival.from;
    first_stack_[i] = arrival.stack;
    Expand(id, inside);
    return;
  }
  if (join || conflicted_[i] || arrival.stack == first_stack_[i]) return;
  conflicted_[i] = true;
  ReportConflict(id, arrival);
}

void SplitWalk::Expand(StepId id, const Stack& inside) {
  const Step& s = step(id);
  for (size_t n = 0; n < s.next.size(); ++n) {
    StepId to = s.next[n];
    if (ignored_.count({id, to})) continue;
    Arrival next{id, inside};
    if (IsSplit(s)) {
      int index = s.transition == Transition::kBranch ? static_cast<int>(n) : 0;
      next.stack.push_back({id, index});
    }
    queue_.push_back({to, std::move(next)});
  }
}

std::string SplitWalk::From(StepId from) const {
  return from == kNoStep ? std::string("the start of the run")
                         : Quote(step(from).name);
}

std::string SplitWalk::Where(const Stack& stack) const {
  if (stack.empty()) return "outside any split";
  const Step& split = step(stack.back().split);
  return std::string("inside the ") + SplitKind(split) + " of " +
         Quote(split.name);
}

void SplitWalk::ReportConflict(StepId id, const Arrival& arrival) {
  size_t i = static_cast<size_t>(id);
  const Stack& first = first_stack_[i];
  const Stack& later = arrival.stack;
  const std::string& name = step(id).name;
  bool same_splits = first.size() == later.size();
  for (size_t k = 0; same_splits && k < first.size(); ++k) {
    same_splits = first[k].split == later[k].split;
  }
  if (same_splits) {
    // Only a branch index can differ: the step is in two branches at once.
    size_t k = 0;
    while (first[k] == later[k]) ++k;
    StepId split = first[k].split;
    merged_[static_cast<size_t>(split)] = true;
    Add(step(id).line, id,
        "reached from several branches of the split in " +
            Quote(step(split).name) + " (through " + From(first_from_[i]) +
            " and " + From(arrival.from) +
            "), so it must be a join that merges them: take inputs, "
            "as in def " + name + "(self, inputs)");
    return;
  }
  Add(step(id).line, id,
      "reached through " + From(first_from_[i]) + " " + Where(first) +
          " and through " + From(arrival.from) + " " + Where(later) +
          "; every path out of a branch or foreach must go through its join");
}

void SplitWalk::Report(std::vector<Step>* steps) {
  for (size_t i = 0; i < steps_.size(); ++i) {
    StepId id = static_cast<StepId>(i);
    if (visited_[i] && IsJoin(id)) ReportJoin(id);
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (visited_[i] && IsSplit(steps_[i])) ReportSplit(static_cast<StepId>(i), steps);
  }
  ReportLeaksToEnd();
}

void SplitWalk::ReportJoin(StepId join) {
  const std::vector<Arrival>& arrivals = arrivals_[static_cast<size_t>(join)];
  // The innermost open split of each arrival; kNoStep for none.
  std::map<StepId, const Arrival*> by_split;
  for (const Arrival& arrival : arrivals) {
    StepId split = arrival.stack.empty() ? kNoStep : arrival.stack.back().split;
    by_split.emplace(split, &arrival);
    if (split != kNoStep) closers_[split][join].insert(arrival.stack.back().index);
  }
  if (by_split.size() == 1 && by_split.begin()->first == kNoStep) {
    bad_joins_.insert(join);
    Add(step(join).line, join,
        "join taking inputs where there is no split: no branch or foreach "
        "comes before it, so there is nothing to join; remove the inputs "
        "argument, or add a split before it");
    return;
  }
  if (by_split.size() == 1) return;
  bad_joins_.insert(join);
  std::string sources;
  for (const auto& [split, arrival] : by_split) {
    if (!sources.empty()) sources += ", ";
    sources += From(arrival->from) + " " + Where(arrival->stack);
  }
  Add(step(join).line, join,
      "joins steps from different splits (" + sources +
          "); a join must close exactly one branch or foreach, so add a "
          "join for the inner split first");
}

void SplitWalk::ReportSplit(StepId split, std::vector<Step>* steps) {
  const Step& s = step(split);
  int line = sources_[static_cast<size_t>(split)].NextOrDefLine();
  if (merged_[static_cast<size_t>(split)]) return;
  auto it = closers_.find(split);
  if (it == closers_.end()) {
    if (incomplete_) return;
    Add(line, split,
        std::string(SplitKind(s)) + " without a join: its " +
            (s.transition == Transition::kForeach ? "tasks" : "branches") +
            " never meet in a step that takes inputs; add a join step, as "
            "in def join(self, inputs), that every path from here leads to");
    return;
  }
  const std::map<StepId, std::set<int>>& joins = it->second;
  if (joins.size() > 1) {
    std::string names;
    for (const auto& [join, indices] : joins) {
      if (bad_joins_.count(join)) return;
      names += (names.empty() ? "" : " and ") + Quote(step(join).name);
    }
    Add(line, split,
        "the paths of this " + std::string(SplitKind(s)) +
            " end in different joins (" + names +
            "); make them all lead to one join");
    return;
  }
  StepId join = joins.begin()->first;
  (*steps)[static_cast<size_t>(split)].matching_join = join;
  if (s.transition != Transition::kBranch || bad_joins_.count(join) || incomplete_) {
    return;
  }
  std::string missing;
  for (size_t n = 0; n < s.next.size(); ++n) {
    if (joins.begin()->second.count(static_cast<int>(n))) continue;
    missing += (missing.empty() ? "" : ", ") + Quote(step(s.next[n]).name);
  }
  if (missing.empty()) return;
  Add(step(join).line, join,
      "joins only some branches of " + Quote(s.name) + ": " + missing +
          " never leads here; make every branch of " + Quote(s.name) +
          " end in " + Quote(step(join).name));
}

// A path that reaches end while a split is open. When the split has no join,
// or its join misses this branch, the split or join reports it; what is left
// is a path that skips a join its siblings use, e.g. a switch case that jumps
// straight to end from inside a foreach.
void SplitWalk::ReportLeaksToEnd() {
  std::set<StepId> reported;
  for (const Arrival& leak : leaks_) {
    const Frame& frame = leak.stack.back();
    if (merged_[static_cast<size_t>(frame.split)] ||
        conflicted_[static_cast<size_t>(leak.from)] ||
        reported.count(leak.from)) {
      continue;
    }
    auto it = closers_.find(frame.split);
    if (it == closers_.end() || it->second.size() != 1 ||
        !it->second.begin()->second.count(frame.index)) {
      continue;
    }
    reported.insert(leak.from);
    const std::string& join = step(it->second.begin()->first).name;
    Add(sources_[static_cast<size_t>(leak.from)].NextOrDefLine(), leak.from,
        "self.next leads to " + Quote(step(end_).name) + " from " +
            Where(leak.stack) + " without going through its join " +
            Quote(join) + "; lead to " + Quote(join) + " instead");
  }
}

}  // namespace

void ValidateSteps(const std::vector<StepSource>& sources, StepId start,
                   StepId end, std::vector<Step>* steps,
                   std::vector<GraphProblem>* problems) {
  for (size_t i = 0; i < steps->size(); ++i) {
    std::vector<StepId> seen;
    for (StepId to : (*steps)[i].next) {
      if (std::find(seen.begin(), seen.end(), to) != seen.end()) continue;
      seen.push_back(to);
      (*steps)[static_cast<size_t>(to)].prev.push_back(static_cast<StepId>(i));
    }
  }
  for (const Step& step : *steps) {
    // A step's name is a folder name under logs/<run>/: longer names would
    // fail there (ENAMETOOLONG) and lose the task's output.
    if (step.name.size() > kMaxStepNameBytes) {
      problems->push_back({step.line, step.name,
                           "the name is " + std::to_string(step.name.size()) +
                               " bytes long; step names are at most " +
                               std::to_string(kMaxStepNameBytes) + " bytes"});
    }
  }
  if (start == kNoStep) return;  // Everything would be unreachable.
  bool incomplete = std::any_of(sources.begin(), sources.end(),
                                [](const StepSource& s) { return s.next_incomplete; });

  std::vector<bool> reachable = ReachableSteps(*steps, start);
  for (size_t i = 0; i < steps->size(); ++i) {
    if (reachable[i] || incomplete) continue;
    const Step& step = (*steps)[i];
    problems->push_back(
        {step.line, step.name,
         "not reachable from 'start'; name it in the self.next of a step "
         "that runs, or remove it"});
  }

  std::set<Edge> ignored = CheckLoops(*steps, sources, start, reachable, problems);
  // A missing edge or a loop already reported would also cut paths to end.
  if (end != kNoStep && !incomplete && ignored.empty()) {
    CheckReachesEnd(*steps, start, end, reachable, problems);
  }
  SplitWalk walk(*steps, sources, ignored, start, end, incomplete, problems);
  walk.Walk();
  walk.Report(steps);
}

std::string FormatProblems(std::string_view file, std::string_view flow,
                           std::vector<GraphProblem> problems) {
  std::stable_sort(problems.begin(), problems.end(),
                   [](const GraphProblem& a, const GraphProblem& b) {
                     return a.line < b.line;
                   });
  std::string message;
  std::set<std::string> seen;
  for (const GraphProblem& problem : problems) {
    std::string line = std::string(file) + ":" + std::to_string(problem.line) +
                       ": " +
                       (problem.step.empty() ? "flow " + Quote(flow)
                                             : "step " + Quote(problem.step)) +
                       ": " + problem.what;
    if (!seen.insert(line).second) continue;
    if (!message.empty()) message += "\n";
    message += line;
  }
  return message;
}

}  // namespace cairn
