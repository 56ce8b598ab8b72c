// Local targets through the pipe carrier: real inotify, the real agent as a child process.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"
#include "tests/random_bytes.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using syncd::testing::RandomBytes;

class PipeReplicationTest : public ::testing::Test {
 protected:
  PipeReplicationTest() : tmp_("pipe") {}
  std::string WriteConfig(const std::string& text) {
    std::string path = tmp_ / "syncd.conf.lua";
    WriteFile(path, text);
    return path;
  }
  // syncd replicating src to dst (default.rsync, a local agent) with `keys` added to sync{}.
  std::unique_ptr<Process> StartLocal(const std::string& keys = "rsync = { archive = true }",
                                      std::vector<std::string> args = {}) {
    return StartSyncd(WriteConfig("sync { default.rsync, source = '" + src_ + "', target = '" +
                                  dst_ + "', " + keys + " }"),
                      tmp_.path(), tmp_ / "syncd.log", std::move(args));
  }
  // Waits until dst equals src; the diff and syncd's log explain a failure.
  ::testing::AssertionResult Converged(Process& syncd) {
    std::string diff;
    if (WaitUntil([&] {
          diff = Diff(Snapshot(src_), Snapshot(dst_));
          return diff.empty();
        }))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << diff.substr(0, 4000) << "\nsyncd log:\n" << syncd.log();
  }
  TempDir tmp_;
  std::string src_ = tmp_ / "src";
  std::string dst_ = tmp_ / "dst";
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
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst); })) << syncd->log();
  for (int d = 0; d < 200; ++d) {
    MakeDirs(src + "/d" + std::to_string(d));
    for (int f = 0; f < 100; ++f)
      WriteFile(src + "/d" + std::to_string(d) + "/sess_" + std::to_string(f),
                std::string(300 + f, 'x'), 0600);
  }
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(Snapshot(dst).size(), 1u + 200u + 20000u);  // The root, the directories, the files.
  EXPECT_TRUE(syncd->running());
}

// A source file named like the agent's temporaries is not replicated (the agent would take it
// for a leftover and remove it): it is not sent at every start, and the rest goes over.
TEST_F(PipeReplicationTest, AFileNamedLikeATemporaryIsNotSentAgainAndAgain) {
  const std::string name = ".syncd-0123456789abcdef.tmp";
  MakeDirs(src_ + "/d");
  WriteFile(src_ + "/d/" + name, "looks like syncd's own");
  WriteFile(src_ + "/d/plain", "plain");
  std::string config = WriteConfig("sync { default.rsync, source = '" + src_ + "', target = '" + dst_ +
                                   "', rsync = { archive = true } }");
  for (int run = 0; run < 2; ++run) {
    auto syncd = StartSyncd(config, tmp_.path(), tmp_ / ("syncd" + std::to_string(run) + ".log"));
    ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("all 1 syncs are in sync") != std::string::npos; }))
        << syncd->log();
    EXPECT_TRUE(fs::exists(dst_ + "/d/plain"));
    EXPECT_FALSE(fs::exists(dst_ + "/d/" + name));
    if (run == 1) {
      EXPECT_NE(syncd->log().find("0 operations to send"), std::string::npos) << syncd->log();
    }
    syncd->Signal(SIGTERM);
    EXPECT_EQ(syncd->Wait(), 0);
  }
}

// lsyncd drops its queue on TERM; syncd sends it first, even inside a long delay window.
TEST_F(PipeReplicationTest, StopSendsWhatIsPendingAndExitsZero) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  auto syncd = StartLocal("delay = 10");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("in sync") != std::string::npos; }))
      << syncd->log();
  WriteFile(src + "/last-words", "written just before the stop");
  usleep(100 * 1000);
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
  EXPECT_EQ(ReadFile(dst + "/last-words"), "written just before the stop");
}

