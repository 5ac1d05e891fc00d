#include "store/gc.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/artifact_store.h"
#include "store/datastore.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/time.h"
#include "test_util.h"

namespace cairn {
namespace {

// A pid that no process has now: a child that has exited and been reaped.
int64_t DeadPid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

void SetMtime(const std::string& path, double mtime) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(mtime);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

// A 10-byte file modified at `mtime`.
void Touch(const std::string& path, double mtime) {
  ASSERT_OK(WriteFileAtomic(path, "some bytes"));
  SetMtime(path, mtime);
}

Result<std::string> ReadDirNames(const std::string& dir) {
  std::string names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names += e.path().filename().string() + " ";
  if (ec) return Status::IOError(ec.message());
  return names;
}

class GcTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.Join(".cairn");
    ASSERT_OK_AND_ASSIGN(ds_, Datastore::Open(root_, Datastore::Mode::kReadWrite));
    ASSERT_OK(MakeDirs(root_ + "/objects/tmp"));
    ASSERT_OK(MakeDirs(root_ + "/tmp"));
  }

  std::string PutBlob(const std::string& data) {
    ByteView view{data.data(), data.size()};
    Result<PutResult> put = store_.Put(std::span<const ByteView>(&view, 1));
    EXPECT_OK(put);
    return put.ok() ? put->digest : "";
  }

  // Records a succeeded task of a new run (running, engine: this process)
  // whose artifacts refer to `digests`, with `small` stored as small blobs.
  RunRecord RecordRun(const std::vector<std::string>& digests,
                      const std::vector<std::pair<std::string, std::string>>& small = {}) {
    NewRun nr;
    nr.flow = "F";
    nr.user = "u";
    Result<RunRecord> run = ds_->CreateRun(nr);
    EXPECT_OK(run);
    TaskRecord t;
    t.run_id = run->run_id;
    t.task_id = 1;
    t.step = "start";
    t.status = "succeeded";
    t.clone_key = "start[]#0";
    for (size_t i = 0; i < digests.size(); ++i) {
      t.artifacts.push_back(ArtifactRecord{"a" + std::to_string(i), digests[i], 1, "bytes", "bytes"});
    }
    t.blobs = small;
    EXPECT_OK(ds_->RecordTasks({t}));
    return *run;
  }

  test::TempDir dir_;
  std::string root_;
  std::unique_ptr<Datastore> ds_;
  ArtifactStore store_{dir_.Join(".cairn")};
};

TEST_F(GcTest, SweepRemovesTempFilesOfDeadWritersAndOldOnes) {
  double now = WallSeconds();
  int64_t dead = DeadPid(), alive = getpid();
  std::string tmp = root_ + "/objects/tmp/";
  Touch(tmp + ".ab12.tmp-" + std::to_string(dead) + "-0-ff", now);
  Touch(tmp + ".ab13.tmp-" + std::to_string(alive) + "-0-ff", now);
  Touch(tmp + ".ab14.tmp-" + std::to_string(alive) + "-1-ff", now - 2 * 86400);  // pid reused?
  Touch(root_ + "/tmp/cairn-payload-" + std::to_string(dead) + "-Ab3dEf", now);
  Touch(root_ + "/tmp/cairn-payload-" + std::to_string(alive) + "-Ab3dEg", now);
  Touch(root_ + "/tmp/not-ours", now - 2 * 86400);

  GcOptions dry;
  dry.dry_run = true;
  ASSERT_OK_AND_ASSIGN(Reclaimed counted, SweepTempFiles(root_, dry));
  EXPECT_EQ(counted.files, 3);
  EXPECT_TRUE(Exists(tmp + ".ab12.tmp-" + std::to_string(dead) + "-0-ff"));

  ASSERT_OK_AND_ASSIGN(Reclaimed swept, SweepTempFiles(root_, GcOptions{}));
  EXPECT_EQ(swept.files, 3);
  EXPECT_EQ(swept.bytes, 3u * 10);
  EXPECT_FALSE(Exists(tmp + ".ab12.tmp-" + std::to_string(dead) + "-0-ff"));
  EXPECT_TRUE(Exists(tmp + ".ab13.tmp-" + std::to_string(alive) + "-0-ff"));
  EXPECT_FALSE(Exists(tmp + ".ab14.tmp-" + std::to_string(alive) + "-1-ff"));
  EXPECT_FALSE(Exists(root_ + "/tmp/cairn-payload-" + std::to_string(dead) + "-Ab3dEf"));
  EXPECT_TRUE(Exists(root_ + "/tmp/cairn-payload-" + std::to_string(alive) + "-Ab3dEg"));
  EXPECT_TRUE(Exists(root_ + "/tmp/not-ours"));
}

