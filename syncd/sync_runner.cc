#include "syncd/sync_runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <unordered_set>

#include "syncd/log.h"

namespace syncd {
namespace {

// A steady stream of deletions is released after this long (or ten holds, if longer).
constexpr std::chrono::milliseconds kLongestDeleteHold{10000};

DeleteHold MakeDeleteHold(const SyncConfig& config) {
  auto quiet = std::chrono::milliseconds(static_cast<int64_t>(config.delete_hold * 1000));
  return DeleteHold(quiet, std::max(kLongestDeleteHold, quiet * 10));
}

Batcher::Options BatcherOptions(const SyncConfig& config) {
  Batcher::Options options;
  if (config.delay && *config.delay > 0)
    options.delay = std::chrono::milliseconds(static_cast<int64_t>(*config.delay * 1000));
  options.max_delays = static_cast<size_t>(std::max(1, config.max_delays));
  return options;
}

}  // namespace

SyncRunner::SyncRunner(uv_loop_t* loop, const SyncConfig& config, bool insist,
                       PeerConnector connect, Hooks hooks, Seams seams)
    : loop_(loop),
      config_(config),
      insist_(insist),
      seams_(std::move(seams)),
      own_fs_(seams_.fs ? nullptr : std::make_unique<PosixFileSystem>(config_.Follow(), config_.Xattrs())),
      fs_(seams_.fs ? *seams_.fs : *own_fs_),
      planner_(config_, fs_),
      batcher_(BatcherOptions(config_)),
      replica_(connect()),
      lane_(config_.name, connect,
            [this](const ChangeBatch& b, BatchResult r) { OnLaneDone(b, std::move(r)); }),
      hooks_(std::move(hooks)),
      delete_hold_(MakeDeleteHold(config_)),
      failed_(seams_.first_retry, seams_.max_retry) {
  for (UvHandle<uv_timer_t>* t : {&timer_, &retry_timer_, &hold_timer_, &history_timer_, &trim_timer_, &scan_timer_})
    *t = MakeTimer(loop_, this);
  planner_.SetRemovalGate([this](const std::string& path) { return MayRemove(path); });
}

SyncRunner::~SyncRunner() {
  DropPrescan();  // Its thread reads the planner's configuration and filter.
  life_.Revoke();
  SaveHistory();
  if (watcher_) watcher_->Stop();
  if (replica_) replica_->Close();
}

std::unique_ptr<Watcher> SyncRunner::MakeWatcher() {
  if (seams_.watcher) return seams_.watcher(planner_.filter());
  return std::make_unique<InotifyWatcher>(loop_, config_.source, planner_.filter(),
                                          config_.inotify_mode, config_.rsync.one_file_system);
}

void SyncRunner::Start() {
  // The history first: the manifest it finds is read while the tree is watched.
  BeginHistory();
  // Watches first, then the reconcile: nothing changed during the scan can be missed.
  watcher_ = MakeWatcher();
  if (auto r = watcher_->Start([this](const FsEvent& e) { OnEvent(e); }); !r) {
    Error e = r.error();
    e.fatal = true;
    e.message = config_.name + ": " + e.message;
    if (hooks_.on_fatal) hooks_.on_fatal(e);
    return;
  }
  if (auto root = fs_.Stat(config_.source, "")) {
    root_dev_ = root->dev;
    root_ino_ = root->ino;
  }
  if (!seams_.fs) {
    events_at_prescan_ = events_handled_;
    // The walk saw every entry but the root: room for those, and a little for new ones.
    size_t expect = watcher_->entries_seen() + 1;
    prescan_ = std::async(std::launch::async, [this, expect = expect + expect / 64] {
      // Two threads: the event loop and the standby mostly wait for the scan meanwhile.
      auto posix = [this]() -> std::unique_ptr<FileSystem> {
        return std::make_unique<PosixFileSystem>(config_.Follow(), config_.Xattrs());
      };
      return planner_.ScanSource(posix, expect, 2);
    });
  }
  replica_->OnLost([this](const Error& e) { ConnectionLost(e); });
  Connect();
}

void SyncRunner::DropPrescan() {
  if (prescan_.valid()) prescan_.wait();
  prescan_ = {};
}

std::optional<Result<Listing>> SyncRunner::TakePrescan() {
  if (!prescan_.valid()) return std::nullopt;
  Result<Listing> scanned = prescan_.get();
  // A change handled since the scan began may have been missed by it; one not yet handled is
  // handled after the comparison, against what it planned.
  if (events_handled_ != events_at_prescan_ || need_rescan_) return std::nullopt;
  return scanned;
}

void SyncRunner::SetFilterRules(const std::vector<std::string>& rules) {
  DropPrescan();  // Made with the old rules.
  config_.filter_rules = rules;
  planner_.SetFilterRules(rules);
  const Filter& filter = planner_.filter();
  replica_->SetProtectRules(filter.protects() ? filter.Rules() : std::vector<std::string>{});
  if (watcher_) {
    watcher_->Stop();
    watcher_ = MakeWatcher();
    if (auto r = watcher_->Start([this](const FsEvent& e) { OnEvent(e); }); !r)
      LogError("{}: watching again after a reload: {}", config_.name, r.error().message);
  }
  need_rescan_ = true;  // Paths no longer excluded go over; newly excluded ones stay on the peer.
  Pump();
}

void SyncRunner::OnEvent(const FsEvent& event) {
  ++events_handled_;
  if (history_ && event.kind != FsEvent::Kind::kRootGone) {
    history_->NoteChange(WallNow());
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(history_timer_.get())))
      uv_timer_start(history_timer_.get(), &SyncRunner::OnHistoryTimer, 1000, 0);
  }
  switch (event.kind) {
    case FsEvent::Kind::kOverflow:
      need_rescan_ = true;
      break;
    case FsEvent::Kind::kRootGone:
      return RootGone();
    case FsEvent::Kind::kChanged:
      batcher_.Add(event.path, Clock::now());
      break;
    case FsEvent::Kind::kWritten:
      batcher_.AddModified(event.path, Clock::now());
      break;
    case FsEvent::Kind::kMoved:
      batcher_.AddMove(event.from, event.path, event.is_dir, Clock::now());
      break;
  }
  Pump();
}

