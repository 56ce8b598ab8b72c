#include "syncd/batcher.h"

#include <algorithm>

namespace syncd {

void Batcher::Add(const std::string& path, TimePoint now) {
  TimePoint when = now;
  if (auto it = settling_.find(path); it != settling_.end()) {
    when = it->second.first;  // Lag counts from the first write.
    settling_.erase(it);
  }
  pending_.try_emplace(path, when);
  if (!first_ || when < *first_) first_ = when;
}

void Batcher::Restore(Released released) {
  renames_.insert(renames_.begin(), released.renames.begin(), released.renames.end());
  for (const std::string& p : released.paths) pending_.try_emplace(p, released.oldest);
  if (!released.paths.empty() || !released.renames.empty())
    if (!first_ || released.oldest < *first_) first_ = released.oldest;
}

void Batcher::AddModified(const std::string& path, TimePoint now) {
  if (pending_.contains(path)) return;  // Goes out with the next batch anyway.
  auto [it, inserted] = settling_.try_emplace(path, Settling{now, now});
  if (!inserted) it->second.last = now;
}

TimePoint Batcher::SettleDeadline(const Settling& s) const {
  return std::min(s.last + options_.settle, s.first + options_.max_settle);
}

void Batcher::Promote(TimePoint now) {
  for (auto it = settling_.begin(); it != settling_.end();) {
    if (SettleDeadline(it->second) <= now) {
      std::string path = it->first;
      TimePoint first = it->second.first;
      it = settling_.erase(it);
      pending_.try_emplace(path, first);
      if (!first_ || first < *first_) first_ = first;
    } else {
      ++it;
    }
  }
}

void Batcher::AddMove(const std::string& from, const std::string& to, bool is_dir,
                      TimePoint now) {
  if (!renames_.empty() && renames_.back().to == from && renames_.back().from != to)
    renames_.back().to = to;  // A->B then B->C: one rename A->C.
  else if (!renames_.empty() && renames_.back().to == from)
    renames_.pop_back();  // A->B then B->A: back where it was.
  else
    renames_.push_back(Rename{from, to});
  // Pending changes at or beneath `from` now live under `to`. Only a directory needs the scan.
  std::vector<std::pair<std::string, TimePoint>> moved;
  if (auto it = pending_.find(from); it != pending_.end()) {
    moved.emplace_back(to, it->second);
    pending_.erase(it);
  }
  if (is_dir) {
    std::string prefix = from + "/";
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->first.starts_with(prefix)) {
        moved.emplace_back(to + it->first.substr(from.size()), it->second);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [path, when] : moved) pending_.try_emplace(std::move(path), when);
  Add(to, now);
  Add(ParentOf(from), now);  // Its directory changed too (entries and mtime).
}

std::optional<TimePoint> Batcher::NextDeadline() const {
  std::optional<TimePoint> at;
  if (first_) {
    at = (!options_.delay || pending_.size() >= options_.max_delays) ? *first_
                                                                       : *first_ + *options_.delay;
  }
  for (const auto& [path, s] : settling_) {
    TimePoint d = SettleDeadline(s);
    if (!at || d < *at) at = d;
  }
  return at;
}

bool Batcher::Due(TimePoint now) const {
  if (!first_) return false;
  TimePoint at = (!options_.delay || pending_.size() >= options_.max_delays)
                     ? *first_
                     : *first_ + *options_.delay;
  return at <= now;
}

Batcher::Released Batcher::Take(TimePoint now) {
  Released out;
  if (!Due(now)) return out;
  out.oldest = *first_;
  out.paths.reserve(pending_.size());
  for (auto& [path, when] : pending_) out.paths.push_back(path);
  std::sort(out.paths.begin(), out.paths.end());
  out.renames = std::move(renames_);
  renames_.clear();
  pending_.clear();
  first_.reset();
  return out;
}

std::optional<TimePoint> Batcher::oldest() const {
  std::optional<TimePoint> at = pending_.empty() && renames_.empty() ? std::nullopt : first_;
  for (const auto& [path, s] : settling_)
    if (!at || s.first < *at) at = s.first;
  return at;
}

}  // namespace syncd
