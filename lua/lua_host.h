// LuaHost owns the Lua state a configuration ran in. A configuration with custom layers keeps
// it for as long as one of its syncs runs: the layers' functions live there. The state has a
// memory cap, and every call into it a deadline, so that a runaway table or an endless loop
// ends in an error naming the file and line instead of a hang.
#pragma once

#include <lua.hpp>

#include <chrono>
#include <string>

#include "syncd/error.h"

namespace syncd::lua {

class LuaHost {
 public:
  LuaHost();
  ~LuaHost();
  LuaHost(const LuaHost&) = delete;
  LuaHost& operator=(const LuaHost&) = delete;

  lua_State* state() const { return L_; }
  // The custom layers' runtime (layer_runtime.cc) in the registry, once loaded.
  int runtime_ref = LUA_NOREF;
  // Arms the deadline: code running longer than `seconds` from now raises an error saying it
  // "did not finish `doing`".
  void Arm(int seconds, const char* doing = "running");
  void Disarm();
  bool out_of_memory() const { return out_of_memory_; }
  size_t max_bytes() const { return max_bytes_; }
  // Calls the function below `nargs` arguments on the stack with the deadline armed (10 s, or
  // $SYNCD_CONFIG_TIME_LIMIT); leaves `nresults` results. The error message names file and
  // line (with a traceback if asked).
  Result<void> Call(int nargs, int nresults, bool traceback);
  // The time a configuration or a layer's call may take.
  static int TimeLimit();

 private:
  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize);
  static void OnDeadline(lua_State* L, lua_Debug* ar);

  size_t used_ = 0;
  size_t max_bytes_ = 256u << 20;
  bool out_of_memory_ = false;
  std::chrono::steady_clock::time_point deadline_;
  int seconds_ = 10;
  const char* doing_ = "running";
  lua_State* L_ = nullptr;
};

}  // namespace syncd::lua
