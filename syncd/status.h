// What an operator sees of a running syncd: per sync its state, how much is pending, how far
// the peer is behind, and what was sent and refused. Written every statusInterval (idle or not)
// as lsyncd's plain-text status file, as JSON beside it, and as Prometheus text format for
// node_exporter's textfile collector. Pure formatting here; the daemon writes the files.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncd {

struct SyncStatus {
  std::string name;
  std::string source;
  std::string target;  // "host:dir" or the local directory.
  std::vector<std::string> filter_rules;  // Canonical rsync filter rules.
  // connecting, adopting, reconciling, in sync, sending, failing, retrying, stopped, diverged
  std::string state;
  uint64_t pending = 0;       // Changed paths not yet durable on the peer.
  double lag_seconds = 0;     // Age of the oldest change not yet durable on the peer.
  std::optional<std::chrono::system_clock::time_point> last_success;  // Last durable batch.
  uint64_t operations = 0;    // Operations the peer has made durable.
  uint64_t bytes = 0;         // File content in those operations.
  uint64_t failures = 0;      // Operations the peer refused (each is retried).
  uint64_t failing = 0;       // Paths failing now (retried with a backoff until they go over).
  std::vector<std::string> failing_paths;  // Some of them (10 at most), for the operator.
  uint64_t reconnects = 0;    // Connections lost and made again.
  uint64_t watches = 0;       // Directories watched.
  // While the comparison at startup (or after a reconnect) is being sent: what it found to
  // send and how much of that the peer has made durable.
  struct Progress {
    uint64_t ops_done = 0, ops_total = 0;
    uint64_t bytes_done = 0, bytes_total = 0;
    double seconds = 0;  // Since the comparison.
  };
  std::optional<Progress> progress;
};

// "1200/20000 files, 120 MiB/400 MiB, 85 MiB/s, 4 s left" for the syncs that are reconciling;
// empty when none is. `percent` gets the share of bytes (or operations) done.
std::string ProgressLine(const std::vector<SyncStatus>& syncs, int* percent);

std::string StatusText(const std::vector<SyncStatus>& syncs, std::chrono::system_clock::time_point now);
std::string StatusJson(const std::vector<SyncStatus>& syncs, std::chrono::system_clock::time_point now);
std::string StatusPrometheus(const std::vector<SyncStatus>& syncs);

// Writes `content` to a temporary file beside `path` and renames it into place, so a reader
// sees the old file or the new one, never half of one.
bool WriteFileAtomically(const std::string& path, const std::string& content, std::string* error);

}  // namespace syncd
