// A sync run by custom Lua layers (lsyncd's layers 1 to 3): syncd's watcher reports events
// as lsyncd names them, the layer runtime (layer_runtime.cc) queues and combines them as
// lsyncd does and calls the configuration's action, init and collect; the processes those
// spawn run here, on the loop (uv_spawn), their output going to the log. Lua is only ever
// called from the loop thread.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lua/lua_host.h"
#include "syncd/sync_engine.h"
#include "syncd/uv_handle.h"
#include "syncd/watcher.h"

namespace syncd::lua {

// The runtime's functions in the configuration's state; made once per state.
Result<void> LoadLayerRuntime(LuaHost& host);
// lsyncd's completion of a custom sync's table (inherited defaults, layer-3 strings made
// functions, prepare()), for the table on top of the stack.
Result<void> PrepareLayers(LuaHost& host);

class LayerProgramImpl : public LayerProgram {
 public:
  // Takes the table on top of the stack (a prepared sync{} table).
  LayerProgramImpl(std::shared_ptr<LuaHost> host);
  ~LayerProgramImpl() override;
  std::unique_ptr<SyncEngine> Make(uv_loop_t* loop, const SyncConfig& config,
                                   SyncEngine::Hooks hooks, bool insist,
                                   PeerConnector connect) const override;

 private:
  std::shared_ptr<LuaHost> host_;
  int config_ref_;
};

class LayerSync : public SyncEngine {
 public:
  // With `connect`, the layers run over syncd's replication of the sync (default.rsync,
  // rsyncssh or direct beneath them): what their action and init hand to it goes to the
  // target, and comes back to collect() once durable there.
  LayerSync(uv_loop_t* loop, const SyncConfig& config, Hooks hooks,
            std::shared_ptr<LuaHost> host, int config_ref, bool insist = false,
            PeerConnector connect = nullptr);
  ~LayerSync() override;

  void Start() override;
  void Drain(std::function<void(bool delivered)> done) override;
  void SetFilterRules(const std::vector<std::string>& rules) override;
  void SendPendingNow() override;
  std::vector<std::string> FailedSince(TimePoint t) const override;
  bool DurableBefore(TimePoint t) const override;
  bool Resolve(Resolution how) override { return engine_ && engine_->Resolve(how); }
  bool diverged() const override { return engine_ && engine_->diverged(); }
  bool Settled() const override { return !engine_ || engine_->Settled(); }
  SyncStatus Status(TimePoint now) const override;

  // spawn(): starts `binary` with `args` (and `input` on its standard input); its pid, or 0
  // when it could not be started (reported to collect as exit code 255, as a failed exec).
  int Spawn(const std::string& binary, const std::vector<std::string>& args,
            const std::string* input);
  // The default layers' action: hands these events to the replication; a pid for collect().
  int Feed(const std::vector<FsEvent>& events);
  // The default layers' init: the replication's startup comparison; a pid for collect().
  int EngineStart();

 private:
  // A spawned process: its handle, and the pipes its output comes through.
  struct Child {
    LayerSync* owner = nullptr;
    int pid = 0;
    std::string name;  // The binary's base name, for the log.
    UvHandle<uv_process_t> process;
    UvHandle<uv_pipe_t> in, out, err;
    std::string input;
    uv_write_t write{};
    std::string pending[2];  // Output not yet ended by a newline (stdout, stderr).
    int open = 0;            // Pipes not yet at their end.
    bool exited = false;
  };
  void OnEvent(const FsEvent& event);
  // Calls runtime function `name` with the sync and `nargs` values pushed after it; false
  // once the sync failed.
  bool CallRuntime(const char* name, int nargs, int nresults = 0);
  void Fail(const std::string& message);
  // Runs what is due, then sets the timer for the next.
  void Pump();
  void Arm();
  static void OnTimer(uv_timer_t* timer) noexcept;
  void OnChildExit(int pid, int code);
  void ChildDone(Child* child);
  void StartWatcher();
  void CheckStarted();
  double Now() const;
  std::pair<size_t, size_t> Counts();

  uv_loop_t* loop_;
  SyncConfig config_;
  Hooks hooks_;
  std::shared_ptr<LuaHost> host_;
  int config_ref_;
  int sync_ref_ = LUA_NOREF;  // The runtime's sync object.
  std::unique_ptr<InotifyWatcher> watcher_;
  UvHandle<uv_timer_t> timer_;
  std::map<int, std::unique_ptr<Child>> children_;
  // Pids (below 0) for what collect() hears of without a process: one that could not
  // start, the replication's batches and startup.
  int next_pseudo_pid_ = -1;
  // Exits to collect on the next turn of the loop (pid, code): a process that could not
  // start (255), the replication's batches and startup (0).
  std::vector<std::pair<int, int>> due_exits_;
  bool failed_ = false;
  bool started_ = false;  // The startup (Init) is done.
  bool draining_ = false;
  std::function<void(bool)> drained_;
  // Answers the drain once no process runs (and the replication has drained).
  void CheckDrained();
  bool engine_drained_ = false, engine_delivered_ = false;
  size_t delays_ = 0;     // Queued now, as last counted.
  uint64_t finished_ = 0;  // Processes collected.
  uint64_t failures_ = 0;  // Of them, those that exited non-zero.
  std::string last_failure_;
  // The replication beneath the layers, fed through feed_ (a watcher in its eyes).
  class FeedWatcher;
  std::unique_ptr<SyncEngine> engine_;
  FeedWatcher* feed_ = nullptr;
  bool engine_in_sync_ = false;
  int engine_start_pid_ = 0;  // The init waiting for the startup comparison.
  struct Fed {
    int pid;
    TimePoint at;
  };
  std::vector<Fed> fed_;  // Batches handed over, not yet durable.
  void OnEngineProgress();
  void MakeEngine(bool insist, PeerConnector connect);
  std::optional<std::chrono::system_clock::time_point> last_success_;
};

}  // namespace syncd::lua
