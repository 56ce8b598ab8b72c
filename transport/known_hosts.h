// known_hosts: which host key types a host is known by (to steer libssh2's negotiation), and
// the check of the key a server presents, with messages that say how to trust or fix it.
#pragma once

#include <libssh2.h>

#include <string>
#include <vector>

#include "syncd/error.h"
#include "transport/ssh_channel.h"

namespace syncd::transport {

// $HOME, or the passwd entry's home directory.
std::string HomeDir();
// The known_hosts files to read for `target`: its own, or ~/.ssh/known_hosts and
// /etc/ssh/ssh_known_hosts.
std::vector<std::string> KnownHostsFiles(const SshTarget& target);
// Checks the host key of an established handshake against the known_hosts files. An unknown
// or changed key is a fatal error whose message gives the fingerprint and what to do.
Result<void> VerifyHostKey(LIBSSH2_SESSION* session, const SshTarget& target);

}  // namespace syncd::transport
