#include "syncd/delete_hold.h"

#include <algorithm>

namespace syncd {

void DeleteHold::Hold(const std::string& path, TimePoint now, TimePoint noticed) {
  if (held_.empty()) first_ = now;
  held_.try_emplace(path, noticed);
  last_ = std::max(last_, now);
}

std::optional<TimePoint> DeleteHold::Deadline() const {
  if (held_.empty()) return std::nullopt;
  return std::min(last_ + quiet_, first_ + longest_);
}

std::vector<std::pair<std::string, TimePoint>> DeleteHold::Take() {
  std::vector<std::pair<std::string, TimePoint>> out(held_.begin(), held_.end());
  held_.clear();
  first_ = last_ = TimePoint{};
  return out;
}

}  // namespace syncd
