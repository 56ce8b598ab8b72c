// Interprets rsync command-line flags given verbatim in lsyncd configs (rsync._extra,
// rsync.rsh and the ssh command inside --rsh) and the ssh `-o` options. What syncd understands
// is applied to the SyncConfig; anything else is reported as a warning that names it.
#pragma once

#include <string>
#include <vector>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd::lua {

// `where` prefixes messages ("file:line: sync[1]"); warnings are appended to `warnings`.
Result<void> ApplyExtraFlags(SyncConfig& sync, const std::string& where,
                             std::vector<std::string>& warnings);

// Splits a shell-like command line on blanks, honouring single and double quotes.
std::vector<std::string> SplitCommandLine(const std::string& line);

}  // namespace syncd::lua
