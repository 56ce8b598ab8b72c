// The functions lsyncd 2.2.3 gives a configuration while it loads, done syncd's way:
// `log(category, ...)` into syncd's log, `readdir(dir)` (a table of name -> is a directory,
// or nil with an error logged, as lsyncd's), `now()`. The prelude adds `terminate`,
// `string.starts`/`string.ends`, and for the functions that only serve custom layers
// (`spawn`, `spawnShell`, `observefd`, `nonobservefd`) an error naming the caller's line.
#pragma once

#include <lua.hpp>

namespace syncd::lua {

// Sets the functions as globals of `L`.
void RegisterLsyncdFunctions(lua_State* L);

}  // namespace syncd::lua
