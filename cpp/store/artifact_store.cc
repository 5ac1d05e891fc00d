// ArtifactStore's writes: planning and writing a blob (raw, mapped or
// zstd), and checking an existing blob before Put reuses it. Reads are in
// artifact_store_read.cc; the file format in artifact_store_format.h.
#include "store/artifact_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "store/artifact_store_format.h"
#include "store/blob_io.h"
#include "util/digest.h"
#include "util/fs.h"

namespace cairn {
namespace {

// Compression policy; the figures behind it are in docs/datastore.md.
constexpr size_t kMinCompressSize = 4096;   // smaller: not worth a codec
constexpr size_t kSampleSize = 64 * 1024;
constexpr int kSamples = 8;
constexpr double kMinSavings = 0.10;        // compress only if samples shrink by more
constexpr int kZstdLevel = 1;
constexpr size_t kMultithreadSize = 32u << 20;
constexpr int kZstdWorkers = 2;
constexpr int kZstdJobSize = 1 << 20;  // zstd's default (8 MiB at level 1) gained nothing
constexpr size_t kWriteBufferSize = 1u << 20;
// Raw blobs at least this big are written by CopyIntoFile (store/blob_io.h).
constexpr size_t kMappedWriteSize = 32u << 20;
// Put re-verifies an existing blob in full before trusting it when that is
// cheap next to the hash Put already computed: raw blobs up to kVerifyRawMax
// (read and compared with the value), zstd blobs up to kVerifyZstdMax (Get:
// decompressed at ~1 GB/s, then hashed). Bigger ones get the cheap header and size
// check, plus the bad marker a failed Get leaves (docs/datastore.md).
constexpr uint64_t kVerifyRawMax = 64u << 20;
constexpr uint64_t kVerifyZstdMax = 16u << 20;

std::vector<uint8_t> EncodeHeader(Codec codec, std::span<const ByteView> segments, uint64_t size) {
  std::vector<uint8_t> header(AlignUp(kFixedHeaderSize + 8 * segments.size()), 0);
  std::memcpy(header.data(), kMagic, sizeof(kMagic));
  PutU32(&header[8], kFormatVersion);
  PutU32(&header[12], codec);
  PutU64(&header[16], segments.size());
  PutU64(&header[24], size);
  for (size_t i = 0; i < segments.size(); ++i) PutU64(&header[32 + 8 * i], segments[i].size);
  return header;
}

// Samples spread evenly over the logical bytes compress by more than
// kMinSavings. Cheap (at most kSamples * kSampleSize bytes are compressed)
// and, for inputs no bigger than the samples, exact.
bool LooksCompressible(std::span<const ByteView> segments, uint64_t size) {
  if (size < kMinCompressSize) return false;
  std::string sample;
  uint64_t take = std::min<uint64_t>(size, kSampleSize * kSamples);
  uint64_t window = std::min<uint64_t>(size, kSampleSize);
  int count = static_cast<int>(take / window);
  sample.reserve(take);
  for (int k = 0; k < count; ++k) {
    // Copy the window starting at logical offset `pos`, across segments.
    uint64_t pos = count == 1 ? 0 : (size - window) * k / (count - 1);
    uint64_t left = window;
    for (const ByteView& s : segments) {
      if (left == 0) break;
      if (pos >= s.size) {
        pos -= s.size;
        continue;
      }
      uint64_t n = std::min<uint64_t>(left, s.size - pos);
      sample.append(static_cast<const char*>(s.data) + pos, n);
      left -= n;
      pos = 0;
    }
  }
  std::string out(ZSTD_compressBound(sample.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), sample.data(), sample.size(), kZstdLevel);
  return !ZSTD_isError(n) && n < sample.size() * (1 - kMinSavings);
}

Status WriteRaw(int fd, const std::string& what, const std::vector<uint8_t>& header,
                std::span<const ByteView> segments) {
  static const uint8_t kZeros[kAlign] = {};
  std::vector<iovec> iov;
  iov.reserve(1 + 2 * segments.size());
  iov.push_back({const_cast<uint8_t*>(header.data()), header.size()});
  size_t body = 0;
  for (const ByteView& s : segments) {
    if (size_t pad = AlignUp(body) - body) {
      iov.push_back({const_cast<uint8_t*>(kZeros), pad});
      body += pad;
    }
    // The caller's memory goes to the kernel as is: no copy, no concatenation.
    iov.push_back({const_cast<void*>(s.data), s.size});
    body += s.size;
  }
  return WriteAllV(fd, iov, what);
}

// A big raw blob copied into a preallocated file by CopyIntoFile, so that
// no page fault can find the disk full. Returns false, having written
// nothing, where the file system cannot preallocate.
Result<bool> TryWriteRawMapped(int fd, const std::string& what, const std::vector<uint8_t>& header,
                               std::span<const ByteView> segments, const Layout& layout) {
  size_t file_size = header.size() + layout.end;
  if (::fallocate(fd, 0, 0, static_cast<off_t>(file_size)) != 0) {
    if (errno == EOPNOTSUPP) return false;
    return Status::FromErrno(errno, "allocate " + what);
  }
  // Padding needs no copy: preallocated bytes read as zeros.
  std::vector<FilePiece> pieces{{0, header.data(), header.size()}};
  for (size_t i = 0; i < segments.size(); ++i) {
    pieces.push_back({header.size() + layout.offsets[i], static_cast<const uint8_t*>(segments[i].data),
                      segments[i].size});
  }
  CAIRN_RETURN_IF_ERROR(CopyIntoFile(fd, pieces, file_size, what));
  return true;
}

Status WriteZstd(int fd, const std::string& what, const std::vector<uint8_t>& header,
                 std::span<const ByteView> segments, uint64_t size) {
  CAIRN_RETURN_IF_ERROR(WriteAll(fd, header.data(), header.size(), what));
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) return Status::IOError("zstd: out of memory compressing " + what);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
  // The digest already covers the content; a second checksum buys nothing.
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0);
  if (size >= kMultithreadSize) {
    // Fails harmlessly (and stays single-threaded) on a libzstd without threads.
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_nbWorkers, kZstdWorkers);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_jobSize, kZstdJobSize);
  }
  // Records the size in the frame header, so a reader can check it before
  // allocating.
  ZSTD_CCtx_setPledgedSrcSize(cctx.get(), size);
  std::vector<uint8_t> out(kWriteBufferSize);
  for (size_t i = 0; i <= segments.size(); ++i) {
    bool last = i == segments.size();
    ZSTD_inBuffer in{last ? nullptr : segments[i].data, last ? 0 : segments[i].size, 0};
    ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
      ZSTD_outBuffer o{out.data(), out.size(), 0};
      size_t remaining = ZSTD_compressStream2(cctx.get(), &o, &in, mode);
      if (ZSTD_isError(remaining)) {
        return Status::IOError("zstd compressing " + what + ": " + ZSTD_getErrorName(remaining));
      }
      CAIRN_RETURN_IF_ERROR(WriteAll(fd, out.data(), o.pos, what));
      if (last ? remaining == 0 : in.pos == in.size) break;
    }
  }
  return Status::OK();
}


