#include "lua/config_loader.h"
#include "syncd/history.h"

#include <fmt/format.h>
#include <lua.hpp>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <sys/stat.h>

#include "lua/ssh_settings.h"
#include "lua/lsyncd_functions.h"
#include "lua/layer_sync.h"
#include "lua/lua_host.h"
#include "lua/prelude.h"
#include "lua/reader.h"
#include "lua/sync_readers.h"
#include "lua/table_readers.h"
#include "syncd/filter.h"

namespace syncd::lua {
namespace {

std::string AbsolutePath(const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return p;
  return std::string(cwd) + "/" + p;
}

std::string StripTrailingSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Result<SyncConfig> ReadSync(const std::shared_ptr<LuaHost>& host, int index) {
  lua_State* L = host->state();
  // Stack: the record { config = ..., file = ..., line = ... }.
  lua_getfield(L, -1, "file");
  std::string file = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "line");
  int line = static_cast<int>(lua_tointeger(L, -1));
  lua_pop(L, 1);
  Reader r(L, fmt::format("{}:{}", file, line));
  SyncConfig s;
  s.name = fmt::format("Sync{}", index);
  s.defined_at = r.where();
  std::string prefix = fmt::format("sync[{}].", index);
  std::optional<std::string> target;
  std::string kind;
  // lsyncd applies filter rules first, then the excludes.
  std::vector<std::string> filter_rules, exclude_rules;
  bool has_delay = false;
  std::map<std::string, RsyncTableValue> rsync_table;
  bool over_default = false;          // Custom layers over a default layer.
  std::set<std::string> layer_own;    // Their keys, not the engine's.
  lua_getfield(L, -1, "config");
  {
    // Custom layers: on a table of its own, or over one of the default layers.
    bool layered = lua_getfield(L, -1, "_syncd_kind") == LUA_TSTRING;
    std::string layer_kind = layered ? lua_tostring(L, -1) : "";
    lua_pop(L, 1);
    // Any layer key makes a table of its own custom (`init = false` and `onMove = true` are
    // plain switches).
    bool custom = false;
    for (const char* k : kLayerKeys) {
      int type = lua_getfield(L, -1, k);
      lua_pop(L, 1);
      std::string_view key = k;
      if (type == LUA_TNIL || (key == "init" && type == LUA_TBOOLEAN) || (key == "onMove" && type == LUA_TBOOLEAN))
        continue;
      custom = true;
    }
    if (!layered && custom) {
      auto c = ReadCustomSync(host, r, index, CustomKeys(L));
      lua_pop(L, 1);
      return c;
    }
    // Layers over default.rsync, rsyncssh or direct: they complete the table first (their
    // prepare() may set the target), and their own keys (named in their checkgauge) are
    // theirs.
    for (const char* k : {"action", "collect", "prepare"}) {
      if (lua_getfield(L, -1, k) == LUA_TFUNCTION) over_default = true;
      lua_pop(L, 1);
    }
    if (lua_getfield(L, -1, "init") == LUA_TFUNCTION) over_default = true;
    lua_pop(L, 1);
    if (over_default) {
      s.layer_keys = CustomKeys(L);
      if (auto prepared = PrepareLayers(*host); !prepared)
        return syncd::Fail(fmt::format("{}: sync[{}]: {}", r.where(), index, prepared.error().message), EINVAL);
      if (lua_getfield(L, -1, "checkgauge") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
          if (lua_type(L, -2) == LUA_TSTRING) layer_own.insert(lua_tostring(L, -2));
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 1);
      // host and targetdir are rsyncssh's; under another layer they are the layer's own.
      if (layer_kind == "rsyncssh") layer_own.erase("host"), layer_own.erase("targetdir");
      for (const char* k : {"source", "target", "delay", "name", "delete", "exclude", "excludeFrom",
                            "filter", "filterFrom", "rsync", "ssh", "deleteHold", "maxDelays", "onMove"})
        layer_own.erase(k);
      for (const char* k : {"action", "collect", "prepare", "init", "checkgauge", "exitcodes",
                            "rsyncExitCodes", "sshExitCodes", "maxProcesses"})
        layer_own.insert(k);
    }
  }
  auto walked = r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(prefix.size());
    if (name == "_syncd_kind") return r.Set(key, &kind);
    if (layer_own.contains(std::string(name))) return {};
    if (name == "source") return r.Set(key, &s.source);
    if (name == "host") return r.Set(key, &s.host);
    if (name == "targetdir") return r.Set(key, &s.target_dir);
    if (name == "name") return r.Set(key, &s.name);
    if (name == "target") {
      std::string t;
      SYNCD_TRY(r.Set(key, &t));
      target = t;
      return {};
    }
    if (name == "delay") {
      auto v = r.Number(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 0 || !std::isfinite(*v)) return r.Bad(key, "must be a number >= 0");
      s.delay = *v;
      has_delay = true;
      return {};
    }
    if (name == "deleteHold") {
      auto v = r.Number(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 0 || *v > 60 || !std::isfinite(*v)) return r.Bad(key, "must be a number from 0 to 60");
      s.delete_hold = *v;
      return {};
    }
    if (name == "maxDelays") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 1) return r.Bad(key, "must be at least 1");
      s.max_delays = *v;
      return {};
    }
    if (name == "maxProcesses") {
      auto v = r.Int(key);
      return v ? Result<void>{} : std::unexpected(v.error());
    }
    if (name == "onMove" || name == "onAttrib") {
      // lsyncd keeps moves whole for any true onMove and calls neither function.
      if (lua_type(L, -1) == LUA_TFUNCTION || lua_type(L, -1) == LUA_TSTRING) {
        s.notes.push_back(std::string(name) + ": the default layers do not call it (nor does lsyncd); syncd replicates the change itself");
        return {};
      }
      if (name == "onAttrib") return r.Expected(key, "a function or a command string");
      auto v = r.Bool(key);
      return v ? Result<void>{} : std::unexpected(v.error());
    }
    if (auto filter = ReadFilterKey(r, key, name, filter_rules, exclude_rules); !filter || *filter)
      return filter ? Result<void>{} : std::unexpected(filter.error());
    if (name == "delete") {
      if (lua_type(L, -1) == LUA_TBOOLEAN) {
        s.delete_mode = lua_toboolean(L, -1) ? DeleteMode::kAlways : DeleteMode::kNever;
        return {};
      }
      if (lua_type(L, -1) == LUA_TSTRING) {
        std::string_view v = lua_tostring(L, -1);
        if (v == "startup") return s.delete_mode = DeleteMode::kStartup, Result<void>{};
        if (v == "running") return s.delete_mode = DeleteMode::kRunning, Result<void>{};
        return r.Bad(key, fmt::format("expected true, false, 'startup' or 'running', got '{}'", v));
      }
      return r.Expected(key, "true, false, 'startup' or 'running'");
    }
    if (name == "init") {
      auto v = r.Bool(key);
      if (!v) return std::unexpected(v.error());
      s.init = *v;
      return {};
    }
    if (name == "rsync") {
      if (lua_type(L, -1) != LUA_TTABLE) return r.Expected(key, "a table");
      return ReadRsync(L, r, key + ".", s, rsync_table);
    }
    if (name == "ssh") {
      if (lua_type(L, -1) != LUA_TTABLE) return r.Expected(key, "a table");
      return ReadSsh(L, r, key + ".", s);
    }
    if (name == "onCreate" || name == "onModify" || name == "onDelete" || name == "onStartup")
      return r.Bad(key, "default.rsync, rsyncssh and direct run no on* actions (lsyncd refuses "
                        "this key too); put the actions in a layer of their own, without a "
                        "default layer");
    if (name == "action" || name == "collect" || name == "prepare") return r.Expected(key, "a function");
    return r.Bad(key, "unknown key");
  });
  if (over_default && walked) s.layers = std::make_shared<LayerProgramImpl>(host);  // Takes the table.
  else lua_pop(L, 1);
  if (!walked) return std::unexpected(walked.error());
  s.filter_rules = std::move(filter_rules);
  s.filter_rules.insert(s.filter_rules.end(), exclude_rules.begin(), exclude_rules.end());

  std::string where = r.where();
  std::string name = fmt::format("sync[{}]", index);
  if (kind.empty())
    return syncd::Fail(fmt::format("{}: {}: no layer given; start the table with "
                                   "default.rsyncssh, default.rsync or default.direct",
                                   where, name),
                       EINVAL);
  if (kind == "rsyncssh") {
    s.kind = SyncKind::kRsyncSsh;
    if (target) return r.Bad(name + ".target", "not allowed with default.rsyncssh; use host and targetdir");
    if (s.host.empty()) return r.Bad(name + ".host", "required by default.rsyncssh");
    if (s.target_dir.empty()) return r.Bad(name + ".targetdir", "required by default.rsyncssh");
  } else {
    s.kind = kind == "rsync" ? SyncKind::kRsync : SyncKind::kDirect;
    if (!s.host.empty() || !s.target_dir.empty())
      return r.Bad(name + (s.host.empty() ? ".targetdir" : ".host"),
                   fmt::format("not allowed with default.{}; use target", kind));
    if (!target || target->empty()) return r.Bad(name + ".target", "required by default." + kind);
    // rsync's target syntax: "host:dir" is remote, "host::module" is an rsync daemon.
    size_t colon = target->find(':');
    size_t slash = target->find('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
      if (s.kind == SyncKind::kDirect)
        return r.Bad(name + ".target", "default.direct takes a local directory");
      if (target->compare(colon, 2, "::") == 0)
        return r.Bad(name + ".target", "rsync daemon targets (host::module) are not supported");
      s.host = target->substr(0, colon);
      s.target_dir = target->substr(colon + 1);
      if (s.target_dir.empty()) s.target_dir = ".";
    } else {
      s.target_dir = AbsolutePath(*target);
    }
  }
  if (s.kind == SyncKind::kDirect && !has_delay) s.delay = 1;  // lsyncd's default for direct.
  SYNCD_TRY(ResolveSource(r, name, s));
  s.target_dir = StripTrailingSlash(s.target_dir);
  if (s.host.empty() && s.target_dir == s.source)
    return r.Bad(name + ".target", "is the source directory itself");
  // The rsync options, as lsyncd would hand them to rsync; then the rsh command line.
  RsyncOptions options;
  options.links = options.times = false;  // rsync's own defaults; lsyncd's come as flags.
  options.recursive = true;               // lsyncd always passes -r.
  s.rsync = options;
  SYNCD_TRY(ApplyRsyncArgs(s, RsyncArgsFromTable(rsync_table, name + ".rsync"), where));
  SYNCD_TRY(ApplySshSettings(s, where + ": " + name));
  return s;
}

