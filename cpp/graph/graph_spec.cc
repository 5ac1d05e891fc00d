// Graph::FromSpec: parses a GraphSpec (the JSON cairn/graph.py makes), checks
// each step on its own, resolves step names to ids, then runs the whole-graph
// checks of validate.cc. Every problem is collected before giving up, so a
// user fixes a flow in one round.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "graph/graph.h"
#include "graph/validate.h"

namespace cairn {

namespace {

using nlohmann::json;

// One step as the GraphSpec states it, before names are resolved.
struct StepSpec {
  std::string name;
  int line = 0;
  std::string doc;
  std::string code_hash;
  std::string transition;
  std::vector<std::string> next;
  int next_line = 0;
  std::string foreach_var;
  std::string switch_var;
  std::vector<std::pair<std::string, std::string>> cases;  // value, step
  bool is_join = false;
  bool parallel = false;  // a num_parallel split
  TaskOptions options;
  std::vector<std::string> problems;  // found by Python
};

struct FlowSpec {
  std::string flow;
  std::string file;
  int line = 1;  // the class statement: where flow-level problems are reported
  std::vector<StepSpec> steps;
};

// A missing or null key takes `fallback`; a value of the wrong type throws
// json::type_error, which ParseSpec turns into a Status.
template <typename T>
T Get(const json& object, const char* key, T fallback) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  return it->template get<T>();
}

const std::set<std::string>& Transitions() {
  static const std::set<std::string> kTransitions = {
      "linear", "branch", "foreach", "switch", "end", "none"};
  return kTransitions;
}

// Throws json::exception for values of the wrong type.
Status ParseStep(const json& j, StepSpec* step) {
  if (!j.is_object()) return Status::InvalidArgument("a step is not an object");
  step->name = Get<std::string>(j, "name", "");
  if (step->name.empty()) return Status::InvalidArgument("a step has no name");
  step->line = Get<int>(j, "line", 0);
  step->doc = Get<std::string>(j, "doc", "");
  step->code_hash = Get<std::string>(j, "code_hash", "");
  step->transition = Get<std::string>(j, "transition", "");
  if (!Transitions().count(step->transition)) {
    return Status::InvalidArgument("step '" + step->name +
                                   "': unknown transition '" +
                                   step->transition + "'");
  }
  step->next = Get<std::vector<std::string>>(j, "next", {});
  step->next_line = Get<int>(j, "next_line", 0);
  step->foreach_var = Get<std::string>(j, "foreach", "");
  step->is_join = Get<bool>(j, "is_join", false);
  step->parallel = Get<bool>(j, "parallel", false);
  step->problems = Get<std::vector<std::string>>(j, "problems", {});
  json sw = Get<json>(j, "switch", json::object());
  step->switch_var = Get<std::string>(sw, "var", "");
  for (const json& c : Get<json>(sw, "cases", json::array())) {
    if (!c.is_array() || c.size() != 2) {
      return Status::InvalidArgument("step '" + step->name +
                                     "': a switch case is not [value, step]");
    }
    step->cases.emplace_back(c[0].get<std::string>(), c[1].get<std::string>());
  }
  json options = Get<json>(j, "options", json::object());
  step->options.retries = Get<int>(options, "retries", 0);
  step->options.retry_delay_s = Get<double>(options, "retry_delay_s", 0);
  step->options.timeout_s = Get<double>(options, "timeout_s", 0);
  step->options.catch_failure = Get<bool>(options, "catch", false);
  step->options.catch_var = Get<std::string>(options, "catch_var", "");
  step->options.backend = Get<std::string>(options, "backend", "");
  return Status::OK();
}

Result<FlowSpec> ParseSpec(std::string_view text) {
  FlowSpec spec;
  std::string where;  // names the step being parsed, for the error message
  try {
    json j = json::parse(text);
    if (!j.is_object()) return Status::InvalidArgument("GraphSpec is not a JSON object");
    spec.flow = Get<std::string>(j, "flow", "");
    spec.file = Get<std::string>(j, "file", "");
    spec.line = std::max(1, Get<int>(j, "line", 1));
    auto steps = j.find("steps");
    if (steps == j.end() || !steps->is_array()) {
      return Status::InvalidArgument("GraphSpec has no \"steps\" array");
    }
    for (size_t index = 0; index < steps->size(); ++index) {
      where = " (in steps[" + std::to_string(index) + "])";
      StepSpec step;
      Status status = ParseStep((*steps)[index], &step);
      if (!status.ok()) {
        return Status::InvalidArgument("malformed GraphSpec" + where + ": " + status.message());
      }
      spec.steps.push_back(std::move(step));
    }
  } catch (const json::exception& e) {
    return Status::InvalidArgument("malformed GraphSpec" + where + ": " + e.what());
  }
  return spec;
}

}  // namespace

