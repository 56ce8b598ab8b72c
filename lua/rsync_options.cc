#include "lua/rsync_options.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "lua/rsync_option_table.h"
#include "lua/ssh_settings.h"
#include "syncd/filter.h"
#include "syncd/meta_mapping.h"

namespace syncd::lua {
namespace {

// Parses the args of one sync.
class ArgReader {
 public:
  ArgReader(SyncConfig& s, const std::string& where) : s_(s), o_(s.rsync), where_(where) {}

  Result<void> Read(const std::vector<RsyncArg>& args) {
    for (size_t i = 0; i < args.size(); ++i) {
      origin_ = args[i].origin;
      const std::string& a = args[i].text;
      auto next = [&]() -> std::optional<std::string> {
        if (i + 1 < args.size()) return args[++i].text;
        return std::nullopt;
      };
      if (a.starts_with("--")) {
        std::string_view body = std::string_view(a).substr(2);
        size_t eq = body.find('=');
        std::string_view name = body.substr(0, eq);
        std::optional<std::string> value;
        if (eq != std::string_view::npos) value = std::string(body.substr(eq + 1));
        bool negated = false;
        const Spec* spec = ByName(name);
        if (name == "no-D") {  // --no-devices --no-specials
          o_.devices = o_.specials = false;
          continue;
        }
        if (!spec && name.starts_with("no-")) {
          // --no-perms, and rsync's short forms: --no-p, --no-o, ...
          std::string_view rest = name.substr(3);
          spec = rest.size() == 1 ? ByLetter(rest[0]) : ByName(rest);
          negated = spec != nullptr;
        }
        if (!spec) return Refuse(a, "not an rsync option syncd knows");
        if (negated && spec->takes_value) return Refuse(a, "takes no --no- form");
        if (spec->takes_value && !value && !negated) {
          value = next();
          if (!value) return Refuse(a, "needs a value");
        }
        if (!spec->takes_value && value) return Refuse(a, "takes no value");
        SYNCD_TRY(ApplyOne(*spec, !negated, value.value_or(""), a));
      } else if (a.size() > 1 && a[0] == '-') {
        // Bundled short flags ("-avz"); a letter that takes a value takes the rest, or the
        // next argument.
        for (size_t k = 1; k < a.size(); ++k) {
          char c = a[k];
          if (c == 'D') {
            o_.devices = o_.specials = true;
            continue;
          }
          if (c == 'P') {  // --partial --progress
            SYNCD_TRY(ApplyOne(*ByName("partial"), true, "", "-P"));
            continue;
          }
          if (c == 'F')
            return Refuse(fmt::format("-F (in \"{}\")", a),
                          "it reads .rsync-filter files, a merge rule syncd does not carry");
          const Spec* spec = ByLetter(c);
          std::string shown = a.size() == 2 ? a : fmt::format("-{} (in \"{}\")", c, a);
          if (!spec) return Refuse(shown, "not an rsync option syncd knows");
          std::string value;
          if (spec->takes_value) {
            if (k + 1 < a.size()) {
              value = a.substr(k + 1);
            } else if (auto v = next()) {
              value = *v;
            } else {
              return Refuse(shown, "needs a value");
            }
            k = a.size();
          }
          SYNCD_TRY(ApplyOne(*spec, true, value, shown));
        }
      } else {
        return Refuse(a, "is not an option (rsync would take it for a source or a target)");
      }
    }
    return FinishBackups();
  }

 private:
  // rsync's checks and consequences of --backup beside the files: a suffix is needed, and
  // deletion protects the backups ("P *SUFFIX", after every other rule).
  Result<void> FinishBackups() {
    if (!s_.Backups() || o_.backup_dir) return {};
    if (s_.BackupSuffix().empty()) {
      origin_ = suffix_origin_;
      return Bad("--suffix cannot be empty without a --backup-dir");
    }
    if (s_.delete_mode != DeleteMode::kNever && !o_.delete_excluded)
      s_.filter_rules.push_back("P *" + s_.BackupSuffix());
    return {};
  }

  Result<void> ApplyOne(const Spec& spec, bool on, const std::string& value,
                        const std::string& shown) {
    switch (spec.how) {
      case How::kFlag:
        o_.*spec.field = on;
        return {};
      case How::kNothing:
        return {};
      case How::kOutput:
        Note(fmt::format("{}: output only; syncd logs its own way", shown));
        return {};
      case How::kDifferent:
        Note(fmt::format("{}: {}", shown, spec.why));
        return {};
      case How::kRefused:
        if (!on) return {};  // --no-acls and the like ask for what syncd does.
        return Refuse(shown, spec.why);
      case How::kCode:
        return ApplyCode(spec.name, on, value, shown);
    }
    return {};
  }

