// Custom layers (lsyncd's layers 1 to 3) against lsyncd 2.2.3 itself: the same layer, the
// same changes made to two sources at the same moments, and the commands each tool ran,
// recorded by a script that writes its arguments, must be the same (as multisets: the two
// tools need not run them in the same order when events race).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class LayersTest : public ::testing::Test {
 protected:
  LayersTest() : tmp_("layers") {
    ::umask(022);
    // The recorder: each call appends its arguments, each in [], then a record separator
    // (arguments may hold newlines).
    recorder_ = tmp_ / "rec";
    WriteFile(recorder_,
              "#!/bin/sh\nout=\"$(dirname \"$0\")/$RECORD\"\n"
              "{ for a in \"$@\"; do printf '[%s]' \"$a\"; done; printf '\\036'; } >> \"$out\"\n",
              0755);
  }

  struct Tool {
    std::string name, root, source, target, record;
    std::unique_ptr<Process> process;
  };

  // Runs `layer` (Lua defining the table `layer`; REC is the recorder's path) under both
  // tools as sync{ layer, source = ..., target = ... `extra` }, applies each step to both
  // sources 300 ms apart, and waits until both records hold `until` (a count of records).
  void Run(const std::string& layer, const std::vector<std::function<void(const std::string&)>>& steps,
           size_t until, const std::string& extra = "") {
    bool have_lsyncd = ::access("/usr/bin/lsyncd", X_OK) == 0;
    for (const char* name : {"lsyncd", "syncd"}) {
      if (name == std::string("lsyncd") && !have_lsyncd) continue;
      Tool t;
      t.name = name;
      t.root = tmp_ / name;
      t.source = t.root + "/src";
      t.target = t.root + "/tgt";
      t.record = std::string(name) + ".rec";
      MakeDirs(t.source);
      MakeDirs(t.target);
      std::string conf = t.root + "/conf.lua";
      std::string settings = name == std::string("lsyncd")
                                 ? "settings { nodaemon = true, logfile = '" + t.root + "/log' }\n"
                                 : "settings { nodaemon = true }\n";
      WriteFile(conf,
                settings + "local REC = '" + recorder_ + "'\n" + layer + "\nsync { layer, source = '" +
                    t.source + "', target = '" + t.target + "/'" + extra + " }\n",
                0600);
      std::vector<std::string> env{"HOME=" + tmp_.path(), "RECORD=" + t.record};
      if (name == std::string("lsyncd"))
        t.process = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/lsyncd", conf}, env,
                                              t.root + "/out");
      else
        t.process = std::make_unique<Process>(std::vector<std::string>{SyncdBinary(), "-nodaemon", conf},
                                              env, t.root + "/out");
      tools_.push_back(std::move(t));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // Both are watching.
    for (const auto& step : steps) {
      for (Tool& t : tools_) step(t.source);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    for (Tool& t : tools_) {
      bool done = WaitUntil([&] { return Records(t).size() >= until; }, std::chrono::seconds(30));
      EXPECT_TRUE(done) << t.name << " ran " << Records(t).size() << " of " << until
                        << " commands:\n" << Joined(Records(t)) << "\nits log:\n" << t.process->log();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // Nothing more comes.
  }

  // A tool's records, with its own paths written as SRC and TGT.
  std::vector<std::string> Records(const Tool& t) const {
    std::string text;
    if (fs::exists(tmp_ / t.record)) text = ReadFile(tmp_ / t.record);
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t end; (end = text.find('\036', start)) != std::string::npos; start = end + 1) {
      std::string r = text.substr(start, end - start);
      for (auto [from, to] : {std::pair{t.source, std::string("SRC")}, {t.target, std::string("TGT")}}) {
        for (size_t at = 0; !from.empty() && (at = r.find(from, at)) != std::string::npos; at += to.size())
          r.replace(at, from.size(), to);
      }
      out.push_back(r);
    }
    return out;
  }

  static std::string Joined(std::vector<std::string> v) {
    std::string s;
    for (const std::string& x : v) s += "  " + x + "\n";
    return s;
  }

  const Tool& Syncd() const { return tools_.back(); }

  // syncd's records, and lsyncd's beside them when lsyncd is installed, in sorted order.
  void ExpectSameAsLsyncd() {
    ASSERT_FALSE(tools_.empty());
    auto ours = Records(Syncd());
    std::sort(ours.begin(), ours.end());
    if (tools_.size() < 2) return;
    auto theirs = Records(tools_.front());
    ASSERT_FALSE(theirs.empty()) << "lsyncd ran nothing; its log:\n" << ReadFile(tools_.front().root + "/log");
    std::sort(theirs.begin(), theirs.end());
    EXPECT_EQ(ours, theirs) << "syncd ran:\n" << Joined(ours) << "lsyncd 2.2.3 ran:\n" << Joined(theirs)
                            << "syncd's log:\n" << Syncd().process->log();
  }

  // syncd alone on `conf`, its layers' commands recorded in syncd.rec.
  std::unique_ptr<Process> StartRecorded(const std::string& conf, std::vector<std::string> env = {}) {
    env.push_back("HOME=" + tmp_.path());
    env.push_back("RECORD=syncd.rec");
    return std::make_unique<Process>(std::vector<std::string>{SyncdBinary(), "-nodaemon", conf}, env,
                                     tmp_ / "log");
  }
  std::vector<std::string> Recorded(const std::string& source = "") const {
    Tool t;
    t.record = "syncd.rec";
    t.source = source;
    return Records(t);
  }

  void TearDown() override {
    for (Tool& t : tools_) {
      t.process->Signal(SIGTERM);
      t.process->Wait(std::chrono::seconds(20));
    }
  }

  TempDir tmp_;
  std::string recorder_;
  std::vector<Tool> tools_;
};

