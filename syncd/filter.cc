#include "syncd/filter.h"

#include <fmt/format.h>

#include <fstream>
#include <optional>

namespace syncd {
namespace {

// The outcome of matching part of a pattern. The two aborts prune the search: kAbortAll
// means the text ran out, so no later starting point can match either; kAbortToStarStar
// means a single `*` would have to cross a `/`, which only an enclosing `**` may retry.
enum class Wild { kNo, kYes, kAbortAll, kAbortToStarStar };

bool InPosixClass(std::string_view name, unsigned char c, bool* known) {
  *known = true;
  bool ascii = c < 0x80;
  auto is = [&](int (*fn)(int)) { return ascii && fn(c) != 0; };
  if (name == "alnum") return is(isalnum);
  if (name == "alpha") return is(isalpha);
  if (name == "blank") return c == ' ' || c == '\t';
  if (name == "cntrl") return is(iscntrl);
  if (name == "digit") return is(isdigit);
  if (name == "graph") return is(isgraph);
  if (name == "lower") return is(islower);
  if (name == "print") return is(isprint);
  if (name == "punct") return is(ispunct);
  if (name == "space") return is(isspace);
  if (name == "upper") return is(isupper);
  if (name == "xdigit") return is(isxdigit);
  *known = false;
  return false;
}

// Matches the class that starts at p[0] == '[' against c. On success `*length` is the
// class's length in the pattern. A class that never closes, or names an unknown
// `[:class:]`, makes the whole pattern match nothing (kAbortAll), as in rsync.
Wild MatchClass(std::string_view p, unsigned char c, size_t* length) {
  size_t i = 1;
  bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
  if (negate) ++i;
  bool hit = false;
  int prev = -1;  // The previous member, a range's lower bound; none after a range or class.
  for (bool first = true;; first = false) {
    if (i >= p.size()) return Wild::kAbortAll;
    unsigned char ch = static_cast<unsigned char>(p[i]);
    if (ch == ']' && !first) break;
    if (ch == '\\') {
      if (++i >= p.size()) return Wild::kAbortAll;
      ch = static_cast<unsigned char>(p[i]);
      if (c == ch) hit = true;
      prev = ch;
      ++i;
      continue;
    }
    if (ch == '-' && prev >= 0 && i + 1 < p.size() && p[i + 1] != ']') {
      unsigned char hi = static_cast<unsigned char>(p[++i]);
      if (hi == '\\') {
        if (++i >= p.size()) return Wild::kAbortAll;
        hi = static_cast<unsigned char>(p[i]);
      }
      if (c <= hi && c >= prev) hit = true;
      prev = -1;
      ++i;
      continue;
    }
    if (ch == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      size_t start = i + 2;
      size_t close = p.find(']', start);
      if (close == std::string_view::npos) return Wild::kAbortAll;
      if (close > start && p[close - 1] == ':') {
        bool known = false;
        if (InPosixClass(p.substr(start, close - 1 - start), c, &known)) hit = true;
        if (!known) return Wild::kAbortAll;
        prev = -1;
        i = close + 1;
        continue;
      }
      // Not "[:name:]": the '[' is an ordinary member.
    }
    if (c == ch) hit = true;
    prev = ch;
    ++i;
  }
  *length = i + 1;
  return hit != negate && c != '/' ? Wild::kYes : Wild::kNo;
}

Wild DoWild(std::string_view p, std::string_view t) {
  size_t pi = 0, ti = 0;
  for (; pi < p.size(); ++pi, ++ti) {
    char pc = p[pi];
    if (ti == t.size() && pc != '*') return Wild::kAbortAll;
    switch (pc) {
      case '*': {
        bool any_depth = pi + 1 < p.size() && p[pi + 1] == '*';
        while (pi < p.size() && p[pi] == '*') ++pi;
        std::string_view rest = p.substr(pi);
        if (rest.empty()) {
          if (!any_depth && t.find('/', ti) != std::string_view::npos) return Wild::kNo;
          return Wild::kYes;
        }
        for (; ti < t.size(); ++ti) {
          Wild r = DoWild(rest, t.substr(ti));
          if (r != Wild::kNo) {
            if (!any_depth || r != Wild::kAbortToStarStar) return r;
          } else if (!any_depth && t[ti] == '/') {
            return Wild::kAbortToStarStar;
          }
        }
        return Wild::kAbortAll;
      }
      case '?':
        if (t[ti] == '/') return Wild::kNo;
        continue;
      case '[': {
        size_t length = 0;
        Wild r = MatchClass(p.substr(pi), static_cast<unsigned char>(t[ti]), &length);
        if (r != Wild::kYes) return r;
        pi += length - 1;
        continue;
      }
      case '\\':
        // The next character is literal; a trailing backslash matches nothing.
        if (++pi == p.size()) return Wild::kNo;
        pc = p[pi];
        [[fallthrough]];
      default:
        if (t[ti] != pc) return Wild::kNo;
        continue;
    }
  }
  return ti == t.size() ? Wild::kYes : Wild::kNo;
}

// The last `count` slash-separated components of `text`, or nothing if it has fewer.
std::optional<std::string_view> TrailingComponents(std::string_view text, int count) {
  for (size_t pos = text.size(); pos > 0;) {
    if (text[--pos] == '/' && --count == 0) return text.substr(pos + 1);
  }
  if (count == 1) return text;
  return std::nullopt;
}

// Matches `pattern` against `text`: from the start (where == 0), against the last `where`
// components (where > 0), or from the start or after any slash (where < 0).
bool WildMatchAt(std::string_view pattern, std::string_view text, int where) {
  if (where > 0) {
    auto tail = TrailingComponents(text, where);
    return tail && DoWild(pattern, *tail) == Wild::kYes;
  }
  Wild r = DoWild(pattern, text);
  if (r == Wild::kYes || where == 0 || r == Wild::kAbortAll) return r == Wild::kYes;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '/') continue;
    r = DoWild(pattern, text.substr(i + 1));
    if (r != Wild::kNo && r != Wild::kAbortToStarStar) break;
  }
  return r == Wild::kYes;
}

