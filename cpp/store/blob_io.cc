#include "store/blob_io.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

namespace cairn {
namespace {

// Writes: two threads, each copying one contiguous share of the file
// through a shared mapping, a window at a time.
constexpr int kCopyThreads = 2;
constexpr size_t kMapWindow = 8u << 20;  // a multiple of the page size
// Reads: kReadChunk preads, each hashed right after it is read (still in
// cache); from kParallelReadSize on, kReadThreads threads share the chunks.
// No huge pages for the destination: on this VM free memory goes back to the
// host in 2 MiB blocks, so a huge page is usually a cold one, and a 200 MB
// read took 0.04 s of CPU with the hint when warm but 0.2-0.46 s when cold,
// against a steady 0.10-0.14 s without (docs/datastore.md).
constexpr size_t kReadChunk = 2u << 20;
constexpr size_t kParallelReadSize = 16u << 20;
constexpr int kReadThreads = 2;
#if defined(MADV_POPULATE_READ)
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#elif defined(__linux__)
constexpr int kMadvPopulateRead = 22;  // Linux 5.14's values; older headers lack them
constexpr int kMadvPopulateWrite = 23;
#else
constexpr int kMadvPopulateRead = -1;  // no such advice: nothing is populated
constexpr int kMadvPopulateWrite = -1;
#endif

// Faults in the whole pages inside [p, p + size) for writing, in one call:
// on this VM a page fault's entry and exit cost as much as zeroing the page,
// and a 200 MB read into fresh memory took 0.058 s instead of 0.072 s
// (median of 5 alternating, two threads). Only a hint.
void PopulateWrite(uint8_t* p, size_t size) {
  static const uintptr_t kPage = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
  uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + size) & ~(kPage - 1);
  if (kMadvPopulateWrite >= 0 && hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, kMadvPopulateWrite);
}

}  // namespace

Status CopyIntoFile(int fd, const std::vector<FilePiece>& pieces, size_t file_size, const std::string& what) {
  static const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t share = (file_size + kCopyThreads - 1) / kCopyThreads;
  share = (share + kPage - 1) / kPage * kPage;
  std::atomic<int> failed_errno{0};
  auto copy_share = [&](int t) {
    size_t lo = std::min(file_size, t * share), hi = std::min(file_size, lo + share);
    if (lo == hi) return;
    void* map = ::mmap(nullptr, hi - lo, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(lo));
    if (map == MAP_FAILED) {
      failed_errno = errno;
      return;
    }
    uint8_t* base = static_cast<uint8_t*>(map) - lo;  // base + file offset = its address
    for (size_t w = lo; w < hi; w += kMapWindow) {
      size_t end = std::min(hi, w + kMapWindow);
      for (const FilePiece& p : pieces) {
        size_t from = std::max(w, p.offset), to = std::min(end, p.offset + p.size);
        if (from < to) std::memcpy(base + from, p.src + (from - p.offset), to - from);
      }
      ::madvise(base + w, end - w, MADV_DONTNEED);
    }
    ::munmap(map, hi - lo);
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < kCopyThreads; ++t) threads.emplace_back(copy_share, t);
  copy_share(0);
  for (std::thread& t : threads) t.join();
  if (failed_errno != 0) return Status::FromErrno(failed_errno, "mmap " + what);
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
  // The chunk to hash next: the thread whose chunk it is owns `hasher` until
  // it moves `turn` on. kFailed stops both threads. An atomic wait rather
  // than std::condition_variable, whose wait() needs GCC 12's libstdc++
  // (GLIBCXX_3.4.30), which would raise the wheel to manylinux_2_35.
  constexpr size_t kFailed = SIZE_MAX;
  std::atomic<size_t> turn{0};
  std::mutex error_mu;
  Status error;
  auto run = [&](size_t first) {
    for (size_t i = first; i < chunks; i += kReadThreads) {
      auto [at, n] = chunk(i);
      PopulateWrite(out + at, n);
      Status s = ReadExactly(fd, out + at, n, offset + at, path);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.ok()) error = std::move(s);
        turn.store(kFailed);
        turn.notify_all();
        return;
      }
      for (size_t t = turn.load(); t != i; t = turn.load()) {
        if (t == kFailed) return;
        turn.wait(t);
      }
      hasher.Update(out + at, n);
      size_t expected = i;  // not if the other thread failed meanwhile
      turn.compare_exchange_strong(expected, i + 1);
      turn.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < kReadThreads; ++t) threads.emplace_back(run, t);
  run(0);
  for (std::thread& t : threads) t.join();
  return error;
}

void PopulateRead(void* addr, size_t size) {
  if (kMadvPopulateRead >= 0) ::madvise(addr, size, kMadvPopulateRead);
}

}  // namespace cairn
