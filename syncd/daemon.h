// Daemon runs every sync of a configuration on one libuv loop until it is told to stop:
// SIGTERM and SIGINT stop watching and send what is pending, bounded by stopTimeout; the exit
// status is 0 when everything reached the peer and 1 when changes were left behind (the peer
// unreachable, or the timeout). A second signal exits at once.
// SIGHUP reloads the configuration and applies the difference: syncs that did not change
// keep running untouched, new ones start, removed ones stop, a sync whose excludes changed
// keeps its connection and what it knows of the peer, and any other change restarts that
// sync. A configuration that does not load leaves the running one as it is.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "syncd/active_mark.h"
#include "syncd/config.h"
#include "syncd/control_server.h"
#include "syncd/loop_monitor.h"
#include "syncd/service_notifier.h"
#include "syncd/replica.h"
#include "syncd/sync_engine.h"
#include "syncd/sync_runner.h"

namespace syncd {

class Daemon {
 public:
  // Makes the PeerConnector of each sync.
  using ReplicaMaker =
      std::function<std::unique_ptr<Replica>(uv_loop_t*, const SyncConfig&)>;
  // Loads the configuration again, for SIGHUP.
  using Loader = std::function<Result<Config>()>;
  Daemon(Config config, ReplicaMaker make_replica, Loader loader = {});
  ~Daemon();

  // Serves `syncd flush` on this Unix socket (set before Run()).
  void SetControlSocket(std::string path) { control_path_ = std::move(path); }
  // Runs until stopped; returns the process exit status.
  int Run();

 private:
  void Stop(const char* why);
  void Finish(int status);
  // One sync and what the daemon knows of it.
  struct Slot {
    SyncConfig config;
    std::unique_ptr<SyncEngine> runner;  // A SyncRunner, or the sync's custom layers.
    std::optional<ActiveMark> mark;  // This node is the active one for the source.
    bool running = true;
    bool in_sync = false;
    bool diverged = false;  // Found its standby diverged (before it was ever in sync).
  };
  // Makes the runner of a sync (started unless stopping).
  std::unique_ptr<Slot> MakeSlot(const SyncConfig& sync);
  void OnFatal(Slot* slot, const Error& error);
  void Reload();
  // The control socket.
  void StartControl();
  void OnControlRequest(uint64_t client, const std::string& request);
  // Answers the flush requests whose changes are all durable (or cannot become so); called
  // when a request comes and whenever a sync reports progress.
  void CheckFlushes();
  // Rewrites statusFile (and its JSON) and metricsFile, if configured.
  void WriteStatus();
  // Starts, restarts or stops the timer of WriteStatus() as the settings say.
  void ScheduleStatus();
  // Once a second: how far the comparisons being sent are, on a terminal, in the log every
  // few seconds, and in STATUS.
  void ShowProgress();
  // READY=1, once.
  void NotifyReady(const std::string& status);

  Config config_;
  ReplicaMaker make_replica_;
  Loader loader_;
  uv_loop_t loop_;
  std::vector<std::unique_ptr<Slot>> slots_;
  bool ready_ = false;  // Every sync was in sync once.
  bool notified_ready_ = false;  // READY=1 was sent (earlier with readyWhen = "watching").
  UvHandle<uv_timer_t> progress_timer_;
  TimePoint progress_logged_{};
  bool progress_shown_ = false;
  std::string control_path_;
  std::unique_ptr<ControlServer> control_;
  struct FlushRequest {
    uint64_t client;  // The control connection waiting for the answer.
    TimePoint since;
  };
  std::vector<FlushRequest> flushes_;
  // `syncd adopt` or `syncd overwrite`, answered once the syncs it resumed are in sync.
  struct ResolveRequest {
    uint64_t client;
    std::string choice;
    std::vector<std::string> syncs;
  };
  std::vector<ResolveRequest> resolutions_;
  void CheckResolutions();
  // A sync is in sync or diverged: READY=1 once all of them are.
  void Settled();
  std::vector<UvHandle<uv_signal_t>> signals_;
  UvHandle<uv_timer_t> stop_timer_;
  UvHandle<uv_timer_t> watchdog_timer_;
  std::unique_ptr<LoopMonitor> loop_monitor_;
  UvHandle<uv_timer_t> status_timer_;
  bool status_error_logged_ = false;
  ServiceNotifier notifier_;
  bool stopping_ = false;
  bool finished_ = false;
  int status_ = 0;
};

}  // namespace syncd