void SyncRunner::Send(ChangeBatch batch) {
  if (history_) StampBatch(batch, std::exchange(stamp_replace_, false), OldestUnacked());
  in_flight_ = true;
  in_flight_ops_ = batch.ops.size();
  in_flight_oldest_ = batch.oldest_change;
  batch.events_at_plan = events_handled_;
  auto shared = std::make_shared<const ChangeBatch>(std::move(batch));
  LogDebug("Delay", "{}: sending batch {} with {} operations", config_.name, shared->id,
           shared->ops.size());
  auto sent = Clock::now();
  replica_->Apply(shared, life_.Guard([this, shared, sent](BatchResult r) {
    LogDebug("Delay", "{}: batch {} durable after {:.1f} ms", config_.name, shared->id,
             std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    OnApplied(*shared, std::move(r));
  }));
}

void SyncRunner::SendPendingNow() {
  if (watcher_) watcher_->ReadQueued();
  if (!failed_.empty() && phase_ == Phase::kLive) {
    // Every failing path is tried once more now, whatever its pause.
    uv_timer_stop(retry_timer_.get());
    failed_.TakeRetries();
    for (const std::string& p : failed_.Paths()) batcher_.Add(p, Clock::now());
  }
  send_now_ = true;
  Pump();
}

void SyncRunner::ArmTimer(uint64_t ms) { uv_timer_start(timer_.get(), &SyncRunner::OnTimer, ms, 0); }

void SyncRunner::OnTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<SyncRunner*>(timer->data);
  if (self->phase_ == Phase::kWaitingRetry) {
    self->Connect();
    return;
  }
  self->Pump();
}

void SyncRunner::Pump() {
  PumpOnce();
  if (hooks_.on_progress) hooks_.on_progress();
}

