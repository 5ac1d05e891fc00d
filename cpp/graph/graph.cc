#include "graph/graph.h"

#include "graph/validate.h"

namespace cairn {

StepId Graph::Find(std::string_view name) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].name == name) return static_cast<StepId>(i);
  }
  return kNoStep;
}

std::vector<bool> ReachableSteps(const std::vector<Step>& steps, StepId from) {
  std::vector<bool> seen(steps.size(), false);
  if (from < 0 || static_cast<size_t>(from) >= steps.size()) return seen;
  std::vector<StepId> todo = {from};
  seen[static_cast<size_t>(from)] = true;
  while (!todo.empty()) {
    StepId id = todo.back();
    todo.pop_back();
    for (StepId to : steps[static_cast<size_t>(id)].next) {
      if (seen[static_cast<size_t>(to)]) continue;
      seen[static_cast<size_t>(to)] = true;
      todo.push_back(to);
    }
  }
  return seen;
}

std::vector<bool> Graph::ReachableFrom(StepId from) const {
  return ReachableSteps(steps_, from);
}

}  // namespace cairn
