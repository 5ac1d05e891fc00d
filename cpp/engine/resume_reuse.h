// ResumeReuse: which tasks of the steps a default `resume` re-runs may still
// be cloned from their origin twin: those of a step whose code hash is the
// origin run's, with the same parameters, whose parents were all cloned from
// the twin's own parents (so its inputs are identical). Also words the
// console notes that say what was reused and why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "store/datastore.h"

namespace cairn {

class ResumeReuse {
 public:
  // `origin_graph_json`: the GraphSpec the origin run recorded. `enabled`:
  // false for `resume STEP` (re-run that step and after, as asked) and for
  // a resume with parameters that differ from the origin's.
  ResumeReuse(const Graph& graph, int64_t origin_run_id, const std::string& origin_graph_json,
              bool enabled, std::string disabled_why);

  bool StepUnchanged(StepId step) const { return unchanged_[static_cast<size_t>(step)]; }
  // A task of re-run step `step`, whose parents were cloned from the origin
  // tasks `parents_origin` (-1 for a parent that ran anew), may be cloned
  // from `twin`.
  bool MayClone(StepId step, const std::vector<int64_t>& parents_origin, const TaskRecord& twin) const;
  // Counts a task (its first attempt) of a step, re-run or not, for the notes.
  void Count(StepId step, bool rerun, bool cloned, bool split);
  // Before the run, for each re-run step that had finished tasks in the
  // origin run and may not reuse them: why. After it, for each step that
  // reused some tasks of the origin run (but not all, unless it was re-run):
  // how many, and why.
  std::vector<std::string> StartNotes(const std::vector<bool>& rerun,
                                      const std::vector<bool>& had_finished) const;
  std::vector<std::string> EndNotes() const;

 private:
  struct Tally {
    int64_t cloned = 0;
    int64_t total = 0;
    bool split = false;
    bool rerun = false;
  };
  const Graph& graph_;
  int64_t origin_run_id_;
  bool enabled_;
  std::string disabled_why_;
  std::vector<bool> unchanged_;        // by StepId
  std::vector<bool> origin_unknown_;   // the origin recorded no hash for it
  std::vector<Tally> tally_;           // by StepId
};

}  // namespace cairn
