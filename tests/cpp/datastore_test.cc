#include "store/datastore.h"
#include "util/digest.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite.h"
#include "test_util.h"

namespace cairn {
namespace {

using Mode = Datastore::Mode;

TaskRecord MakeTask(int64_t run_id, int64_t task_id, const std::string& step) {
  TaskRecord t;
  t.run_id = run_id;
  t.task_id = task_id;
  t.step = step;
  t.status = "succeeded";
  t.clone_key = step + "/" + std::to_string(task_id);
  t.started_at = 100 + task_id;
  t.finished_at = 200 + task_id;
  t.attempts.push_back(AttemptRecord{0, "succeeded", 0, 0, "", 100.0 + task_id, 200.0 + task_id});
  t.artifacts.push_back(ArtifactRecord{"x", std::string(32, 'a'), 10, "int", "pickle5"});
  return t;
}

NewRun MakeRun(const std::string& flow) {
  NewRun run;
  run.flow = flow;
  run.user = "alice";
  return run;
}

class DatastoreTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.Join(".cairn");
    ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Mode::kReadWrite));
  }

  // Runs `sql` on the database file directly, bypassing Datastore.
  // Takes the database back to the tables of version 2.
  void UndoVersion3() {
    RawExec("DROP INDEX runs_running");
    RawExec("ALTER TABLE runs DROP COLUMN engine_started");
    RawExec("ALTER TABLE runs DROP COLUMN engine_machine");
  }

  void RawExec(const std::string& sql) {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(root_ + "/cairn.db", SQLITE_OPEN_READWRITE));
    ASSERT_OK(db.Exec(sql));
  }

  test::TempDir dir_;
  std::string root_;
  std::unique_ptr<Datastore> ds_;
};

TEST_F(DatastoreTest, CreateRunCommitsItsFirstTasksWithTheRun) {
  TaskRecord params = MakeTask(0, 0, "_parameters");
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F"), {params}));
  // Another connection (a resume after kill -9) sees both at once.
  ASSERT_OK_AND_ASSIGN(auto reader, Datastore::Open(root_, Mode::kReadOnly));
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, reader->Tasks(run.run_id, "_parameters"));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].run_id, run.run_id);
  ASSERT_EQ(tasks[0].artifacts.size(), 1u);
  EXPECT_EQ(tasks[0].artifacts[0].name, "x");
}

TEST_F(DatastoreTest, AFailedRunKeepsItsReason) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK(ds_->FinishRun(run.run_id, "failed", "the datastore's disk is full"));
  ASSERT_OK_AND_ASSIGN(RunRecord got, ds_->GetRun("F", run.run_id));
  EXPECT_EQ(got.failure, "the datastore's disk is full");
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> listed, ds_->Runs("F"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].failure, "the datastore's disk is full");
}

TEST_F(DatastoreTest, CreateRunLeavesNoRunWhenItsFirstTasksCannotBeRecorded) {
  // Two tasks with one id: the second insert fails, and the run goes with it.
  TaskRecord params = MakeTask(0, 0, "_parameters");
  EXPECT_FALSE(ds_->CreateRun(MakeRun("F"), {params, params}).ok());
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, ds_->Runs("F"));
  EXPECT_TRUE(runs.empty());
}

