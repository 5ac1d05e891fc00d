#include "store/blob_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/digest.h"
#include "util/fs.h"
#include "test_util.h"

namespace cairn {
namespace {

class BlobIoTest : public testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(7);
    data_.resize((37u << 20) + 999);
    for (char& c : data_) c = static_cast<char>(rng());
    path_ = dir_.Join("blob");
    ASSERT_OK(WriteFileAtomic(path_, data_));
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }

  std::string HashOf(const void* p, size_t n) {
    Hasher h;
    h.Update(p, n);
    return h.HexDigest();
  }

  test::TempDir dir_;
  std::string data_;
  std::string path_;
  int fd_ = -1;
};

// Two threads read the 2 MiB chunks and hash them in order: the bytes and
// the hash are those of one sequential read, from any offset.
TEST_F(BlobIoTest, ReadHashedReadsAndHashesInOrder) {
  for (uint64_t offset : {uint64_t{0}, uint64_t{12345}}) {
    uint64_t size = data_.size() - offset;
    std::vector<uint8_t> out(size);
    Hasher hasher;
    ASSERT_OK(ReadHashed(fd_, offset, out.data(), size, path_, hasher));
    EXPECT_EQ(std::memcmp(out.data(), data_.data() + offset, size), 0);
    EXPECT_EQ(hasher.HexDigest(), HashOf(data_.data() + offset, size));
  }
}

// A file that ends early fails the read in whichever thread meets the end,
// and neither thread is left waiting for its turn.
TEST_F(BlobIoTest, ReadHashedStopsBothThreadsWhenOneFails) {
  // 19 chunks of 2 MiB: the last (index 18) is thread 0's; with one more
  // chunk, index 19 is thread 1's.
  for (uint64_t extra : {uint64_t{1}, uint64_t{(2u << 20) + 1}}) {
    uint64_t size = data_.size() + extra;
    std::vector<uint8_t> out(size);
    Hasher hasher;
    Status s = ReadHashed(fd_, 0, out.data(), size, path_, hasher);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("shrank"), std::string::npos) << s.ToString();
  }
}

}  // namespace
}  // namespace cairn
