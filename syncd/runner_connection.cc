// SyncRunner, continued: the connection to the peer. Connecting, the startup comparison (the
// peer's listing against the source), and what happens when the connection breaks.
#include <malloc.h>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "syncd/log.h"
#include "syncd/sync_runner.h"

namespace syncd {
namespace {


}  // namespace

void SyncRunner::Connect() {
  phase_ = Phase::kConnecting;
  LogDebug("Transport", "{}: connecting to {}", config_.name, replica_->Describe());
  replica_->Connect(life_.Guard([this](Result<void> r) { OnConnected(std::move(r)); }));
}

void SyncRunner::OnConnected(Result<void> result) {
  if (!result) {
    const Error& e = result.error();
    if (drain_done_) return ConnectionLost(e);  // Stopping: no retry.
    if (e.fatal || (!ever_connected_ && !insist_)) {
      Error out = e;
      out.fatal = true;
      out.message = fmt::format("{}: {}", config_.name, e.message);
      if (!e.fatal && !insist_) out.message += " (set insist = true to keep retrying)";
      phase_ = Phase::kStopped;
      if (hooks_.on_fatal) hooks_.on_fatal(out);
      return;
    }
    ConnectionLost(e);
    return;
  }
  if (ever_connected_) ++reconnects_;
  ever_connected_ = true;
  backoff_ms_ = 0;
  // The standby's history first: nothing is listed or sent before the verdict.
  phase_ = Phase::kHistory;
  replica_->History(life_.Guard([this](Result<PeerHistory> h) { OnHistory(std::move(h)); }));
}

void SyncRunner::OnListed(Result<Listing> listing) {
  if (!listing) return ConnectionLost(listing.error());
  Compare(PeerMap(std::move(*listing)));
}

void SyncRunner::Compare(PeerMap peer_map) {
  using namespace std::chrono_literals;
  if (prescan_.valid() && prescan_.wait_for(0s) != std::future_status::ready) {
    // The scan of a large tree is still under way: waited for on the loop, not in it.
    awaiting_scan_ = std::move(peer_map);
    uv_timer_start(scan_timer_.get(), [](uv_timer_t* t) noexcept {
      auto* self = static_cast<SyncRunner*>(t->data);
      if (self->prescan_.valid() && self->prescan_.wait_for(0s) != std::future_status::ready) return;
      uv_timer_stop(t);
      if (!self->awaiting_scan_) return;
      PeerMap peer = std::move(*self->awaiting_scan_);
      self->awaiting_scan_.reset();
      self->Compare(std::move(peer));
    }, 5, 5);
    return;
  }
  // Everything pending is covered by the full comparison, which is as old as it.
  auto now = Clock::now();
  TimePoint oldest = OldestUnacked().value_or(now);
  std::optional<Result<Listing>> scanned = TakePrescan();
  batcher_.Take(now + std::chrono::hours(24 * 365));
  need_rescan_ = false;
  if (!config_.init && !live_) {
    // init = false: the peer is taken as it is; only later changes are sent.
    auto ignored = planner_.PlanReconcile(std::move(peer_map), std::move(scanned));
    (void)ignored;
    return Reconciled();
  }
  auto batch = planner_.PlanReconcile(std::move(peer_map), std::move(scanned));
  const PeerMap& peer = planner_.peer();  // As compared with: what the batch changes is not in it.
  Planned();
  stamp_replace_ = true;  // Once durable, the standby holds a copy of this tree.
  if (!batch) {
    Error e = batch.error();
    e.message = config_.name + ": scanning source: " + e.message;
    e.fatal = true;
    if (hooks_.on_fatal) hooks_.on_fatal(e);
    return;
  }
  if (!failed_.empty()) ForgetSettled(failed_.Paths(), *batch);
  // A source that is empty while the peer is not is most likely not mounted (a mounted
  // filesystem has at least lost+found): wiping the standby from it would be the worst thing
  // syncd could do. The deletes are held back, loudly; what the source has still goes.
  size_t peer_entries = peer.size() - (peer.Contains("") ? 1 : 0);  // Beside its root.
  if (SourceIsEmpty() && peer_entries > 0) {
    size_t held = static_cast<size_t>(std::count_if(
        batch->ops.begin(), batch->ops.end(), [](const Op& op) { return op.kind == OpKind::kDelete; }));
    if (held > 0) {
      std::erase_if(batch->ops, [](const Op& op) { return op.kind == OpKind::kDelete; });
      LogError("{}: source {} is empty but {} holds {} entries: not deleting them (is the "
               "source's filesystem mounted?). If the source is meant to be empty, delete them "
               "on the standby by hand",
               config_.name, config_.source, replica_->Describe(), peer_entries);
    }
  }
  ReconcileWork work{batch->ops.size(), 0, operations_, bytes_, now};
  for (const Op& op : batch->ops)
    if (op.kind == OpKind::kPut) work.bytes += op.entry.size;
  reconcile_work_ = work;
  LogInfo("{}: compared with {}: {} operations to send ({} bytes of files)", config_.name,
          replica_->Describe(), work.ops, work.bytes);
  // Large files whose directory the peer already has go by the large-file lane at once, so
  // the peer writes small files and large ones side by side; the rest wait for the batch that
  // makes their directories.
  auto peer_has_dir = [&](const std::string& dir) {
    return dir.empty() || peer.TypeOf(dir) == FileType::kDir;
  };
  // The rest stays in the batch, compacted in place (it holds an operation per file of the
  // tree: no second list of them).
  std::vector<Op>& ops = batch->ops;
  size_t kept = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (LargeLane::Takes(ops[i]) && peer_has_dir(ParentOf(ops[i].entry.path))) {
      lane_.Enqueue(std::move(ops[i]), oldest, events_handled_);
    } else {
      if (kept != i) ops[kept] = std::move(ops[i]);
      ++kept;
    }
  }
  ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(kept), ops.end());
  batch->oldest_change = oldest;
  Send(std::move(*batch));
}

