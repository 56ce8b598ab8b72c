#include "syncd/sync_planner.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/describe_ops.h"
#include "tests/fakes/fake_fs.h"

namespace syncd {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::FakeFileSystem;

std::vector<std::string> Describe(const ChangeBatch& b) { return testing::DescribeOps(b); }

SyncConfig ArchiveConfig() {
  SyncConfig c;
  c.source = "/src";
  c.rsync.archive = true;
  return c;
}

Entry PeerCopy(const Entry& e) {
  Entry p = e;
  p.ino = 0;
  p.ctime_ns = 0;
  return p;
}

class SyncPlannerTest : public ::testing::Test {
 protected:
  FakeFileSystem fs_;
};

TEST_F(SyncPlannerTest, ReconcileToEmptyPeerCreatesParentsFirst) {
  fs_.Dir("d");
  fs_.File("d/b.txt", "b");
  fs_.File("a.txt", "a");
  fs_.Link("l", "a.txt");
  SyncPlanner planner(ArchiveConfig(), fs_);
  auto batch = planner.PlanReconcile({PeerCopy(fs_.at(""))});
  ASSERT_TRUE(batch);
  EXPECT_THAT(Describe(*batch),
              ElementsAre("put a.txt", "mkdir d", "put d/b.txt", "link l", "meta ", "meta d"));
}

// The operations of a large first copy are put in path order in place (each moved once, along
// the cycles of the permutation): every entry goes exactly once, parents before what they hold,
// with or without deletions before them.
TEST_F(SyncPlannerTest, ManyEntriesGoInPathOrderEachOnceWithOrWithoutDeletes) {
  std::vector<std::string> expected;
  for (int d = 0; d < 40; ++d) {
    std::string dir = "d" + std::to_string((d * 17) % 40);
    fs_.Dir(dir);
    expected.push_back("mkdir " + dir);
    for (int f = 0; f < 6; ++f) {
      std::string file = dir + "/f" + std::to_string((f * 5) % 6);
      fs_.File(file, "x");
      expected.push_back("put " + file);
    }
  }
  std::sort(expected.begin(), expected.end(), [](const std::string& a, const std::string& b) {
    return a.substr(a.find(' ') + 1) < b.substr(b.find(' ') + 1);
  });
  auto creates = [](const ChangeBatch& b) {
    std::vector<std::string> out;
    for (const std::string& line : testing::DescribeOps(b, /*with_metadata=*/false))
      if (!line.starts_with("delete ")) out.push_back(line);
    return out;
  };
  SyncPlanner first(ArchiveConfig(), fs_);
  auto batch = first.PlanReconcile({PeerCopy(fs_.at(""))});
  ASSERT_TRUE(batch);
  EXPECT_EQ(creates(*batch), expected);

  Entry gone_dir = PeerCopy(fs_.at("d3"));
  gone_dir.path = "old";
  Entry gone_file = PeerCopy(fs_.at("d3/f1"));
  gone_file.path = "old/f";
  SyncPlanner second(ArchiveConfig(), fs_);
  batch = second.PlanReconcile({PeerCopy(fs_.at("")), gone_dir, gone_file});
  ASSERT_TRUE(batch);
  ASSERT_FALSE(batch->ops.empty());
  EXPECT_EQ(testing::DescribeOps(*batch).front(), "delete old");  // Its file goes with it.
  EXPECT_EQ(creates(*batch), expected);
}

TEST_F(SyncPlannerTest, ReconcileWithIdenticalPeerSendsNothing) {
  fs_.Dir("d");
  fs_.File("d/b.txt", "b");
  Listing peer{PeerCopy(fs_.at("")), PeerCopy(fs_.at("d")), PeerCopy(fs_.at("d/b.txt"))};
  SyncPlanner planner(ArchiveConfig(), fs_);
  auto batch = planner.PlanReconcile(peer);
  ASSERT_TRUE(batch);
  EXPECT_THAT(Describe(*batch), IsEmpty());
}

// A restart compares with what this node sent (hashes known): unchanged files are not read,
// a touched one is, and goes as metadata only.
TEST_F(SyncPlannerTest, ReconcileReadsOnlyFilesThatLookChanged) {
  fs_.File("same", "s");
  fs_.File("touched", "t");
  Listing peer{PeerCopy(fs_.at("")), PeerCopy(fs_.at("same")), PeerCopy(fs_.at("touched"))};
  for (Entry& e : peer)
    if (!e.path.empty()) e.hash = *fs_.Hash("/src", e.path);
  fs_.hashes_computed = 0;
  fs_.at("touched").meta.mtime_sec += 60;
  SyncPlanner planner(ArchiveConfig(), fs_);
  auto batch = planner.PlanReconcile(peer);
  ASSERT_TRUE(batch);
  EXPECT_THAT(Describe(*batch), ElementsAre("meta touched"));
  EXPECT_EQ(fs_.hashes_computed, 1);
}

TEST_F(SyncPlannerTest, ReconcileDeletesExtrasButProtectsExcluded) {
  fs_.File("keep", "k");
  SyncConfig config = ArchiveConfig();
  config.filter_rules = {"- .*"};
  Entry stale = PeerCopy(fs_.at("keep"));
  stale.path = "stale";
  Entry dot = stale;
  dot.path = ".lock";
  Entry stale_dir = PeerCopy(fs_.at(""));
  stale_dir.path = "old";
  Entry inside = stale;
  inside.path = "old/x";
  SyncPlanner planner(config, fs_);
  auto batch = planner.PlanReconcile(
      {PeerCopy(fs_.at("")), PeerCopy(fs_.at("keep")), stale, dot, stale_dir, inside});
  ASSERT_TRUE(batch);
  // One recursive delete covers old/x; .lock matches the exclude and stays. Deleting changed
  // the root's mtime on the peer: the source's goes back on it.
  EXPECT_THAT(Describe(*batch), ElementsAre("delete old", "delete stale", "meta "));
}

TEST_F(SyncPlannerTest, DeleteFalseNeverDeletes) {
  SyncConfig config = ArchiveConfig();
  config.delete_mode = DeleteMode::kNever;
  Entry stale = PeerCopy(fs_.at(""));
  stale.path = "stale";
  stale.type = FileType::kFile;
  SyncPlanner planner(config, fs_);
  EXPECT_THAT(Describe(*planner.PlanReconcile({PeerCopy(fs_.at("")), stale})), IsEmpty());
}

TEST_F(SyncPlannerTest, MetadataOnlyChangeIsSentAsMetadata) {
  fs_.File("f", "data", 0600);
  Entry peer = PeerCopy(fs_.at("f"));
  peer.meta.mode = 0644;
  SyncPlanner planner(ArchiveConfig(), fs_);
  EXPECT_THAT(Describe(*planner.PlanReconcile({PeerCopy(fs_.at("")), peer})),
              ElementsAre("meta f"));
}

TEST_F(SyncPlannerTest, OwnerIsComparedByNameWhenBothKnowOne) {
  fs_.File("f", "data").meta.user = "www-data";
  Entry peer = PeerCopy(fs_.at("f"));
  peer.meta.uid = 1234;  // Different number, same name: nothing to do.
  SyncPlanner planner(ArchiveConfig(), fs_);
  EXPECT_THAT(Describe(*planner.PlanReconcile({PeerCopy(fs_.at("")), peer})), IsEmpty());
}

TEST_F(SyncPlannerTest, WithoutArchiveOnlyContentAndTimesCount) {
  fs_.File("f", "data", 0600);
  Entry peer = PeerCopy(fs_.at("f"));
  peer.meta.mode = 0644;
  peer.meta.user = "other";
  SyncConfig config;  // lsyncd's default rsync flags: -lts, no perms, no owner.
  config.source = "/src";
  SyncPlanner planner(config, fs_);
  EXPECT_THAT(Describe(*planner.PlanReconcile({PeerCopy(fs_.at("")), peer})), IsEmpty());
}

TEST_F(SyncPlannerTest, TypeChangeRemovesTheOldThingFirst) {
  fs_.File("x", "now a file");
  Entry peer_dir = PeerCopy(fs_.at(""));
  peer_dir.path = "x";
  SyncPlanner planner(ArchiveConfig(), fs_);
  EXPECT_THAT(Describe(*planner.PlanReconcile({PeerCopy(fs_.at("")), peer_dir})),
              ElementsAre("delete x", "put x", "meta "));
}

TEST_F(SyncPlannerTest, PruneEmptyDirsSkipsDirectoriesWithoutFiles) {
  SyncConfig config = ArchiveConfig();
  config.rsync.prune_empty_dirs = true;
  fs_.Dir("empty");
  fs_.Dir("empty/deeper");
  fs_.Dir("full");
  fs_.File("full/f", "x");
  SyncPlanner planner(config, fs_);
  auto batch = planner.PlanReconcile({PeerCopy(fs_.at(""))});
  EXPECT_THAT(Describe(*batch), ElementsAre("mkdir full", "put full/f", "meta ", "meta full"));
}

// A tree made faster than its notices arrive: every level is released at once, and each is
// a new directory. The plan reads the tree once, not once per level (which was quadratic in
// the depth and stalled the loop for minutes on a 2,000-level tree).
TEST_F(SyncPlannerTest, ADeepNewTreeIsReadOnceNotOncePerLevel) {
  SyncPlanner planner(ArchiveConfig(), fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  std::vector<std::string> released;
  std::string path;
  for (int i = 0; i < 300; ++i) {
    path += (path.empty() ? "" : "/") + std::string("d");
    fs_.Dir(path);
    fs_.File(path + "/f", "x");
    released.push_back(path);
    released.push_back(path + "/f");
  }
  std::sort(released.begin(), released.end());
  fs_.stats = 0;
  ChangeBatch batch = planner.PlanChanges(released);
  EXPECT_EQ(batch.ops.size(), 300u + 300u + 301u);  // mkdir, put, and each directory's time.
  EXPECT_LT(fs_.stats, 3 * 600) << "each entry is looked at a bounded number of times";
}

TEST_F(SyncPlannerTest, ChangesAfterCommitAreComparedWithWhatThePeerNowHas) {
  fs_.File("a", "1");
  SyncPlanner planner(ArchiveConfig(), fs_);
  auto first = planner.PlanReconcile({PeerCopy(fs_.at(""))});
  planner.Committed(*first, {});
  EXPECT_THAT(Describe(planner.PlanChanges({"a"})), IsEmpty());  // Nothing new.
  fs_.File("a", "22").meta.mtime_sec += 5;
  EXPECT_THAT(Describe(planner.PlanChanges({"a"})), ElementsAre("put a", "meta "));
}

TEST_F(SyncPlannerTest, RemovedPathBecomesDeleteOnlyIfThePeerHasIt) {
  fs_.File("sent", "1");
  SyncPlanner planner(ArchiveConfig(), fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  fs_.Remove("sent");
  EXPECT_THAT(Describe(planner.PlanChanges({"sent", "never-sent"})), ElementsAre("delete sent", "meta "));
}

TEST_F(SyncPlannerTest, TheRemovalGateHoldsDeletionsOfVanishedPathsOnly) {
  fs_.File("gone", "1");
  fs_.File("kept", "1");
  fs_.File("was-file", "1");
  fs_.Dir("d");
  fs_.File("d/x", "1");
  SyncPlanner planner(ArchiveConfig(), fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  std::vector<std::string> asked;
  planner.SetRemovalGate([&](const std::string& path) {
    asked.push_back(path);
    return path == "kept";
  });
  fs_.Remove("gone");
  fs_.Remove("kept");
  fs_.Remove("was-file");
  fs_.Dir("was-file");  // Replaced by a directory: its old self must go first, gate or not.
  fs_.Remove("d/x");
  fs_.Remove("d");
  EXPECT_THAT(Describe(planner.PlanChanges({"d", "d/x", "gone", "kept", "was-file"})),
              ElementsAre("delete kept", "delete was-file", "mkdir was-file", "meta "));
  EXPECT_THAT(asked, ElementsAre("d", "d/x", "gone", "kept"));
  // What the gate held is still known to be on the peer: marked again, it is planned again.
  planner.SetRemovalGate(nullptr);
  EXPECT_THAT(Describe(planner.PlanChanges({"gone"})), ElementsAre("delete gone", "meta "));
}

TEST_F(SyncPlannerTest, DeleteWhileRunningFollowsDeleteMode) {
  fs_.File("sent", "1");
  SyncConfig config = ArchiveConfig();
  config.delete_mode = DeleteMode::kStartup;
  SyncPlanner planner(config, fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  fs_.Remove("sent");
  EXPECT_THAT(Describe(planner.PlanChanges({"sent"})), IsEmpty());
}

TEST_F(SyncPlannerTest, NewFileInNewDirectoryCreatesTheDirectoryFirst) {
  SyncPlanner planner(ArchiveConfig(), fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  fs_.Dir("n");
  fs_.Dir("n/m");
  fs_.File("n/m/f", "x");
  EXPECT_THAT(Describe(planner.PlanChanges({"n/m/f"})),
              ElementsAre("mkdir n", "mkdir n/m", "put n/m/f", "meta ", "meta n", "meta n/m"));
}

TEST_F(SyncPlannerTest, ExcludedPathsAreNeverSent) {
  SyncConfig config = ArchiveConfig();
  config.filter_rules = {"- .*"};
  fs_.File(".swap", "x");
  SyncPlanner planner(config, fs_);
  planner.Committed(*planner.PlanReconcile({PeerCopy(fs_.at(""))}), {});
  EXPECT_THAT(Describe(planner.PlanChanges({".swap"})), IsEmpty());
}

TEST_F(SyncPlannerTest, FailedOperationIsPlannedAgain) {
  fs_.File("f", "1");
  SyncPlanner planner(ArchiveConfig(), fs_);
  auto batch = planner.PlanReconcile({PeerCopy(fs_.at(""))});
  planner.Committed(*batch, {OpFailure{"f", Error{"disk full", ENOSPC}}});
  EXPECT_THAT(Describe(planner.PlanChanges({"f"})), ElementsAre("put f", "meta "));
}

class SyncPlannerRenameTest : public SyncPlannerTest {
 protected:
  // An planner whose peer holds what fs_ holds now.
  std::unique_ptr<SyncPlanner> Synced(SyncConfig config = ArchiveConfig()) {
    auto planner = std::make_unique<SyncPlanner>(config, fs_);
    planner->Committed(*planner->PlanReconcile({PeerCopy(fs_.at(""))}), {});
    return planner;
  }
  // Renames in the fake tree, like rename(2).
  void Move(const std::string& from, const std::string& to) {
    std::vector<Entry> moved;
    for (const std::string& p : Paths())
      if (IsWithin(p, from)) moved.push_back(fs_.at(p));
    fs_.Remove(from);
    for (Entry e : moved) {
      e.path = to + e.path.substr(from.size());
      Entry& n = e.type == FileType::kDir ? fs_.Dir(e.path) : fs_.File(e.path, "");
      n = e;
    }
  }
  std::vector<std::string> Paths() {
    std::vector<std::string> out;
    std::vector<std::string> stack{""};
    while (!stack.empty()) {
      std::string d = stack.back();
      stack.pop_back();
      auto names = fs_.ReadDir(d.empty() ? "/src" : "/src/" + d);
      for (const std::string& n : *names) {
        std::string p = d.empty() ? n : d + "/" + n;
        out.push_back(p);
        if (fs_.at(p).type == FileType::kDir) stack.push_back(p);
      }
    }
    return out;
  }
};

TEST_F(SyncPlannerRenameTest, DirectoryRenameIsOneOperation) {
  fs_.Dir("before");
  for (int i = 0; i < 100; ++i) fs_.File("before/f" + std::to_string(i), "x");
  auto planner = Synced();
  Move("before", "after");
  auto batch = planner->PlanChanges({Rename{"before", "after"}}, {"", "after"});
  EXPECT_THAT(Describe(batch), ElementsAre("rename before->after", "meta "));
  planner->Committed(batch, {});
  EXPECT_THAT(Describe(planner->PlanChanges({"after/f7"})), IsEmpty()) << "knowledge moved too";
}

// A notice about a file can be handled after its directory was renamed and before the
// rename's own event: the file is found missing and deleted on the peer under its old name.
// The rename that follows must still bring it to the peer under the new one.
TEST_F(SyncPlannerRenameTest, FileDeletedUnderTheOldNameBeforeTheRenameIsSentAgain) {
  fs_.Dir("before");
  fs_.Dir("before/sub");
  fs_.File("before/sub/f1", "one");
  fs_.File("before/sub/f2", "two");
  auto planner = Synced();
  Move("before", "after");
  auto stale = planner->PlanChanges({"before/sub/f1"});
  EXPECT_THAT(Describe(stale), ElementsAre("delete before/sub/f1"));
  planner->Committed(stale, {});
  auto batch = planner->PlanChanges({Rename{"before", "after"}}, {"", "after"});
  EXPECT_THAT(Describe(batch), ElementsAre("rename before->after", "put after/sub/f1", "meta ",
                                           "meta after/sub"));
}

// The other way round: a file removed from the directory before it moved, whose notice came
// after the rename's, is gone from the peer once the rename is applied.
TEST_F(SyncPlannerRenameTest, FileRemovedBeforeTheRenameIsDeletedUnderTheNewName) {
  fs_.Dir("before");
  fs_.File("before/f1", "one");
  fs_.File("before/f2", "two");
  auto planner = Synced();
  fs_.Remove("before/f2");
  Move("before", "after");
  EXPECT_THAT(Describe(planner->PlanChanges({Rename{"before", "after"}}, {"", "after"})),
              ElementsAre("rename before->after", "delete after/f2", "meta ", "meta after"));
}

TEST_F(SyncPlannerRenameTest, OriginThePeerNeverHadIsSentAsANewFile) {
  auto planner = Synced();
  fs_.File("b", "new");  // Created and renamed before it was ever sent.
  EXPECT_THAT(Describe(planner->PlanChanges({Rename{"a", "b"}}, {"b"})),
              ElementsAre("put b", "meta "));
}

TEST_F(SyncPlannerRenameTest, RenameOverADirectoryClearsItFirst) {
  fs_.File("a", "1");
  fs_.Dir("b");
  auto planner = Synced();
  fs_.Remove("b");
  Move("a", "b");
  EXPECT_THAT(Describe(planner->PlanChanges({Rename{"a", "b"}}, {"", "b"})),
              ElementsAre("delete b", "rename a->b", "meta "));
}

// lsyncd drops the destination when the peer lacks the origin (its issue #371); syncd sends it.
TEST_F(SyncPlannerRenameTest, MissingOriginOnThePeerSendsTheDestination) {
  fs_.Dir("d");
  fs_.File("d/f", "x");
  auto planner = Synced();
  Move("d", "e");
  auto batch = planner->PlanChanges({Rename{"d", "e"}}, {"", "e"});
  planner->Committed(batch, {OpFailure{"e", Error{"rename: No such file or directory", ENOENT}}});
  EXPECT_FALSE(planner->TakeNeedsRelist());
  EXPECT_THAT(Describe(planner->PlanChanges({"e"})),
              ElementsAre("mkdir e", "put e/f", "meta ", "meta e"));
}

// A rewritten file renamed before the client could read it: the PUT never went out, so the
// peer still holds the old copy, which the rename then moves (it used to be forgotten and
// stay behind under the old name).
TEST_F(SyncPlannerRenameTest, AFileGoneBeforeItWasReadIsStillKnownOnThePeer) {
  fs_.File("a", "old");
  auto planner = Synced();
  fs_.File("a", "rewritten");
  auto put = planner->PlanChanges({"a"});
  ASSERT_THAT(Describe(put), ElementsAre("put a", "meta "));
  Move("a", "b");
  planner->Committed(put, {OpFailure{"a", Error{"source changed before it could be read", ENOENT},
                                    /*reached_peer=*/false}});
  EXPECT_THAT(Describe(planner->PlanChanges({Rename{"a", "b"}}, {"b"})),
              ::testing::Contains("rename a->b"));
}

TEST_F(SyncPlannerRenameTest, OtherRenameFailuresAskForAFreshListing) {
  fs_.File("a", "1");
  auto planner = Synced();
  Move("a", "b");
  auto batch = planner->PlanChanges({Rename{"a", "b"}}, {"b"});
  planner->Committed(batch, {OpFailure{"b", Error{"Permission denied", EACCES}}});
  EXPECT_TRUE(planner->TakeNeedsRelist());
  EXPECT_FALSE(planner->TakeNeedsRelist());
}

TEST_F(SyncPlannerRenameTest, DestinationWithoutParentOnThePeerFallsBackToSending) {
  SyncConfig config = ArchiveConfig();
  config.rsync.prune_empty_dirs = true;
  fs_.File("a", "1");
  fs_.Dir("empty");  // Pruned: never created on the peer.
  auto planner = Synced(config);
  Move("a", "empty/a");
  EXPECT_THAT(Describe(planner->PlanChanges({Rename{"a", "empty/a"}}, {"empty/a"})),
              ElementsAre("delete a", "mkdir empty", "put empty/a", "meta ", "meta empty"));
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

// PHP's lazy write touches a session file without changing it: only the time goes over.
TEST(SyncPlannerTouchTest, TouchedFileIsSentAsMetadataOnly) {
  testing::FakeFileSystem fs;
  fs.File("sess_1", "user|s:5:\"alice\";", 0600);
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  auto first = planner.PlanReconcile({fs.at("")});
  std::vector<std::pair<std::string, ContentHash>> sent = {
      {"sess_1", *fs.Hash("/src", "sess_1")}};
  planner.Committed(*first, {}, sent);
  fs.at("sess_1").meta.mtime_sec += 60;  // touch
  EXPECT_THAT(Describe(planner.PlanChanges({"sess_1"})), ElementsAre("meta sess_1"));
  // Same size, different bytes: the content goes.
  fs.File("sess_1", "user|s:5:\"bobby\";", 0600).meta.mtime_sec += 120;
  EXPECT_THAT(Describe(planner.PlanChanges({"sess_1"})), ElementsAre("put sess_1", "meta "));
}

TEST(SyncPlannerTouchTest, WithoutAKnownHashNothingIsReadToCheck) {
  testing::FakeFileSystem fs;
  fs.File("f", "abc");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  Entry listed = fs.at("f");
  listed.ino = 0;
  planner.Committed(*planner.PlanReconcile({fs.at(""), listed}), {});
  fs.at("f").meta.mtime_sec += 1;
  EXPECT_THAT(Describe(planner.PlanChanges({"f"})), ElementsAre("put f", "meta "));
  EXPECT_EQ(fs.hashes_computed, 0);
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

// A directory removed on the peer: its refusal (ENOENT) makes the planner forget that
// directory, never the sync root, whose mtime must still be carried over.
TEST(SyncPlannerRefusalTest, MissingDirectoryOnThePeerIsCreatedAgainAndTheRootKept) {
  testing::FakeFileSystem fs;
  fs.Dir("d");
  fs.File("d/f", "v1");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  planner.Committed(*planner.PlanReconcile({fs.at("")}), {});
  fs.File("d/f", "v2").meta.mtime_sec += 1;
  auto batch = planner.PlanChanges({"d/f"});
  Error missing{"No such file or directory", ENOENT};
  planner.Committed(batch, {OpFailure{"d/f", missing}, OpFailure{"d", missing}});
  EXPECT_THAT(Describe(planner.PlanChanges({"d", "d/f"})),
              ElementsAre("mkdir d", "put d/f", "meta ", "meta d"));
}

// The standby refused the root's metadata (read-only for a while): the next look at the root
// sends it again, though nothing about the root changed here.
TEST(SyncPlannerRefusalTest, RefusedRootMetadataIsSentAgain) {
  testing::FakeFileSystem fs;
  fs.File("f", "v1");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  planner.Committed(*planner.PlanReconcile({fs.at("")}), {});
  fs.File("g", "new");
  auto batch = planner.PlanChanges({"", "g"});
  ASSERT_THAT(Describe(batch), ElementsAre("put g", "meta "));
  Error read_only{"Read-only file system", EROFS};
  planner.Committed(batch, {OpFailure{"g", read_only}, OpFailure{"", read_only}});
  EXPECT_THAT(Describe(planner.PlanChanges({"", "g"})), ElementsAre("put g", "meta "));
}

}  // namespace
}  // namespace syncd
