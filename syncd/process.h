// The process around the daemon: detaching, the log's destination, the pidfile, and the
// program's own path (for spawning the local agent).
#pragma once

#include <string>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd {

// Detaches unless nodaemon, points the log at its destination and writes the pidfile.
Result<void> PrepareProcess(Config& config);
// Removes the pidfile.
void FinishProcess(const Config& config);
// Absolute path of the running program, for spawning the local agent.
std::string SelfExecutable(const char* argv0);

}  // namespace syncd