// A source that is unmounted under a running sync (what remains is the empty mount point), or
// moved away, never wipes the standby: syncd says so and stops propagating for that sync. Nor
// does a start on an empty source.
TEST_F(PipeReplicationTest, UnmountedMovedOrEmptySourceLeavesTheStandbyIntact) {
  MakeDirs(src_);
  Shell("mount -t tmpfs -o size=4m syncd-test-src '" + src_ + "'");
  MakeDirs(src_ + "/sessions");
  for (int i = 0; i < 20; ++i) WriteFile(src_ + "/sessions/sess_" + std::to_string(i), "data");
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));
  Tree before = Snapshot(dst_);
  Shell("umount '" + src_ + "'");  // src_ is now an empty directory.
  EXPECT_TRUE(WaitUntil([&] {
    return syncd->log().find("no longer propagating changes") != std::string::npos;
  })) << syncd->log();
  WriteFile(src_ + "/after", "written into the bare mount point");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // Room for a wrong delete.
  EXPECT_EQ(Diff(before, Snapshot(dst_)), "") << syncd->log();
  EXPECT_TRUE(syncd->running());
  syncd->Signal(SIGTERM);
  syncd->Wait();

  // The same with a source moved away.
  fs::remove_all(src_);
  MakeDirs(src_ + "/sessions");
  WriteFile(src_ + "/sessions/sess_a", "a");
  auto again = StartLocal();
  ASSERT_TRUE(Converged(*again));
  before = Snapshot(dst_);
  fs::rename(src_, tmp_ / "src.old");
  MakeDirs(src_);
  EXPECT_TRUE(WaitUntil([&] {
    return again->log().find("no longer propagating changes") != std::string::npos;
  })) << again->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Diff(before, Snapshot(dst_)), "") << again->log();
  EXPECT_TRUE(again->running());
  again->Signal(SIGTERM);
  again->Wait();

  // Started on the empty directory (a source not mounted yet): the comparison would delete
  // everything on the standby; it deletes nothing and says why.
  auto third = StartLocal();
  EXPECT_TRUE(WaitUntil([&] {
    return third->log().find("is empty but") != std::string::npos &&
           third->log().find("in sync with") != std::string::npos;
  })) << third->log();
  Tree after = Snapshot(dst_);
  before.erase(".");  // The root takes the empty directory's time; nothing under it changes.
  after.erase(".");
  EXPECT_EQ(Diff(before, after), "") << third->log();
  EXPECT_EQ(after.size(), 2u);  // sessions/ and sessions/sess_a.
}

// rm -rf removes everything beneath the root before the root itself: deletions wait until
// deleting pauses, and the root's disappearance then drops them.
TEST_F(PipeReplicationTest, RemovingTheSourceRootLeavesTheStandbyIntact) {
  for (int d = 0; d < 20; ++d) {
    MakeDirs(src_ + "/sessions/d" + std::to_string(d));
    for (int f = 0; f < 100; ++f)
      WriteFile(src_ + "/sessions/d" + std::to_string(d) + "/sess_" + std::to_string(f), "data");
  }
  WriteFile(src_ + "/a-first", "sorted before sessions/");
  WriteFile(src_ + "/z-last", "sorted after sessions/");
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));
  // An ordinary delete still reaches the standby.
  fs::remove(src_ + "/sessions/d3/sess_7");
  ASSERT_TRUE(Converged(*syncd));
  Tree before = Snapshot(dst_);
  ASSERT_EQ(before.size(), 1 + 2 + 1 + 20 + 1999u);  // The root, two files, sessions/ and its own.
  Shell("rm -rf '" + src_ + "'");
  EXPECT_TRUE(WaitUntil([&] {
    return syncd->log().find("no longer propagating changes") != std::string::npos;
  })) << syncd->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // Room for a wrong delete.
  EXPECT_EQ(Diff(before, Snapshot(dst_)), "") << syncd->log();
  EXPECT_TRUE(syncd->running());
}

