#include "lua/config_loader.h"
#include "tests/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace syncd::lua {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    fs::create_directories(dir_ + "/a");
    fs::create_directories(dir_ + "/b");
  }

  Result<Config> Load(const std::string& text) {
    std::string path = dir_ + "/syncd.conf.lua";
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms(0600));
    return LoadConfig(path);
  }
  std::string ErrorOf(const std::string& text) {
    auto c = Load(text);
    return c ? std::string("(loaded)") : c.error().message;
  }
  std::string SyncA(const std::string& extra) {
    return "sync { default.rsyncssh, source = '" + dir_ + "/a', host = 'peer', targetdir = '/t'" +
           extra + " }\n";
  }
  testing::TempDir tmp_{"config-test"};
  std::string dir_;
};

// The seed's configuration, with only its folders pointed at directories that exist here.
TEST_F(ConfigLoaderTest, SeedConfigLoads) {
  std::ifstream in(std::string(SYNCD_SOURCE_DIR) + "/examples/lsyncd.conf.lua");
  std::stringstream text;
  text << in.rdbuf();
  std::string seed = text.str();
  for (std::string folder : {"/var/spool/ovd/session-manager", "/etc/ovd/session-manager",
                             "/var/lib/php/sessions"}) {
    fs::create_directories(dir_ + folder);
    seed.replace(seed.find('"' + folder + '"'), folder.size() + 2, '"' + dir_ + folder + '"');
  }
  auto config = Load(seed);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_TRUE(config->settings.insist);
  EXPECT_EQ(config->settings.logfile, "/var/log/lsyncd.log");
  ASSERT_EQ(config->syncs.size(), 3u);
  const SyncConfig& s = config->syncs[2];
  EXPECT_EQ(s.name, "Sync3");
  EXPECT_EQ(s.kind, SyncKind::kRsyncSsh);
  EXPECT_EQ(s.source, dir_ + "/var/lib/php/sessions");
  EXPECT_EQ(s.host, "the-other-osm");
  EXPECT_EQ(s.target_dir, dir_ + "/var/lib/php/sessions");
  EXPECT_EQ(s.filter_rules, std::vector<std::string>{"- .*"});
  EXPECT_TRUE(s.KeepPerms() && s.KeepOwner() && s.KeepGroup() && s.KeepTimes() && s.KeepLinks());
  EXPECT_TRUE(s.rsync.prune_empty_dirs);
  EXPECT_EQ(s.ssh.identity_file, "/root/.ssh/sync_rsa");
  EXPECT_FALSE(s.delay) << "no delay configured: changes go out at once";
  EXPECT_EQ(s.delete_mode, DeleteMode::kAlways);
  // --rsh=ssh -i KEY is understood: no warnings for the seed.
  EXPECT_TRUE(config->warnings.empty()) << config->warnings.front();
}

TEST_F(ConfigLoaderTest, ConfigAnyoneCanWriteIsRefusedAndOneAnyoneCanReadIsWarned) {
  std::string path = dir_ + "/syncd.conf.lua";
  std::ofstream(path) << SyncA("");
  fs::permissions(path, fs::perms(0666));
  auto refused = LoadConfig(path);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, path + ": refusing a config file that anyone can write "
                                            "(mode 0666); chmod o-w " + path);
  fs::permissions(path, fs::perms(0644));
  auto warned = LoadConfig(path);
  ASSERT_TRUE(warned) << warned.error().message;
  ASSERT_EQ(warned->warnings.size(), 1u);
  EXPECT_THAT(warned->warnings[0], HasSubstr("readable by everyone (mode 0644)"));
}

TEST_F(ConfigLoaderTest, WrongTypeNamesFileLineKeyAndTypes) {
  std::string text = SyncA("") + "\n" + SyncA(", delay = 'fast'");
  EXPECT_EQ(ErrorOf(text), dir_ + "/syncd.conf.lua:3: sync[2].delay: expected a number, got string");
}

