// ActiveHistory is the history of a sync's source tree on the active node (see
// syncd/history.h): the epoch this run of the sync began, advanced by every change the watcher
// reports, written to the state directory at most once a second (and at once when the epoch
// begins, and at the end), and the stamps that tell the standby what each batch brings its
// tree to.
#pragma once

#include <memory>
#include <string>

#include "syncd/history.h"

namespace syncd {

class ActiveHistory {
 public:
  // Opens the state directory and the history of `tree` (the source, resolved) and begins an
  // epoch of this node, written durably before anything is sent.
  static Result<ActiveHistory> Begin(const std::string& state_dir, const std::string& tree,
                                     int64_t now);

  const std::string& node_id() const { return state_.node_id(); }
  const StateDir& state() const { return state_; }
  const Lineage& lineage() const { return history_.lineage(); }
  const EpochRecord& current() const { return *history_.Find(epoch_); }

  // A change the watcher reported, at `now`.
  void NoteChange(int64_t now);
  // The oldest change the standby has not confirmed as durable (0: none).
  void NoteUnconfirmed(int64_t since);
  bool dirty() const { return dirty_; }
  // Writes the history if it changed since the last write (durably).
  Result<void> Save();

  // The stamp for a batch after which the standby holds every change made before
  // `durable_before`: with `replace`, this tree's whole lineage (the batch completes a
  // comparison), else this epoch's record.
  std::shared_ptr<const HistoryStamp> Stamp(bool replace, int64_t durable_before);
  // The standby's newer files were brought here (`syncd adopt`): this tree now also holds
  // what the peer's lineage says.
  void Adopt(const Lineage& theirs);

 private:
  ActiveHistory(StateDir state, TreeHistory history) : state_(std::move(state)), history_(std::move(history)) {}
  EpochRecord& Current() { return *history_.Find(epoch_); }

  StateDir state_;
  TreeHistory history_;
  EpochRecord epoch_;           // Which epoch is this run's (its identity).
  uint64_t confirmed_changes_ = 0;  // Changes of this epoch known to be on the standby.
  bool dirty_ = false;
};

// What to do about the standby's history at a connection (see FindUnseen).
struct Judgement {
  bool diverged = false;  // Unseen changes span more than the limit: do not touch the standby.
  std::vector<Unseen> unseen;
  // The standby keeps no history of the tree although this node has some: why, for the log.
  std::string no_history;
};
Judgement JudgeHistory(const Lineage& mine, const std::string& my_node, const PeerHistory& peer,
                       double limit_s);

}  // namespace syncd