// Builds a Graph from a parsed FlowSpec; the friend of Graph that fills it in.
class GraphBuilder {
 public:
  explicit GraphBuilder(FlowSpec spec) : spec_(std::move(spec)) {}
  Result<Graph> Build();

 private:
  void CheckStep(size_t i);
  void ResolveNext(size_t i);
  StepId Lookup(const std::string& name) const {
    auto it = ids_.find(name);
    return it == ids_.end() ? kNoStep : it->second;
  }
  void Add(int line, const std::string& step, std::string what) {
    problems_.push_back({line, step, std::move(what)});
  }

  FlowSpec spec_;
  Graph graph_;
  std::map<std::string, StepId> ids_;  // the first step of each name
  std::vector<const StepSpec*> specs_;  // by StepId; into spec_
  std::vector<StepSource> sources_;
  std::vector<GraphProblem> problems_;
};

Result<Graph> GraphBuilder::Build() {
  graph_.flow_name_ = spec_.flow;
  graph_.file_ = spec_.file;
  for (const StepSpec& s : spec_.steps) {
    auto [it, inserted] = ids_.emplace(s.name, static_cast<StepId>(specs_.size()));
    if (!inserted) {
      // Dropped, so that the rest of the checks see one step per name.
      Add(s.line, s.name,
          "another step has this name (line " +
              std::to_string(specs_[static_cast<size_t>(it->second)]->line) +
              "); step names must be unique, so rename one of them");
      for (const std::string& problem : s.problems) Add(s.line, s.name, problem);
      continue;
    }
    specs_.push_back(&s);
    Step step;
    step.name = s.name;
    step.line = s.line;
    step.doc = s.doc;
    step.code_hash = s.code_hash;
    step.is_join = s.is_join;
    step.foreach_var = s.foreach_var;
    step.switch_var = s.switch_var;
    step.parallel = s.parallel;
    step.options = s.options;
    graph_.steps_.push_back(std::move(step));
    sources_.push_back({s.line, s.next_line});
  }
  graph_.start_ = Lookup("start");
  graph_.end_ = Lookup("end");
  if (graph_.start_ == kNoStep) {
    Add(spec_.line, "", "no start step; every flow begins with a @step named 'start'");
  }
  if (graph_.end_ == kNoStep) {
    Add(spec_.line, "", "no end step; every flow finishes with a @step named 'end'");
  }
  for (size_t i = 0; i < specs_.size(); ++i) {
    CheckStep(i);
    ResolveNext(i);
  }
  ValidateSteps(sources_, graph_.start_, graph_.end_, &graph_.steps_, &problems_);
  if (!problems_.empty()) {
    const std::string& file = spec_.file.empty() ? spec_.flow : spec_.file;
    return Status::InvalidGraph(FormatProblems(file, spec_.flow, problems_));
  }
  return std::move(graph_);
}

