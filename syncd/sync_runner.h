// SyncRunner drives one sync{} on the loop: watches, reconciles with the peer, then ships
// batches as changes arrive, one batch in flight at a time so that changes arriving meanwhile
// gather into the next one. Reconnects with backoff when the peer goes away.
#pragma once

#include <uv.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <unordered_set>

#include "syncd/active_history.h"
#include "syncd/batcher.h"
#include "syncd/delete_hold.h"
#include "syncd/failed_paths.h"
#include "syncd/file_system.h"
#include "syncd/large_lane.h"
#include "syncd/manifest.h"
#include "syncd/life_token.h"
#include "syncd/replica.h"
#include "syncd/status.h"
#include "syncd/sync_engine.h"
#include "syncd/sync_planner.h"
#include "syncd/uv_handle.h"
#include "syncd/watcher.h"

namespace syncd {

// What the runner works with besides the peer, replaceable (tests run the runner against a
// fake file system and watcher, with short pauses).
struct RunnerSeams {
  // The source's file system, which must outlive the runner; null: the disk.
  FileSystem* fs = nullptr;
  // Makes a watcher of the source with the sync's current filter; null: inotify.
  std::function<std::unique_ptr<Watcher>(const Filter&)> watcher;
  // Reconnecting: the first pause, doubled up to the last, each with 50-100% jitter.
  std::chrono::milliseconds first_backoff{1000}, max_backoff{10000};
  // Paths that keep failing: the first pause before a retry, doubled up to the last.
  std::chrono::milliseconds first_retry{2000}, max_retry{60000};
};

class SyncRunner : public SyncEngine {
 public:
  using Seams = RunnerSeams;

  // `loop` must outlive the runner. `connect` makes the connection to the peer, and a second
  // one for the large-file lane when a large file needs it.
  SyncRunner(uv_loop_t* loop, const SyncConfig& config, bool insist, PeerConnector connect,
             Hooks hooks, Seams seams = {});
  ~SyncRunner() override;

  void Start() override;
  // Stops watching, sends what is pending, and calls `done` once nothing is left in flight,
  // with whether everything reached the peer. A sync waiting to reconnect tries once more at
  // once; a peer that cannot be reached ends the drain. Used for a clean stop.
  void Drain(std::function<void(bool delivered)> done) override;

  // New filter rules (a reloaded config): the watches are set again, the peer told what to
  // keep, and the tree compared with what the peer is known to hold, on the same
  // connection, without listing it again.
  void SetFilterRules(const std::vector<std::string>& rules) override;

  // For `syncd flush`: reads what the kernel has queued for the watches (the changes made
  // before this call) and sends everything pending now, whatever the delay.
  // Paths waiting for a retry after a failure are tried again now.
  void SendPendingNow() override;
  // Paths whose latest attempt, made after `t`, failed: "path: reason", a few at most. A flush
  // that waits for them is answered with these.
  std::vector<std::string> FailedSince(TimePoint t) const override;
  // Every change noticed before `t` is durable on the peer.
  bool DurableBefore(TimePoint t) const override {
    if (phase_ != Phase::kLive || need_rescan_) return false;
    auto oldest = OldestUnacked();
    return !oldest || *oldest > t;
  }

  // The operator's answer to a standby that diverged: false if the sync is not waiting for one.
  bool Resolve(Resolution how) override;
  bool diverged() const override { return phase_ == Phase::kDiverged; }
  // In sync after a resolution (or stopped): what a resolution request waits for.
  bool Settled() const override { return phase_ == Phase::kStopped || phase_ == Phase::kDiverged || (phase_ == Phase::kLive && live_); }

  const std::string& name() const { return config_.name; }
  // What the status files show of this sync now.
  SyncStatus Status(TimePoint now) const override;

 private:
  enum class Phase {
    kIdle, kConnecting, kHistory, kAdopting, kReconciling, kLive, kWaitingRetry, kStopped,
    kDiverged,  // The standby holds changes this node never received: it is not touched.
  };

  std::unique_ptr<Watcher> MakeWatcher();
  void Connect();
  void OnConnected(Result<void> result);
  void OnListed(Result<Listing> listing);
  // The first comparison with what the standby holds (listed, or known from the manifest).
  void Compare(PeerMap peer);
  // Generations (runner_history.cc): the standby's history at each connection, the verdict,
  // the operator's resolution, and the stamps on batches.
  void BeginHistory();
  void OnHistory(Result<PeerHistory> history);
  void Diverged(const Judgement& j, const PeerHistory& peer);
  void AdoptFrom(Listing peer);
  void AdoptNext(std::shared_ptr<Listing> peer, std::shared_ptr<std::vector<size_t>> todo, size_t at);
  // Stamps `batch` with what the standby holds once it is durable (with `replace`: the batch
  // completes a comparison); `rest` is the oldest change not in it or before it.
  void StampBatch(ChangeBatch& batch, bool replace, std::optional<TimePoint> rest);
  void SaveHistory();
  static void OnHistoryTimer(uv_timer_t* timer) noexcept;
  // Records in the manifest what a durable batch changed on the standby (a snapshot after a
  // comparison, and when the journal has grown).
  void RecordManifest(const ChangeBatch& batch, const std::vector<OpFailure>& failures);
  void OnEvent(const FsEvent& event);
  void Reconciled();
  void Send(ChangeBatch batch);
  void OnApplied(const ChangeBatch& batch, BatchResult result);
  void OnLaneDone(const ChangeBatch& batch, BatchResult result);
  // Records a completed batch and schedules its failures again. False if the connection broke
  // or the peer must be listed again (handled here).
  bool Absorb(const ChangeBatch& batch, BatchResult& result);
  // Takes what the batcher has ready, minus what must wait for the large-file lane.
  std::optional<Batcher::Released> TakeReleasable(TimePoint now, bool all);
  void RetryLater(std::vector<std::string> paths);
  // Failing paths among `paths` for which the plan has nothing to send stop failing.
  void ForgetSettled(const std::vector<std::string>& paths, const ChangeBatch& batch);
  void ConnectionLost(const Error& error);
  // Sends what is due, then tells on_progress.
  void Pump();
  void PumpOnce();
  void ArmTimer(uint64_t ms);
  static void OnTimer(uv_timer_t* timer) noexcept;
  void MaybeFinishDrain();
  // The source directory holds nothing at all (not even excluded files).
  bool SourceIsEmpty() const;
  // The removal gate (see SyncPlanner::SetRemovalGate): once live, a deletion waits in
  // `delete_hold_` until deleting pauses; none goes once the root is gone.
  bool MayRemove(const std::string& path);
  // Deleting has paused: what was held goes, if the source root is still the one watched.
  void ReleaseDeletes();
  // After each plan: forgets what was released for it, and wakes up when what it held is due.
  void Planned();
  void ArmHoldTimer();
  bool RootIntact() const;
  // The source root was deleted, moved, replaced or unmounted: nothing more is sent.
  void RootGone();
  // When the oldest change not yet durable on the peer happened.
  std::optional<TimePoint> OldestUnacked() const;

