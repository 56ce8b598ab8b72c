#include "syncd/delete_hold.h"

#include "syncd/batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd {
namespace {

using std::chrono::milliseconds;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

const TimePoint t0 = TimePoint() + std::chrono::hours(1);

TEST(DeleteHoldTest, DeletionsGoOnceDeletingHasPaused) {
  DeleteHold h(milliseconds(100), milliseconds(10000));
  EXPECT_FALSE(h.Deadline());
  h.Hold("a", t0);
  h.Hold("b", t0 + milliseconds(60));
  // Each new deletion pushes the release back: an rm -rf in progress is never half sent.
  EXPECT_EQ(*h.Deadline(), t0 + milliseconds(160));
  EXPECT_FALSE(h.Due(t0 + milliseconds(159)));
  EXPECT_TRUE(h.Due(t0 + milliseconds(160)));
  EXPECT_THAT(h.Take(), UnorderedElementsAre(Pair("a", t0), Pair("b", t0 + milliseconds(60))));
  EXPECT_TRUE(h.empty());
  EXPECT_FALSE(h.Deadline());
}

// With `delay = 3`, a deletion noticed at t0 is planned at t0 + 3 s and held; released at
// t0 + 3.1 s, it must go out then, not wait a second window (it reached the standby after
// 6 s when the hold returned the time it was held).
TEST(DeleteHoldTest, AReleasedDeletionIsDueInTheWindowItFellIn) {
  DeleteHold h(milliseconds(100), milliseconds(10000));
  Batcher::Options options;
  options.delay = milliseconds(3000);
  Batcher batcher(options);
  batcher.Add("gone", t0);
  TimePoint planned = t0 + milliseconds(3000);
  ASSERT_TRUE(batcher.Due(planned));
  auto released = batcher.Take(planned);
  h.Hold("gone", planned, released.oldest);
  TimePoint let_go = planned + milliseconds(100);
  ASSERT_TRUE(h.Due(let_go));
  for (auto& [path, noticed] : h.Take()) batcher.Add(path, noticed);
  EXPECT_TRUE(batcher.Due(let_go));
  EXPECT_EQ(*batcher.NextDeadline(), planned);
}

TEST(DeleteHoldTest, ASteadyStreamIsReleasedAfterTheLongestHold) {
  DeleteHold h(milliseconds(100), milliseconds(1000));
  for (int i = 0; i <= 30; ++i) h.Hold("s" + std::to_string(i), t0 + milliseconds(i * 50));
  EXPECT_EQ(*h.Deadline(), t0 + milliseconds(1000));
  EXPECT_EQ(h.size(), 31u);
  EXPECT_EQ(*h.oldest(), t0);
}

TEST(DeleteHoldTest, APathHeldTwiceKeepsItsFirstTime) {
  DeleteHold h(milliseconds(100), milliseconds(1000));
  h.Hold("a", t0);
  h.Hold("a", t0 + milliseconds(50));
  EXPECT_EQ(h.size(), 1u);
  EXPECT_THAT(h.Take(), UnorderedElementsAre(Pair("a", t0)));
  // A new hold after a release starts a new window.
  h.Hold("b", t0 + milliseconds(5000));
  EXPECT_EQ(*h.Deadline(), t0 + milliseconds(5100));
  EXPECT_EQ(*h.oldest(), t0 + milliseconds(5000));
}

}  // namespace
}  // namespace syncd
