#include "lua/ssh_settings.h"

#include <fmt/format.h>
#include <strings.h>

#include <charconv>
#include <set>

namespace syncd::lua {
namespace {

// ssh -o options syncd's own client acts on, and those that change nothing for it.
const std::set<std::string, std::less<>> kSshOptionsUsed = {
    "Port", "User", "IdentityFile", "UserKnownHostsFile", "GlobalKnownHostsFile",
    "ConnectTimeout", "ServerAliveInterval", "ServerAliveCountMax", "StrictHostKeyChecking"};
const std::set<std::string, std::less<>> kSshOptionsIgnored = {
    "BatchMode", "LogLevel", "Compression", "IdentitiesOnly", "ForwardAgent", "ForwardX11",
    "RequestTTY", "PasswordAuthentication", "KbdInteractiveAuthentication",
    "ChallengeResponseAuthentication", "PubkeyAuthentication", "CheckHostIP"};

// ssh's option keys are case-insensitive: the spelling syncd uses for those it knows.
std::string CanonicalKey(const std::string& key) {
  for (const auto* set : {&kSshOptionsUsed, &kSshOptionsIgnored})
    for (const std::string& k : *set)
      if (::strcasecmp(k.c_str(), key.c_str()) == 0) return k;
  return key;
}

// The letters of ssh(1) that take a value.
constexpr std::string_view kValueLetters = "bBcDEeFIiJLlmOopPQRSWw";

class RshReader {
 public:
  RshReader(SyncConfig& s, const std::string& where) : s_(s), where_(where) {}

  Result<void> Read(const std::string& rsh) {
    rsh_ = rsh;
    std::vector<std::string> words = SplitCommandLine(rsh);
    if (words.empty()) return Refuse("it is empty");
    size_t ssh_at = words.size();
    for (size_t i = 0; i < words.size(); ++i)
      if (Base(words[i]) == "ssh") {
        ssh_at = i;
        break;
      }
    for (size_t i = 0; i < std::min(ssh_at, words.size()); ++i) {
      std::string base = Base(words[i]);
      if (base == "sshpass")
        return Refuse("sshpass gives ssh a password; syncd logs in with keys only "
                      "(ssh.identityFile)");
      if (i == 0)
        return Refuse(fmt::format("syncd runs its own SSH client or OpenSSH's ssh "
                                  "(ssh.binary), not \"{}\"", words[0]));
    }
    if (ssh_at == words.size())
      return Refuse(fmt::format("syncd runs its own SSH client or OpenSSH's ssh (ssh.binary), "
                                "not \"{}\"", words[0]));
    if (words[ssh_at].find('/') != std::string::npos && words[ssh_at] != "/usr/bin/ssh" &&
        !s_.ssh.binary)
      Note(fmt::format("rsh: {}: syncd connects with its own client, or this ssh when it needs "
                       "OpenSSH",
                       words[ssh_at]));
    for (size_t i = ssh_at + 1; i < words.size(); ++i) {
      const std::string& a = words[i];
      if (a.size() < 2 || a[0] != '-')
        return Refuse(fmt::format("\"{}\" is not an ssh option (rsync adds the host and the "
                                  "command itself)",
                                  a));
      for (size_t k = 1; k < a.size(); ++k) {
        char c = a[k];
        std::string value;
        if (kValueLetters.find(c) != std::string_view::npos) {
          if (k + 1 < a.size()) value = a.substr(k + 1);
          else if (i + 1 < words.size()) value = words[++i];
          else return Refuse(fmt::format("-{} needs a value", c));
          k = a.size();
        }
        SYNCD_TRY(Apply(c, value));
      }
    }
    return {};
  }

 private:
  static std::string Base(const std::string& w) { return w.substr(w.rfind('/') + 1); }

