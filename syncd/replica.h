// Replica is the planner's seam to the peer: connect, list what the peer holds, apply batches.
// transport/ implements it over a Channel; tests use a fake. All calls and callbacks happen on
// the loop thread. Callbacks may run after Close() only with an error status.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "syncd/change.h"
#include "syncd/error.h"
#include "syncd/history.h"
#include "syncd/tree.h"

namespace syncd {

class Replica;
// Makes a new connection to one sync's peer, each call a fresh one (the large-file lane takes a
// second).
using PeerConnector = std::function<std::unique_ptr<Replica>()>;
using SharedBatch = std::shared_ptr<const ChangeBatch>;

class Replica {
 public:
  virtual ~Replica() = default;

  // Opens the connection and performs the hello. An error with `fatal` set (unknown host key,
  // refused key, bad target) will not go away by retrying.
  virtual void Connect(std::function<void(Result<void>)> done) = 0;
  // Lists everything beneath the peer's target directory.
  virtual void List(std::function<void(Result<Listing>)> done) = 0;
  // Sends a batch; `done` runs once the peer has made it durable, or the connection failed.
  // Several batches may be in flight; they complete in order. The batch is shared with the
  // caller, which keeps it for the answer: a startup comparison of a large tree is one batch
  // of as many operations as files, held once.
  virtual void Apply(SharedBatch batch, std::function<void(BatchResult)> done) = 0;
  // Filter rules (canonical, see syncd/filter.h) the peer applies when it deletes: what they
  // protect stays. Given to the peer at every connection, and at once to a connected one.
  virtual void SetProtectRules(std::vector<std::string> rules) = 0;
  // What the peer's tree holds, by its history (generations, syncd/history.h). An error when
  // the peer cannot say (an older agent).
  virtual void History(std::function<void(Result<PeerHistory>)> done) {
    done(Fail("the peer keeps no history (an older syncd)", ENOTSUP));
  }
  // Copies `entry` (a file with its content, a directory or a symlink, as the peer listed
  // it) from the peer to the same path beneath the local directory `local_root`, atomically
  // and with its metadata; what is at that path locally is replaced, a directory is kept.
  // Used by `syncd adopt`. ECONNABORTED: the connection broke (the rest failed locally or on
  // the peer, and the connection goes on).
  virtual void Fetch(const Entry& entry, const std::string& local_root,
                     std::function<void(Result<void>)> done) {
    (void)entry, (void)local_root;
    done(Fail("the peer cannot send files (an older syncd)", ENOTSUP));
  }
  // Called once if an established connection breaks outside of a request.
  virtual void OnLost(std::function<void(const Error&)> handler) = 0;
  virtual void Close() = 0;
  // A short description of the peer for log lines, e.g. "root@osm2:/var/lib/php/sessions".
  virtual std::string Describe() const = 0;
  // How far the batches not yet durable have gone out: operations handed to the connection,
  // and the bytes of the files among them. For progress reports only.
  struct Sent {
    uint64_t ops = 0;
    uint64_t bytes = 0;
  };
  virtual Sent InFlightSent() const { return {}; }
};

}  // namespace syncd
