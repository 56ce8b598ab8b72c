// The tables of a configuration that are read field by field: a sync's `rsync = {...}` and
// `ssh = {...}`, and `settings{...}`. The table is on top of the Lua stack.
#pragma once

#include <lua.hpp>

#include <string>

#include "lua/reader.h"
#include "lua/rsync_options.h"
#include "syncd/config.h"

namespace syncd::lua {

// A sync's `rsync = {...}` into `table`, key by key, with lsyncd's checks of each value;
// `prefix` names the table in messages ("sync[1].rsync."). RsyncArgsFromTable takes it on.
Result<void> ReadRsync(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s,
                       std::map<std::string, RsyncTableValue>& table);
Result<void> ReadSsh(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s);
// The last settings{} call's record ({file, line, values}).
Result<void> ReadSettings(lua_State* L, Config& config);

}  // namespace syncd::lua
