#include "lua/layer_sync.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <utility>

#include "lua/layer_runtime.h"
#include "syncd/log.h"

namespace syncd::lua {
namespace {

// host.exec(owner, binary, input, argv): spawn()'s way out of Lua.
int Exec(lua_State* L) {
  if (!lua_islightuserdata(L, 1)) return luaL_error(L, "spawn(): the sync of this event has stopped");
  auto* sync = static_cast<LayerSync*>(lua_touserdata(L, 1));
  std::string binary = luaL_checkstring(L, 2);
  std::string input;
  bool has_input = lua_type(L, 3) == LUA_TSTRING;
  if (has_input) input = lua_tostring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  std::vector<std::string> args;
  for (lua_Integer i = 1, n = static_cast<lua_Integer>(lua_rawlen(L, 4)); i <= n; ++i) {
    lua_rawgeti(L, 4, i);
    args.emplace_back(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
  }
  lua_pushinteger(L, sync->Spawn(binary, args, has_input ? &input : nullptr));
  return 1;
}

LayerSync* Owner(lua_State* L) {
  if (!lua_islightuserdata(L, 1)) luaL_error(L, "the sync of this event has stopped");
  return static_cast<LayerSync*>(lua_touserdata(L, 1));
}

// host.feed(owner, etypes, paths, paths2): default.rsync's action, handing the events to the
// replication beneath the layers.
int Feed(lua_State* L) {
  LayerSync* sync = Owner(L);
  std::vector<FsEvent> events;
  for (lua_Integer i = 1, n = static_cast<lua_Integer>(lua_rawlen(L, 2)); i <= n; ++i) {
    lua_rawgeti(L, 2, i);
    std::string etype = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
    lua_rawgeti(L, 3, i);
    std::string path = lua_tostring(L, -1) ? lua_tostring(L, -1) : "/";
    lua_rawgeti(L, 4, i);
    std::string path2 = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    lua_pop(L, 3);
    // lsyncd's "/dir/" back to syncd's "dir".
    auto rel = [](std::string p, bool* is_dir) {
      *is_dir = p.size() > 1 && p.back() == '/';
      if (*is_dir) p.pop_back();
      if (!p.empty() && p.front() == '/') p.erase(0, 1);
      return p;
    };
    FsEvent e;
    e.path = rel(path, &e.is_dir);
    if (etype == "Move" && !path2.empty()) {
      e.kind = FsEvent::Kind::kMoved;
      e.from = e.path;
      e.path = rel(path2, &e.is_dir);
    }
    events.push_back(std::move(e));
  }
  lua_pushinteger(L, sync->Feed(events));
  return 1;
}

int EngineStart(lua_State* L) {
  lua_pushinteger(L, Owner(L)->EngineStart());
  return 1;
}

const char* EtypeName(FsEvent::Etype e) {
  switch (e) {
    case FsEvent::Etype::kCreate: return "Create";
    case FsEvent::Etype::kModify: return "Modify";
    case FsEvent::Etype::kAttrib: return "Attrib";
    case FsEvent::Etype::kDelete: return "Delete";
    case FsEvent::Etype::kMove: return "Move";
    case FsEvent::Etype::kNone: break;
  }
  return nullptr;
}

// lsyncd's form of a path: from the source, with a leading '/', and a trailing one for a
// directory.
std::string DelayPath(const std::string& rel, bool is_dir) {
  return "/" + rel + (is_dir && !rel.empty() ? "/" : "");
}

}  // namespace

Result<void> LoadLayerRuntime(LuaHost& host) {
  lua_State* L = host.state();
  if (luaL_loadbufferx(L, kLayerRuntime, kLayerRuntimeSize, "=syncd-layers", "t") != LUA_OK)
    return Fail(std::string("layer runtime: ") + lua_tostring(L, -1));
  lua_newtable(L);
  lua_getglobal(L, "now");
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, Exec);
  lua_setfield(L, -2, "exec");
  lua_pushcfunction(L, Feed);
  lua_setfield(L, -2, "feed");
  lua_pushcfunction(L, EngineStart);
  lua_setfield(L, -2, "engine_start");
  SYNCD_TRY(host.Call(1, 1, false));
  host.runtime_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return {};
}

Result<void> PrepareLayers(LuaHost& host) {
  lua_State* L = host.state();
  lua_rawgeti(L, LUA_REGISTRYINDEX, host.runtime_ref);
  lua_getfield(L, -1, "prepare");
  lua_remove(L, -2);
  lua_pushvalue(L, -2);
  return host.Call(1, 0, false);
}

LayerProgramImpl::LayerProgramImpl(std::shared_ptr<LuaHost> host)
    : host_(std::move(host)), config_ref_(luaL_ref(host_->state(), LUA_REGISTRYINDEX)) {}

LayerProgramImpl::~LayerProgramImpl() { luaL_unref(host_->state(), LUA_REGISTRYINDEX, config_ref_); }

std::unique_ptr<SyncEngine> LayerProgramImpl::Make(uv_loop_t* loop, const SyncConfig& config,
                                                   SyncEngine::Hooks hooks, bool insist,
                                                   PeerConnector connect) const {
  if (config.kind == SyncKind::kCustom) connect = nullptr;  // Nothing beneath the layers.
  return std::make_unique<LayerSync>(loop, config, std::move(hooks), host_, config_ref_, insist,
                                     std::move(connect));
}

LayerSync::LayerSync(uv_loop_t* loop, const SyncConfig& config, Hooks hooks,
                     std::shared_ptr<LuaHost> host, int config_ref, bool insist,
                     PeerConnector connect)
    : loop_(loop), config_(config), hooks_(std::move(hooks)), host_(std::move(host)),
      config_ref_(config_ref), timer_(MakeTimer(loop, this)) {
  if (connect) MakeEngine(insist, std::move(connect));
}

LayerSync::~LayerSync() {
  if (watcher_) watcher_->Stop();
  if (sync_ref_ != LUA_NOREF) {
    // What a stashed event could still spawn finds the sync gone.
    lua_State* L = host_->state();
    lua_rawgeti(L, LUA_REGISTRYINDEX, sync_ref_);
    lua_pushboolean(L, false);
    lua_setfield(L, -2, "owner");
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, sync_ref_);
  }
}

