// SyncRunner's policy against a fake file system, watcher and peer, on a real loop with short
// pauses: reconnecting, the clean-stop drain, the delete hold, the large-file lane, and what
// each kind of failure leads to. Each test runs in milliseconds.
#include "syncd/sync_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/fakes/fake_fs.h"
#include "tests/fakes/fake_replica.h"
#include "tests/temp_dir.h"

namespace syncd {
namespace {

using std::chrono::milliseconds;
using testing::FakeFileSystem;
using testing::FakeReplica;
using testing::FakeWatcher;
using testing::PeerScript;

class SyncRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    config_.name = "Sync1";
    config_.source = fs_.root();
    config_.target_dir = "/dst";
    config_.delete_hold = 0;
  }
  void TearDown() override {
    runner_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);  // Close callbacks.
    uv_loop_close(&loop_);
  }
  void Start(bool insist = false) {
    RunnerSeams seams;
    seams.fs = &fs_;
    seams.watcher = [this](const Filter&) {
      auto w = std::make_unique<FakeWatcher>();
      watcher_ = w.get();
      return w;
    };
    seams.first_backoff = milliseconds(5);
    seams.max_backoff = milliseconds(20);
    seams.first_retry = milliseconds(5);
    seams.max_retry = milliseconds(20);
    SyncRunner::Hooks hooks;
    hooks.on_fatal = [this](const Error& e) { fatal_ = e.message; };
    hooks.on_in_sync = [this] { ++in_sync_; };
    runner_ = std::make_unique<SyncRunner>(
        &loop_, config_, insist,
        [this] {
          ++replicas_;
          return std::make_unique<FakeReplica>(&loop_, peer_);
        },
        std::move(hooks), std::move(seams));
    runner_->Start();
  }
  // Runs the loop until `done` holds; false if it never does (a hang, reported by the test).
  bool RunUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 20000; ++i) {
      if (done()) return true;
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return done();
  }
  void Changed(const std::string& path) { watcher_->Emit(FsEvent{FsEvent::Kind::kChanged, path, {}, false}); }
  SyncStatus Status() { return runner_->Status(Clock::now()); }

  uv_loop_t loop_;
  FakeFileSystem fs_;
  SyncConfig config_;
  PeerScript peer_;
  FakeWatcher* watcher_ = nullptr;
  std::unique_ptr<SyncRunner> runner_;
  std::string fatal_;
  int in_sync_ = 0;
  int replicas_ = 0;
};

TEST_F(SyncRunnerTest, ComparesWithThePeerThenSendsChangesAsTheyCome) {
  fs_.File("a", "x");
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; })) << fatal_;
  EXPECT_EQ(peer_.lists, 1);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "a"), 1);
  fs_.File("b", "y");
  Changed("b");
  ASSERT_TRUE(RunUntil([&] { return peer_.Count(OpKind::kPut, "b") == 1; }));
  EXPECT_TRUE(RunUntil([&] { return Status().state == "in sync"; })) << Status().state;
}

TEST_F(SyncRunnerTest, APeerDownAtStartIsFatalUnlessInsisting) {
  peer_.refuse_connects = 1;
  Start(/*insist=*/false);
  ASSERT_TRUE(RunUntil([&] { return !fatal_.empty(); }));
  EXPECT_EQ(peer_.connects, 1);
}

// Reconnecting backs off (5, 10, 20, 20 ms here) until the peer answers, then compares.
TEST_F(SyncRunnerTest, ReconnectsWithBackoffUntilThePeerAnswers) {
  fs_.File("a", "x");
  peer_.refuse_connects = 4;
  Start(/*insist=*/true);
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; })) << fatal_;
  EXPECT_EQ(peer_.connects, 5);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "a"), 1);
  EXPECT_EQ(Status().reconnects, 0u);
}

