#include "store/gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "store/artifact_store.h"
#include "util/fs.h"
#include "util/time.h"

namespace cairn {
namespace {

constexpr std::string_view kBlobTempMarker = ".tmp-";
constexpr std::string_view kPayloadPrefix = "cairn-payload-";
constexpr std::string_view kBadSuffix = ".bad";

// Alive, or at least not known dead: EPERM means it exists, as someone else.
bool ProcessAlive(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// The pid written right after `marker` in a temp file's name and ended by
// '-', or 0 if the name has none (a file of an older cairn).
int64_t PidAfter(std::string_view name, std::string_view marker) {
  size_t at = name.find(marker);
  if (at == std::string_view::npos) return 0;
  int64_t pid = 0;
  size_t i = at + marker.size();
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    pid = pid * 10 + (name[i] - '0');
    if (pid > (int64_t{1} << 40)) return 0;
  }
  return i < name.size() && name[i] == '-' ? pid : 0;
}

double MtimeOf(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec * 1e-9;
}

struct FileEntry {
  std::string name;
  std::string path;
  uint64_t size = 0;
  double mtime = 0;
};

// The regular files directly in `dir`; none if it does not exist.
Result<std::vector<FileEntry>> ListFiles(const std::string& dir) {
  std::vector<FileEntry> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return out;
    return Status::FromErrno(errno, "open directory " + dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back(FileEntry{name, dir + "/" + name, static_cast<uint64_t>(st.st_size), MtimeOf(st)});
  }
  ::closedir(d);
  return out;
}

// The two-hex-digit folders of objects/.
std::vector<std::string> BlobFolders(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root + "/objects", ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == 2 && std::isxdigit(static_cast<unsigned char>(name[0])) &&
        std::isxdigit(static_cast<unsigned char>(name[1])) && e.is_directory(ec)) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

double Now(const GcOptions& options) { return options.now > 0 ? options.now : WallSeconds(); }

// Removes `f` if the writer named after `marker` is gone or it is too old.
void SweepIfStale(const FileEntry& f, std::string_view marker, const GcOptions& options, double now,
                  Reclaimed* out) {
  int64_t pid = PidAfter(f.name, marker);
  bool stale = (pid > 0 && !ProcessAlive(pid)) || f.mtime < now - options.temp_max_age_s;
  if (!stale) return;
  if (options.dry_run || ::unlink(f.path.c_str()) == 0 || errno == ENOENT) out->Add(f.size);
}

// Removes an unreferenced blob unless a Put reused it meanwhile: it is
// renamed out of the way first, and its mtime checked again once no Put can
// find it any more (a Put that finds it gone writes it anew).
bool RemoveBlob(const ArtifactStore& store, const FileEntry& f, double horizon) {
  std::string trash = UniqueTempPath(store.TempDir() + "/gc-" + f.name);
  if (::rename(f.path.c_str(), trash.c_str()) != 0) return false;
  struct stat st;
  if (::stat(trash.c_str(), &st) == 0 && MtimeOf(st) >= horizon) {
    ::rename(trash.c_str(), f.path.c_str());  // reused just now: keep it
    return false;
  }
  ::unlink(trash.c_str());
  ::unlink((f.path + std::string(kBadSuffix)).c_str());
  return true;
}

// The live card files (root/live/<run_id>/) of every run not in `live`: a
// task that died leaves its own behind (docs/datastore.md, "Cards").
Status SweepLiveCards(const std::string& root, const std::unordered_set<int64_t>& live,
                      const GcOptions& options, Reclaimed* out) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root + "/live", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.size() > 18 ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (live.count(std::stoll(name))) continue;
    CAIRN_ASSIGN_OR_RETURN(std::vector<FileEntry> files, ListFiles(e.path().string()));
    for (const FileEntry& f : files) {
      if (options.dry_run || ::unlink(f.path.c_str()) == 0 || errno == ENOENT) out->Add(f.size);
    }
    if (!options.dry_run) ::rmdir(e.path().c_str());  // fails harmlessly if not empty
  }
  return Status::OK();
}

}  // namespace

