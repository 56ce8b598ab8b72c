// Filter holds a sync's filter rules and answers, with rsync's semantics, whether a path is
// left out of the transfer (the sending side) and whether the standby keeps it when deleting
// (the receiving side). Rules are rsync filter rules: `- PATTERN` excludes, `+ PATTERN`
// includes, `P`/`R` protect and risk on the receiving side only, `H`/`S` hide and show on the
// sending side only, `!` clears the list; the first matching rule decides. Patterns: `*`
// stops at `/`, `**` does not, `?` is one non-`/` character, `[...]` a class (with POSIX
// `[:digit:]` and the like), `\` escapes in a pattern with wildcards, a leading `/` anchors at
// the sync root, a trailing `/` matches directories only, `dir/***` is the directory and all
// beneath it, and a pattern without `/` or `**` matches the last component. The same object
// serves the startup comparison, the watcher and, on the standby, the agent's deletions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "syncd/error.h"

namespace syncd {

// Turns one rule in rsync's filter syntax (`filter = {...}`, filterFrom, --filter) into the
// canonical form Filter takes ("- *.tmp", "+ /*/", "P! x", "!"). Refuses merge rules and the
// modifiers syncd does not carry (`/`, `x`, `C`, `e`, `n`, `w`), naming the rule.
Result<std::string> CanonicalFilterRule(std::string_view rule);
// Same for an --exclude or --include pattern (`exclude = {...}`, excludeFrom, _extra): rsync
// reads a leading "- " or "+ " as the rule's kind and "!" as clear; anything else is a pattern
// of the given kind, taken whole.
std::string CanonicalPatternRule(std::string_view pattern, bool include = false);

// The lines of an rsync pattern or rule file (--exclude-from, --include-from, excludeFrom,
// filterFrom): blank lines and lines starting with `#` or `;` skipped, a trailing CR dropped;
// each with its line number.
struct RuleLine {
  int number;
  std::string text;
};
Result<std::vector<RuleLine>> ReadRuleLines(const std::string& path);

class Filter {
 public:
  Filter() = default;
  // `rules` in canonical form. With `delete_excluded` (rsync --delete-excluded), plain `-`
  // and `+` rules act on the sending side only, so the standby deletes what they exclude.
  static Result<Filter> Parse(const std::vector<std::string>& rules, bool delete_excluded = false);
  // Bare exclude patterns, each read as an --exclude pattern; for tests and fixed lists.
  static Filter Excluding(const std::vector<std::string>& patterns);

  // Sending side: `path` (relative to the sync root, no leading or trailing `/`) is neither
  // sent nor watched. Anything beneath an excluded directory is excluded too.
  bool Excluded(std::string_view path, bool is_dir) const;
  // Receiving side: the standby keeps `path` instead of deleting it. Only this name is
  // tested, as rsync tests each name it is about to delete. `in_deleted_dir`: the path lies
  // inside a directory being deleted, where perishable (`p`) rules do not protect.
  bool Protected(std::string_view path, bool is_dir, bool in_deleted_dir = false) const;

  bool empty() const { return rules_.empty(); }
  // True when some rule can protect something on the standby.
  bool protects() const;
  // The rules in canonical form, ready to be parsed again (by the agent).
  std::vector<std::string> Rules() const;

 private:
  struct Rule {
    std::string pattern;  // Without the trailing `/` of a directory rule; with a leading `/`.
    bool include = false;
    bool sender = true;    // Applies on the sending side.
    bool receiver = true;  // Applies on the receiving side.
    bool negate = false;   // `!`: the rule applies where the pattern does not match.
    bool perishable = false;
    bool dir_only = false;
    bool anchored = false;
    bool wild = false;          // Has `*`, `?` or `[`.
    bool wild2 = false;         // Has `**`.
    bool wild2_prefix = false;  // Starts with `**`.
    bool wild3_suffix = false;  // Ends with `***`.
    int slash_count = 0;
    std::string canonical;
  };
  static Result<Rule> ParseRule(std::string_view canonical, bool delete_excluded);
  static bool Matches(const Rule& rule, std::string_view path, bool is_dir);
  // -1 excluded or protected, 1 included or at risk, 0 no rule matched.
  int Check(std::string_view path, bool is_dir, bool sender, bool ignore_perishable) const;

  std::vector<Rule> rules_;
};

// rsync's wildcard match of a whole string (no anchoring or component logic); for tests.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace syncd
