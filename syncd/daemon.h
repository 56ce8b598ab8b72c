// Daemon runs every sync of a configuration on one libuv loop until it is told to stop:
// SIGTERM and SIGINT stop watching, send what is pending (bounded by a timeout) and exit 0.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <vector>

#include "syncd/active_mark.h"
#include "syncd/config.h"
#include "syncd/notify.h"
#include "syncd/replica.h"
#include "syncd/sync_runner.h"

namespace syncd {

class Daemon {
 public:
  using ReplicaFactory =
      std::function<std::unique_ptr<Replica>(uv_loop_t*, const SyncConfig&)>;
  Daemon(Config config, ReplicaFactory factory);
  ~Daemon();

  // Runs until stopped; returns the process exit status.
  int Run();

  // How long a clean stop waits for pending changes to reach the peer.
  static constexpr uint64_t kStopTimeoutMs = 30000;

 private:
  void Stop(const char* why);
  void Finish(int status);
  void OnFatal(size_t index, const Error& error);
  // Rewrites statusFile (and its JSON) and metricsFile, if configured.
  void WriteStatus();

  Config config_;
  ReplicaFactory factory_;
  uv_loop_t loop_;
  std::vector<std::unique_ptr<SyncRunner>> runners_;
  std::vector<ActiveMark> marks_;  // This node is the active one for these sources.
  std::vector<bool> running_;
  std::vector<uv_signal_t*> signals_;
  uv_timer_t* stop_timer_ = nullptr;
  uv_timer_t* watchdog_timer_ = nullptr;
  uv_timer_t* status_timer_ = nullptr;
  bool status_error_logged_ = false;
  Notifier notifier_;
  size_t in_sync_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
  int status_ = 0;
};

}  // namespace syncd
