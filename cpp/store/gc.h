// Store maintenance: sweeping the temp files that dead writers left behind,
// and collecting the blobs no run refers to (`cairn gc`, `cairn du`). The
// safety rules are in docs/datastore.md ("Garbage collection").
#pragma once

#include <cstdint>
#include <string>

#include "store/datastore.h"
#include "util/result.h"

namespace cairn {

// Files (or rows) and their bytes.
struct Reclaimed {
  int64_t files = 0;
  uint64_t bytes = 0;
  void Add(uint64_t size) {
    ++files;
    bytes += size;
  }
};

struct GcOptions {
  bool blobs = false;            // also unreferenced blobs, not only temp files
  bool dry_run = false;          // count, remove nothing
  double grace_s = 3600;         // a blob younger than this is never removed
  double temp_max_age_s = 86400; // a temp file this old goes even if its pid is alive
  double now = 0;                // wall-clock seconds; 0: now
};

// Removes stale temp files: blobs being written (root/objects/tmp/, and the
// `.<name>.tmp-<pid>-…` files of older versions next to the blobs when
// `deep`) and the payload files older versions left (root/tmp/cairn-payload-…). A temp file
// is stale when the process named in it is gone, or when it is older than
// temp_max_age_s (a pid can be reused). Cheap without `deep`: two small
// directories. Missing directories are fine.
Result<Reclaimed> SweepTempFiles(const std::string& root, const GcOptions& options, bool deep = false);

struct GcReport {
  Reclaimed temp;            // stale temp files, and live cards of runs not running
  Reclaimed blobs;           // unreferenced blob files
  Reclaimed small_blobs;     // unreferenced rows of the blobs table
  Reclaimed kept;            // unreferenced, but too young (grace, a live run)
  Reclaimed scanned;         // every blob file seen (with options.blobs)
  double horizon = 0;        // blobs modified before this could go
  int64_t live_runs = 0;     // runs whose engine is alive
};

// Sweeps temp files and the live card files of runs whose engine is gone
// (root/live/<run_id>/) and, with options.blobs, removes unreferenced blobs
// modified before the horizon: min(now - grace_s, start of the oldest run
// whose engine is alive). Put refreshes a reused blob's mtime, so a blob a
// running task just reused is young again. With dry_run, only counts.
Result<GcReport> CollectGarbage(Datastore& store, const GcOptions& options);

struct Usage {
  int64_t runs = 0;
  int64_t live_runs = 0;
  SmallBlobUsage small_blobs;
  uint64_t database_bytes = 0;   // cairn.db with its WAL
  uint64_t log_bytes = 0;
  GcReport reclaimable;      // what `gc --blobs` would remove now
};

// What the datastore holds (`cairn du`). Reads only.
Result<Usage> MeasureUsage(Datastore& store, const GcOptions& options);

}  // namespace cairn
