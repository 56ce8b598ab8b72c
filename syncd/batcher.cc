#include "syncd/batcher.h"

#include <algorithm>

namespace syncd {

void Batcher::Add(const std::string& path, TimePoint now) {
  pending_.try_emplace(path, now);
  if (!first_) first_ = now;
}

std::optional<TimePoint> Batcher::NextDeadline() const {
  if (!first_) return std::nullopt;
  if (!options_.delay || pending_.size() >= options_.max_delays) return *first_;
  return *first_ + *options_.delay;
}

bool Batcher::Due(TimePoint now) const {
  auto deadline = NextDeadline();
  return deadline && *deadline <= now;
}

Batcher::Released Batcher::Take(TimePoint now) {
  Released out;
  if (!Due(now)) return out;
  out.oldest = *first_;
  out.paths.reserve(pending_.size());
  for (auto& [path, when] : pending_) out.paths.push_back(path);
  std::sort(out.paths.begin(), out.paths.end());
  pending_.clear();
  first_.reset();
  return out;
}

}  // namespace syncd