// One token of a rule's kind: a word ("exclude") or a character ("-").
struct RuleKind {
  char ch = 0;
  size_t end = 0;  // Where the modifiers start.
};

std::optional<RuleKind> ReadRuleKind(std::string_view s) {
  static constexpr std::pair<std::string_view, char> kWords[] = {
      {"clear", '!'},  {"dir-merge", ':'}, {"exclude", '-'}, {"hide", 'H'}, {"include", '+'},
      {"merge", '.'},  {"protect", 'P'},   {"risk", 'R'},    {"show", 'S'}};
  for (auto [word, ch] : kWords) {
    if (!s.starts_with(word)) continue;
    if (s.size() == word.size() || s[word.size()] == ' ' || s[word.size()] == '_' ||
        s[word.size()] == '\t')
      return RuleKind{ch, word.size()};
    if (s[word.size()] == ',') return RuleKind{ch, word.size() + 1};
  }
  if (s.empty()) return std::nullopt;
  return RuleKind{s[0], s.size() > 1 && s[1] == ',' ? 2u : 1u};
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  return DoWild(pattern, text) == Wild::kYes;
}

Result<std::string> CanonicalFilterRule(std::string_view rule) {
  auto bad = [&](std::string why) {
    return Fail(fmt::format("filter rule \"{}\": {}", rule, why), EINVAL);
  };
  auto kind = ReadRuleKind(rule);
  if (!kind) return bad("empty rule");
  switch (kind->ch) {
    case '!':
      if (kind->end < rule.size() && rule.find_first_not_of(" \t", kind->end) != std::string_view::npos)
        return bad("'!' (clear) takes no pattern");
      return std::string("!");
    case '.':
    case ':':
      return bad("merge and dir-merge rules are not supported; list the rules instead");
    case '+': case '-': case 'P': case 'R': case 'H': case 'S':
      break;
    default:
      return bad("unknown rule; expected '+', '-', 'P', 'R', 'H', 'S' or '!' (as rsync)");
  }
  std::string mods;
  size_t i = kind->end;
  for (; i < rule.size() && rule[i] != ' ' && rule[i] != '_'; ++i) {
    char m = rule[i];
    switch (m) {
      case '!': case 'p': case 's': case 'r':
        if (mods.find(m) == std::string::npos) mods += m;
        break;
      case '/':
        return bad("the '/' modifier (match against the absolute path) is not supported; "
                   "anchor the pattern at the source with a leading '/' instead");
      case 'x':
        return bad("xattr filter rules ('x') are not supported");
      case 'C':
        return bad("CVS-ignore rules ('C') are not supported");
      default:
        return bad(fmt::format("invalid modifier '{}'", m));
    }
  }
  if ((kind->ch != '+' && kind->ch != '-') && mods.find_first_of("sr") != std::string::npos)
    return bad("a side modifier ('s', 'r') on a rule that already has a side");
  if (i < rule.size()) ++i;  // The one separator.
  std::string_view pattern = rule.substr(i);
  if (pattern.empty()) return bad("no pattern");
  return fmt::format("{}{} {}", kind->ch, mods, pattern);
}

