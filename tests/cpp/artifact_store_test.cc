#include "store/artifact_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/fs.h"
#include "test_util.h"

namespace cairn {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Text(size_t n) {
  std::string s;
  while (s.size() < n) s += "the quick brown fox " + std::to_string(s.size() % 97) + "\n";
  s.resize(n);
  return s;
}

// Compressible, but not so much that it shrinks to nothing: 2 bits a byte.
std::string Dna(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = "acgt"[rng() % 4];
  return s;
}

std::vector<ByteView> Views(const std::vector<std::string>& parts) {
  std::vector<ByteView> views;
  for (const std::string& p : parts) views.push_back(ByteView{p.data(), p.size()});
  return views;
}

std::string AsString(std::span<uint8_t> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Every regular file under `dir`, temp files included.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  return files;
}

uint32_t CodecOf(const std::string& path) {
  Result<std::string> bytes = ReadFile(path);
  if (!bytes.ok() || bytes->size() < 16) return 99;
  return static_cast<uint8_t>((*bytes)[12]);
}

// Overwrites part of a (read-only) blob file in place.
void Patch(const std::string& path, off_t offset, const std::string& bytes) {
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), offset), static_cast<ssize_t>(bytes.size()));
  close(fd);
}

class ArtifactStoreTest : public testing::Test {
 protected:
  void ExpectRoundTrip(const std::vector<std::string>& parts) {
    std::vector<ByteView> views = Views(parts);
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    EXPECT_EQ(put.digest, DigestOf(views));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(put.digest));
    ASSERT_EQ(blob->segment_count(), parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      EXPECT_EQ(AsString(blob->segment(i)), parts[i]) << "segment " << i;
      // Aligned like a numpy array wants its buffer.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(blob->segment(i).data()) % 64, 0u) << "segment " << i;
    }
  }

  test::TempDir dir_;
  ArtifactStore store_{dir_.path()};
};

TEST_F(ArtifactStoreTest, RoundTripsRawMultiSegmentBlobs) {
  ExpectRoundTrip({RandomBytes(100, 1), "", RandomBytes(70000, 2), RandomBytes(3, 3)});
  ExpectRoundTrip({});
  ExpectRoundTrip({"tiny"});
}

