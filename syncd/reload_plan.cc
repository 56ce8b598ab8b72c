#include "syncd/reload_plan.h"

namespace syncd {

ReloadPlan PlanReload(const std::vector<SyncConfig>& running, const std::vector<bool>& running_ok,
                      const std::vector<SyncConfig>& wanted) {
  auto same_target = [](const SyncConfig& a, const SyncConfig& b) {
    return a.source == b.source && a.host == b.host && a.target_dir == b.target_dir;
  };
  ReloadPlan plan;
  std::vector<bool> taken(wanted.size(), false);
  for (size_t i = 0; i < running.size(); ++i) {
    const SyncConfig& now = running[i];
    size_t j = 0;
    while (j < wanted.size() && (taken[j] || !same_target(now, wanted[j]))) ++j;
    if (j == wanted.size()) {
      plan.running.push_back({ReloadPlan::Action::kStop, 0});
      continue;
    }
    taken[j] = true;
    const SyncConfig& want = wanted[j];
    // Names and where they were defined may change freely; the excludes are applied live.
    SyncConfig compare = now;
    compare.filter_rules = want.filter_rules;
    compare.name = want.name;
    compare.defined_at = want.defined_at;
    ReloadPlan::Action action = ReloadPlan::Action::kKeep;
    if (!(compare == want) || !running_ok[i])
      action = ReloadPlan::Action::kRestart;
    else if (now.filter_rules != want.filter_rules)
      action = ReloadPlan::Action::kNewFilter;
    plan.running.push_back({action, j});
  }
  for (size_t j = 0; j < wanted.size(); ++j)
    if (!taken[j]) plan.added.push_back(j);
  return plan;
}

}  // namespace syncd
