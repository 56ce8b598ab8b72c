// Builds the Replica for a sync: a pipe to a local agent for local targets, an SSH exec channel
// for remote ones.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "syncd/config.h"
#include "syncd/replica.h"
#include "transport/ssh_channel.h"

namespace syncd::transport {

// `self_exe` is this program, run as the local agent (`self_exe --server`).
std::unique_ptr<Replica> MakeReplica(uv_loop_t* loop, const SyncConfig& sync,
                                     const std::string& self_exe);

// The SSH parameters a sync asks for: user, host, port, keys, known_hosts, timeouts.
SshTarget SshTargetFor(const SyncConfig& sync);

// The OpenSSH client command line that runs the agent on the peer for `sync` (the external
// carrier): batch mode, the sync's options, key, port and known_hosts, syncd's keepalives.
std::vector<std::string> OpenSshCommand(const SyncConfig& sync);

}  // namespace syncd::transport