// Raw blobs of 32 MiB and more take the mapped, two-thread write path; the
// segments' sizes put the split between the threads inside a segment and
// leave padding between them.
TEST_F(ArtifactStoreTest, RoundTripsLargeRawBlobs) {
  std::vector<std::string> parts = {RandomBytes(17 << 20, 21), RandomBytes(5, 22),
                                    RandomBytes((16 << 20) + 3, 23)};
  ExpectRoundTrip(parts);
  std::string digest = DigestOf(Views(parts));
  EXPECT_EQ(CodecOf(store_.PathOf(digest)), 0u);
  struct stat st;
  ASSERT_EQ(stat(store_.PathOf(digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

TEST_F(ArtifactStoreTest, RoundTripsCompressedMultiSegmentBlobs) {
  ExpectRoundTrip({Text(5000), "", Text(300000), std::string(1 << 20, 'z')});
}

TEST_F(ArtifactStoreTest, SameContentIsStoredOnce) {
  std::string data = RandomBytes(10000, 4);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult first, store_.Put(views));
  EXPECT_FALSE(first.existed);
  EXPECT_GT(first.stored_size, 0u);
  ASSERT_OK_AND_ASSIGN(PutResult second, store_.Put(views));
  EXPECT_TRUE(second.existed);
  EXPECT_EQ(second.stored_size, 0u);
  EXPECT_EQ(second.digest, first.digest);
  EXPECT_EQ(second.size, first.size);
  EXPECT_TRUE(store_.Has(first.digest));
  EXPECT_EQ(FilesUnder(dir_.path()), std::vector<std::string>{store_.PathOf(first.digest)});
}

TEST_F(ArtifactStoreTest, BlobLivesUnderItsDigest) {
  ByteView views[] = {{"abc", 3}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  EXPECT_EQ(store_.PathOf(put.digest),
            dir_.path() + "/objects/" + put.digest.substr(0, 2) + "/" + put.digest.substr(2));
  EXPECT_TRUE(Exists(store_.PathOf(put.digest)));
}

TEST_F(ArtifactStoreTest, CompressibleDataIsStoredSmaller) {
  std::string text = Text(1 << 20);
  ByteView views[] = {{text.data(), text.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  EXPECT_EQ(put.size, text.size());
  EXPECT_LT(put.stored_size, text.size() / 4);
  EXPECT_EQ(CodecOf(store_.PathOf(put.digest)), 1u);
}

TEST_F(ArtifactStoreTest, RandomDataIsStoredRaw) {
  std::string data = RandomBytes(1 << 20, 5);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  EXPECT_GE(put.stored_size, data.size());
  EXPECT_EQ(CodecOf(store_.PathOf(put.digest)), 0u);
}

TEST_F(ArtifactStoreTest, RawPlanGivesTheFileBytesPutWrites) {
  // Two segments, the first not a multiple of the alignment: padding between.
  std::vector<std::string> parts = {RandomBytes(100001, 8), RandomBytes(5000, 9)};
  std::vector<ByteView> views = Views(parts);
  RawBlobPlan plan = PlanRawBlob(views);
  ASSERT_TRUE(plan.raw);
  ASSERT_EQ(plan.offsets.size(), 2u);
  std::string planned(reinterpret_cast<const char*>(plan.header.data()), plan.header.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    planned.resize(plan.header.size() + plan.offsets[i], '\0');
    planned += parts[i];
  }
  EXPECT_EQ(planned.size(), plan.file_size);
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  EXPECT_EQ(put.digest, plan.digest);
  ASSERT_OK_AND_ASSIGN(std::string written, ReadFile(store_.PathOf(put.digest)));
  EXPECT_EQ(written, planned);

  // A value Put compresses has no raw plan.
  std::string text = Text(1 << 20);
  ByteView compressible[] = {{text.data(), text.size()}};
  RawBlobPlan none = PlanRawBlob(compressible);
  EXPECT_FALSE(none.raw);
  EXPECT_EQ(none.digest, DigestOf(compressible));
}

TEST_F(ArtifactStoreTest, FlippedByteIsCorruption) {
  for (const std::string& data : {RandomBytes(50000, 6), Text(50000)}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string path = store_.PathOf(put.digest);
    Result<std::string> bytes = ReadFile(path);
    ASSERT_OK(bytes);
    off_t last = static_cast<off_t>(bytes->size() - 1);
    Patch(path, last, std::string(1, static_cast<char>((*bytes)[last] ^ 0x20)));
    Result<std::unique_ptr<Blob>> blob = store_.Get(put.digest);
    EXPECT_EQ(blob.status().code(), Status::Code::kCorruption) << blob.status().ToString();
    EXPECT_NE(blob.status().message().find(put.digest), std::string::npos)
        << blob.status().message();
  }
}

// GetInto reads a one-segment blob into the caller's memory, raw or zstd,
// small or spanning several read chunks.
TEST_F(ArtifactStoreTest, GetIntoFillsTheCallersMemory) {
  for (const std::string& data : {RandomBytes(3 << 20, 8), Text(5 << 20), std::string("x"), std::string()}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string out;
    int calls = 0;
    ASSERT_OK(store_.GetInto(put.digest, [&](uint64_t size) {
      ++calls;
      out.resize(size);
      return reinterpret_cast<uint8_t*>(out.data());
    }));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(out, data);
  }
}

TEST_F(ArtifactStoreTest, GetIntoDetectsAFlippedByteAndRefusesSeveralSegments) {
  for (const std::string& data : {RandomBytes(50000, 9), Text(50000)}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string path = store_.PathOf(put.digest);
    ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(path));
    off_t last = static_cast<off_t>(bytes.size() - 1);
    Patch(path, last, std::string(1, static_cast<char>(bytes[last] ^ 0x20)));
    std::string out;
    Status s = store_.GetInto(put.digest, [&](uint64_t size) {
      out.resize(size);
      return reinterpret_cast<uint8_t*>(out.data());
    });
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  }
  std::vector<std::string> parts = {"pickle", RandomBytes(1000, 10)};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(Views(parts)));
  Status s = store_.GetInto(put.digest, [](uint64_t) -> uint8_t* { return nullptr; });
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ByteView one[] = {{parts[1].data(), parts[1].size()}};
  ASSERT_OK_AND_ASSIGN(PutResult single, store_.Put(one));
  s = store_.GetInto(single.digest, [](uint64_t) -> uint8_t* { return nullptr; });
  EXPECT_FALSE(s.ok());  // out of memory: an error, not a crash
}

// A big read is shared by two threads and hashed chunk by chunk in order:
// every chunk must be read and verified, whichever thread read it.
TEST_F(ArtifactStoreTest, BigGetIntoReadsAndVerifiesEveryChunk) {
  std::string data = RandomBytes((40u << 20) + 12345, 31);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  auto get = [&](std::string* out) {
    return store_.GetInto(put.digest, [&](uint64_t size) {
      out->assign(size, '\0');
      return reinterpret_cast<uint8_t*>(out->data());
    });
  };
  std::string out;
  ASSERT_OK(get(&out));
  EXPECT_TRUE(out == data);
  std::string path = store_.PathOf(put.digest);
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(path));
  off_t body = static_cast<off_t>(bytes.size() - data.size());
  // In the first chunk, one the second thread reads (2 MiB chunks), and the
  // short last one.
  for (off_t at : {off_t{5}, off_t{(3 << 20) + 7}, static_cast<off_t>(data.size() - 1)}) {
    char flipped = static_cast<char>(data[at] ^ 0x01);
    Patch(path, body + at, std::string(1, flipped));
    Status s = get(&out);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << "byte " << at << ": " << s.ToString();
    Patch(path, body + at, std::string(1, data[at]));
  }
  ASSERT_OK(get(&out));
}

TEST_F(ArtifactStoreTest, GarbledHeaderIsCorruption) {
  std::string data = RandomBytes(5000, 7);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  std::string path = store_.PathOf(put.digest);
  // A segment length that no longer matches: the digest covers lengths too.
  Patch(path, 32, std::string("\x01", 1));
  EXPECT_EQ(store_.Get(put.digest).status().code(), Status::Code::kCorruption);
  Patch(path, 0, "NOTABLOB");
  EXPECT_EQ(store_.Get(put.digest).status().code(), Status::Code::kCorruption);
}

TEST_F(ArtifactStoreTest, TruncatedFileIsCorruption) {
  for (const std::string& data : {RandomBytes(50000, 8), Text(50000)}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string path = store_.PathOf(put.digest);
    for (off_t size : {static_cast<off_t>(put.stored_size - 1), off_t{40}, off_t{10}, off_t{0}}) {
      ASSERT_EQ(truncate(path.c_str(), size), 0);
      Result<std::unique_ptr<Blob>> blob = store_.Get(put.digest);
      EXPECT_EQ(blob.status().code(), Status::Code::kCorruption)
          << "size " << size << ": " << blob.status().ToString();
    }
  }
}

// What a power loss can leave behind, since blobs are not fsynced.
TEST_F(ArtifactStoreTest, PutRepairsABlobCutShort) {
  for (const std::string& data : {RandomBytes(50000, 12), Dna(50000, 12)}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string path = store_.PathOf(put.digest);
    for (off_t size : {off_t{0}, static_cast<off_t>(put.stored_size / 2)}) {
      ASSERT_EQ(truncate(path.c_str(), size), 0);
      ASSERT_OK_AND_ASSIGN(PutResult again, store_.Put(views));
      EXPECT_FALSE(again.existed) << "size " << size;
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(put.digest));
      EXPECT_EQ(AsString(blob->segment(0)), data);
    }
  }
}

// A blob damaged in place (bit rot, a stray write) keeps its header and
// size; Put verifies it in full before trusting it, so storing the value
// again repairs it for every run that refers to it.
TEST_F(ArtifactStoreTest, PutRepairsAGarbledBlob) {
  for (const std::string& data : {RandomBytes(50000, 13), Dna(50000, 13)}) {
    ByteView views[] = {{data.data(), data.size()}};
    ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
    std::string path = store_.PathOf(put.digest);
    off_t middle = static_cast<off_t>(put.stored_size / 2);
    ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(path));
    Patch(path, middle, std::string(1, static_cast<char>(bytes[middle] ^ 0x01)));
    ASSERT_EQ(store_.Get(put.digest).status().code(), Status::Code::kCorruption);
    ASSERT_OK_AND_ASSIGN(PutResult again, store_.Put(views));
    EXPECT_FALSE(again.existed);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(put.digest));
    EXPECT_EQ(AsString(blob->segment(0)), data);
    EXPECT_FALSE(Exists(path + ".bad"));
    // Sound now: the next Put reuses it.
    ASSERT_OK_AND_ASSIGN(PutResult third, store_.Put(views));
    EXPECT_TRUE(third.existed);
  }
}