TEST_F(ConfigLoaderTest, UnknownKeysAreErrors) {
  EXPECT_EQ(ErrorOf(SyncA(", delya = 3")),
            dir_ + "/syncd.conf.lua:1: sync[1].delya: unknown key");
  EXPECT_EQ(ErrorOf(SyncA(", rsync = { archve = true }")),
            dir_ + "/syncd.conf.lua:1: sync[1].rsync.archve: unknown rsync option");
  EXPECT_EQ(ErrorOf("settings { delay = 5 }\n" + SyncA("")),
            dir_ + "/syncd.conf.lua:1: settings.delay: unknown setting");
}

TEST_F(ConfigLoaderTest, MissingSourceIsNamed) {
  std::string text = "sync { default.rsyncssh, source = '/nonexistent/src', host = 'p', targetdir = '/t' }";
  EXPECT_EQ(ErrorOf(text), dir_ + "/syncd.conf.lua:1: sync[1].source: /nonexistent/src: No such "
                                  "file or directory");
}

TEST_F(ConfigLoaderTest, LuaSyntaxErrorNamesTheLine) {
  EXPECT_THAT(ErrorOf("settings {\n  insist = true,\n  nodaemon = \n}"),
              HasSubstr("syncd.conf.lua:4:"));
}

TEST_F(ConfigLoaderTest, LayerRulesFollowLsyncd) {
  EXPECT_THAT(ErrorOf("sync { source = '" + dir_ + "/a', target = '/t' }"),
              HasSubstr("sync[1]: no layer given"));
  EXPECT_THAT(ErrorOf(SyncA(", target = 'x'")), HasSubstr("sync[1].target: not allowed"));
  EXPECT_THAT(ErrorOf("sync { default.rsyncssh, source = '" + dir_ + "/a', host = 'p' }"),
              HasSubstr("sync[1].targetdir: required"));
  EXPECT_THAT(ErrorOf("settings = { nodaemon = true }\n" + SyncA("")), HasSubstr("old syntax"));
}

TEST_F(ConfigLoaderTest, RsyncTargetSplitsHostAndDirectory) {
  auto c = Load("sync { default.rsync, source = '" + dir_ + "/a', target = 'root@osm2:/srv/x/' }\n"
                "sync { default.rsync, source = '" + dir_ + "/b', target = '" + dir_ + "/copy' }\n"
                "sync { default.direct, source = '" + dir_ + "/a', target = '" + dir_ + "/d' }");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->syncs[0].host, "root@osm2");
  EXPECT_EQ(c->syncs[0].target_dir, "/srv/x");
  EXPECT_EQ(c->syncs[1].host, "");
  EXPECT_EQ(c->syncs[1].target_dir, dir_ + "/copy");
  EXPECT_EQ(c->syncs[2].delay, 1.0);  // default.direct keeps lsyncd's one second.
}

TEST_F(ConfigLoaderTest, SettingsArrayFormAndGetter) {
  auto c = Load("settings { 'nodaemon', statusInterval = 5 }\n"
                "assert(settings('nodaemon') == true)\n" + SyncA(""));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->settings.nodaemon);
  EXPECT_EQ(c->settings.status_interval, 5);
}