TEST_F(DatastoreTest, RoundTripsRunsTasksAttemptsArtifactsAndTags) {
  NewRun new_run = MakeRun("HelloFlow");
  new_run.origin_run_id = 0;
  new_run.params_json = R"({"alpha": 0.5})";
  new_run.graph_json = R"({"steps": []})";
  new_run.tags = {"exp", "baseline"};
  new_run.system_tags = {"user:alice", "runtime:local"};
  ASSERT_OK_AND_ASSIGN(RunRecord created, ds_->CreateRun(new_run));
  EXPECT_GT(created.run_id, 0);
  EXPECT_EQ(created.status, "running");
  EXPECT_EQ(created.engine_pid, getpid());
  EXPECT_GT(created.created_at, 1.6e9);

  TaskRecord start = MakeTask(created.run_id, 1, "start");
  start.result_json = R"({"foreach_count": 2})";
  TaskRecord body = MakeTask(created.run_id, 2, "body");
  body.foreach_index = 1;
  body.parents = {1};
  body.origin = "HelloFlow/7/body/2";
  body.status = "failed";
  body.attempts.push_back(AttemptRecord{1, "timeout", -1, 9, "timed out after 5s", 300, 305});
  body.artifacts.push_back(ArtifactRecord{"model", std::string(32, 'b'), 1 << 20, "Model", "pickle5"});
  TaskRecord join = MakeTask(created.run_id, 3, "join");
  join.parents = {1, 2};
  ASSERT_OK(ds_->RecordTasks({start, body, join}));
  ASSERT_OK(ds_->FinishRun(created.run_id, "failed"));

  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->GetRun("HelloFlow", created.run_id));
  EXPECT_EQ(run.status, "failed");
  EXPECT_GE(run.finished_at, run.created_at);
  EXPECT_EQ(run.user, "alice");
  EXPECT_EQ(run.params_json, new_run.params_json);
  EXPECT_EQ(run.graph_json, new_run.graph_json);
  // A listing has everything but the GraphSpec.
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> listed, ds_->Runs("HelloFlow"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].params_json, new_run.params_json);
  EXPECT_EQ(listed[0].status, "failed");
  EXPECT_EQ(listed[0].graph_json, "");
  EXPECT_EQ(run.tags, (std::vector<std::string>{"baseline", "exp"}));
  EXPECT_EQ(run.system_tags, (std::vector<std::string>{"runtime:local", "user:alice"}));

  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, ds_->Tasks(created.run_id));
  ASSERT_EQ(tasks.size(), 3u);
  const TaskRecord& got = tasks[1];
  EXPECT_EQ(got.step, "body");
  EXPECT_EQ(got.status, "failed");
  EXPECT_EQ(got.foreach_index, 1);
  EXPECT_EQ(got.origin, body.origin);
  EXPECT_EQ(got.clone_key, body.clone_key);
  EXPECT_EQ(got.parents, std::vector<int64_t>{1});
  EXPECT_EQ(got.started_at, body.started_at);
  ASSERT_EQ(got.attempts.size(), 2u);
  EXPECT_EQ(got.attempts[1].status, "timeout");
  EXPECT_EQ(got.attempts[1].signal, 9);
  EXPECT_EQ(got.attempts[1].reason, "timed out after 5s");
  EXPECT_EQ(got.attempts[1].finished_at, 305);
  ASSERT_EQ(got.artifacts.size(), 2u);
  EXPECT_EQ(got.artifacts[0].name, "model");
  EXPECT_EQ(got.artifacts[0].size, 1 << 20);
  EXPECT_EQ(got.artifacts[0].type, "Model");
  EXPECT_EQ(got.artifacts[0].encoding, "pickle5");
  EXPECT_EQ(tasks[0].result_json, start.result_json);
  EXPECT_EQ(tasks[2].parents, (std::vector<int64_t>{1, 2}));

  ASSERT_OK_AND_ASSIGN(TaskRecord one, ds_->GetTask(created.run_id, 2));
  EXPECT_EQ(one.attempts.size(), 2u);
  EXPECT_EQ(one.artifacts.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> joins, ds_->Tasks(created.run_id, "join"));
  ASSERT_EQ(joins.size(), 1u);
  EXPECT_EQ(joins[0].task_id, 3);
  EXPECT_EQ(joins[0].attempts.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> flows, ds_->Flows());
  EXPECT_EQ(flows, std::vector<std::string>{"HelloFlow"});
}

