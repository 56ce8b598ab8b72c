// How a sync reaches its standby, from what an lsyncd config says about ssh: the rsh command
// line (rsync's --rsh, `rsync.rsh`, `-e` in _extra) parsed as ssh parses its arguments, and
// the `ssh = {...}` options. What syncd's own SSH client cannot carry moves the sync to the
// OpenSSH client (with a note), and what neither can is refused by name.
#pragma once

#include <string>
#include <vector>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd::lua {

// `where` prefixes messages ("file:line: sync[1]"); notes go to sync.notes.
Result<void> ApplySshSettings(SyncConfig& sync, const std::string& where);

// Splits a shell-like command line on blanks, honouring single and double quotes and
// backslash escapes outside single quotes.
std::vector<std::string> SplitCommandLine(const std::string& line);

}  // namespace syncd::lua
