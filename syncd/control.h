// The control socket of a running syncd: a Unix stream socket in the run directory (see
// ActiveMarkDir()), named after the configuration file it runs. `syncd flush CONFIG` connects,
// sends "flush", and gets "ok" once every change made before it asked is durable on the
// standby (an operator or a cluster hook calls it before moving the resource), or
// "error: ..." if a sync is stopped. `syncd adopt` and `syncd overwrite` send "adopt" and
// "overwrite" and get "ok: ..." once the diverged syncs are in sync again.
#pragma once

#include <chrono>
#include <string>

namespace syncd {

// The socket of the syncd that runs the configuration file `config_path`.
std::string ControlSocketPath(const std::string& config_path);

// `syncd flush CONFIG`: asks and waits up to `timeout`. Prints the answer; returns the exit
// status (0: flushed, 1: error, no syncd running, or timeout).
int RequestFlush(const std::string& config_path, std::chrono::seconds timeout);

// `syncd adopt CONFIG` and `syncd overwrite CONFIG` (`choice`): the operator's answer for the
// syncs that found their standby diverged. Waits up to `timeout` for them to be in sync again.
// Prints the answer; returns the exit status (0: in sync, 1: error, no sync diverged, no
// syncd running, or timeout).
int RequestResolution(const std::string& config_path, const std::string& choice,
                      std::chrono::seconds timeout);

}  // namespace syncd
