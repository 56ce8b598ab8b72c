// rsync's options, as lsyncd hands them to rsync, and what syncd does with each one.
//
// lsyncd turns a sync's `rsync = {...}` table into rsync arguments (true keys become short
// flags, with `archive` spelled out as the flags it implies unless a key says otherwise; value
// keys become `--name=VALUE`) and puts `_extra` among them verbatim. syncd builds the same
// argument list (RsyncArgsFromTable) and reads it with one parser (ApplyRsyncArgs), so a key
// and its flag always mean the same. Every option is one of:
//   - carried out (perms, chmod, update, max-size, ...);
//   - accepted with a note, when it changes nothing on the standby (output, transfer tuning)
//     or when syncd does the same thing its own way (inplace: files are always replaced whole
//     and atomically); the notes are what `syncd --check` lists as differences;
//   - refused at startup, with the reason (dry-run, files-from, acls, ...).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd::lua {

// One rsync argument and where it came from, for messages ("sync[1].rsync._extra").
struct RsyncArg {
  std::string text;
  std::string origin;
};

// Applies `args` in order to `s` (its RsyncOptions, filter rules, ssh settings through the
// rsh command line), starting from rsync's own defaults (nothing kept). `where` is the sync's
// "file:line". Errors name the origin and the option; notes go to s.notes.
Result<void> ApplyRsyncArgs(SyncConfig& s, const std::vector<RsyncArg>& args,
                            const std::string& where);

// One key of a sync's merged `rsync = {...}` table.
struct RsyncTableValue {
  bool truthy = false;              // Lua's truth: anything but false (and nil).
  std::optional<std::string> text;  // A string or number, as Lua's `..` writes it.
  std::vector<std::string> list;    // _extra
};

// The arguments lsyncd 2.2.3 gives rsync for `table` (its keys in lsyncd's order: the short
// flags, with `archive` spelled out unless a key is set to false; then _extra; then the
// `--name=VALUE` keys), with lsyncd's defaults (links, times, protect_args) for keys not
// set. `prefix` names the table ("sync[1].rsync") in origins.
std::vector<RsyncArg> RsyncArgsFromTable(const std::map<std::string, RsyncTableValue>& table,
                                         const std::string& prefix);

// The lsyncd keys of `rsync = {...}` that take a value (`--name=VALUE`), and those that are
// flags. A key in neither is unknown.
bool IsRsyncValueKey(std::string_view key);
bool IsRsyncFlagKey(std::string_view key);

// A parsed size as rsync reads --max-size and --bwlimit: a number (fraction allowed) with an
// optional K/M/G/T/P suffix (1024-based, or 1000-based with a trailing B, "KiB" 1024), and an
// optional "+1"/"-1". `default_suffix` applies to a bare number ('b' bytes, 'k' KiB).
std::optional<uint64_t> ParseRsyncSize(std::string_view text, char default_suffix);

}  // namespace syncd::lua
