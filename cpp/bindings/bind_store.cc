#include <memory>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/errors.h"
#include "store/artifact_store.h"
#include "store/datastore.h"
#include "store/gc.h"
#include "util/digest.h"

namespace py = pybind11;

namespace cairn {
namespace {

// One segment of a blob, exposed through the buffer protocol. Holds the blob
// so that memory stays mapped while any view (or numpy array) uses it.
struct BlobSegment {
  std::shared_ptr<Blob> blob;
  size_t index;
};

py::list GetBlob(const ArtifactStore& store, const std::string& digest) {
  std::unique_ptr<Blob> blob;
  {
    py::gil_scoped_release release;
    auto result = store.Get(digest);
    if (!result.ok()) {
      py::gil_scoped_acquire acquire;
      ThrowStatus(result.status());
    }
    blob = std::move(result).value();
  }
  std::shared_ptr<Blob> shared(std::move(blob));
  py::list segments;
  for (size_t i = 0; i < shared->segment_count(); ++i) {
    segments.append(py::memoryview(py::cast(BlobSegment{shared, i})));
  }
  return segments;
}

// A one-segment blob as a new bytes (or bytearray) object: the file is read
// straight into the object's memory and verified there, one copy in all.
py::object GetBytes(const ArtifactStore& store, const std::string& digest, bool as_bytearray) {
  PyObject* out = nullptr;
  Status status;
  {
    py::gil_scoped_release release;
    status = store.GetInto(digest, [&](uint64_t size) -> uint8_t* {
      py::gil_scoped_acquire acquire;
      auto n = static_cast<Py_ssize_t>(size);
      out = as_bytearray ? PyByteArray_FromStringAndSize(nullptr, n) : PyBytes_FromStringAndSize(nullptr, n);
      if (out == nullptr) {
        PyErr_Clear();
        return nullptr;
      }
      return reinterpret_cast<uint8_t*>(as_bytearray ? PyByteArray_AS_STRING(out) : PyBytes_AS_STRING(out));
    });
  }
  py::object owned = py::reinterpret_steal<py::object>(out);
  ThrowIfError(status);
  return owned;
}

// Views of Python buffers (bytes, memoryview, PickleBuffer.raw()); `infos`
// keeps each buffer exported while the views are in use.
std::vector<ByteView> ViewsOf(const py::list& parts, std::vector<py::buffer_info>* infos) {
  std::vector<ByteView> views;
  infos->reserve(parts.size());
  for (const py::handle& part : parts) {
    infos->push_back(py::reinterpret_borrow<py::buffer>(part).request());
    const py::buffer_info& info = infos->back();
    views.push_back(ByteView{info.ptr, static_cast<size_t>(info.size * info.itemsize)});
  }
  return views;
}

std::string DigestOfParts(const py::list& parts) {
  std::vector<py::buffer_info> infos;
  return DigestOf(ViewsOf(parts, &infos));
}

py::tuple PutBlob(ArtifactStore& store, const py::list& parts) {
  std::vector<py::buffer_info> infos;
  std::vector<ByteView> views = ViewsOf(parts, &infos);
  Result<PutResult> result = [&] {
    py::gil_scoped_release release;
    return store.Put(views);
  }();
  PutResult put = Unwrap(std::move(result));
  return py::make_tuple(put.digest, put.size, put.stored_size);
}

// (digest, None) for a value Put would compress, else (digest, (header,
// offsets, file_size)): see PlanRawBlob.
py::tuple PlanRawBlobOfParts(const py::list& parts) {
  std::vector<py::buffer_info> infos;
  std::vector<ByteView> views = ViewsOf(parts, &infos);
  RawBlobPlan plan = [&] {
    py::gil_scoped_release release;
    return PlanRawBlob(views);
  }();
  if (!plan.raw) return py::make_tuple(plan.digest, py::none());
  py::bytes header(reinterpret_cast<const char*>(plan.header.data()), plan.header.size());
  return py::make_tuple(plan.digest, py::make_tuple(header, py::cast(plan.offsets), plan.file_size));
}

}  // namespace

py::tuple Pair(const Reclaimed& r) { return py::make_tuple(r.files, r.bytes); }

GcOptions GcOptionsFrom(bool blobs, bool dry_run, double grace_s) {
  GcOptions options;
  options.blobs = blobs;
  options.dry_run = dry_run;
  options.grace_s = grace_s;
  return options;
}

py::dict GcReportDict(const GcReport& r) {
  py::dict d;
  d["temp"] = Pair(r.temp);
  d["blobs"] = Pair(r.blobs);
  d["small_blobs"] = Pair(r.small_blobs);
  d["kept"] = Pair(r.kept);
  d["scanned"] = Pair(r.scanned);
  d["horizon"] = r.horizon;
  d["live_runs"] = r.live_runs;
  return d;
}

py::dict CollectGarbageDict(Datastore& ds, bool blobs, bool dry_run, double grace_s) {
  Result<GcReport> report = Status::IOError("garbage collection did not run");
  {
    py::gil_scoped_release release;
    report = CollectGarbage(ds, GcOptionsFrom(blobs, dry_run, grace_s));
  }
  return GcReportDict(Unwrap(std::move(report)));
}

py::dict MeasureUsageDict(Datastore& ds, double grace_s) {
  Result<Usage> usage = Status::IOError("the datastore was not measured");
  {
    py::gil_scoped_release release;
    usage = MeasureUsage(ds, GcOptionsFrom(true, true, grace_s));
  }
  Usage u = Unwrap(std::move(usage));
  py::dict d;
  d["runs"] = u.runs;
  d["live_runs"] = u.live_runs;
  d["small_blobs"] = py::make_tuple(u.small_blobs.count, u.small_blobs.bytes);
  d["database_bytes"] = u.database_bytes;
  d["log_bytes"] = u.log_bytes;
  d["reclaimable"] = GcReportDict(u.reclaimable);
  return d;
}

void BindStore(py::module_& m) {
  py::class_<BlobSegment>(m, "BlobSegment", py::buffer_protocol())
      .def_buffer([](BlobSegment& s) {
        std::span<uint8_t> bytes = s.blob->segment(s.index);
        return py::buffer_info(bytes.data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(bytes.size())}, {1}, /*readonly=*/false);
      });