// Writes in place (the harness's WriteFile renames a temporary file into place, which is
// another sequence of events).
void Put(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Each kind of change once.
std::vector<std::function<void(const std::string&)>> EveryKindOfChange() {
  return {
      [](const std::string& s) { Put(s + "/a", "alpha"); },
      [](const std::string& s) { AppendFile(s + "/a", "more"); },
      [](const std::string& s) { ::chmod((s + "/a").c_str(), 0600); },
      [](const std::string& s) { MakeDirs(s + "/d"); },
      [](const std::string& s) { fs::rename(s + "/a", s + "/d/b"); },
      [](const std::string& s) { fs::remove(s + "/d/b"); },
  };
}

// lsyncd's examples/lecho.lua: layer 3, each event a binary run with ^ variables.
TEST_F(LayersTest, EchoLayerRunsTheSameCommandsAsLsyncd) {
  Run("layer = { maxProcesses = 1, delay = 1,\n"
      "  onStartup = REC .. ' telling about ^source',\n"
      "  onAttrib = REC .. ' attrib ^pathname',\n"
      "  onCreate = REC .. ' create ^pathname',\n"
      "  onDelete = REC .. ' delete ^pathname',\n"
      "  onModify = REC .. ' modify ^pathname',\n"
      "  onMove = REC .. ' move ^o.pathname -> ^d.pathname' }",
      EveryKindOfChange(), 9);
  auto ours = Records(Syncd());
  EXPECT_THAT(ours, ::testing::Contains("[telling][about][SRC/]"));
  // The move waits on the Create of its directory: lsyncd splits it into Delete and Create.
  EXPECT_THAT(ours, ::testing::Contains("[delete][a]"));
  EXPECT_THAT(ours, ::testing::Contains("[create][d/b]"));
  EXPECT_THAT(ours, ::testing::Contains("[attrib][a]"));
  ExpectSameAsLsyncd();
}

// Layer 3 through the shell, each variable passed as "$n": what a bash layer looks like,
// every path form included.
TEST_F(LayersTest, ShellLayerPassesEveryVariableAsAnArgument) {
  Run("layer = { delay = 0,\n"
      "  onStartup = 'exec ' .. REC .. ' startup ^source ^target',\n"
      "  onCreate = 'exec ' .. REC .. ' create ^path ^pathname ^pathdir ^sourcePath ^sourcePathname "
      "^sourcePathdir ^targetPath ^targetPathname ^targetPathdir',\n"
      "  onModify = 'exec ' .. REC .. ' modify ^sourcePathname',\n"
      "  onDelete = 'exec ' .. REC .. ' delete ^targetPath',\n"
      "  onMove = 'exec ' .. REC .. ' move ^o.targetPath ^d.targetPath ^o.path ^d.pathname' }",
      EveryKindOfChange(), 7);
  auto ours = Records(Syncd());
  EXPECT_THAT(ours, ::testing::Contains("[create][d/][d][][SRC//d/][SRC//d][SRC//][TGT//d/][TGT//d][TGT//]"));
  EXPECT_THAT(ours, ::testing::Contains("[move][TGT//a][TGT//d/b][a][d/b]"));
  ExpectSameAsLsyncd();
}

// Layer 2: functions of the event that call spawn() and spawnShell(), and read its fields.
TEST_F(LayersTest, FunctionLayerSeesTheEventsFields) {
  Run("layer = { delay = 0,\n"
      "  onCreate = function(e) spawn(e, REC, e.etype, e.path, e.isdir and 'dir' or 'file', e.name,\n"
      "    e.basename, e.pathname, e.status, e.source, e.target, e.targetPathname) end,\n"
      "  onModify = function(e) log('Normal', 'modified ', e.pathname)\n"
      "    spawnShell(e, REC .. ' \"$@\"', 'shell', e.pathname, e.sourcePathdir) end,\n"
      "  onMove = function(o, d) spawn(o, REC, 'move', o.etype, o.move, d.move, o.pathname, d.pathname) end,\n"
      "  onDelete = function(e) if e.isdir then spawn(e, REC, 'deleted dir', e.path) end end }",
      {[](const std::string& s) { Put(s + "/a", "alpha"); },
       [](const std::string& s) { MakeDirs(s + "/d"); },
       [](const std::string& s) { fs::rename(s + "/a", s + "/d/b"); },
       [](const std::string& s) { fs::remove(s + "/d/b"); },
       [](const std::string& s) { fs::remove(s + "/d"); }},
      5);
  auto ours = Records(Syncd());
  EXPECT_THAT(ours, ::testing::Contains("[Create][a][file][a][a][a][wait][SRC/][TGT/][TGT//a]"));
  EXPECT_THAT(ours, ::testing::Contains("[Create][d/][dir][d/][d][d][wait][SRC/][TGT/][TGT//d]"));
  EXPECT_THAT(ours, ::testing::Contains("[move][Move][Fr][To][a][d/b]"));
  EXPECT_THAT(ours, ::testing::Contains("[deleted dir][d/]"));
  ExpectSameAsLsyncd();
}

// Layer 1, as a csync2 layer is written: action() takes every ready event as one list and
// runs one process for it; collect() says 'again' once, and the same batch runs again.
TEST_F(LayersTest, ActionBatchesEventsAndCollectCanRunABatchAgain) {
  Run("local tries = 0\n"
      "layer = { delay = 1, maxProcesses = 1,\n"
      "  action = function(inlet)\n"
      "    local list = inlet.getEvents(function(e) return e.etype ~= 'Init' end)\n"
      "    local paths = list.getPaths()\n"
      "    table.sort(paths)\n"
      "    spawn(list, REC, 'batch', paths)\n"
      "  end,\n"
      "  init = function(event) spawn(event, REC, 'init', event.etype) end,\n"
      "  collect = function(agent, code)\n"
      "    if agent.isList then tries = tries + 1 end\n"
      "    if agent.isList and tries == 1 then return 'again' end\n"
      "    return 'ok'\n"
      "  end }",
      {[](const std::string& s) {
         Put(s + "/x", "1");
         Put(s + "/y", "2");
         MakeDirs(s + "/z");
       }},
      3);
  auto ours = Records(Syncd());
  ASSERT_EQ(ours.size(), 3u) << Joined(ours);
  EXPECT_EQ(ours[0], "[init][Init]");
  EXPECT_EQ(ours[1], ours[2]);  // The batch, run again after 'again'.
  EXPECT_THAT(ours[1], HasSubstr("[batch]"));
  EXPECT_THAT(ours[1], HasSubstr("[/x]"));
  EXPECT_THAT(ours[1], HasSubstr("[/z/]"));
  ExpectSameAsLsyncd();
}

// Names that would be commands if they reached a shell as text: every one arrives as one
// argument, and nothing they say is run.
TEST_F(LayersTest, HostileNamesRunNoInjectedCommand) {
  // Relative: a command that ran would leave its file in the tools' working directory.
  std::vector<std::string> names{"a b", "q'uote", "d\"q", "$(touch PWNED1)", "x;touch PWNED2",
                                 "`touch PWNED3`", "new\nline", "back\\slash", "-rf", "^path"};
  std::vector<std::function<void(const std::string&)>> steps;
  for (const std::string& n : names) steps.push_back([n](const std::string& s) { Put(s + "/" + n, "x"); });
  Run("layer = { delay = 0,\n"
      "  onCreate = REC .. ' binary ^pathname',\n"
      "  onModify = 'exec ' .. REC .. ' shell ^pathname ^sourcePathname' }",
      steps, 2 * names.size());
  for (const char* f : {"PWNED1", "PWNED2", "PWNED3"}) EXPECT_FALSE(fs::exists(f)) << f;
  auto ours = Records(Syncd());
  for (const std::string& n : names) {
    EXPECT_THAT(ours, ::testing::Contains("[binary][" + n + "]")) << Joined(ours);
    EXPECT_THAT(ours, ::testing::Contains("[shell][" + n + "][SRC//" + n + "]")) << Joined(ours);
  }
  ExpectSameAsLsyncd();
}

// exitcodes: a command that fails with a code marked 'again' runs again (its first failure is
// marked in each tool's own target).
TEST_F(LayersTest, ExitcodesSayWhatAFailureMeans) {
  WriteFile(tmp_ / "fail-once",
            "#!/bin/sh\nif [ -e \"$1.failed\" ]; then exit 0; fi\ntouch \"$1.failed\"; exit 3\n", 0755);
  Run("layer = { delay = 0, exitcodes = { [0] = 'ok', [3] = 'again' },\n"
      "  onCreate = function(e) spawnShell(e, '" + tmp_ / "fail-once" + " \"$1\" && " +
          "exec ' .. REC .. ' done \"$2\"', e.targetPathname, e.pathname) end }",
      {[](const std::string& s) { Put(s + "/f", "x"); }}, 1);
  EXPECT_THAT(Records(Syncd()), ::testing::ElementsAre("[done][f]"));
  EXPECT_THAT(Syncd().process->log(), HasSubstr("Retrying Create on"));
}

TEST_F(LayersTest, AFailureWithoutExitcodesStopsTheSync) {
  std::string conf = tmp_ / "conf.lua", source = tmp_ / "src";
  MakeDirs(source);
  WriteFile(conf, "sync { { onCreate = 'exit 4' }, source = '" + source + "', target = 'x' }\n", 0600);
  auto syncd = StartSyncd(conf, tmp_.path(), tmp_ / "log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs") != std::string::npos; }));
  Put(source + "/f", "x");
  auto status = syncd->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status) << syncd->log();
  EXPECT_EQ(*status, 1);
  EXPECT_THAT(syncd->log(), HasSubstr("Failure with Create on"));
  EXPECT_THAT(syncd->log(), HasSubstr("collect() said 'die'"));
}