TEST_F(DatastoreTest, RunsAreNewestFirstWithTheirOwnTags) {
  for (int i = 0; i < 5; ++i) {
    NewRun run = MakeRun("F");
    run.tags = {"n" + std::to_string(i)};
    ASSERT_OK(ds_->CreateRun(run));
    ASSERT_OK(ds_->CreateRun(MakeRun("Other")));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, ds_->Runs("F"));
  ASSERT_EQ(runs.size(), 5u);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].flow, "F");
    EXPECT_EQ(runs[i].tags, std::vector<std::string>{"n" + std::to_string(4 - i)});
    if (i > 0) {
      EXPECT_GT(runs[i - 1].run_id, runs[i].run_id);
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> latest, ds_->Runs("F", 2));
  ASSERT_EQ(latest.size(), 2u);
  EXPECT_EQ(latest[0].run_id, runs[0].run_id);
  EXPECT_EQ(latest[1].tags, std::vector<std::string>{"n3"});
  // The next page starts below the last run of this one, tags included.
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> older, ds_->Runs("F", 2, latest[1].run_id));
  ASSERT_EQ(older.size(), 2u);
  EXPECT_EQ(older[0].run_id, runs[2].run_id);
  EXPECT_EQ(older[0].tags, std::vector<std::string>{"n2"});
  EXPECT_EQ(older[1].tags, std::vector<std::string>{"n1"});
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> last, ds_->Runs("F", 0, older[1].run_id));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].tags, std::vector<std::string>{"n0"});
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> none, ds_->Runs("Nope"));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(double first, ds_->FirstRunTime("F"));
  EXPECT_EQ(first, runs.back().created_at);
  ASSERT_OK_AND_ASSIGN(double never, ds_->FirstRunTime("Nope"));
  EXPECT_EQ(never, 0.0);
}

TEST_F(DatastoreTest, RecordTasksIsAllOrNothing) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK(ds_->RecordTasks({MakeTask(run.run_id, 5, "a")}));
  // Task 5 is already recorded with its artifact: the whole batch must fail,
  // including task 6.
  Status s = ds_->RecordTasks({MakeTask(run.run_id, 6, "a"), MakeTask(run.run_id, 5, "a")});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(run.run_id) + "/5"), std::string::npos) << s.message();
  // A duplicate artifact name fails the batch too, after its task row went in.
  TaskRecord dup = MakeTask(run.run_id, 7, "a");
  dup.artifacts.push_back(dup.artifacts[0]);
  EXPECT_FALSE(ds_->RecordTasks({MakeTask(run.run_id, 8, "a"), dup}).ok());

  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, ds_->Tasks(run.run_id));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].task_id, 5);
  EXPECT_EQ(tasks[0].artifacts.size(), 1u);
  // The datastore is still usable after the failed batches.
  EXPECT_OK(ds_->RecordTasks({MakeTask(run.run_id, 6, "a")}));
}

TEST_F(DatastoreTest, ARunningRowIsReplacedByTheFinishedOne) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  TaskRecord running = MakeTask(run.run_id, 3, "a");
  running.status = "running";
  running.finished_at = 0;
  running.artifacts.clear();
  running.attempts[0].status = "running";
  ASSERT_OK(ds_->RecordTasks({running}));
  ASSERT_OK_AND_ASSIGN(TaskRecord seen, ds_->GetTask(run.run_id, 3));
  EXPECT_EQ(seen.status, "running");
  ASSERT_EQ(seen.attempts.size(), 1u);
  EXPECT_EQ(seen.attempts[0].status, "running");
  EXPECT_TRUE(seen.artifacts.empty());

  // A retry's running row, then the finished task: one row, two attempts.
  running.attempts[0].status = "failed";
  running.attempts.push_back(AttemptRecord{1, "running", -1, 0, "", 150.0, 0});
  ASSERT_OK(ds_->RecordTasks({running}));
  TaskRecord done = MakeTask(run.run_id, 3, "a");
  done.attempts = {running.attempts[0], AttemptRecord{1, "succeeded", 0, 0, "", 150.0, 203.0}};
  ASSERT_OK(ds_->RecordTasks({done}));
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, ds_->Tasks(run.run_id));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].status, "succeeded");
  EXPECT_EQ(tasks[0].finished_at, 203.0);
  ASSERT_EQ(tasks[0].attempts.size(), 2u);
  EXPECT_EQ(tasks[0].attempts[0].status, "failed");
  EXPECT_EQ(tasks[0].attempts[1].status, "succeeded");
  EXPECT_EQ(tasks[0].artifacts.size(), 1u);
}

TEST_F(DatastoreTest, RecordTasksOfAnUnknownRunFails) {
  EXPECT_FALSE(ds_->RecordTasks({MakeTask(999, 1, "a")}).ok());
}

