#include "syncd/history.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/temp_dir.h"

namespace syncd {
namespace {

constexpr int64_t kSecond = 1000000000;

EpochRecord Epoch(std::string node, uint64_t counter, int64_t first, int64_t through,
                  uint64_t changes) {
  EpochRecord e;
  e.node = std::move(node);
  e.host = e.node == "aaaaaaaaaaaaaaaa" ? "osm1" : "osm2";
  e.counter = counter;
  e.started = first - kSecond;
  e.first = first;
  e.through = through;
  e.changes = changes;
  return e;
}

const std::string kOsm1 = "aaaaaaaaaaaaaaaa", kOsm2 = "bbbbbbbbbbbbbbbb";

TEST(HistoryTest, AFreshPairHasNothingUnseen) {
  EXPECT_TRUE(FindUnseen({}, {}, kOsm2).empty());
  // The standby holds an epoch in which nothing happened.
  EXPECT_TRUE(FindUnseen({}, {Epoch(kOsm1, 1, 0, 0, 0)}, kOsm2).empty());
}

TEST(HistoryTest, AnOrdinaryFailoverLeavesOnlyTheChangesInFlight) {
  // osm1 was active; osm2 received everything before t=100 s; osm1 made 3 more changes in
  // 20 ms, then died. osm2, now active, meets osm1's record.
  EpochRecord theirs = Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond + 20000000, 1003);
  theirs.unconfirmed_since = 100 * kSecond + 5000000;
  EpochRecord mine = Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond, 1000);
  auto unseen = FindUnseen({mine, Epoch(kOsm2, 1, 200 * kSecond, 200 * kSecond, 1)}, {theirs}, kOsm2);
  ASSERT_EQ(unseen.size(), 1u);
  EXPECT_EQ(unseen[0].changes, 3u);
  EXPECT_NEAR(unseen[0].Seconds(), 0.015, 1e-9);
  EXPECT_EQ(unseen[0].epoch.host, "osm1");
}

TEST(HistoryTest, ADoubleFailureLeavesHoursUnseen) {
  // osm2 went down at t=100 s; osm1 went on for three hours.
  EpochRecord theirs = Epoch(kOsm1, 1, 10 * kSecond, 10900 * kSecond, 50000);
  theirs.unconfirmed_since = 130 * kSecond;
  EpochRecord mine = Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond, 1000);
  auto unseen = FindUnseen({mine}, {theirs}, kOsm2);
  ASSERT_EQ(unseen.size(), 1u);
  EXPECT_EQ(unseen[0].changes, 49000u);
  EXPECT_EQ(unseen[0].from, 130 * kSecond);
  EXPECT_NEAR(unseen[0].Seconds(), 10770, 1e-6);
}

TEST(HistoryTest, AnEpochNeverReceivedIsUnseenFromItsFirstChange) {
  EpochRecord theirs = Epoch(kOsm2, 4, 500 * kSecond, 800 * kSecond, 70);
  auto unseen = FindUnseen({Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond, 10)}, {theirs}, kOsm1);
  ASSERT_EQ(unseen.size(), 1u);
  EXPECT_EQ(unseen[0].from, 500 * kSecond);
  EXPECT_EQ(unseen[0].changes, 70u);
}

TEST(HistoryTest, ARestartOfTheSameActiveNodeHasNothingUnseen) {
  // osm1 crashed before writing its record of its last second; the standby holds more of
  // osm1's epoch than osm1's record says, and osm1's tree has it all the same.
  EpochRecord mine = Epoch(kOsm1, 1, 10 * kSecond, 99 * kSecond, 990);
  EpochRecord theirs = Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond, 1000);
  EXPECT_TRUE(FindUnseen({mine}, {theirs}, kOsm1).empty());
  // Not so for another node's copy of the same record.
  EXPECT_EQ(FindUnseen({mine}, {theirs}, kOsm2).size(), 1u);
}

