// SyncPlanner decides what must change on the peer. State-based: a change notice only marks a
// path; when a batch is planned the planner looks at what the path is now (lstat) and compares
// it with what it knows the peer holds. It does no network I/O; the runner carries the batches.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>
#include <utility>
#include <string>
#include <vector>

#include "syncd/change.h"
#include "syncd/config.h"
#include "syncd/file_system.h"
#include "syncd/filter.h"
#include "syncd/peer_map.h"
#include "syncd/meta_mapping.h"

namespace syncd {

class SyncPlanner {
 public:
  // `fs` must outlive the planner.
  SyncPlanner(const SyncConfig& config, FileSystem& fs);

  // Startup, reconnect and rescan: scans the source and compares it with `peer` (what the peer
  // holds, as listed by it), which replaces the planner's knowledge of the peer. Deletes what the
  // source no longer has when `delete` allows it at startup, never what the filter excludes.
  // `scanned`: the source as scanned beforehand through ScanSource(), instead of a scan now.
  Result<ChangeBatch> PlanReconcile(Listing peer, std::optional<Result<Listing>> scanned = std::nullopt);
  Result<ChangeBatch> PlanReconcile(PeerMap peer, std::optional<Result<Listing>> scanned);
  // The scan a comparison makes, on up to `threads` threads, each through a file system of
  // its own from `make_base` (this thread's keeps no state the planner uses meanwhile), of
  // about `expect` entries if that is known.
  Result<Listing> ScanSource(const std::function<std::unique_ptr<FileSystem>()>& make_base,
                             size_t expect, unsigned threads) const;
  // Same comparison against the planner's current knowledge of the peer (after an overflow).
  Result<ChangeBatch> PlanRescan();

  // Plans the operations for what the batcher released: renames first, in order, then the
  // changed paths, sorted parents first. A directory the peer lacks goes with its subtree.
  ChangeBatch PlanChanges(const std::vector<Rename>& renames,
                          const std::vector<std::string>& paths);
  ChangeBatch PlanChanges(const std::vector<std::string>& paths) { return PlanChanges({}, paths); }

  // The directory's metadata on the peer changed in a way the planner did not plan (a file
  // renamed into it by another channel): it is compared as unknown next time.
  void PeerDirChanged(const std::string& dir) { peer_.ForgetDirTime(dir); }

  // True once after a rename failed on the peer for a reason that leaves its state unknown;
  // the caller then lists the peer again and reconciles.
  bool TakeNeedsRelist() { return std::exchange(needs_relist_, false); }

  // Records what the peer durably applied: every op of `batch` except the failed paths.
  // `sent_hashes` (may be empty) tells what content each PUT carried.
  void Committed(const ChangeBatch& batch, const std::vector<OpFailure>& failures,
                 const std::vector<std::pair<std::string, ContentHash>>& sent_hashes = {});

  // Asked before deleting on the peer a path that is gone from the source (not one replaced
  // by something of another type, nor one cleared for a rename): false leaves the peer's copy
  // alone, and the gate's owner marks the path again when it may go. Unset: all go.
  void SetRemovalGate(std::function<bool(const std::string& path)> gate) {
    removal_gate_ = std::move(gate);
  }

  // Directories the peer kept when asked to delete them, because the filter protects entries
  // inside (after Committed() for the same batch).
  void KeptOnPeer(const std::vector<std::string>& dirs);

  const Filter& filter() const { return filter_; }
  // What the peer holds, as far as acknowledged operations tell.
  const PeerMap& peer() const { return peer_; }
  // Packs what is known of the peer into its sorted array (after a comparison's copy).
  void CompactPeer() { peer_.Compact(); }
  const SyncConfig& config() const { return config_; }
  // New filter rules from a reloaded config; what the peer holds stays known.
  void SetFilterRules(const std::vector<std::string>& rules) {
    config_.filter_rules = rules;
    filter_ = FilterFor(config_);
  }
  // The sync's filter; its rules were checked when the configuration was read.
  static Filter FilterFor(const SyncConfig& config);
  // The sync's chmod, usermap, groupmap and numeric_ids, with the process's umask; checked
  // when the configuration was read.
  static MetaMapping MappingFor(const SyncConfig& config);

