// ArtifactStore's reads: Get maps a raw blob or decompresses a zstd one,
// GetInto copies a one-segment blob into the caller's memory; both verify
// the digest and mark a damaged blob bad. Writes are in artifact_store.cc.
#include "store/artifact_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "store/artifact_store_format.h"
#include "store/blob_io.h"
#include "util/check.h"
#include "util/digest.h"
#include "util/fs.h"

namespace cairn {
namespace {

// A blob's memory: a mapping of its file (raw) or of anonymous memory
// holding the decompressed segments (zstd). Unmapped on destruction.
class MappedBlob : public Blob {
 public:
  MappedBlob(void* base, size_t length) : base_(base), length_(length) {}
  ~MappedBlob() override {
    if (length_ > 0) munmap(base_, length_);
  }
  MappedBlob(const MappedBlob&) = delete;
  MappedBlob& operator=(const MappedBlob&) = delete;

  size_t segment_count() const override { return segments_.size(); }
  std::span<uint8_t> segment(size_t i) override {
    CAIRN_CHECK(i < segments_.size());
    return segments_[i];
  }

  uint8_t* base() { return static_cast<uint8_t*>(base_); }
  void AddSegment(size_t offset, size_t size) { segments_.emplace_back(base() + offset, size); }
  std::string Digest() const {
    std::vector<ByteView> views;
    views.reserve(segments_.size());
    for (const auto& s : segments_) views.push_back(ByteView{s.data(), s.size()});
    return DigestOf(views);
  }

