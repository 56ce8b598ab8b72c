#include "syncd/sync_runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "syncd/log.h"

namespace syncd {
namespace {

// Reconnecting: 1 s doubling to 10 s, each with 50-100% jitter. A standby that comes back is
// caught up within 10 s; an attempt at one that is down costs a refused or unanswered SYN.
constexpr uint64_t kFirstBackoffMs = 1000;
constexpr uint64_t kMaxBackoffMs = 10000;
constexpr uint64_t kFailedPathRetryMs = 2000;
constexpr uint64_t kMaxFailedPathRetryMs = 60000;
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
                       ReplicaFactory factory, Hooks hooks)
    : loop_(loop),
      config_(config),
      insist_(insist),
      fs_(config_.Follow(), config_.Xattrs()),
      engine_(config_, fs_),
      batcher_(BatcherOptions(config_)),
      replica_(factory()),
      lane_(config_.name, factory,
            [this](const ChangeBatch& b, BatchResult r) { OnLaneDone(b, std::move(r)); }),
      hooks_(std::move(hooks)),
      delete_hold_(MakeDeleteHold(config_)),
      failed_(std::chrono::milliseconds(kFailedPathRetryMs),
              std::chrono::milliseconds(kMaxFailedPathRetryMs)) {
  for (UvHandle<uv_timer_t>* t : {&timer_, &retry_timer_, &hold_timer_}) *t = MakeTimer(loop_, this);
  engine_.SetRemovalGate([this](const std::string& path) { return MayRemove(path); });
}

SyncRunner::~SyncRunner() {
  *alive_ = false;
  if (watcher_) watcher_->Stop();
  if (replica_) replica_->Close();
}

void SyncRunner::Start() {
  // Watches first, then the reconcile: nothing changed during the scan can be missed.
  watcher_ = std::make_unique<InotifyWatcher>(loop_, config_.source, engine_.filter(),
                                              config_.inotify_mode, config_.rsync.one_file_system);
  if (auto r = watcher_->Start([this](const FsEvent& e) { OnEvent(e); }); !r) {
    Error e = r.error();
    e.fatal = true;
    e.message = config_.name + ": " + e.message;
    if (hooks_.on_fatal) hooks_.on_fatal(e);
    return;
  }
  struct stat st;
  if (::lstat(config_.source.c_str(), &st) == 0) {
    root_dev_ = st.st_dev;
    root_ino_ = st.st_ino;
  }
  replica_->OnLost([this](const Error& e) { ConnectionLost(e); });
  Connect();
}

void SyncRunner::SetFilterRules(const std::vector<std::string>& rules) {
  config_.filter_rules = rules;
  engine_.SetFilterRules(rules);
  const Filter& filter = engine_.filter();
  replica_->SetProtectRules(filter.protects() ? filter.Rules() : std::vector<std::string>{});
  if (watcher_) {
    watcher_->Stop();
    watcher_ = std::make_unique<InotifyWatcher>(loop_, config_.source, engine_.filter(),
                                                config_.inotify_mode,
                                                config_.rsync.one_file_system);
    if (auto r = watcher_->Start([this](const FsEvent& e) { OnEvent(e); }); !r)
      LogError("{}: watching again after a reload: {}", config_.name, r.error().message);
  }
  need_rescan_ = true;  // Paths no longer excluded go over; newly excluded ones stay on the peer.
  Pump();
}

void SyncRunner::Connect() {
  phase_ = Phase::kConnecting;
  LogDebug("Transport", "{}: connecting to {}", config_.name, replica_->Describe());
  std::weak_ptr<bool> alive = alive_;
  replica_->Connect([this, alive](Result<void> r) {
    if (alive.lock() && *alive.lock()) OnConnected(std::move(r));
  });
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
  phase_ = Phase::kReconciling;
  std::weak_ptr<bool> alive = alive_;
  replica_->List([this, alive](Result<Listing> l) {
    if (alive.lock() && *alive.lock()) OnListed(std::move(l));
  });
}

void SyncRunner::OnListed(Result<Listing> listing) {
  if (!listing) return ConnectionLost(listing.error());
  // Everything pending is covered by the full comparison, which is as old as it.
  auto now = Clock::now();
  TimePoint oldest = OldestUnacked().value_or(now);
  batcher_.Take(now + std::chrono::hours(24 * 365));
  need_rescan_ = false;
  Listing peer = std::move(*listing);
  if (!config_.init && !live_) {
    // init = false: the peer is taken as it is; only later changes are sent.
    auto ignored = engine_.PlanReconcile(peer);
    (void)ignored;
    return Reconciled();
  }
  auto batch = engine_.PlanReconcile(peer);
  Planned();
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
  if (SourceIsEmpty() && std::any_of(peer.begin(), peer.end(),
                                     [](const Entry& e) { return !e.path.empty(); })) {
    size_t held = static_cast<size_t>(std::count_if(
        batch->ops.begin(), batch->ops.end(), [](const Op& op) { return op.kind == OpKind::kDelete; }));
    if (held > 0) {
      std::erase_if(batch->ops, [](const Op& op) { return op.kind == OpKind::kDelete; });
      LogError("{}: source {} is empty but {} holds {} entries: not deleting them (is the "
               "source's filesystem mounted?). If the source is meant to be empty, delete them "
               "on the standby by hand",
               config_.name, config_.source, replica_->Describe(), peer.size() - 1);
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
  std::unordered_set<std::string> peer_dirs{""};
  for (const Entry& e : peer)
    if (e.type == FileType::kDir) peer_dirs.insert(e.path);
  ChangeBatch small;
  small.id = batch->id;
  small.oldest_change = oldest;
  for (Op& op : batch->ops) {
    if (LargeLane::Takes(op) && peer_dirs.contains(ParentOf(op.entry.path)))
      lane_.Enqueue(std::move(op), oldest);
    else
      small.ops.push_back(std::move(op));
  }
  Send(std::move(small));
}

void SyncRunner::OnEvent(const FsEvent& event) {
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
  in_flight_ = true;
  in_flight_ops_ = batch.ops.size();
  in_flight_oldest_ = batch.oldest_change;
  auto shared = std::make_shared<ChangeBatch>(std::move(batch));
  std::weak_ptr<bool> alive = alive_;
  LogDebug("Delay", "{}: sending batch {} with {} operations", config_.name, shared->id,
           shared->ops.size());
  ChangeBatch copy = *shared;
  auto sent = Clock::now();
  replica_->Apply(std::move(copy), [this, alive, shared, sent](BatchResult r) {
    if (!alive.lock() || !*alive.lock()) return;
    LogDebug("Delay", "{}: batch {} durable after {:.1f} ms", config_.name, shared->id,
             std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    OnApplied(*shared, std::move(r));
  });
}

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
  engine_.PeerDirChanged(parent);
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
  engine_.Committed(batch, result.failures, result.sent_hashes);
  engine_.KeptOnPeer(result.kept);
  last_success_ = std::chrono::system_clock::now();
  std::unordered_set<std::string> refused;
  for (const OpFailure& f : result.failures) refused.insert(f.path);
  for (const Op& op : batch.ops) {
    if (refused.contains(op.entry.path)) continue;
    if (failed_.Succeeded(op.entry.path))
      LogInfo("{}: {}: replicated now", config_.name, op.entry.path.empty() ? "." : op.entry.path);
    ++operations_;
    if (op.kind != OpKind::kPut) continue;
    bytes_ += op.entry.size;
    // A file renamed or removed while it was being sent (an editor's or a writer's temporary
    // file) arrived under a name it no longer has: look at that name again, so the peer loses
    // it too, even if its events were handled before this batch committed.
    struct stat st;
    if (::lstat(op.source_path.c_str(), &st) != 0 || st.st_ino != op.entry.ino)
      batcher_.Add(op.entry.path, Clock::now());
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
  if (engine_.TakeNeedsRelist()) {
    LogWarn("{}: a rename failed on {}; comparing with a fresh listing", config_.name,
            replica_->Describe());
    phase_ = Phase::kReconciling;
    std::weak_ptr<bool> alive = alive_;
    replica_->List([this, alive](Result<Listing> l) {
      if (alive.lock() && *alive.lock()) OnListed(std::move(l));
    });
    return false;
  }
  // Backoff for paths the peer keeps refusing (a full or read-only disk); a clean batch ends it.
  if (later.empty() && result.failures.empty()) failed_.CleanBatch();
  RetryLater(std::move(later));
  return true;
}

void SyncRunner::Hurry() {
  if (watcher_) watcher_->Flush();
  if (!failed_.empty() && phase_ == Phase::kLive) {
    // Every failing path is tried once more now, whatever its pause.
    uv_timer_stop(retry_timer_.get());
    failed_.TakeRetries();
    for (const std::string& p : failed_.Paths()) batcher_.Add(p, Clock::now());
  }
  hurry_ = true;
  Pump();
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

void SyncRunner::Reconciled() {
  phase_ = Phase::kLive;
  LogInfo("{}: in sync with {}", config_.name, replica_->Describe());
  if (hooks_.on_status) hooks_.on_status(config_.name + ": in sync");
  if (!live_) {
    live_ = true;
    if (hooks_.on_in_sync) hooks_.on_in_sync();
  }
  Pump();
}

void SyncRunner::ConnectionLost(const Error& error) {
  if (phase_ == Phase::kStopped || phase_ == Phase::kWaitingRetry) return;
  in_flight_ = false;
  phase_ = Phase::kWaitingRetry;
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
  backoff_ms_ = backoff_ms_ == 0 ? kFirstBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t wait = backoff_ms_ / 2 + rng() % (backoff_ms_ / 2 + 1);  // Jitter: 50-100%.
  LogError("{}: {}; retrying in {:.1f} s", config_.name, error.message,
           static_cast<double>(wait) / 1000);
  if (hooks_.on_status)
    hooks_.on_status(fmt::format("{}: peer unreachable, retrying in {:.0f} s", config_.name,
                                 static_cast<double>(wait) / 1000));
  ArmTimer(wait);
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
  bool all = drain_done_ || hurry_;
  if (!delete_hold_.empty() && (all || delete_hold_.Due(now))) ReleaseDeletes();
  ArmHoldTimer();  // Also when it woke a little early (libuv's clock lags behind).
  if (need_rescan_) {
    need_rescan_ = false;
    batcher_.Take(now + std::chrono::hours(24 * 365));
    planning_since_ = now;
    auto batch = engine_.PlanRescan();
    Planned();
    if (!batch) {
      LogError("{}: rescan: {}", config_.name, batch.error().message);
    } else if (!batch->ops.empty()) {
      batch->oldest_change = now;
      return Send(std::move(*batch));
    }
  }
  if (batcher_.empty() && delete_hold_.empty()) hurry_ = false;
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
    ChangeBatch batch = engine_.PlanChanges(released->renames, released->paths);
    Planned();
    if (!failed_.empty()) ForgetSettled(released->paths, batch);
    // Large files and deltas take their own lane; the rest goes now.
    ChangeBatch small;
    small.id = batch.id;
    small.oldest_change = released->oldest;
    for (Op& op : batch.ops) {
      if (LargeLane::Takes(op))
        lane_.Enqueue(std::move(op), released->oldest);
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
    watcher_->Flush();  // Take in what the kernel already queued, then stop watching.
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
  bool finished = phase_ == Phase::kStopped ||
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