double LayerSync::Now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool LayerSync::CallRuntime(const char* name, int nargs, int nresults) {
  lua_State* L = host_->state();
  if (failed_) {
    lua_pop(L, nargs);
    return false;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, host_->runtime_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sync_ref_);
  lua_rotate(L, -(nargs + 2), 2);  // The function and the sync below the arguments.
  if (auto r = host_->Call(nargs + 1, nresults, true); !r) {
    Fail(fmt::format("{}: a custom layer failed: {}", config_.name, r.error().message));
    return false;
  }
  return true;
}

void LayerSync::Fail(const std::string& message) {
  if (failed_) return;
  failed_ = true;
  if (watcher_) watcher_->Stop();
  uv_timer_stop(timer_.get());
  if (hooks_.on_fatal) hooks_.on_fatal(Error{message, EINVAL});
  if (drained_) std::exchange(drained_, nullptr)(false);
}

void LayerSync::Start() {
  lua_State* L = host_->state();
  lua_rawgeti(L, LUA_REGISTRYINDEX, host_->runtime_ref);
  lua_getfield(L, -1, "new");
  lua_remove(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, config_ref_);
  lua_pushstring(L, (config_.source + "/").c_str());
  lua_pushlightuserdata(L, this);
  lua_newtable(L);
  lua_Integer n = 0;
  for (const std::string& rule : config_.filter_rules) {
    lua_pushstring(L, (rule.starts_with("- ") ? rule.substr(2) : rule).c_str());
    lua_rawseti(L, -2, ++n);
  }
  if (auto r = host_->Call(4, 1, true); !r)
    return Fail(fmt::format("{}: a custom layer failed: {}", config_.name, r.error().message));
  sync_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  if (engine_) engine_->Start();
  if (failed_) return;
  StartWatcher();
  if (failed_) return;
  LogInfo("{}: custom layers watching {}", config_.name, config_.source);
  if (!CallRuntime("startup", 0)) return;
  Pump();
}