TEST_F(GcTest, RemovesOnlyUnreferencedBlobsOlderThanTheGracePeriod) {
  double now = WallSeconds();
  std::string kept = PutBlob("referenced"), old = PutBlob("old garbage"), young = PutBlob("young garbage");
  std::string small = "tiny";
  ByteView view{small.data(), small.size()};
  std::string small_digest = DigestOf(std::span<const ByteView>(&view, 1));
  RunRecord run = RecordRun({kept}, {{small_digest, small}});
  ASSERT_OK(ds_->FinishRun(run.run_id, "succeeded"));
  SetMtime(store_.PathOf(kept), now - 7200);
  SetMtime(store_.PathOf(old), now - 7200);

  GcOptions options;
  options.blobs = true;
  options.dry_run = true;
  ASSERT_OK_AND_ASSIGN(GcReport dry, CollectGarbage(*ds_, options));
  EXPECT_EQ(dry.blobs.files, 1);
  EXPECT_EQ(dry.kept.files, 1);
  EXPECT_EQ(dry.scanned.files, 3);
  EXPECT_EQ(dry.small_blobs.files, 1);
  EXPECT_TRUE(Exists(store_.PathOf(old)));

  options.dry_run = false;
  ASSERT_OK_AND_ASSIGN(GcReport report, CollectGarbage(*ds_, options));
  EXPECT_EQ(report.blobs.files, 1);
  EXPECT_GT(report.blobs.bytes, 0u);
  EXPECT_EQ(report.small_blobs.files, 1);
  EXPECT_FALSE(Exists(store_.PathOf(old)));
  EXPECT_TRUE(Exists(store_.PathOf(kept)));
  EXPECT_TRUE(Exists(store_.PathOf(young)));
  EXPECT_EQ(ds_->GetBlob(small_digest).status().code(), Status::Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::string listing, ReadDirNames(root_ + "/objects/tmp"));
  EXPECT_EQ(listing, "");  // the renamed-away blob is gone too
}

TEST_F(GcTest, KeepsWhatALiveRunMayReferAndWhatAPutReused) {
  double now = WallSeconds();
  std::string before = PutBlob("written before the run"), during = PutBlob("written during it"),
              reused = PutBlob("reused by a task");
  RunRecord run = RecordRun({});  // running, and its engine (this process) is alive
  SetMtime(store_.PathOf(before), run.created_at - 10);
  SetMtime(store_.PathOf(during), run.created_at + 5);
  SetMtime(store_.PathOf(reused), run.created_at - 10);
  PutBlob("reused by a task");  // dedup: refreshes the mtime

  GcOptions options;
  options.blobs = true;
  options.now = now + 7200;  // every blob is past the grace period
  ASSERT_OK_AND_ASSIGN(GcReport report, CollectGarbage(*ds_, options));
  EXPECT_EQ(report.live_runs, 1);
  EXPECT_EQ(report.blobs.files, 1);
  EXPECT_FALSE(Exists(store_.PathOf(before)));
  EXPECT_TRUE(Exists(store_.PathOf(during)));
  EXPECT_TRUE(Exists(store_.PathOf(reused)));
}

TEST_F(GcTest, RemovesTheLiveCardsOfRunsThatAreNotRunning) {
  RunRecord done = RecordRun({});
  ASSERT_OK(ds_->FinishRun(done.run_id, "failed"));
  RunRecord running = RecordRun({});  // its engine (this process) is alive
  std::string dead_dir = root_ + "/live/" + std::to_string(done.run_id);
  std::string live_dir = root_ + "/live/" + std::to_string(running.run_id);
  ASSERT_OK(MakeDirs(dead_dir));
  ASSERT_OK(MakeDirs(live_dir));
  Touch(dead_dir + "/3.0.0.html", WallSeconds());
  Touch(live_dir + "/3.0.0.html", WallSeconds());
  ASSERT_OK_AND_ASSIGN(GcReport report, CollectGarbage(*ds_, GcOptions{}));
  EXPECT_EQ(report.temp.files, 1);
  EXPECT_FALSE(Exists(dead_dir));
  EXPECT_TRUE(Exists(live_dir + "/3.0.0.html"));
}

}  // namespace
}  // namespace cairn