// A connection lost while live is made again, and the tree compared with a fresh listing:
// changes made meanwhile go over.
TEST_F(SyncRunnerTest, ALostConnectionIsComparedAgainAfterReconnecting) {
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  peer_.refuse_connects = peer_.connects + 2;  // Down for two attempts.
  peer_.lost(Error{"Connection reset by peer", ECONNRESET});
  fs_.File("c", "made while the peer was away");
  ASSERT_TRUE(RunUntil([&] { return peer_.lists == 2 && peer_.Count(OpKind::kPut, "c") == 1; }));
  EXPECT_TRUE(RunUntil([&] { return Status().state == "in sync"; }));
  EXPECT_GE(Status().reconnects, 1u);
}

// A stop sends what is pending, whatever the delay, then reports whether it all arrived.
TEST_F(SyncRunnerTest, ADrainSendsWhatIsPendingThenReports) {
  config_.delay = 3600;  // Nothing would go for an hour.
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  fs_.File("pending", "x");
  Changed("pending");
  EXPECT_EQ(peer_.Count(OpKind::kPut, "pending"), 0);
  std::optional<bool> delivered;
  runner_->Drain([&](bool ok) { delivered = ok; });
  ASSERT_TRUE(RunUntil([&] { return delivered.has_value(); }));
  EXPECT_TRUE(*delivered);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "pending"), 1);
}

TEST_F(SyncRunnerTest, ADrainThatCannotReachThePeerSaysSo) {
  config_.delay = 3600;
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  fs_.File("pending", "x");
  Changed("pending");
  peer_.answer = [](const ChangeBatch&) {
    return BatchResult{std::unexpected(Error{"Broken pipe", EPIPE}), {}, {}, {}};
  };
  peer_.refuse_connects = 1000;
  std::optional<bool> delivered;
  runner_->Drain([&](bool ok) { delivered = ok; });
  ASSERT_TRUE(RunUntil([&] { return delivered.has_value(); }));
  EXPECT_FALSE(*delivered);
}

// Once live, a deletion waits until deleting pauses; one whose source root went away never
// goes (an unmounted source must not empty the standby).
TEST_F(SyncRunnerTest, DeletionsWaitForAPauseAndNeverFollowALostRoot) {
  config_.delete_hold = 0.05;
  fs_.File("x", "1");
  fs_.File("y", "2");
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  fs_.Remove("x");
  Changed("x");
  EXPECT_EQ(peer_.Count(OpKind::kDelete, "x"), 0);  // Held, not sent with the event.
  ASSERT_TRUE(RunUntil([&] { return peer_.Count(OpKind::kDelete, "x") == 1; }));

  fs_.Remove("y");
  Changed("y");
  fs_.Remove("");  // The whole source is gone (unmounted, deleted).
  ASSERT_TRUE(RunUntil([&] { return watcher_->stopped; }));  // The hold ended: root gone.
  EXPECT_EQ(peer_.Count(OpKind::kDelete, "y"), 0);
}

// A large file goes by a lane of its own (a second connection), so small files are not held
// up behind it.
TEST_F(SyncRunnerTest, LargeFilesTakeTheirOwnLane) {
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  EXPECT_EQ(replicas_, 1);
  fs_.File("big", "").size = 64 << 20;
  fs_.File("small", "s");
  Changed("big");
  Changed("small");
  ASSERT_TRUE(RunUntil([&] {
    return peer_.Count(OpKind::kPut, "big") == 1 && peer_.Count(OpKind::kPut, "small") == 1;
  }));
  EXPECT_EQ(replicas_, 2);
  for (const ChangeBatch& b : peer_.applied) {
    bool big = false, small = false;
    for (const Op& op : b.ops) {
      big = big || op.entry.path == "big";
      small = small || op.entry.path == "small";
    }
    EXPECT_FALSE(big && small) << "the large file shared a batch with a small one";
  }
}

