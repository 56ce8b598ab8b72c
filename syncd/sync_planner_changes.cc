// SyncPlanner, continued: the changes the watcher reports (renames, removals, new subtrees), and
// what the peer acknowledged of them.
#include <algorithm>
#include <optional>
#include <set>
#include <unordered_set>

#include "syncd/log.h"
#include "syncd/sync_planner.h"
#include "syncd/sync_planner_plan.h"

namespace syncd {

void SyncPlanner::ForgetSubtree(const std::string& path) { peer_.EraseSubtree(path); }

void SyncPlanner::MoveKnowledge(const std::string& from, const std::string& to) {
  ForgetSubtree(to);
  std::vector<Entry> moved = peer_.TakeSubtree(from);
  for (Entry& e : moved) {
    e.path = to + e.path.substr(from.size());
    peer_.Set(e);
  }
}

void SyncPlanner::PlanRename(const Rename& r, Plan& plan, std::vector<std::string>& extra_paths) {
  std::optional<Entry> origin = PeerEntry(r.from);
  bool is_dir = origin && origin->type == FileType::kDir;
  std::string to_parent = ParentOf(r.to);
  std::optional<Entry> parent = PeerEntry(to_parent);
  bool parent_ready = to_parent.empty() || (parent && parent->type == FileType::kDir);
  // The peer's copy must be what moved: a kept directory (it held protected entries) where
  // the source had a file is not.
  // (Gone already: it moved on, and a later rename or notice says where.)
  bool other_kind = false;
  // A transfer rule (--existing, --ignore-existing, -u, the size limits, --safe-links) that
  // would not send the destination as a new file must not get it by a rename either: rsync
  // would leave the new name as the standby has it and delete the old one.
  bool skipped = false;
  if (origin) {
    auto here = fs_.Stat(config_.source, r.to);
    other_kind = here && here->type != origin->type;
    skipped = here && SkippedByTransferRules(*here, PeerEntry(r.to));
    // Nor may the moved copy become one the rules then keep (with -u, a newer copy the
    // standby holds): rsync sends the new name, which it has never seen.
    if (here && !other_kind && SkippedByTransferRules(*here, origin)) skipped = true;
  }
  if (!origin || other_kind || skipped || r.from.empty() || r.to.empty() || IsWithin(r.to, r.from) ||
      filter_.Excluded(r.to, is_dir) || !parent_ready) {
    // Nothing to move on the peer, or nowhere to move it to: the state-based path sends the
    // destination and deletes the origin.
    extra_paths.push_back(r.from);
    extra_paths.push_back(r.to);
    return;
  }
  std::optional<Entry> existing = PeerEntry(r.to);
  if (existing && (existing->type == FileType::kDir || is_dir))
    plan.moves.push_back(MakeOp(OpKind::kDelete, PathEntry(r.to, existing->type)));
  Entry moved = *origin;
  moved.path = r.to;
  plan.moves.push_back(MakeOp(OpKind::kRename, moved, {}, r.from));
  MoveKnowledge(r.from, r.to);
  if (is_dir) plan.moved_dirs.push_back(r.to);
  plan.touched_dirs.insert(ParentOf(r.from));
  plan.touched_dirs.insert(to_parent);
}

void SyncPlanner::PlanRemoval(const std::string& path, FileType type, Plan& plan) {
  if (removal_gate_ && !removal_gate_(path)) return;
  plan.deletes.push_back(MakeOp(OpKind::kDelete, PathEntry(path, type)));
  plan.touched_dirs.insert(ParentOf(path));
}

void SyncPlanner::PlanSubtree(const std::string& dir, Plan& plan) {
  std::optional<uint64_t> root_dev;
  if (config_.rsync.one_file_system)
    if (auto root = fs_.Stat(config_.source, "")) root_dev = root->dev;
  std::vector<std::string> stack{dir};
  while (!stack.empty()) {
    std::string d = std::move(stack.back());
    stack.pop_back();
    if (root_dev) {  // rsync -x: a mount point goes over as an empty directory.
      auto here = fs_.Stat(config_.source, d);
      if (!here || here->dev != *root_dev) continue;
    }
    auto entries = fs_.ListDir(config_.source, d);
    if (!entries) continue;
    for (auto& e : *entries) {
      if (!e || filter_.Excluded(e->path, e->type == FileType::kDir)) continue;
      PlanEntry(*e, plan);
      if (e->type == FileType::kDir) stack.push_back(e->path);
    }
  }
}

void SyncPlanner::PlanMovedSubtree(const std::string& dir, Plan& plan) {
  // Notices about what lies beneath a renamed directory may have been handled under either
  // name, before or after the rename's own: a file found missing under the old name was
  // deleted there, one removed before the move is still on the peer. The state decides.
  auto local = fs_.Stat(config_.source, dir);
  if (!local || local->type != FileType::kDir) return;  // Moved on; its own notice follows.
  PlanSubtree(dir, plan);
  if (!config_.DeletesWhileRunning()) return;
  std::vector<std::pair<std::string, FileType>> beneath;
  peer_.ForEachBeneath(dir, [&](const std::string& path, FileType type) {
    if (!plan.planned.contains(path)) beneath.emplace_back(path, type);
  });
  for (const auto& [path, type] : beneath) {
    bool is_dir = type == FileType::kDir;
    if (filter_.Excluded(path, is_dir) || filter_.Protected(path, is_dir)) continue;
    if (fs_.Stat(config_.source, path)) continue;  // Skipped above, not gone.
    PlanRemoval(path, type, plan);
  }
}

ChangeBatch SyncPlanner::PlanChanges(const std::vector<Rename>& renames,
                                    const std::vector<std::string>& released) {
  Plan plan;
  std::vector<std::string> extra;
  for (const Rename& r : renames) PlanRename(r, plan, extra);
  for (const std::string& dir : plan.moved_dirs) PlanMovedSubtree(dir, plan);
  std::vector<std::string> paths = released;
  if (!extra.empty()) {
    paths.insert(paths.end(), extra.begin(), extra.end());
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  }
  // Whether the nearest ancestor of a path that exists here is something other than a
  // directory: then what was beneath it goes with the ancestor's own change (or stays, as
  // rsync leaves it, when a transfer rule skips that change).
  std::unordered_map<std::string, bool> non_dir;  // By ancestor: the answer from there up.
  std::function<bool(const std::string&)> from = [&](const std::string& p) -> bool {
    if (p.empty()) return false;
    if (auto it = non_dir.find(p); it != non_dir.end()) return it->second;
    auto e = fs_.Stat(config_.source, p);
    bool answer = e ? e->type != FileType::kDir : from(ParentOf(p));
    return non_dir[p] = answer;
  };
  auto under_non_dir = [&](const std::string& path) { return from(ParentOf(path)); };
  // New directories whose whole subtree this plan has read: a path beneath one was planned
  // with it, as it is now (a tree made faster than its notices arrive would otherwise be
  // read again for each of its directories: quadratic in its depth).
  std::unordered_set<std::string> read_subtrees;
  auto planned_with_subtree = [&](const std::string& path) {
    for (std::string at = ParentOf(path); !at.empty(); at = ParentOf(at))
      if (read_subtrees.contains(at)) return true;
    return false;
  };
  for (const std::string& path : paths) {
    if (!read_subtrees.empty() && planned_with_subtree(path)) continue;
    auto local = fs_.Stat(config_.source, path);
    if (!local) {
      std::optional<Entry> peer = PeerEntry(path);
      if (!peer || path.empty()) continue;  // Never reached the peer, or the root went away.
      if (!config_.DeletesWhileRunning()) continue;
      bool is_dir = peer->type == FileType::kDir;
      if (filter_.Excluded(path, is_dir) || filter_.Protected(path, is_dir)) continue;
      if (under_non_dir(path)) continue;
      PlanRemoval(path, peer->type, plan);
      continue;
    }
    if (filter_.Excluded(path, local->type == FileType::kDir)) continue;
    bool new_dir = local->type == FileType::kDir && !path.empty() && !PeerEntry(path);
    PlanEntry(*local, plan);
    if (new_dir) {  // Moved in, or never sent: everything beneath it.
      PlanSubtree(path, plan);
      read_subtrees.insert(path);
    }
  }
  // A directory whose entries changed has a new mtime on both nodes; carry the source's over.
  if (config_.KeepDirTimes()) {
    for (const std::string& dir : plan.touched_dirs) {
      if (!PeerEntry(dir) && !plan.created_dirs.contains(dir)) continue;
      auto local = fs_.Stat(config_.source, dir);
      if (local && local->type == FileType::kDir) AddDirMeta(*local, plan);
    }
  }
  return plan.Finish(next_batch_id_++);
}

void SyncPlanner::KeptOnPeer(const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    Entry e = PathEntry(dir, FileType::kDir);
    e.meta.mtime_sec = INT64_MIN;  // Unknown: compared afresh.
    peer_.Set(e);
  }
}