// lsyncd's examples/lpostcmd.lua over default.rsync (a local command in place of its ssh):
// the replication is syncd's, and the command runs after each batch is on the target.
TEST_F(LayersTest, PostCommandLayerRunsAfterEachReplicatedBatch) {
  Run("layer = { default.rsync,\n"
      "  checkgauge = { default.rsync.checkgauge, postcmd = true },\n"
      "  maxProcesses = 1,\n"
      "  action = function(inlet)\n"
      "    local event = inlet.getEvent()\n"
      "    local config = inlet.getConfig()\n"
      "    if event.etype == 'Blanket' then\n"
      "      if rawget(event, 'isPostcmd') then\n"
      "        spawn(event, REC, 'post', config.postcmd)\n"
      "        return\n"
      "      end\n"
      "      return default.rsync.action(inlet)\n"
      "    end\n"
      "    local blanket = inlet.createBlanketEvent()\n"
      "    blanket.isPostcmd = true\n"
      "    return default.rsync.action(inlet)\n"
      "  end,\n"
      "  collect = function(agent, exitcode)\n"
      "    if not agent.isList and agent.etype == 'Blanket' and rawget(agent, 'isPostcmd') then\n"
      "      if exitcode == 255 then return 'again' end\n"
      "      return\n"
      "    end\n"
      "    return default.collect(agent, exitcode)\n"
      "  end,\n"
      "  prepare = function(config, level, skipTarget)\n"
      "    return default.rsync.prepare(config, level, skipTarget)\n"
      "  end }",
      {[](const std::string& s) {
         Put(s + "/x", "1");
         MakeDirs(s + "/d");
         Put(s + "/d/y", "2");
       }},
      1, ", delay = 1, postcmd = 'after', rsync = { archive = true }");
  for (const Tool& t : tools_) {
    SnapshotOptions options;
    options.dir_times = false;
    EXPECT_EQ(Diff(Snapshot(t.source, options), Snapshot(t.target, options)), "") << t.name;
  }
  EXPECT_THAT(Records(Syncd()), ::testing::ElementsAre("[post][after]"));
  ExpectSameAsLsyncd();
}