 private:
  void* base_;
  size_t length_;
  std::vector<std::span<uint8_t>> segments_;
};

// Decompresses the zstd body into a fresh anonymous mapping laid out like a
// raw body. Undecodable input is kCorruption.
Result<std::unique_ptr<MappedBlob>> Decompress(const uint8_t* body, size_t body_size,
                                               const std::vector<uint64_t>& lengths,
                                               uint64_t size) {
  unsigned long long frame_size = ZSTD_getFrameContentSize(body, body_size);
  if (frame_size != size) return Status::Corruption("zstd frame size does not match header");
  Layout layout = LayOut(lengths);
  void* base = nullptr;
  if (layout.end > 0) {
    base = mmap(nullptr, layout.end, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return Status::FromErrno(errno, "allocating the decompressed blob");
    // Huge pages make filling a big buffer several times faster (one fault
    // per 2 MiB instead of per 4 KiB); only a hint, so failure is fine.
    if (layout.end >= kHugePageSize) madvise(base, layout.end, MADV_HUGEPAGE);
  }
  auto blob = std::make_unique<MappedBlob>(base, layout.end);
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return Status::IOError("zstd: out of memory");
  ZSTD_inBuffer in{body, body_size, 0};
  size_t hint = 1;  // nonzero until the frame is complete
  for (size_t i = 0; i <= lengths.size(); ++i) {
    bool epilogue = i == lengths.size();
    size_t want = epilogue ? 0 : lengths[i];
    if (!epilogue) blob->AddSegment(layout.offsets[i], want);
    ZSTD_outBuffer out{epilogue ? nullptr : blob->base() + layout.offsets[i], want, 0};
    while (out.pos < want || (epilogue && hint != 0)) {
      size_t in_before = in.pos, out_before = out.pos;
      hint = ZSTD_decompressStream(dctx.get(), &out, &in);
      if (ZSTD_isError(hint)) return Status::Corruption(ZSTD_getErrorName(hint));
      if (in.pos == in_before && out.pos == out_before) {
        return Status::Corruption("zstd body ends early");
      }
    }
  }
  if (in.pos != in.size) return Status::Corruption("data after the zstd frame");
  return blob;
}

// What a blob file's header says, checked against the file's size.
struct BlobHeader {
  uint32_t codec = kRaw;
  std::vector<uint64_t> lengths;
  uint64_t size = 0;         // logical bytes
  size_t body_offset = 0;
  uint64_t file_size = 0;
};

// A damaged blob: marked bad (best effort: a reader may not be allowed to
// write), so that the next Put of its value rewrites it even where Put
// trusts a big blob's header and size, then reported.
Status Corrupt(const std::string& digest, const std::string& path, std::string_view why) {
  int marker = ::open((path + kBadSuffix).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (marker >= 0) ::close(marker);
  return Status::Corruption("blob " + digest + " (" + path + "): " + std::string(why));
}

// A blob file opened for reading, its header read and checked.
struct OpenedBlob {
  std::string path;
  std::unique_ptr<ScopedFd> file;
  BlobHeader h;
};

// Opens the blob `digest` at `path` and reads its header. kNotFound if
// absent; kCorruption if the header cannot be right.
Result<OpenedBlob> OpenBlob(const std::string& digest, std::string path) {
  if (!IsDigest(digest)) return Status::InvalidArgument("not a blob digest: \"" + digest + "\"");
  auto corrupt = [&](std::string_view why) { return Corrupt(digest, path, why); };
  auto file = std::make_unique<ScopedFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  int fd = file->get();
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("blob " + digest + " not found (" + path + ")");
    return Status::FromErrno(errno, "open " + path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
  BlobHeader h;
  h.file_size = static_cast<uint64_t>(st.st_size);

  uint8_t fixed[kFixedHeaderSize];
  if (h.file_size < kFixedHeaderSize) return corrupt("shorter than a header");
  CAIRN_RETURN_IF_ERROR(ReadExactly(fd, fixed, sizeof(fixed), 0, path));
  if (std::memcmp(fixed, kMagic, sizeof(kMagic)) != 0) return corrupt("not a cairn blob");
  uint32_t version = GetU32(&fixed[8]);
  if (version != kFormatVersion) {
    return corrupt("blob format version " + std::to_string(version) + ", this cairn reads " +
                   std::to_string(kFormatVersion));
  }
  h.codec = GetU32(&fixed[12]);
  uint64_t count = GetU64(&fixed[16]);
  h.size = GetU64(&fixed[24]);
  if (h.codec != kRaw && h.codec != kZstd) return corrupt("unknown codec " + std::to_string(h.codec));
  if (count > (h.file_size - kFixedHeaderSize) / 8) return corrupt("truncated header");
  h.lengths.resize(count);
  std::vector<uint8_t> raw_lengths(8 * count);
  CAIRN_RETURN_IF_ERROR(ReadExactly(fd, raw_lengths.data(), raw_lengths.size(), kFixedHeaderSize, path));
  uint64_t sum = 0;
  for (uint64_t i = 0; i < count; ++i) {
    h.lengths[i] = GetU64(&raw_lengths[8 * i]);
    sum += h.lengths[i];
    if (sum < h.lengths[i] || sum > (uint64_t{1} << 48)) return corrupt("impossible segment sizes");
  }
  if (sum != h.size) return corrupt("segment lengths do not add up to the size");
  h.body_offset = AlignUp(kFixedHeaderSize + 8 * count);
  if (h.body_offset > h.file_size) return corrupt("truncated");
  if (h.codec == kRaw && h.body_offset + LayOut(h.lengths).end != h.file_size) {
    return corrupt("truncated or overlong");
  }
  if (h.codec == kZstd && h.body_offset == h.file_size) return corrupt("truncated");
  return OpenedBlob{std::move(path), std::move(file), std::move(h)};
}

// Decompresses the one zstd frame of `body` into out[0, size).
Status DecompressInto(const uint8_t* body, size_t body_size, uint8_t* out, uint64_t size) {
  unsigned long long frame_size = ZSTD_getFrameContentSize(body, body_size);
  if (frame_size != size) return Status::Corruption("zstd frame size does not match header");
  size_t got = ZSTD_decompress(out, size, body, body_size);
  if (ZSTD_isError(got)) return Status::Corruption(ZSTD_getErrorName(got));
  if (got != size) return Status::Corruption("zstd body ends early");
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<Blob>> ArtifactStore::Get(const std::string& digest) const {
  CAIRN_ASSIGN_OR_RETURN(OpenedBlob b, OpenBlob(digest, PathOf(digest)));
  const BlobHeader& h = b.h;
  const std::string& path = b.path;
  const ScopedFd& fd = *b.file;

  std::unique_ptr<MappedBlob> blob;
  if (h.codec == kRaw) {
    Layout layout = LayOut(h.lengths);
    // Private and writable: callers may scribble on the segments (numpy
    // arrays built on them are writable) and only their copy of a page
    // changes, never the file. MAP_POPULATE would copy every page of a
    // writable private mapping; MADV_POPULATE_READ maps the page cache's
    // pages read-only instead, in one call, ahead of the digest check that
    // reads them all: as fast as the faults for 4 KiB folios, and a huge
    // folio (what readahead leaves of a file read back from disk) is mapped
    // with one entry: 1 GiB in under 1 ms against 0.13 s. Only a hint.
    void* base = mmap(nullptr, h.file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
    if (base == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
    PopulateRead(base, h.file_size);
    blob = std::make_unique<MappedBlob>(base, h.file_size);
    for (size_t i = 0; i < h.lengths.size(); ++i) {
      blob->AddSegment(h.body_offset + layout.offsets[i], h.lengths[i]);
    }
  } else {
    void* map = mmap(nullptr, h.file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
    Result<std::unique_ptr<MappedBlob>> decoded =
        Decompress(static_cast<const uint8_t*>(map) + h.body_offset, h.file_size - h.body_offset,
                   h.lengths, h.size);
    munmap(map, h.file_size);
    if (!decoded.ok()) {
      if (decoded.status().code() == Status::Code::kCorruption) {
        return Corrupt(digest, path, decoded.status().message());
      }
      return decoded.status();
    }
    blob = std::move(decoded).value();
  }
  if (blob->Digest() != digest) return Corrupt(digest, path, "content does not match its digest");
  return std::unique_ptr<Blob>(std::move(blob));
}

Status ArtifactStore::GetInto(const std::string& digest,
                              const std::function<uint8_t*(uint64_t size)>& allocate) const {
  CAIRN_ASSIGN_OR_RETURN(OpenedBlob b, OpenBlob(digest, PathOf(digest)));
  const BlobHeader& h = b.h;
  const std::string& path = b.path;
  const ScopedFd& fd = *b.file;
  if (h.lengths.size() != 1) {
    return Status::InvalidArgument("blob " + digest + " has " + std::to_string(h.lengths.size()) +
                                   " segments, not one");
  }
  uint8_t* out = allocate(h.size);
  if (out == nullptr) {
    return Status::IOError("out of memory reading blob " + digest + " (" + std::to_string(h.size) +
                           " bytes)");
  }
  Hasher hasher;  // DigestOf of one segment, fed as it is read
  hasher.UpdateU64(1);
  hasher.UpdateU64(h.size);
  if (h.codec == kRaw) {
    CAIRN_RETURN_IF_ERROR(ReadHashed(fd.get(), h.body_offset, out, h.size, path, hasher));
  } else {
    void* map = mmap(nullptr, h.file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (map == MAP_FAILED) return Status::FromErrno(errno, "mmap " + path);
    Status s = DecompressInto(static_cast<const uint8_t*>(map) + h.body_offset,
                              h.file_size - h.body_offset, out, h.size);
    munmap(map, h.file_size);
    if (!s.ok()) return s.code() == Status::Code::kCorruption ? Corrupt(digest, path, s.message()) : s;
    hasher.Update(out, h.size);
  }
  if (hasher.HexDigest() != digest) return Corrupt(digest, path, "content does not match its digest");
  return Status::OK();
}

}  // namespace cairn
