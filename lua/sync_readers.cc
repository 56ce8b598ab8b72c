#include "lua/sync_readers.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "lua/layer_sync.h"
#include "lua/table_readers.h"
#include "syncd/filter.h"

namespace syncd::lua {

// The rules of an excludeFrom or filterFrom file, one per line; blank lines and comments
// (`#`, and `;` as rsync) are skipped. An exclude file's lines are read as rsync's
// --exclude-from reads them ("- " and "+ " prefixes), a filter file's as filter rules.
namespace {

Result<std::vector<std::string>> ReadRuleFile(const Reader& r, const std::string& key,
                                              const std::string& path, bool filter_rules) {
  auto lines = ReadRuleLines(path);
  if (!lines) return r.Bad(key, "cannot read " + lines.error().message);
  std::vector<std::string> out;
  for (const RuleLine& line : *lines) {
    if (!filter_rules) {
      out.push_back(CanonicalPatternRule(line.text));
      continue;
    }
    auto rule = CanonicalFilterRule(line.text);
    if (!rule) return r.Bad(key, fmt::format("{}:{}: {}", path, line.number, rule.error().message));
    out.push_back(std::move(*rule));
  }
  return out;
}

}  // namespace

Result<bool> ReadFilterKey(const Reader& r, const std::string& key, std::string_view name,
                           std::vector<std::string>& filter_rules, std::vector<std::string>& exclude_rules) {
  if (name == "exclude") {
    auto v = r.StringList(key);
    if (!v) return std::unexpected(v.error());
    for (const std::string& pattern : *v) exclude_rules.push_back(CanonicalPatternRule(pattern));
    return true;
  }
  if (name == "excludeFrom" || name == "filterFrom") {
    auto v = r.String(key);
    if (!v) return std::unexpected(v.error());
    bool filter = name == "filterFrom";
    auto rules = ReadRuleFile(r, key, *v, filter);
    if (!rules) return std::unexpected(rules.error());
    auto& into = filter ? filter_rules : exclude_rules;
    into.insert(into.end(), rules->begin(), rules->end());
    return true;
  }
  if (name == "filter") {
    auto v = r.StringList(key);
    if (!v) return std::unexpected(v.error());
    for (const std::string& text : *v) {
      auto rule = CanonicalFilterRule(text);
      if (!rule) return r.Bad(key, rule.error().message);
      filter_rules.push_back(std::move(*rule));
    }
    return true;
  }
  return false;
}

Result<void> ResolveSource(const Reader& r, const std::string& name, SyncConfig& s) {
  if (s.source.empty()) return r.Bad(name + ".source", "required");
  char resolved[PATH_MAX];
  if (!::realpath(s.source.c_str(), resolved))
    return r.Bad(name + ".source", fmt::format("{}: {}", s.source, std::strerror(errno)));
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
    return r.Bad(name + ".source", fmt::format("{}: not a directory", s.source));
  s.source = resolved;
  return {};
}

std::vector<std::string> CustomKeys(lua_State* L) {
  std::vector<std::string> keys;
  for (const char* k : kLayerKeys) {
    int type = lua_getfield(L, -1, k);
    if (type == LUA_TFUNCTION) keys.push_back(std::string(k) + " (function)");
    if (type == LUA_TSTRING && std::string_view(k).starts_with("on")) {
      std::string_view command = lua_tostring(L, -1);
      while (!command.empty() && command.front() == ' ') command.remove_prefix(1);
      keys.push_back(std::string(k) + (command.starts_with("/") ? " (command)" : " (shell command)"));
    }
    lua_pop(L, 1);
  }
  return keys;
}

Result<SyncConfig> ReadCustomSync(const std::shared_ptr<LuaHost>& host, Reader& r, int index,
                                  std::vector<std::string> keys) {
  lua_State* L = host->state();
  SyncConfig s;
  s.kind = SyncKind::kCustom;
  s.name = fmt::format("Sync{}", index);
  s.defined_at = r.where();
  s.layer_keys = std::move(keys);
  std::string name = fmt::format("sync[{}]", index);
  std::string prefix = name + ".";
  std::vector<std::string> filter_rules, exclude_rules;
  auto walked = r.ForEach(-1, prefix, [&](const std::string& key) -> Result<void> {
    std::string_view k = std::string_view(key).substr(prefix.size());
    if (k == "source") return r.Set(key, &s.source);
    if (k == "name") return r.Set(key, &s.name);
    if (k == "target") {
      if (lua_type(L, -1) != LUA_TSTRING) return r.Expected(key, "a string");
      s.layer_target = lua_tostring(L, -1);
      return {};
    }
    if (k == "delay") {
      auto v = r.Number(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 0 || !std::isfinite(*v)) return r.Bad(key, "must be a number >= 0");
      s.delay = *v;
      return {};
    }
    if (k == "maxDelays" || k == "maxProcesses") {
      auto v = r.Int(key);
      if (!v) return std::unexpected(v.error());
      if (*v < 1) return r.Bad(key, "must be at least 1");
      if (k == "maxDelays") s.max_delays = *v;
      return {};
    }
    for (const char* e : kEventKeys) {
      if (k != e) continue;
      int type = lua_type(L, -1);
      if (type == LUA_TFUNCTION || type == LUA_TSTRING || (k == "onMove" && type == LUA_TBOOLEAN))
        return {};
      return r.Expected(key, "a function or a command string");
    }
    if (k == "action" || k == "collect" || k == "prepare" || k == "init") {
      if (lua_type(L, -1) == LUA_TFUNCTION || (k == "init" && lua_type(L, -1) == LUA_TBOOLEAN)) return {};
      return r.Expected(key, "a function");
    }
    if (auto filter = ReadFilterKey(r, key, k, filter_rules, exclude_rules); !filter || *filter)
      return filter ? Result<void>{} : std::unexpected(filter.error());
    return {};  // The layers' own keys: prepare() and checkgauge judge them, as lsyncd's do.
  });
  if (!walked) return std::unexpected(walked.error());
  s.filter_rules = std::move(filter_rules);
  s.filter_rules.insert(s.filter_rules.end(), exclude_rules.begin(), exclude_rules.end());
  SYNCD_TRY(ResolveSource(r, name, s));
  if (auto prepared = PrepareLayers(*host); !prepared)
    return syncd::Fail(fmt::format("{}: {}: {}", r.where(), name, prepared.error().message), EINVAL);
  lua_pushvalue(L, -1);
  s.layers = std::make_shared<LayerProgramImpl>(host);  // Takes the copy.
  s.init = true;
  return s;
}

}  // namespace syncd::lua
