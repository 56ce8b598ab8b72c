// LayerSync, continued: the replication beneath layers over default.rsync, rsyncssh or
// direct. Their action and init hand events to it through a watcher of the layers' making, and
// hear back, as a process that exited with 0, once the events are durable on the target.
#include "lua/layer_sync.h"

#include <utility>

#include "syncd/log.h"
#include "syncd/sync_runner.h"

namespace syncd::lua {

// What the replication beneath the layers takes for its watcher: the events the layers'
// action hands over.
class LayerSync::FeedWatcher : public Watcher {
 public:
  Result<void> Start(Handler handler) override {
    handler_ = std::move(handler);
    return {};
  }
  void Stop() override { handler_ = nullptr; }
  void ReadQueued() override {}
  uint64_t events_read() const override { return events_; }
  size_t watch_count() const override { return 0; }
  bool Push(const FsEvent& e) {
    if (!handler_) return false;
    ++events_;
    handler_(e);
    return true;
  }

 private:
  Handler handler_;
  uint64_t events_ = 0;
};

void LayerSync::MakeEngine(bool insist, PeerConnector connect) {
  SyncConfig engine = config_;
  engine.layers = nullptr;
  engine.delay = std::nullopt;  // The layers' queue holds the events for their delay.
  Hooks h;
  h.on_fatal = [this](const Error& e) { Fail(e.message); };
  h.on_in_sync = [this] {
    engine_in_sync_ = true;
    if (engine_start_pid_ != 0) {
      due_exits_.emplace_back(std::exchange(engine_start_pid_, 0), 0);
      Arm();
    }
  };
  h.on_diverged = [this] {
    if (hooks_.on_diverged) hooks_.on_diverged();
  };
  h.on_status = [this](const std::string& status) {
    if (hooks_.on_status) hooks_.on_status(status);
  };
  h.on_progress = [this] { OnEngineProgress(); };
  RunnerSeams seams;
  seams.watcher = [this](const Filter&) {
    auto w = std::make_unique<FeedWatcher>();
    feed_ = w.get();
    return w;
  };
  engine_ = std::make_unique<SyncRunner>(loop_, engine, insist, std::move(connect), std::move(h), seams);
}

int LayerSync::EngineStart() {
  int pid = next_pseudo_pid_--;
  if (engine_in_sync_)
    due_exits_.emplace_back(pid, 0);
  else
    engine_start_pid_ = pid;
  return pid;
}

int LayerSync::Feed(const std::vector<FsEvent>& events) {
  int pid = next_pseudo_pid_--;
  for (const FsEvent& e : events) {
    if (!feed_ || !feed_->Push(e)) {
      LogError("{}: the replication is not running; {} events not sent", config_.name, events.size());
      due_exits_.emplace_back(pid, 255);
      return pid;
    }
  }
  fed_.push_back(Fed{pid, Clock::now()});
  return pid;
}

void LayerSync::OnEngineProgress() {
  // A batch handed over is done once every change noticed before it is durable.
  while (!fed_.empty() && engine_ && engine_->DurableBefore(fed_.front().at)) {
    int pid = fed_.front().pid;
    fed_.erase(fed_.begin());
    due_exits_.emplace_back(pid, 0);
  }
  if (!due_exits_.empty()) Arm();
  if (hooks_.on_progress) hooks_.on_progress();
}

}  // namespace syncd::lua
