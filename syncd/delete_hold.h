// DeleteHold keeps back the deletions of paths that vanished from a running sync's source until
// deleting has paused. `rm -rf` of the source root removes everything beneath it first and the
// root last; sent as they happened, those deletions would empty the standby before the root's
// own disappearance told syncd what was going on. Held until the deleting pauses, they are
// dropped when the root turns out to be gone. Pure: time is passed in.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/change.h"

namespace syncd {

class DeleteHold {
 public:
  // `quiet`: deletions go once none has been held for this long. `longest`: a steady stream of
  // deletions (a busy session garbage collector) is released this long after its first one.
  DeleteHold(std::chrono::milliseconds quiet, std::chrono::milliseconds longest)
      : quiet_(quiet), longest_(longest) {}

  // `noticed`: when the change that removed `path` was first noticed (what Take() returns, so
  // a released deletion goes out with the window it fell in, not a new one).
  void Hold(const std::string& path, TimePoint now, TimePoint noticed);
  void Hold(const std::string& path, TimePoint now) { Hold(path, now, now); }
  bool empty() const { return held_.empty(); }
  size_t size() const { return held_.size(); }
  // When the first deletion held now was noticed.
  std::optional<TimePoint> oldest() const {
    return held_.empty() ? std::nullopt : std::optional<TimePoint>(first_);
  }
  // When what is held may go; nullopt when nothing is held.
  std::optional<TimePoint> Deadline() const;
  bool Due(TimePoint now) const {
    auto d = Deadline();
    return d && *d <= now;
  }
  // Everything held, with when each one's change was noticed; the hold is empty afterwards.
  std::vector<std::pair<std::string, TimePoint>> Take();

 private:
  std::chrono::milliseconds quiet_, longest_;
  std::unordered_map<std::string, TimePoint> held_;
  TimePoint first_{}, last_{};
};

}  // namespace syncd
