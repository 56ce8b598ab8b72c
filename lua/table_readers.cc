#include "lua/table_readers.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "syncd/chmod_rules.h"

namespace syncd::lua {

Result<void> ReadRsync(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s,
                       Config& config) {
  RsyncOptions& o = s.rsync;
  // Accepted and meaningless for syncd's own transfer: they change nothing on the peer.
  static const std::set<std::string, std::less<>> kCosmetic = {
      "binary", "protect_args", "verbose", "quiet", "checksum", "ipv4", "ipv6",
      "dry_run", "_computed", "temp_dir", "timeout", "rsync_path", "password_file", "inplace",
      "sparse", "bwlimit"};
  // Accepted by lsyncd, not implemented by syncd: a warning names them when they are set.
  static const std::set<std::string, std::less<>> kUnsupported = {
      "acls", "xattrs", "backup", "backup_dir", "suffix", "chown",
      "groupmap", "usermap", "existing", "update", "copy_links", "copy_dirlinks",
      "keep_dirlinks", "cvs_exclude", "executability", "ignore_times", "one_file_system",
      "omit_dir_times", "omit_link_times", "append", "append_verify", "copy_unsafe_links"};
  static constexpr std::pair<std::string_view, bool RsyncOptions::*> kFlags[] = {
      {"archive", &RsyncOptions::archive},   {"recursive", &RsyncOptions::recursive},
      {"links", &RsyncOptions::links},       {"times", &RsyncOptions::times},
      {"perms", &RsyncOptions::perms},       {"owner", &RsyncOptions::owner},
      {"group", &RsyncOptions::group},       {"devices", &RsyncOptions::devices},
      {"specials", &RsyncOptions::specials}, {"prune_empty_dirs", &RsyncOptions::prune_empty_dirs},
      {"compress", &RsyncOptions::compress}, {"whole_file", &RsyncOptions::whole_file},
      {"delete_excluded", &RsyncOptions::delete_excluded},
      {"hard_links", &RsyncOptions::hard_links}};
  return r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(prefix.size());
    for (auto [flag, field] : kFlags)
      if (name == flag) return r.Set(key, &(o.*field));
    if (name == "rsh") return r.Set(key, &o.rsh);
    if (name == "chmod") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      if (auto rules = ChmodRules::Parse(std::string_view(*v), CurrentUmask()); !rules)
        return r.Bad(key, rules.error().message);
      o.chmod.push_back(*v);
      return {};
    }
    if (name == "_extra") {
      auto v = r.StringList(key);
      if (!v) return std::unexpected(v.error());
      o.extra = *v;
      return {};
    }
    if (kCosmetic.contains(name)) return {};
    if (kUnsupported.contains(name)) {
      if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return {};
      config.warnings.push_back(
          fmt::format("{}: {}: not supported by syncd; ignored", r.where(), key));
      return {};
    }
    return r.Bad(key, "unknown rsync option");
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
