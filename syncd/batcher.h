// Batcher coalesces change notices per path and decides when a batch may be released. Pure:
// no I/O, no clock, no timer; time is passed in (Add(path, now), NextDeadline(), Take(now)).
//
// Without a configured delay a batch is due at once, and the caller releases one only while no
// other batch is in flight, so batching comes from load (group commit). With `delay`, a batch is
// due `delay` after its first change (lsyncd's fixed window), or at once when `max_delays`
// paths are pending.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/change.h"

namespace syncd {

class Batcher {
 public:
  struct Options {
    std::optional<std::chrono::milliseconds> delay;
    size_t max_delays = 1000;
    // A path written to but not closed (IN_MODIFY without IN_CLOSE_WRITE: a writer still at
    // work, or a bare mtime change) becomes a change once quiet this long, or this long after
    // it was first written at the latest.
    std::chrono::milliseconds settle{300};
    std::chrono::milliseconds max_settle{5000};
  };
  explicit Batcher(Options options) : options_(options) {}

  // Marks `path` (relative to the sync root) as changed.
  void Add(const std::string& path, TimePoint now);
  // Records that `from` was renamed to `to` (both inside the tree). Renames keep their order;
  // one that continues the previous one is merged with it (A->B, B->C is A->C). Changes
  // pending beneath a renamed directory move with it; `to` is marked as changed too.
  void AddMove(const std::string& from, const std::string& to, bool is_dir, TimePoint now);
  // `path` was written to and not (yet) closed. A change notice for it (Add) supersedes this.
  void AddModified(const std::string& path, TimePoint now);
  // Turns modified paths that have settled by `now` into changes. Call before Due/Take.
  void Promote(TimePoint now);
  bool empty() const { return pending_.empty() && settling_.empty(); }
  // When the oldest change held here happened (a status figure: scans the settling paths).
  std::optional<TimePoint> oldest() const;
  size_t size() const { return pending_.size() + settling_.size(); }

  // When the pending batch becomes due; nullopt when nothing is pending.
  std::optional<TimePoint> NextDeadline() const;
  bool Due(TimePoint now) const;

  // Releases every pending path in sorted order (parents before children), and the time of
  // the oldest change among them. Empty if not due.
  struct Released {
    std::vector<Rename> renames;  // In the order they happened; to be applied first.
    std::vector<std::string> paths;
    TimePoint oldest{};
  };
  Released Take(TimePoint now);
  // Puts back a release that could not go yet, ahead of anything that came after it.
  void Restore(Released released);

 private:
  Options options_;
  std::unordered_map<std::string, TimePoint> pending_;  // path -> first change time.
  std::vector<Rename> renames_;
  struct Settling {
    TimePoint first;
    TimePoint last;
  };
  std::unordered_map<std::string, Settling> settling_;
  TimePoint SettleDeadline(const Settling& s) const;
  std::optional<TimePoint> first_;
};

}  // namespace syncd