TEST_F(DatastoreTest, NotFoundNamesThePathspec) {
  Result<RunRecord> run = ds_->GetRun("HelloFlow", 42);
  EXPECT_EQ(run.status().code(), Status::Code::kNotFound);
  EXPECT_NE(run.status().message().find("HelloFlow/42"), std::string::npos)
      << run.status().message();
  Result<TaskRecord> task = ds_->GetTask(42, 7);
  EXPECT_EQ(task.status().code(), Status::Code::kNotFound);
  EXPECT_NE(task.status().message().find("42/7"), std::string::npos) << task.status().message();
  EXPECT_EQ(ds_->FinishRun(42, "failed").code(), Status::Code::kNotFound);
  EXPECT_EQ(ds_->AddTags(42, {"x"}).code(), Status::Code::kNotFound);
}

TEST_F(DatastoreTest, UserCanRemoveOnlyUserTags) {
  NewRun new_run = MakeRun("F");
  new_run.system_tags = {"user:alice"};
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(new_run));
  ASSERT_OK(ds_->AddTags(run.run_id, {"keep", "drop", "keep"}));
  ASSERT_OK(ds_->RemoveTags(run.run_id, {"drop", "user:alice", "never-there"}));
  ASSERT_OK_AND_ASSIGN(RunRecord got, ds_->GetRun("F", run.run_id));
  EXPECT_EQ(got.tags, std::vector<std::string>{"keep"});
  EXPECT_EQ(got.system_tags, std::vector<std::string>{"user:alice"});
}

TEST_F(DatastoreTest, ReplaceTagsIsOneTransaction) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK(ds_->AddTags(run.run_id, {"old"}));
  ASSERT_OK(ds_->ReplaceTags(run.run_id, {"old"}, {"new"}));
  ASSERT_OK_AND_ASSIGN(RunRecord got, ds_->GetRun("F", run.run_id));
  EXPECT_EQ(got.tags, std::vector<std::string>{"new"});
  // When adding fails, the removal is undone with it.
  RawExec("CREATE TRIGGER no_boom BEFORE INSERT ON tags WHEN NEW.tag = 'boom' "
          "BEGIN SELECT RAISE(ABORT, 'no boom'); END");
  EXPECT_FALSE(ds_->ReplaceTags(run.run_id, {"new"}, {"boom"}).ok());
  ASSERT_OK_AND_ASSIGN(got, ds_->GetRun("F", run.run_id));
  EXPECT_EQ(got.tags, std::vector<std::string>{"new"});
}

TEST_F(DatastoreTest, ReadOnlySeesWritesOfAnotherConnection) {
  ASSERT_OK_AND_ASSIGN(RunRecord first, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Mode::kReadOnly));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, reader->Runs("F"));
  EXPECT_EQ(runs.size(), 1u);
  ASSERT_OK(ds_->RecordTasks({MakeTask(first.run_id, 1, "start")}));
  ASSERT_OK(ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(runs, reader->Runs("F"));
  EXPECT_EQ(runs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, reader->Tasks(first.run_id));
  EXPECT_EQ(tasks.size(), 1u);
  EXPECT_EQ(reader->CreateRun(MakeRun("F")).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(DatastoreTest, ReadOnlyOpensAfterTheWriterClosed) {
  ASSERT_OK(ds_->CreateRun(MakeRun("F")));
  ds_.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Mode::kReadOnly));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, reader->Runs("F"));
  EXPECT_EQ(runs.size(), 1u);
}

TEST_F(DatastoreTest, ReadOnlyOpenOfMissingDatastoreIsNotFound) {
  std::string missing = dir_.Join("nowhere");
  Result<std::unique_ptr<Datastore>> ds = Datastore::Open(missing, Mode::kReadOnly);
  EXPECT_EQ(ds.status().code(), Status::Code::kNotFound);
  EXPECT_NE(ds.status().message().find(missing + "/cairn.db"), std::string::npos)
      << ds.status().message();
}

TEST_F(DatastoreTest, RefusesANewerSchemaVersion) {
  ds_.reset();
  const std::string newer = std::to_string(kSchemaVersion + 1);
  RawExec("UPDATE meta SET value = '" + newer + "' WHERE key = 'schema_version'");
  for (Mode mode : {Mode::kReadWrite, Mode::kReadOnly}) {
    Result<std::unique_ptr<Datastore>> ds = Datastore::Open(root_, mode);
    ASSERT_EQ(ds.status().code(), Status::Code::kVersionMismatch) << ds.status().ToString();
    EXPECT_NE(ds.status().message().find("version " + newer), std::string::npos) << ds.status().message();
    EXPECT_NE(ds.status().message().find("version " + std::to_string(kSchemaVersion)),
              std::string::npos)
        << ds.status().message();
  }
}

