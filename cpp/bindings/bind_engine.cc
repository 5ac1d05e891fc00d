#include <dlfcn.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/errors.h"
#include "engine/console_sink.h"
#include "engine/engine.h"
#include "exec/fork_server.h"
#include "exec/interrupt.h"
#include "exec/process_launcher.h"
#include "exec/routing_launcher.h"
#include "exec/sidecar_launcher.h"
#include "exec/task_process.h"
#include "exec/worker_launcher.h"
#include "graph/graph.h"
#include "store/datastore.h"
#include "util/fs.h"

namespace py = pybind11;

namespace cairn {
namespace {

template <typename T>
void Take(const py::dict& d, const char* key, T* out) {
  if (d.contains(key) && !d[key].is_none()) *out = d[key].cast<T>();
}

RunOptions OptionsFrom(const py::dict& d) {
  RunOptions o;
  Take(d, "root", &o.root);
  Take(d, "graph_json", &o.graph_json);
  Take(d, "max_workers", &o.max_workers);
  Take(d, "max_num_splits", &o.max_num_splits);
  Take(d, "user", &o.user);
  Take(d, "tags", &o.tags);
  Take(d, "system_tags", &o.system_tags);
  Take(d, "params_json", &o.params_json);
  Take(d, "param_artifacts_json", &o.param_artifacts_json);
  Take(d, "origin_run_id", &o.origin_run_id);
  Take(d, "resume_steps", &o.resume_steps);
  Take(d, "flow_payload_json", &o.flow_payload_json);
  Take(d, "task_argv", &o.task_argv);
  Take(d, "require_result", &o.require_result);
  Take(d, "run_id_file", &o.run_id_file);
  return o;
}

// cairn-task-exec, installed next to this extension (cpp/CMakeLists.txt).
Result<std::string> TaskExecPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&TaskExecPath), &info) == 0 || info.dli_fname == nullptr) {
    return Status::NotFound("cannot locate the cairn extension module");
  }
  std::string dir(info.dli_fname);
  dir = dir.substr(0, dir.rfind('/') + 1);
  std::string path = dir + "cairn-task-exec";
  if (::access(path.c_str(), X_OK) != 0) {
    return Status::NotFound("cairn-task-exec is missing next to " + std::string(info.dli_fname) +
                            " (reinstall cairn)");
  }
  return path;
}

py::dict RunFlow(const py::dict& options, int worker_fd, int worker_pid, const py::dict& console,
                int sidecar_fd, int sidecar_pid) {
  RunOptions run_options = OptionsFrom(options);
  ConsoleOptions console_options;
  Take(console, "quiet", &console_options.quiet);
  Take(console, "live_progress", &console_options.live_progress);
  Result<RunSummary> result = Status::IOError("the run did not start");
  int64_t created_run = 0;
  {
    py::gil_scoped_release release;
    result = [&]() -> Result<RunSummary> {
      CAIRN_ASSIGN_OR_RETURN(Graph graph, Graph::FromSpec(run_options.graph_json));
      CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Datastore> store,
                             Datastore::Open(run_options.root, Datastore::Mode::kReadWrite));
      std::unique_ptr<Launcher> launcher;
      if (worker_fd >= 0) {
        launcher = std::make_unique<WorkerLauncher>(worker_fd, worker_pid);
      } else {
        CAIRN_ASSIGN_OR_RETURN(std::string task_exec, TaskExecPath());
        launcher = std::make_unique<ProcessLauncher>(task_exec);
      }
      if (sidecar_fd >= 0) {
        launcher = std::make_unique<RoutingLauncher>(
            std::move(launcher), std::make_unique<SidecarLauncher>(sidecar_fd, sidecar_pid));
      }
      ConsoleSink sink(stdout, stderr, console_options);
      CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<InterruptCatcher> catcher, InterruptCatcher::Install());
      Engine engine(graph, *store, *launcher, sink);
      Result<RunSummary> ran =
          engine.Run(run_options, catcher->fd(), [&catcher] { return catcher->interrupted(); });
      created_run = engine.run_id();
      return ran;
    }();
  }
  if (!result.ok() && result.status().code() == Status::Code::kInterrupted) {
    // KeyboardInterrupt with the run's id, for the flow's exit hooks (0: none yet).
    py::object error = py::reinterpret_borrow<py::object>(PyExc_KeyboardInterrupt)(result.status().message());
    error.attr("run_id") = created_run;
    PyErr_SetObject(PyExc_KeyboardInterrupt, error.ptr());
    throw py::error_already_set();
  }
  RunSummary summary = Unwrap(std::move(result));
  py::dict out;
  out["run_id"] = summary.run_id;
  out["status"] = summary.status;
  out["tasks_succeeded"] = summary.tasks_succeeded;
  out["tasks_failed"] = summary.tasks_failed;
  out["tasks_cloned"] = summary.tasks_cloned;
  out["failure"] = summary.failure;
  return out;
}

// The worker's loop: returns None in the worker when the engine is done, or,
// in a forked child that has become the task's process (BecomeForkedTask),
// (env, payload, result_fd): env is the header's "env" as a dict, or None.
py::object ServeWorker(int socket_fd, int parent, const py::function& prepare) {
  std::unique_ptr<ForkServer> server = Unwrap(ForkServer::Start(socket_fd, parent));
  auto prepare_fn = [&prepare](const ForkRequest& r) {
    try {
      prepare(py::str(r.header), py::bytes(r.payload));
    } catch (py::error_already_set&) {
      // Only an optimization failed; the child loads what it needs itself.
    }
  };
  // What os.fork() does around fork(): Python's locks and at-fork hooks.
  auto fork_fn = []() -> pid_t {
    PyOS_BeforeFork();
    pid_t pid = ::fork();
    if (pid == 0) {
      PyOS_AfterFork_Child();
    } else {
      PyOS_AfterFork_Parent();
    }
    return pid;
  };
  std::optional<ForkRequest> request = Unwrap(server->Serve(prepare_fn, fork_fn));
  if (!request) return py::none();
  ThrowIfError(BecomeForkedTask(request->fds[0], request->fds[1]));
  py::object env = py::none();
  if (!request->env.empty()) env = py::cast(std::map<std::string, std::string>(request->env.begin(), request->env.end()));
  return py::make_tuple(env, py::bytes(request->payload), request->fds[2]);
}

}  // namespace

void BindEngine(py::module_& m) {
  m.def("run", &RunFlow, py::arg("options"), py::arg("worker_fd") = -1, py::arg("worker_pid") = 0,
        py::arg("console") = py::dict(), py::arg("sidecar_fd") = -1, py::arg("sidecar_pid") = 0,
        "Runs a flow to completion. With worker_fd, tasks are forked by the worker at the other end "
        "of that socket; otherwise each is spawned from options['task_argv']. With sidecar_fd, "
        "steps whose backend is set go to the sidecar at the other end of that socket.");
  m.def("serve_worker", &ServeWorker, py::arg("socket_fd"), py::arg("parent"), py::arg("prepare"),
        "The worker's request loop (C++: no Python runs between forks).");
  // The Ray sidecar and a node's fork server (python/cairn/backends/ray/).
  m.def("die_with_parent", [](int parent) { ThrowIfError(DieWithParent(parent)); });
}

}  // namespace cairn
