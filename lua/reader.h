// Reader takes values off the Lua stack for the configuration loader, with messages that say
// where (file:line) and which key. Only calls that cannot raise a Lua error, so no longjmp
// crosses C++ frames.
#pragma once

#include <fmt/format.h>
#include <lua.hpp>

#include <climits>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "syncd/error.h"

namespace syncd::lua {

class Reader {
 public:
  Reader(lua_State* L, std::string where) : L_(L), where_(std::move(where)) {}

  const std::string& where() const { return where_; }

  std::unexpected<Error> Bad(const std::string& key, const std::string& what) const {
    return syncd::Fail(fmt::format("{}: {}: {}", where_, key, what), EINVAL);
  }
  std::unexpected<Error> Expected(const std::string& key, const char* expected) const {
    return Bad(key, fmt::format("expected {}, got {}", expected, luaL_typename(L_, -1)));
  }

  // Calls `fn(key)` with each value of the table at `idx` on top of the stack.
  Result<void> ForEach(int idx, const std::string& prefix,
                       const std::function<Result<void>(const std::string&)>& fn) {
    idx = lua_absindex(L_, idx);
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      if (lua_type(L_, -2) != LUA_TSTRING) {
        std::string key = lua_type(L_, -2) == LUA_TNUMBER
                              ? fmt::format("[{}]", lua_tonumber(L_, -2))
                              : std::string("[?]");
        lua_pop(L_, 2);
        return syncd::Fail(
            fmt::format("{}: {}{}: unexpected positional entry", where_, prefix, key), EINVAL);
      }
      std::string key = prefix + lua_tostring(L_, -2);
      auto r = fn(key);
      lua_pop(L_, 1);
      if (!r) {
        lua_pop(L_, 1);
        return r;
      }
    }
    return {};
  }

  // Lua's truth, as lsyncd reads its switches: anything but false (and nil) is true, so
  // `insist = 1` is on.
  Result<bool> Bool(const std::string&) const { return lua_toboolean(L_, -1) != 0; }
  Result<double> Number(const std::string& key) const {
    if (lua_type(L_, -1) != LUA_TNUMBER) return Expected(key, "a number");
    return lua_tonumber(L_, -1);
  }
  // A number, or a string Lua converts to one (lsyncd does arithmetic on these).
  Result<int> Int(const std::string& key) const {
    int isint = 0;
    int type = lua_type(L_, -1);
    lua_Integer v = type == LUA_TNUMBER || type == LUA_TSTRING ? lua_tointegerx(L_, -1, &isint) : 0;
    if (!isint) return Expected(key, "an integer");
    if (v < INT_MIN || v > INT_MAX) return Bad(key, "out of range");
    return static_cast<int>(v);
  }
  Result<std::string> String(const std::string& key) const {
    if (lua_type(L_, -1) != LUA_TSTRING) return Expected(key, "a string");
    size_t len = 0;
    const char* s = lua_tolstring(L_, -1, &len);
    return std::string(s, len);
  }
  // The value on top of the stack into `*field`, or an error that says what was expected.
  Result<void> Set(const std::string& key, bool* field) const { return Store(Bool(key), field); }
  Result<void> Set(const std::string& key, std::string* field) const {
    return Store(String(key), field);
  }
  Result<void> Set(const std::string& key, std::optional<std::string>* field) const {
    return Store(String(key), field);
  }
  // A string, or a list of strings.
  Result<std::vector<std::string>> StringList(const std::string& key) const {
    std::vector<std::string> out;
    if (lua_type(L_, -1) == LUA_TSTRING) {
      out.emplace_back(lua_tostring(L_, -1));
      return out;
    }
    if (lua_type(L_, -1) != LUA_TTABLE) return Expected(key, "a string or a list of strings");
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L_, -1));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L_, -1, i);
      if (lua_type(L_, -1) != LUA_TSTRING) {
        auto e = Expected(fmt::format("{}[{}]", key, i), "a string");
        lua_pop(L_, 1);
        return e;
      }
      out.emplace_back(lua_tostring(L_, -1));
      lua_pop(L_, 1);
    }
    return out;
  }

 private:
  template <typename T, typename Field>
  static Result<void> Store(Result<T> v, Field* field) {
    if (!v) return std::unexpected(v.error());
    *field = std::move(*v);
    return {};
  }

  lua_State* L_;
  std::string where_;
};

}  // namespace syncd::lua
