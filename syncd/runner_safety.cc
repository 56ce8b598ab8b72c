// SyncRunner, continued: what keeps a running sync from wiping the standby. Deletions wait
// until deleting pauses (DeleteHold) and go only while the source root is the one watched; a
// comparison that finds the source empty deletes nothing (OnListed).
#include <dirent.h>

#include <sys/stat.h>

#include <memory>

#include "syncd/log.h"
#include "syncd/sync_runner.h"

namespace syncd {

bool SyncRunner::MayRemove(const std::string& path) {
  if (root_gone_) return false;
  // The first comparison deletes at once (an empty source is guarded in OnListed).
  if (!live_ || config_.delete_hold <= 0 || cleared_.contains(path)) return true;
  delete_hold_.Hold(path, Clock::now(), planning_since_);
  return false;
}

void SyncRunner::ReleaseDeletes() {
  if (!RootIntact()) return RootGone();
  auto held = delete_hold_.Take();
  LogDebug("Delay", "{}: deleting paused; releasing {} deletions", config_.name, held.size());
  for (auto& [path, at] : held) {
    batcher_.Add(path, at);
    cleared_.insert(std::move(path));
  }
}

void SyncRunner::Planned() {
  cleared_.clear();
  ArmHoldTimer();
}

void SyncRunner::ArmHoldTimer() {
  auto d = delete_hold_.Deadline();
  if (!d) return;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*d - Clock::now()).count();
  uv_timer_start(
      hold_timer_.get(), [](uv_timer_t* t) { static_cast<SyncRunner*>(t->data)->Pump(); },
      static_cast<uint64_t>(std::max<int64_t>(ms, 1)), 0);
}

bool SyncRunner::RootIntact() const {
  auto root = fs_.Stat(config_.source, "");
  return root && root->type == FileType::kDir && root->dev == root_dev_ && root->ino == root_ino_;
}

void SyncRunner::RootGone() {
  if (root_gone_) return;
  root_gone_ = true;
  size_t held = delete_hold_.Take().size();
  batcher_.Take(Clock::now() + std::chrono::hours(24 * 365));
  uv_timer_stop(hold_timer_.get());
  LogError("{}: source {} was deleted, moved, replaced or unmounted; no longer propagating "
           "changes, and {} keeps its copy ({} deletions not sent)",
           config_.name, config_.source, replica_->Describe(), held);
  if (watcher_) watcher_->Stop();
  MaybeFinishDrain();
}

bool SyncRunner::SourceIsEmpty() const {
  auto names = fs_.ReadDir(config_.source);
  return names && names->empty();  // Gone: the scan reports that.
}

}  // namespace syncd
