// syncd against the real rsync: the same source, the same stale standby, the same rules; the
// standby syncd leaves must be the one `rsync -a --delete` leaves. First a table of filter
// rules (one sync per rule set, all in one syncd), then random trees and random live changes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;

// One rule set. `filter` rules go to sync{} as `filter` and to rsync as --filter; otherwise
// the patterns go as `exclude` and --exclude.
struct RuleSet {
  std::vector<std::string> rules;
  bool filter = false;
  bool delete_excluded = false;
};

const std::vector<RuleSet>& RuleSets() {
  static const std::vector<RuleSet> sets = {
      {{".*"}}, {{"*.tmp"}}, {{"d/*.tmp"}}, {{"d/**.tmp"}}, {{"/cache"}}, {{"cache/"}},
      {{"a/cache"}}, {{"tmp/"}}, {{"**/cache/**"}}, {{"logs/***"}}, {{"/logs/***"}},
      {{"[[:digit:]]*"}}, {{"[![:alpha:]]*"}}, {{"[]a]x"}}, {{"[a-c].txt"}}, {{"[^a-c].txt"}},
      {{"a\\*b"}}, {{"a\\b"}}, {{"a]b"}}, {{"c[d"}}, {{"file?.log"}}, {{"*~"}}, {{"*.sw?"}},
      {{"/etc/*.conf"}}, {{"etc/**"}}, {{"**/build/*.o"}}, {{"*/deep/*"}}, {{"sub/**/x"}},
      {{"a b"}}, {{"*"}}, {{"/top.conf"}}, {{".git/"}}, {{"**/.git/**"}}, {{"- *.tmp"}},
      {{"+ keep.tmp", "*.tmp"}}, {{"*.log", "/logs/"}}, {{"[[:upper:]]*"}}, {{"**"}},
      {{"d/"}}, {{"/d/e"}}, {{"[[:space:]]*"}}, {{"*[[:digit:]][[:digit:]]*"}},
      {{"+ /*/", "+ /*/*.conf", "- *"}, true}, {{"+ /etc/***", "- *"}, true},
      {{"+ */", "+ *.conf", "- *"}, true}, {{"- /cache/", "+ *"}, true}, {{"-! *.php"}, true},
      {{"+ *.php", "- *.*"}, true}, {{"P *.keep", "- *.tmp"}, true}, {{"H *.log"}, true},
      {{"- *.tmp", "P stale.keep"}, true}, {{"exclude *.bak", "include *"}, true},
      {{"-p *.tmp"}, true}, {{"R stale.tmp", "- *.tmp"}, true},
      {{"+ d/", "+ d/e/", "+ d/e/**", "- *"}, true}, {{"- **/sub/x"}, true}, {{"- /d/*/"}, true},
      {{"+ /a/", "- /*"}, true}, {{"- *.o", "!", "- *.tmp"}, true}, {{"-s *.tmp"}, true},
      {{"-r *.tmp"}, true}, {{"+ /logs/", "+ /logs/*.log", "- /logs/*", "+ *"}, true},
      {{"*.tmp"}, false, true}, {{".*", "cache/"}, false, true}, {{"- *.txt", "+ *"}, true},
  };
  return sets;
}

// Names that rsync's rules treat in every way: wildcards in names, dot-files, depth.
const std::vector<std::string> kSourceFiles = {
    "top.conf", "top.txt", ".hidden", ".git/config", "a/cache/f", "a/b.txt", "a]b", "c[d",
    "a*b", "a\\b", "a b", "]x", "b.txt", "d.txt", "7days", "_x", "cache/f", "cache/sub/g",
    "d/x.tmp", "d/e/x.tmp", "d/e/deep/f", "d/y", "etc/a.conf", "etc/a.txt", "etc/sub/b.conf",
    "index.php", "x.js", "file1.log", "file10.log", "notes~", "x.swp", "build/x.o", "sub/a/x",
    "sub/x", "logs/a.log", "logs/b.txt", "x/logs/y", "Upper.txt", "keep.tmp", "sp ace/f",
    "12ab", "x.bak"};