TEST_F(DatastoreTest, MigratesADatabaseFromBeforeVersioning) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ds_.reset();
  // Version 0 comes in two shapes: the meta table without its row, or no
  // meta table at all.
  for (const char* sql : {"DELETE FROM meta", "DROP TABLE meta"}) {
    RawExec(sql);
    UndoVersion3();
    // A reader cannot migrate, and says so.
    EXPECT_EQ(Datastore::Open(root_, Mode::kReadOnly).status().code(),
              Status::Code::kVersionMismatch);
    ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Mode::kReadWrite));
    EXPECT_OK(ds_->GetRun("F", run.run_id));
    ds_.reset();
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(root_ + "/cairn.db", SQLITE_OPEN_READONLY));
    ASSERT_OK_AND_ASSIGN(Stmt version,
                         db.Prepare("SELECT value FROM meta WHERE key = 'schema_version'"));
    ASSERT_OK_AND_ASSIGN(bool row, version.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(version.ColumnText(0), std::to_string(kSchemaVersion));
  }
}

TEST_F(DatastoreTest, MigratesVersionOneByAddingTheBlobsTable) {
  ds_.reset();
  RawExec("DROP TABLE blobs");
  UndoVersion3();
  RawExec("UPDATE meta SET value = '1' WHERE key = 'schema_version'");
  ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Mode::kReadWrite));
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  TaskRecord task = MakeTask(run.run_id, 1, "start");
  std::string data = "small value";
  ByteView view{data.data(), data.size()};
  std::string digest = DigestOf(std::span<const ByteView>(&view, 1));
  task.blobs.emplace_back(digest, data);
  ASSERT_OK(ds_->RecordTasks({task}));
  ASSERT_OK_AND_ASSIGN(std::string back, ds_->GetBlob(digest));
  EXPECT_EQ(back, data);
}

TEST_F(DatastoreTest, MigratesVersionTwoByRecordingTheEngineIdentity) {
  ASSERT_OK_AND_ASSIGN(RunRecord old_run, ds_->CreateRun(MakeRun("F")));
  ds_.reset();
  UndoVersion3();
  RawExec("UPDATE runs SET engine_pid = 999999999");  // no such process
  RawExec("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Mode::kReadWrite));
  // Too little is known of an old run's engine to call it crashed.
  ASSERT_OK_AND_ASSIGN(RunRecord got, ds_->GetRun("F", old_run.run_id));
  EXPECT_EQ(got.status, "running");
  EXPECT_EQ(got.engine_started, 0);
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  EXPECT_EQ(run.engine_pid, getpid());
  EXPECT_GT(run.engine_started, 0);
  EXPECT_FALSE(run.engine_machine.empty());
  EXPECT_EQ(run.status, "running");
}

TEST_F(DatastoreTest, ARunWhoseEngineIsGoneReadsAsCrashed) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(RunRecord done, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK(ds_->FinishRun(done.run_id, "failed"));
  // The same pid started at another time: another process, so the engine is gone.
  RawExec("UPDATE runs SET engine_started = engine_started + 1");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Mode::kReadOnly));
  ASSERT_OK_AND_ASSIGN(RunRecord got, reader->GetRun("F", run.run_id));
  EXPECT_EQ(got.status, "crashed");
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, reader->Runs("F"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].status, "crashed");
  EXPECT_EQ(runs[0].status, "failed");  // a finished run stays what it was
  // On another machine nothing can be told: still running.
  RawExec("UPDATE runs SET engine_machine = 'elsewhere/boot'");
  ASSERT_OK_AND_ASSIGN(got, reader->GetRun("F", run.run_id));
  EXPECT_EQ(got.status, "running");
}

