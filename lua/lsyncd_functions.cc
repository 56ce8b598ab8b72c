#include "lua/lsyncd_functions.h"

#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "syncd/log.h"

namespace syncd::lua {
namespace {

// log(category, ...): the values joined as lsyncd joins them.
int Log(lua_State* L) {
  std::string category = luaL_checkstring(L, 1);
  std::string text;
  for (int i = 2, n = lua_gettop(L); i <= n; ++i) {
    switch (lua_type(L, i)) {
      case LUA_TNIL: text += "(nil)"; break;
      case LUA_TBOOLEAN: text += lua_toboolean(L, i) ? "true" : "false"; break;
      case LUA_TSTRING:
      case LUA_TNUMBER: text += lua_tostring(L, i); break;
      default: text += std::string("(") + luaL_typename(L, i) + ")"; break;
    }
  }
  if (category == "Error") LogError("{}", text);
  else if (category == "Warn") LogWarn("{}", text);
  else if (category == "Normal") LogInfo("{}", text);
  else LogDebug(category, "{}", text);
  return 0;
}

// readdir(dir): { name = is_directory, ... }, or nothing when it cannot be read.
int ReadDir(lua_State* L) {
  std::string dir = luaL_checkstring(L, 1);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    LogError("cannot open dir [{}].", dir);
    return 0;
  }
  lua_newtable(L);
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    lua_pushboolean(L, is_dir);
    lua_setfield(L, -2, name.c_str());
  }
  ::closedir(d);
  return 1;
}

// now(): seconds on a steady clock.
int Now(lua_State* L) {
  auto t = std::chrono::steady_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(t).count());
  return 1;
}

}  // namespace

void RegisterLsyncdFunctions(lua_State* L) {
  lua_register(L, "log", Log);
  lua_register(L, "readdir", ReadDir);
  lua_register(L, "now", Now);
}

}  // namespace syncd::lua
