// syncd against the real rsync: the same source, the same stale standby, the same rules; the
// standby syncd leaves must be the one `rsync -a --delete` leaves. First a table of filter
// rules (one sync per rule set, all in one syncd), then random trees and random live changes.
#include <gmock/gmock.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <iostream>
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

// rsync -a --delete with the rule set, as lsyncd's startup run does it. False when rsync
// itself broke down (rsync 3.5 -H aborts with "finish_hard_link" when hard-linked files
// cannot make way for themselves): then there is nothing to compare with.
bool RunRsync(const RuleSet& set, const std::string& src, const std::string& dst,
              const std::string& flags = "-a") {
  // rsync 3.5 with -H can hang on some trees: it gets half a minute.
  std::string cmd = "timeout 30 rsync " + flags + " --delete";
  if (set.delete_excluded) cmd += " --delete-excluded";
  for (const std::string& r : set.rules) cmd += " " + Quoted((set.filter ? "--filter=" : "--exclude=") + r);
  std::string out = dst + ".rsync-output";
  int status = std::system((cmd + " " + Quoted(src + "/") + " " + Quoted(dst + "/") + " >" +
                            Quoted(out) + " 2>&1").c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::string said = ReadFile(out);
  if ((code == 2 && said.find("(finish_hard_link)") != std::string::npos) || code == 124) {
    std::cerr << "rsync broke down; the comparison ends here:\n" << said;
    return false;
  }
  // 23: some deletion was refused ("cannot delete non-empty directory"); that is the point.
  EXPECT_TRUE(code == 0 || code == 23 || code == 24) << cmd << " exited " << code << ":\n" << said;
  return code == 0 || code == 23 || code == 24;
}

// Waits until syncd's standby equals rsync's; the difference and syncd's log explain a failure.
::testing::AssertionResult SameStandby(const std::string& rdst, const std::string& sdst,
                                       const SnapshotOptions& options, Process& syncd) {
  std::string diff;
  if (WaitUntil([&] {
        diff = Diff(Snapshot(rdst, options), Snapshot(sdst, options));
        return diff.empty();
      }))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << diff << syncd.log();
}

std::string Tail(const std::string& s, size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

bool IsWithinPath(const std::string& path, const std::string& dir) {
  return path == dir || path.starts_with(dir + "/");
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
    ASSERT_TRUE(RunRsync(sets[i], tmp_ / ("src" + n), tmp_ / ("rsync" + n)));
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

// one_file_system (rsync -x): a filesystem mounted inside the source goes over as an empty
// directory, at startup and while running, as rsync -ax leaves it.
TEST_F(RsyncDifferentialTest, OneFileSystemLeavesMountPointsEmptyAsRsyncDoes) {
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd";
  MakeDirs(src + "/mnt");
  MakeDirs(src + "/plain/sub");
  MakeDirs(rdst);
  MakeDirs(sdst);
  WriteFile(src + "/top", "top");
  WriteFile(src + "/plain/sub/f", "beneath");
  ASSERT_EQ(std::system(("mount -t tmpfs -o size=1m tmpfs '" + src + "/mnt'").c_str()), 0);
  struct Unmount {
    std::string dir;
    ~Unmount() { std::system(("umount -l '" + dir + "'").c_str()); }
  } unmount{src + "/mnt"};
  MakeDirs(src + "/mnt/inside");
  WriteFile(src + "/mnt/inside/f", "on the other filesystem");
  WriteFile(src + "/mnt/g", "on the other filesystem");
  ASSERT_TRUE(RunRsync({}, src, rdst, "-ax"));
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst +
                      "', rsync = { archive = true, one_file_system = true } }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;
  options.dir_times = false;
  EXPECT_EQ(Diff(Snapshot(rdst, options), Snapshot(sdst, options)), "");
  EXPECT_TRUE(fs::is_directory(sdst + "/mnt"));
  EXPECT_FALSE(fs::exists(sdst + "/mnt/g"));
  // While running: a change on the mounted filesystem stays there; one beside it goes over.
  WriteFile(src + "/mnt/inside/later", "not sent");
  WriteFile(src + "/plain/later", "sent");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(sdst + "/plain/later"); })) << syncd->log();
  ASSERT_TRUE(RunRsync({}, src, rdst, "-ax"));
  EXPECT_TRUE(WaitUntil([&] { return Diff(Snapshot(rdst, options), Snapshot(sdst, options)).empty(); }))
      << Diff(Snapshot(rdst, options), Snapshot(sdst, options));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

// -L and --copy-unsafe-links: symlinks to files and directories inside and outside the tree,
// absolute and relative, dangling; at startup and for links made while running. (A link that
// loops back to a directory above it: rsync -L copies the loop until the names are too long;
// syncd enters each directory once, a documented difference.)
class RsyncCopyLinksTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {
 protected:
  RsyncCopyLinksTest() : tmp_("copylinks") {}
  TempDir tmp_;
};

TEST_P(RsyncCopyLinksTest, LinksGoOverAsRsyncSendsThem) {
  const auto& [keys, flags] = GetParam();
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd", out = tmp_ / "outside";
  MakeDirs(src + "/dir/sub");
  MakeDirs(out + "/odir");
  MakeDirs(rdst);
  MakeDirs(sdst);
  WriteFile(src + "/dir/f", "inside");
  WriteFile(src + "/dir/sub/g", "deeper");
  WriteFile(out + "/of", "outside file");
  WriteFile(out + "/odir/h", "in an outside directory");
  // Links made with times in the past: rsync leaves a link's time alone when it is within
  // the second it finds.
  int64_t clock = 1700000000;
  auto link = [&](const std::string& target, const std::string& path) {
    fs::create_symlink(target, path);
    struct timespec t[2] = {{clock, 0}, {clock, 0}};
    clock += 7;
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
  };
  link("dir/f", src + "/to_inner_file");
  link("dir", src + "/to_inner_dir");
  link(out + "/of", src + "/abs_outer_file");
  link("../outside/odir", src + "/rel_outer_dir");
  link("../outside/nothing", src + "/dangling_outer");
  link("missing", src + "/dangling_inner");
  link("../g", src + "/dir/sub/to_missing_sibling");
  ASSERT_TRUE(RunRsync({}, src, rdst, flags));
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst + "', rsync = " + keys + " }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;
  options.dir_times = false;
  EXPECT_EQ(Diff(Snapshot(rdst, options), Snapshot(sdst, options)), "") << syncd->log();
  // While running: new links of each kind, and a link that changes where it points. (Not
  // beneath dir/: what changes there is also seen through to_inner_dir, which inotify, and
  // so syncd and lsyncd, see only at dir/; the copy under the link's name is brought up to
  // date at the next start.)
  MakeDirs(src + "/live");
  WriteFile(src + "/live/f", "live");
  link(out + "/odir", src + "/live/abs_outer_dir");
  link("f", src + "/live/to_sibling");
  fs::remove(src + "/to_inner_file");
  link(out + "/of", src + "/to_inner_file");
  ASSERT_TRUE(RunRsync({}, src, rdst, flags));
  EXPECT_TRUE(SameStandby(rdst, sdst, options, *syncd));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

INSTANTIATE_TEST_SUITE_P(Options, RsyncCopyLinksTest,
                         ::testing::Values(std::pair<std::string, std::string>{"{ archive = true, copy_links = true }", "-a -L"},
                                           std::pair<std::string, std::string>{"{ archive = true, copy_unsafe_links = true }",
                                                                               "-a --copy-unsafe-links"},
                                           std::pair<std::string, std::string>{"{ _extra = { '-L' } }", "-rltL"}),
                         [](const auto& p) { return std::string(p.index == 0 ? "CopyLinks" : p.index == 1 ? "CopyUnsafeLinks" : "ExtraL"); });

// A POSIX ACL as Linux stores it in system.posix_acl_access/_default: version 2, then
// (tag, permissions, id) entries in tag order.
std::string AclValue(const std::vector<std::tuple<uint16_t, uint16_t, uint32_t>>& entries) {
  std::string out;
  auto put = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(2, 4);
  for (auto [tag, perm, id] : entries) {
    put(tag, 2);
    put(perm, 2);
    put(id, 4);
  }
  return out;
}
constexpr uint16_t kUserObj = 1, kUser = 2, kGroupObj = 4, kMask = 0x10, kOther = 0x20;
constexpr uint32_t kNoId = 0xffffffff;

void SetXattr(const std::string& path, const std::string& name, const std::string& value) {
  ASSERT_EQ(::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
      << path << " " << name << ": " << std::strerror(errno);
}

// rsync -X and -A: extended attributes of every namespace but system., and ACLs (access and
// default), onto a standby with attributes of its own; then changes to them while running.
class RsyncXattrsTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {
 protected:
  RsyncXattrsTest() : tmp_("xattrs") {}
  TempDir tmp_;
};

TEST_P(RsyncXattrsTest, AttributesAndAclsGoOverAsRsyncSendsThem) {
  const auto& [keys, flags] = GetParam();
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd";
  MakeDirs(src + "/dir");
  MakeDirs(rdst + "/dir");
  WriteFile(src + "/plain", "no attributes");
  WriteFile(src + "/tagged", "attributes");
  WriteFile(src + "/dir/acl", "an ACL");
  fs::create_symlink("tagged", src + "/link");
  struct timespec past[2] = {{1700000000, 0}, {1700000000, 0}};  // See RsyncCopyLinksTest.
  ::utimensat(AT_FDCWD, (src + "/link").c_str(), past, AT_SYMLINK_NOFOLLOW);
  SetXattr(src + "/tagged", "user.mime_type", "text/plain");
  SetXattr(src + "/tagged", "user.binary", std::string("\0\1\2\xff", 4));
  SetXattr(src + "/tagged", "trusted.md5", "0123");
  SetXattr(src + "/dir", "user.dir", "yes");
  SetXattr(src + "/link", "trusted.on_link", "l");
  std::string acl = AclValue({{kUserObj, 6, kNoId}, {kUser, 4, 33}, {kGroupObj, 4, kNoId},
                              {kMask, 4, kNoId}, {kOther, 0, kNoId}});
  SetXattr(src + "/dir/acl", "system.posix_acl_access", acl);
  SetXattr(src + "/dir", "system.posix_acl_default", acl);
  // The standby's own: attributes the source lacks, another value, an ACL to go.
  WriteFile(rdst + "/plain", "stale");
  WriteFile(rdst + "/tagged", "stale");
  SetXattr(rdst + "/plain", "user.stale", "remove me");
  SetXattr(rdst + "/tagged", "user.mime_type", "text/html");
  SetXattr(rdst + "/plain", "system.posix_acl_access", acl);
  Shell("cp -a " + rdst + " " + sdst);
  ASSERT_TRUE(RunRsync({}, src, rdst, flags));
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst + "', rsync = " + keys + " }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;
  options.dir_times = false;
  options.xattrs = true;
  EXPECT_EQ(Diff(Snapshot(rdst, options), Snapshot(sdst, options)), "") << syncd->log();
  // While running: an attribute set, one removed, an ACL given, a new file with attributes.
  SetXattr(src + "/plain", "user.later", "set while running");
  ASSERT_EQ(::removexattr((src + "/tagged").c_str(), "user.binary"), 0);
  SetXattr(src + "/tagged", "trusted.md5", "4567");
  SetXattr(src + "/plain", "system.posix_acl_access", acl);
  WriteFile(src + "/dir/new", "new");
  SetXattr(src + "/dir/new", "user.new", "n");
  ASSERT_TRUE(RunRsync({}, src, rdst, flags));
  EXPECT_TRUE(SameStandby(rdst, sdst, options, *syncd));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

INSTANTIATE_TEST_SUITE_P(Options, RsyncXattrsTest,
                         ::testing::Values(std::pair<std::string, std::string>{"{ archive = true, xattrs = true, acls = true }", "-aXA"},
                                           std::pair<std::string, std::string>{"{ _extra = { '-aX' } }", "-aX"},
                                           std::pair<std::string, std::string>{"{ archive = true, acls = true }", "-aA"}),
                         [](const auto& p) { return std::string(p.index == 0 ? "XattrsAcls" : p.index == 1 ? "Xattrs" : "Acls"); });

// --backup, --suffix, --backup-dir: what the startup comparison and live changes replace or
// delete on the standby is kept where rsync keeps it. Each live round changes a path at most
// once: rsync run after several changes keeps only the version before the first.
struct BackupVariant {
  std::string name;
  std::string keys;          // rsync = {...}; BAK stands for the backup directory
  std::string flags;         // rsync's; BAK likewise
  std::string rsync_bak;     // The backup directories, relative to the test's directory ("" none).
  std::string syncd_bak;
  std::string kept_changed;  // Where syncd keeps the standby's "changed", relative to the test's directory.
};

void PrintTo(const BackupVariant& v, std::ostream* os) { *os << v.name; }

class RsyncBackupTest : public ::testing::TestWithParam<BackupVariant> {
 protected:
  RsyncBackupTest() : tmp_("backup") {}
  TempDir tmp_;
};

std::string WithBak(std::string s, const std::string& bak) {
  for (size_t at; (at = s.find("BAK")) != std::string::npos;) s.replace(at, 3, bak);
  return s;
}

TEST_P(RsyncBackupTest, ReplacedAndDeletedEntriesAreKeptAsRsyncKeepsThem) {
  const BackupVariant& v = GetParam();
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd";
  // A relative backup directory is relative to the standby's target directory.
  auto bak_arg = [&](const std::string& bak) { return bak.starts_with("../") ? bak : tmp_ / bak; };
  MakeDirs(src + "/d/e");
  MakeDirs(rdst);
  int64_t clock = 1700000000;
  auto write = [&](const std::string& path, const std::string& content) {
    WriteFile(path, content);
    struct timespec t[2] = {{clock, 0}, {clock, 0}};
    clock += 7;
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
  };
  write(src + "/same", "same");
  write(src + "/changed", "new content");
  write(src + "/d/e/deep", "deep, new");
  write(src + "/d/keep", "keep");
  // The standby: an equal file, older versions, entries the source lacks (a file, a link, a
  // directory tree), and a backup from an earlier run.
  MakeDirs(rdst + "/d/e");
  MakeDirs(rdst + "/gone/sub");
  Shell("cp -a " + src + "/same " + rdst + "/same");
  write(rdst + "/changed", "old content");
  write(rdst + "/d/e/deep", "deep, old");
  write(rdst + "/stale", "stale");
  write(rdst + "/gone/sub/x", "x");
  write(rdst + "/gone/y", "y");
  write(rdst + "/earlier~", "a backup already");
  fs::create_symlink("same", rdst + "/stale_link");
  Shell("cp -a " + rdst + " " + sdst);
  auto run_rsync = [&] { return RunRsync({}, src, rdst, WithBak(v.flags, bak_arg(v.rsync_bak))); };
  ASSERT_TRUE(run_rsync());
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst +
                      "', rsync = " + WithBak(v.keys, bak_arg(v.syncd_bak)) + " }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;
  options.dir_times = false;
  auto differences = [&] {
    std::string d = Diff(Snapshot(rdst, options), Snapshot(sdst, options));
    if (!v.rsync_bak.empty())
      d += Diff(Snapshot(tmp_ / fs::path(v.rsync_bak).filename().string(), options),
                Snapshot(tmp_ / fs::path(v.syncd_bak).filename().string(), options));
    return d;
  };
  EXPECT_EQ(differences(), "") << syncd->log();
  EXPECT_EQ(ReadFile(tmp_ / v.kept_changed), "old content");
  // While running: a file rewritten (written beside and renamed over the old one, as editors
  // save), one deleted, a directory deleted, a file replaced by a symlink. (Not a file renamed
  // to a new name: syncd renames it, rsync keeps a backup of the old name too; README.)
  write(src + "/changed", "newer content");
  fs::remove(src + "/same");
  fs::remove_all(src + "/d/e");
  write(src + "/to_link", "a file first");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(sdst + "/to_link"); })) << syncd->log();
  ASSERT_TRUE(run_rsync());
  EXPECT_TRUE(WaitUntil([&] { return differences().empty(); })) << differences() << syncd->log();
  fs::remove(src + "/to_link");
  fs::create_symlink("d/keep", src + "/to_link");
  struct timespec t[2] = {{clock, 0}, {clock, 0}};  // See RsyncCopyLinksTest.
  ::utimensat(AT_FDCWD, (src + "/to_link").c_str(), t, AT_SYMLINK_NOFOLLOW);
  ASSERT_TRUE(run_rsync());
  EXPECT_TRUE(WaitUntil([&] { return differences().empty(); })) << differences() << syncd->log();
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

INSTANTIATE_TEST_SUITE_P(
    Options, RsyncBackupTest,
    ::testing::Values(BackupVariant{"Beside", "{ archive = true, backup = true }", "-a -b", "", "", "syncd/changed~"},
                      BackupVariant{"Suffix", "{ archive = true, _extra = { '-b', '--suffix=.bak' } }",
                                    "-a -b --suffix=.bak", "", "", "syncd/changed.bak"},
                      BackupVariant{"Dir", "{ archive = true, backup = true, backup_dir = 'BAK' }",
                                    "-a -b --backup-dir=BAK", "rbak", "sbak", "sbak/changed"},
                      BackupVariant{"RelativeDirAndSuffix",
                                    "{ archive = true, backup_dir = 'BAK', suffix = '.old' }",
                                    "-a --backup-dir=BAK --suffix=.old", "../rbak", "../sbak",
                                    "sbak/changed.old"}),
    [](const ::testing::TestParamInfo<BackupVariant>& p) { return p.param.name; });

// -O and -J: the standby's directories and symlinks keep their own times, as rsync leaves them.
TEST_F(RsyncDifferentialTest, OmittedTimesAreLeftAsTheStandbyHasThem) {
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd";
  auto stamp = [](const std::string& path, int64_t when) {
    struct timespec t[2] = {{when, 0}, {when, 0}};
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
  };
  for (const std::string& root : {src, rdst}) {
    MakeDirs(root + "/d");
    WriteFile(root + "/d/f", "same");
    fs::create_symlink("d/f", root + "/l");
  }
  stamp(src + "/d/f", 1700000000);
  stamp(rdst + "/d/f", 1700000000);
  stamp(src + "/d", 1700000100);
  stamp(rdst + "/d", 1600000000);
  stamp(src + "/l", 1700000200);
  stamp(rdst + "/l", 1600000100);
  Shell("cp -a " + rdst + " " + sdst);
  ASSERT_TRUE(RunRsync({}, src, rdst, "-a -O -J"));
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst +
                      "', rsync = { archive = true, omit_dir_times = true, _extra = { '-J' } } }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
      << syncd->log();
  SnapshotOptions options;  // Directory times compared too.
  Tree rsyncs = Snapshot(rdst, options);
  rsyncs.erase(".");  // The top: rsync -O leaves it alone too, but cp -a gave both a time of now.
  Tree syncds = Snapshot(sdst, options);
  syncds.erase(".");
  EXPECT_EQ(Diff(rsyncs, syncds), "") << syncd->log();
  EXPECT_EQ(syncds["d"].mtime_ns, int64_t{1600000000} * 1000000000);
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

// One way of running both tools: the sync{} keys and rsync's flags that mean the same.
struct Variant {
  std::string name;
  std::string keys;   // rsync = {...} in sync{}
  std::string flags;  // rsync's
  bool chmod_chown;   // Whether metadata changes propagate (and so are worth making).
  bool specials;      // rsync -D: FIFOs, sockets and devices replicate.
  bool hard_links = false;  // rsync -H: names of one file stay one file.
  // Compare the startup result only: the option's live result differs from one rsync run by
  // design. With --ignore-existing syncd sends a file when it is first closed, and what is
  // done to it afterwards does not go over; with the size rules, a file that syncd sent into
  // a directory stays when the directory is then replaced by a file the rules skip. One
  // rsync run sees only the end state.
  bool startup_only = false;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class RsyncLiveDifferentialTest : public ::testing::TestWithParam<Variant> {
 protected:
  RsyncLiveDifferentialTest() : tmp_("rsynclive") { ::umask(022); }
  TempDir tmp_;
};

// Random trees (with FIFOs, sockets and devices), a stale standby, then random live changes: after each round the standby that
// syncd keeps must equal what `rsync --delete` makes of the same source and the same standby.
// SYNCD_DIFF_SEED and SYNCD_DIFF_ROUNDS run it longer or otherwise.
TEST_P(RsyncLiveDifferentialTest, RandomTreeAndLiveChanges) {
  const Variant& v = GetParam();
  const char* seed_env = std::getenv("SYNCD_DIFF_SEED");
  const char* rounds_env = std::getenv("SYNCD_DIFF_ROUNDS");
  unsigned seed = seed_env ? static_cast<unsigned>(std::atoi(seed_env)) : 20261201;
  int rounds = rounds_env ? std::atoi(rounds_env) : 30;
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const RuleSet rules{{"*.tmp", ".cache/"}};
  static const std::vector<std::string> kNames = {
      "a", "b c", "sess_1", "[x]", "ü", "d.tmp", ".cache", "e", "f]g", "h\\i", "j*", "k"};
  static const std::vector<mode_t> kModes = {0600, 0644, 0640, 0755, 0700, 04755, 0444};
  int64_t clock = 1700000000;
  // Times in the past, each its own: rsync does not set a time that is within the same
  // second as the one it finds (a link it just made), so "now" would compare by chance.
  auto stamp = [&](const std::string& path) {
    struct timespec t[2] = {{clock, 0}, {clock, 123456789}};
    clock += 7;
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
  };
  auto link = [&](const std::string& target, const std::string& path) {
    fs::create_symlink(target, path);
    stamp(path);
  };
  // A new file with random content, mode, owner and time, written in place (not renamed into
  // place: with permissions not kept, a renamed file keeps the mode it had on the standby).
  auto write = [&](const std::string& path) {
    // Created with its mode (no group or other write bits, so the umask changes nothing):
    // without kept permissions the first copy's mode is the one that stays.
    mode_t mode = kModes[static_cast<size_t>(pick(static_cast<int>(kModes.size())))];
    bool existed = fs::exists(path);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0) << path;
    if (existed && v.chmod_chown) ::fchmod(fd, mode);
    std::string content(static_cast<size_t>(pick(3000)), static_cast<char>('a' + pick(26)));
    ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    if (pick(3) == 0) Chown(path, "www-data", "www-data");
    stamp(path);
  };
  // A FIFO, a socket or a device node (rsync -D replicates them; without it, it skips them).
  auto special = [&](const std::string& path) {
    static const std::vector<std::pair<mode_t, dev_t>> kinds = {
        {S_IFIFO | 0644, 0}, {S_IFSOCK | 0755, 0}, {S_IFCHR | 0666, makedev(1, 3)},
        {S_IFBLK | 0660, makedev(7, 0)}};
    auto [mode, dev] = kinds[static_cast<size_t>(pick(static_cast<int>(kinds.size())))];
    ASSERT_EQ(::mknod(path.c_str(), mode, dev), 0) << path;
    stamp(path);
  };
  // Existing entries of `root` beneath it, as relative paths, of one kind.
  auto entries = [&](const std::string& root, char type) {
    std::vector<std::string> out;
    for (const auto& [path, n] : Snapshot(root))
      if (path != "." && n.type == type) out.push_back(path);
    return out;
  };
  auto random_dir = [&](const std::string& root) {
    std::vector<std::string> dirs = entries(root, 'd');
    dirs.push_back("");
    return dirs[static_cast<size_t>(pick(static_cast<int>(dirs.size())))];
  };
  auto join = [](const std::string& dir, const std::string& name) {
    return dir.empty() ? name : dir + "/" + name;
  };
  std::string src = tmp_ / "src", rdst = tmp_ / "rsync", sdst = tmp_ / "syncd";
  // A name that is free in the source and on both standbys (where a directory may linger
  // that kept protected entries).
  auto new_name = [&](const std::string& root, const std::string& dir) {
    for (int i = 0;; ++i) {
      std::string name = join(dir, kNames[static_cast<size_t>(pick(static_cast<int>(kNames.size())))] +
                                       (i > 3 ? std::to_string(i) : ""));
      bool taken = false;
      for (const std::string& r : {root, rdst, sdst})
        taken = taken || fs::exists(fs::symlink_status(r + "/" + name));
      if (!taken) return name;
    }
  };
  // Whether the standby holds something beneath `dir` that the source does not: a rename
  // moves it along on syncd's standby, where rsync sends a copy (a documented difference).
  auto standby_extra = [&](const std::string& dir) {
    Tree here = Snapshot(src + "/" + dir), there = Snapshot(rdst + "/" + dir);
    for (const auto& [path, n] : there)
      if (!here.contains(path)) return true;
    return false;
  };
  // The start: a random tree, and a standby with stale and protected entries.
  MakeDirs(src);
  for (int i = 0; i < 60; ++i) {
    std::string dir = random_dir(src);
    std::string path = new_name(src, dir);
    if (pick(4) == 0) MakeDirs(src + "/" + path);
    else if (pick(8) == 0) link(pick(2) ? "a" : "../nowhere", src + "/" + path);
    else if (pick(10) == 0) special(src + "/" + path);
    else write(src + "/" + path);
  }
  MakeDirs(rdst);
  for (int i = 0; i < 15; ++i) {
    std::string dir = pick(2) ? random_dir(src) : "stale" + std::to_string(pick(3));
    MakeDirs(rdst + "/" + dir);
    WriteFile(rdst + "/" + join(dir, pick(2) ? "p" + std::to_string(i) + ".tmp" : "s" + std::to_string(i)),
              "stale");
  }
  // Stale copies of source files: the same size and time with other content (found only
  // by -c), a newer time (kept by -u), another size. A copy of the first kind stays stale
  // with rsync's quick check, and a rename moves it on syncd's standby where rsync sends the
  // file under its new name; so such files are not renamed below (the two standbys would
  // differ only in content that both tools' checks call equal).
  std::set<std::string> quick_check_equal;
  // (Not with -H: rsync 3.5 -aH hangs on such a standby once links appear.)
  std::vector<std::string> source_files = entries(src, 'f');
  for (size_t i = 0; i < source_files.size() && !v.hard_links; i += 3) {
    const std::string& f = source_files[i];
    std::string there = rdst + "/" + f;
    MakeDirs(rdst + "/" + fs::path(f).parent_path().string());
    struct stat st;
    ASSERT_EQ(::lstat((src + "/" + f).c_str(), &st), 0);
    int kind = pick(3);
    if (kind == 0) quick_check_equal.insert(f);
    std::string content = kind == 2 ? std::string("other size") : std::string(static_cast<size_t>(st.st_size), 'Z');
    WriteFile(there, content);
    struct timespec t[2] = {st.st_mtim, st.st_mtim};
    if (kind == 1) t[0].tv_sec = t[1].tv_sec = 1900000000;
    ::utimensat(AT_FDCWD, there.c_str(), t, 0);
  }
  Shell("cp -a " + rdst + " " + sdst);
  ASSERT_TRUE(RunRsync(rules, src, rdst, v.flags));
  std::string path = tmp_ / "syncd.conf.lua";
  WriteFile(path, "sync { default.rsync, source = '" + src + "', target = '" + sdst +
                      "', exclude = " + LuaList(rules.rules) + ", " + v.keys + " }\n");
  auto syncd = StartSyncd(path, tmp_.path(), tmp_ / "syncd.log", {"-log", "all"});
  SnapshotOptions options;
  options.dir_times = false;
  options.hard_links = v.hard_links;
  std::string history;  // Every change made, to replay a failure.
  auto same = [&](const std::string& step) {
    std::string diff;
    bool ok = WaitUntil([&] {
      diff = Diff(Snapshot(rdst, options), Snapshot(sdst, options));
      return diff.empty();
    }, std::chrono::seconds(30));
    EXPECT_TRUE(ok) << "seed " << seed << ", " << step << ":\n" << diff.substr(0, 3000)
                    << "\nchanges so far:\n" << history
                    << "\nsource against rsync's standby:\n"
                    << Diff(Snapshot(src, options), Snapshot(rdst, options)).substr(0, 3000)
                    << "\nsyncd log (the end):\n" << Tail(syncd->log(), 400000);
    return ok;
  };
  ASSERT_TRUE(same("startup"));
  if (v.startup_only) rounds = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string done;
    for (int n = 0; n < 3; ++n) {
      std::vector<std::string> files = entries(src, 'f');
      std::vector<std::string> dirs = entries(src, 'd');
      int op = pick(13);
      if (op == 0 || files.empty()) {
        std::string p = new_name(src, random_dir(src));
        write(src + "/" + p);
        done += " create " + p;
      } else if (op == 1) {
        std::string p = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        write(src + "/" + p);
        quick_check_equal.erase(p);
        done += " rewrite " + p;
      } else if (op == 2 && v.chmod_chown) {
        std::string p = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        ::chmod((src + "/" + p).c_str(), kModes[static_cast<size_t>(pick(static_cast<int>(kModes.size())))]);
        Chown(src + "/" + p, pick(2) ? "www-data" : "root", "www-data");
        done += " chmod/chown " + p;
      } else if (op == 3) {
        std::string p = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        fs::remove(src + "/" + p);
        done += " rm " + p;
      } else if (op == 4 && !dirs.empty()) {
        // The standby holds an excluded file in the directory; the source deletes the tree.
        std::string d = dirs[static_cast<size_t>(pick(static_cast<int>(dirs.size())))];
        bool on_both = fs::is_directory(rdst + "/" + d) && fs::is_directory(sdst + "/" + d);
        for (const std::string& root : {rdst, sdst}) {
          if (!on_both) break;
          WriteFile(root + "/" + d + "/planted.tmp", "protected");
          struct timespec t[2] = {{clock, 0}, {clock, 0}};
          ::utimensat(AT_FDCWD, (root + "/" + d + "/planted.tmp").c_str(), t, 0);
        }
        fs::remove_all(src + "/" + d);
        done += " rm -rf " + d + " (planted.tmp on the standby)";
      } else if (op == 5) {
        std::string p = new_name(src, random_dir(src));
        MakeDirs(src + "/" + p);
        write(src + "/" + p + "/inside");
        done += " mkdir " + p;
      } else if ((op == 6 || op == 7) && !v.chmod_chown) {
        // Without kept permissions a rename keeps the mode the standby had, as lsyncd's
        // rsyncssh `mv` does, where rsync makes a new file (README: deliberate differences).
        continue;
      } else if (op == 6) {
        std::string from = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        if (quick_check_equal.contains(from)) continue;
        std::string to = new_name(src, random_dir(src));
        fs::rename(src + "/" + from, src + "/" + to);
        done += " mv " + from + " " + to;
      } else if (op == 7 && !dirs.empty()) {
        std::string from = dirs[static_cast<size_t>(pick(static_cast<int>(dirs.size())))];
        std::string to = new_name(src, random_dir(src));
        if (IsWithinPath(to, from) || standby_extra(from)) continue;
        if (std::any_of(quick_check_equal.begin(), quick_check_equal.end(),
                        [&](const std::string& q) { return IsWithinPath(q, from); }))
          continue;
        fs::rename(src + "/" + from, src + "/" + to);
        done += " mv " + from + "/ " + to;
      } else if (op == 8 && !dirs.empty()) {
        std::string d = dirs[static_cast<size_t>(pick(static_cast<int>(dirs.size())))];
        fs::remove_all(src + "/" + d);
        write(src + "/" + d);
        done += " dir->file " + d;
      } else if (op == 12) {
        // Another name for a file (rsync -H keeps them one file; without it, two).
        std::string from = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        std::string to = new_name(src, random_dir(src));
        ASSERT_EQ(::link((src + "/" + from).c_str(), (src + "/" + to).c_str()), 0) << from;
        done += " ln " + from + " " + to;
      } else if (op == 10) {
        std::string p = new_name(src, random_dir(src));
        special(src + "/" + p);
        done += " special " + p;
      } else if (op == 11 && !v.specials) {
        // Skipped, a special file leaves whatever the standby had at that moment: a file
        // that was there for a few milliseconds on syncd's standby, never on rsync's.
        continue;
      } else if (op == 11) {
        // A file becomes a FIFO, a socket or a device.
        std::string p = files[static_cast<size_t>(pick(static_cast<int>(files.size())))];
        fs::remove(src + "/" + p);
        special(src + "/" + p);
        done += " file->special " + p;
      } else {
        std::string p = new_name(src, random_dir(src));
        link(pick(2) ? "sess_1" : "../x y", src + "/" + p);
        done += " symlink " + p;
      }
    }
    if (!RunRsync(rules, src, rdst, v.flags)) break;
    history += "round " + std::to_string(round) + ":" + done + "\n";
    if (!same("round " + std::to_string(round) + ":" + done)) break;
  }
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

INSTANTIATE_TEST_SUITE_P(
    Variants, RsyncLiveDifferentialTest,
    ::testing::Values(Variant{"Archive", "rsync = { archive = true }", "-a", true, true},
                      // lsyncd's default rsync table: links and times, no perms or owners.
                      Variant{"LsyncdDefault", "rsync = { }", "-rlt", false, false},
                      Variant{"PermsAndSpecials", "rsync = { perms = true, times = true, specials = true, devices = true }",
                              "-rltpD", true, true},
                      Variant{"HardLinks", "rsync = { archive = true, hard_links = true }", "-aH",
                              true, true, true},
                      // chmod rules on top of kept permissions, and on new files without them.
                      Variant{"ChmodKeptPerms",
                              "rsync = { archive = true, chmod = 'Dg+s,ug+w,Fo-w,+X' }",
                              "-a --chmod=Dg+s,ug+w,Fo-w,+X", true, true},
                      Variant{"ChmodNoPerms", "rsync = { _extra = { '--chmod=u=rwX,go=rX' } }",
                              "-rlt --chmod=u=rwX,go=rX", false, false},
                      // Transfer rules: what is sent at all, and how a change is found.
                      Variant{"UpdateSafeLinks",
                              "rsync = { archive = true, update = true, _extra = { '--safe-links' } }",
                              "-a -u --safe-links", true, true},
                      Variant{"FileSizes",
                              "rsync = { archive = true, _extra = { '--max-size=2000', "
                              "'--min-size=10' } }",
                              "-a --max-size=2000 --min-size=10", true, true, false, true},
                      Variant{"ExistingSizeOnly",
                              "rsync = { archive = true, existing = true, _extra = { '--size-only' } }",
                              "-a --existing --size-only", true, true},
                      Variant{"Checksum", "rsync = { archive = true, checksum = true }", "-a -c",
                              true, true},
                      Variant{"IgnoreExisting",
                              "rsync = { archive = true, _extra = { '--ignore-existing' } }",
                              "-a --ignore-existing", true, true, false, true},
                      // Owners mapped by name and id, and by number only.
                      Variant{"OwnerMaps",
                              "rsync = { archive = true, usermap = 'www-data:nobody,0:33', "
                              "groupmap = '*:www-data' }",
                              "-a --usermap=www-data:nobody,0:33 --groupmap=*:www-data", true, true},
                      Variant{"ChownNumericIds",
                              "rsync = { archive = true, numeric_ids = true, chown = 'nobody:' }",
                              "-a --numeric-ids --chown=nobody:", true, true}),
    [](const ::testing::TestParamInfo<Variant>& p) { return p.param.name; });

}  // namespace
}  // namespace syncd::itest
