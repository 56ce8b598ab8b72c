#include "lua/config_loader.h"

#include <fmt/format.h>
#include <lua.hpp>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sys/stat.h>

#include "lua/extra_flags.h"
#include "lua/prelude.h"

namespace syncd::lua {
namespace {

template <auto Fn>
struct CDeleter {
  void operator()(auto* p) const { Fn(p); }
};
using LuaState = std::unique_ptr<lua_State, CDeleter<lua_close>>;

// Reads values from the Lua stack with messages that say where and what. Uses only calls
// that cannot raise a Lua error, so no longjmp crosses C++ frames.
class Reader {
 public:
  Reader(lua_State* L, std::string where) : L_(L), where_(std::move(where)) {}

  const std::string& where() const { return where_; }

  std::unexpected<Error> Bad(const std::string& key, const std::string& what) const {
    return syncd::Fail(fmt::format("{}: {}: {}", where_, key, what), EINVAL);
  }
  std::unexpected<Error> Expected(const std::string& key, const char* expected) const {
    return Bad(key, fmt::format("expected {}, got {}", expected, luaL_typename(L_, -1)));
  }

  // Calls `fn(key)` with each value of the table at `idx` on top of the stack.
  Result<void> ForEach(int idx, const std::string& prefix,
                       const std::function<Result<void>(const std::string&)>& fn) {
    idx = lua_absindex(L_, idx);
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      if (lua_type(L_, -2) != LUA_TSTRING) {
        std::string key = lua_type(L_, -2) == LUA_TNUMBER
                              ? fmt::format("[{}]", lua_tonumber(L_, -2))
                              : std::string("[?]");
        lua_pop(L_, 2);
        return syncd::Fail(
            fmt::format("{}: {}{}: unexpected positional entry", where_, prefix, key), EINVAL);
      }
      std::string key = prefix + lua_tostring(L_, -2);
      auto r = fn(key);
      lua_pop(L_, 1);
      if (!r) {
        lua_pop(L_, 1);
        return r;
      }
    }
    return {};
  }

  Result<bool> Bool(const std::string& key) const {
    if (lua_type(L_, -1) != LUA_TBOOLEAN) return Expected(key, "a boolean");
    return lua_toboolean(L_, -1) != 0;
  }
  Result<double> Number(const std::string& key) const {
    if (lua_type(L_, -1) != LUA_TNUMBER) return Expected(key, "a number");
    return lua_tonumber(L_, -1);
  }
  Result<int> Int(const std::string& key) const {
    int isint = 0;
    lua_Integer v = lua_type(L_, -1) == LUA_TNUMBER ? lua_tointegerx(L_, -1, &isint) : 0;
    if (!isint) return Expected(key, "an integer");
    if (v < INT_MIN || v > INT_MAX) return Bad(key, "out of range");
    return static_cast<int>(v);
  }
  Result<std::string> String(const std::string& key) const {
    if (lua_type(L_, -1) != LUA_TSTRING) return Expected(key, "a string");
    size_t len = 0;
    const char* s = lua_tolstring(L_, -1, &len);
    return std::string(s, len);
  }
  // A string, or a list of strings.
  Result<std::vector<std::string>> StringList(const std::string& key) const {
    std::vector<std::string> out;
    if (lua_type(L_, -1) == LUA_TSTRING) {
      out.emplace_back(lua_tostring(L_, -1));
      return out;
    }
    if (lua_type(L_, -1) != LUA_TTABLE) return Expected(key, "a string or a list of strings");
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L_, -1));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L_, -1, i);
      if (lua_type(L_, -1) != LUA_TSTRING) {
        auto e = Expected(fmt::format("{}[{}]", key, i), "a string");
        lua_pop(L_, 1);
        return e;
      }
      out.emplace_back(lua_tostring(L_, -1));
      lua_pop(L_, 1);
    }
    return out;
  }

 private:
  lua_State* L_;
  std::string where_;
};

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