// What the replica says about each failure decides what happens next.
TEST_F(SyncRunnerTest, EachFailureIsHandledAsTheReplicaClassifiedIt) {
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  std::map<std::string, std::pair<Retry, int>> fail;  // path -> (how, failures left)
  peer_.answer = [&](const ChangeBatch& b) {
    BatchResult r{{}, {}, {}, {}};
    for (const Op& op : b.ops) {
      auto it = fail.find(op.entry.path);
      if (it == fail.end() || it->second.second == 0) continue;
      --it->second.second;
      r.failures.push_back(OpFailure{op.entry.path, Error{"refused", EIO}, true, it->second.first});
    }
    return r;
  };
  fail["now"] = {Retry::kNow, 1};
  fail["locked"] = {Retry::kWhenWriterDone, 1};
  fail["disk"] = {Retry::kBackOff, 3};
  fail["old_peer"] = {Retry::kWhenChanged, 1};
  for (const char* p : {"now", "locked", "disk", "old_peer"}) {
    fs_.File(p, "x");
    Changed(p);
  }
  // Resent at once; after the writer's pause; after growing pauses, reported meanwhile.
  ASSERT_TRUE(RunUntil([&] {
    return peer_.Count(OpKind::kPut, "now") == 2 && peer_.Count(OpKind::kPut, "locked") == 2 &&
           peer_.Count(OpKind::kPut, "disk") == 4;
  }));
  // A path the peer cannot take as it is waits for a change, and is reported until then.
  EXPECT_EQ(peer_.Count(OpKind::kPut, "old_peer"), 1);
  ASSERT_TRUE(RunUntil([&] { return Status().failing == 1; }));
  EXPECT_EQ(Status().failing_paths, std::vector<std::string>{"old_peer"});
  EXPECT_EQ(Status().failures, 4u);  // Three of "disk", one of "old_peer".
  EXPECT_NE(Status().state, "in sync");
  Changed("old_peer");
  ASSERT_TRUE(RunUntil([&] { return Status().failing == 0 && Status().state == "in sync"; }));
  EXPECT_EQ(peer_.Count(OpKind::kPut, "old_peer"), 2);
}

// A flush tries failing paths at once and learns which failed again since it asked.
TEST_F(SyncRunnerTest, SendingPendingNowRetriesFailingPathsAtOnce) {
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  peer_.answer = [](const ChangeBatch& b) {
    BatchResult r{{}, {}, {}, {}};
    for (const Op& op : b.ops)
      if (op.entry.path == "bad")
        r.failures.push_back(OpFailure{"bad", Error{"Input/output error", EIO}, false, Retry::kWhenChanged});
    return r;
  };
  fs_.File("bad", "x");
  Changed("bad");
  ASSERT_TRUE(RunUntil([&] { return Status().failing == 1; }));
  auto asked = Clock::now();
  EXPECT_FALSE(runner_->DurableBefore(asked));
  EXPECT_TRUE(runner_->FailedSince(asked).empty());
  runner_->SendPendingNow();
  ASSERT_TRUE(RunUntil([&] { return !runner_->FailedSince(asked).empty(); }));
  EXPECT_EQ(runner_->FailedSince(asked), std::vector<std::string>{"bad: Input/output error"});
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

// Generations: the standby's history is read at each connection, before anything is listed.
class SyncRunnerHistoryTest : public SyncRunnerTest {
 protected:
  void SetUp() override {
    SyncRunnerTest::SetUp();
    config_.state_dir = state_ / "state";
    config_.divergence_limit_s = 60;
  }
  // The standby's history: an epoch of another node with changes over `seconds`, none of
  // which this node received.
  static PeerHistory Other(double seconds) {
    PeerHistory h;
    h.state = PeerHistory::State::kPresent;
    h.node = "bbbbbbbbbbbbbbbb";
    EpochRecord e;
    e.node = h.node;
    e.host = "osm1";
    e.counter = 3;
    e.started = 1000000000;
    e.first = 2000000000;
    e.through = e.first + static_cast<int64_t>(seconds * 1e9);
    e.changes = 40;
    h.lineage.push_back(e);
    return h;
  }
  ::syncd::testing::TempDir state_{"runner-history"};
};

TEST_F(SyncRunnerHistoryTest, AStandbyWithHoursOfUnseenChangesIsNotTouched) {
  fs_.File("a", "x");
  peer_.history = Other(3 * 3600);
  Start();
  ASSERT_TRUE(RunUntil([&] { return Status().state == "diverged"; })) << Status().state;
  EXPECT_EQ(peer_.lists, 0);
  EXPECT_TRUE(peer_.applied.empty());
  // Changes keep being recorded, not sent.
  fs_.File("b", "y");
  Changed("b");
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_TRUE(peer_.applied.empty());
  EXPECT_EQ(Status().state, "diverged");

  // The operator overwrites it: compared and sent as usual, the standby's lineage replaced.
  ASSERT_TRUE(runner_->Resolve(SyncRunner::Resolution::kOverwrite));
  ASSERT_TRUE(RunUntil([&] { return Status().state == "in sync"; })) << Status().state;
  EXPECT_EQ(peer_.Count(OpKind::kPut, "a"), 1);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "b"), 1);
  ASSERT_FALSE(peer_.applied.empty());
  ASSERT_TRUE(peer_.applied.front().stamp);
  EXPECT_TRUE(peer_.applied.front().stamp->replace);
  EXPECT_FALSE(runner_->Resolve(SyncRunner::Resolution::kOverwrite));  // Nothing to resolve.
}

