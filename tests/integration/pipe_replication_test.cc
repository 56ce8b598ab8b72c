// Local targets through the pipe carrier: real inotify, the real agent as a child process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class PipeReplicationTest : public ::testing::Test {
 protected:
  PipeReplicationTest() : tmp_("pipe") {}
  std::string WriteConfig(const std::string& text) {
    std::string path = tmp_ / "syncd.conf.lua";
    WriteFile(path, text);
    return path;
  }
  TempDir tmp_;
};

// The seed's three folders and rules, with default.rsync to local directories.
TEST_F(PipeReplicationTest, SeedFoldersReplicateAndEveryChangeConverges) {
  Layout l;
  std::string config;
  for (const std::string& folder : kSeedFolders) {
    l.sources.push_back(tmp_ / ("osm1" + folder));
    l.targets.push_back(tmp_ / ("osm2" + folder));
    MakeDirs(l.sources.back());
    config += "sync { default.rsync, source = '" + l.sources.back() + "', target = '" +
              l.targets.back() +
              "', exclude = {'.*'}, rsync = { archive = true, prune_empty_dirs = true } }\n";
  }
  PopulateSeedTrees(l);
  auto syncd = StartSyncd(WriteConfig(config), tmp_.path(), tmp_ / "syncd.log");
  l.syncd = syncd.get();
  ExpectConverged(l, "startup");
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(fs::exists(l.targets[2] + "/sess_stale")) << "startup did not delete";
  RunLiveChanges(l);
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

// 20,000 files created as fast as the disk allows: all arrive, none lost, no restart.
TEST_F(PipeReplicationTest, BurstOfFilesAllArrive) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  auto syncd = StartSyncd(
      WriteConfig("sync { default.rsync, source = '" + src + "', target = '" + dst +
                  "', rsync = { archive = true } }"),
      tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst); })) << syncd->log();
  for (int d = 0; d < 200; ++d) {
    MakeDirs(src + "/d" + std::to_string(d));
    for (int f = 0; f < 100; ++f)
      WriteFile(src + "/d" + std::to_string(d) + "/sess_" + std::to_string(f),
                std::string(300 + f, 'x'), 0600);
  }
  std::string diff;
  bool same = WaitUntil([&] {
    diff = Diff(Snapshot(src), Snapshot(dst));
    return diff.empty();
  });
  EXPECT_TRUE(same) << diff.substr(0, 2000) << syncd->log();
  EXPECT_EQ(Snapshot(dst).size(), 1u + 200u + 20000u);  // The root, the directories, the files.
  EXPECT_TRUE(syncd->running());
}

// lsyncd drops its queue on TERM; syncd sends it first, even inside a long delay window.
TEST_F(PipeReplicationTest, StopSendsWhatIsPendingAndExitsZero) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', delay = 10 }"),
                          tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("in sync") != std::string::npos; }))
      << syncd->log();
  WriteFile(src + "/last-words", "written just before the stop");
  usleep(100 * 1000);
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
  EXPECT_EQ(ReadFile(dst + "/last-words"), "written just before the stop");
}

TEST_F(PipeReplicationTest, DeleteFalseKeepsWhatOnlyThePeerHas) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  MakeDirs(dst);
  WriteFile(src + "/a", "a");
  WriteFile(dst + "/only-on-peer", "keep me");
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', delete = false }"),
                          tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst + "/a"); })) << syncd->log();
  WriteFile(src + "/b", "b");
  fs::remove(src + "/a");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst + "/b"); })) << syncd->log();
  EXPECT_TRUE(fs::exists(dst + "/a")) << "delete = false, yet a delete was propagated";
  EXPECT_EQ(ReadFile(dst + "/only-on-peer"), "keep me");
}

// The inotify queue overflows (its limit lowered for this syncd only): the sync rescans,
// watches the directories whose events were lost, and nothing goes missing.
ino_t Inode(const std::string& path);

TEST_F(PipeReplicationTest, QueueOverflowLosesNothing) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  const std::string limit = "/proc/sys/fs/inotify/max_queued_events";
  std::string saved = ReadFile(limit);
  std::unique_ptr<Process> syncd;
  {
    std::ofstream(limit) << "64\n";  // Read at inotify_init1: only syncd's instance gets it.
    syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                   dst + "', rsync = { archive = true } }"),
                       tmp_.path(), tmp_ / "syncd.log");
    bool started = WaitUntil([&] { return fs::exists(dst); });
    std::ofstream(limit) << saved;
    ASSERT_TRUE(started) << syncd->log();
  }
  ::kill(syncd->pid(), SIGSTOP);  // Let the queue fill while syncd cannot read it.
  for (int f = 0; f < 200; ++f) WriteFile(src + "/top" + std::to_string(f), "y");
  for (int d = 0; d < 10; ++d) {
    MakeDirs(src + "/new" + std::to_string(d) + "/deeper");
    for (int f = 0; f < 50; ++f)
      WriteFile(src + "/new" + std::to_string(d) + "/deeper/f" + std::to_string(f), "x");
  }
  ::kill(syncd->pid(), SIGCONT);
  std::string diff;
  EXPECT_TRUE(WaitUntil([&] {
    diff = Diff(Snapshot(src), Snapshot(dst));
    return diff.empty();
  })) << diff.substr(0, 2000) << syncd->log();
  EXPECT_THAT(syncd->log(), HasSubstr("inotify queue overflowed"));
  // The directories created during the overflow are watched now.
  WriteFile(src + "/new3/deeper/after", "written after the overflow");
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(dst + "/new3/deeper/after") == "written after the overflow"; }))
      << syncd->log();
}