TEST_F(PipeReplicationTest, DeleteFalseKeepsWhatOnlyThePeerHas) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  MakeDirs(dst);
  WriteFile(src + "/a", "a");
  WriteFile(dst + "/only-on-peer", "keep me");
  auto syncd = StartLocal("delete = false");
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
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  const std::string limit = "/proc/sys/fs/inotify/max_queued_events";
  std::string saved = ReadFile(limit);
  std::unique_ptr<Process> syncd;
  {
    std::ofstream(limit) << "64\n";  // Read at inotify_init1: only syncd's instance gets it.
    syncd = StartLocal();
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
  EXPECT_TRUE(Converged(*syncd));
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
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src + "/before/sub");
  for (int i = 0; i < 200; ++i) WriteFile(src + "/before/sub/f" + std::to_string(i), "data");
  auto syncd = StartLocal("rsync = { archive = true }", {"-log", "Delay"});
  ASSERT_TRUE(Converged(*syncd));
  ino_t inode = Inode(dst + "/before/sub/f7");
  ASSERT_NE(inode, 0u);
  fs::rename(src + "/before", src + "/after");
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(Inode(dst + "/after/sub/f7"), inode) << "the directory was copied, not moved";
}

// A directory created and renamed before syncd reads the creation: its watch could not be set
// under the old name, so it is set under the new one, and what is made in it later arrives.
TEST_F(PipeReplicationTest, DirectoryRenamedBeforeItsCreationWasReadIsWatched) {
  MakeDirs(src_);
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  syncd->Signal(SIGSTOP);
  MakeDirs(src_ + "/made");
  WriteFile(src_ + "/made/early", "before the rename");
  fs::rename(src_ + "/made", src_ + "/renamed");
  syncd->Signal(SIGCONT);
  ASSERT_TRUE(Converged(*syncd));
  WriteFile(src_ + "/renamed/late", "after the rename");
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/renamed/late"), "after the rename");
}

// A directory made, renamed, and a new one made at the old name, all before the watcher reads
// the first event: the rename must move the watch of the renamed directory (found by its
// inode), not the one on the new directory that now has the old name. lsyncd's churn test
// met this under load.
TEST_F(PipeReplicationTest, DirectoryRenamedAndItsNameTakenBeforeTheEventsWereReadKeepsBothWatched) {
  MakeDirs(src_);
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  syncd->Signal(SIGSTOP);
  MakeDirs(src_ + "/a/deep");
  fs::rename(src_ + "/a", src_ + "/b");
  MakeDirs(src_ + "/a");
  syncd->Signal(SIGCONT);
  ASSERT_TRUE(Converged(*syncd));
  WriteFile(src_ + "/a/in_new", "new a");
  WriteFile(src_ + "/b/in_moved", "moved");
  WriteFile(src_ + "/b/deep/in_deep", "deep");
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/a/in_new"), "new a");
  EXPECT_EQ(ReadFile(dst_ + "/b/in_moved"), "moved");
  EXPECT_EQ(ReadFile(dst_ + "/b/deep/in_deep"), "deep");
  EXPECT_FALSE(fs::exists(dst_ + "/b/in_new")) << syncd->log();
}

// Without hard_links, as rsync: each name is a file of its own on the standby. inotify
// reports a write only under the name written through; the standby's copies of the other
// names must get the new content too, for links made before the start and while running.
TEST_F(PipeReplicationTest, AWriteThroughOneNameOfAHardLinkReachesEveryName) {
  MakeDirs(src_ + "/sub");
  WriteFile(src_ + "/a", "first");
  ASSERT_EQ(::link((src_ + "/a").c_str(), (src_ + "/b").c_str()), 0);
  ASSERT_EQ(::link((src_ + "/a").c_str(), (src_ + "/sub/c").c_str()), 0);
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  auto rewrite = [&](const std::string& name, const std::string& content) {
    std::ofstream(src_ + "/" + name, std::ios::trunc) << content;  // In place: same inode.
  };
  rewrite("b", "second, through b");
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/a"), "second, through b");
  EXPECT_EQ(ReadFile(dst_ + "/sub/c"), "second, through b");
  // A link made while running, then a write through the file's first name.
  WriteFile(src_ + "/solo", "one name");
  ASSERT_TRUE(Converged(*syncd));
  ASSERT_EQ(::link((src_ + "/solo").c_str(), (src_ + "/sub/twin").c_str()), 0);
  ASSERT_TRUE(Converged(*syncd));
  rewrite("sub/twin", "written through the new name");
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/solo"), "written through the new name");
  EXPECT_NE(Inode(dst_ + "/solo"), Inode(dst_ + "/sub/twin")) << "separate files without -H";
}

