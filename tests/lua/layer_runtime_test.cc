// The custom layers' queue on its own: which events an action sees, in which order, and
// when, for lsyncd 2.2.3's combination rules. The action records what it is given and
// discards it; no process runs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lua/layer_sync.h"
#include "lua/lsyncd_functions.h"
#include "lua/lua_host.h"
#include "lua/prelude.h"

namespace syncd::lua {
namespace {

class LayerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    L_ = host_.state();
    luaL_openlibs(L_);
    RegisterLsyncdFunctions(L_);
    ASSERT_EQ(luaL_loadbufferx(L_, kPrelude, kPreludeSize, "=prelude", "t"), LUA_OK);
    lua_newtable(L_);
    lua_newtable(L_);
    lua_setfield(L_, -2, "syncs");
    lua_newtable(L_);
    lua_setfield(L_, -2, "settings");
    ASSERT_EQ(lua_pcall(L_, 1, 0, 0), LUA_OK);
    ASSERT_TRUE(LoadLayerRuntime(host_));
  }

  // A sync whose action records "Etype path[ -> path2]" and drops the event; `extra` adds to
  // its table (Lua fields).
  void MakeSync(const std::string& extra) {
    std::string code = "seen = {}\nreturn { action = function(inlet)\n"
                       "  local e, e2 = inlet.getEvent()\n"
                       "  seen[#seen + 1] = e.etype .. ' ' .. e.path .. (e2 and (' -> ' .. e2.path) or '')\n"
                       "  inlet.discardEvent(e)\n"
                       "end, " + extra + " }";
    NewSync(code);
  }

  // A sync of the table `code` returns, prepared as a configuration's is.
  void NewSync(const std::string& code) {
    ASSERT_EQ(luaL_loadstring(L_, code.c_str()), LUA_OK);
    ASSERT_EQ(lua_pcall(L_, 0, 1, 0), LUA_OK);
    lua_pushvalue(L_, -1);
    ASSERT_TRUE(PrepareLayers(host_));
    int config = luaL_ref(L_, LUA_REGISTRYINDEX);
    Runtime("new");
    lua_rawgeti(L_, LUA_REGISTRYINDEX, config);
    lua_pushstring(L_, "/src/");
    lua_pushboolean(L_, false);
    lua_newtable(L_);
    ASSERT_TRUE(host_.Call(4, 1, true));
    sync_ = luaL_ref(L_, LUA_REGISTRYINDEX);
  }

  void Runtime(const char* name) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, host_.runtime_ref);
    lua_getfield(L_, -1, name);
    lua_remove(L_, -2);
  }

  void Event(const char* etype, double time, const char* path, const char* path2 = nullptr) {
    Runtime("event");
    lua_rawgeti(L_, LUA_REGISTRYINDEX, sync_);
    lua_pushstring(L_, etype);
    lua_pushnumber(L_, time);
    lua_pushstring(L_, path);
    if (path2) lua_pushstring(L_, path2); else lua_pushnil(L_);
    auto r = host_.Call(5, 0, true);
    ASSERT_TRUE(r) << r.error().message;
  }

  // Runs what is due at `time`; returns what the action saw since the last call.
  std::vector<std::string> Invoke(double time) {
    Runtime("invoke");
    lua_rawgeti(L_, LUA_REGISTRYINDEX, sync_);
    lua_pushnumber(L_, time);
    auto r = host_.Call(2, 0, true);
    EXPECT_TRUE(r) << r.error().message;
    std::vector<std::string> out;
    lua_getglobal(L_, "seen");
    for (lua_Integer i = 1, n = static_cast<lua_Integer>(lua_rawlen(L_, -1)); i <= n; ++i) {
      lua_rawgeti(L_, -1, i);
      out.emplace_back(lua_tostring(L_, -1));
      lua_pop(L_, 1);
    }
    lua_pop(L_, 1);
    lua_newtable(L_);
    lua_setglobal(L_, "seen");
    return out;
  }

  LuaHost host_;
  lua_State* L_ = nullptr;
  int sync_ = LUA_NOREF;
};

using Seen = std::vector<std::string>;

TEST_F(LayerRuntimeTest, EventsWaitForTheirDelayAndRunInOrder) {
  MakeSync("delay = 5");
  Event("Create", 100, "/a");
  Event("Modify", 101, "/b");
  EXPECT_EQ(Invoke(104), Seen{});
  // getEvent() gives the events one by one as each is due (getEvents() takes every ready one).
  EXPECT_EQ(Invoke(105), (Seen{"Create a"}));
  EXPECT_EQ(Invoke(106), (Seen{"Modify b"}));
}

TEST_F(LayerRuntimeTest, TwoEventsOnOneFileBothRunAndACreateReplacesADelete) {
  MakeSync("delay = 1");
  Event("Create", 100, "/f");
  Event("Modify", 100, "/f");  // 2.2.3 combines nothing on one file: both run.
  Event("Delete", 100, "/g");
  Event("Create", 100, "/g");  // Replaces the Delete of the file.
  EXPECT_EQ(Invoke(101), (Seen{"Create f", "Modify f", "Create g"}));
}

TEST_F(LayerRuntimeTest, ADirectoryBlocksWhatLiesBeneathIt) {
  MakeSync("delay = 0");
  Event("Create", 100, "/d/");
  Event("Create", 100, "/d/x");
  Event("Create", 100, "/e");
  // One action call per invocation and ready event: /d/x waits for /d/ to be done.
  EXPECT_EQ(Invoke(100), (Seen{"Create d/", "Create d/x", "Create e"}));
}

TEST_F(LayerRuntimeTest, MovesStayWholeOnlyWithOnMove) {
  MakeSync("delay = 0, onMove = true");
  Event("Move", 100, "/a", "/b");
  EXPECT_EQ(Invoke(100), (Seen{"Move a -> b"}));
  MakeSync("delay = 0");
  Event("Move", 100, "/a", "/b");
  EXPECT_EQ(Invoke(100), (Seen{"Delete a", "Create b"}));
}

TEST_F(LayerRuntimeTest, AMoveOntoAQueuedEventIsSplit) {
  MakeSync("delay = 5, onMove = true");
  Event("Create", 100, "/d/");
  Event("Move", 101, "/x", "/d/x");  // Into the directory still waiting: split.
  EXPECT_EQ(Invoke(106), (Seen{"Create d/", "Delete x", "Create d/x"}));
}

TEST_F(LayerRuntimeTest, AFullQueueRunsItsOldestEvents) {
  MakeSync("delay = 60, maxDelays = 3");
  Event("Create", 100, "/a");
  Event("Create", 100, "/b");
  EXPECT_EQ(Invoke(100), Seen{});
  Event("Create", 100, "/c");
  // As lsyncd: a full queue runs its oldest events until it is below maxDelays again.
  EXPECT_EQ(Invoke(100), (Seen{"Create a"}));
  EXPECT_EQ(Invoke(160), (Seen{"Create b", "Create c"}));
}

TEST_F(LayerRuntimeTest, AnActionsErrorNamesWhereItHappened) {
  NewSync("return { delay = 0, action = function(inlet) local x = nil; return x.y end }");
  Event("Create", 100, "/a");
  Runtime("invoke");
  lua_rawgeti(L_, LUA_REGISTRYINDEX, sync_);
  lua_pushnumber(L_, 100);
  auto r = host_.Call(2, 0, true);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("attempt to index a nil value"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("stack traceback"), std::string::npos);
}

}  // namespace
}  // namespace syncd::lua
