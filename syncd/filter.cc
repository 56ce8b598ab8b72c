#include "syncd/filter.h"

namespace syncd {
namespace {

// Matches one `[...]` class at pattern[pi] against c. Returns the index after the class, or
// npos if the class is unterminated (then `[` is taken literally by the caller).
size_t MatchClass(std::string_view p, size_t pi, char c, bool* matched) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool hit = false;
  bool first = true;
  while (i < p.size() && (first || p[i] != ']')) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      i += 2;
    }
    if (c >= lo && c <= hi) hit = true;
    ++i;
  }
  if (i >= p.size()) return std::string_view::npos;
  *matched = (hit != negate) && c != '/';
  return i + 1;
}

bool Match(std::string_view p, size_t pi, std::string_view s, size_t si) {
  while (pi < p.size()) {
    char c = p[pi];
    if (c == '*') {
      bool any_depth = pi + 1 < p.size() && p[pi + 1] == '*';
      while (pi < p.size() && p[pi] == '*') ++pi;
      if (pi == p.size()) return any_depth || s.find('/', si) == std::string_view::npos;
      for (size_t k = si; k <= s.size(); ++k) {
        if (Match(p, pi, s, k)) return true;
        if (k < s.size() && s[k] == '/' && !any_depth) return false;
      }
      return false;
    }
    if (si == s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
    } else if (c == '[') {
      bool matched = false;
      size_t next = MatchClass(p, pi, s[si], &matched);
      if (next != std::string_view::npos) {
        if (!matched) return false;
        pi = next;
        ++si;
        continue;
      }
      if (s[si] != '[') return false;
    } else if (c == '\\' && pi + 1 < p.size()) {
      ++pi;
      if (s[si] != p[pi]) return false;
    } else if (s[si] != c) {
      return false;
    }
    ++pi;
    ++si;
  }
  return si == s.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  return Match(pattern, 0, text, 0);
}

Filter::Filter(const std::vector<std::string>& patterns) {
  for (std::string_view p : patterns) {
    Rule rule;
    if (p.empty()) continue;
    if (p.size() > 1 && p.back() == '/') {
      rule.dir_only = true;
      p.remove_suffix(1);
    }
    if (p.front() == '/') {
      rule.anchored = true;
      p.remove_prefix(1);
    }
    // "dir/***" matches the directory itself and everything inside it.
    rule.glob = std::string(p);
    rule.full_path = rule.anchored || p.find('/') != std::string_view::npos ||
                     p.find("**") != std::string_view::npos;
    rules_.push_back(std::move(rule));
  }
}

bool Filter::RuleMatches(const Rule& rule, std::string_view path) {
  std::string_view glob = rule.glob;
  if (glob.size() >= 4 && glob.substr(glob.size() - 4) == "/***") {
    std::string_view base = glob.substr(0, glob.size() - 4);
    Rule dir_rule = rule;
    dir_rule.glob = std::string(base);
    dir_rule.full_path = rule.anchored || base.find('/') != std::string_view::npos ||
                         base.find("**") != std::string_view::npos;
    Rule inside = rule;
    inside.glob = std::string(base) + "/**";
    return RuleMatches(dir_rule, path) || RuleMatches(inside, path);
  }
  if (!rule.full_path) {
    size_t slash = path.rfind('/');
    return GlobMatch(glob, slash == std::string_view::npos ? path : path.substr(slash + 1));
  }
  if (rule.anchored) return GlobMatch(glob, path);
  // Unanchored with a `/`: matches the path or any tail of it that starts a component.
  for (size_t start = 0;;) {
    if (GlobMatch(glob, path.substr(start))) return true;
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

bool Filter::MatchesOne(std::string_view path, bool is_dir) const {
  for (const Rule& rule : rules_) {
    if (rule.dir_only && !is_dir) continue;
    if (RuleMatches(rule, path)) return true;
  }
  return false;
}

bool Filter::Excluded(std::string_view path, bool is_dir) const {
  if (rules_.empty() || path.empty()) return false;
  // An excluded ancestor directory excludes everything beneath it (rsync does not descend).
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (MatchesOne(path.substr(0, slash), true)) return true;
  }
  return MatchesOne(path, is_dir);
}

}  // namespace syncd
