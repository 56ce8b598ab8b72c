#include "syncd/failed_paths.h"

#include <algorithm>

#include <fmt/format.h>

namespace syncd {

bool FailedPaths::Failed(const std::string& path, const Error& error, TimePoint since, TimePoint now) {
  auto [it, first] = failing_.try_emplace(path, Failing{error.code, error.message, since, now});
  Failing& f = it->second;
  bool news = first || f.code != error.code;
  f.code = error.code;
  f.message = error.message;
  f.last = now;
  return news;
}

void FailedPaths::RetryLater(std::vector<std::string> paths, TimePoint now) {
  if (paths.empty()) return;
  if (retries_.empty()) retries_since_ = now;
  for (std::string& p : paths) retries_.push_back(std::move(p));
}

std::optional<std::chrono::milliseconds> FailedPaths::ArmRetry() {
  if (retries_.empty() || armed_) return std::nullopt;
  armed_ = true;
  auto pause = pause_;
  pause_ = std::min(pause_ * 2, max_pause_);
  return pause;
}

std::vector<std::string> FailedPaths::TakeRetries() {
  armed_ = false;
  return std::exchange(retries_, {});
}

std::vector<std::string> FailedPaths::Paths() const {
  std::vector<std::string> out;
  out.reserve(failing_.size());
  for (const auto& [path, f] : failing_) out.push_back(path);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> FailedPaths::FailedSince(TimePoint t) const {
  std::vector<std::string> out;
  for (const auto& [path, f] : failing_)
    if (f.last >= t) out.push_back(fmt::format("{}: {}", path.empty() ? "." : path, f.message));
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<TimePoint> FailedPaths::Oldest() const {
  std::optional<TimePoint> oldest;
  if (!retries_.empty()) oldest = retries_since_;
  for (const auto& [path, f] : failing_)
    if (!oldest || f.since < *oldest) oldest = f.since;
  return oldest;
}

}  // namespace syncd
