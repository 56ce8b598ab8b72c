#include "syncd/chmod_rules.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

namespace syncd {
namespace {

constexpr uint32_t kAllBits = 07777;

// The three bits of class `cls` (0100, 0010 or 0001) in `mode`, as rwx = 4/2/1.
uint32_t ClassBits(uint32_t mode, uint32_t cls) {
  if (cls == 0100) return (mode >> 6) & 7;
  if (cls == 0010) return (mode >> 3) & 7;
  return mode & 7;
}

// The set-id and sticky bits that stand beside the classes in `classes`.
uint32_t SpecialBitsBeside(uint32_t classes) {
  return ((classes & 0100) ? S_ISUID : 0) | ((classes & 0010) ? S_ISGID : 0) |
         ((classes & 0001) ? S_ISVTX : 0);
}

}  // namespace

Result<ChmodRules> ChmodRules::Parse(std::string_view spec, uint32_t umask) {
  ChmodRules rules;
  rules.umask_ = umask & kAllBits;
  auto bad = [&](std::string_view clause) {
    return Fail(fmt::format("invalid chmod rule \"{}\" in \"{}\"", clause, spec), EINVAL);
  };
  size_t start = 0;
  while (true) {
    size_t comma = spec.find(',', start);
    std::string_view text = spec.substr(start, comma == std::string_view::npos
                                                   ? std::string_view::npos : comma - start);
    Clause c;
    size_t i = 0;
    // Before the operator: D or F, and who.
    for (; i < text.size(); ++i) {
      char ch = text[i];
      if (ch == 'D' || ch == 'F') {
        if ((ch == 'D' && c.files_only) || (ch == 'F' && c.dirs_only)) return bad(text);
        (ch == 'D' ? c.dirs_only : c.files_only) = true;
      } else if (ch == 'u' || ch == 'g' || ch == 'o' || ch == 'a') {
        c.who_given = true;
        c.classes |= ch == 'u' ? 0100 : ch == 'g' ? 0010 : ch == 'o' ? 0001 : 0111;
        c.special_of_who |= ch == 'u' ? S_ISUID : ch == 'g' ? S_ISGID : ch == 'a' ? S_ISUID | S_ISGID : 0;
      } else {
        break;
      }
    }
    if (i == text.size()) return bad(text);  // No operator.
    char op = text[i];
    if (op >= '0' && op <= '7' && !c.who_given) {
      c.op = Op::kOctal;
      for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '7') return bad(text);
        c.perms = c.perms * 8 + static_cast<uint32_t>(text[i] - '0');
        if (c.perms > kAllBits) return bad(text);
      }
    } else {
      if (op == '+') c.op = Op::kAdd;
      else if (op == '-') c.op = Op::kRemove;
      else if (op == '=') c.op = Op::kAssign;
      else return bad(text);
      for (++i; i < text.size(); ++i) {
        char ch = text[i];
        bool copying = c.copy_from != 0;
        switch (ch) {
          case 'r': case 'w': case 'x': case 'X':
            if (copying) return bad(text);
            c.perms |= ch == 'r' ? 4 : ch == 'w' ? 2 : 1;
            if (ch == 'X') c.x_if_executable = true;
            break;
          case 's':
            if (copying) return bad(text);
            c.special |= c.special_of_who ? c.special_of_who : S_ISUID;
            break;
          case 't':
            if (copying) return bad(text);
            c.special |= S_ISVTX;
            break;
          case 'u': case 'g': case 'o':
            if (copying || c.perms || c.special) return bad(text);
            c.copy_from = ch == 'u' ? 0100 : ch == 'g' ? 0010 : 0001;
            break;
          default:
            return bad(text);
        }
      }
    }
    rules.clauses_.push_back(c);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return rules;
}

Result<ChmodRules> ChmodRules::Parse(const std::vector<std::string>& specs, uint32_t umask) {
  ChmodRules all;
  all.umask_ = umask & kAllBits;
  for (const std::string& spec : specs) {
    auto one = Parse(std::string_view(spec), umask);
    if (!one) return std::unexpected(one.error());
    all.clauses_.insert(all.clauses_.end(), one->clauses_.begin(), one->clauses_.end());
  }
  return all;
}

uint32_t ChmodRules::ApplyClause(const Clause& c, uint32_t mode, bool had_x,
                                 bool is_dir) const {
  if (c.op == Op::kOctal) return c.perms;
  uint32_t classes = c.who_given ? c.classes : 0111;
  uint32_t bits = classes * c.perms;
  if (!c.who_given) bits &= ~umask_;
  uint32_t copied = 0;
  if (c.copy_from) {
    copied = classes * ClassBits(mode, c.copy_from);
    if (!c.who_given) copied &= ~umask_;
  }
  uint32_t added = bits | c.special;
  if (c.x_if_executable && !had_x && !is_dir) added &= ~0111u;
  switch (c.op) {
    case Op::kAdd:
      return mode | added | copied;
    case Op::kRemove:
      return mode & ~(bits | c.special) & ~copied;
    case Op::kAssign: {
      uint32_t cleared = classes * 7;
      if (c.special) cleared |= c.special_of_who;
      if (c.copy_from) cleared |= SpecialBitsBeside(classes);
      return (mode & ~cleared) | added | copied;
    }
    case Op::kOctal:
      break;
  }
  return mode;
}

uint32_t ChmodRules::Apply(uint32_t mode, bool is_dir) const {
  mode &= kAllBits;
  bool had_x = (mode & 0111) != 0;
  for (const Clause& c : clauses_) {
    if ((c.dirs_only && !is_dir) || (c.files_only && is_dir)) continue;
    mode = ApplyClause(c, mode, had_x, is_dir) & kAllBits;
  }
  return mode;
}

uint32_t CurrentUmask() {
  // /proc/self/status says it without the umask(2) round trip, which races with threads.
  if (FILE* f = std::fopen("/proc/self/status", "re")) {
    char line[256];
    unsigned value = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &value) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return value & kAllBits;
  }
  mode_t old = ::umask(022);
  ::umask(old);
  return old & kAllBits;
}

}  // namespace syncd