TEST_F(ConfigLoaderTest, ValuesAreReadAsLsyncdReadsThem) {
  // Any Lua true value switches on (three published configs say insist = 1); numbers may
  // come as strings where lsyncd computes with them.
  auto c = Load("settings { insist = 1, nodaemon = 'yes', statusInterval = '20', maxDelays = '7' }\n" +
                SyncA(", init = 0, rsync = { perms = 1, owner = false, compress = 'yes' }"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->settings.insist);
  EXPECT_TRUE(c->settings.nodaemon);
  EXPECT_EQ(c->settings.status_interval, 20);
  EXPECT_EQ(c->settings.max_delays, 7);
  EXPECT_TRUE(c->syncs[0].init);  // 0 is true in Lua.
  EXPECT_TRUE(c->syncs[0].KeepPerms());
  EXPECT_FALSE(c->syncs[0].KeepOwner());
  EXPECT_TRUE(c->syncs[0].rsync.compress);
  EXPECT_THAT(ErrorOf("settings { statusInterval = 'often' }\n" + SyncA("")),
              HasSubstr("settings.statusInterval: expected an integer, got string"));
}

TEST_F(ConfigLoaderTest, LsyncdsFunctionsWhileTheConfigLoads) {
  // A sync per directory of a folder, as configs built from readdir() do.
  fs::create_directories(dir_ + "/sites/one");
  fs::create_directories(dir_ + "/sites/two");
  std::ofstream(dir_ + "/sites/README") << "not a site";
  auto c = Load("local sites = '" + dir_ + "/sites'\n"
                "log('Normal', 'reading ', sites, ' ', 1, ' ', true)\n"
                "assert(readdir('/no/such/dir') == nil)\n"
                "local names = {}\n"
                "for name, isdir in pairs(readdir(sites)) do\n"
                "  if isdir and not name:starts('.') then names[#names + 1] = name end\n"
                "end\n"
                "table.sort(names)\n"
                "assert(('abc'):ends('bc') and type(now()) == 'number')\n"
                "for _, name in ipairs(names) do\n"
                "  sync { default.rsyncssh, source = sites .. '/' .. name, host = 'peer',"
                " targetdir = '/srv/' .. name }\n"
                "end\n");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->syncs.size(), 2u);
  EXPECT_EQ(c->syncs[0].target_dir, "/srv/one");
  EXPECT_EQ(c->syncs[1].target_dir, "/srv/two");
  EXPECT_THAT(ErrorOf("\nspawn(nil, '/bin/true')\n" + SyncA("")),
              HasSubstr("syncd.conf.lua:2: spawning with an invalid agent"));
  EXPECT_THAT(ErrorOf(SyncA("") + "terminate(3)\n"),
              HasSubstr("syncd.conf.lua:2: the configuration called terminate(3)"));
}

TEST_F(ConfigLoaderTest, UserLayersInheritAndOwnKeysWin) {
  auto c = Load("local base = { default.rsyncssh, host = 'p', delay = 5, rsync = { archive = true } }\n"
                "sync { base, source = '" + dir_ + "/a', targetdir = '/t', delay = 2,"
                " rsync = { compress = true } }");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->syncs[0].delay, 2.0);
  EXPECT_EQ(c->syncs[0].host, "p");
  EXPECT_TRUE(c->syncs[0].KeepPerms());
  EXPECT_TRUE(c->syncs[0].KeepDevices());
  EXPECT_TRUE(c->syncs[0].rsync.compress);
}