ino_t Inode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// A renamed directory is renamed on the peer too: its files keep their inodes there, nothing
// is sent again.
TEST_F(PipeReplicationTest, DirectoryRenameMovesOnThePeer) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src + "/before/sub");
  for (int i = 0; i < 200; ++i) WriteFile(src + "/before/sub/f" + std::to_string(i), "data");
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', rsync = { archive = true } }"),
                          tmp_.path(), tmp_ / "syncd.log", {"-log", "Delay"});
  ASSERT_TRUE(WaitUntil([&] { return Diff(Snapshot(src), Snapshot(dst)).empty(); })) << syncd->log();
  ino_t inode = Inode(dst + "/before/sub/f7");
  ASSERT_NE(inode, 0u);
  fs::rename(src + "/before", src + "/after");
  std::string diff;
  ASSERT_TRUE(WaitUntil([&] {
    diff = Diff(Snapshot(src), Snapshot(dst));
    return diff.empty();
  })) << diff << syncd->log();
  EXPECT_EQ(Inode(dst + "/after/sub/f7"), inode) << "the directory was copied, not moved";
}

// When the peer has lost the origin of a rename, the destination is sent instead (lsyncd
// drops it: its issue #371).
TEST_F(PipeReplicationTest, RenameWhoseOriginThePeerLostSendsTheDestination) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src + "/d");
  WriteFile(src + "/d/f", "keep me");
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', rsync = { archive = true } }"),
                          tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return Diff(Snapshot(src), Snapshot(dst)).empty(); })) << syncd->log();
  fs::remove_all(dst + "/d");  // Someone cleaned up on the standby.
  fs::rename(src + "/d", src + "/e");
  std::string diff;
  EXPECT_TRUE(WaitUntil([&] {
    diff = Diff(Snapshot(src), Snapshot(dst));
    return diff.empty();
  })) << diff << syncd->log();
  EXPECT_EQ(ReadFile(dst + "/e/f"), "keep me");
}

// PHP's lazy write only touches a session file: the peer's copy gets the new mtime in place
// (same inode), and no content is sent again.
TEST_F(PipeReplicationTest, TouchSendsOnlyTheTime) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  WriteFile(src + "/sess_1", "user|s:5:\"alice\";", 0600);
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', rsync = { archive = true } }"),
                          tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return Diff(Snapshot(src), Snapshot(dst)).empty(); })) << syncd->log();
  ino_t inode = Inode(dst + "/sess_1");
  timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src + "/sess_1").c_str(), times, 0), 0);
  std::string diff;
  ASSERT_TRUE(WaitUntil([&] {
    diff = Diff(Snapshot(src), Snapshot(dst));
    return diff.empty();
  })) << diff << syncd->log();
  EXPECT_EQ(Inode(dst + "/sess_1"), inode) << "the content was sent again";
}

// A large file travels in its own lane: a small file written while it is in transfer reaches
// the peer first.
TEST_F(PipeReplicationTest, SmallFilesOvertakeALargeTransfer) {
  std::string src = tmp_ / "src", dst = tmp_ / "dst";
  MakeDirs(src);
  auto syncd = StartSyncd(WriteConfig("sync { default.rsync, source = '" + src + "', target = '" +
                                      dst + "', rsync = { archive = true } }"),
                          tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst); })) << syncd->log();
  Shell("truncate -s 2G " + src + "/big.img");  // Sparse: quick to read, 2 GiB to write.
  ASSERT_TRUE(WaitUntil([&] { return !TempFiles(dst).empty(); })) << syncd->log();
  WriteFile(src + "/sess_small", "written after the big file started");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst + "/sess_small"); })) << syncd->log();
  EXPECT_FALSE(fs::exists(dst + "/big.img")) << "the small file waited for the large one";
  EXPECT_TRUE(WaitUntil([&] { return fs::exists(dst + "/big.img"); }, std::chrono::seconds(300)))
      << syncd->log();
  EXPECT_EQ(fs::file_size(dst + "/big.img"), 2ull << 30);
}

}  // namespace
}  // namespace syncd::itest
