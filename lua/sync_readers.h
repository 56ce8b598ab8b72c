// What reading a sync{} table shares between its two kinds: syncs over lsyncd's default
// layers (config_loader.cc) and syncs of custom layers alone (sync_readers.cc).
#pragma once

#include <lua.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lua/lua_host.h"
#include "lua/reader.h"
#include "syncd/config.h"

namespace syncd::lua {

// exclude, excludeFrom, filter and filterFrom: the rules they add, in canonical form (lsyncd
// applies the filter rules first, then the excludes). False if `name` is none of them.
Result<bool> ReadFilterKey(const Reader& r, const std::string& key, std::string_view name,
                           std::vector<std::string>& filter_rules, std::vector<std::string>& exclude_rules);
// The source, required, resolved (symlinks and all) to the directory it names.
Result<void> ResolveSource(const Reader& r, const std::string& name, SyncConfig& s);

// lsyncd's layer keys: layer 1's functions, then the events' commands or functions.
inline constexpr const char* kLayerKeys[] = {"action", "init", "collect", "prepare", "onAttrib",
                                             "onCreate", "onModify", "onDelete", "onMove", "onStartup"};
inline constexpr std::span<const char* const> kEventKeys(kLayerKeys + 4, 6);

// What the sync{} table on top of the stack sets of the layer keys: "onCreate (shell
// command)", ...
std::vector<std::string> CustomKeys(lua_State* L);
// A sync of custom layers (no default.rsync, rsyncssh or direct beneath it): syncd reads what
// it needs to watch, and lsyncd's runtime (lua/layer_sync.h) runs the rest. The config table
// is on top of the stack.
Result<SyncConfig> ReadCustomSync(const std::shared_ptr<LuaHost>& host, Reader& r, int index,
                                  std::vector<std::string> keys);

}  // namespace syncd::lua