  Result<void> Apply(char c, const std::string& value) {
    switch (c) {
      case 'i':
        if (!s_.ssh.identity_file) s_.ssh.identity_file = value;
        return {};
      case 'p': {
        int port = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
        if (ec != std::errc() || end != value.data() + value.size() || port < 1 || port > 65535)
          return Refuse(fmt::format("-p {}: not a port", value));
        if (!s_.ssh.port) s_.ssh.port = port;
        return {};
      }
      case 'l':
        if (s_.host.find('@') == std::string::npos) s_.host = value + "@" + s_.host;
        return {};
      case 'o': {
        size_t eq = value.find_first_of("= ");
        if (eq == std::string::npos) return Refuse(fmt::format("-o {}: not Key=Value", value));
        s_.ssh.options.emplace(CanonicalKey(value.substr(0, eq)), value.substr(eq + 1));
        return {};
      }
      // Options only OpenSSH's client carries: given to it.
      case 'c': return Option("Ciphers", value);
      case 'm': return Option("MACs", value);
      case 'J': return Option("ProxyJump", value);
      case 'b': return Option("BindAddress", value);
      case 'B': return Option("BindInterface", value);
      case 'S': return Option("ControlPath", value);
      case 'P': return Option("Tag", value);
      case '4': return Option("AddressFamily", "inet");
      case '6': return Option("AddressFamily", "inet6");
      case 'F':
        s_.ssh.extra.push_back("-F");
        s_.ssh.extra.push_back(value);
        return {};
      case 'K': return Option("GSSAPIAuthentication", "yes");
      // Nothing to do: no terminal, no forwarding, output only.
      case 'T': case 'x': case 'a': case 'k': case 'n': case 'q': case 'v': case 'C':
      case 'A': case 'X': case 'Y': case 'g': case 'y': case 'E': case 'e':
        return {};
      case 't':
        return Refuse("-t: a terminal on the standby would corrupt the transfer");
      case 'L': case 'R': case 'D': case 'W': case 'w':
        return Refuse(fmt::format("-{}: syncd's connection makes no forwarding", c));
      default:
        return Refuse(fmt::format("-{}: not an ssh option syncd can carry", c));
    }
  }

  Result<void> Option(const std::string& key, const std::string& value) {
    s_.ssh.options.emplace(key, value);
    return {};
  }
  void Note(std::string text) { s_.notes.push_back(std::move(text)); }
  std::unexpected<Error> Refuse(const std::string& why) const {
    return std::unexpected(
        Error{fmt::format("{}: rsh \"{}\" is refused: {}", where_, rsh_, why), EINVAL});
  }

  SyncConfig& s_;
  std::string where_;
  std::string rsh_;
};

}  // namespace

std::vector<std::string> SplitCommandLine(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == quote) quote = 0;
      else cur += c;
    } else if (c == '\\' && i + 1 < line.size() && (quote != '"' || line[i + 1] == '"' ||
                                                      line[i + 1] == '\\')) {
      cur += line[++i];
      in_word = true;
    } else if (quote == '"') {
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

Result<void> ApplySshSettings(SyncConfig& s, const std::string& where) {
  if (s.rsync.rsh) {
    if (s.host.empty()) {
      s.notes.push_back("rsh: the target is local; no ssh is run");
    } else {
      SYNCD_TRY(RshReader(s, where).Read(*s.rsync.rsh));
    }
  }
  if (auto it = s.ssh.options.find("Port"); it != s.ssh.options.end() && !s.ssh.port)
    s.ssh.port = std::atoi(it->second.c_str());
  if (auto it = s.ssh.options.find("IdentityFile");
      it != s.ssh.options.end() && !s.ssh.identity_file)
    s.ssh.identity_file = it->second;
  if (auto it = s.ssh.options.find("User");
      it != s.ssh.options.end() && s.host.find('@') == std::string::npos)
    s.host = it->second + "@" + s.host;
  if (s.host.empty() || s.ssh.binary || s.ssh.carrier == SshCarrier::kOpenSsh) return {};
  // What syncd's own client cannot carry: the OpenSSH client carries the sync, or, when the
  // config asks for syncd's client only, the config is refused.
  std::vector<std::string> needs_openssh;
  for (const auto& [key, value] : s.ssh.options)
    if (!kSshOptionsUsed.contains(key) && !kSshOptionsIgnored.contains(key))
      needs_openssh.push_back(key);
  if (!s.ssh.extra.empty()) needs_openssh.push_back(fmt::format("{}", fmt::join(s.ssh.extra, " ")));
  if (needs_openssh.empty()) return {};
  std::string what = fmt::format("{}", fmt::join(needs_openssh, ", "));
  if (s.ssh.carrier == SshCarrier::kLibssh2)
    return Fail(fmt::format("{}: ssh: {}: only OpenSSH's client carries this, and ssh.carrier "
                            "is \"libssh2\"",
                            where, what),
                EINVAL);
  s.ssh.carrier = SshCarrier::kOpenSsh;
  s.notes.push_back(fmt::format("ssh: {}: connects with OpenSSH's client (syncd's own does not "
                                "carry this)",
                                what));
  return {};
}

}  // namespace syncd::lua