// Too big to decompress on every Put: trusted on its header and frame size
// until a Get finds it damaged and marks it bad; the next Put rewrites it.
TEST_F(ArtifactStoreTest, PutRewritesABigCompressedBlobAGetFoundBad) {
  std::string data = Dna(17u << 20, 14);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  std::string path = store_.PathOf(put.digest);
  ASSERT_EQ(CodecOf(path), 1u);
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(path));
  off_t middle = static_cast<off_t>(bytes.size() / 2) + 7;
  Patch(path, middle, std::string(1, static_cast<char>(bytes[middle] ^ 0x01)));
  ASSERT_OK_AND_ASSIGN(PutResult unverified, store_.Put(views));
  EXPECT_TRUE(unverified.existed);
  EXPECT_EQ(store_.Get(put.digest).status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Exists(path + ".bad"));
  ASSERT_OK_AND_ASSIGN(PutResult again, store_.Put(views));
  EXPECT_FALSE(again.existed);
  EXPECT_FALSE(Exists(path + ".bad"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(put.digest));
  EXPECT_EQ(AsString(blob->segment(0)), data);
}

TEST_F(ArtifactStoreTest, MissingBlobIsNotFound) {
  std::string digest = DigestOf({});
  Result<std::unique_ptr<Blob>> blob = store_.Get(digest);
  EXPECT_EQ(blob.status().code(), Status::Code::kNotFound);
  EXPECT_NE(blob.status().message().find(digest), std::string::npos) << blob.status().message();
  EXPECT_FALSE(store_.Has(digest));
  EXPECT_EQ(store_.Get("../../etc/passwd").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(ArtifactStoreTest, MappedSegmentsAreWritableCopies) {
  std::string data = RandomBytes(100000, 9);
  ByteView views[] = {{data.data(), data.size()}};
  ASSERT_OK_AND_ASSIGN(PutResult put, store_.Put(views));
  ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(store_.PathOf(put.digest)));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(put.digest));
    std::span<uint8_t> seg = blob->segment(0);
    std::memset(seg.data(), 0xAB, seg.size());
    EXPECT_EQ(seg[seg.size() - 1], 0xAB);
    // A second reader still sees the original bytes.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> other, store_.Get(put.digest));
    EXPECT_EQ(AsString(other->segment(0)), data);
  }
  ASSERT_OK_AND_ASSIGN(std::string after, ReadFile(store_.PathOf(put.digest)));
  EXPECT_EQ(after, before);
}