// Maildir delivers with link(tmp/x, new/x) then unlink(tmp/x): new/x gets IN_CREATE only, and
// by the time it is read it has one link, like a file still being written. It must arrive.
TEST_F(PipeReplicationTest, ALinkWhoseOtherNameIsGoneArrives) {
  MakeDirs(src_ + "/tmp");
  MakeDirs(src_ + "/new");
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  syncd->Signal(SIGSTOP);
  WriteFile(src_ + "/tmp/1234.msg", "a delivered message");
  ASSERT_EQ(::link((src_ + "/tmp/1234.msg").c_str(), (src_ + "/new/1234.msg").c_str()), 0);
  ASSERT_EQ(::unlink((src_ + "/tmp/1234.msg").c_str()), 0);
  syncd->Signal(SIGCONT);
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/new/1234.msg"), "a delivered message");
}

// With hard_links (rsync -H), the names of one file are one file on the standby too, for
// links made before the start and while running, and after a rewrite through any name.
TEST_F(PipeReplicationTest, HardLinksStayOneFileWithHardLinks) {
  MakeDirs(src_ + "/sub");
  WriteFile(src_ + "/a", "first");
  ASSERT_EQ(::link((src_ + "/a").c_str(), (src_ + "/sub/b").c_str()), 0);
  auto syncd = StartLocal("rsync = { archive = true, hard_links = true }");
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(Inode(dst_ + "/a"), Inode(dst_ + "/sub/b"));
  ASSERT_EQ(::link((src_ + "/a").c_str(), (src_ + "/c").c_str()), 0);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(Inode(dst_ + "/c"), Inode(dst_ + "/a"));
  std::ofstream(src_ + "/sub/b", std::ios::trunc) << "rewritten through sub/b";
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/a"), "rewritten through sub/b");
  EXPECT_EQ(Inode(dst_ + "/a"), Inode(dst_ + "/sub/b"));
  EXPECT_EQ(Inode(dst_ + "/a"), Inode(dst_ + "/c"));
  struct stat st;
  ASSERT_EQ(::stat((dst_ + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 3u);
  EXPECT_TRUE(TempFiles(dst_).empty());
}

// Files written just before their directory is renamed: their notices are handled after the
// rename happened on disk, some before the rename's own notice. Nothing may be lost.
TEST_F(PipeReplicationTest, DirectoryRenamedRightAfterItsFilesChangedConverges) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src + "/d0/sub");
  for (int i = 0; i < 50; ++i) WriteFile(src + "/d0/sub/f" + std::to_string(i), "v0");
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  for (int round = 0; round < 20; ++round) {
    std::string dir = src + "/d" + std::to_string(round);
    for (int i = 0; i < 50; ++i)
      WriteFile(dir + "/sub/f" + std::to_string(i), "v" + std::to_string(round + 1));
    fs::rename(dir, src + "/d" + std::to_string(round + 1));
  }
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst + "/d20/sub/f49"), "v20");
}

// When the peer has lost the origin of a rename, the destination is sent instead (lsyncd
// drops it: its issue #371).
TEST_F(PipeReplicationTest, RenameWhoseOriginThePeerLostSendsTheDestination) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src + "/d");
  WriteFile(src + "/d/f", "keep me");
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  fs::remove_all(dst + "/d");  // Someone cleaned up on the standby.
  fs::rename(src + "/d", src + "/e");
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst + "/e/f"), "keep me");
}