// Whether the file at `path` has the header of the value about to be stored
// and the size that implies: a cheap check that catches a blob cut short by
// a power loss (no fsync), so that storing the value again repairs it.
// `codec_out` receives the stored codec.
bool LooksIntact(const std::string& path, std::span<const ByteView> segments, uint64_t size,
                 uint32_t* codec_out) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) return false;
  std::vector<uint8_t> expected = EncodeHeader(kRaw, segments, size);
  std::vector<uint8_t> actual(expected.size());
  if (static_cast<uint64_t>(st.st_size) < actual.size() ||
      !ReadExactly(fd.get(), actual.data(), actual.size(), 0, path).ok()) {
    return false;
  }
  uint32_t codec = GetU32(&actual[12]);
  *codec_out = codec;
  PutU32(&actual[12], kRaw);  // either codec is fine
  if (actual != expected) return false;
  std::vector<uint64_t> lengths;
  for (const ByteView& s : segments) lengths.push_back(s.size);
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (codec == kRaw) return file_size == expected.size() + LayOut(lengths).end;
  if (codec != kZstd || file_size == expected.size()) return false;
  // The frame must end exactly at the end of the file. Finding its end walks
  // only the block headers (one every 128 KiB at most), not the data.
  void* map = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) return false;
  size_t body = file_size - expected.size();
  size_t frame = ZSTD_findFrameCompressedSize(static_cast<uint8_t*>(map) + expected.size(), body);
  munmap(map, file_size);
  return !ZSTD_isError(frame) && frame == body;
}

// Whether the raw blob at `path`, already found intact in header and size,
// holds exactly these segments: its body is read in chunks and compared
// with them. pread from the page cache is several times faster than mapping
// the file on a VM, where every page of a mapping costs a fault
// (docs/datastore.md, "Writing").
bool RawBodyMatches(const std::string& path, std::span<const ByteView> segments) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  std::vector<uint64_t> lengths;
  for (const ByteView& seg : segments) lengths.push_back(seg.size);
  Layout layout = LayOut(lengths);
  uint64_t body = AlignUp(kFixedHeaderSize + 8 * segments.size());
  std::vector<uint8_t> buffer(kWriteBufferSize);
  for (size_t i = 0; i < segments.size(); ++i) {
    const uint8_t* want = static_cast<const uint8_t*>(segments[i].data);
    for (uint64_t done = 0; done < lengths[i];) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), lengths[i] - done));
      if (!ReadExactly(fd.get(), buffer.data(), n, body + layout.offsets[i] + done, path).ok() ||
          std::memcmp(buffer.data(), want + done, n) != 0) {
        return false;
      }
      done += n;
    }
  }
  return true;
}

}  // namespace

