#include "lua/lua_host.h"

#include <cstdlib>

namespace syncd::lua {

LuaHost::LuaHost() { L_ = lua_newstate(&LuaHost::Alloc, this); }

LuaHost::~LuaHost() {
  if (L_) lua_close(L_);
}

void* LuaHost::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* host = static_cast<LuaHost*>(ud);
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    host->used_ -= old;
    std::free(ptr);
    return nullptr;
  }
  if (nsize > old && host->used_ + (nsize - old) > host->max_bytes_) {
    host->out_of_memory_ = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p) host->used_ = host->used_ - old + nsize;
  return p;
}

void LuaHost::OnDeadline(lua_State* L, lua_Debug* ar) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  auto* host = static_cast<LuaHost*>(ud);
  if (std::chrono::steady_clock::now() <= host->deadline_) return;
  // Where the code was when time ran out.
  lua_getinfo(L, "Sl", ar);
  lua_pushfstring(L, "%s:%d: did not finish %s within %d s (an endless loop?)", ar->short_src,
                  ar->currentline, host->doing_, host->seconds_);
  lua_error(L);
}

void LuaHost::Arm(int seconds, const char* doing) {
  seconds_ = seconds;
  doing_ = doing;
  deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  lua_sethook(L_, &LuaHost::OnDeadline, LUA_MASKCOUNT, 10000);
}

void LuaHost::Disarm() { lua_sethook(L_, nullptr, 0, 0); }

int LuaHost::TimeLimit() {
  if (const char* limit = std::getenv("SYNCD_CONFIG_TIME_LIMIT"); limit && std::atoi(limit) > 0)
    return std::atoi(limit);
  return 10;
}

Result<void> LuaHost::Call(int nargs, int nresults, bool traceback) {
  int base = lua_gettop(L_) - nargs;  // The function's slot.
  if (traceback) {
    lua_pushcfunction(L_, [](lua_State* L) -> int {
      const char* message = lua_tostring(L, 1);
      luaL_traceback(L, L, message ? message : "(an error that is not a string)", 1);
      return 1;
    });
  } else {
    lua_pushcfunction(L_, [](lua_State*) -> int { return 1; });
  }
  lua_insert(L_, base);
  out_of_memory_ = false;
  Arm(TimeLimit());
  int rc = lua_pcall(L_, nargs, nresults, base);
  Disarm();
  lua_remove(L_, base);
  if (rc == LUA_OK) return {};
  std::string message = lua_tostring(L_, -1) ? lua_tostring(L_, -1) : "error in Lua";
  lua_pop(L_, 1);
  if (out_of_memory_) message = "needs more than " + std::to_string(max_bytes_ >> 20) + " MiB: " + message;
  return Fail(message, EINVAL);
}

}  // namespace syncd::lua