// The checks that need only the step itself. Sets its transition.
void GraphBuilder::CheckStep(size_t i) {
  const StepSpec& s = *specs_[i];
  Step& step = graph_.steps_[i];
  int next_line = sources_[i].NextOrDefLine();
  for (const std::string& problem : s.problems) Add(s.line, s.name, problem);
  if (s.options.retries < 0) Add(s.line, s.name, "retries must be 0 or more");
  if (s.options.timeout_s < 0) Add(s.line, s.name, "timeout must be 0 (none) or more");
  if (s.options.retry_delay_s < 0) Add(s.line, s.name, "retry delay must be 0 or more");
  if (s.is_join && s.name == "start") {
    Add(s.line, s.name,
        "start cannot take inputs: nothing runs before it, so there is "
        "nothing to join; define it as def start(self)");
  }
  if (s.name == "end") {
    if (s.transition != "end" && s.transition != "none") {
      Add(next_line, s.name,
          "end must not call self.next(): the flow finishes there, so "
          "remove the call");
    }
    step.transition = Transition::kEnd;
    return;
  }
  const std::string& t = s.transition;
  step.transition = t == "branch"    ? Transition::kBranch
                    : t == "foreach" ? Transition::kForeach
                    : t == "switch"  ? Transition::kSwitch
                                     : Transition::kLinear;
  if (t == "none") {
    Add(s.line, s.name,
        "has no self.next() call; end it with self.next(self.<step>) to say "
        "what runs next (only 'end' may leave it out)");
  } else if (t == "end") {
    Add(s.line, s.name,
        "only the step named 'end' can finish the flow; end this one with "
        "self.next(...)");
  } else if (t == "linear" && s.next.size() != 1) {
    Add(next_line, s.name,
        "self.next names " + std::to_string(s.next.size()) +
            " steps; name the one step that runs next, as in self.next(self.a)");
  } else if (t == "branch") {
    if (s.next.size() < 2) {
      Add(next_line, s.name,
          "a branch needs at least two steps, as in self.next(self.a, self.b)");
    }
    std::set<std::string> seen;
    for (const std::string& name : s.next) {
      if (!seen.insert(name).second) {
        Add(next_line, s.name,
            "self.next names '" + name +
                "' twice; each branch must go to a different step");
      }
    }
  } else if (s.parallel && t != "foreach") {
    Add(next_line, s.name, "num_parallel is a kind of foreach; the GraphSpec says " + t);
  } else if (t == "foreach") {
    if (s.next.size() != 1) {
      Add(next_line, s.name,
          "a foreach names exactly one step, as in "
          "self.next(self.a, foreach=\"items\")");
    }
    if (s.foreach_var.empty()) {
      Add(next_line, s.name,
          "foreach needs the attribute to fan out over, as in "
          "foreach=\"items\"");
    }
  } else if (t == "switch") {
    if (s.switch_var.empty()) {
      Add(next_line, s.name,
          "a switch needs condition=\"<attribute>\" naming the attribute "
          "that holds the case to run");
    }
    if (s.cases.empty()) {
      Add(next_line, s.name,
          "switch with no cases; give at least one, as in "
          "self.next({\"low\": self.a}, condition=\"mode\")");
    }
    std::set<std::string> values;
    for (const auto& [value, target] : s.cases) {
      if (!values.insert(value).second) {
        Add(next_line, s.name,
            "the switch has the case '" + value +
                "' more than once; case values must be unique");
      }
    }
  }
}

// Turns target names into ids. Unknown names are reported and dropped, so
// the whole-graph checks see only real edges.
void GraphBuilder::ResolveNext(size_t i) {
  const StepSpec& s = *specs_[i];
  Step& step = graph_.steps_[i];
  if (step.transition == Transition::kEnd) return;  // end's next is an error
  std::set<std::string> unknown;
  auto resolve = [&](const std::string& name) {
    StepId id = Lookup(name);
    if (id == kNoStep) sources_[i].next_incomplete = true;
    if (id == kNoStep && unknown.insert(name).second) {
      Add(sources_[i].NextOrDefLine(), s.name,
          "self.next names '" + name +
              "', which is not a step of this flow; fix the name or "
              "decorate the method with @step");
    }
    return id;
  };
  // Several switch cases may lead to one step, and a name given twice in a
  // branch was reported by CheckStep: next lists each successor once, so the
  // split checks do not report the same thing again.
  auto add_next = [&](StepId id) {
    if (std::find(step.next.begin(), step.next.end(), id) == step.next.end()) {
      step.next.push_back(id);
    }
  };
  if (step.transition == Transition::kSwitch) {
    for (const auto& [value, target] : s.cases) {
      StepId id = resolve(target);
      if (id == kNoStep) continue;
      step.switch_cases.emplace_back(value, id);
      add_next(id);
    }
  } else {
    for (const std::string& name : s.next) {
      StepId id = resolve(name);
      if (id != kNoStep) add_next(id);
    }
  }
  if (step.next.empty()) sources_[i].next_incomplete = true;
}

Result<Graph> Graph::FromSpec(std::string_view spec_json) {
  Result<FlowSpec> spec = ParseSpec(spec_json);
  if (!spec.ok()) return spec.status();
  return GraphBuilder(std::move(spec).value()).Build();
}

}  // namespace cairn