  Result<void> ApplyCode(std::string_view name, bool on, const std::string& value,
                         const std::string& shown) {
    if (name == "archive") {
      // -rlptgoD
      o_.recursive = o_.links = o_.perms = o_.times = o_.owner = o_.group = on;
      if (on) o_.devices = o_.specials = true;
      return {};
    }
    if (name == "chmod") {
      if (auto rules = ChmodRules::Parse(std::string_view(value), CurrentUmask()); !rules)
        return Bad(rules.error().message);
      o_.chmod.push_back(value);
      return {};
    }
    if (name == "usermap" || name == "groupmap") {
      std::optional<std::string>& field = name == "usermap" ? o_.usermap : o_.groupmap;
      if (field) return Refuse(shown, fmt::format("--{} (or --chown) given twice", name));
      if (auto map = IdMap::Parse(value); !map) return Bad(map.error().message);
      field = value;
      return {};
    }
    if (name == "chown") {
      auto maps = ChownMaps(value);
      if (!maps) return Bad("--chown: " + maps.error().message);
      if ((!maps->first.empty() && o_.usermap) || (!maps->second.empty() && o_.groupmap))
        return Refuse(shown, "--chown and --usermap/--groupmap together");
      // As rsync: --chown=U:G is --usermap=*:U --groupmap=*:G, with -o and -g implied.
      if (!maps->first.empty()) o_.usermap = maps->first, o_.owner = true;
      if (!maps->second.empty()) o_.groupmap = maps->second, o_.group = true;
      return {};
    }
    if (name == "max-size" || name == "min-size") {
      auto size = ParseRsyncSize(value, 'b');
      if (!size) return Bad(fmt::format("--{}: \"{}\" is not a size", name, value));
      (name == "max-size" ? o_.max_size : o_.min_size) = *size;
      return {};
    }
    if (name == "bwlimit") {
      // KiB per second unless a suffix says otherwise; 0 is no limit.
      auto size = ParseRsyncSize(value, 'k');
      if (!size) return Bad(fmt::format("--bwlimit: \"{}\" is not a rate", value));
      if (*size == 0) o_.bwlimit.reset();
      else o_.bwlimit = std::max<uint64_t>(*size, 512);
      return {};
    }
    if (name == "exclude" || name == "include") {
      s_.filter_rules.push_back(CanonicalPatternRule(value, name == "include"));
      return {};
    }
    if (name == "filter") {
      auto rule = CanonicalFilterRule(value);
      if (!rule) return Bad(rule.error().message);
      s_.filter_rules.push_back(std::move(*rule));
      return {};
    }
    if (name == "exclude-from" || name == "include-from") return AddPatternFile(value, name == "include-from");
    if (name == "rsh") {
      o_.rsh = value;
      return {};
    }
    if (name == "rsync-path") return RsyncPath(value, shown);
    if (name == "backup-dir") {  // Implies --backup; an empty one is none.
      if (value.empty()) o_.backup_dir.reset();
      else o_.backup_dir = value, o_.backup = true;
      return {};
    }
    if (name == "suffix") {
      if (value.find('/') != std::string::npos) return Bad(fmt::format("--suffix cannot contain slashes: {}", value));
      o_.suffix = value;
      suffix_origin_ = origin_;
      return {};
    }
    return Refuse(shown, "not handled");
  }

  // --exclude-from / --include-from FILE: one pattern per line, `#` and `;` comments.
  Result<void> AddPatternFile(const std::string& path, bool include) {
    auto lines = ReadRuleLines(path);
    if (!lines) return Bad(fmt::format("cannot read {}", lines.error().message));
    for (const RuleLine& line : *lines) s_.filter_rules.push_back(CanonicalPatternRule(line.text, include));
    return {};
  }

  // rsync_path = "sudo /usr/bin/rsync": the standby side runs through the same prefix, so the
  // agent does too ("sudo syncd --server"). A plain path to rsync changes nothing for syncd.
  Result<void> RsyncPath(const std::string& value, const std::string& shown) {
    if (value.find_first_of(";&|`$<>()\n") != std::string::npos)
      return Refuse(shown, "a shell command line; syncd runs its agent, not this command");
    std::vector<std::string> words = SplitCommandLine(value);
    size_t rsync_at = words.size();
    for (size_t i = 0; i < words.size(); ++i) {
      std::string base = words[i].substr(words[i].rfind('/') + 1);
      if (base.starts_with("rsync")) rsync_at = i;
    }
    if (rsync_at == words.size() || rsync_at + 1 != words.size())
      return Refuse(shown, "syncd can take a prefix such as sudo from it, followed by the rsync "
                           "program and nothing after it");
    if (rsync_at == 0) {
      Note(fmt::format("{}: the standby runs syncd's agent (\"{}\"), not rsync", shown,
                       s_.agent_command));
      return {};
    }
    std::string prefix;
    for (size_t i = 0; i < rsync_at; ++i) prefix += words[i] + " ";
    s_.agent_command = prefix + "syncd --server";
    Note(fmt::format("{}: the standby runs \"{}\"", shown, s_.agent_command));
    return {};
  }

