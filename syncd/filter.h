// Filter decides which paths a sync ignores, with rsync's exclude-pattern rules: `*` stops at
// `/`, `**` does not, `?` one non-`/` character, `[...]` a class, a leading `/` anchors at the
// sync root, a trailing `/` matches directories only, a pattern without `/` or `**` matches the
// last component, and anything under an excluded directory is excluded too. The same matcher
// serves the startup reconcile, the watcher and the delete protection on the peer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace syncd {

class Filter {
 public:
  Filter() = default;
  explicit Filter(const std::vector<std::string>& patterns);

  // `path` is relative to the sync root, without a leading or trailing `/`.
  bool Excluded(std::string_view path, bool is_dir) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string glob;
    bool anchored = false;   // Leading `/`.
    bool dir_only = false;   // Trailing `/`.
    bool full_path = false;  // Contains `/` or `**`: matched against the path, not the name.
  };
  bool MatchesOne(std::string_view path, bool is_dir) const;
  static bool RuleMatches(const Rule& rule, std::string_view path);

  std::vector<Rule> rules_;
};

// Glob match with rsync wildcard meaning; exposed for tests.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace syncd
