// syncd against lsyncd 2.2.3 itself: the same config keys, the same source tree and stale
// standby, the same changes; the two standbys must end equal. lsyncd runs its default.rsync
// layer (rsync, locally, `delay = 1`); syncd the same sync{} without a delay.
#include <gmock/gmock.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;

struct Keys {
  std::string name;
  std::string keys;  // Inside sync{}, for both tools.
};

void PrintTo(const Keys& k, std::ostream* os) { *os << k.name; }

class LsyncdParityTest : public ::testing::TestWithParam<Keys> {
 protected:
  LsyncdParityTest() : tmp_("lsyncdparity") { ::umask(022); }
  TempDir tmp_;
};

// Writes `content` at `path` in both sources, with one mode and one time.
void WriteBoth(const std::string& a, const std::string& b, const std::string& rel,
               const std::string& content, mode_t mode, int64_t when) {
  for (const std::string& root : {a, b}) {
    std::string path = root + "/" + rel;
    WriteFile(path, content, mode);
    struct timespec t[2] = {{when, 0}, {when, 0}};
    ::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW);
  }
}

TEST_P(LsyncdParityTest, SameStandbyAsLsyncd) {
  if (::access("/usr/bin/lsyncd", X_OK) != 0) GTEST_SKIP() << "lsyncd is not installed";
  const Keys& k = GetParam();
  std::string base = tmp_ / "base", s1 = tmp_ / "src_lsyncd", s2 = tmp_ / "src_syncd";
  std::string t1 = tmp_ / "dst_lsyncd", t2 = tmp_ / "dst_syncd";
  MakeDirs(base + "/dir/sub");
  MakeDirs(base + "/cache");
  MakeDirs(tmp_ / "stale/old");
  Shell("cp -a " + base + " " + s1 + " && cp -a " + base + " " + s2);
  int64_t when = 1700000000;
  WriteBoth(s1, s2, "a.txt", "alpha", 0640, when++);
  WriteBoth(s1, s2, "big.bin", std::string(5000, 'b'), 0755, when++);
  WriteBoth(s1, s2, "dir/sub/x.tmp", "temporary", 0600, when++);
  WriteBoth(s1, s2, "dir/sub/keep", "kept", 0604, when++);
  WriteBoth(s1, s2, "cache/c", "cached", 0644, when++);
  WriteFile(tmp_ / "stale/old/f", "stale");
  WriteFile(tmp_ / "stale/a.txt", "older alpha, newer time");
  WriteFile(tmp_ / "stale/p.tmp", "protected by the exclude");
  struct timespec t[2] = {{1900000000, 0}, {1900000000, 0}};
  ::utimensat(AT_FDCWD, (tmp_ / "stale/a.txt").c_str(), t, 0);
  Shell("cp -a " + tmp_ / "stale" + " " + t1 + " && cp -a " + tmp_ / "stale" + " " + t2);

  std::string lconf = tmp_ / "lsyncd.conf.lua", sconf = tmp_ / "syncd.conf.lua";
  WriteFile(lconf, "settings { nodaemon = true, logfile = '" + tmp_ / "lsyncd.log" +
                       "' }\nsync { default.rsync, source = '" + s1 + "', target = '" + t1 +
                       "', delay = 1, " + k.keys + " }\n");
  WriteFile(sconf, "sync { default.rsync, source = '" + s2 + "', target = '" + t2 + "', " +
                       k.keys + " }\n");
  Process lsyncd({"/usr/bin/lsyncd", "-nodaemon", lconf}, {"HOME=" + tmp_.path()},
                 tmp_ / "lsyncd.out");
  auto syncd = StartSyncd(sconf, tmp_.path(), tmp_ / "syncd.log");
  SnapshotOptions options;
  options.dir_times = false;  // Directories are touched at different moments by each tool.
  // Both tools have handled everything before a marker once the marker is on their standby
  // (lsyncd ships a batch with one rsync run; syncd sends changes in order).
  auto marked = [&](const std::string& name) {
    WriteBoth(s1, s2, name, name, 0644, 1700000999);
    return WaitUntil([&] { return fs::exists(t1 + "/" + name) && fs::exists(t2 + "/" + name); },
                     std::chrono::seconds(60));
  };
  auto same = [&](const std::string& step) {
    EXPECT_TRUE(marked("marker_" + std::to_string(when++))) << step << ": a marker never arrived";
    std::string diff;
    bool ok = WaitUntil([&] {
      diff = Diff(Snapshot(t1, options), Snapshot(t2, options));
      return diff.empty();
    }, std::chrono::seconds(40));
    EXPECT_TRUE(ok) << k.name << ", " << step << " (want: lsyncd's standby, have: syncd's):\n"
                    << diff << "\nlsyncd log:\n" << ReadFile(tmp_ / "lsyncd.log")
                    << "\nsyncd log:\n" << syncd->log();
    return ok;
  };
  ASSERT_TRUE(same("startup"));
  // Live: new, rewritten, chmod, deleted, renamed (no excluded entries inside), new dir.
  WriteBoth(s1, s2, "new.txt", "new", 0644, when++);
  WriteBoth(s1, s2, "a.txt", "alpha, rewritten", 0600, when++);
  WriteBoth(s1, s2, "big.bin", std::string(6000, 'B'), 0700, when++);
  for (const std::string& root : {s1, s2}) {
    fs::remove(root + "/cache/c");
    fs::rename(root + "/dir/sub/keep", root + "/kept_here");
    MakeDirs(root + "/fresh/deep");
  }
  WriteBoth(s1, s2, "fresh/deep/f", "deep", 0644, when++);
  WriteBoth(s1, s2, "fresh/y.tmp", "temporary", 0644, when++);
  same("live changes");
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0);
  lsyncd.Signal(SIGTERM);
  lsyncd.Wait();
}

INSTANTIATE_TEST_SUITE_P(
    Configs, LsyncdParityTest,
    ::testing::Values(
        Keys{"ArchiveExclude", "exclude = { '*.tmp' }, rsync = { archive = true }"},
        Keys{"LsyncdDefaults", "exclude = { '*.tmp' }"},
        Keys{"ArchiveWithoutPermsAndChmod",
             "exclude = { '*.tmp' }, rsync = { archive = true, perms = false, chmod = 'Fg+w' }"},
        Keys{"UpdateMaxSize",
             "rsync = { archive = true, update = true, _extra = { '--max-size=5500' } }"},
        Keys{"NumbersForBooleans", "rsync = { archive = true, owner = 1, compress = 1 }"},
        // Option sets of published configs (their hosts and paths replaced by the test's).
        Keys{"PublishedTranscodeMirror",
             "delete = 'running', rsync = { compress = false, whole_file = false, update = true, "
             "inplace = true, checksum = true, owner = true, archive = true, perms = true, "
             "group = true, xattrs = true, copy_links = true }"},
        Keys{"PublishedBwlimitExclude",
             "delete = true, exclude = { '.txt' }, rsync = { archive = true, compress = true, "
             "verbose = true, owner = true, perms = true, _extra = { '--bwlimit=2000' } }"},
        Keys{"PublishedExtraExcludes",
             "rsync = { archive = true, compress = true, verbose = false, "
             "_extra = { '--exclude=cache/', '--exclude=*.tmp' } }"},
        Keys{"PublishedAcls", "rsync = { compress = true, acls = true, verbose = true }"},
        Keys{"PublishedUpdatePermsOwner",
             "rsync = { update = true, perms = true, owner = true, group = true }"}),
    [](const ::testing::TestParamInfo<Keys>& p) { return p.param.name; });

}  // namespace
}  // namespace syncd::itest
