// The history of a replicated tree on one node, kept in syncd's state directory (never inside
// the tree): which epochs of which active nodes the tree holds, and up to when.
//
// Every start of a sync as active begins an epoch (its node, a counter, when it began); each
// change the active node accepts from its watcher advances the epoch. The standby records what
// the active node stamps on each durable batch. When a node becomes active, it compares its
// own history with the standby's before touching the standby: changes the standby holds that
// this node never received (the standby, or another node, wrote them as active after this
// node last heard from it) are "unseen", and the sync refuses to overwrite them when they span
// more than divergenceLimit (see FindUnseen).
//
// Times are nanoseconds since the Unix epoch on the clock of the node that ran the epoch:
// only times of one epoch are ever compared with each other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "syncd/error.h"

namespace syncd {

struct EpochRecord {
  std::string node;      // The node id of the node that was active (16 hex digits).
  std::string host;      // Its host name, for messages.
  uint64_t counter = 0;  // Epochs of that node for this tree, counted from 1.
  int64_t started = 0;   // When the epoch began.
  int64_t first = 0;     // Its first change (0: none yet).
  // The tree holds every change of the epoch made before this time (on the active node
  // itself: up to its latest change).
  int64_t through = 0;
  uint64_t changes = 0;  // How many changes that is.
  // On the node that ran the epoch: the oldest change its standby had not confirmed as
  // durable when this record was written (0: none).
  int64_t unconfirmed_since = 0;

  bool SameEpoch(const EpochRecord& o) const {
    return node == o.node && counter == o.counter && started == o.started;
  }
  // "osm1 epoch 7 (from 2026-12-02 10:00:00)".
  std::string Describe() const;
  bool operator==(const EpochRecord&) const = default;
};

// The epochs a tree holds, oldest first; at most kMaxEpochs.
using Lineage = std::vector<EpochRecord>;
inline constexpr size_t kMaxEpochs = 32;

// What the active node stamps on a batch: with `replace`, the standby's tree is now a copy of
// the active one's (a completed comparison) and its lineage becomes `epochs`; otherwise each
// of `epochs` updates the record of the same epoch (or is added).
struct HistoryStamp {
  bool replace = false;
  Lineage epochs;
};

// Epochs as a peer may send them: node ids of 16 hex digits, times and counts that make sense.
// Anything else is refused before it can reach a history file.
bool ValidLineage(const Lineage& lineage);

// Applies a stamp to a lineage, as a standby records it (its own unconfirmed_since is never
// kept), oldest first, at most kMaxEpochs.
void ApplyStamp(Lineage& lineage, const HistoryStamp& stamp);
// The same epochs with the same records (as a standby holds them: unconfirmed_since and host
// names aside).
bool SameLineage(const Lineage& a, const Lineage& b);

// What a peer says of its history of one tree.
struct PeerHistory {
  enum class State : uint8_t {
    kPresent = 0,   // It has a record of the tree.
    kNoRecord = 1,  // Its state directory has none: new to this tree, or the record was lost.
    kNewNode = 2,   // Its state directory was created just now: new, or lost whole.
    kUnusable = 3,  // It cannot keep history (`detail` says why).
  };
  State state = State::kNoRecord;
  std::string node;  // The peer's node id.
  std::string detail;
  Lineage lineage;
};

// Changes one side holds of an epoch that the other never received.
struct Unseen {
  EpochRecord epoch;     // As the side that holds them knows it.
  int64_t from = 0;      // The first of them (at the latest).
  int64_t to = 0;        // The last of them.
  uint64_t changes = 0;  // About how many.
  double Seconds() const { return static_cast<double>(to - from) / 1e9; }
};

// What `theirs` holds that `mine` (this node's tree, `my_node` its id) does not. An epoch this
// node ran itself and still records is never unseen: this tree holds all of it.
std::vector<Unseen> FindUnseen(const Lineage& mine, const Lineage& theirs, const std::string& my_node);

// Nanoseconds since the Unix epoch, now.
int64_t WallNow();
// "2026-12-02 10:00:00.123" (UTC).
std::string FormatWall(int64_t ns);

// The state directory to use when none is configured: $SYNCD_STATE_DIR if set, else
// /var/lib/syncd for root, else $XDG_STATE_HOME/syncd or ~/.local/state/syncd.
std::string DefaultStateDir();

// One node's state directory.
class StateDir {
 public:
  // Opens `dir`, creating it (mode 0700) and this node's id if they are missing.
  static Result<StateDir> Open(const std::string& dir);
  const std::string& path() const { return path_; }
  const std::string& node_id() const { return node_; }
  // The node id was made just now: the directory is new (or was lost).
  bool new_node() const { return new_node_; }
  // Where the history of the tree at `tree` (an absolute, resolved path) is kept.
  std::string HistoryFile(const std::string& tree) const { return TreeFile(tree, "history"); }
  // A file of this node's about `tree`: trees/<hash of the path>.<ext>.
  std::string TreeFile(const std::string& tree, const char* ext) const;

 private:
  std::string path_, node_;
  bool new_node_ = false;
};

// The history file of one tree.
class TreeHistory {
 public:
  // Reads the history of `tree`; none yet is an empty one (`found()` false). A damaged file is
  // an error: history is never guessed.
  static Result<TreeHistory> Load(const StateDir& dir, const std::string& tree);

  bool found() const { return found_; }
  const Lineage& lineage() const { return lineage_; }
  const std::string& tree() const { return tree_; }

  // Begins an epoch of this node as active, now.
  EpochRecord& BeginEpoch(const std::string& node, const std::string& host, int64_t now);
  // The record of the epoch, if the tree holds any of it.
  EpochRecord* Find(const EpochRecord& epoch);
  const EpochRecord* Find(const EpochRecord& epoch) const {
    return const_cast<TreeHistory*>(this)->Find(epoch);
  }
  void Apply(const HistoryStamp& stamp);
  // Writes the file (a new one renamed over the old). With `durable`, it is on disk when this
  // returns; otherwise the caller syncs the file system that holds it.
  Result<void> Save(bool durable) const;

  static std::string Serialize(const std::string& tree, const Lineage& lineage);
  static Result<Lineage> Parse(const std::string& text, std::string* tree);

 private:
  void Prune();
  std::string file_, tree_;
  bool found_ = false;
  Lineage lineage_;
};

}  // namespace syncd