 private:
  struct Plan;
  Result<ChangeBatch> Reconcile(PeerMap peer, std::optional<Result<Listing>> scanned = std::nullopt);
  void PlanEntry(const Entry& local, Plan& plan);
  void EnsureAncestors(const std::string& path, Plan& plan);
  void AddDirMeta(const Entry& dir, Plan& plan);
  void PlanRename(const Rename& rename, Plan& plan, std::vector<std::string>& extra_paths);
  void PlanSubtree(const std::string& dir, Plan& plan);
  // Compares a directory that was renamed on the peer with what is beneath it here now.
  void PlanMovedSubtree(const std::string& dir, Plan& plan);
  // Moves what is known of the peer at and beneath `from` to `to`.
  void MoveKnowledge(const std::string& from, const std::string& to);
  void ForgetSubtree(const std::string& path);
  bool MetaDiffers(const Entry& local, const Entry& peer) const;
  bool ContentDiffers(const Entry& local, const Entry& peer) const;
  // rsync's transfer rules (--existing, --ignore-existing, --max-size, --min-size, -u,
  // --safe-links): the entry stays as the standby has it, and is not deleted there either.
  bool SkippedByTransferRules(const Entry& local, const std::optional<Entry>& peer) const;
  // Same size and the same content hash as what was sent: only the metadata moved.
  bool SameContentNewTime(const Entry& local, const Entry& peer);
  // Larger files are not read on the loop thread just to find a touch.
  static constexpr uint64_t kMaxHashCheckBytes = 16 << 20;
  std::optional<Entry> PeerEntry(const std::string& path) const { return peer_.Find(path); }
  // Plans the deletion of `path`, gone from the source, unless the removal gate holds it.
  void PlanRemoval(const std::string& path, FileType type, Plan& plan);

  // The source as the planner compares and sends it: metadata after the sync's mapping.
  class SourceView : public FileSystem {
   public:
    SourceView(FileSystem& base, MetaMapping mapping) : base_(base), mapping_(std::move(mapping)) {}
    Result<Entry> Stat(const std::string& root, const std::string& rel) override;
    Result<std::vector<std::string>> ReadDir(const std::string& dir) override {
      return base_.ReadDir(dir);
    }
    Result<ContentHash> Hash(const std::string& root, const std::string& rel) override {
      return base_.Hash(root, rel);
    }
    Result<std::vector<Result<Entry>>> ListDir(const std::string& root, const std::string& rel) override;

   private:
    FileSystem& base_;
    MetaMapping mapping_;
  };

  SyncConfig config_;
  SourceView fs_;
  Filter filter_;
  uint64_t next_batch_id_ = 1;
  bool needs_relist_ = false;
  bool reconciling_ = false;  // A startup comparison is being planned.
  // With `update`: files this run wrote to the peer. Their time there is the one syncd gave
  // them, not a newer change made on the standby, so -u does not hold their next change back.
  std::unordered_set<std::string> sent_here_;
  std::function<bool(const std::string&)> removal_gate_;
  // What the peer holds, as far as acknowledged operations tell. Ordered, so a deleted
  // directory's subtree is one range.
  PeerMap peer_;
  // Names of files with more than one link, by (device, inode): a write through one name
  // is a write to all of them, and inotify reports only the name written through.
  struct LinkGroup {
    std::set<std::string> names;
    bool complete = false;  // Every name in the tree is known (a scan found them).
  };
  std::map<std::pair<uint64_t, uint64_t>, LinkGroup> links_;
  // The names in the tree (not excluded) of the multiply-linked file `local`, in path order.
  // With `may_scan`, names not known yet are searched for once by a scan of the tree.
  std::vector<Entry> LinkNames(const Entry& local, bool may_scan);
  // Without hard_links: plans the other names of a multiply-linked file that changed.
  void PlanOtherNames(const Entry& local, Plan& plan);
  // With hard_links: the first name carries the content, the others are linked to it.
  void PlanLinked(const Entry& local, Plan& plan);
  void PlanLinkTo(const Entry& local, const std::string& first, Plan& plan);
  // What PlanEntry does for one path once its links are taken care of.
  void PlanPath(const Entry& local, Plan& plan);
};

}  // namespace syncd