std::string CanonicalPatternRule(std::string_view pattern, bool include) {
  if (pattern.starts_with("- ")) return fmt::format("- {}", pattern.substr(2));
  if (pattern.starts_with("+ ")) return fmt::format("+ {}", pattern.substr(2));
  if (pattern == "!") return "!";
  return fmt::format("{} {}", include ? '+' : '-', pattern);
}

Result<Filter::Rule> Filter::ParseRule(std::string_view canonical, bool delete_excluded) {
  auto parsed = CanonicalFilterRule(canonical);
  if (!parsed) return std::unexpected(parsed.error());
  std::string_view c = *parsed;
  Rule rule;
  rule.canonical = *parsed;
  size_t space = c.find(' ');
  std::string_view mods = c.substr(1, space - 1);
  std::string_view pattern = c.substr(space + 1);
  switch (c[0]) {
    case '+': rule.include = true; break;
    case '-': break;
    case 'S': rule.include = true; [[fallthrough]];
    case 'H': rule.receiver = false; break;
    case 'R': rule.include = true; [[fallthrough]];
    case 'P': rule.sender = false; break;
  }
  rule.negate = mods.find('!') != std::string_view::npos;
  rule.perishable = mods.find('p') != std::string_view::npos;
  if (mods.find('s') != std::string_view::npos) rule.receiver = false;
  if (mods.find('r') != std::string_view::npos) rule.sender = false;
  // rsync --delete-excluded: plain include and exclude rules no longer protect.
  if (delete_excluded && (c[0] == '+' || c[0] == '-') &&
      mods.find_first_of("sr") == std::string_view::npos) {
    rule.receiver = false;
    rule.canonical = fmt::format("{}{}s {}", c[0], mods, pattern);
  }
  if (pattern.size() > 1 && pattern.back() == '/') {
    rule.dir_only = true;
    pattern.remove_suffix(1);
  }
  rule.pattern = std::string(pattern);
  for (char ch : pattern) rule.slash_count += ch == '/';
  rule.anchored = pattern.front() == '/';
  rule.wild = pattern.find_first_of("*?[") != std::string_view::npos;
  if (rule.wild) {
    size_t stars = pattern.find("**");
    rule.wild2 = stars != std::string_view::npos;
    rule.wild2_prefix = stars == 0;
    rule.wild3_suffix = rule.wild2 && pattern.ends_with("***");
  }
  return rule;
}

