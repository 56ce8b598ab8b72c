// LargeLane carries transfers of large files and deltas on a channel of their own (a second
// exec channel on the same SSH session, or a second local agent), one at a time, so that a
// multi-gigabyte file or a delta's round trips do not hold back the small files changed after
// it started.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "syncd/change.h"
#include "syncd/life_token.h"
#include "syncd/replica.h"

namespace syncd {

class LargeLane {
 public:
  // Files of this size or more take the lane. At the SSH client's ~300 MB/s this is ~25 ms of
  // transfer: below it, head-of-line blocking costs less than a second round of commits.
  static constexpr uint64_t kLargeFileBytes = 8 << 20;
  // Large files, and files sent as deltas: a delta waits for the peer's signature and for
  // workers to compute it, which the small files behind it must not wait for.
  // (Not a file whose other names are hard links to it on the peer: they are made in the main
  // channel's commit, which must find the new content in place.)
  static bool Takes(const Op& op) {
    return op.kind == OpKind::kPut && !op.keeps_links &&
           (op.entry.size >= kLargeFileBytes || (op.basis_size > 0 && op.entry.size >= kDeltaMinBytes));
  }

  // `done` gets each transfer's batch and result, in order; a failed status means the lane's
  // connection broke (the caller treats it as the sync's connection breaking).
  using Done = std::function<void(const ChangeBatch&, BatchResult)>;
  LargeLane(std::string name, PeerConnector connect, Done done);
  ~LargeLane();

  void Enqueue(Op op, TimePoint oldest, uint64_t events_at_plan);
  // True if `path` is a file queued or in transfer here.
  bool HoldsFile(const std::string& path) const;
  // True if `path` is a directory above a file queued or in transfer here.
  bool HoldsBeneath(const std::string& path) const;
  bool idle() const { return queue_.empty() && !in_flight_; }
  size_t size() const { return queue_.size() + (in_flight_ ? 1 : 0); }
  // When the oldest change waiting here happened.
  std::optional<TimePoint> oldest() const;
  // Drops the queue and the connection (the sync reconnects and reconciles).
  void Reset();

 private:
  void Next();

  std::string name_;
  PeerConnector connect_;
  Done done_;
  std::unique_ptr<Replica> replica_;
  bool connected_ = false;
  bool connecting_ = false;
  std::deque<ChangeBatch> queue_;
  SharedBatch in_flight_;
  uint64_t next_id_ = 1;
  LifeToken life_;
};

}  // namespace syncd
