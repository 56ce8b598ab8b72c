// FailedPaths is a sync's account of the paths whose operations keep failing (an unreadable
// source file, a full or read-only disk on the standby): which ones and why, since when, and
// when to try them again. A path counts as old as the change that first failed, however often
// it is retried, so the lag grows and a flush cannot call it done; the pause between retries
// doubles while failures go on and starts again short after a batch with none.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/change.h"
#include "syncd/error.h"

namespace syncd {

class FailedPaths {
 public:
  FailedPaths(std::chrono::milliseconds first_pause, std::chrono::milliseconds max_pause)
      : first_pause_(first_pause), max_pause_(max_pause), pause_(first_pause) {}

  // `path` failed with `error`, in a batch whose oldest change was noticed at `since`. True
  // when this is news (a new path, or a new cause): said at Error; a repeat is a debug line.
  bool Failed(const std::string& path, const Error& error, TimePoint since, TimePoint now);
  // `path` went over: true if it was failing (said as "replicated now").
  bool Succeeded(const std::string& path) { return failing_.erase(path) > 0; }
  // Nothing of `path` is left to send (gone from the source, or equal on the peer by now).
  bool Settled(const std::string& path) { return failing_.erase(path) > 0; }

  // Paths to try again after the pause; `now` is when they were put aside.
  void RetryLater(std::vector<std::string> paths, TimePoint now);
  // The pause before the retry of what RetryLater() gathered, if a retry is not already due;
  // each call doubles the next pause, up to the maximum.
  std::optional<std::chrono::milliseconds> ArmRetry();
  // The paths due for retry, taken (the retry is no longer armed).
  std::vector<std::string> TakeRetries();
  // A batch came back without a failure: the next pause is short again.
  void CleanBatch() { pause_ = first_pause_; }
  // The connection broke: the comparison after reconnecting covers the retries.
  void DropRetries() {
    retries_.clear();
    armed_ = false;
  }

  bool empty() const { return failing_.empty(); }
  size_t size() const { return failing_.size(); }
  bool contains(const std::string& path) const { return failing_.contains(path); }
  size_t retries() const { return retries_.size(); }
  // Every failing path.
  std::vector<std::string> Paths() const;
  // The paths whose latest attempt, made at or after `t`, failed: "path: reason", sorted.
  std::vector<std::string> FailedSince(TimePoint t) const;
  // The oldest change that has not gone over because of a failure.
  std::optional<TimePoint> Oldest() const;

 private:
  struct Failing {
    int code;
    std::string message;
    TimePoint since;  // The change that first failed.
    TimePoint last;   // The latest attempt that failed.
  };
  std::chrono::milliseconds first_pause_, max_pause_, pause_;
  std::unordered_map<std::string, Failing> failing_;
  std::vector<std::string> retries_;
  TimePoint retries_since_{};
  bool armed_ = false;
};

}  // namespace syncd
