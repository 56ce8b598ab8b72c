// SyncRunner, continued: what the status files, the metrics and `syncd flush` see of a sync.
#include <algorithm>

#include "syncd/sync_runner.h"

namespace syncd {

std::optional<TimePoint> SyncRunner::OldestUnacked() const {
  std::optional<TimePoint> at = batcher_.oldest();
  auto consider = [&](std::optional<TimePoint> t) {
    if (t && (!at || *t < *at)) at = t;
  };
  if (in_flight_) consider(in_flight_oldest_);
  consider(lane_.oldest());
  consider(delete_hold_.oldest());
  if (held_) consider(held_->oldest);
  // A path that keeps failing is as old as the change that first failed, however often retried.
  consider(failed_.Oldest());
  return at;
}

SyncStatus SyncRunner::Status(TimePoint now) const {
  SyncStatus s;
  s.name = config_.name;
  s.source = config_.source;
  s.target = config_.host.empty() ? config_.target_dir : config_.host + ":" + config_.target_dir;
  s.filter_rules = config_.filter_rules;
  s.pending = batcher_.size() + (in_flight_ ? in_flight_ops_ : 0) + lane_.size() +
              waiting_paths_.size() + failed_.retries() + delete_hold_.size() +
              (held_ ? held_->paths.size() + held_->renames.size() : 0);
  if (auto oldest = OldestUnacked())
    s.lag_seconds = std::max(0.0, std::chrono::duration<double>(now - *oldest).count());
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kConnecting:
    case Phase::kHistory: s.state = "connecting"; break;
    case Phase::kAdopting: s.state = "adopting"; break;
    case Phase::kReconciling: s.state = "reconciling"; break;
    case Phase::kLive:
      // A path that keeps failing leaves the standby different: not in sync.
      s.state = s.pending > 0 ? "sending" : failed_.empty() ? "in sync" : "failing";
      break;
    case Phase::kWaitingRetry: s.state = "retrying"; break;
    case Phase::kStopped: s.state = "stopped"; break;
    case Phase::kDiverged: s.state = "diverged"; break;
  }
  s.last_success = last_success_;
  s.operations = operations_;
  s.bytes = bytes_;
  s.failures = failures_;
  s.failing = failed_.size();
  for (const std::string& path : failed_.Paths()) {
    if (s.failing_paths.size() >= 10) break;
    s.failing_paths.push_back(path.empty() ? "." : path);
  }
  s.reconnects = reconnects_;
  s.watches = watcher_ ? watcher_->watch_count() : 0;
  if (phase_ == Phase::kReconciling && reconcile_work_) {
    const ReconcileWork& w = *reconcile_work_;
    SyncStatus::Progress p;
    p.ops_total = w.ops;
    p.bytes_total = w.bytes;
    // What is durable, and what has gone out of the batch under way.
    Replica::Sent sent = replica_ ? replica_->InFlightSent() : Replica::Sent{};
    p.ops_done = std::min(w.ops, operations_ - w.ops_before + sent.ops);
    p.bytes_done = std::min(w.bytes, bytes_ - w.bytes_before + sent.bytes);
    p.seconds = std::chrono::duration<double>(now - w.started).count();
    s.progress = p;
  }
  return s;
}

}  // namespace syncd
