#include "syncd/sync_planner.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "syncd/log.h"
#include "syncd/sync_planner_plan.h"

namespace syncd {

SyncPlanner::SyncPlanner(const SyncConfig& config, FileSystem& fs)
    : config_(config), fs_(fs, MappingFor(config)), filter_(FilterFor(config)) {}

MetaMapping SyncPlanner::MappingFor(const SyncConfig& config) {
  auto mapping = MetaMapping::For(config.rsync, CurrentUmask());
  SYNCD_CHECK(mapping.has_value());
  return std::move(*mapping);
}

Result<Entry> SyncPlanner::SourceView::Stat(const std::string& root, const std::string& rel) {
  auto e = base_.Stat(root, rel);
  if (e) mapping_.Apply(*e);
  return e;
}

Result<std::vector<Result<Entry>>> SyncPlanner::SourceView::ListDir(const std::string& root,
                                                                   const std::string& rel) {
  auto entries = base_.ListDir(root, rel);
  if (entries)
    for (auto& e : *entries)
      if (e) mapping_.Apply(*e);
  return entries;
}

Filter SyncPlanner::FilterFor(const SyncConfig& config) {
  // The agent's temporary files (.syncd-<16 hex digits>.tmp) are its own on the standby: a
  // source file of that name is not replicated (README), as the agent removes such names.
  std::string temporaries = "- .syncd-";
  for (int i = 0; i < 16; ++i) temporaries += "[0-9a-f]";
  temporaries += ".tmp";
  std::vector<std::string> rules{temporaries};
  rules.insert(rules.end(), config.filter_rules.begin(), config.filter_rules.end());
  auto filter = Filter::Parse(rules, config.rsync.delete_excluded);
  SYNCD_CHECK(filter.has_value());
  return std::move(*filter);
}

void SyncPlanner::AddDirMeta(const Entry& dir, Plan& plan) {
  if (plan.HasMeta(dir.path)) return;
  plan.metas.push_back(MakeOp(OpKind::kSetMeta, dir));
}

bool SyncPlanner::SkippedByTransferRules(const Entry& local, const std::optional<Entry>& peer) const {
  const RsyncOptions& o = config_.rsync;
  if (o.existing && !peer) return true;                                   // --existing
  if (o.ignore_existing && peer && local.type != FileType::kDir) return true;
  if (local.type == FileType::kFile) {
    if (o.max_size && local.size > *o.max_size) return true;
    if (o.min_size && local.size < *o.min_size) return true;
    // -u: a file that is newer on the standby stays (only files; a type change goes over).
    if (o.update && peer && peer->type == FileType::kFile && !sent_here_.contains(local.path) &&
        std::pair(peer->meta.mtime_sec, peer->meta.mtime_nsec) >
            std::pair(local.meta.mtime_sec, local.meta.mtime_nsec))
      return true;
  }
  if (o.safe_links && local.type == FileType::kSymlink && UnsafeSymlink(local.path, local.link_target)) {
    LogDebug("Delay", "ignoring unsafe symlink {} -> {}", local.path, local.link_target);
    return true;
  }
  return false;
}

bool SyncPlanner::ContentDiffers(const Entry& local, const Entry& peer) const {
  if (local.type != peer.type) return true;
  switch (local.type) {
    case FileType::kFile:
      if (local.size != peer.size) return true;
      if (config_.rsync.size_only) return false;
      // -c and -I: at startup every file's content is compared (a delta that finds nothing
      // to change sends next to nothing).
      if (reconciling_ && (config_.rsync.checksum || config_.rsync.ignore_times)) return true;
      return config_.KeepTimes() ? (local.meta.mtime_sec != peer.meta.mtime_sec ||
                                    local.meta.mtime_nsec != peer.meta.mtime_nsec)
                                 : false;
    case FileType::kSymlink:
      return local.link_target != peer.link_target;
    case FileType::kCharDevice:
    case FileType::kBlockDevice:
      return local.rdev != peer.rdev;
    default:
      return false;
  }
}

bool SyncPlanner::SameContentNewTime(const Entry& local, const Entry& peer) {
  if (local.type != FileType::kFile || peer.type != FileType::kFile || !peer.hash ||
      local.size != peer.size || local.size > kMaxHashCheckBytes)
    return false;
  auto hash = fs_.Hash(config_.source, local.path);
  return hash && *hash == *peer.hash;
}

bool SyncPlanner::MetaDiffers(const Entry& local, const Entry& peer) const {
  const Meta& a = local.meta;
  const Meta& b = peer.meta;
  if (config_.KeepPerms() && local.type != FileType::kSymlink && a.mode != b.mode) return true;
  // Owners are matched by name when both nodes know one, as rsync does, else by number.
  if (config_.KeepOwner() &&
      ((!a.user.empty() && !b.user.empty()) ? a.user != b.user : a.uid != b.uid))
    return true;
  if (config_.KeepGroup() &&
      ((!a.group.empty() && !b.group.empty()) ? a.group != b.group : a.gid != b.gid))
    return true;
  bool times = local.type == FileType::kDir       ? config_.KeepDirTimes()
               : local.type == FileType::kSymlink ? config_.KeepLinkTimes()
                                                  : config_.KeepTimes();
  if (times && (a.mtime_sec != b.mtime_sec || a.mtime_nsec != b.mtime_nsec)) return true;
  return config_.Xattrs().any() && a.xattrs != b.xattrs;
}

void SyncPlanner::EnsureAncestors(const std::string& path, Plan& plan) {
  std::string parent = ParentOf(path);
  if (parent.empty() || plan.created_dirs.contains(parent)) return;
  std::optional<Entry> peer = PeerEntry(parent);
  if (peer && peer->type == FileType::kDir) return;
  EnsureAncestors(parent, plan);
  auto local = fs_.Stat(config_.source, parent);
  if (!local || local->type != FileType::kDir) return;  // Vanished; a later notice covers it.
  if (peer) plan.deletes.push_back(MakeOp(OpKind::kDelete, PathEntry(parent)));
  plan.creates.push_back(MakeOp(OpKind::kMkdir, *local));
  plan.created_dirs.insert(parent);
  plan.planned.insert(parent);
  plan.touched_dirs.insert(ParentOf(parent));
}

void SyncPlanner::PlanEntry(const Entry& local, Plan& plan) {
  if (local.type == FileType::kOther ||
      (IsSpecial(local.type) && !config_.KeepSpecials()) ||
      (IsDevice(local.type) && !config_.KeepDevices())) {
    // rsync without -D says "skipping non-regular file", and so leaves the standby's entry.
    LogDebug("Delay", "skipping non-regular file {}", local.path);
    return;
  }
  if (local.type == FileType::kSymlink && !config_.KeepLinks()) return;
  // A startup comparison meets each name once: only what may also be planned through another
  // name (a directory, as an ancestor; a file with other names) is remembered.
  bool once = reconciling_ && local.type != FileType::kDir && local.nlink <= 1;
  if (once ? plan.planned.contains(local.path) : !plan.planned.insert(local.path).second) return;
  if (local.type == FileType::kFile && local.nlink > 1) {
    if (config_.rsync.hard_links) return PlanLinked(local, plan);
    PlanOtherNames(local, plan);
  }
  PlanPath(local, plan);
}

void SyncPlanner::PlanPath(const Entry& local, Plan& plan) {
  std::optional<Entry> peer = PeerEntry(local.path);
  if (local.path.empty()) {  // The root exists on the peer once the target is open.
    // Unknown (a refused change forgot it): sent again.
    if (!peer || MetaDiffers(local, *peer)) plan.metas.push_back(MakeOp(OpKind::kSetMeta, local));
    return;
  }
  bool is_dir = local.type == FileType::kDir;
  if (is_dir && !peer && config_.rsync.prune_empty_dirs) return;  // Created with its first file.
  if (SkippedByTransferRules(local, peer)) return;
  // Only a file that looks changed is read: an unchanged one (a restart's comparison of a whole
  // tree) costs no read.
  bool looks_changed = !peer || ContentDiffers(local, *peer);
  if (peer && looks_changed && SameContentNewTime(local, *peer)) {
    // Touched, not changed (PHP's lazy session write): the new mtime is all there is to send.
    if (MetaDiffers(local, *peer)) plan.metas.push_back(MakeOp(OpKind::kSetMeta, local));
    return;
  }
  if (looks_changed) {
    EnsureAncestors(local.path, plan);
    // A type change needs the old thing gone first; a file or link replaces a file or link.
    if (peer && peer->type != local.type &&
        (peer->type == FileType::kDir || local.type == FileType::kDir))
      plan.deletes.push_back(MakeOp(OpKind::kDelete, PathEntry(local.path)));
    if (is_dir) {
      if (peer && peer->type == FileType::kDir) {
        if (MetaDiffers(local, *peer)) plan.metas.push_back(MakeOp(OpKind::kSetMeta, local));
        return;
      }
      plan.creates.push_back(MakeOp(OpKind::kMkdir, local));
      plan.created_dirs.insert(local.path);
    } else if (local.type == FileType::kSymlink) {
      plan.creates.push_back(MakeOp(OpKind::kSymlink, local));
    } else if (IsSpecial(local.type) || IsDevice(local.type)) {
      plan.creates.push_back(MakeOp(OpKind::kMknod, local));
    } else {
      Op put = MakeOp(OpKind::kPut, local, JoinPath(config_.source, local.path));
      if (peer && peer->type == FileType::kFile) put.basis_size = peer->size;
      plan.creates.push_back(std::move(put));
      if (local.nlink > 1) plan.puts.insert(local.path);
    }
    plan.touched_dirs.insert(ParentOf(local.path));
    return;
  }
  if (MetaDiffers(local, *peer)) plan.metas.push_back(MakeOp(OpKind::kSetMeta, local));
}

std::vector<Entry> SyncPlanner::LinkNames(const Entry& local, bool may_scan) {
  const std::pair<uint64_t, uint64_t> key{local.dev, local.ino};
  LinkGroup& group = links_[key];
  group.names.insert(local.path);
  if (may_scan && !group.complete && group.names.size() < local.nlink) {
    // A new link to a file the planner knew by one name (or none): its other names are found
    // once, by a scan. (Links from outside the tree keep the count above what is found.)
    group.complete = true;
    if (auto all = ScanTree(fs_, config_.source, filter_, config_.rsync.one_file_system)) {
      for (const Entry& e : *all)
        if (e.type == FileType::kFile && e.ino == local.ino && e.dev == local.dev)
          group.names.insert(e.path);
    }
  }
  std::vector<Entry> names;
  for (auto it = group.names.begin(); it != group.names.end();) {
    auto other = it->compare(local.path) == 0 ? Result<Entry>(local) : fs_.Stat(config_.source, *it);
    if (!other || other->ino != local.ino || other->dev != local.dev) {
      it = group.names.erase(it);  // Gone, or another file now.
      continue;
    }
    if (!filter_.Excluded(*it, false)) names.push_back(std::move(*other));
    ++it;
  }
  return names;  // In path order: the set is sorted.
}

void SyncPlanner::PlanOtherNames(const Entry& local, Plan& plan) {
  // A name new to the peer brings no new content to the others (Maildir's link() and
  // unlink() on every delivery must not scan the tree); a rewrite through a known name does.
  for (const Entry& other : LinkNames(local, PeerEntry(local.path).has_value()))
    if (other.path != local.path) PlanEntry(other, plan);
}

void SyncPlanner::PlanLinked(const Entry& local, Plan& plan) {
  std::vector<Entry> names = LinkNames(local, /*may_scan=*/true);  // To choose the first name.
  if (names.empty() || names.front().path != local.path) {
    // The first name in path order carries the content; the others are links to it.
    if (!names.empty()) PlanEntry(names.front(), plan);
    if (names.empty()) return PlanPath(local, plan);
    return PlanLinkTo(local, names.front().path, plan);
  }
  PlanPath(local, plan);
  if (plan.puts.contains(local.path) && names.size() > 1) {
    for (auto it = plan.creates.rbegin(); it != plan.creates.rend(); ++it) {
      if (it->kind == OpKind::kPut && it->entry.path == local.path) {
        it->keeps_links = true;
        break;
      }
    }
  }
  for (size_t i = 1; i < names.size(); ++i)
    if (plan.planned.insert(names[i].path).second) PlanLinkTo(names[i], local.path, plan);
}

void SyncPlanner::PlanLinkTo(const Entry& local, const std::string& first, Plan& plan) {
  std::optional<Entry> peer = PeerEntry(local.path);
  std::optional<Entry> leader = PeerEntry(first);
  // Linked already: both names of one file on the peer, and that file keeps its inode.
  if (!plan.puts.contains(first) && peer && leader && peer->type == FileType::kFile &&
      !peer->link_target.empty() && peer->link_target == leader->link_target)
    return;
  EnsureAncestors(local.path, plan);
  if (peer && peer->type == FileType::kDir)
    plan.deletes.push_back(MakeOp(OpKind::kDelete, PathEntry(local.path)));
  plan.creates.push_back(MakeOp(OpKind::kLink, local, JoinPath(config_.source, local.path), first));
  plan.touched_dirs.insert(ParentOf(local.path));
}

Result<ChangeBatch> SyncPlanner::PlanReconcile(Listing peer, std::optional<Result<Listing>> scanned) {
  return Reconcile(PeerMap(std::move(peer)), std::move(scanned));
}

Result<ChangeBatch> SyncPlanner::PlanReconcile(PeerMap peer, std::optional<Result<Listing>> scanned) {
  return Reconcile(std::move(peer), std::move(scanned));
}

Result<Listing> SyncPlanner::ScanSource(const std::function<std::unique_ptr<FileSystem>()>& make_base,
                                        size_t expect, unsigned threads) const {
  // A view that owns the file system it maps.
  struct Base {
    std::unique_ptr<FileSystem> owned;
  };
  struct OwnedView : Base, SourceView {
    OwnedView(std::unique_ptr<FileSystem> base, MetaMapping mapping)
        : Base{std::move(base)}, SourceView(*owned, std::move(mapping)) {}
  };
  auto make_view = [&]() -> std::unique_ptr<FileSystem> {
    return std::make_unique<OwnedView>(make_base(), MappingFor(config_));
  };
  return ScanTreeParallel(make_view, config_.source, filter_, config_.rsync.one_file_system,
                          expect, threads);
}

Result<ChangeBatch> SyncPlanner::PlanRescan() { return Reconcile(peer_); }

Result<ChangeBatch> SyncPlanner::Reconcile(PeerMap peer, std::optional<Result<Listing>> scanned) {
  peer_ = std::move(peer);
  auto local = scanned ? std::move(*scanned)
                       : ScanTree(fs_, config_.source, filter_, config_.rsync.one_file_system, peer_.size());
  if (!local) return std::unexpected(local.error());
  links_.clear();
  for (const Entry& e : *local) {
    if (e.type != FileType::kFile || e.nlink <= 1) continue;
    LinkGroup& group = links_[{e.dev, e.ino}];
    group.names.insert(e.path);
    group.complete = true;
  }
  // With prune_empty_dirs, a directory goes over only if something that is not a directory
  // lies beneath it (rsync -m).
  // The sets below hold views of the scan's paths, which outlive them.
  std::unordered_set<std::string_view> nonempty;
  if (config_.rsync.prune_empty_dirs) {
    for (const Entry& e : *local) {
      if (e.type == FileType::kDir) continue;
      for (std::string_view p = ParentView(e.path); !p.empty() && nonempty.insert(p).second;
           p = ParentView(p)) {
      }
    }
  }
  Plan plan;
  // Most entries need sending on a first copy, and the directories' times after them: room
  // for both, so that the batch is made in place.
  ReserveLarge(plan.creates, local->size() + local->size() / 4);
  reconciling_ = true;
  // What goes over, for the deletions: needed only if the peer holds more than its root.
  bool deletes = config_.DeletesAtStartup() && peer_.size() > 1;
  std::unordered_set<std::string_view> present;
  std::unordered_set<std::string_view> present_dirs;  // Directories that go over.
  if (deletes) present.reserve(local->size());  // Sized once, not rehashed as it grows.
  for (const Entry& e : *local) {
    if (e.type == FileType::kDir && !e.path.empty() && config_.rsync.prune_empty_dirs &&
        !nonempty.contains(e.path))
      continue;
    if (deletes) present.insert(e.path);
    if (e.type == FileType::kDir) present_dirs.insert(e.path);
    PlanEntry(e, plan);
  }
  if (deletes) {
    // As rsync --delete: in each directory that goes over, what the source lacks goes, unless
    // the filter protects it. What lies beneath a directory that goes is the agent's to sort
    // out: it keeps the protected entries, and the directories that hold them.
    std::vector<std::pair<std::string, FileType>> gone;
    peer_.ForEachPath([&](const std::string& path, FileType type) {
      if (path.empty() || present.contains(path) || !present_dirs.contains(ParentView(path))) return;
      if (filter_.Protected(path, type == FileType::kDir)) return;
      gone.emplace_back(path, type);
    });
    for (const auto& [path, type] : gone) PlanRemoval(path, type, plan);
  }
  // Directory times are fixed up last, once their contents are in place: writing entries on
  // the peer changed its directories' mtimes.
  if (config_.KeepDirTimes()) {
    for (const Entry& e : *local) {
      if (e.type == FileType::kDir && present_dirs.contains(e.path) && plan.touched_dirs.contains(e.path))
        AddDirMeta(e, plan);
    }
  }
  reconciling_ = false;
  return plan.Finish(next_batch_id_++);
}

}  // namespace syncd