  m.def("digest", &DigestOfParts, "The digest a blob of these buffers has (no I/O).");
  m.def("plan_raw_blob", &PlanRawBlobOfParts,
        "(digest, (header, offsets, file_size)) of the raw blob file these buffers make, or "
        "(digest, None) if the store would compress them (no I/O).");

  py::class_<ArtifactStore>(m, "ArtifactStore")
      .def(py::init<std::string>(), py::arg("root"))
      .def("put", &PutBlob, "Stores a list of buffers as one blob; returns (digest, size, stored_size).")
      .def("get", &GetBlob, "Reads a blob back as a list of writable memoryviews; verifies its digest.")
      .def("get_bytes", &GetBytes, py::arg("digest"), py::arg("as_bytearray") = false,
           "Reads a one-segment blob into a new bytes (or bytearray); verifies its digest.")
      .def("has", &ArtifactStore::Has)
      .def("path_of", &ArtifactStore::PathOf);

  py::class_<ArtifactRecord>(m, "ArtifactRecord")
      .def(py::init([](std::string name, std::string digest, int64_t size, std::string type, std::string encoding) {
             return ArtifactRecord{std::move(name), std::move(digest), size, std::move(type), std::move(encoding)};
           }),
           py::arg("name"), py::arg("digest"), py::arg("size"), py::arg("type"), py::arg("encoding"))
      .def_readonly("name", &ArtifactRecord::name)
      .def_readonly("digest", &ArtifactRecord::digest)
      .def_readonly("size", &ArtifactRecord::size)
      .def_readonly("type", &ArtifactRecord::type)
      .def_readonly("encoding", &ArtifactRecord::encoding);
  py::class_<AttemptRecord>(m, "AttemptRecord")
      .def_readonly("attempt", &AttemptRecord::attempt)
      .def_readonly("status", &AttemptRecord::status)
      .def_readonly("exit_code", &AttemptRecord::exit_code)
      .def_readonly("signal", &AttemptRecord::signal)
      .def_readonly("reason", &AttemptRecord::reason)
      .def_readonly("started_at", &AttemptRecord::started_at)
      .def_readonly("finished_at", &AttemptRecord::finished_at);
  py::class_<TaskRecord>(m, "TaskRecord")
      .def_readonly("run_id", &TaskRecord::run_id)
      .def_readonly("step", &TaskRecord::step)
      .def_readonly("task_id", &TaskRecord::task_id)
      .def_readonly("status", &TaskRecord::status)
      .def_readonly("foreach_index", &TaskRecord::foreach_index)
      .def_readonly("clone_key", &TaskRecord::clone_key)
      .def_readonly("origin", &TaskRecord::origin)
      .def_readonly("result_json", &TaskRecord::result_json)
      .def_readonly("parents", &TaskRecord::parents)
      .def_readonly("started_at", &TaskRecord::started_at)
      .def_readonly("finished_at", &TaskRecord::finished_at)
      .def_readonly("attempts", &TaskRecord::attempts)
      .def_readonly("artifacts", &TaskRecord::artifacts);
  py::class_<RunRecord>(m, "RunRecord")
      .def_readonly("run_id", &RunRecord::run_id)
      .def_readonly("flow", &RunRecord::flow)
      .def_readonly("status", &RunRecord::status)
      .def_readonly("user", &RunRecord::user)
      .def_readonly("created_at", &RunRecord::created_at)
      .def_readonly("finished_at", &RunRecord::finished_at)
      .def_readonly("origin_run_id", &RunRecord::origin_run_id)
      .def_readonly("engine_pid", &RunRecord::engine_pid)
      .def_readonly("engine_started", &RunRecord::engine_started)
      .def_readonly("engine_machine", &RunRecord::engine_machine)
      .def_readonly("params_json", &RunRecord::params_json)
      .def_readonly("failure", &RunRecord::failure)
      .def_readonly("graph_json", &RunRecord::graph_json)
      .def_readonly("tags", &RunRecord::tags)
      .def_readonly("system_tags", &RunRecord::system_tags);

