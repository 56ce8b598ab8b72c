#include "lua/extra_flags.h"

#include <fmt/format.h>

#include <fstream>
#include <set>

#include "syncd/chmod_rules.h"
#include "syncd/filter.h"

namespace syncd::lua {
namespace {

// ssh -o options syncd acts on, and those that are harmless to ignore.
const std::set<std::string, std::less<>> kSshOptionsUsed = {
    "Port", "User", "IdentityFile", "UserKnownHostsFile", "GlobalKnownHostsFile",
    "ConnectTimeout", "ServerAliveInterval", "ServerAliveCountMax", "StrictHostKeyChecking"};
const std::set<std::string, std::less<>> kSshOptionsIgnored = {"BatchMode", "LogLevel",
                                                                "Compression", "IdentitiesOnly"};

// Applies the ssh command line of --rsh: -i, -p, -l and -o are understood.
void ApplyRsh(SyncConfig& s, const std::string& rsh, const std::string& where,
              std::vector<std::string>& warnings) {
  std::vector<std::string> args = SplitCommandLine(rsh);
  if (args.empty()) return;
  std::string program = args[0].substr(args[0].rfind('/') + 1);
  if (program != "ssh")
    warnings.push_back(fmt::format("{}: rsh program \"{}\" is not run; syncd connects with its "
                                   "own SSH client",
                                   where, args[0]));
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](char flag) -> std::optional<std::string> {
      if (a.size() > 2) return a.substr(2);
      if (i + 1 < args.size()) return args[++i];
      warnings.push_back(fmt::format("{}: rsh: -{} needs a value", where, flag));
      return std::nullopt;
    };
    if (a.size() < 2 || a[0] != '-') {
      warnings.push_back(fmt::format("{}: rsh: \"{}\" is not understood; ignored", where, a));
      continue;
    }
    switch (a[1]) {
      case 'i':
        if (auto v = value('i'); v && !s.ssh.identity_file) s.ssh.identity_file = *v;
        break;
      case 'p':
        if (auto v = value('p'); v && !s.ssh.port) s.ssh.port = std::atoi(v->c_str());
        break;
      case 'l':
        if (auto v = value('l'); v && s.host.find('@') == std::string::npos)
          s.host = *v + "@" + s.host;
        break;
      case 'o':
        if (auto v = value('o')) {
          size_t eq = v->find_first_of("= ");
          if (eq != std::string::npos) s.ssh.options.emplace(v->substr(0, eq), v->substr(eq + 1));
        }
        break;
      case '4': case '6': case 'q': case 'C': case 'T': case 'x': case 'a': case 'k':
        break;  // Address family, quiet, compression, no tty, no forwarding: nothing to do.
      default:
        warnings.push_back(fmt::format("{}: rsh: \"{}\" is not understood; ignored", where, a));
    }
  }
}

}  // namespace

std::vector<std::string> SplitCommandLine(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote) {
      if (c == quote) quote = 0;
      else cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

namespace {

// --exclude-from / --include-from FILE: one pattern per line, `#` and `;` comments.
Result<void> AddPatternFile(SyncConfig& s, const std::string& where, const std::string& path,
                            bool include) {
  std::ifstream in(path);
  if (!in) return Fail(fmt::format("{}: rsync._extra: cannot read {}", where,
                                   Error::FromErrno(path).message), EINVAL);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    s.filter_rules.push_back(CanonicalPatternRule(line, include));
  }
  return {};
}

// The filter options of rsync's command line, in `--name=VALUE` or `--name VALUE` form (and
// -f RULE). Returns false when `extra[i]` is none of them; `i` moves past a separate value.
Result<bool> ApplyFilterFlag(SyncConfig& s, const std::vector<std::string>& extra, size_t& i,
                             const std::string& where) {
  static constexpr std::string_view kNames[] = {"--exclude", "--include", "--filter",
                                                "--exclude-from", "--include-from", "-f"};
  const std::string& a = extra[i];
  std::string_view name;
  std::string value;
  for (std::string_view n : kNames) {
    if (a == n) {
      if (i + 1 >= extra.size())
        return Fail(fmt::format("{}: rsync._extra: {} needs a value", where, a), EINVAL);
      name = n;
      value = extra[++i];
      break;
    }
    if (n != "-f" && a.size() > n.size() && a.starts_with(n) && a[n.size()] == '=') {
      name = n;
      value = a.substr(n.size() + 1);
      break;
    }
  }
  if (name.empty()) return false;
  if (name == "--exclude" || name == "--include") {
    s.filter_rules.push_back(CanonicalPatternRule(value, name == "--include"));
  } else if (name == "--filter" || name == "-f") {
    auto rule = CanonicalFilterRule(value);
    if (!rule) return Fail(fmt::format("{}: rsync._extra: {}", where, rule.error().message), EINVAL);
    s.filter_rules.push_back(std::move(*rule));
  } else {
    SYNCD_TRY(AddPatternFile(s, where, value, name == "--include-from"));
  }
  return true;
}

}  // namespace