Result<Reclaimed> SweepTempFiles(const std::string& root, const GcOptions& options, bool deep) {
  double now = Now(options);
  Reclaimed out;
  ArtifactStore store(root);
  CAIRN_ASSIGN_OR_RETURN(std::vector<FileEntry> blob_temps, ListFiles(store.TempDir()));
  for (const FileEntry& f : blob_temps) SweepIfStale(f, kBlobTempMarker, options, now, &out);
  CAIRN_ASSIGN_OR_RETURN(std::vector<FileEntry> payloads, ListFiles(root + "/tmp"));
  for (const FileEntry& f : payloads) {
    if (f.name.starts_with(kPayloadPrefix)) SweepIfStale(f, kPayloadPrefix, options, now, &out);
  }
  if (!deep) return out;
  for (const std::string& folder : BlobFolders(root)) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<FileEntry> files, ListFiles(root + "/objects/" + folder));
    for (const FileEntry& f : files) {
      if (f.name.starts_with('.') && f.name.find(kBlobTempMarker) != std::string::npos) {
        SweepIfStale(f, kBlobTempMarker, options, now, &out);
      }
    }
  }
  return out;
}

Result<GcReport> CollectGarbage(Datastore& ds, const GcOptions& options) {
  double now = Now(options);
  GcReport report;
  CAIRN_ASSIGN_OR_RETURN(report.temp, SweepTempFiles(ds.root(), options, options.blobs));
  report.horizon = now - options.grace_s;
  CAIRN_ASSIGN_OR_RETURN(std::vector<RunningRun> running, ds.RunningRuns());
  std::unordered_set<int64_t> live;
  for (const RunningRun& r : running) {
    if (!ProcessAlive(r.engine_pid)) continue;
    live.insert(r.run_id);
    report.horizon = std::min(report.horizon, r.created_at);
  }
  report.live_runs = static_cast<int64_t>(live.size());
  CAIRN_RETURN_IF_ERROR(SweepLiveCards(ds.root(), live, options, &report.temp));
  if (!options.blobs) return report;

  // References are read after the listing's horizon is fixed: a blob written
  // later is younger than the horizon, so it is kept whatever the references say.
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> digests, ds.ArtifactDigests());
  std::unordered_set<std::string> referenced(digests.begin(), digests.end());
  ArtifactStore store(ds.root());
  for (const std::string& folder : BlobFolders(ds.root())) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<FileEntry> files, ListFiles(ds.root() + "/objects/" + folder));
    for (const FileEntry& f : files) {
      if (f.name.starts_with('.')) continue;  // temp files: swept above
      std::string digest = folder + f.name;
      if (f.name.ends_with(kBadSuffix)) {
        // A marker whose blob is gone marks nothing.
        std::string blob = f.path.substr(0, f.path.size() - kBadSuffix.size());
        if (!options.dry_run && !Exists(blob)) ::unlink(f.path.c_str());
        continue;
      }
      if (!IsDigest(digest)) continue;
      report.scanned.Add(f.size);
      if (referenced.count(digest)) continue;
      if (f.mtime >= report.horizon) {
        report.kept.Add(f.size);
      } else if (options.dry_run || RemoveBlob(store, f, report.horizon)) {
        report.blobs.Add(f.size);
      } else {
        report.kept.Add(f.size);
      }
    }
  }
  CAIRN_ASSIGN_OR_RETURN(SmallBlobUsage small, ds.SmallBlobs(!options.dry_run));
  report.small_blobs.files = small.unreferenced;
  report.small_blobs.bytes = small.unreferenced_bytes;
  return report;
}

Result<Usage> MeasureUsage(Datastore& ds, const GcOptions& options) {
  GcOptions dry = options;
  dry.blobs = true;
  dry.dry_run = true;
  Usage usage;
  CAIRN_ASSIGN_OR_RETURN(usage.reclaimable, CollectGarbage(ds, dry));
  usage.live_runs = usage.reclaimable.live_runs;
  CAIRN_ASSIGN_OR_RETURN(usage.runs, ds.RunCount());
  CAIRN_ASSIGN_OR_RETURN(usage.small_blobs, ds.SmallBlobs(false));
  std::error_code ec;
  for (const char* name : {"/cairn.db", "/cairn.db-wal"}) {
    uintmax_t size = std::filesystem::file_size(ds.root() + name, ec);
    if (!ec) usage.database_bytes += size;
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(ds.root() + "/logs", ec)) {
    std::error_code size_ec;
    if (e.is_regular_file(size_ec)) usage.log_bytes += e.file_size(size_ec);
  }
  return usage;
}

}  // namespace cairn