TEST_F(ConfigLoaderTest, ExcludeFromReadsPatternsAsRsyncDoes) {
  std::ofstream(dir_ + "/ex") << "# comment\n; comment too\n\n- *.tmp\ncache/\n+ keep\n";
  auto c = Load(SyncA(", excludeFrom = '" + dir_ + "/ex', exclude = '*.bak'"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_THAT(c->syncs[0].filter_rules,
              ::testing::UnorderedElementsAre("- *.bak", "- *.tmp", "- cache/", "+ keep"));
  EXPECT_THAT(ErrorOf(SyncA(", excludeFrom = '/nope'")),
              HasSubstr("sync[1].excludeFrom: cannot read /nope"));
}

// lsyncd checks filter rules first, then the excludes; _extra's filter flags come last.
TEST_F(ConfigLoaderTest, FilterRulesComeFirstThenExcludesThenExtraFlags) {
  std::ofstream(dir_ + "/filters") << "# rules\n+ /keep/\nexclude,! /*\n";
  auto c = Load(SyncA(", exclude = { '*.bak' }, filter = { '+ /*/', '- *.log' },"
                      " filterFrom = '" + dir_ + "/filters',"
                      " rsync = { _extra = { '--exclude=*.o', '--include', 'x', '-f', 'P /p',"
                      " '--delete-excluded' } }"));
  ASSERT_TRUE(c) << c.error().message;
  const std::vector<std::string>& rules = c->syncs[0].filter_rules;
  ASSERT_EQ(rules.size(), 8u) << ::testing::PrintToString(rules);
  EXPECT_THAT(std::vector<std::string>(rules.begin(), rules.begin() + 4),
              ::testing::UnorderedElementsAre("+ /*/", "- *.log", "+ /keep/", "-! /*"));
  EXPECT_EQ(rules[4], "- *.bak");
  EXPECT_EQ(rules[5], "- *.o");
  EXPECT_EQ(rules[6], "+ x");
  EXPECT_EQ(rules[7], "P /p");
  EXPECT_TRUE(c->syncs[0].rsync.delete_excluded);
}

TEST_F(ConfigLoaderTest, BadFilterRulesAreRefusedWithTheRule) {
  EXPECT_THAT(ErrorOf(SyncA(", filter = { '+ ok', 'x foo' }")),
              HasSubstr("sync[1].filter: filter rule \"x foo\": unknown rule"));
  EXPECT_THAT(ErrorOf(SyncA(", filter = { ': .rsync-filter' }")),
              HasSubstr("merge and dir-merge rules are not supported"));
  EXPECT_THAT(ErrorOf(SyncA(", filter = { '-/ /abs' }")),
              HasSubstr("the '/' modifier"));
  std::ofstream(dir_ + "/bad") << "- fine\n\n+\n";
  EXPECT_THAT(ErrorOf(SyncA(", filterFrom = '" + dir_ + "/bad'")),
              HasSubstr(dir_ + "/bad:3: filter rule \"+\": no pattern"));
}

TEST_F(ConfigLoaderTest, ChmodRulesAreReadInOrderAndBadOnesRefused) {
  auto c = Load(SyncA(", rsync = { chmod = 'Dg+s,F644', _extra = { '--chmod=o-rwx', "
                      "'--chmod', 'u+w' } }"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  // lsyncd puts the table's --chmod after _extra's.
  EXPECT_EQ(c->syncs[0].rsync.chmod, (std::vector<std::string>{"o-rwx", "u+w", "Dg+s,F644"}));
  EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
  EXPECT_THAT(ErrorOf(SyncA(", rsync = { chmod = 'u+r-w' }")),
              HasSubstr("syncd.conf.lua:1: sync[1].rsync.chmod: invalid chmod rule \"u+r-w\""));
  EXPECT_THAT(ErrorOf(SyncA(", rsync = { _extra = { '--chmod=a+r,' } }")),
              HasSubstr("rsync._extra: invalid chmod rule \"\" in \"a+r,\""));
}

TEST_F(ConfigLoaderTest, DeleteValues) {
  for (auto [text, mode] : std::vector<std::pair<std::string, DeleteMode>>{
           {"true", DeleteMode::kAlways}, {"false", DeleteMode::kNever},
           {"'startup'", DeleteMode::kStartup}, {"'running'", DeleteMode::kRunning}}) {
    auto c = Load(SyncA(", delete = " + text));
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->syncs[0].delete_mode, mode) << text;
  }
  EXPECT_THAT(ErrorOf(SyncA(", delete = 'always'")),
              HasSubstr("sync[1].delete: expected true, false, 'startup' or 'running', got 'always'"));
}

TEST_F(ConfigLoaderTest, DeleteHoldIsSecondsAndDefaultsToATenth) {
  auto c = Load(SyncA("") + "\n" + SyncA(", deleteHold = 2.5"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->syncs[0].delete_hold, 0.1);
  EXPECT_EQ(c->syncs[1].delete_hold, 2.5);
  EXPECT_THAT(ErrorOf(SyncA(", deleteHold = -1")),
              HasSubstr("sync[1].deleteHold: must be a number from 0 to 60"));
}

TEST_F(ConfigLoaderTest, ActionsOverTheDefaultLayersAreRefusedClearly) {
  EXPECT_THAT(ErrorOf(SyncA(", onCreate = 'echo hi'")),
              HasSubstr("sync[1].onCreate: default.rsync, rsyncssh and direct run no on* actions"));
  EXPECT_THAT(ErrorOf(SyncA(", action = 5")), HasSubstr("sync[1].action: expected a function"));
  // A layer over default.rsync: its own keys are its business, the engine's are read.
  auto over = Load("local post = { default.rsync, checkgauge = { default.rsync.checkgauge, targetdir = true, postcmd = true },\n"
                   "  action = function(inlet) return default.rsync.action(inlet) end,\n"
                   "  prepare = function(c, level) c.target = c.targetdir; return default.rsync.prepare(c, level) end }\n"
                   "sync { post, source = '" + dir_ + "/a', targetdir = '/t', postcmd = 'x', delay = 3 }");
  ASSERT_TRUE(over) << over.error().message;
  EXPECT_TRUE(over->syncs[0].layers);
  EXPECT_EQ(over->syncs[0].kind, SyncKind::kRsync);
  EXPECT_EQ(over->syncs[0].target_dir, "/t");
  EXPECT_EQ(over->syncs[0].layer_keys, (std::vector<std::string>{"action (function)", "prepare (function)"}));
  EXPECT_THAT(ErrorOf("sync { default.rsync, source = '" + dir_ + "/a', target = '/t', postcmd = 'x' }"),
              HasSubstr("sync[1].postcmd: unknown key"));
  // An onMove function: moves stay whole, and the function is not called (as lsyncd).
  auto c = Load(SyncA(", onMove = function() end"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_THAT(c->syncs[0].notes, Contains(HasSubstr("onMove: the default layers do not call it")));
}

TEST_F(ConfigLoaderTest, ASyncOfCustomLayersKeepsItsFunctions) {
  auto c = Load("bash = { delay = 5, onCreate = 'cp -r ^sourcePathname ^targetPathname',\n"
                "  onMove = function(o, d) end, exitcodes = { [1] = 'again' } }\n"
                "sync { bash, source = '" + dir_ + "/a', target = '/t', exclude = { '*.tmp' } }");
  ASSERT_TRUE(c) << c.error().message;
  const SyncConfig& s = c->syncs[0];
  EXPECT_EQ(s.kind, SyncKind::kCustom);
  EXPECT_TRUE(s.layers);
  EXPECT_EQ(s.layer_target, "/t");
  EXPECT_EQ(s.delay, 5.0);
  EXPECT_EQ(s.layer_keys, (std::vector<std::string>{"onCreate (shell command)", "onMove (function)"}));
  EXPECT_EQ(s.filter_rules, (std::vector<std::string>{"- *.tmp"}));
  // lsyncd's checkgauge: an unknown key is refused, unless the layer's gauge names it.
  EXPECT_THAT(ErrorOf("sync { { onCreate = 'true' }, source = '" + dir_ + "/a', tagret = 'x' }"),
              HasSubstr("sync[1]: Parameter \"tagret\" unknown"));
  auto gauged = Load("sync { { onCreate = 'true', checkgauge = { mine = true } }, source = '" + dir_ +
                     "/a', mine = 1 }");
  EXPECT_TRUE(gauged) << gauged.error().message;
  EXPECT_THAT(ErrorOf("sync { { onCreate = 5 }, source = '" + dir_ + "/a' }"),
              HasSubstr("sync[1].onCreate: expected a function or a command string"));
}

TEST_F(ConfigLoaderTest, AnEndlessLoopOrARunawayTableEndsInAnErrorNotAHang) {
  ::setenv("SYNCD_CONFIG_TIME_LIMIT", "1", 1);
  EXPECT_THAT(ErrorOf(SyncA("") + "local n = 0\nwhile true do n = n + 1 end\n"),
              HasSubstr("syncd.conf.lua:3: did not finish loading within 1 s (an endless loop?)"));
  ::unsetenv("SYNCD_CONFIG_TIME_LIMIT");
  EXPECT_THAT(ErrorOf("local t = {}\nfor i = 1, 1e9 do t[i] = i end\n"),
              HasSubstr("syncd.conf.lua: needs more than 256 MiB to load (a runaway table?)"));
  // The limits reset for the next file.
  EXPECT_EQ(ErrorOf(SyncA("")), "(loaded)");
}

}  // namespace
}  // namespace syncd::lua