// Every name Linux allows replicates as it is: 255 bytes, a newline, brackets, glob and shell
// characters, a leading dash, and bytes that are not UTF-8; at startup, live, and renamed.
TEST_F(PipeReplicationTest, HostileButLegalNamesReplicate) {
  const std::vector<std::string> names = {
      std::string(255, 'n'), "new\nline", "brack]et", "[x]", "\xff\xfe\x80", "tab\there",
      " lead and trail ", "-dash", "*star?", "back\\slash", "quote'\"s", "$(not run)", "..."};
  MakeDirs(src_ + "/d");
  for (size_t i = 0; i < names.size(); ++i) WriteFile(src_ + "/d/" + names[i], "startup " + std::to_string(i));
  MakeDirs(src_ + "/" + names[1] + "dir");
  WriteFile(src_ + "/" + names[1] + "dir/" + names[4], "inside");
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));
  for (size_t i = 0; i < names.size(); ++i) {
    WriteFile(src_ + "/live_" + names[i].substr(0, 200), "live " + std::to_string(i));
    fs::rename(src_ + "/d/" + names[i], src_ + "/d/" + names[i].substr(0, 250) + "]\n");
  }
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/d/" + names[0].substr(0, 250) + "]\n"), "startup 0");
  EXPECT_EQ(ReadFile(dst_ + "/" + names[1] + "dir/" + names[4]), "inside");
}

// Split brain: this host already runs an active syncd whose source is the directory another
// node's syncd wants to write to. The agent refuses, naming this node; the writer stops with
// that error. Once the local syncd is gone, its mark is stale and writing is allowed again.
TEST_F(PipeReplicationTest, AgentRefusesATargetThatThisHostReplicatesAsActive) {
  MakeDirs(src_);
  MakeDirs(dst_);
  WriteFile(src_ + "/sess_1", "from the node that wants to write");
  WriteFile(dst_ + "/sess_2", "from the node that is active here");
  std::string other = tmp_ / "other";
  std::string active_config = tmp_ / "active.conf.lua";
  WriteFile(active_config, "sync { default.rsync, source = '" + dst_ + "', target = '" + other +
                               "', rsync = { archive = true } }");
  auto active = StartSyncd(active_config, tmp_.path(), tmp_ / "active.log");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(other + "/sess_2"); })) << active->log();

  auto writer = StartLocal();
  auto status = writer->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the writer kept running:\n" << writer->log();
  EXPECT_NE(*status, 0);
  EXPECT_THAT(writer->log(), HasSubstr("refusing to write to " + dst_));
  EXPECT_THAT(writer->log(), HasSubstr("is active too"));
  EXPECT_FALSE(fs::exists(dst_ + "/sess_1")) << "the agent wrote anyway";
  EXPECT_TRUE(fs::exists(dst_ + "/sess_2")) << "the agent deleted what the active node holds";

  active->Signal(SIGTERM);
  ASSERT_TRUE(active->Wait().has_value());
  auto again = StartLocal();
  EXPECT_TRUE(Converged(*again));
}