  py::class_<Datastore>(m, "Datastore")
      .def(py::init([](const std::string& root, bool readonly) {
             return Unwrap(Datastore::Open(root, readonly ? Datastore::Mode::kReadOnly
                                                          : Datastore::Mode::kReadWrite));
           }),
           py::arg("root"), py::arg("readonly") = true)
      .def_property_readonly("root", &Datastore::root)
      .def("flows", [](Datastore& d) { return Unwrap(d.Flows()); })
      .def("collect_garbage", &CollectGarbageDict, py::arg("blobs") = false, py::arg("dry_run") = false,
           py::arg("grace_s") = 3600.0, "Sweeps stale temp files and, with blobs, unreferenced blobs (store/gc.h).")
      .def("measure_usage", &MeasureUsageDict, py::arg("grace_s") = 3600.0,
           "What the datastore holds, and what collect_garbage(blobs=True) would reclaim.")
      .def("first_run_time", [](Datastore& d, const std::string& flow) { return Unwrap(d.FirstRunTime(flow)); })
      .def("runs",
           [](Datastore& d, const std::string& flow, int64_t limit, int64_t before) {
             return Unwrap(d.Runs(flow, limit, before));
           },
           py::arg("flow"), py::arg("limit") = 0, py::arg("before") = 0)
      .def("get_run", [](Datastore& d, const std::string& flow, int64_t run_id) { return Unwrap(d.GetRun(flow, run_id)); })
      .def("tasks", [](Datastore& d, int64_t run_id, const std::string& step) { return Unwrap(d.Tasks(run_id, step)); },
           py::arg("run_id"), py::arg("step") = "")
      .def("get_task", [](Datastore& d, int64_t run_id, int64_t task_id) { return Unwrap(d.GetTask(run_id, task_id)); })
      .def("get_blob", [](Datastore& d, const std::string& digest) {
        std::string data = Unwrap(d.GetBlob(digest));
        return py::bytes(data);
      })
      .def("add_tags", [](Datastore& d, int64_t run_id, const std::vector<std::string>& tags) {
        ThrowIfError(d.AddTags(run_id, tags));
      })
      .def("remove_tags", [](Datastore& d, int64_t run_id, const std::vector<std::string>& tags) {
        ThrowIfError(d.RemoveTags(run_id, tags));
      })
      .def("replace_tags", [](Datastore& d, int64_t run_id, const std::vector<std::string>& remove,
                              const std::vector<std::string>& add) {
        ThrowIfError(d.ReplaceTags(run_id, remove, add));
      })
      // Writing a run without the engine (spin --persist): one run, then its tasks.
      .def("create_run",
           [](Datastore& d, const std::string& flow, const std::string& user,
              const std::vector<std::string>& system_tags, const std::string& params_json) {
             NewRun run;
             run.flow = flow;
             run.user = user;
             run.system_tags = system_tags;
             run.params_json = params_json;
             return Unwrap(d.CreateRun(run));
           })
      .def("finish_run", [](Datastore& d, int64_t run_id, const std::string& status) {
        ThrowIfError(d.FinishRun(run_id, status));
      })
      .def("record_succeeded_task",
           [](Datastore& d, int64_t run_id, const std::string& step, int64_t task_id,
              const std::vector<ArtifactRecord>& artifacts, const std::vector<std::pair<std::string, py::bytes>>& blobs,
              double started_at, double finished_at) {
             TaskRecord t;
             t.run_id = run_id;
             t.step = step;
             t.task_id = task_id;
             t.status = "succeeded";
             t.clone_key = step + "#" + std::to_string(task_id);
             t.started_at = started_at;
             t.finished_at = finished_at;
             t.attempts.push_back(AttemptRecord{0, "succeeded", 0, 0, "", started_at, finished_at});
             t.artifacts = artifacts;
             for (const auto& [digest, data] : blobs) t.blobs.emplace_back(digest, std::string(data));
             ThrowIfError(d.RecordTasks({t}));
           });
  m.attr("SCHEMA_VERSION") = kSchemaVersion;
}

}  // namespace cairn