  uv_loop_t* loop_;
  SyncConfig config_;
  bool insist_;
  Seams seams_;
  std::unique_ptr<FileSystem> own_fs_;  // The disk, unless the seams give another.
  // The source scanned on a thread of its own from the start, while the standby answers (or
  // the manifest is read): used by the first comparison if no change came in meanwhile.
  std::future<Result<Listing>> prescan_;
  uint64_t events_at_prescan_ = 0;
  // Waits for the scan under way, if any, and forgets it.
  void DropPrescan();
  // The scan made from the start, if it can stand for a scan now (once).
  std::optional<Result<Listing>> TakePrescan();
  // What the standby holds, while the comparison waits for the scan: the loop goes on meanwhile
  // (signals, status requests, a lost connection, which drops it).
  std::optional<PeerMap> awaiting_scan_;
  UvHandle<uv_timer_t> scan_timer_;  // Looks for the end of the scan.
  FileSystem& fs_;
  SyncPlanner planner_;
  Batcher batcher_;
  std::unique_ptr<Watcher> watcher_;
  std::unique_ptr<Replica> replica_;
  LargeLane lane_;
  // Changes that wait for the large-file lane: paths of files in it, and a release whose
  // renames or deletes concern a directory above one (kept whole, so renames keep their order).
  std::vector<std::string> waiting_paths_;
  std::optional<Batcher::Released> held_;
  Hooks hooks_;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> retry_timer_;  // Paths the peer refused, tried again after a pause.
  UvHandle<uv_timer_t> hold_timer_;   // Held deletions are due.
  DeleteHold delete_hold_;
  std::unordered_set<std::string> cleared_;  // Released by the hold, for the next plan.
  // When the oldest change of the batch being planned was noticed: a deletion the hold keeps
  // back goes out, once released, as part of that batch's window.
  TimePoint planning_since_{};
  dev_t root_dev_ = 0;
  ino_t root_ino_ = 0;
  bool root_gone_ = false;
  FailedPaths failed_;  // Paths that keep failing, and their retries.
  std::optional<ActiveHistory> history_;  // None when it cannot be kept (said at start).
  UvHandle<uv_timer_t> history_timer_;    // Writes the history at most once a second.
  UvHandle<uv_timer_t> trim_timer_;       // Memory goes back once the comparison's batch is freed.
  std::optional<Resolution> resolution_;  // Asked for; applies at the next verdict.
  std::optional<PeerHistory> peer_history_;  // The standby's, while adopting.
  bool stamp_replace_ = false;  // The next stamp completes a comparison.
  std::string tree_;            // The source, resolved: the name of its history.
  Lineage peer_lineage_;        // What the standby's tree holds, by the stamps it made durable.
  std::optional<Manifest> manifest_;
  // The manifest found at start, read on a thread of its own while the tree is watched: the
  // standby's listing for the first comparison, if the standby's lineage is the one it records.
  std::future<Result<std::optional<Manifest::Contents>>> resume_;

  // For the status files.
  size_t in_flight_ops_ = 0;
  uint64_t events_handled_ = 0;  // Watcher events taken in since the start.
  TimePoint in_flight_oldest_{};
  uint64_t operations_ = 0, bytes_ = 0, failures_ = 0, reconnects_ = 0;
  // The comparison being sent: its size, and the counters when it started.
  struct ReconcileWork {
    uint64_t ops = 0, bytes = 0, ops_before = 0, bytes_before = 0;
    TimePoint started;
  };
  std::optional<ReconcileWork> reconcile_work_;
  std::optional<std::chrono::system_clock::time_point> last_success_;

  Phase phase_ = Phase::kIdle;
  bool live_ = false;          // The first reconcile has completed.
  bool in_flight_ = false;     // A batch is out and not yet acknowledged.
  bool need_rescan_ = false;   // An overflow happened; rescan once the batch in flight is done.
  bool ever_connected_ = false;
  uint64_t backoff_ms_ = 0;
  std::function<void(bool)> drain_done_;
  bool drain_delivered_ = true;
  bool send_now_ = false;  // Send what is pending now (a flush); cleared once nothing is.
  LifeToken life_;
};

}  // namespace syncd