// The standby's filesystem full, then read-only: the files concerned are reported and retried,
// no temporary file or partial file is left, and everything arrives once there is room again.
TEST_F(PipeReplicationTest, FullThenReadOnlyStandbyLosesNothing) {
  std::string fs_dir = tmp_ / "standby";
  MakeDirs(fs_dir);
  ASSERT_EQ(::mount("tmpfs", fs_dir.c_str(), "tmpfs", 0, "size=8m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{fs_dir};
  dst_ = fs_dir + "/dst";
  MakeDirs(dst_);
  WriteFile(fs_dir + "/filler", std::string(6 << 20, 'f'));
  MakeDirs(src_);
  std::string big = RandomBytes(3 << 20, 16);
  WriteFile(src_ + "/big", big);
  WriteFile(src_ + "/sess_1", "small");
  auto syncd = StartLocal();
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("No space left on device") != std::string::npos; }))
      << syncd->log();
  EXPECT_THAT(syncd->log(), HasSubstr("big"));
  EXPECT_FALSE(fs::exists(dst_ + "/big")) << "a partial file was put in place";
  EXPECT_TRUE(TempFiles(dst_).empty());
  fs::remove(fs_dir + "/filler");  // Room again: the retry brings it over.
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(ReadFile(dst_ + "/big") == big);

  ASSERT_EQ(::mount(nullptr, fs_dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, "size=8m"), 0)
      << std::strerror(errno);
  WriteFile(src_ + "/sess_2", "while read-only");
  ASSERT_TRUE(WaitUntil([&] { return syncd->log().find("Read-only file system") != std::string::npos; }))
      << syncd->log();
  ASSERT_EQ(::mount(nullptr, fs_dir.c_str(), nullptr, MS_REMOUNT, "size=8m"), 0) << std::strerror(errno);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(TempFiles(dst_).empty());
  EXPECT_EQ(syncd->Wait(std::chrono::milliseconds(0)), std::nullopt) << "syncd gave up";
}

// PHP's lazy write only touches a session file: the peer's copy gets the new mtime in place
// (same inode), and no content is sent again.
TEST_F(PipeReplicationTest, TouchSendsOnlyTheTime) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  WriteFile(src + "/sess_1", "user|s:5:\"alice\";", 0600);
  auto syncd = StartLocal("rsync = { archive = true }");
  ASSERT_TRUE(Converged(*syncd));
  ino_t inode = Inode(dst + "/sess_1");
  timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src + "/sess_1").c_str(), times, 0), 0);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_EQ(Inode(dst + "/sess_1"), inode) << "the content was sent again";
}

// A large file travels in its own lane: a small file written while it is in transfer reaches
// the peer first.
TEST_F(PipeReplicationTest, SmallFilesOvertakeALargeTransfer) {
  const std::string &src = src_, &dst = dst_;
  MakeDirs(src);
  auto syncd = StartLocal("rsync = { archive = true }");
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

// A file whose directory was removed on the standby is refused there (ENOENT); syncd tries
// again after a pause, creating the directory first.
TEST_F(PipeReplicationTest, RefusedFileIsRetriedWithItsDirectory) {
  MakeDirs(src_ + "/d");
  WriteFile(src_ + "/d/f", "v1");
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));
  fs::remove_all(dst_ + "/d");  // Someone cleaned up on the standby.
  std::ofstream(src_ + "/d/f") << "v2";  // In place: one event, so only the retry can mend it.
  EXPECT_TRUE(Converged(*syncd));
  EXPECT_EQ(ReadFile(dst_ + "/d/f"), "v2");
  EXPECT_THAT(syncd->log(), HasSubstr("dst/d: No such file or directory"));  // Reported.
}

// At startup, files around the thresholds (read inline, read in the thread pool, sent by the
// large-file lane, the lane into a directory the peer does not have yet) arrive byte for byte.
TEST_F(PipeReplicationTest, StartupCopiesFilesOfEverySizeExactly) {
  const uint64_t kMiB = 1 << 20;
  std::vector<uint64_t> sizes{0, 1, kMiB - 1, kMiB, 3 * kMiB + 5, 9 * kMiB, 9 * kMiB + 1};
  uint32_t seed = 1;
  for (const std::string dir : {"", "/new/deeper"}) {
    MakeDirs(src_ + dir);
    for (uint64_t size : sizes)
      WriteFile(src_ + dir + "/f" + std::to_string(size), RandomBytes(size, seed++));
  }
  for (int i = 0; i < 300; ++i) WriteFile(src_ + "/new/s" + std::to_string(i), RandomBytes(700, seed++));
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(TempFiles(dst_).empty());
  EXPECT_THAT(syncd->log(), HasSubstr("in sync"));
}