  void Note(std::string text) {
    for (const std::string& n : s_.notes)
      if (n == text) return;
    s_.notes.push_back(std::move(text));
  }
  std::unexpected<Error> Bad(const std::string& what) const {
    return std::unexpected(Error{fmt::format("{}: {}: {}", where_, origin_, what), EINVAL});
  }
  std::unexpected<Error> Refuse(const std::string& option, std::string_view why) const {
    return Bad(fmt::format("{} is refused: {}", option, why));
  }

  SyncConfig& s_;
  RsyncOptions& o_;
  std::string where_;
  std::string origin_;
  std::string suffix_origin_;  // Where --suffix came from.
};

}  // namespace

Result<void> ApplyRsyncArgs(SyncConfig& s, const std::vector<RsyncArg>& args,
                            const std::string& where) {
  return ArgReader(s, where).Read(args);
}

std::vector<RsyncArg> RsyncArgsFromTable(const std::map<std::string, RsyncTableValue>& in,
                                         const std::string& prefix) {
  std::map<std::string, RsyncTableValue> table = in;
  // default.rsync's own rsync table, under the user's keys.
  for (const char* key : {"links", "times", "protect_args"})
    if (!table.contains(key)) table[key].truthy = true;
  auto on = [&](const std::string& key) {
    auto it = table.find(key);
    return it != table.end() && it->second.truthy;
  };
  if (on("archive")) {
    for (const char* key : {"recursive", "links", "perms", "times", "group", "owner", "devices",
                            "specials"})
      if (!table.contains(key)) table[key].truthy = true;
  }
  std::vector<RsyncArg> args;
  // One short flag per key (lsyncd bundles them into one argument; the meaning is the same).
  for (const auto& [key, value] : table) {
    if (!value.truthy || value.text || key == "_extra" || key == "archive") continue;
    if (key == "devices" || key == "specials") continue;
    const Spec* spec = ByKey(key);
    if (spec && spec->letter) args.push_back({fmt::format("-{}", spec->letter), prefix + "." + key});
  }
  if (on("devices") && on("specials")) args.push_back({"-D", prefix + ".devices"});
  if (auto it = table.find("_extra"); it != table.end())
    for (const std::string& a : it->second.list) args.push_back({a, prefix + "._extra"});
  for (const auto& [key, value] : table) {
    if (!value.truthy || key == "_extra" || key == "archive" || key == "binary") continue;
    const Spec* spec = ByKey(key);
    if (spec && spec->letter && !value.text) continue;  // Given as a short flag above.
    if ((key == "devices" || key == "specials") && on("devices") && on("specials")) continue;
    std::string arg = "--" + (spec ? std::string(spec->name) : key);
    if (value.text) arg += "=" + *value.text;
    args.push_back({std::move(arg), prefix + "." + key});
  }
  return args;
}

bool IsRsyncValueKey(std::string_view key) {
  static constexpr std::string_view kValues[] = {
      "backup_dir", "bwlimit", "chmod", "chown", "groupmap", "password_file", "rsh",
      "rsync_path", "suffix", "temp_dir", "timeout", "usermap", "max_size", "min_size"};
  for (std::string_view v : kValues)
    if (v == key) return true;
  return false;
}

bool IsRsyncFlagKey(std::string_view key) {
  if (IsRsyncValueKey(key)) return false;
  const Spec* spec = ByKey(key);
  return spec && !spec->takes_value;
}

std::optional<uint64_t> ParseRsyncSize(std::string_view text, char default_suffix) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));) ++i;
  if (i == 0) return std::nullopt;
  std::string number(text.substr(0, i));
  char suffix = default_suffix;
  if (i < text.size() && text[i] != '+' && text[i] != '-') suffix = text[i++];
  int reps;
  switch (std::tolower(static_cast<unsigned char>(suffix))) {
    case 'b': reps = 0; break;
    case 'k': reps = 1; break;
    case 'm': reps = 2; break;
    case 'g': reps = 3; break;
    case 't': reps = 4; break;
    case 'p': reps = 5; break;
    default: return std::nullopt;
  }
  double mult = 1024;
  if (i < text.size() && (text[i] == 'b' || text[i] == 'B')) {
    mult = 1000;
    ++i;
  } else if (text.substr(i, 2) == "ib" || text.substr(i, 2) == "iB" ||
             text.substr(i, 2) == "Ib" || text.substr(i, 2) == "IB") {
    i += 2;
  } else if (i < text.size() && text[i] != '+' && text[i] != '-') {
    return std::nullopt;
  }
  double size = std::strtod(number.c_str(), nullptr) * std::pow(mult, reps);
  if (!(size >= 0) || size > 9.0e18) return std::nullopt;
  auto value = static_cast<uint64_t>(size);
  if (text.substr(i) == "+1") {
    ++value;
    i += 2;
  } else if (text.substr(i) == "-1") {
    if (value > 0) --value;
    i += 2;
  }
  if (i != text.size()) return std::nullopt;
  return value;
}

}  // namespace syncd::lua
