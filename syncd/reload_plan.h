// What a reload (SIGHUP) does to each sync, decided from the running and the reloaded
// configurations alone: a pure function, so the rules are tested without a daemon.
//
// A sync is the same sync if it replicates the same source to the same target. One that is
// the same in every other respect keeps running untouched; one whose excludes alone changed
// keeps its connection and what it knows of the peer and takes the new rules; any other
// change (or a sync that had stopped) restarts it. Syncs gone from the file stop; new ones
// start.
#pragma once

#include <cstddef>
#include <vector>

#include "syncd/config.h"

namespace syncd {

struct ReloadPlan {
  enum class Action { kKeep, kNewFilter, kRestart, kStop };
  struct Step {
    Action action;
    size_t wanted;  // The sync of the reloaded configuration it becomes (not for kStop).
  };
  std::vector<Step> running;  // One per running sync, in order.
  std::vector<size_t> added;  // Syncs of the reloaded configuration that are new.
};

// `running_ok[i]` says whether running sync i is still running (not stopped by an error).
ReloadPlan PlanReload(const std::vector<SyncConfig>& running, const std::vector<bool>& running_ok,
                      const std::vector<SyncConfig>& wanted);

}  // namespace syncd