// A process that keeps failing shows in the status files; a reload that changes the layers
// restarts the sync with the new ones.
TEST_F(LayersTest, StatusShowsFailuresAndAReloadRunsTheNewLayers) {
  std::string conf = tmp_ / "conf.lua", source = tmp_ / "src", status = tmp_ / "status";
  MakeDirs(source);
  auto write_conf = [&](const std::string& on_create) {
    WriteFile(conf,
              "settings { statusFile = '" + status + "', statusInterval = 1 }\n"
              "sync { { exitcodes = { [0] = 'ok', [3] = 'again' }, onCreate = " + on_create +
                  " }, source = '" + source + "', target = 'x' }\n",
              0600);
  };
  write_conf("'exit 3'");
  auto syncd = StartRecorded(conf);
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs") != std::string::npos; }));
  Put(source + "/f", "x");
  ASSERT_TRUE(WaitUntil([&] {
    std::string json = fs::exists(status + ".json") ? ReadFile(status + ".json") : "";
    return json.find("\"failures\": 2") != std::string::npos &&
           json.find("\"state\": \"sending\"") != std::string::npos;
  })) << (fs::exists(status + ".json") ? ReadFile(status + ".json") : "") << syncd->log();
  write_conf("'exec " + recorder_ + " created ^pathname'");
  syncd->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("Sync1 changed; restarting it") != std::string::npos; }))
      << syncd->log();
  Put(source + "/g", "y");
  // The restarted sync runs its startup (nothing) and then the new onCreate for g.
  ASSERT_TRUE(WaitUntil([&] { return !Recorded(source).empty(); })) << syncd->log();
  EXPECT_THAT(Recorded(source), ::testing::Contains("[created][g]"));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(std::chrono::seconds(20)), 0) << syncd->log();
}

