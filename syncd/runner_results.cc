// SyncRunner, continued: what comes back from the peer for each batch. The acknowledged part
// is recorded; each failure is handled as the replica classified it (resend now, wait for the
// writer, back off, wait for a change).
#include <sys/stat.h>

#include <algorithm>
#include <unordered_set>

#include "syncd/log.h"
#include "syncd/sync_runner.h"

namespace syncd {

void SyncRunner::OnApplied(const ChangeBatch& batch, BatchResult result) {
  in_flight_ = false;
  if (!Absorb(batch, result)) return;
  if (phase_ == Phase::kReconciling) {
    if (lane_.idle()) Reconciled();  // Else the lane's last transfer completes the reconcile.
    return;
  }
  Pump();
}

void SyncRunner::OnLaneDone(const ChangeBatch& batch, BatchResult result) {
  if (!Absorb(batch, result)) return;
  // Renaming the file into place changed its directory's mtime on the peer after the small
  // lane had set it: set it again.
  std::string parent = ParentOf(batch.ops.front().entry.path);
  planner_.PeerDirChanged(parent);
  batcher_.Add(parent, Clock::now());
  // What waited for this file can go now.
  for (const std::string& p : waiting_paths_) batcher_.Add(p, batch.oldest_change);
  waiting_paths_.clear();
  if (phase_ == Phase::kReconciling) {
    if (!in_flight_ && lane_.idle()) Reconciled();
    return;
  }
  if (held_ && !held_->renames.empty()) {
    bool still = false;
    for (const Rename& r : held_->renames)
      still = still || lane_.HoldsBeneath(r.from) || lane_.HoldsFile(r.from);
    if (still) return Pump();
  }
  if (held_) {
    batcher_.Restore(std::move(*held_));
    held_.reset();
  }
  Pump();
}

bool SyncRunner::Absorb(const ChangeBatch& batch, BatchResult& result) {
  if (!result.status) {
    // Nothing of this batch is known to be durable; the reconcile after reconnecting covers it.
    for (const Op& op : batch.ops) batcher_.Add(op.entry.path, batch.oldest_change);
    ConnectionLost(result.status.error());
    return false;
  }
  planner_.Committed(batch, result.failures, result.sent_hashes);
  planner_.KeptOnPeer(result.kept);
  RecordManifest(batch, result.failures);
  last_success_ = std::chrono::system_clock::now();
  std::unordered_set<std::string> refused;
  for (const OpFailure& f : result.failures) refused.insert(f.path);
  // With no event handled since the batch was planned, whatever happened to its files meanwhile
  // is still to be handled, against what the peer now holds: no need to look at them again.
  bool changes_seen = events_handled_ != batch.events_at_plan;
  for (const Op& op : batch.ops) {
    if (refused.contains(op.entry.path)) continue;
    if (failed_.Succeeded(op.entry.path))
      LogInfo("{}: {}: replicated now", config_.name, op.entry.path.empty() ? "." : op.entry.path);
    ++operations_;
    if (op.kind != OpKind::kPut) continue;
    bytes_ += op.entry.size;
    if (!changes_seen) continue;
    // A file renamed or removed while it was being sent (an editor's or a writer's temporary
    // file) arrived under a name it no longer has: look at that name again, so the peer loses
    // it too, even if its events were handled before this batch committed.
    auto now_there = fs_.Stat(config_.source, op.entry.path);
    if (!now_there || now_there->ino != op.entry.ino) batcher_.Add(op.entry.path, Clock::now());
  }
  std::vector<std::string> later;
  auto now = Clock::now();
  for (const OpFailure& f : result.failures) {
    std::string_view shown = f.path.empty() ? "." : f.path;
    switch (f.retry) {
      case Retry::kWhenWriterDone:
        LogDebug("Delay", "{}: {}: {}; waiting for the writer", config_.name, shown, f.error.message);
        batcher_.AddModified(f.path, now);
        continue;
      case Retry::kNow:
        LogDebug("Delay", "{}: {}: {}; sending again", config_.name, shown, f.error.message);
        batcher_.Add(f.path, now);
        continue;
      case Retry::kBackOff:
      case Retry::kWhenChanged:
        break;
    }
    // Reported once per path and cause, and kept until it goes over: nothing is dropped.
    const char* next = f.retry == Retry::kBackOff ? "retrying" : "sent again when it changes";
    if (failed_.Failed(f.path, f.error, batch.oldest_change, now))
      LogError("{}: {}: {}; {}", config_.name, shown, f.error.message, next);
    else
      LogDebug("Delay", "{}: {}: {}; {}", config_.name, shown, f.error.message, next);
    ++failures_;
    if (f.retry == Retry::kBackOff) later.push_back(f.path);
  }
  if (planner_.TakeNeedsRelist()) {
    LogWarn("{}: a rename failed on {}; comparing with a fresh listing", config_.name,
            replica_->Describe());
    phase_ = Phase::kReconciling;
    replica_->List(life_.Guard([this](Result<Listing> l) { OnListed(std::move(l)); }));
    return false;
  }
  // Backoff for paths the peer keeps refusing (a full or read-only disk); a clean batch ends it.
  if (later.empty() && result.failures.empty()) failed_.CleanBatch();
  RetryLater(std::move(later));
  return true;
}

void SyncRunner::ForgetSettled(const std::vector<std::string>& paths, const ChangeBatch& batch) {
  std::unordered_set<std::string_view> planned;
  for (const Op& op : batch.ops) planned.insert(op.entry.path);
  for (const std::string& p : paths) {
    // Gone from the source, or equal on the peer by now: nothing of it is left to send.
    if (planned.contains(p) || !failed_.Settled(p)) continue;
    LogInfo("{}: {}: nothing left to send", config_.name, p.empty() ? "." : p);
  }
}

std::vector<std::string> SyncRunner::FailedSince(TimePoint t) const { return failed_.FailedSince(t); }

void SyncRunner::RetryLater(std::vector<std::string> later) {
  failed_.RetryLater(std::move(later), Clock::now());
  auto pause = failed_.ArmRetry();
  if (!pause) return;  // Nothing to retry, or the pending retry takes these too.
  uv_timer_start(
      retry_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<SyncRunner*>(t->data);
        for (const std::string& p : self->failed_.TakeRetries()) self->batcher_.Add(p, Clock::now());
        self->Pump();
      },
      static_cast<uint64_t>(pause->count()), 0);
}

}  // namespace syncd
