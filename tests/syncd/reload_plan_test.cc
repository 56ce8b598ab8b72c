#include "syncd/reload_plan.h"

#include <gtest/gtest.h>

namespace syncd {
namespace {

using Action = ReloadPlan::Action;

SyncConfig Sync(const std::string& source, const std::string& target) {
  SyncConfig s;
  s.name = "Sync";
  s.source = source;
  s.host = "osm2";
  s.target_dir = target;
  return s;
}

TEST(ReloadPlanTest, UnchangedSyncsKeepRunningEvenRenamedOrMoved) {
  std::vector<SyncConfig> running{Sync("/a", "/a"), Sync("/b", "/b")};
  std::vector<SyncConfig> wanted{Sync("/b", "/b"), Sync("/a", "/a")};
  wanted[0].name = "Sync2";           // Only named differently,
  wanted[1].defined_at = "x.lua:9";   // or defined elsewhere in the file.
  ReloadPlan plan = PlanReload(running, {true, true}, wanted);
  ASSERT_EQ(plan.running.size(), 2u);
  EXPECT_EQ(plan.running[0].action, Action::kKeep);
  EXPECT_EQ(plan.running[0].wanted, 1u);
  EXPECT_EQ(plan.running[1].action, Action::kKeep);
  EXPECT_EQ(plan.running[1].wanted, 0u);
  EXPECT_TRUE(plan.added.empty());
}

TEST(ReloadPlanTest, NewExcludesAloneAreAppliedLive) {
  std::vector<SyncConfig> running{Sync("/a", "/a")};
  std::vector<SyncConfig> wanted{Sync("/a", "/a")};
  wanted[0].filter_rules = {"- *.tmp"};
  ReloadPlan plan = PlanReload(running, {true}, wanted);
  EXPECT_EQ(plan.running[0].action, Action::kNewFilter);
}

TEST(ReloadPlanTest, AnyOtherChangeOrAStoppedSyncRestarts) {
  std::vector<SyncConfig> running{Sync("/a", "/a"), Sync("/b", "/b")};
  std::vector<SyncConfig> wanted{Sync("/a", "/a"), Sync("/b", "/b")};
  wanted[0].delay = 5;
  wanted[0].filter_rules = {"- *.tmp"};  // With another change, still a restart.
  ReloadPlan plan = PlanReload(running, {true, false}, wanted);
  EXPECT_EQ(plan.running[0].action, Action::kRestart);
  EXPECT_EQ(plan.running[1].action, Action::kRestart);  // Had stopped on an error.
}

TEST(ReloadPlanTest, GoneSyncsStopAndNewOnesStart) {
  std::vector<SyncConfig> running{Sync("/a", "/a"), Sync("/b", "/b")};
  std::vector<SyncConfig> wanted{Sync("/b", "/b"), Sync("/a", "/elsewhere"), Sync("/c", "/c")};
  ReloadPlan plan = PlanReload(running, {true, true}, wanted);
  EXPECT_EQ(plan.running[0].action, Action::kStop);  // A new target is a new sync.
  EXPECT_EQ(plan.running[1].action, Action::kKeep);
  EXPECT_EQ(plan.added, (std::vector<size_t>{1, 2}));
}

// Two syncs of the same source and target (a config that repeats one) each find their own.
TEST(ReloadPlanTest, EachWantedSyncIsTakenOnce) {
  std::vector<SyncConfig> running{Sync("/a", "/a"), Sync("/a", "/a")};
  std::vector<SyncConfig> wanted{Sync("/a", "/a")};
  ReloadPlan plan = PlanReload(running, {true, true}, wanted);
  EXPECT_EQ(plan.running[0].action, Action::kKeep);
  EXPECT_EQ(plan.running[1].action, Action::kStop);
}

}  // namespace
}  // namespace syncd