void LayerSync::StartWatcher() {
  auto filter = Filter::Parse(config_.filter_rules);
  if (!filter) return Fail(fmt::format("{}: {}", config_.name, filter.error().message));
  watcher_ = std::make_unique<InotifyWatcher>(loop_, config_.source, *filter, config_.inotify_mode,
                                              false, EventStyle::kLsyncd);
  if (auto r = watcher_->Start([this](const FsEvent& e) { OnEvent(e); }); !r)
    Fail(fmt::format("{}: {}", config_.name, r.error().message));
}

void LayerSync::OnEvent(const FsEvent& event) {
  if (failed_ || draining_) return;
  lua_State* L = host_->state();
  if (event.kind == FsEvent::Kind::kRootGone)
    return Fail(fmt::format("{}: the source {} is gone", config_.name, config_.source));
  if (event.kind == FsEvent::Kind::kOverflow) {
    // Events were lost: start over as lsyncd does after an overflow (the startup again).
    LogWarn("{}: events were lost (inotify overflow); running the startup again", config_.name);
    if (CallRuntime("startup", 0)) Pump();
    return;
  }
  const char* etype = EtypeName(event.etype);
  if (!etype) return;
  lua_pushstring(L, etype);
  lua_pushnumber(L, Now());
  if (event.etype == FsEvent::Etype::kMove) {
    lua_pushstring(L, DelayPath(event.from, event.is_dir).c_str());
    lua_pushstring(L, DelayPath(event.path, event.is_dir).c_str());
  } else {
    lua_pushstring(L, DelayPath(event.path, event.is_dir).c_str());
    lua_pushnil(L);
  }
  if (CallRuntime("event", 4)) Pump();
}

void LayerSync::Pump() {
  if (failed_ || draining_) return;
  lua_pushnumber(host_->state(), Now());
  if (!CallRuntime("invoke", 1)) return;
  CheckStarted();
  Arm();
}

void LayerSync::Arm() {
  if (failed_ || draining_) return;
  if (!due_exits_.empty() || (!fed_.empty() && engine_ && engine_->DurableBefore(fed_.front().at))) {
    uv_timer_start(timer_.get(), &LayerSync::OnTimer, 0, 0);
    return;
  }
  lua_State* L = host_->state();
  if (!CallRuntime("alarm", 0, 1)) return;
  std::optional<double> due;
  if (lua_type(L, -1) == LUA_TBOOLEAN) {
    if (lua_toboolean(L, -1)) due = 0;
  } else if (lua_isnumber(L, -1)) {
    due = std::max(0.0, lua_tonumber(L, -1) - Now());
  }
  lua_pop(L, 1);
  if (!due) {
    uv_timer_stop(timer_.get());
    return;
  }
  uv_timer_start(timer_.get(), &LayerSync::OnTimer, static_cast<uint64_t>(std::ceil(*due * 1000)), 0);
}

void LayerSync::OnTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<LayerSync*>(timer->data);
  for (auto [pid, code] : std::exchange(self->due_exits_, {})) self->OnChildExit(pid, code);
  self->OnEngineProgress();
  self->Pump();
}

std::pair<size_t, size_t> LayerSync::Counts() {
  lua_State* L = host_->state();
  if (!CallRuntime("counts", 0, 3)) return {0, 0};
  delays_ = static_cast<size_t>(lua_tointeger(L, -3));
  auto processes = static_cast<size_t>(lua_tointeger(L, -2));
  bool starting = lua_toboolean(L, -1);
  lua_pop(L, 3);
  if (!starting && !started_) {
    started_ = true;
    LogInfo("{}: startup done", config_.name);
    if (hooks_.on_status) hooks_.on_status(config_.name + ": custom layers running");
    if (hooks_.on_in_sync) hooks_.on_in_sync();
  }
  return {delays_, processes};
}