// The engine finishes the run and exits after a reader has read the row as
// running but before it looks at the process: the reader must report the
// outcome, not a crash (a Run object would keep "crashed" for good).
TEST_F(DatastoreTest, ARunFinishedBetweenTheReadAndTheLookIsNotCrashed) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Mode::kReadOnly));
  int looks = 0;
  reader->SetLivenessCheck([&](const ProcessIdentity&) {
    if (looks++ == 0) EXPECT_OK(ds_->FinishRun(run.run_id, "succeeded"));  // then it exits
    return Liveness::kGone;
  });
  ASSERT_OK_AND_ASSIGN(RunRecord got, reader->GetRun("F", run.run_id));
  EXPECT_EQ(looks, 1);
  EXPECT_EQ(got.status, "succeeded");
  EXPECT_GT(got.finished_at, 0);
  // The same through a listing.
  ASSERT_OK_AND_ASSIGN(RunRecord other, ds_->CreateRun(MakeRun("F")));
  looks = 0;
  reader->SetLivenessCheck([&](const ProcessIdentity&) {
    if (looks++ == 0) EXPECT_OK(ds_->FinishRun(other.run_id, "failed", "step 'x' failed"));
    return Liveness::kGone;
  });
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, reader->Runs("F"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, "failed");
  EXPECT_EQ(runs[0].failure, "step 'x' failed");
  EXPECT_EQ(runs[1].status, "succeeded");
  // A run whose engine is gone without finishing it is still crashed.
  ASSERT_OK_AND_ASSIGN(RunRecord lost, ds_->CreateRun(MakeRun("F")));
  reader->SetLivenessCheck([](const ProcessIdentity&) { return Liveness::kGone; });
  ASSERT_OK_AND_ASSIGN(got, reader->GetRun("F", lost.run_id));
  EXPECT_EQ(got.status, "crashed");
}

TEST_F(DatastoreTest, AnEngineMarksTheCrashedRunsOfItsMachine) {
  ASSERT_OK_AND_ASSIGN(RunRecord crashed, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(RunRecord elsewhere, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(RunRecord done, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK_AND_ASSIGN(RunRecord live, ds_->CreateRun(MakeRun("F")));
  ASSERT_OK(ds_->FinishRun(done.run_id, "succeeded"));
  RawExec("UPDATE runs SET engine_started = engine_started + 1 WHERE run_id IN (" +
          std::to_string(crashed.run_id) + ", " + std::to_string(elsewhere.run_id) + ", " +
          std::to_string(done.run_id) + ")");
  RawExec("UPDATE runs SET engine_machine = 'elsewhere/boot' WHERE run_id = " +
          std::to_string(elsewhere.run_id));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> marked, ds_->MarkCrashedRuns());
  EXPECT_EQ(marked, std::vector<int64_t>{crashed.run_id});
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(root_ + "/cairn.db", SQLITE_OPEN_READONLY));
  ASSERT_OK_AND_ASSIGN(Stmt q, db.Prepare("SELECT status FROM runs ORDER BY run_id"));
  std::vector<std::string> stored;
  ASSERT_OK(q.ForEachRow([&](const Stmt& row) { stored.push_back(row.ColumnText(0)); }));
  EXPECT_EQ(stored, (std::vector<std::string>{"crashed", "running", "succeeded", "running"}));
  ASSERT_OK_AND_ASSIGN(marked, ds_->MarkCrashedRuns());  // nothing left to mark
  EXPECT_TRUE(marked.empty());
  (void)live;
}

TEST_F(DatastoreTest, SmallBlobsAreRecordedWithTheirTaskAndVerifiedOnRead) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  std::string data = "a pickled int, say";
  ByteView view{data.data(), data.size()};
  std::string digest = DigestOf(std::span<const ByteView>(&view, 1));
  TaskRecord task = MakeTask(run.run_id, 1, "start");
  task.artifacts.assign(1, ArtifactRecord{"x", digest, static_cast<int64_t>(data.size()), "int", "pickle5"});
  task.blobs.emplace_back(digest, data);
  TaskRecord twin = MakeTask(run.run_id, 2, "end");  // the same value again: stored once
  twin.artifacts = task.artifacts;
  twin.blobs = task.blobs;
  ASSERT_OK(ds_->RecordTasks({task, twin}));

  ASSERT_OK_AND_ASSIGN(std::string back, ds_->GetBlob(digest));
  EXPECT_EQ(back, data);
  ASSERT_OK_AND_ASSIGN(auto of_run, ds_->BlobsOfRun(run.run_id));
  ASSERT_EQ(of_run.size(), 1u);
  EXPECT_EQ(of_run[0].first, digest);
  EXPECT_EQ(ds_->GetBlob(std::string(32, '0')).status().code(), Status::Code::kNotFound);

  ds_.reset();
  RawExec("UPDATE blobs SET data = X'00'");
  ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Mode::kReadOnly));
  Result<std::string> bad = ds_->GetBlob(digest);
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find(digest), std::string::npos);
  ASSERT_OK_AND_ASSIGN(auto sound, ds_->BlobsOfRun(run.run_id));
  EXPECT_TRUE(sound.empty());  // never handed on to a task
}

