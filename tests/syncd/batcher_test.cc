#include "syncd/batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

const TimePoint t0 = TimePoint() + std::chrono::hours(1);

TEST(BatcherTest, WithoutDelayABatchIsDueAtOnce) {
  Batcher b({});
  b.Add("a", t0);
  EXPECT_TRUE(b.Due(t0));
  auto r = b.Take(t0);
  EXPECT_THAT(r.paths, ElementsAre("a"));
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.NextDeadline());
}

TEST(BatcherTest, RepeatedChangesToOnePathAreOneEntry) {
  Batcher b({});
  for (int i = 0; i < 5; ++i) b.Add("sess_1", t0 + milliseconds(i));
  EXPECT_EQ(b.size(), 1u);
  auto r = b.Take(t0 + milliseconds(10));
  EXPECT_THAT(r.paths, ElementsAre("sess_1"));
  EXPECT_EQ(r.oldest, t0);  // Lag counts from the first change.
}

TEST(BatcherTest, DelayIsAWindowFromTheFirstChange) {
  Batcher b({.delay = milliseconds(1000), .max_delays = 1000});
  b.Add("a", t0);
  b.Add("b", t0 + milliseconds(900));  // A steady stream does not postpone the batch.
  EXPECT_EQ(*b.NextDeadline(), t0 + milliseconds(1000));
  EXPECT_FALSE(b.Due(t0 + milliseconds(999)));
  EXPECT_TRUE(b.Take(t0 + milliseconds(999)).paths.empty());
  EXPECT_THAT(b.Take(t0 + milliseconds(1000)).paths, ElementsAre("a", "b"));
}

TEST(BatcherTest, MaxDelaysForcesTheBatch) {
  Batcher b({.delay = milliseconds(15000), .max_delays = 3});
  b.Add("a", t0);
  b.Add("b", t0);
  EXPECT_FALSE(b.Due(t0));
  b.Add("c", t0);
  EXPECT_TRUE(b.Due(t0));
}

TEST(BatcherTest, ReleasesParentsBeforeChildren) {
  Batcher b({});
  b.Add("d/e/f", t0);
  b.Add("d", t0);
  b.Add("d/e", t0);
  b.Add("d-x", t0);
  auto r = b.Take(t0);
  EXPECT_THAT(r.paths, ElementsAre("d", "d-x", "d/e", "d/e/f"));
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

TEST(BatcherMoveTest, ChainedRenamesBecomeOne) {
  Batcher b({});
  b.AddMove("a", "b", false, t0);
  b.AddMove("b", "c", false, t0);
  auto r = b.Take(t0);
  EXPECT_THAT(r.renames, ::testing::ElementsAre(Rename{"a", "c"}));
}

TEST(BatcherMoveTest, RenameBackAndForthCancels) {
  Batcher b({});
  b.AddMove("a", "b", false, t0);
  b.AddMove("b", "a", false, t0);
  EXPECT_TRUE(b.Take(t0).renames.empty());
}

// A swap through a temporary name must keep all three steps in order.
TEST(BatcherMoveTest, SwapKeepsItsOrder) {
  Batcher b({});
  b.AddMove("a", "tmp", false, t0);
  b.AddMove("b", "a", false, t0);
  b.AddMove("tmp", "b", false, t0);
  EXPECT_THAT(b.Take(t0).renames,
              ::testing::ElementsAre(Rename{"a", "tmp"}, Rename{"b", "a"}, Rename{"tmp", "b"}));
}

TEST(BatcherMoveTest, PendingChangesInsideAMovedDirectoryFollowIt) {
  Batcher b({});
  b.Add("d/f", t0);
  b.Add("d/sub/g", t0);
  b.Add("other", t0);
  b.AddMove("d", "e", true, t0);
  auto r = b.Take(t0);
  EXPECT_THAT(r.paths, ::testing::ElementsAre("", "e", "e/f", "e/sub/g", "other"));
}

}  // namespace
}  // namespace syncd

namespace syncd {
namespace {

using std::chrono::milliseconds;

TEST(BatcherSettleTest, WrittenPathWaitsForItsClose) {
  Batcher b({});
  b.AddModified("log", t0);
  b.Promote(t0 + milliseconds(100));
  EXPECT_FALSE(b.Due(t0 + milliseconds(100)));
  EXPECT_EQ(*b.NextDeadline(), t0 + milliseconds(300));
  b.Add("log", t0 + milliseconds(150));  // IN_CLOSE_WRITE: goes at once, lag from the write.
  auto r = b.Take(t0 + milliseconds(150));
  EXPECT_THAT(r.paths, ElementsAre("log"));
  EXPECT_EQ(r.oldest, t0);
}

TEST(BatcherSettleTest, WrittenPathWithoutCloseGoesOnceQuiet) {
  Batcher b({});
  b.AddModified("touched", t0);  // utimensat(mtime only) reports IN_MODIFY and nothing else.
  b.Promote(t0 + milliseconds(299));
  EXPECT_FALSE(b.Due(t0 + milliseconds(299)));
  b.Promote(t0 + milliseconds(300));
  EXPECT_THAT(b.Take(t0 + milliseconds(300)).paths, ElementsAre("touched"));
}

TEST(BatcherSettleTest, EndlessWriterIsSentAfterMaxSettle) {
  Batcher b({});
  for (int ms = 0; ms <= 5000; ms += 100) {
    b.AddModified("growing", t0 + milliseconds(ms));
    b.Promote(t0 + milliseconds(ms));
  }
  EXPECT_TRUE(b.Due(t0 + milliseconds(5000)));
}

}  // namespace
}  // namespace syncd