TEST_F(SyncRunnerHistoryTest, UnseenChangesWithinTheLimitAreOverwrittenAsUsual) {
  fs_.File("a", "x");
  peer_.history = Other(0.02);  // The changes in flight of an ordinary failover.
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; })) << Status().state;
  EXPECT_EQ(peer_.histories, 1);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "a"), 1);
}

TEST_F(SyncRunnerHistoryTest, AStandbyWithoutHistoryIsComparedAsUsual) {
  fs_.File("a", "x");
  Start();  // An older peer: History() is not supported.
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; })) << Status().state;
  EXPECT_EQ(peer_.Count(OpKind::kPut, "a"), 1);
}

TEST_F(SyncRunnerHistoryTest, BatchesCarryWhatTheStandbyHoldsOnceDurable) {
  fs_.File("a", "x");
  peer_.history = PeerHistory{PeerHistory::State::kNewNode, "cccccccccccccccc", "", {}};
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  ASSERT_TRUE(peer_.applied.back().stamp);
  const HistoryStamp& first = *peer_.applied.back().stamp;
  EXPECT_TRUE(first.replace);
  ASSERT_EQ(first.epochs.size(), 1u);
  EXPECT_EQ(first.epochs[0].counter, 1u);
  int64_t before = WallNow();
  fs_.File("b", "y");
  Changed("b");
  ASSERT_TRUE(RunUntil([&] { return peer_.Count(OpKind::kPut, "b") == 1; }));
  const HistoryStamp& live = *peer_.applied.back().stamp;
  EXPECT_FALSE(live.replace);
  ASSERT_EQ(live.epochs.size(), 1u);
  EXPECT_EQ(live.epochs[0].changes, 1u);
  EXPECT_GE(live.epochs[0].through, before);
  EXPECT_EQ(live.epochs[0].unconfirmed_since, 0);
}