// A large file changed in the middle travels as a delta against the peer's copy, at startup
// and live; a copy changed on the standby behind syncd's back is the base of the next delta.
TEST_F(PipeReplicationTest, ChangedLargeFilesTravelAsDeltas) {
  std::string v1 = RandomBytes(6 << 20, 7);
  MakeDirs(src_);
  MakeDirs(dst_);
  WriteFile(src_ + "/spool.db", v1);
  std::string old = v1;
  old.replace(2 << 20, 100000, RandomBytes(100000, 8));
  WriteFile(dst_ + "/spool.db", old);  // An older version on the standby, ...
  // ... with an older time: written within one clock tick of the source, it could have the
  // same size and mtime, and the startup comparison (rsync's quick check) would rightly skip it.
  SetMtime(dst_ + "/spool.db", 1500000000);
  // WriteFile writes beside the file and renames over it; its temporary file is excluded, as
  // a spool's would be: sent on its own (a new file, whole) and renamed over spool.db on the
  // standby, it would replace the copy the deltas are made against.
  auto syncd = StartLocal("rsync = { archive = true }, exclude = { '.wtmp-*' }", {"-log", "Transport"});
  ASSERT_TRUE(Converged(*syncd));
  auto delta_sizes = [&] {
    std::vector<uint64_t> sizes;
    std::string log = syncd->log();
    for (size_t at = 0; (at = log.find("spool.db: delta of ", at)) != std::string::npos; ++at)
      sizes.push_back(std::stoull(log.substr(at + 19)));
    return sizes;
  };
  ASSERT_EQ(delta_sizes().size(), 1u) << syncd->log();
  EXPECT_LT(delta_sizes()[0], 200000u);

  std::string v2 = v1;
  v2.replace(4 << 20, 50000, RandomBytes(50000, 9));
  WriteFile(src_ + "/spool.db", v2);
  ASSERT_TRUE(Converged(*syncd));
  ASSERT_EQ(delta_sizes().size(), 2u) << syncd->log();
  EXPECT_LT(delta_sizes()[1], 100000u);

  // The standby's copy changed behind syncd's back: the delta is made against what it holds.
  std::string tampered = v2;
  tampered[5 << 20] = static_cast<char>(tampered[5 << 20] ^ 1);
  WriteFile(dst_ + "/spool.db", tampered);
  std::string v3 = v2;
  v3.replace(1 << 20, 1000, RandomBytes(1000, 10));
  WriteFile(src_ + "/spool.db", v3);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(ReadFile(dst_ + "/spool.db") == v3);
  ASSERT_EQ(delta_sizes().size(), 3u) << syncd->log();
  EXPECT_TRUE(TempFiles(dst_).empty());
}

// A file of several segments goes as a chain of deltas that two workers encode side by side;
// the real agent rebuilds it byte for byte. Rewritten with new data, it goes whole.
TEST_F(PipeReplicationTest, LargeFileDeltaInSegmentsArrivesExact) {
  std::string v1 = RandomBytes(40 << 20, 12);
  MakeDirs(src_);
  WriteFile(src_ + "/store.db", v1);
  // WriteFile's temporary file excluded, as in ChangedLargeFilesTravelAsDeltas.
  auto syncd = StartLocal("rsync = { archive = true }, exclude = { '.wtmp-*' }", {"-log", "Transport"});
  ASSERT_TRUE(Converged(*syncd));
  std::string v2 = v1;
  v2.replace(100, 5000, RandomBytes(5000, 13));
  v2.replace(39 << 20, 1000, RandomBytes(1000, 14));
  WriteFile(src_ + "/store.db", v2);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(ReadFile(dst_ + "/store.db") == v2);
  EXPECT_THAT(syncd->log(), HasSubstr("store.db: delta of "));
  EXPECT_THAT(syncd->log(), HasSubstr("in 3 segments"));

  std::string v3 = RandomBytes(40 << 20, 15);  // New data: not worth a delta.
  WriteFile(src_ + "/store.db", v3);
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_TRUE(ReadFile(dst_ + "/store.db") == v3);
  EXPECT_THAT(syncd->log(), HasSubstr("store.db: sending the whole file: the delta of the first"));
}