Result<Filter> Filter::Parse(const std::vector<std::string>& rules, bool delete_excluded) {
  Filter f;
  for (const std::string& text : rules) {
    if (text == "!") {
      f.rules_.clear();
      continue;
    }
    auto rule = ParseRule(text, delete_excluded);
    if (!rule) return std::unexpected(rule.error());
    f.rules_.push_back(std::move(*rule));
  }
  return f;
}

Filter Filter::Excluding(const std::vector<std::string>& patterns) {
  std::vector<std::string> rules;
  for (const std::string& p : patterns) rules.push_back(CanonicalPatternRule(p));
  auto f = Parse(rules);
  SYNCD_CHECK(f.has_value());
  return *f;
}

bool Filter::Matches(const Rule& rule, std::string_view path, bool is_dir) {
  const bool hit = !rule.negate;
  if (path.empty()) return false;
  if (rule.dir_only && !is_dir) return !hit;
  std::string_view name = path;
  if (rule.slash_count == 0 && !rule.wild2) {
    if (size_t slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  }
  std::string_view pattern = rule.pattern;
  if (rule.anchored) pattern.remove_prefix(1);
  if (!rule.wild) {
    if (rule.anchored) return (name == pattern) == hit;
    bool tail = name.size() >= pattern.size() && name.ends_with(pattern) &&
                (name.size() == pattern.size() || name[name.size() - pattern.size() - 1] == '/');
    return tail == hit;
  }
  // A leading "**/" may match at the top level, and "dir/***" matches the directory itself:
  // the text gets a '/' before or after it for those.
  std::string joined;
  std::string_view text = name;
  bool add_prefix = rule.wild2_prefix;
  bool add_suffix = is_dir && rule.wild3_suffix;
  if (add_prefix || add_suffix) {
    joined.reserve(name.size() + 2);
    if (add_prefix) joined += '/';
    joined += name;
    if (add_suffix) joined += '/';
    text = joined;
  }
  int where = 0;
  if (!rule.anchored && rule.slash_count > 0 && !rule.wild2)
    where = rule.slash_count + 1;  // The last slash_count + 1 components.
  else if (!rule.anchored && rule.wild2 && !rule.wild2_prefix)
    where = -1;  // At the start or after any slash.
  return WildMatchAt(pattern, text, where) == hit;
}

int Filter::Check(std::string_view path, bool is_dir, bool sender, bool ignore_perishable) const {
  for (const Rule& rule : rules_) {
    if (!(sender ? rule.sender : rule.receiver)) continue;
    if (ignore_perishable && rule.perishable) continue;
    if (Matches(rule, path, is_dir)) return rule.include ? 1 : -1;
  }
  return 0;
}

bool Filter::Excluded(std::string_view path, bool is_dir) const {
  if (rules_.empty() || path.empty()) return false;
  // rsync does not descend into an excluded directory: its contents are excluded with it.
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (Check(path.substr(0, slash), true, true, false) < 0) return true;
  }
  return Check(path, is_dir, true, false) < 0;
}

bool Filter::Protected(std::string_view path, bool is_dir, bool in_deleted_dir) const {
  return !rules_.empty() && Check(path, is_dir, false, in_deleted_dir) < 0;
}

bool Filter::protects() const {
  for (const Rule& rule : rules_)
    if (rule.receiver && (!rule.include || rule.negate)) return true;
  return false;
}

std::vector<std::string> Filter::Rules() const {
  std::vector<std::string> out;
  for (const Rule& rule : rules_) out.push_back(rule.canonical);
  return out;
}

Result<std::vector<RuleLine>> ReadRuleLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::unexpected(Error::FromErrno(path));
  std::vector<RuleLine> out;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    out.push_back(RuleLine{number, std::move(line)});
  }
  if (in.bad()) return std::unexpected(Error::FromErrno(path));
  return out;
}

}  // namespace syncd
