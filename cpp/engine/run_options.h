// RunOptions: everything the Engine needs to know to run (or resume) a flow.
// Defaults are the CLI's defaults.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cairn {

struct RunOptions {
  std::string root;                  // datastore root (".cairn")
  std::string graph_json;            // the GraphSpec
  int max_workers = 16;              // tasks running at once
  int max_num_splits = 100;          // passed to tasks, which enforce it on foreach
  std::string user;
  std::vector<std::string> tags;           // user tags
  std::vector<std::string> system_tags;    // "user:...", "runtime:...", ...
  std::string params_json = "{}";          // {"name": value}, for display and resume
  // Artifacts of the `_parameters` pseudo-task, already stored as blobs:
  // [[name, digest, size, type, encoding], ...]. Every task inherits them.
  std::string param_artifacts_json = "[]";
  // Resume: the run to continue, and the steps to re-run from (empty: the
  // steps that failed in the origin run).
  int64_t origin_run_id = 0;
  std::vector<std::string> resume_steps;
  // Copied into every task payload under "flow": whatever the task side
  // needs that is the same for all tasks (flow file, datastore root, ...).
  std::string flow_payload_json = "{}";
  // ProcessLauncher only: argv prefix; the engine appends nothing, the
  // payload file says which task to run.
  std::vector<std::string> task_argv;
  // If set, the run id is written here as soon as the run exists.
  std::string run_id_file;
  // Python tasks must write a result document; shell tasks (native tool) need not.
  bool require_result = true;
};

struct RunSummary {
  int64_t run_id = 0;
  std::string status;          // "succeeded" or "failed"
  int tasks_succeeded = 0;
  int tasks_failed = 0;
  int tasks_cloned = 0;
  std::string failure;         // one line, empty on success
};

}  // namespace cairn
