#include "store/blob_io.h"

#include <limits.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>

namespace cairn {
namespace {

// Writes: filling the page cache is the whole cost of storing a big blob,
// two threads fill it faster on a VM whose memory goes back to the host when
// free, and writes covering whole 2 MiB ranges leave huge folios, which a
// reader maps with one page-table entry per 2 MiB instead of 512
// (docs/performance.md: populating a 1 GiB mapping took 0.13-0.16 s after
// writes through shared mappings, under 1 ms after these).
constexpr int kWriteThreads = 2;
constexpr size_t kWriteWindow = 8u << 20;  // a multiple of kHugePageSize
// Reads: kReadChunk preads, each hashed right after it is read (still in
// cache); from kParallelReadSize on, kReadThreads threads share the chunks.
// No huge pages for the destination: on this VM free memory goes back to the
// host in 2 MiB blocks, so a huge page is usually a cold one, and a 200 MB
// read took 0.04 s of CPU with the hint when warm but 0.2-0.46 s when cold,
// against a steady 0.10-0.14 s without (docs/datastore.md).
constexpr size_t kReadChunk = 2u << 20;
constexpr size_t kParallelReadSize = 16u << 20;
constexpr int kReadThreads = 2;
#ifdef MADV_POPULATE_READ
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kMadvPopulateRead = 22;  // Linux 5.14's value; older headers lack it
#endif

}  // namespace

Status WriteShares(int fd, const std::vector<FilePiece>& pieces, size_t file_size, const std::string& what) {
  size_t share = (file_size + kWriteThreads - 1) / kWriteThreads;
  share = (share + kHugePageSize - 1) / kHugePageSize * kHugePageSize;
  std::atomic<int> failed_errno{0};
  auto write_share = [&](int t) {
    size_t lo = std::min(file_size, t * share), hi = std::min(file_size, lo + share);
    std::vector<iovec> iov;
    for (size_t w = lo; w < hi && failed_errno == 0; w += kWriteWindow) {
      size_t end = std::min(hi, w + kWriteWindow);
      iov.clear();
      for (const FilePiece& p : pieces) {
        size_t from = std::max(w, p.offset), to = std::min(end, p.offset + p.size);
        if (from < to) iov.push_back({const_cast<uint8_t*>(p.src + (from - p.offset)), to - from});
      }
      for (size_t done = 0, first = 0; done < end - w;) {
        int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t n = ::pwritev(fd, &iov[first], count, static_cast<off_t>(w + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          failed_errno = n < 0 ? errno : EIO;
          return;
        }
        done += static_cast<size_t>(n);
        for (size_t left = static_cast<size_t>(n); left > 0;) {
          size_t take = std::min(left, iov[first].iov_len);
          iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + take;
          iov[first].iov_len -= take;
          left -= take;
          if (iov[first].iov_len == 0) ++first;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < kWriteThreads; ++t) threads.emplace_back(write_share, t);
  write_share(0);
  for (std::thread& t : threads) t.join();
  if (failed_errno != 0) return Status::FromErrno(failed_errno, "write " + what);
  return Status::OK();
}

Status ReadExactly(int fd, void* buf, size_t size, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, static_cast<uint8_t*>(buf) + done, size - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path);
    if (n == 0) return Status::Corruption(path + ": shrank while being read");
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// Chunk i of a big read goes to thread i % kReadThreads, which hashes it
// right after reading it, in turn: a chunk's hash waits for the chunk before
// it, so one thread hashes while the other reads.
Status ReadHashed(int fd, uint64_t offset, uint8_t* out, uint64_t size, const std::string& path,
                  Hasher& hasher) {
  const size_t chunks = static_cast<size_t>((size + kReadChunk - 1) / kReadChunk);
  auto chunk = [&](size_t i) {
    return std::pair<uint64_t, size_t>{i * kReadChunk, std::min<uint64_t>(kReadChunk, size - i * kReadChunk)};
  };
  if (size < kParallelReadSize) {
    for (size_t i = 0; i < chunks; ++i) {
      auto [at, n] = chunk(i);
      CAIRN_RETURN_IF_ERROR(ReadExactly(fd, out + at, n, offset + at, path));
      hasher.Update(out + at, n);
    }
    return Status::OK();
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t turn = 0;  // the chunk to hash next; its hasher owns `hasher` until turn moves on
  Status error;
  auto run = [&](size_t first) {
    for (size_t i = first; i < chunks; i += kReadThreads) {
      auto [at, n] = chunk(i);
      Status s = ReadExactly(fd, out + at, n, offset + at, path);
      std::unique_lock<std::mutex> lock(mu);
      if (!s.ok() && error.ok()) error = std::move(s);
      cv.wait(lock, [&] { return !error.ok() || turn == i; });
      if (!error.ok()) break;
      lock.unlock();
      hasher.Update(out + at, n);
      lock.lock();
      turn = i + 1;
      cv.notify_all();
    }
    cv.notify_all();
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < kReadThreads; ++t) threads.emplace_back(run, t);
  run(0);
  for (std::thread& t : threads) t.join();
  return error;
}

void PopulateRead(void* addr, size_t size) { ::madvise(addr, size, kMadvPopulateRead); }

}  // namespace cairn
