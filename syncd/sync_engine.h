// SyncEngine decides what must change on the peer. State-based: a change notice only marks a
// path; when a batch is planned the engine looks at what the path is now (lstat) and compares
// it with what it knows the peer holds. It does no network I/O; the runner carries the batches.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "syncd/change.h"
#include "syncd/config.h"
#include "syncd/file_system.h"
#include "syncd/filter.h"

namespace syncd {

class SyncEngine {
 public:
  // `fs` must outlive the engine.
  SyncEngine(const SyncConfig& config, FileSystem& fs);

  // Startup, reconnect and rescan: scans the source and compares it with `peer` (what the peer
  // holds, as listed by it), which replaces the engine's knowledge of the peer. Deletes what the
  // source no longer has when `delete` allows it at startup, never what the filter excludes.
  Result<ChangeBatch> PlanReconcile(const Listing& peer);
  // Same comparison against the engine's current knowledge of the peer (after an overflow).
  Result<ChangeBatch> PlanRescan();

  // Plans the operations for paths released by the batcher, sorted parents first.
  ChangeBatch PlanChanges(const std::vector<std::string>& paths);

  // Records what the peer durably applied: every op of `batch` except the failed paths.
  void Committed(const ChangeBatch& batch, const std::vector<OpFailure>& failures);

  const Filter& filter() const { return filter_; }
  const SyncConfig& config() const { return config_; }
  size_t peer_entries() const { return peer_.size(); }

 private:
  struct Plan;
  Result<ChangeBatch> Reconcile(std::map<std::string, Entry> peer);
  void PlanEntry(const Entry& local, Plan& plan);
  void EnsureAncestors(const std::string& path, Plan& plan);
  void AddDirMeta(const Entry& dir, Plan& plan);
  bool MetaDiffers(const Entry& local, const Entry& peer) const;
  bool ContentDiffers(const Entry& local, const Entry& peer) const;
  const Entry* PeerEntry(const std::string& path) const;

  SyncConfig config_;
  FileSystem& fs_;
  Filter filter_;
  uint64_t next_batch_id_ = 1;
  // What the peer holds, as far as acknowledged operations tell. Ordered, so a deleted
  // directory's subtree is one range.
  std::map<std::string, Entry> peer_;
};

}  // namespace syncd