// Reads excludeFrom: one pattern per line; blank lines, `#` comments and `+` rules are skipped
// and a leading "- " is stripped, as lsyncd does.
Result<std::vector<std::string>> ReadExcludeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return FailErrno(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == '+') continue;
    if (line.starts_with("- ")) line.erase(0, 2);
    out.push_back(line);
  }
  return out;
}

// Filter rules ('- pattern') become excludes; include rules ('+ pattern') are not supported.
Result<void> AddFilterRule(const Reader& r, const std::string& key, const std::string& rule,
                           std::vector<std::string>* excludes) {
  if (rule.starts_with("- ")) {
    excludes->push_back(rule.substr(2));
    return {};
  }
  return r.Bad(key, fmt::format("filter rule \"{}\" is not supported (only \"- PATTERN\" rules)",
                                rule));
}

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
      "acls", "xattrs", "hard_links", "backup", "backup_dir", "suffix", "chmod", "chown",
      "groupmap", "usermap", "existing", "update", "copy_links", "copy_dirlinks",
      "keep_dirlinks", "cvs_exclude", "executability", "ignore_times", "one_file_system",
      "omit_dir_times", "omit_link_times", "append", "append_verify", "copy_unsafe_links",
      "delete_excluded"};
  return r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(prefix.size());
    auto flag = [&](bool* field) -> Result<void> {
      auto v = r.Bool(key);
      if (!v) return std::unexpected(v.error());
      *field = *v;
      return {};
    };
    if (name == "archive") return flag(&o.archive);
    if (name == "recursive") return flag(&o.recursive);
    if (name == "links") return flag(&o.links);
    if (name == "times") return flag(&o.times);
    if (name == "perms") return flag(&o.perms);
    if (name == "owner") return flag(&o.owner);
    if (name == "group") return flag(&o.group);
    if (name == "devices") return flag(&o.devices);
    if (name == "specials") return flag(&o.specials);
    if (name == "prune_empty_dirs") return flag(&o.prune_empty_dirs);
    if (name == "compress") return flag(&o.compress);
    if (name == "whole_file") return flag(&o.whole_file);
    if (name == "rsh") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      o.rsh = *v;
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
    if (name == "binary") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      o.binary = *v;
      return {};
    }
    if (name == "identityFile") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      o.identity_file = *v;
      return {};
    }
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

