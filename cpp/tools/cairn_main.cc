// The native `cairn` tool: inspect a datastore and validate GraphSpecs with
// no Python involved (useful on machines that only hold the data).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "graph/graph.h"
#include "store/datastore.h"

namespace {

using cairn::Datastore;

int Fail(const cairn::Status& status) {
  fmt::print(stderr, "cairn: {}\n", status.ToString());
  return 1;
}

std::string Status(const cairn::RunRecord& r) { return r.status; }

int ListRuns(const std::string& root, const std::string& flow, int64_t limit) {
  auto ds = Datastore::Open(root, Datastore::Mode::kReadOnly);
  if (!ds.ok()) return Fail(ds.status());
  auto flows = (*ds)->Flows();
  if (!flows.ok()) return Fail(flows.status());
  for (const std::string& name : flows.value()) {
    if (!flow.empty() && name != flow) continue;
    auto runs = (*ds)->Runs(name, limit);
    if (!runs.ok()) return Fail(runs.status());
    for (const auto& r : runs.value()) {
      fmt::print("{}/{}\t{}\t{}\n", name, r.run_id, Status(r), r.user);
    }
  }
  return 0;
}

int ListTasks(const std::string& root, const std::string& flow, int64_t run_id) {
  auto ds = Datastore::Open(root, Datastore::Mode::kReadOnly);
  if (!ds.ok()) return Fail(ds.status());
  auto run = (*ds)->GetRun(flow, run_id);
  if (!run.ok()) return Fail(run.status());
  auto tasks = (*ds)->Tasks(run_id);
  if (!tasks.ok()) return Fail(tasks.status());
  for (const auto& t : tasks.value()) {
    fmt::print("{}/{}/{}/{}\t{}\t{} attempt(s)\t{} artifact(s){}\n", flow, run_id, t.step, t.task_id, t.status,
               t.attempts.size(), t.artifacts.size(), t.origin.empty() ? "" : "\tfrom " + t.origin);
  }
  return 0;
}

int Validate(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    fmt::print(stderr, "cairn: cannot read {}\n", path);
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto graph = cairn::Graph::FromSpec(text.str());
  if (!graph.ok()) {
    fmt::print(stderr, "{}\n", graph.status().message());
    return 1;
  }
  fmt::print("{}: {} steps, valid\n", graph->flow_name(), graph->steps().size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairn: inspect a cairn datastore and validate GraphSpecs"};
  app.require_subcommand(1);
  std::string root = ".cairn";
  app.add_option("--root", root, "datastore root")->envname("CAIRN_HOME");

  std::string flow;
  int64_t limit = 0;
  auto* runs = app.add_subcommand("runs", "list runs, newest first");
  runs->add_option("flow", flow, "only this flow");
  runs->add_option("--limit", limit, "at most this many per flow");

  std::string pathspec;
  auto* tasks = app.add_subcommand("tasks", "list the tasks of a run");
  tasks->add_option("run", pathspec, "FLOW/RUN_ID")->required();

  std::string spec_path;
  auto* validate = app.add_subcommand("validate", "validate a GraphSpec JSON file");
  validate->add_option("spec", spec_path)->required();

  CLI11_PARSE(app, argc, argv);
  if (*runs) return ListRuns(root, flow, limit);
  if (*tasks) {
    auto slash = pathspec.find('/');
    if (slash == std::string::npos) {
      fmt::print(stderr, "cairn: expected FLOW/RUN_ID, got {}\n", pathspec);
      return 2;
    }
    return ListTasks(root, pathspec.substr(0, slash), std::stoll(pathspec.substr(slash + 1)));
  }
  if (*validate) return Validate(spec_path);
  return 0;
}
