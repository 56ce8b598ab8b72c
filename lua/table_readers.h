// The tables of a configuration that are read field by field: a sync's `rsync = {...}` and
// `ssh = {...}`, and `settings{...}`. The table is on top of the Lua stack.
#pragma once

#include <lua.hpp>

#include <string>

#include "lua/reader.h"
#include "syncd/config.h"

namespace syncd::lua {

// `prefix` names the table in messages ("sync[1].rsync."); unused flags become warnings.
Result<void> ReadRsync(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s,
                       Config& config);
Result<void> ReadSsh(lua_State* L, Reader& r, const std::string& prefix, SyncConfig& s);
// The last settings{} call's record ({file, line, values}).
Result<void> ReadSettings(lua_State* L, Config& config);

}  // namespace syncd::lua
