// FakeReplica and FakeWatcher: the runner's peer and watcher, driven by a test. Every replica a
// factory makes shares one PeerScript: how many connection attempts fail, what a listing
// returns, how each batch is answered; and it records what was asked. Answers arrive on the
// loop in a later turn, as from a real peer.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <optional>

#include "syncd/replica.h"
#include "syncd/uv_handle.h"
#include "syncd/watcher.h"

namespace syncd::testing {

struct PeerScript {
  int connects = 0;          // Connection attempts so far.
  int refuse_connects = 0;   // The first this many attempts fail (a peer that is down).
  int lists = 0;
  Listing peer;              // What a listing returns (the root, "", is added if missing).
  std::vector<ChangeBatch> applied;  // Every batch received, in order.
  // The answer to a batch; by default everything in it is durable.
  std::function<BatchResult(const ChangeBatch&)> answer;
  std::function<void(const Error&)> lost;  // How to break the live connection.
  // The peer's history; none: an older peer that keeps none.
  std::optional<PeerHistory> history;
  int histories = 0;  // History requests so far.
  std::vector<std::string> fetched;  // Paths copied from the peer (syncd adopt), in order.
  std::function<void(const Entry&)> on_fetch;  // Makes the copy here.

  // Whether any batch so far carried an operation of `kind` on `path`.
  int Count(OpKind kind, const std::string& path) const {
    int n = 0;
    for (const ChangeBatch& b : applied)
      for (const Op& op : b.ops)
        if (op.kind == kind && op.entry.path == path) ++n;
    return n;
  }
};

class FakeReplica : public Replica {
 public:
  FakeReplica(uv_loop_t* loop, PeerScript& script) : script_(script), timer_(MakeTimer(loop, this)) {}

  void Connect(std::function<void(Result<void>)> done) override {
    bool refused = script_.connects++ < script_.refuse_connects;
    Later([done, refused] {
      if (refused) return done(std::unexpected(Error{"Connection refused", ECONNREFUSED}));
      done({});
    });
  }
  void List(std::function<void(Result<Listing>)> done) override {
    ++script_.lists;
    Listing listing = script_.peer;
    bool has_root = false;
    for (const Entry& e : listing) has_root = has_root || e.path.empty();
    if (!has_root) {
      Entry root;
      root.type = FileType::kDir;
      root.meta.mode = 0755;
      listing.insert(listing.begin(), root);
    }
    Later([done, listing] { done(listing); });
  }
  void Apply(SharedBatch batch, std::function<void(BatchResult)> done) override {
    script_.applied.push_back(*batch);
    // A standby with history records what the batch brings its tree to.
    if (script_.history && batch->stamp) {
      ApplyStamp(script_.history->lineage, *batch->stamp);
      script_.history->state = PeerHistory::State::kPresent;
    }
    BatchResult result = script_.answer ? script_.answer(*batch) : BatchResult{{}, {}, {}, {}};
    Later([done, result] { done(result); });
  }
  void SetProtectRules(std::vector<std::string>) override {}
  void History(std::function<void(Result<PeerHistory>)> done) override {
    ++script_.histories;
    if (!script_.history) return Replica::History(std::move(done));
    PeerHistory h = *script_.history;
    Later([done, h] { done(h); });
  }
  void Fetch(const Entry& entry, const std::string&, std::function<void(Result<void>)> done) override {
    script_.fetched.push_back(entry.path);
    if (script_.on_fetch) script_.on_fetch(entry);
    Later([done] { done({}); });
  }
  void OnLost(std::function<void(const Error&)> handler) override { script_.lost = std::move(handler); }
  void Close() override {}
  std::string Describe() const override { return "fake peer"; }

 private:
  void Later(std::function<void()> f) {
    pending_.push_back(std::move(f));
    uv_timer_start(timer_.get(), [](uv_timer_t* t) {
      auto* self = static_cast<FakeReplica*>(t->data);
      auto pending = std::move(self->pending_);
      self->pending_.clear();
      for (auto& run : pending) run();
    }, 0, 0);
  }

  PeerScript& script_;
  UvHandle<uv_timer_t> timer_;
  std::deque<std::function<void()>> pending_;
};

class FakeWatcher : public Watcher {
 public:
  Result<void> Start(Handler handler) override {
    handler_ = std::move(handler);
    started = true;
    return {};
  }
  void Stop() override { stopped = true; }
  void ReadQueued() override {}
  uint64_t events_read() const override { return 0; }
  size_t watch_count() const override { return 1; }
  // A change the test made to the fake file system.
  void Emit(FsEvent event) {
    if (handler_ && !stopped) handler_(event);
  }

  bool started = false;
  bool stopped = false;

 private:
  Handler handler_;
};

}  // namespace syncd::testing