TEST(HistoryTest, WhatThisNodeHoldsBeyondTheStandbyIsNotUnseen) {
  EXPECT_TRUE(FindUnseen({Epoch(kOsm1, 1, 10 * kSecond, 100 * kSecond, 1000)},
                         {Epoch(kOsm1, 1, 10 * kSecond, 50 * kSecond, 500)}, kOsm2)
                  .empty());
}

TEST(HistoryTest, StampsReplaceOrUpdateTheLineage) {
  testing::TempDir tmp("history");
  auto dir = StateDir::Open(tmp / "state");
  ASSERT_TRUE(dir) << dir.error().message;
  auto h = TreeHistory::Load(*dir, "/srv/tree");
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_FALSE(h->found());
  h->BeginEpoch(dir->node_id(), "osm2", 5 * kSecond);  // Its own, as active once.
  EpochRecord a = Epoch(kOsm1, 3, 10 * kSecond, 20 * kSecond, 7);
  a.unconfirmed_since = 15 * kSecond;  // The active node's own note: never kept by a standby.
  h->Apply(HistoryStamp{true, {a}});
  ASSERT_EQ(h->lineage().size(), 1u);
  EXPECT_EQ(h->lineage()[0].unconfirmed_since, 0);
  a.through = 30 * kSecond;
  a.changes = 9;
  h->Apply(HistoryStamp{false, {a}});
  EpochRecord older = a;
  older.through = 25 * kSecond;  // Never moves a record back.
  h->Apply(HistoryStamp{false, {older}});
  ASSERT_EQ(h->lineage().size(), 1u);
  EXPECT_EQ(h->lineage()[0].through, 30 * kSecond);
  EXPECT_EQ(h->lineage()[0].changes, 9u);
  ASSERT_TRUE(h->Save(true));

  auto again = TreeHistory::Load(*dir, "/srv/tree");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->found());
  EXPECT_EQ(again->lineage(), h->lineage());
}

TEST(HistoryTest, TheNodeIdIsMadeOnceAndKept) {
  testing::TempDir tmp("history");
  auto first = StateDir::Open(tmp / "state");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->new_node());
  auto second = StateDir::Open(tmp / "state");
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->new_node());
  EXPECT_EQ(first->node_id(), second->node_id());
  struct stat st;
  ASSERT_EQ(::stat((tmp / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(HistoryTest, ADamagedFileIsAnErrorNeverAnEmptyHistory) {
  testing::TempDir tmp("history");
  auto dir = StateDir::Open(tmp / "state");
  ASSERT_TRUE(dir);
  auto h = TreeHistory::Load(*dir, "/srv/a\nb");
  ASSERT_TRUE(h);
  h->BeginEpoch(dir->node_id(), "host with spaces\nand a newline", 1);
  ASSERT_TRUE(h->Save(false));
  auto back = TreeHistory::Load(*dir, "/srv/a\nb");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->lineage()[0].host, "host with spaces\nand a newline");
  // Cut short.
  std::string file = dir->HistoryFile("/srv/a\nb");
  std::string text = TreeHistory::Serialize("/srv/a\nb", back->lineage());
  std::ofstream(file) << text.substr(0, text.size() - 4);
  auto cut = TreeHistory::Load(*dir, "/srv/a\nb");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("cut short"), std::string::npos);
}

TEST(HistoryTest, AnEpochCounterGrowsPerNodeAndTheLineageIsBounded) {
  testing::TempDir tmp("history");
  auto dir = StateDir::Open(tmp / "state");
  ASSERT_TRUE(dir);
  auto h = TreeHistory::Load(*dir, "/srv/tree");
  ASSERT_TRUE(h);
  for (int i = 0; i < 40; ++i) h->BeginEpoch(dir->node_id(), "osm1", (i + 1) * kSecond);
  EXPECT_EQ(h->lineage().size(), kMaxEpochs);
  EXPECT_EQ(h->lineage().back().counter, 40u);
  EXPECT_EQ(h->lineage().front().counter, 9u);
}

}  // namespace
}  // namespace syncd
