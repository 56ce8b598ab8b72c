// The Lua side of the configuration API: `default.*` layers, `settings{}` and `sync{}`.
#pragma once

#include <cstddef>

namespace syncd::lua {

// Runs before the user's file. Defines the globals the file may use and records each call
// in the registry-held tables that config_loader.cc reads afterwards.
extern const char kPrelude[];
extern const size_t kPreludeSize;

}  // namespace syncd::lua
