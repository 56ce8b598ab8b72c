// What the planner asks the peer to do: one operation per path, grouped into batches that the
// peer makes durable together before it acknowledges them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "syncd/error.h"
#include "syncd/tree.h"

namespace syncd {

struct HistoryStamp;  // syncd/history.h

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class OpKind : uint8_t {
  kPut = 1,      // Create or replace a file with the local content at source_path.
  kMkdir = 2,    // Create a directory (no-op if it exists), then set its metadata.
  kSymlink = 3,  // Create or replace a symlink.
  kDelete = 4,   // Remove a path, recursively for directories.
  kSetMeta = 5,  // Mode, owner, group and times only.
  kRename = 6,   // Move `from` to entry.path on the peer, replacing what is there.
  kMknod = 7,    // Create or replace a FIFO, socket or device node.
  kLink = 8,     // Make entry.path another name of `from` (a file on the peer), replacing it.
};

// Files of this size or more, of which the peer holds an older copy, are sent as a librsync
// delta against that copy (see transport/PROTOCOL.md, "Deltas", for how it was chosen).
inline constexpr uint64_t kDeltaMinBytes = 1 << 20;

struct Op {
  OpKind kind = OpKind::kPut;
  Entry entry;              // entry.path is the target path; type, size, meta, link_target.
  std::string source_path;  // kPut: the absolute local file to read.
  std::string from;         // kRename: the old path. kLink: the name to link to.
  // kPut: the size of the regular file the peer already holds at the path, a base for a
  // delta (0: none).
  uint64_t basis_size = 0;
  // kPut with hard_links: other names of the file are linked to it in the same batch.
  bool keeps_links = false;
};

inline Op MakeOp(OpKind kind, Entry entry, std::string source_path = {}, std::string from = {}) {
  Op op;
  op.kind = kind;
  op.entry = std::move(entry);
  op.source_path = std::move(source_path);
  op.from = std::move(from);
  return op;
}

// A rename seen on the source: `from` became `to`, both relative to the sync root.
struct Rename {
  std::string from;
  std::string to;
  bool operator==(const Rename&) const = default;
};

struct ChangeBatch {
  uint64_t id = 0;
  std::vector<Op> ops;
  TimePoint oldest_change{};  // When the oldest change in this batch happened.
  // How many watcher events the sync had handled when it planned the batch: if it has handled
  // none since by the time the batch is durable, no change to its paths can have been planned
  // while it was under way.
  uint64_t events_at_plan = 0;
  // What the peer's tree holds once the batch is durable (generations); null: not recorded.
  std::shared_ptr<const HistoryStamp> stamp;
};

// What to do about a path whose operation failed, decided once by the replica that saw it
// fail; the runner acts on it.
enum class Retry : uint8_t {
  kNow,             // Send the path's current state at once: it changed while it was read, a
                    // delta did not apply, a rename's origin was not there.
  kWhenWriterDone,  // The source is locked by its writer: send it once the writer is quiet.
  kBackOff,         // The source cannot be read, or the peer refused it (a full or read-only
                    // disk): reported, and tried again after a pause that grows.
  kWhenChanged,     // The peer cannot take it as it is (it lacks a capability): reported, and
                    // tried again only when the path changes.
};

struct OpFailure {
  std::string path;
  Error error;
  // False when the operation never went out (its source vanished before it could be read):
  // what the peer holds at the path is what it held before.
  bool reached_peer = true;
  Retry retry = Retry::kBackOff;
};

// The peer's answer to one batch. `status` fails when the batch as a whole did not complete
// (the connection broke); `failures` lists paths the peer refused while the rest committed.
struct BatchResult {
  Result<void> status;
  std::vector<OpFailure> failures;
  // The hash of the content each PUT actually sent, by path.
  std::vector<std::pair<std::string, ContentHash>> sent_hashes;
  // Directories a DELETE left in place because the filter protects entries inside them.
  std::vector<std::string> kept;
};

}  // namespace syncd