// rsync's compress option compresses the stream; everything arrives as it is.
TEST_F(PipeReplicationTest, CompressedStreamReplicatesExactly) {
  MakeDirs(src_ + "/d");
  WriteFile(src_ + "/big", RandomBytes(3 << 20, 11));
  for (int i = 0; i < 200; ++i) WriteFile(src_ + "/d/sess_" + std::to_string(i), std::string(500 + i, 'a' + i % 26));
  // WriteFile's temporary files excluded, as in ChangedLargeFilesTravelAsDeltas.
  auto syncd = StartLocal("rsync = { archive = true, compress = true }, exclude = { '.wtmp-*' }",
                          {"-log", "Transport"});
  ASSERT_TRUE(Converged(*syncd));
  std::string big = ReadFile(src_ + "/big");
  big.replace(1 << 20, 1000, RandomBytes(1000, 12));
  WriteFile(src_ + "/big", big);
  for (int i = 0; i < 200; i += 2) WriteFile(src_ + "/d/sess_" + std::to_string(i), "rewritten " + std::to_string(i));
  ASSERT_TRUE(Converged(*syncd));
  EXPECT_THAT(syncd->log(), HasSubstr("compressed (zstd)"));
  EXPECT_THAT(syncd->log(), HasSubstr("big: delta of"));
}

// A writer that rewrites a file in place under flock(LOCK_EX), as PHP's session handler does,
// while syncd replicates it: every copy the peer ever holds is one whole version.
TEST_F(PipeReplicationTest, LockedInPlaceRewritesNeverArriveTorn) {
  // One file read inline, one read in the thread pool.
  const std::vector<std::pair<std::string, size_t>> files{{"sess_small", 8 * 1024},
                                                          {"sess_big", 3 << 20}};
  // Version v fills the whole file with byte v: a torn copy holds two different bytes.
  auto write_version = [&](const std::string& name, size_t size, int v, bool slow) {
    int fd = ::open((src_ + "/" + name).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    std::string piece(64 * 1024, static_cast<char>('A' + v % 26));
    for (size_t off = 0; off < size; off += piece.size()) {
      size_t n = std::min(piece.size(), size - off);
      ASSERT_EQ(::pwrite(fd, piece.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
      if (slow) usleep(200);  // Widens the window in which a reader could see half of it.
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
  };
  MakeDirs(src_);
  for (const auto& [name, size] : files) write_version(name, size, 0, false);
  auto syncd = StartLocal();
  ASSERT_TRUE(Converged(*syncd));

  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::set<char> seen;  // Versions observed on the peer.
  std::thread checker([&] {
    while (!stop) {
      for (const auto& [name, size] : files) {
        std::string copy = ReadFile(dst_ + "/" + name);
        if (copy.empty()) continue;
        if (copy.size() != size || copy.find_first_not_of(copy[0]) != std::string::npos) ++torn;
        seen.insert(copy[0]);
      }
      usleep(1000);
    }
  });
  for (int v = 1; v <= 150; ++v) {
    for (const auto& [name, size] : files) write_version(name, size, v, true);
    usleep(2000);  // Unlocked for a moment between versions, as between two requests.
  }
  ASSERT_TRUE(Converged(*syncd));
  stop = true;
  checker.join();
  EXPECT_EQ(torn.load(), 0) << "copies on the peer that were never a whole version";
  EXPECT_GE(seen.size(), 3u) << "the peer should have held several versions along the way";
  EXPECT_TRUE(TempFiles(dst_).empty());
}

}  // namespace
}  // namespace syncd::itest
