// The coalescing table: what a sequence of events on one path, or on a directory and paths
// beneath it, becomes on the peer. Each row starts from a peer in sync with the source, applies
// the actions to the (fake) source while feeding the batcher the events the watcher would
// emit, then plans one batch. lsyncd 2.2's same-path coalescing is broken (every event is a
// queue entry); here a path is one entry, whatever happens to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "syncd/batcher.h"
#include "syncd/sync_planner.h"
#include "tests/fakes/describe_ops.h"
#include "tests/fakes/fake_fs.h"

namespace syncd {
namespace {

using testing::FakeFileSystem;

struct Row {
  const char* name;
  std::function<void(FakeFileSystem&, Batcher&)> events;
  std::vector<std::string> ops;  // "put a", "rename a->b", ...
};

// Directory times are left out: they are not what the table is about.
std::vector<std::string> Describe(const ChangeBatch& b) {
  return testing::DescribeOps(b, /*with_metadata=*/false);
}

const TimePoint kNow{};

void Touch(FakeFileSystem& fs, const std::string& path, const std::string& content) {
  int64_t mtime = fs.Stat("/src", path) ? fs.at(path).meta.mtime_sec : 0;
  fs.File(path, content).meta.mtime_sec = mtime + 1;
}

// Moves a subtree in the fake source, as rename(2) would.
void Move(FakeFileSystem& fs, const std::string& from, const std::string& to) {
  std::vector<Entry> moved;
  for (const char* p : {"d", "d/f", "d/g", "a", "b", "c"})
    if (IsWithin(p, from) && fs.Stat("/src", p)) moved.push_back(fs.at(p));
  fs.Remove(from);
  for (Entry e : moved) {
    e.path = to + e.path.substr(from.size());
    (e.type == FileType::kDir ? fs.Dir(e.path) : fs.File(e.path, "")) = e;
  }
}

class CoalescingTest : public ::testing::TestWithParam<Row> {};

TEST_P(CoalescingTest, BecomesOnThePeer) {
  FakeFileSystem fs;
  fs.File("a", "a0");
  fs.Dir("d");
  fs.File("d/f", "f0");
  fs.File("d/g", "g0");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  planner.Committed(*planner.PlanReconcile({fs.at("")}), {});
  Batcher batcher({});
  GetParam().events(fs, batcher);
  auto released = batcher.Take(kNow);
  EXPECT_EQ(Describe(planner.PlanChanges(released.renames, released.paths)), GetParam().ops);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CoalescingTest,
    ::testing::Values(
        Row{"CreateThenModifyIsOneUpsert",
            [](FakeFileSystem& fs, Batcher& b) {
              fs.File("n", "");
              b.Add("n", kNow);
              Touch(fs, "n", "data");
              b.Add("n", kNow);
            },
            {"put n"}},
        Row{"CreateThenDeleteIsNothing",
            [](FakeFileSystem& fs, Batcher& b) {
              fs.File("n", "x");
              b.Add("n", kNow);
              fs.Remove("n");
              b.Add("n", kNow);
            },
            {}},
        Row{"DeleteThenCreateIsAnUpsert",
            [](FakeFileSystem& fs, Batcher& b) {
              fs.Remove("a");
              b.Add("a", kNow);
              Touch(fs, "a", "a1");
              b.Add("a", kNow);
            },
            {"put a"}},
        Row{"ModifyModifyAttribIsOneUpsert",
            [](FakeFileSystem& fs, Batcher& b) {
              Touch(fs, "a", "a1");
              b.Add("a", kNow);
              Touch(fs, "a", "a22");
              b.Add("a", kNow);
              fs.at("a").meta.mode = 0600;
              b.Add("a", kNow);
            },
            {"put a"}},
        Row{"ModifyInsideADirectoryBeingDeletedIsOneDelete",
            [](FakeFileSystem& fs, Batcher& b) {
              Touch(fs, "d/f", "f1");
              b.Add("d/f", kNow);
              fs.Remove("d");
              b.Add("d/f", kNow);
              b.Add("d/g", kNow);
              b.Add("d", kNow);
            },
            {"delete d"}},
        Row{"MoveOfADirectoryWithPendingChangesInside",
            [](FakeFileSystem& fs, Batcher& b) {
              Touch(fs, "d/f", "f1");
              b.Add("d/f", kNow);
              Move(fs, "d", "e");
              b.AddMove("d", "e", true, kNow);
            },
            {"rename d->e", "put e/f"}},
        Row{"ChainedRenamesAreOne",
            [](FakeFileSystem& fs, Batcher& b) {
              Move(fs, "a", "b");
              b.AddMove("a", "b", false, kNow);
              Move(fs, "b", "c");
              b.AddMove("b", "c", false, kNow);
            },
            {"rename a->c"}},
        Row{"RenameThenModifyTheDestination",
            [](FakeFileSystem& fs, Batcher& b) {
              Move(fs, "a", "b");
              b.AddMove("a", "b", false, kNow);
              Touch(fs, "b", "b1");
              b.Add("b", kNow);
            },
            {"rename a->b", "put b"}},
        Row{"CreateThenRenameIsAnUpsertOfTheDestination",
            [](FakeFileSystem& fs, Batcher& b) {
              fs.File("b", "new");
              b.Add("b", kNow);
              Move(fs, "b", "c");
              b.AddMove("b", "c", false, kNow);
            },
            {"put c"}}),
    [](const ::testing::TestParamInfo<Row>& row) { return std::string(row.param.name); });

}  // namespace
}  // namespace syncd
