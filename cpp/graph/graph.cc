#include "graph/graph.h"

#include "graph/validate.h"

namespace cairn {

StepId Graph::Find(std::string_view name) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].name == name) return static_cast<StepId>(i);
  }
  return kNoStep;
}

std::vector<bool> Graph::ReachableFrom(StepId from) const {
  return ReachableSteps(steps_, from);
}

}  // namespace cairn
