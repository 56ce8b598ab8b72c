// SyncEngine is what the daemon runs for one sync{}: SyncRunner (replication to a standby)
// or a sync of custom Lua layers (lua/layer_sync.h). The daemon starts, reloads, flushes,
// drains and reports them through this interface alone.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "syncd/change.h"
#include "syncd/config.h"
#include "syncd/error.h"
#include "syncd/replica.h"
#include "syncd/status.h"

typedef struct uv_loop_s uv_loop_t;

namespace syncd {

class SyncEngine {
 public:
  struct Hooks {
    // The sync cannot run at all (bad source, untrusted host key, refused key, the peer
    // unreachable at startup without `insist`, a layer that failed).
    std::function<void(const Error&)> on_fatal;
    // The startup work is done (for replication: the reconcile is durable on the peer).
    std::function<void()> on_in_sync;
    // The standby diverged: nothing is sent until the operator resolves it (Resolve()).
    std::function<void()> on_diverged;
    // A one-line account of what the sync is doing, for the service manager.
    std::function<void(const std::string&)> on_status;
    // Something was acknowledged, failed or found to have nothing to send: whatever waits on
    // the sync (a flush request) may look again.
    std::function<void()> on_progress;
  };
  // The operator's answer to a standby that diverged (`syncd adopt`, `syncd overwrite`).
  enum class Resolution { kAdopt, kOverwrite };

  virtual ~SyncEngine() = default;
  virtual void Start() = 0;
  // Stops watching, finishes what is pending, and calls `done` with whether everything was
  // delivered. Used for a clean stop.
  virtual void Drain(std::function<void(bool delivered)> done) = 0;
  // New filter rules (a reloaded config).
  virtual void SetFilterRules(const std::vector<std::string>& rules) = 0;
  // For `syncd flush`: act on everything pending now, whatever the delay.
  virtual void SendPendingNow() = 0;
  // What failed after `t`, "path: reason", a few at most.
  virtual std::vector<std::string> FailedSince(TimePoint t) const = 0;
  // Every change noticed before `t` is done with.
  virtual bool DurableBefore(TimePoint t) const = 0;
  // False if the sync is not waiting for a resolution.
  virtual bool Resolve(Resolution how) = 0;
  virtual bool diverged() const = 0;
  // Not waiting for anything a resolution request waits for.
  virtual bool Settled() const = 0;
  virtual SyncStatus Status(TimePoint now) const = 0;
};

// The custom layers of a configuration (its Lua state), able to run one of its syncs.
class LayerProgram {
 public:
  virtual ~LayerProgram() = default;
  // `insist` and `connect` are for the replication beneath the layers, if the sync has one
  // (a layer over default.rsync, rsyncssh or direct).
  virtual std::unique_ptr<SyncEngine> Make(uv_loop_t* loop, const SyncConfig& config,
                                           SyncEngine::Hooks hooks, bool insist,
                                           PeerConnector connect) const = 0;
};

}  // namespace syncd