// A layer that raises an error, or loops forever, stops its own sync with its file and line;
// the other syncs go on.
TEST_F(LayersTest, ALayerThatFailsStopsOnlyItsSync) {
  std::string conf = tmp_ / "conf.lua";
  for (const char* d : {"a", "b", "c"}) MakeDirs(tmp_ / d);
  WriteFile(conf,
            "sync { { onCreate = function(e) error('no such table: ' .. e.pathname) end }, source = '" +
                tmp_ / "a" + "' }\n"
            "sync { { onCreate = function(e) while true do end end }, source = '" + tmp_ / "b" + "' }\n"
            "sync { { onCreate = 'exec " + recorder_ + " ^pathname' }, source = '" + tmp_ / "c" + "' }\n",
            0600);
  auto syncd = StartRecorded(conf, {"SYNCD_CONFIG_TIME_LIMIT=1"});
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 3 syncs") != std::string::npos; }));
  Put(tmp_ / "a/f", "x");
  Put(tmp_ / "b/f", "x");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("did not finish running within 1 s") != std::string::npos; }))
      << syncd->log();
  EXPECT_THAT(syncd->log(), HasSubstr("Sync1: a custom layer failed: " + conf + ":1: no such table: f"));
  EXPECT_THAT(syncd->log(), HasSubstr("Sync2: a custom layer failed: " + conf + ":2: did not finish running"));
  Put(tmp_ / "c/g", "y");
  ASSERT_TRUE(WaitUntil([&] { return !Recorded().empty(); })) << syncd->log();
  EXPECT_THAT(Recorded(), ::testing::ElementsAre("[g]"));
  EXPECT_TRUE(syncd->running());
}