RawBlobPlan PlanRawBlob(std::span<const ByteView> segments) {
  RawBlobPlan plan;
  uint64_t size = 0;
  std::vector<uint64_t> lengths;
  for (const ByteView& s : segments) {
    size += s.size;
    lengths.push_back(s.size);
  }
  plan.digest = DigestOf(segments);
  if (LooksCompressible(segments, size)) return plan;
  plan.raw = true;
  plan.header = EncodeHeader(kRaw, segments, size);
  Layout layout = LayOut(lengths);
  plan.offsets.assign(layout.offsets.begin(), layout.offsets.end());
  plan.file_size = plan.header.size() + layout.end;
  return plan;
}

ArtifactStore::ArtifactStore(std::string root) : root_(std::move(root)) {}

std::string ArtifactStore::PathOf(const std::string& digest) const {
  if (digest.size() < 3) return root_ + "/objects/" + digest;
  return root_ + "/objects/" + digest.substr(0, 2) + "/" + digest.substr(2);
}

bool ArtifactStore::Has(const std::string& digest) const {
  return IsDigest(digest) && Exists(PathOf(digest));
}

Result<PutResult> ArtifactStore::Put(std::span<const ByteView> segments) {
  PutResult result;
  for (const ByteView& s : segments) result.size += s.size;
  result.digest = DigestOf(segments);
  std::string path = PathOf(result.digest);
  // Reused only if its mtime can say so: `cairn gc` reads a fresh mtime as
  // "in use" (docs/datastore.md). Another user's blob may refuse the touch;
  // then it is written anew, which is always safe.
  if (Exists(path) && ExistingIsSound(path, result.digest, segments, result.size) &&
      ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0) {
    result.existed = true;
    return result;
  }
  // Absent or damaged: write it (again); the rename replaces a damaged one.
  CAIRN_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.find_last_of('/'))));
  CAIRN_RETURN_IF_ERROR(MakeDirs(TempDir()));

  Codec codec = LooksCompressible(segments, result.size) ? kZstd : kRaw;
  std::vector<uint8_t> header = EncodeHeader(codec, segments, result.size);
  std::string tmp = TempPathFor(result.digest);
  // Mode read-only: a blob never changes, and a raw blob's unmodified pages
  // are shared with the file by every reader's private mapping. Opened
  // read-write all the same (a shared mapping needs it; the mode applies to
  // later opens).
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status s;
  if (codec == kZstd) {
    s = WriteZstd(fd, tmp, header, segments, result.size);
  } else {
    Result<bool> mapped = false;
    if (result.size >= kMappedWriteSize) {
      std::vector<uint64_t> lengths;
      for (const ByteView& seg : segments) lengths.push_back(seg.size);
      mapped = TryWriteRawMapped(fd, tmp, header, segments, LayOut(lengths));
    }
    s = mapped.status();
    if (mapped.ok() && !*mapped) s = WriteRaw(fd, tmp, header, segments);
  }
  struct stat st;
  if (s.ok() && ::fstat(fd, &st) != 0) s = Status::FromErrno(errno, "stat " + tmp);
  // No fsync, deliberately (docs/datastore.md): a crash of the process
  // cannot lose the data, and a power loss costs only blobs that a rerun
  // recreates. close() can still report a deferred write error.
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, "close " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  ::unlink((path + kBadSuffix).c_str());  // repaired, if it was marked bad
  result.stored_size = static_cast<uint64_t>(st.st_size);
  return result;
}

bool ArtifactStore::ExistingIsSound(const std::string& path, const std::string& digest,
                                    std::span<const ByteView> segments, uint64_t size) const {
  uint32_t codec = kRaw;
  if (!LooksIntact(path, segments, size, &codec)) return false;
  if (codec == kRaw && size <= kVerifyRawMax) return RawBodyMatches(path, segments);
  if (codec == kZstd && size <= kVerifyZstdMax) return Get(digest).ok();
  return !Exists(path + kBadSuffix);
}

std::string ArtifactStore::TempDir() const { return root_ + "/objects/tmp"; }

std::string ArtifactStore::TempPathFor(const std::string& digest) const {
  // UniqueTempPath puts the writer's pid in the name: SweepTempFiles knows
  // a leftover from a dead writer by it.
  return UniqueTempPath(TempDir() + "/" + digest);
}

}  // namespace cairn
