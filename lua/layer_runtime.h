// The Lua code that runs custom layers (see layer_runtime.cc).
#pragma once

#include <cstddef>

namespace syncd::lua {

extern const char kLayerRuntime[];
extern const size_t kLayerRuntimeSize;

}  // namespace syncd::lua