// Makes writes past `limit` bytes fail with EFBIG (instead of killing the
// process with SIGXFSZ) while in scope. Works as root, unlike permissions.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t limit) {
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lower = old_;
    lower.rlim_cur = limit;
    setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_;
  sighandler_t old_handler_;
};

TEST_F(ArtifactStoreTest, FailedWriteLeavesNoFile) {
  std::string raw = RandomBytes(1 << 20, 10);
  std::string dna = Dna(4 << 20, 10);
  std::string large = RandomBytes(40 << 20, 10);  // the mapped write path
  for (const std::string* data : {&raw, &dna, &large}) {
    ByteView views[] = {{data->data(), data->size()}};
    std::vector<std::string> before = FilesUnder(dir_.path());
    Result<PutResult> put = [&] {
      FileSizeLimit limit(64 * 1024);
      return store_.Put(views);
    }();
    ASSERT_FALSE(put.ok()) << "stored " << put->stored_size << " bytes";
    EXPECT_EQ(put.status().code(), Status::Code::kIOError) << put.status().ToString();
    EXPECT_EQ(FilesUnder(dir_.path()), before);
    std::string digest = DigestOf(views);
    EXPECT_FALSE(store_.Has(digest));
    // Once the disk has room again, the same Put works.
    ASSERT_OK_AND_ASSIGN(PutResult retry, store_.Put(views));
    EXPECT_EQ(CodecOf(store_.PathOf(digest)), data == &dna ? 1u : 0u);
    ASSERT_OK(store_.Get(digest));
  }
}

TEST_F(ArtifactStoreTest, ConcurrentPutsOfTheSameContentAgree) {
  std::string data = RandomBytes(4 << 20, 11);
  ByteView views[] = {{data.data(), data.size()}};
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(store_.Put(views).ok() ? 0 : 1);
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string digest = DigestOf(views);
  EXPECT_EQ(FilesUnder(dir_.path()), std::vector<std::string>{store_.PathOf(digest)});
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Blob> blob, store_.Get(digest));
  EXPECT_EQ(AsString(blob->segment(0)), data);
}

}  // namespace
}  // namespace cairn