Result<Config> Load(const std::string& name, const std::function<int(lua_State*)>& load_chunk) {
  // A configuration is trusted, but one that loops forever or builds a runaway table must end
  // in an error, not a silent hang of `--check`, the start or a reload.
  int seconds = LuaHost::TimeLimit();
  auto host = std::make_shared<LuaHost>();
  lua_State* L = host->state();
  if (!L) return syncd::Fail("cannot create a Lua state");
  host->Arm(seconds, "loading");
  luaL_openlibs(L);
  // records = { syncs = {}, settings = {} }, kept in the registry.
  lua_newtable(L);
  lua_newtable(L);
  lua_setfield(L, -2, "syncs");
  lua_newtable(L);
  lua_setfield(L, -2, "settings");
  int records = luaL_ref(L, LUA_REGISTRYINDEX);
  RegisterLsyncdFunctions(L);
  if (luaL_loadbufferx(L, kPrelude, kPreludeSize, "=syncd-prelude", "t") != LUA_OK)
    return syncd::Fail(std::string("prelude: ") + lua_tostring(L, -1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, records);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK)
    return syncd::Fail(std::string("prelude: ") + lua_tostring(L, -1));
  SYNCD_TRY(LoadLayerRuntime(*host));
  host->Arm(seconds, "loading");

  if (load_chunk(L) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    if (host->out_of_memory())
      return syncd::Fail(fmt::format("{}: needs more than {} MiB to load (a runaway table?)", name,
                                     host->max_bytes() >> 20),
                         ENOMEM);
    std::string message = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in config";
    return syncd::Fail(message, EINVAL);
  }
  host->Disarm();
  if (lua_getglobal(L, "settings") == LUA_TTABLE)
    return syncd::Fail(fmt::format("{}: \"settings = {{...}}\" is the old syntax; write "
                                   "\"settings {{ ... }}\" (a call)", name),
                       EINVAL);
  lua_pop(L, 1);

  Config config;
  config.path = name;
  lua_rawgeti(L, LUA_REGISTRYINDEX, records);
  lua_getfield(L, -1, "settings");
  for (lua_Integer i = 1, n = static_cast<lua_Integer>(lua_rawlen(L, -1)); i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    auto r = ReadSettings(L, config);
    lua_pop(L, 1);
    if (!r) return std::unexpected(r.error());
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "syncs");
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    auto s = ReadSync(host, static_cast<int>(i));
    lua_pop(L, 1);
    if (!s) return std::unexpected(s.error());
    if (config.settings.max_delays) s->max_delays = *config.settings.max_delays;
    s->inotify_mode = config.settings.inotify_mode;
    s->state_dir = config.settings.state_dir.empty() ? DefaultStateDir() : config.settings.state_dir;
    s->divergence_limit_s = config.settings.divergence_limit_s;
    config.syncs.push_back(std::move(*s));
  }
  lua_pop(L, 2);
  if (config.syncs.empty())
    return syncd::Fail(name + ": nothing to do: the file defines no sync{}", EINVAL);
  std::set<std::string> names;
  for (const SyncConfig& s : config.syncs)
    if (!names.insert(s.name).second)
      return syncd::Fail(fmt::format("{}: sync name \"{}\" is used twice", s.defined_at, s.name),
                         EINVAL);
  return config;
}

}  // namespace

Result<Config> LoadConfig(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) return FailErrno("config " + path);
  // The file says where to connect, with which key, and what to delete: only its owner (and
  // group) may change it.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FailErrno("config " + path);
  if (st.st_mode & S_IWOTH)
    return syncd::Fail(fmt::format("{}: refusing a config file that anyone can write (mode {:04o}); "
                                   "chmod o-w {}",
                                   path, st.st_mode & 07777, path),
                       EPERM);
  auto config = Load(path, [&](lua_State* L) { return luaL_loadfilex(L, path.c_str(), "t"); });
  if (config && (st.st_mode & S_IROTH))
    config->warnings.push_back(fmt::format(
        "{}: readable by everyone (mode {:04o}); it names keys and hosts: chmod o-r {}", path,
        st.st_mode & 07777, path));
  return config;
}

Result<Config> LoadConfigString(const std::string& text, const std::string& name) {
  return Load(name, [&](lua_State* L) {
    return luaL_loadbufferx(L, text.data(), text.size(), ("@" + name).c_str(), "t");
  });
}

}  // namespace syncd::lua
