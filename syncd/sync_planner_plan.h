// SyncPlanner's working state while it plans one batch; shared by the files that implement it
// (sync_planner.cc: comparing entries and the startup comparison; sync_planner_changes.cc: live
// changes and what the peer acknowledged). Not part of the planner's interface.
#pragma once

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "syncd/sync_planner.h"

namespace syncd {

// An entry known by its path and type only (what a delete names).
inline Entry PathEntry(const std::string& path, FileType type = FileType::kFile) {
  Entry e;
  e.path = path;
  e.type = type;
  return e;
}

// Operations collected while planning, emitted in a safe order by Finish().
struct SyncPlanner::Plan {
  std::vector<Op> moves;    // Renames, and deletes clearing their way, in the order they happened.
  std::vector<Op> deletes;
  std::vector<Op> creates;  // Mkdir, Symlink, Put; sorted by path so parents come first.
  std::vector<Op> metas;
  std::unordered_set<std::string> created_dirs;  // Directories this plan creates.
  std::set<std::string> touched_dirs;            // Parents whose mtime the plan disturbs.
  std::unordered_set<std::string> planned;       // Paths already looked at.
  std::vector<std::string> moved_dirs;           // Destinations of directory renames.
  std::unordered_set<std::string> puts;          // Files whose content this plan sends.

  ChangeBatch Finish(uint64_t id) {
    ChangeBatch batch;
    batch.id = id;
    for (Op& op : moves) batch.ops.push_back(std::move(op));
    // A delete beneath another delete is covered by the recursive one.
    std::sort(deletes.begin(), deletes.end(),
              [](const Op& a, const Op& b) { return a.entry.path < b.entry.path; });
    std::optional<std::string> last;
    for (Op& op : deletes) {
      if (last && IsWithin(op.entry.path, *last)) continue;
      last = op.entry.path;
      batch.ops.push_back(std::move(op));
    }
    std::stable_sort(creates.begin(), creates.end(),
                     [](const Op& a, const Op& b) { return a.entry.path < b.entry.path; });
    for (Op& op : creates) batch.ops.push_back(std::move(op));
    for (Op& op : metas) batch.ops.push_back(std::move(op));
    return batch;
  }
};

}  // namespace syncd
