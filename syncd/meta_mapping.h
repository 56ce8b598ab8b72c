// MetaMapping turns a source entry's metadata into what the standby is to get, as rsync's
// options that rewrite metadata do: --chmod (ChmodRules), --usermap/--groupmap/--chown (owner
// and group mapped by name, id or id range), --numeric-ids (owners by number, not by name).
// The planner compares and the client sends entries after the mapping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "syncd/chmod_rules.h"
#include "syncd/config.h"
#include "syncd/error.h"
#include "syncd/tree.h"

namespace syncd {

// One --usermap or --groupmap value: "FROM:TO,FROM:TO,...". FROM is a name pattern (`*`, `?`,
// `[...]`), an id, or an id range `LOW-HIGH`; TO a name or an id. The first match wins.
class IdMap {
 public:
  static Result<IdMap> Parse(std::string_view spec);
  // Maps (`name`, `id`) in place; false when no rule matched.
  bool Apply(std::string& name, uint32_t& id) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string pattern;  // Name pattern; empty for an id rule.
    uint32_t low = 0, high = 0;
    std::string to_name;  // Empty when the target is an id.
    uint32_t to_id = 0;
  };
  std::vector<Rule> rules_;
};

// "USER:GROUP" of --chown as the usermap and groupmap it stands for ("*:USER", "*:GROUP");
// either may be empty (no mapping). Fails on a value with more than one colon.
Result<std::pair<std::string, std::string>> ChownMaps(std::string_view spec);

class MetaMapping {
 public:
  MetaMapping() = default;
  // The sync's rules, with `umask` for chmod clauses without ugoa. Fails naming the bad value.
  static Result<MetaMapping> For(const RsyncOptions& options, uint32_t umask);

  void Apply(Entry& e) const;
  bool empty() const { return chmod_.empty() && users_.empty() && groups_.empty() && !numeric_; }

 private:
  ChmodRules chmod_;
  IdMap users_;
  IdMap groups_;
  bool numeric_ = false;
};

}  // namespace syncd