// What a stale standby holds: files the source lacks, some of them excluded, some of them in
// directories the source lacks (deleted with their directory, unless protected).
const std::vector<std::string> kStaleFiles = {
    "stale.tmp", "stale.keep", "stale.txt", "olddir/x", "olddir/.keep", "olddir/y.tmp",
    "olddir/sub/z.tmp", "olddir/sub/w", "cache/old", "logs/old.log", "d/e/stale.tmp",
    ".hidden-old", "gone.o", "etc/old.conf", "top.txt/was-a-dir.tmp"};

std::string LuaList(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& s : items) out += "[==[" + s + "]==],";
  return out + "}";
}

std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// rsync -a --delete with the rule set, as lsyncd's startup run does it.
void RunRsync(const RuleSet& set, const std::string& src, const std::string& dst,
              const std::string& flags = "-a") {
  std::string cmd = "rsync " + flags + " --delete";
  if (set.delete_excluded) cmd += " --delete-excluded";
  for (const std::string& r : set.rules) cmd += " " + Quoted((set.filter ? "--filter=" : "--exclude=") + r);
  cmd += " " + Quoted(src + "/") + " " + Quoted(dst + "/") + " >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // 23: some deletion was refused ("cannot delete non-empty directory"); that is the point.
  ASSERT_TRUE(code == 0 || code == 23 || code == 24) << cmd << " exited " << code;
}

std::string SyncKeys(const RuleSet& set) {
  std::string keys = set.filter ? "filter = " + LuaList(set.rules) : "exclude = " + LuaList(set.rules);
  return keys + ", rsync = { archive = true" +
         (set.delete_excluded ? std::string(", delete_excluded = true") : "") + " }";
}

class RsyncDifferentialTest : public ::testing::Test {
 protected:
  RsyncDifferentialTest() : tmp_("rsyncdiff") { ::umask(022); }
  TempDir tmp_;
};

// Every rule set through rsync and through syncd (its startup comparison), from the same source
// onto the same stale standby: the standbys must be equal, entry by entry.
TEST_F(RsyncDifferentialTest, FilterRulesGiveTheStandbyRsyncGives) {
  std::string base = tmp_ / "base", stale = tmp_ / "stale";
  for (const std::string& f : kSourceFiles) {
    MakeDirs(fs::path(base + "/" + f).parent_path());
    WriteFile(base + "/" + f, "content of " + f);
  }
  MakeDirs(base + "/emptydir");
  for (const std::string& f : kStaleFiles) {
    MakeDirs(fs::path(stale + "/" + f).parent_path());
    WriteFile(stale + "/" + f, "stale " + f);
  }
  const auto& sets = RuleSets();
  ASSERT_GE(sets.size(), 60u);
  std::string config = "settings { statusFile = '" + tmp_ / "status" + "' }\n";
  for (size_t i = 0; i < sets.size(); ++i) {
    std::string n = std::to_string(i);
    Shell("cp -a " + base + " " + tmp_ / ("src" + n) + " && cp -a " + stale + " " +
          tmp_ / ("rsync" + n) + " && cp -a " + stale + " " + tmp_ / ("syncd" + n));
    RunRsync(sets[i], tmp_ / ("src" + n), tmp_ / ("rsync" + n));
    config += "sync { default.rsync, source = '" + tmp_ / ("src" + n) + "', target = '" +
              tmp_ / ("syncd" + n) + "', " + SyncKeys(sets[i]) + " }\n";
  }
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, config);
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  std::string all = "all " + std::to_string(sets.size()) + " syncs are in sync";
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find(all) != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;
  options.dir_times = false;  // A directory that kept protected entries has its deletion time.
  size_t equal = 0;
  for (size_t i = 0; i < sets.size(); ++i) {
    std::string n = std::to_string(i);
    std::string diff = Diff(Snapshot(tmp_ / ("rsync" + n), options), Snapshot(tmp_ / ("syncd" + n), options));
    EXPECT_EQ(diff, "") << "rule set " << i << ": " << ::testing::PrintToString(sets[i].rules)
                        << (sets[i].filter ? " (filter)" : " (exclude)");
    equal += diff.empty();
  }
  EXPECT_EQ(equal, sets.size());
  // What was kept is said once per directory, with why.
  EXPECT_THAT(syncd->log(), ::testing::HasSubstr("olddir stays on the peer"));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

}  // namespace
}  // namespace syncd::itest
