#include "lua/table_readers.h"

#include <fmt/format.h>

#include <cmath>
#include <set>


namespace syncd::lua {

Result<void> ReadRsync(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s,
                       std::map<std::string, RsyncTableValue>& table) {
  return r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string name(std::string_view(key).substr(prefix.size()));
    RsyncTableValue v;
    int type = lua_type(L, -1);
    v.truthy = lua_toboolean(L, -1) != 0;
    if (name == "_extra") {
      auto list = r.StringList(key);
      if (!list) return std::unexpected(list.error());
      v.list = *list;
    } else if (name == "_computed") {
      return r.Bad(key, "lsyncd's internal parameter; do not set it");
    } else if (name == "binary") {
      if (type != LUA_TSTRING) return r.Expected(key, "a string");
      s.notes.push_back(fmt::format("{}: syncd does not run rsync; its own client and agent "
                                    "do the transfer", key));
      return {};
    } else if (IsRsyncValueKey(name)) {
      // lsyncd writes '--name=' .. value: a string or a number; false leaves it out.
      if (type == LUA_TBOOLEAN && !v.truthy) return {};
      if (type != LUA_TSTRING && type != LUA_TNUMBER) return r.Expected(key, "a string or a number");
      v.text = lua_tostring(L, -1);
    } else if (!IsRsyncFlagKey(name)) {
      return r.Bad(key, "unknown rsync option");
    }
    table[name] = std::move(v);
    return {};
  });
}

Result<void> ReadSsh(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s) {
  SshOptions& o = s.ssh;
  return r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(prefix.size());
    if (name == "binary") return r.Set(key, &o.binary);
    if (name == "identityFile") return r.Set(key, &o.identity_file);
    if (name == "carrier") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      if (*v == "auto") o.carrier = SshCarrier::kAuto;
      else if (*v == "libssh2") o.carrier = SshCarrier::kLibssh2;
      else if (*v == "openssh") o.carrier = SshCarrier::kOpenSsh;
      else return r.Bad(key, fmt::format("expected \"auto\", \"libssh2\" or \"openssh\", got \"{}\"", *v));
      return {};
    }
    if (name == "port") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 1 || *v > 65535) return r.Bad(key, "port out of range");
      o.port = *v;
      return {};
    }
    if (name == "options") {
      if (lua_type(L, -1) != LUA_TTABLE) return r.Expected(key, "a table of option = value");
      return r.ForEach(-1, key + ".", [&](const std::string& opt) -> Result<void> {
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER) return r.Expected(opt, "a string or number");
        // lua_tostring would convert a number in place; copy it first.
        lua_pushvalue(L, -1);
        std::string value = lua_tostring(L, -1);
        lua_pop(L, 1);
        o.options[opt.substr(key.size() + 1)] = value;
        return {};
      });
    }
    if (name == "_extra") {
      auto v = r.StringList(key);
      if (!v) return std::unexpected(v.error());
      o.extra = *v;
      return {};
    }
    return r.Bad(key, "unknown ssh option");
  });
}

Result<void> ReadSettings(lua_State* L, Config& config) {
  Settings& o = config.settings;
  lua_getfield(L, -1, "file");
  std::string file = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "line");
  Reader r(L, fmt::format("{}:{}", file, lua_tointeger(L, -1)));
  lua_pop(L, 1);
  lua_getfield(L, -1, "values");
  auto walked = r.ForEach(-1, "settings.", [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(9);
    if (name == "logfile") return r.Set(key, &o.logfile);
    if (name == "statusFile") return r.Set(key, &o.status_file);
    if (name == "metricsFile") return r.Set(key, &o.metrics_file);
    if (name == "pidfile") return r.Set(key, &o.pidfile);
    if (name == "nodaemon") return r.Set(key, &o.nodaemon);
    if (name == "insist") return r.Set(key, &o.insist);
    if (name == "statusInterval") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 0) return r.Bad(key, "must be >= 0");
      o.status_interval = *v;
      return {};
    }
    if (name == "maxProcesses" || name == "maxDelays") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 1) return r.Bad(key, "must be at least 1");
      (name == "maxProcesses" ? o.max_processes : o.max_delays) = *v;
      return {};
    }
    if (name == "stopTimeout") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 1) return r.Bad(key, "must be at least 1 (seconds)");
      o.stop_timeout_s = *v;
      return {};
    }
    if (name == "readyWhen") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      if (*v == "in sync") o.ready_when_watching = false;
      else if (*v == "watching") o.ready_when_watching = true;
      else return r.Bad(key, fmt::format("expected \"in sync\" or \"watching\", got \"{}\"", *v));
      return {};
    }
    if (name == "stateDir") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      if (v->empty() || v->front() != '/') return r.Bad(key, "expected an absolute directory");
      o.state_dir = *v;
      return {};
    }
    if (name == "divergenceLimit") {
      auto v = r.Number(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 0) return r.Bad(key, "must be >= 0 (seconds)");
      o.divergence_limit_s = *v;
      return {};
    }
    if (name == "logident") return r.Set(key, &o.log_ident);
    if (name == "logfacility") {
      if (lua_type(L, -1) == LUA_TNUMBER) {
        auto v = r.Int(key);
        if (!v) return std::unexpected(v.error());
        o.log_facility = std::to_string(*v);
        return {};
      }
      return r.Set(key, &o.log_facility);
    }
    if (name == "inotifyMode") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      if (*v == "CloseWrite") o.inotify_mode = InotifyMode::kCloseWrite;
      else if (*v == "Modify") o.inotify_mode = InotifyMode::kModify;
      else if (*v == "CloseWrite or Modify") o.inotify_mode = InotifyMode::kCloseWriteOrModify;
      else
        return r.Bad(key, fmt::format("expected \"CloseWrite\", \"Modify\" or \"CloseWrite or "
                                      "Modify\", got \"{}\"", *v));
      return {};
    }
    return r.Bad(key, "unknown setting");
  });
  lua_pop(L, 1);
  return walked;
}

}  // namespace syncd::lua
