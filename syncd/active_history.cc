#include "syncd/active_history.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

namespace syncd {
namespace {

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

Result<ActiveHistory> ActiveHistory::Begin(const std::string& state_dir, const std::string& tree,
                                           int64_t now) {
  auto state = StateDir::Open(state_dir);
  if (!state) return std::unexpected(state.error());
  auto history = TreeHistory::Load(*state, tree);
  if (!history) return std::unexpected(history.error());
  ActiveHistory h(std::move(*state), std::move(*history));
  h.epoch_ = h.history_.BeginEpoch(h.state_.node_id(), HostName(), now);
  SYNCD_TRY(h.history_.Save(true));
  return h;
}

void ActiveHistory::NoteChange(int64_t now) {
  EpochRecord& e = Current();
  if (e.first == 0) e.first = now;
  e.through = std::max(e.through, now);
  ++e.changes;
  dirty_ = true;
}

void ActiveHistory::NoteUnconfirmed(int64_t since) {
  EpochRecord& e = Current();
  if (e.unconfirmed_since == since) return;
  e.unconfirmed_since = since;
  dirty_ = true;
}

Result<void> ActiveHistory::Save() {
  if (!dirty_) return {};
  SYNCD_TRY(history_.Save(true));
  dirty_ = false;
  return {};
}

std::shared_ptr<const HistoryStamp> ActiveHistory::Stamp(bool replace, int64_t durable_before) {
  const EpochRecord& e = current();
  // Every change noticed so far is in this batch or an earlier one: the count is exact.
  if (durable_before >= e.through) confirmed_changes_ = e.changes;
  EpochRecord mine = e;
  mine.through = durable_before;
  mine.changes = confirmed_changes_;
  mine.unconfirmed_since = 0;
  auto stamp = std::make_shared<HistoryStamp>();
  stamp->replace = replace;
  if (replace) {
    stamp->epochs = history_.lineage();
    for (EpochRecord& r : stamp->epochs) {
      if (r.SameEpoch(mine)) r = mine;
      r.unconfirmed_since = 0;
    }
  } else {
    stamp->epochs.push_back(std::move(mine));
  }
  return stamp;
}

void ActiveHistory::Adopt(const Lineage& theirs) {
  HistoryStamp merge;
  merge.epochs = theirs;
  EpochRecord keep = current();  // Its own record is this node's, whatever the peer says.
  history_.Apply(merge);
  if (EpochRecord* e = history_.Find(keep)) *e = keep;
  dirty_ = true;
}

Judgement JudgeHistory(const Lineage& mine, const std::string& my_node, const PeerHistory& peer,
                       double limit_s) {
  Judgement j;
  // More than the epoch just begun: this tree has a past the standby should know of.
  bool have_own_past = mine.size() > 1 || std::any_of(mine.begin(), mine.end(), [](const EpochRecord& e) {
    return e.changes > 0;
  });
  switch (peer.state) {
    case PeerHistory::State::kPresent:
      break;
    case PeerHistory::State::kNoRecord:
      if (have_own_past) j.no_history = "it has no record of this tree (new to it, or the record was lost)";
      return j;
    case PeerHistory::State::kNewNode:
      if (have_own_past) j.no_history = "its state directory is new (new, or lost)";
      return j;
    case PeerHistory::State::kUnusable:
      j.no_history = "it cannot keep history: " + peer.detail;
      return j;
  }
  j.unseen = FindUnseen(mine, peer.lineage, my_node);
  j.diverged = std::any_of(j.unseen.begin(), j.unseen.end(),
                           [&](const Unseen& u) { return u.Seconds() > limit_s; });
  return j;
}

}  // namespace syncd