Result<SyncConfig> ReadSync(lua_State* L, int index, Config& config) {
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
  bool has_delay = false;
  lua_getfield(L, -1, "config");
  auto walked = r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view name = std::string_view(key).substr(prefix.size());
    auto str = [&](std::string* field) -> Result<void> {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      *field = *v;
      return {};
    };
    if (name == "_syncd_kind") return str(&kind);
    if (name == "source") return str(&s.source);
    if (name == "host") return str(&s.host);
    if (name == "targetdir") return str(&s.target_dir);
    if (name == "name") return str(&s.name);
    if (name == "target") {
      std::string t;
      SYNCD_TRY(str(&t));
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
    if (name == "onMove") {
      auto v = r.Bool(key);
      return v ? Result<void>{} : std::unexpected(v.error());
    }
    if (name == "exclude") {
      auto v = r.StringList(key);
      if (!v) return std::unexpected(v.error());
      s.excludes.insert(s.excludes.end(), v->begin(), v->end());
      return {};
    }
    if (name == "excludeFrom" || name == "filterFrom") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      auto lines = ReadExcludeFile(*v);
      if (!lines) return r.Bad(key, "cannot read " + lines.error().message);
      for (const std::string& l : *lines) s.excludes.push_back(l);
      return {};
    }
    if (name == "filter") {
      auto v = r.StringList(key);
      if (!v) return std::unexpected(v.error());
      for (const std::string& rule : *v) SYNCD_TRY(AddFilterRule(r, key, rule, &s.excludes));
      return {};
    }
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
      if (lua_type(L, -1) == LUA_TFUNCTION)
        return r.Bad(key, "custom Lua functions are not supported; use true or false");
      auto v = r.Bool(key);
      if (!v) return std::unexpected(v.error());
      s.init = *v;
      return {};
    }
    if (name == "rsync") {
      if (lua_type(L, -1) != LUA_TTABLE) return r.Expected(key, "a table");
      return ReadRsync(L, r, key + ".", s, config);
    }
    if (name == "ssh") {
      if (lua_type(L, -1) != LUA_TTABLE) return r.Expected(key, "a table");
      return ReadSsh(L, r, key + ".", s);
    }
    if (name.starts_with("on") || name == "action" || name == "collect" || name == "prepare")
      return r.Bad(key, "custom Lua actions are not supported");
    return r.Bad(key, "unknown key");
  });
  lua_pop(L, 1);
  if (!walked) return std::unexpected(walked.error());

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
  if (s.source.empty()) return r.Bad(name + ".source", "required");
  char resolved[PATH_MAX];
  if (!::realpath(s.source.c_str(), resolved))
    return r.Bad(name + ".source", fmt::format("{}: {}", s.source, std::strerror(errno)));
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
    return r.Bad(name + ".source", fmt::format("{}: not a directory", s.source));
  s.source = resolved;
  s.target_dir = StripTrailingSlash(s.target_dir);
  if (s.host.empty() && s.target_dir == s.source)
    return r.Bad(name + ".target", "is the source directory itself");
  // Flags in rsync._extra and the rsh command line.
  SYNCD_TRY(ApplyExtraFlags(s, where + ": " + name, config.warnings));
  return s;
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
    auto str = [&](std::optional<std::string>* field) -> Result<void> {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      *field = *v;
      return {};
    };
    auto flag = [&](bool* field) -> Result<void> {
      auto v = r.Bool(key);
      if (!v) return std::unexpected(v.error());
      *field = *v;
      return {};
    };
    if (name == "logfile") return str(&o.logfile);
    if (name == "statusFile") return str(&o.status_file);
    if (name == "metricsFile") return str(&o.metrics_file);
    if (name == "pidfile") return str(&o.pidfile);
    if (name == "nodaemon") return flag(&o.nodaemon);
    if (name == "insist") return flag(&o.insist);
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
    if (name == "logident") {
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      o.log_ident = *v;
      return {};
    }
    if (name == "logfacility") {
      if (lua_type(L, -1) == LUA_TNUMBER) {
        auto v = r.Int(key);
        if (!v) return std::unexpected(v.error());
        o.log_facility = std::to_string(*v);
        return {};
      }
      auto v = r.String(key);
      if (!v) return std::unexpected(v.error());
      o.log_facility = *v;
      return {};
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

Result<Config> Load(const std::string& name, const std::function<int(lua_State*)>& load_chunk) {
  LuaState state(luaL_newstate());
  lua_State* L = state.get();
  if (!L) return syncd::Fail("cannot create a Lua state");
  luaL_openlibs(L);
  // records = { syncs = {}, settings = {} }, kept in the registry.
  lua_newtable(L);
  lua_newtable(L);
  lua_setfield(L, -2, "syncs");
  lua_newtable(L);
  lua_setfield(L, -2, "settings");
  int records = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_loadbufferx(L, kPrelude, kPreludeSize, "=syncd-prelude", "t") != LUA_OK)
    return syncd::Fail(std::string("prelude: ") + lua_tostring(L, -1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, records);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK)
    return syncd::Fail(std::string("prelude: ") + lua_tostring(L, -1));

  if (load_chunk(L) != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
    std::string message = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in config";
    return syncd::Fail(message, EINVAL);
  }
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
    auto s = ReadSync(L, static_cast<int>(i), config);
    lua_pop(L, 1);
    if (!s) return std::unexpected(s.error());
    if (config.settings.max_delays) s->max_delays = *config.settings.max_delays;
    s->inotify_mode = config.settings.inotify_mode;
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