TEST_F(DatastoreTest, StoringADamagedSmallBlobAgainRepairsIt) {
  ASSERT_OK_AND_ASSIGN(RunRecord run, ds_->CreateRun(MakeRun("F")));
  std::string data = "a small value";
  ByteView view{data.data(), data.size()};
  std::string digest = DigestOf(std::span<const ByteView>(&view, 1));
  TaskRecord task = MakeTask(run.run_id, 1, "start");
  task.artifacts.assign(1, ArtifactRecord{"x", digest, static_cast<int64_t>(data.size()), "str", "pickle5"});
  task.blobs.emplace_back(digest, data);
  ASSERT_OK(ds_->RecordTasks({task}));
  RawExec("UPDATE blobs SET data = X'00'");
  ASSERT_EQ(ds_->GetBlob(digest).status().code(), Status::Code::kCorruption);
  task.task_id = 2;
  ASSERT_OK(ds_->RecordTasks({task}));
  ASSERT_OK_AND_ASSIGN(std::string back, ds_->GetBlob(digest));
  EXPECT_EQ(back, data);
}

TEST_F(DatastoreTest, GarbledSchemaVersionIsCorruption) {
  ds_.reset();
  RawExec("UPDATE meta SET value = 'one' WHERE key = 'schema_version'");
  EXPECT_EQ(Datastore::Open(root_, Mode::kReadWrite).status().code(), Status::Code::kCorruption);
}

// Two engine processes record runs at the same time while this process polls
// read-only: nobody may ever see "database is locked".
TEST_F(DatastoreTest, ConcurrentWritersAndReadersNeverFailWithBusy) {
  ds_.reset();
  constexpr int kWriters = 2, kRuns = 30, kTasksPerRun = 40;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto fail = [](const Status& s) {
        std::fprintf(stderr, "writer failed: %s\n", s.ToString().c_str());
        _exit(1);
      };
      Result<std::unique_ptr<Datastore>> ds = Datastore::Open(root_, Mode::kReadWrite);
      if (!ds.ok()) fail(ds.status());
      for (int r = 0; r < kRuns; ++r) {
        Result<RunRecord> run = (*ds)->CreateRun(MakeRun("W" + std::to_string(w)));
        if (!run.ok()) fail(run.status());
        std::vector<TaskRecord> tasks;
        for (int t = 0; t < kTasksPerRun; ++t) tasks.push_back(MakeTask(run->run_id, t, "s"));
        Status s = (*ds)->RecordTasks(tasks);
        if (s.ok()) s = (*ds)->FinishRun(run->run_id, "succeeded");
        if (!s.ok()) fail(s);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Datastore> reader, Datastore::Open(root_, Mode::kReadOnly));
  int running = kWriters;
  while (running > 0) {
    for (int w = 0; w < kWriters; ++w) {
      Result<std::vector<RunRecord>> runs = reader->Runs("W" + std::to_string(w), 3);
      ASSERT_OK(runs);
      if (!runs->empty()) {
        ASSERT_OK(reader->Tasks(runs->front().run_id));
      }
    }
    for (pid_t& pid : pids) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
        pid = 0;
        --running;
      }
    }
  }
  for (int w = 0; w < kWriters; ++w) {
    ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, reader->Runs("W" + std::to_string(w)));
    ASSERT_EQ(runs.size(), static_cast<size_t>(kRuns));
    EXPECT_EQ(runs[0].status, "succeeded");
    ASSERT_OK_AND_ASSIGN(std::vector<TaskRecord> tasks, reader->Tasks(runs[0].run_id));
    EXPECT_EQ(tasks.size(), static_cast<size_t>(kTasksPerRun));
  }
}

}  // namespace
}  // namespace cairn
