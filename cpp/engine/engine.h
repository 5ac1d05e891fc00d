// Engine: runs one flow. It wires the Graph, a Plan, a Launcher, the
// Datastore and an EventSink together in a single-threaded poll loop: ask
// the Plan for work, start it (or clone it from the origin run on resume),
// stream output, record each finished task in one transaction, repeat.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "engine/event_sink.h"
#include "engine/run_options.h"
#include "exec/launcher.h"
#include "graph/graph.h"
#include "store/datastore.h"
#include "util/result.h"

namespace cairn {

class Engine {
 public:
  // Nothing is owned: every reference must outlive the Engine.
  Engine(const Graph& graph, Datastore& store, Launcher& launcher, EventSink& sink);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs to completion. A failed task is not an error: it gives a summary
  // with status "failed". Errors are for the engine itself (datastore I/O)
  // and for interruption (SIGINT/SIGTERM/SIGHUP: kInterrupted, after every
  // task was killed and recorded and the run marked failed).
  // `wake_fd`: a descriptor that becomes readable on interruption (-1: none);
  // `interrupted` is then called to confirm.
  Result<RunSummary> Run(const RunOptions& options, int wake_fd = -1,
                         std::function<bool()> interrupted = nullptr);

  // The id of the run the last Run() created, 0 if it stopped before that:
  // what an interrupted Run() (an error, not a summary) leaves to its caller.
  int64_t run_id() const { return run_id_; }

 private:
  class RunState;
  const Graph& graph_;
  Datastore& store_;
  Launcher& launcher_;
  EventSink& sink_;
  int64_t run_id_ = 0;
};

}  // namespace cairn
