#include "syncd/failed_paths.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

const TimePoint t0{};
TimePoint At(int ms) { return t0 + milliseconds(ms); }

TEST(FailedPathsTest, SaidOncePerPathAndCause) {
  FailedPaths failed(milliseconds(2000), milliseconds(60000));
  EXPECT_TRUE(failed.Failed("a", Error{"Input/output error", EIO}, At(0), At(10)));
  EXPECT_FALSE(failed.Failed("a", Error{"Input/output error", EIO}, At(20), At(30)));
  EXPECT_TRUE(failed.Failed("a", Error{"No space left on device", ENOSPC}, At(40), At(50)));
  EXPECT_TRUE(failed.Failed("b", Error{"Input/output error", EIO}, At(60), At(70)));
  EXPECT_THAT(failed.Paths(), ElementsAre("a", "b"));
  EXPECT_TRUE(failed.Succeeded("a"));
  EXPECT_FALSE(failed.Succeeded("a"));
  EXPECT_TRUE(failed.Failed("a", Error{"No space left on device", ENOSPC}, At(80), At(90)));
}

// However often it is retried, a failing path is as old as the change that first failed.
TEST(FailedPathsTest, APathIsAsOldAsItsFirstFailure) {
  FailedPaths failed(milliseconds(2000), milliseconds(60000));
  EXPECT_FALSE(failed.Oldest());
  failed.Failed("a", Error{"EIO", EIO}, At(100), At(150));
  failed.Failed("a", Error{"EIO", EIO}, At(5000), At(5050));
  failed.Failed("b", Error{"EIO", EIO}, At(3000), At(3050));
  EXPECT_EQ(failed.Oldest(), At(100));
  failed.Settled("a");
  EXPECT_EQ(failed.Oldest(), At(3000));
}

// A flush names the paths tried since it asked, with the reason.
TEST(FailedPathsTest, FailedSinceNamesTheLatestAttemptsWithTheirReason) {
  FailedPaths failed(milliseconds(2000), milliseconds(60000));
  failed.Failed("old", Error{"Permission denied", EACCES}, At(0), At(10));
  failed.Failed("", Error{"Read-only file system", EROFS}, At(0), At(500));
  failed.Failed("new", Error{"Input/output error", EIO}, At(0), At(600));
  EXPECT_THAT(failed.FailedSince(At(500)),
              ElementsAre(".: Read-only file system", "new: Input/output error"));
}

TEST(FailedPathsTest, ThePauseDoublesUpToTheMaximumAndACleanBatchShortensIt) {
  FailedPaths failed(milliseconds(2000), milliseconds(10000));
  EXPECT_FALSE(failed.ArmRetry());  // Nothing to retry.
  std::vector<milliseconds> pauses;
  for (int i = 0; i < 5; ++i) {
    failed.RetryLater({"a"}, At(i));
    auto pause = failed.ArmRetry();
    ASSERT_TRUE(pause);
    EXPECT_FALSE(failed.ArmRetry());  // Armed already: the paths go with the pending retry.
    pauses.push_back(*pause);
    EXPECT_THAT(failed.TakeRetries(), ElementsAre("a"));
  }
  EXPECT_THAT(pauses, ElementsAre(milliseconds(2000), milliseconds(4000), milliseconds(8000),
                                  milliseconds(10000), milliseconds(10000)));
  failed.CleanBatch();
  failed.RetryLater({"a"}, At(9));
  EXPECT_EQ(failed.ArmRetry(), milliseconds(2000));
}

TEST(FailedPathsTest, ABrokenConnectionDropsTheRetriesButNotTheAccount) {
  FailedPaths failed(milliseconds(2000), milliseconds(60000));
  failed.Failed("a", Error{"EIO", EIO}, At(0), At(1));
  failed.RetryLater({"a"}, At(1));
  ASSERT_TRUE(failed.ArmRetry());
  failed.DropRetries();
  EXPECT_EQ(failed.retries(), 0u);
  EXPECT_TRUE(failed.contains("a"));
  failed.RetryLater({"a"}, At(2));
  EXPECT_TRUE(failed.ArmRetry());  // Not armed any more.
}

}  // namespace
}  // namespace syncd