// lsyncd's examples/lbash.lua as it is: cp, rm and mv through the shell keep a target in
// step, and the two tools' targets end the same as the source.
TEST_F(LayersTest, BashLayerKeepsTheTargetAsLsyncdDoes) {
  Run("layer = { delay = 0, maxProcesses = 1,\n"
      "  onStartup = [[\n"
      "if [ \"$(ls -A ^source)\" ]; then\n"
      "  cp -r ^source* ^target;\n"
      "else\n"
      "  if [ \"$(ls -A ^target)\" ]; then rm -rf ^target/*; fi\n"
      "fi]],\n"
      "  onCreate = [[cp -r ^sourcePath ^targetPathdir]],\n"
      "  onModify = [[cp -r ^sourcePath ^targetPathdir]],\n"
      "  onDelete = [[rm -rf ^targetPath]],\n"
      "  onMove = [[mv ^o.targetPath ^d.targetPath]] }",
      {[](const std::string& s) { Put(s + "/a", "alpha"); },
       [](const std::string& s) { AppendFile(s + "/a", " and more"); },
       [](const std::string& s) { MakeDirs(s + "/d/e"); },
       [](const std::string& s) { Put(s + "/d/e/f", "deep"); },
       [](const std::string& s) { fs::rename(s + "/a", s + "/d/a2"); },
       [](const std::string& s) { Put(s + "/gone", "x"); },
       [](const std::string& s) { fs::remove(s + "/gone"); }},
      0);
  SnapshotOptions options;
  options.dir_times = false;
  for (const Tool& t : tools_) {
    Tree source = Snapshot(t.source, options), target = Snapshot(t.target, options);
    for (Tree* tree : {&source, &target})
      for (auto& [path, node] : *tree) node.mtime_ns = 0;  // cp -r keeps no times.
    EXPECT_EQ(Diff(source, target), "") << t.name << "\n" << t.process->log();
  }
}

// A stop acts on what is queued, whatever its delay, and waits for the processes (lsyncd
// drops its queue): a change made just before the stop is not lost.
TEST_F(LayersTest, AStopRunsWhatIsQueued) {
  std::string conf = tmp_ / "conf.lua", source = tmp_ / "src";
  MakeDirs(source);
  WriteFile(conf, "sync { { delay = 60, onCreate = 'sleep 0.3; exec " + recorder_ + " ^pathname' }, source = '" +
                      source + "' }\n",
            0600);
  auto syncd = StartRecorded(conf);
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs") != std::string::npos; }));
  Put(source + "/a", "x");
  Put(source + "/b", "y");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Both are queued, for 60 s.
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(std::chrono::seconds(20)), 0) << syncd->log();
  auto records = Recorded();
  std::sort(records.begin(), records.end());
  EXPECT_EQ(records, (std::vector<std::string>{"[a]", "[b]"})) << syncd->log();
}

}  // namespace
}  // namespace syncd::itest