void LayerSync::CheckStarted() {
  Counts();
  if (hooks_.on_progress) hooks_.on_progress();
}

void LayerSync::Drain(std::function<void(bool delivered)> done) {
  if (failed_ || sync_ref_ == LUA_NOREF) return done(false);
  if (watcher_) watcher_->Stop();
  uv_timer_stop(timer_.get());
  drained_ = std::move(done);
  // What is queued is acted on now, whatever its delay, as the replication sends what is
  // pending at a stop (lsyncd drops its queue); then the processes are waited for.
  lua_State* L = host_->state();
  if (!CallRuntime("hurry", 0)) return;
  lua_pushnumber(L, Now());
  if (!CallRuntime("invoke", 1)) return;
  draining_ = true;
  if (engine_) {
    // What the layers handed to the replication goes out before it stops.
    engine_->Drain([this](bool delivered) {
      OnEngineProgress();
      for (auto [pid, code] : std::exchange(due_exits_, {})) OnChildExit(pid, code);
      engine_drained_ = true;
      engine_delivered_ = delivered;
      CheckDrained();
    });
    return;
  }
  CheckDrained();
}

void LayerSync::CheckDrained() {
  if (!drained_ || (engine_ && !engine_drained_)) return;
  auto [delays, processes] = Counts();
  if (processes > 0) {
    LogInfo("{}: waiting for {} processes", config_.name, processes);
    return;
  }
  if (delays > 0) LogWarn("{}: {} queued events were not acted on before the stop", config_.name, delays);
  std::exchange(drained_, nullptr)(delays == 0 && (!engine_ || engine_delivered_));
}

void LayerSync::SetFilterRules(const std::vector<std::string>& rules) {
  config_.filter_rules = rules;
  if (engine_) engine_->SetFilterRules(rules);
  if (failed_ || draining_) return;
  if (watcher_) watcher_->Stop();
  StartWatcher();
}

void LayerSync::SendPendingNow() {
  if (failed_ || draining_) return;
  if (watcher_) watcher_->ReadQueued();
  if (CallRuntime("hurry", 0)) Pump();
  if (engine_) engine_->SendPendingNow();
}

std::vector<std::string> LayerSync::FailedSince(TimePoint) const {
  if (last_failure_.empty()) return {};
  return {last_failure_};
}

bool LayerSync::DurableBefore(TimePoint t) const {
  if (failed_) return false;
  auto* self = const_cast<LayerSync*>(this);
  auto [delays, processes] = self->Counts();
  if (engine_ && !engine_->DurableBefore(t)) return false;
  return started_ && delays == 0 && processes == 0;
}

SyncStatus LayerSync::Status(TimePoint now) const {
  auto* self = const_cast<LayerSync*>(this);
  auto [delays, processes] = failed_ ? std::pair<size_t, size_t>{delays_, 0} : self->Counts();
  if (engine_) {
    // The replication's account, with what waits in the layers' queue.
    SyncStatus s = engine_->Status(now);
    s.pending += delays;
    if (failed_) s.state = "failing";
    return s;
  }
  SyncStatus s;
  s.name = config_.name;
  s.source = config_.source;
  s.target = config_.layer_target;
  s.filter_rules = config_.filter_rules;
  if (failed_) s.state = "failing";
  else if (!started_) s.state = "starting";
  else if (delays == 0 && processes == 0) s.state = "in sync";
  else s.state = "sending";
  s.pending = delays;
  s.operations = finished_;
  s.failures = failures_;
  s.last_success = last_success_;
  if (!last_failure_.empty()) s.failing_paths = {last_failure_};
  return s;
}

}  // namespace syncd::lua
