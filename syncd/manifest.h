// The manifest: what the standby holds of a sync's tree, as the active node knows it, kept in
// the state directory so that a restart of syncd on the same node resumes without listing the
// standby. It is a snapshot of the planner's knowledge of the peer, followed by a journal: for
// each batch the standby made durable, the entries it changed and the lineage the standby's
// tree then holds (the batch's stamp, see syncd/history.h). A restart whose standby reports
// exactly that lineage takes the manifest as the standby's listing; anything else (another
// lineage, a damaged file) falls back to listing the standby.
//
// Records are length-prefixed; a journal cut short by a crash ends at the last complete
// stamp, and what follows it is ignored (the standby's lineage will then be newer, and the
// restart lists it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "syncd/error.h"
#include "syncd/history.h"
#include "syncd/peer_map.h"
#include "syncd/tree.h"
#include "syncd/unique_fd.h"

namespace syncd {

class Manifest {
 public:
  struct Contents {
    Lineage lineage;  // What the standby's tree held when the last stamp was written.
    PeerMap entries;
  };
  // The manifest of `tree`, if there is one.
  static Result<std::optional<Contents>> Load(const StateDir& dir, const std::string& tree);
  // Starts a manifest of `tree` from a snapshot (replacing any earlier one, atomically).
  static Result<Manifest> Create(const StateDir& dir, const std::string& tree,
                                 const PeerMap& entries, const Lineage& lineage);
  static void Remove(const StateDir& dir, const std::string& tree);

  // What one durable batch changed: entries now on the standby, and paths (with what was
  // beneath them) now gone from it; then the lineage the standby's tree holds after it.
  Result<void> Append(const std::vector<Entry>& present, const std::vector<std::string>& removed,
                      const Lineage& lineage);
  // Journal bytes since the snapshot, and the snapshot's: the owner compacts (Create again)
  // when the journal outgrows the snapshot.
  uint64_t journal_bytes() const { return journal_bytes_; }
  uint64_t snapshot_bytes() const { return snapshot_bytes_; }

  static std::string FileFor(const StateDir& dir, const std::string& tree);

 private:
  explicit Manifest(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  uint64_t journal_bytes_ = 0, snapshot_bytes_ = 0;
};

}  // namespace syncd