void SyncPlanner::Committed(const ChangeBatch& batch, const std::vector<OpFailure>& failures,
                           const std::vector<std::pair<std::string, ContentHash>>& sent_hashes) {
  std::unordered_set<std::string> failed;
  for (const OpFailure& f : failures) failed.insert(f.path);
  std::unordered_set<std::string> not_sent;
  for (const OpFailure& f : failures)
    if (!f.reached_peer) not_sent.insert(f.path);
  for (const Op& op : batch.ops) {
    const std::string& path = op.entry.path;
    if (not_sent.contains(path)) continue;  // The peer still holds what it held.
    if (failed.contains(path)) {
      // The peer's state for this path is unknown now; forget it so it is compared afresh.
      auto failure = std::find_if(failures.begin(), failures.end(),
                                  [&](const OpFailure& f) { return f.path == path; });
      if (op.kind == OpKind::kRename) {
        ForgetSubtree(path);  // What the plan moved there is not there.
        // A missing origin (the peer lost it) only needs the destination sent; anything else
        // leaves the origin in doubt.
        if (failure->error.code != ENOENT) needs_relist_ = true;
      } else if (op.kind != OpKind::kDelete) {
        peer_.Erase(path);
        // Its directory is missing on the peer (removed there): create it again next time.
        // (The root itself always exists once the target is open.)
        if (failure->error.code == ENOENT && !ParentOf(path).empty()) peer_.Erase(ParentOf(path));
      }
      continue;
    }
    switch (op.kind) {
      case OpKind::kRename:
        break;  // Already recorded when planned.
      case OpKind::kLink: {
        // Both names now share one token: they are known to be one file on the peer.
        std::string token = "linked:" + op.from;
        if (auto first = peer_.Find(op.from)) {
          if (first->link_target.empty()) {
            first->link_target = token;
            peer_.Set(*first);
          }
          token = first->link_target;
        }
        Entry e = op.entry;
        e.link_target = token;
        peer_.Set(e);
        break;
      }
      case OpKind::kDelete: {
        peer_.EraseSubtree(path);
        break;
      }
      case OpKind::kSetMeta: {
        if (!peer_.SetMeta(path, op.entry.meta)) peer_.Set(op.entry);
        break;
      }
      default:
        peer_.Set(op.entry);
        if (op.kind == OpKind::kPut && config_.rsync.update) sent_here_.insert(path);
        break;
    }
  }
  for (const auto& [path, hash] : sent_hashes) peer_.SetHash(path, hash);
}

}  // namespace syncd