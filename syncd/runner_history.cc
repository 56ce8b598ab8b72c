// SyncRunner, continued: generations (see syncd/history.h). This run of the sync is an epoch
// of this node; at every connection the standby's history is read before anything is listed
// or sent, and a standby holding changes this node never received, spanning more than
// divergenceLimit, is left untouched until the operator says `syncd adopt` or `syncd
// overwrite`.
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <future>
#include <unordered_set>

#include "syncd/log.h"
#include "syncd/sync_runner.h"

namespace syncd {
namespace {

int64_t ToWall(TimePoint t) {
  auto ago = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
  return WallNow() - std::max<int64_t>(ago, 0);
}

std::string DescribeUnseen(const Unseen& u) {
  return fmt::format("{} change(s) of {} made between {} and {} ({:.3f} s)", u.changes,
                     u.epoch.Describe(), FormatWall(u.from), FormatWall(u.to), u.Seconds());
}

// One item per epoch with changes, for the log.
std::vector<std::string> DescribeLineage(const Lineage& lineage) {
  std::vector<std::string> out;
  for (const EpochRecord& e : lineage) {
    if (e.changes == 0) continue;
    out.push_back(fmt::format("{}: {} change(s), the last at {}", e.Describe(), e.changes,
                              FormatWall(e.through)));
  }
  if (out.empty()) out.push_back("no changes");
  return out;
}

}  // namespace

void SyncRunner::BeginHistory() {
  if (config_.state_dir.empty()) return;  // Tests without a state directory.
  char real[PATH_MAX];
  tree_ = ::realpath(config_.source.c_str(), real) ? real : config_.source;
  auto h = ActiveHistory::Begin(config_.state_dir, tree_, WallNow());
  if (!h) {
    LogError("{}: no history is kept ({}): the standby's changes cannot be told from this "
             "node's, and a stale node may overwrite a newer standby",
             config_.name, h.error().message);
    return;
  }
  history_ = std::move(*h);
  LogDebug("Transport", "{}: {} begins", config_.name, history_->current().Describe());
  if (!config_.init) return;
  resume_ = std::async(std::launch::async, [state = history_->state(), tree = tree_] {
    return Manifest::Load(state, tree);
  });
}

void SyncRunner::RecordManifest(const ChangeBatch& batch, const std::vector<OpFailure>& failures) {
  if (!history_) return;
  if (batch.stamp) ApplyStamp(peer_lineage_, *batch.stamp);
  else if (!manifest_) return;  // The snapshot to come will hold it.
  const auto& peer = planner_.peer();
  Result<void> r;
  bool snapshot = !manifest_ || (batch.stamp && batch.stamp->replace) ||
                  manifest_->journal_bytes() > std::max<uint64_t>(manifest_->snapshot_bytes(), 16 << 20);
  if (snapshot) {
    manifest_.reset();
    auto m = Manifest::Create(history_->state(), tree_, peer, peer_lineage_);
    if (m) manifest_ = std::move(*m);
    else r = std::unexpected(m.error());
  } else {
    std::unordered_set<std::string> refused;
    for (const OpFailure& f : failures) refused.insert(f.path);
    std::vector<Entry> present;
    std::vector<std::string> removed;
    for (const Op& op : batch.ops) {
      const std::string& path = op.entry.path;
      if (refused.contains(path)) continue;
      if (op.kind == OpKind::kRename) {
        removed.push_back(op.from);
        if (auto e = peer.Find(path)) present.push_back(std::move(*e));
        peer.ForEachBeneath(path, [&](const std::string& p, FileType) { present.push_back(*peer.Find(p)); });
        continue;
      }
      auto e = peer.Find(path);
      if (!e || op.kind == OpKind::kDelete) removed.push_back(path);
      if (e) present.push_back(std::move(*e));
    }
    r = manifest_->Append(present, removed, peer_lineage_);
  }
  if (!r) {
    LogWarn("{}: the manifest of what the standby holds: {}; a restart will list the standby",
            config_.name, r.error().message);
    manifest_.reset();
    Manifest::Remove(history_->state(), tree_);
  }
}

void SyncRunner::OnHistoryTimer(uv_timer_t* timer) noexcept {
  static_cast<SyncRunner*>(timer->data)->SaveHistory();
}

void SyncRunner::SaveHistory() {
  if (!history_) return;
  auto oldest = OldestUnacked();
  history_->NoteUnconfirmed(oldest ? ToWall(*oldest) : 0);
  if (auto r = history_->Save(); !r)
    LogError("{}: writing the history: {}", config_.name, r.error().message);
}

void SyncRunner::StampBatch(ChangeBatch& batch, bool replace, std::optional<TimePoint> rest) {
  batch.stamp = history_->Stamp(replace, rest ? ToWall(*rest) : WallNow());
}

void SyncRunner::OnHistory(Result<PeerHistory> peer) {
  auto list = [this] {
    phase_ = Phase::kReconciling;
    replica_->List(life_.Guard([this](Result<Listing> l) { OnListed(std::move(l)); }));
  };
  if (!peer) {
    if (peer.error().code != ENOTSUP) return ConnectionLost(peer.error());
    LogWarn("{}: {}: generations are not checked", config_.name, peer.error().message);
    return list();
  }
  if (!history_) return list();
  peer_lineage_ = peer->lineage;
  if (resume_.valid()) {
    // A restart of this node's syncd: the standby holds what the manifest says if its lineage
    // is the one the manifest records. The local tree is scanned and compared with that.
    auto loaded = resume_.get();
    if (!loaded) {
      LogWarn("{}: {}; the standby will be listed", config_.name, loaded.error().message);
    } else if (*loaded) {
      Manifest::Contents& resume = **loaded;
      if (peer->state == PeerHistory::State::kPresent && SameLineage(peer->lineage, resume.lineage)) {
        LogInfo("{}: the standby holds what this node last recorded ({} entries): comparing "
                "with that, without listing it",
                config_.name, resume.entries.size());
        phase_ = Phase::kReconciling;
        return Compare(std::move(resume.entries));
      }
      LogInfo("{}: the standby's history is not the one this node last recorded: listing it",
              config_.name);
    }
  }
  Judgement j = JudgeHistory(history_->lineage(), history_->node_id(), *peer, config_.divergence_limit_s);
  if (!j.no_history.empty())
    LogWarn("{}: the standby {} has no history of {}: {}; comparing as usual", config_.name,
            replica_->Describe(), config_.source, j.no_history);
  if (j.diverged && !resolution_) return Diverged(j, *peer);
  for (const Unseen& u : j.unseen)
    LogWarn("{}: the standby holds {} that this node never received; {}", config_.name,
            DescribeUnseen(u),
            !j.diverged ? fmt::format("overwriting them (within divergenceLimit, {} s)",
                                     config_.divergence_limit_s)
            : resolution_ == Resolution::kAdopt ? "the operator chose to adopt the newer files first"
                                                : "the operator chose to overwrite them");
  if (j.diverged && resolution_ == Resolution::kAdopt) {
    phase_ = Phase::kAdopting;
    peer_history_ = std::move(*peer);
    replica_->List(life_.Guard([this](Result<Listing> l) {
      if (!l) return ConnectionLost(l.error());
      AdoptFrom(std::move(*l));
    }));
    return;
  }
  resolution_.reset();
  list();
}

void SyncRunner::Diverged(const Judgement& j, const PeerHistory& peer) {
  phase_ = Phase::kDiverged;
  replica_->Close();
  DropPrescan();  // No comparison follows: the scan is not held while the sync waits.
  // One line each: the log keeps lines whole.
  LogError("{}: the standby {} diverged: it holds changes this node never received, over more "
           "than divergenceLimit ({} s); it is left untouched",
           config_.name, replica_->Describe(), config_.divergence_limit_s);
  for (const Unseen& u : j.unseen) LogError("{}: unseen on the standby: {}", config_.name, DescribeUnseen(u));
  for (const std::string& e : DescribeLineage(history_->lineage()))
    LogError("{}: this node ({}) holds {}", config_.name, history_->current().host, e);
  for (const std::string& e : DescribeLineage(peer.lineage))
    LogError("{}: the standby holds {}", config_.name, e);
  LogError("{}: run `syncd adopt CONFIG` to bring the standby's newer files here first, or "
           "`syncd overwrite CONFIG` to make the standby a copy of this node's tree",
           config_.name);
  if (hooks_.on_status)
    hooks_.on_status(fmt::format("{}: diverged: the standby holds changes this node never "
                                 "received; run syncd adopt or syncd overwrite", config_.name));
  if (hooks_.on_diverged) hooks_.on_diverged();
  if (hooks_.on_progress) hooks_.on_progress();
}

bool SyncRunner::Resolve(Resolution how) {
  if (phase_ != Phase::kDiverged) return false;
  resolution_ = how;
  LogWarn("{}: the operator chose to {} the diverged standby", config_.name,
          how == Resolution::kAdopt ? "adopt the newer files of" : "overwrite");
  Connect();
  return true;
}

void SyncRunner::AdoptFrom(Listing peer) {
  // What the standby holds that is newer than here, or not here at all: files and links by
  // their modification time, directories when missing (rsync -u). Nothing here is deleted.
  const Filter& filter = planner_.filter();
  auto todo = std::make_shared<std::vector<size_t>>();
  for (size_t i = 0; i < peer.size(); ++i) {
    const Entry& e = peer[i];
    if (e.path.empty()) continue;
    if (e.type != FileType::kFile && e.type != FileType::kDir && e.type != FileType::kSymlink) continue;
    if (filter.Excluded(e.path, e.type == FileType::kDir)) continue;
    auto local = fs_.Stat(config_.source, e.path);
    if (!local) {
      todo->push_back(i);
      continue;
    }
    if (local->type != e.type || e.type == FileType::kDir) continue;
    if (std::tie(e.meta.mtime_sec, e.meta.mtime_nsec) > std::tie(local->meta.mtime_sec, local->meta.mtime_nsec))
      todo->push_back(i);
  }
  LogWarn("{}: adopting {} entr{} from the standby {} that are newer there or missing here",
          config_.name, todo->size(), todo->size() == 1 ? "y" : "ies", replica_->Describe());
  AdoptNext(std::make_shared<Listing>(std::move(peer)), todo, 0);
}

void SyncRunner::AdoptNext(std::shared_ptr<Listing> peer, std::shared_ptr<std::vector<size_t>> todo,
                           size_t at) {
  if (at == todo->size()) {
    // This tree now holds what the standby held: its history too.
    history_->Adopt(peer_history_->lineage);
    peer_history_.reset();
    resolution_.reset();
    SaveHistory();
    LogWarn("{}: adopted the standby's newer entries; comparing", config_.name);
    phase_ = Phase::kReconciling;
    return Compare(PeerMap(std::move(*peer)));
  }
  const Entry& e = (*peer)[(*todo)[at]];
  replica_->Fetch(e, config_.source, life_.Guard([this, peer, todo, at](Result<void> r) {
    if (!r) {
      if (r.error().code == ECONNABORTED) return ConnectionLost(r.error());
      LogError("{}: adopting {}: {}", config_.name, (*peer)[(*todo)[at]].path, r.error().message);
    }
    AdoptNext(peer, todo, at + 1);
  }));
}

}  // namespace syncd