void SyncRunner::Reconciled() {
  phase_ = Phase::kLive;
  // With what is known of the peer packed into a few large blocks, the comparison's lists (the
  // scan, the listing, and the batch, freed once this callback returns) leave the heap mostly
  // free: give those pages back on the next turn of the loop, so that a large tree's first
  // copy does not stay resident for the run.
  planner_.CompactPeer();
  uv_timer_start(trim_timer_.get(), [](uv_timer_t*) noexcept { ::malloc_trim(0); }, 0, 0);
  LogInfo("{}: in sync with {}", config_.name, replica_->Describe());
  if (hooks_.on_status) hooks_.on_status(config_.name + ": in sync");
  if (!live_) {
    live_ = true;
    if (hooks_.on_in_sync) hooks_.on_in_sync();
  }
  Pump();
}

void SyncRunner::ConnectionLost(const Error& error) {
  if (phase_ == Phase::kStopped || phase_ == Phase::kWaitingRetry || phase_ == Phase::kDiverged) return;
  in_flight_ = false;
  phase_ = Phase::kWaitingRetry;
  awaiting_scan_.reset();  // Compared again once connected again.
  uv_timer_stop(scan_timer_.get());
  replica_->Close();
  // The reconcile after reconnecting compares everything, the lane's files included.
  lane_.Reset();
  waiting_paths_.clear();
  held_.reset();
  failed_.DropRetries();
  uv_timer_stop(retry_timer_.get());
  if (drain_done_) {
    LogError("{}: {}; stopping with changes not sent", config_.name, error.message);
    drain_delivered_ = false;
    phase_ = Phase::kStopped;
    return MaybeFinishDrain();
  }
  // By default 1 s doubling to 10 s: a standby that comes back is caught up within 10 s; an
  // attempt at one that is down costs a refused or unanswered SYN.
  const auto first = static_cast<uint64_t>(seams_.first_backoff.count());
  const auto last = static_cast<uint64_t>(seams_.max_backoff.count());
  backoff_ms_ = backoff_ms_ == 0 ? first : std::min(backoff_ms_ * 2, last);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t wait = backoff_ms_ / 2 + rng() % (backoff_ms_ / 2 + 1);  // Jitter: 50-100%.
  LogError("{}: {}; retrying in {:.1f} s", config_.name, error.message,
           static_cast<double>(wait) / 1000);
  if (hooks_.on_status)
    hooks_.on_status(fmt::format("{}: peer unreachable, retrying in {:.0f} s", config_.name,
                                 static_cast<double>(wait) / 1000));
  ArmTimer(wait);
}

}  // namespace syncd