Result<void> ApplyExtraFlags(SyncConfig& s, const std::string& where,
                             std::vector<std::string>& warnings) {
  RsyncOptions& o = s.rsync;
  std::vector<std::string> not_understood;
  const std::vector<std::string>& extra = o.extra;
  for (size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    auto filter_flag = ApplyFilterFlag(s, extra, i, where);
    if (!filter_flag) return std::unexpected(filter_flag.error());
    if (*filter_flag) continue;
    if (a.starts_with("--chmod=") || a == "--chmod") {
      if (a == "--chmod" && i + 1 >= extra.size())
        return Fail(fmt::format("{}: rsync._extra: --chmod needs a value", where), EINVAL);
      std::string value = a == "--chmod" ? extra[++i] : a.substr(8);
      if (auto rules = ChmodRules::Parse(std::string_view(value), CurrentUmask()); !rules)
        return Fail(fmt::format("{}: rsync._extra: {}", where, rules.error().message), EINVAL);
      o.chmod.push_back(std::move(value));
    } else if (a == "--delete-excluded") {
      o.delete_excluded = true;
    } else if (a == "--hard-links") {
      o.hard_links = true;
    } else if (a.starts_with("--rsh=")) {
      ApplyRsh(s, a.substr(6), where, warnings);
    } else if (a == "-e" || a == "--rsh") {
      if (i + 1 < extra.size()) ApplyRsh(s, extra[++i], where, warnings);
    } else if (a == "--archive") {
      o.archive = true;
    } else if (a == "--compress") {
      o.compress = true;
    } else if (a == "--links") {
      o.links = true;
    } else if (a == "--times") {
      o.times = true;
    } else if (a == "--perms") {
      o.perms = true;
    } else if (a == "--owner") {
      o.owner = true;
    } else if (a == "--group") {
      o.group = true;
    } else if (a == "--recursive") {
      o.recursive = true;
    } else if (a == "--prune-empty-dirs") {
      o.prune_empty_dirs = true;
    } else if (a == "--whole-file") {
      o.whole_file = true;
    } else if (a == "--verbose" || a == "--quiet" || a == "--protect-args" ||
               a == "--checksum" || a == "--human-readable" ||
               a == "--progress" || a == "--partial" || a == "--stats") {
      // Output and transfer-strategy flags: they do not change what ends up on the peer.
    } else if (a.size() > 1 && a[0] == '-' && a[1] != '-') {
      // Bundled short flags, e.g. "-avz".
      for (char c : a.substr(1)) {
        switch (c) {
          case 'a': o.archive = true; break;
          case 'z': o.compress = true; break;
          case 'l': o.links = true; break;
          case 't': o.times = true; break;
          case 'p': o.perms = true; break;
          case 'o': o.owner = true; break;
          case 'g': o.group = true; break;
          case 'r': o.recursive = true; break;
          case 'm': o.prune_empty_dirs = true; break;
          case 'D': o.devices = o.specials = true; break;
          case 'W': o.whole_file = true; break;
          case 'H': o.hard_links = true; break;
          case 'v': case 'q': case 's': case 'c': case 'h': case 'P': break;
          default: not_understood.push_back(fmt::format("-{} (in \"{}\")", c, a));
        }
      }
    } else {
      not_understood.push_back(a);
    }
  }
  if (o.rsh) ApplyRsh(s, *o.rsh, where, warnings);
  for (const std::string& a : not_understood)
    warnings.push_back(fmt::format("{}: rsync._extra: {} is not understood by syncd; ignored",
                                   where, a));
  // The OpenSSH client takes every option; syncd's own client only some.
  bool openssh = s.ssh.binary || s.ssh.carrier == SshCarrier::kOpenSsh ||
                 (s.ssh.carrier == SshCarrier::kAuto &&
                  (s.ssh.options.contains("ProxyJump") || s.ssh.options.contains("ProxyCommand")));
  for (const auto& [key, value] : s.ssh.options) {
    if (openssh || kSshOptionsIgnored.contains(key)) continue;
    if (!kSshOptionsUsed.contains(key))
      warnings.push_back(
          fmt::format("{}: ssh.options.{}: not supported by syncd; ignored", where, key));
  }
  if (auto it = s.ssh.options.find("Port"); it != s.ssh.options.end() && !s.ssh.port)
    s.ssh.port = std::atoi(it->second.c_str());
  if (auto it = s.ssh.options.find("IdentityFile");
      it != s.ssh.options.end() && !s.ssh.identity_file)
    s.ssh.identity_file = it->second;
  if (auto it = s.ssh.options.find("User");
      it != s.ssh.options.end() && s.host.find('@') == std::string::npos)
    s.host = it->second + "@" + s.host;
  if (!s.ssh.extra.empty() && !openssh)
    warnings.push_back(fmt::format("{}: ssh._extra is not used by syncd's SSH client: {}", where,
                                   fmt::join(s.ssh.extra, " ")));
  return {};
}

}  // namespace syncd::lua
