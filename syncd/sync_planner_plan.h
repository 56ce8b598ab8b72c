// SyncPlanner's working state while it plans one batch; shared by the files that implement it
// (sync_planner.cc: comparing entries and the startup comparison; sync_planner_changes.cc: live
// changes and what the peer acknowledged). Not part of the planner's interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "syncd/large_array.h"
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
  std::unordered_set<std::string> puts;          // Files with other names whose content this plan sends.
  std::unordered_set<std::string> meta_paths;    // Paths of `metas`, up to `metas_indexed`.
  size_t metas_indexed = 0;

  // Whether `metas` holds an operation on `path`.
  bool HasMeta(const std::string& path) {
    for (; metas_indexed < metas.size(); ++metas_indexed) meta_paths.insert(metas[metas_indexed].entry.path);
    return meta_paths.contains(path);
  }

  // Empties the plan into one batch. A startup comparison plans an operation per file, so
  // the operations are moved, not copied, and each list is freed once moved: the batch and the
  // plan are not both held whole. A first copy's creations become the batch where they lie.
  ChangeBatch Finish(uint64_t id) {
    ChangeBatch batch;
    batch.id = id;
    // By path, parents first; operations on one path keep their order. Sorted through their
    // indices, then put in that order in place: a stable sort of the operations themselves
    // would copy them all once more.
    std::vector<uint32_t> order(creates.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
      int c = creates[a].entry.path.compare(creates[b].entry.path);
      return c != 0 ? c < 0 : a < b;
    });
    ApplyOrder(creates, order);
    std::vector<uint32_t>().swap(order);
    // A delete beneath another delete is covered by the recursive one.
    std::sort(deletes.begin(), deletes.end(),
              [](const Op& a, const Op& b) { return a.entry.path < b.entry.path; });
    size_t kept = 0;
    for (size_t i = 0; i < deletes.size(); ++i) {
      if (kept > 0 && IsWithin(deletes[i].entry.path, deletes[kept - 1].entry.path)) continue;
      if (kept != i) deletes[kept] = std::move(deletes[i]);
      ++kept;
    }
    deletes.resize(kept, Op{});
    auto take = [&batch](std::vector<Op>& ops) {
      for (Op& op : ops) batch.ops.push_back(std::move(op));
      std::vector<Op>().swap(ops);
    };
    if (moves.empty() && deletes.empty() && creates.capacity() >= creates.size() + metas.size()) {
      batch.ops = std::move(creates);  // A first copy: nothing else comes before them.
    } else {
      ReserveLarge(batch.ops, moves.size() + deletes.size() + creates.size() + metas.size());
      take(moves);
      take(deletes);
      take(creates);
    }
    take(metas);
    return batch;
  }

  // Puts ops[order[0]] first, ops[order[1]] second, and so on, moving each operation once
  // (`order` is a permutation; it is used up).
  static void ApplyOrder(std::vector<Op>& ops, std::vector<uint32_t>& order) {
    constexpr uint32_t kDone = UINT32_MAX;
    for (uint32_t start = 0; start < order.size(); ++start) {
      if (order[start] == kDone || order[start] == start) continue;
      Op held = std::move(ops[start]);
      uint32_t at = start;
      while (order[at] != start) {
        uint32_t from = order[at];
        ops[at] = std::move(ops[from]);
        order[at] = kDone;
        at = from;
      }
      ops[at] = std::move(held);
      order[at] = kDone;
    }
  }
};

}  // namespace syncd