void SyncRunner::PumpOnce() {
  if (phase_ != Phase::kLive || in_flight_) return MaybeFinishDrain();
  auto now = Clock::now();
  // Draining for a stop, or flushing: what is pending goes now, whatever the delay.
  bool all = drain_done_ || send_now_;
  if (!delete_hold_.empty() && (all || delete_hold_.Due(now))) ReleaseDeletes();
  ArmHoldTimer();  // Also when it woke a little early (libuv's clock lags behind).
  if (need_rescan_) {
    need_rescan_ = false;
    batcher_.Take(now + std::chrono::hours(24 * 365));
    planning_since_ = now;
    auto batch = planner_.PlanRescan();
    Planned();
    if (!batch) {
      LogError("{}: rescan: {}", config_.name, batch.error().message);
    } else if (!batch->ops.empty()) {
      batch->oldest_change = now;
      return Send(std::move(*batch));
    }
  }
  if (batcher_.empty() && delete_hold_.empty()) send_now_ = false;
  batcher_.Promote(all ? now + std::chrono::hours(24 * 365) : now);
  while (!batcher_.empty() && !held_) {
    if (!batcher_.Due(now) && !all) {
      auto deadline = *batcher_.NextDeadline();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      ArmTimer(static_cast<uint64_t>(std::max<int64_t>(ms, 1)));
      return;
    }
    auto released = TakeReleasable(now, all);
    if (!released) break;
    planning_since_ = released->oldest;
    ChangeBatch batch = planner_.PlanChanges(released->renames, released->paths);
    Planned();
    if (!failed_.empty()) ForgetSettled(released->paths, batch);
    // Large files and deltas take their own lane; the rest goes now.
    ChangeBatch small;
    small.id = batch.id;
    small.oldest_change = released->oldest;
    for (Op& op : batch.ops) {
      if (LargeLane::Takes(op))
        lane_.Enqueue(std::move(op), released->oldest, events_handled_);
      else
        small.ops.push_back(std::move(op));
    }
    if (!small.ops.empty()) return Send(std::move(small));
  }
  MaybeFinishDrain();
}

std::optional<Batcher::Released> SyncRunner::TakeReleasable(TimePoint now, bool all) {
  auto released = batcher_.Take(all ? now + std::chrono::hours(24 * 365) : now);
  if (lane_.idle()) return released;
  // Per-path order with the large-file lane: a file in it is not touched meanwhile, and a
  // rename or delete above one waits for it (the whole release, so renames keep their order).
  bool hold = false;
  for (const Rename& r : released.renames)
    hold = hold || lane_.HoldsFile(r.from) || lane_.HoldsFile(r.to) ||
           lane_.HoldsBeneath(r.from) || lane_.HoldsBeneath(r.to);
  std::vector<std::string> ready;
  for (const std::string& p : released.paths) {
    if (lane_.HoldsFile(p)) {
      waiting_paths_.push_back(p);
      continue;
    }
    if (!p.empty() && lane_.HoldsBeneath(p)) {
      auto local = fs_.Stat(config_.source, p);
      if (!local || local->type != FileType::kDir) hold = true;  // Deleted or replaced.
    }
    ready.push_back(p);
  }
  released.paths = std::move(ready);
  if (hold) {
    LogDebug("Delay", "{}: waiting for the large-file lane", config_.name);
    held_ = std::move(released);
    return std::nullopt;
  }
  return released;
}

void SyncRunner::Drain(std::function<void(bool)> done) {
  drain_done_ = std::move(done);
  if (watcher_) {
    watcher_->ReadQueued();  // Take in what the kernel already queued, then stop watching.
    watcher_->Stop();
  }
  if (phase_ == Phase::kWaitingRetry) {
    // What is pending (and the comparison a reconnect makes) still has a chance: now.
    LogInfo("{}: stopping: connecting to {} once more to send what is pending", config_.name,
            replica_->Describe());
    uv_timer_stop(timer_.get());
    Connect();
    return;
  }
  if (phase_ == Phase::kIdle) phase_ = Phase::kStopped;
  Pump();
}

void SyncRunner::MaybeFinishDrain() {
  if (!drain_done_) return;
  // Connecting and comparing count as pending: a stop waits for them (up to stopTimeout).
  if (phase_ == Phase::kDiverged && !batcher_.empty()) {
    LogError("{}: stopping with changes not sent: the standby diverged", config_.name);
    drain_delivered_ = false;
  }
  bool finished = phase_ == Phase::kStopped || phase_ == Phase::kDiverged ||
                  (phase_ == Phase::kLive && !in_flight_ && batcher_.empty() && lane_.idle() &&
                   !held_ && delete_hold_.empty());
  if (!finished) return;
  if (watcher_)
    LogInfo("{}: handled {} inotify events", config_.name, watcher_->events_read());
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done(drain_delivered_);
}

}  // namespace syncd