// Reads an lsyncd-style Lua configuration into syncd::Config. The file runs in Lua 5.4 with
// the standard libraries; `settings{}` and `sync{}` record what it asks for, and the result is
// validated once the file has run. The lua_State is closed before this returns.
#pragma once

#include <string>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd::lua {

// Errors name the file, the line of the call, the key and what was expected, e.g.
// "/etc/syncd.conf.lua:12: sync[2].delay: expected a number, got string".
Result<Config> LoadConfig(const std::string& path);

// Same, from a string; `name` stands for the file in messages.
Result<Config> LoadConfigString(const std::string& text, const std::string& name);

}  // namespace syncd::lua
