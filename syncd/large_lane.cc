#include "syncd/large_lane.h"

#include "syncd/log.h"

namespace syncd {

LargeLane::LargeLane(std::string name, PeerConnector connect, Done done)
    : name_(std::move(name)), connect_(std::move(connect)), done_(std::move(done)) {}

LargeLane::~LargeLane() {
  life_.Revoke();
  if (replica_) replica_->Close();
}

void LargeLane::Enqueue(Op op, TimePoint oldest, uint64_t events_at_plan) {
  ChangeBatch batch;
  batch.id = next_id_++;
  batch.oldest_change = oldest;
  batch.events_at_plan = events_at_plan;
  LogDebug("Delay", "{}: {} ({} bytes) goes by the large-file lane", name_, op.entry.path,
           op.entry.size);
  batch.ops.push_back(std::move(op));
  queue_.push_back(std::move(batch));
  Next();
}

bool LargeLane::HoldsFile(const std::string& path) const {
  auto holds = [&](const ChangeBatch& b) { return b.ops.front().entry.path == path; };
  return (in_flight_ && holds(*in_flight_)) || std::any_of(queue_.begin(), queue_.end(), holds);
}

bool LargeLane::HoldsBeneath(const std::string& path) const {
  auto beneath = [&](const ChangeBatch& b) {
    const std::string& p = b.ops.front().entry.path;
    return p != path && IsWithin(p, path);
  };
  return (in_flight_ && beneath(*in_flight_)) || std::any_of(queue_.begin(), queue_.end(), beneath);
}

void LargeLane::Reset() {
  queue_.clear();
  in_flight_.reset();
  connected_ = connecting_ = false;
  if (replica_) replica_->Close();
  replica_.reset();
}

void LargeLane::Next() {
  if (in_flight_ || queue_.empty() || connecting_) return;
  LifeToken::Watch alive = life_.watch();
  if (!connected_) {
    if (!replica_) replica_ = connect_();
    connecting_ = true;
    replica_->Connect([this, alive](Result<void> r) {
      if (!alive.alive()) return;
      connecting_ = false;
      if (!r) {
        ChangeBatch failed = std::move(queue_.front());
        queue_.pop_front();
        return done_(failed, BatchResult{std::unexpected(r.error()), {}, {}, {}});
      }
      connected_ = true;
      Next();
    });
    return;
  }
  in_flight_ = std::make_shared<const ChangeBatch>(std::move(queue_.front()));
  queue_.pop_front();
  replica_->Apply(in_flight_, [this, alive](BatchResult r) {
    if (!alive.alive() || !in_flight_) return;
    SharedBatch batch = std::move(in_flight_);
    in_flight_.reset();
    done_(*batch, std::move(r));
    if (alive.alive()) Next();  // done_ may have ended the lane.
  });
}

std::optional<TimePoint> LargeLane::oldest() const {
  std::optional<TimePoint> at;
  if (in_flight_) at = in_flight_->oldest_change;
  for (const ChangeBatch& b : queue_)
    if (!at || b.oldest_change < *at) at = b.oldest_change;
  return at;
}

}  // namespace syncd