TEST_F(SyncRunnerHistoryTest, AdoptingBringsTheStandbysNewerFilesHereFirst) {
  fs_.File("old", "here").meta.mtime_sec = 100;
  fs_.File("same", "here").meta.mtime_sec = 500;
  Entry newer;
  newer.path = "old";
  newer.type = FileType::kFile;
  newer.meta.mtime_sec = 200;  // Newer on the standby.
  Entry older = newer;
  older.path = "same";
  older.meta.mtime_sec = 400;  // Older there: this node's stays.
  Entry only;
  only.path = "only-there";
  only.type = FileType::kFile;
  only.meta.mtime_sec = 50;
  peer_.peer = {newer, older, only};
  peer_.history = Other(3 * 3600);
  peer_.on_fetch = [&](const Entry& e) { fs_.File(e.path, "adopted").meta.mtime_sec = e.meta.mtime_sec; };
  Start();
  ASSERT_TRUE(RunUntil([&] { return Status().state == "diverged"; }));
  ASSERT_TRUE(runner_->Resolve(SyncRunner::Resolution::kAdopt));
  ASSERT_TRUE(RunUntil([&] { return Status().state == "in sync"; })) << Status().state;
  EXPECT_EQ(peer_.fetched, (std::vector<std::string>{"old", "only-there"}));
  // Nothing adopted is deleted from the standby by the comparison that follows.
  EXPECT_EQ(peer_.Count(OpKind::kDelete, "only-there"), 0);
  EXPECT_EQ(peer_.Count(OpKind::kPut, "same"), 1);
  // This node's tree now holds the standby's epoch: a restart finds nothing unseen there.
  auto state = StateDir::Open(config_.state_dir);
  ASSERT_TRUE(state);
  runner_.reset();
  auto h = TreeHistory::Load(*state, fs_.root());
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_TRUE(FindUnseen(h->lineage(), Other(3 * 3600).lineage, state->node_id()).empty());
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

// Warm restart: a restart on the same node compares the tree with the manifest of what the
// standby holds, without listing it, when the standby's lineage is the one recorded.
class SyncRunnerResumeTest : public SyncRunnerTest {
 protected:
  void SetUp() override {
    SyncRunnerTest::SetUp();
    config_.state_dir = state_ / "state";
    peer_.history = PeerHistory{PeerHistory::State::kNewNode, "cccccccccccccccc", "", {}};
  }
  void Restart() {
    runner_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    in_sync_ = 0;
    Start();
    ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; })) << Status().state;
  }
  ::syncd::testing::TempDir state_{"runner-resume"};
};

TEST_F(SyncRunnerResumeTest, ARestartComparesWithTheManifestInsteadOfListing) {
  fs_.File("a", "x");
  fs_.Dir("d");
  fs_.File("d/b", "y");
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  fs_.File("d/c", "live");
  Changed("d/c");
  ASSERT_TRUE(RunUntil([&] { return peer_.Count(OpKind::kPut, "d/c") == 1; }));
  fs_.Remove("a");
  Changed("a");
  ASSERT_TRUE(RunUntil([&] { return peer_.Count(OpKind::kDelete, "a") == 1; }));
  ASSERT_TRUE(RunUntil([&] { return Status().state == "in sync"; }));
  EXPECT_EQ(peer_.lists, 1);

  fs_.File("while-down", "z");  // Made while syncd was not running.
  size_t before = peer_.applied.size();
  Restart();
  EXPECT_EQ(peer_.lists, 1);  // Not listed again.
  EXPECT_EQ(peer_.Count(OpKind::kPut, "while-down"), 1);
  // Nothing the standby holds was sent again, and nothing was deleted there.
  for (size_t i = before; i < peer_.applied.size(); ++i)
    for (const Op& op : peer_.applied[i].ops)
      EXPECT_TRUE(op.entry.path == "while-down" || op.kind == OpKind::kSetMeta) << op.entry.path;
}

TEST_F(SyncRunnerResumeTest, AStandbyWhoseLineageMovedOnIsListed) {
  fs_.File("a", "x");
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  ASSERT_FALSE(peer_.history->lineage.empty());
  ++peer_.history->lineage.back().changes;  // It holds a batch this node did not record.
  peer_.history->lineage.back().through += 1;
  Restart();
  EXPECT_EQ(peer_.lists, 2);
}

TEST_F(SyncRunnerResumeTest, ADamagedManifestIsListedNotTrusted) {
  fs_.File("a", "x");
  Start();
  ASSERT_TRUE(RunUntil([&] { return in_sync_ == 1; }));
  runner_.reset();
  auto state = StateDir::Open(config_.state_dir);
  ASSERT_TRUE(state);
  std::string file = Manifest::FileFor(*state, fs_.root());
  ASSERT_EQ(::truncate(file.c_str(), 20), 0);
  Restart();
  EXPECT_EQ(peer_.lists, 2);
}

}  // namespace
}  // namespace syncd
