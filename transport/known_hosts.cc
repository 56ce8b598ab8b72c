#include "transport/known_hosts.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "syncd/filter.h"
#include "syncd/log.h"

namespace syncd::transport {
namespace {

std::string Base64(const unsigned char* data, size_t len) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (i + 1 < len) v |= uint32_t{data[i + 1]} << 8;
    if (i + 2 < len) v |= data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (i + 1 < len) out += kAlphabet[(v >> 6) & 63];
    if (i + 2 < len) out += kAlphabet[v & 63];
  }
  return out;  // Unpadded, as OpenSSH prints SHA256 fingerprints.
}

std::vector<std::string> HostKeyMethodsFor(const std::string& type) {
  if (type == "ssh-rsa") return {"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"};
  return {type};
}

const char* HostKeyTypeName(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "RSA";
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "DSA";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ECDSA";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ECDSA-384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ECDSA-521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ED25519";
    default: return "unknown";
  }
}

// The key's algorithm as a known_hosts line names it.
const char* KnownHostsAlgorithm(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
    default: return nullptr;
  }
}

const char* KeyscanType(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "rsa";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ed25519";
    default: return "rsa";
  }
}

int KnownHostKeyBit(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

}  // namespace

std::string HomeDir() {
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (passwd* pw = getpwuid(getuid())) return pw->pw_dir;
  return "/";
}

std::vector<std::string> KnownHostsFiles(const SshTarget& t) {
  if (!t.known_hosts_files.empty()) return t.known_hosts_files;
  return {HomeDir() + "/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"};
}

std::vector<std::string> KnownHostKeyMethods(const std::vector<std::string>& files,
                                             const std::string& host, int port) {
  std::string wanted = port == 22 ? host : "[" + host + "]:" + std::to_string(port);
  std::vector<std::string> matched;
  std::vector<std::string> hashed;
  auto add = [](std::vector<std::string>& v, const std::string& type) {
    for (const std::string& m : HostKeyMethodsFor(type))
      if (std::find(v.begin(), v.end(), m) == v.end()) v.push_back(m);
  };
  for (const std::string& file : files) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string hosts, type;
      if (!(fields >> hosts) || hosts.empty() || hosts[0] == '#' || hosts[0] == '@') continue;
      if (!(fields >> type)) continue;
      bool match = false;
      bool negated = false;
      std::istringstream patterns(hosts);
      for (std::string p; std::getline(patterns, p, ',');) {
        if (p.starts_with("|1|")) {
          add(hashed, type);  // Cannot tell which host without the hash; keep the type in mind.
          continue;
        }
        bool neg = !p.empty() && p[0] == '!';
        if (neg) p.erase(0, 1);
        // Only '*' and '?' are wildcards here; brackets belong to "[host]:port".
        std::string glob;
        for (char c : p) {
          if (c == '[' || c == ']' || c == '\\') glob += '\\';
          glob += c;
        }
        if (GlobMatch(glob, wanted)) (neg ? negated : match) = true;
      }
      if (match && !negated) add(matched, type);
    }
  }
  return matched.empty() ? hashed : matched;
}

Result<void> VerifyHostKey(LIBSSH2_SESSION* session_, const SshTarget& target_) {
  size_t len = 0;
  int type = 0;
  const char* key = libssh2_session_hostkey(session_, &len, &type);
  if (!key) return syncd::Fail("no host key from " + target_.Describe(), EPROTO);
  const char* hash = libssh2_hostkey_hash(session_, LIBSSH2_HOSTKEY_HASH_SHA256);
  std::string fingerprint =
      hash ? "SHA256:" + Base64(reinterpret_cast<const unsigned char*>(hash), 32) : "?";
  LIBSSH2_KNOWNHOSTS* kh = libssh2_knownhost_init(session_);
  std::vector<std::string> files = KnownHostsFiles(target_);
  for (const std::string& f : files)
    if (::access(f.c_str(), R_OK) == 0)
      libssh2_knownhost_readfile(kh, f.c_str(), LIBSSH2_KNOWNHOST_FILE_OPENSSH);
  libssh2_knownhost* entry = nullptr;
  int check = libssh2_knownhost_checkp(
      kh, target_.host.c_str(), target_.port, key, len,
      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | KnownHostKeyBit(type), &entry);
  libssh2_knownhost_free(kh);
  std::string where = target_.port == 22
                          ? target_.host
                          : fmt::format("[{}]:{}", target_.host, target_.port);
  switch (check) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
      return {};
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
      return syncd::Fail(
          fmt::format("host key for {} does not match known_hosts ({} {}); it may have been "
                      "reinstalled, or someone is intercepting the connection; if the change is "
                      "expected, remove the old key with: ssh-keygen -R '{}'",
                      where, HostKeyTypeName(type), fingerprint, where),
          EACCES, true);
    default:
      if (target_.accept_new_host_keys && KnownHostsAlgorithm(type)) {
        // StrictHostKeyChecking=accept-new: trust on first use, as OpenSSH does; a changed key
        // is still refused above.
        const std::string& file = files.front();
        std::string dir = file.substr(0, file.rfind('/'));
        if (!dir.empty()) ::mkdir(dir.c_str(), 0700);
        std::string blob = Base64(reinterpret_cast<const unsigned char*>(key), len);
        blob.append((4 - blob.size() % 4) % 4, '=');  // known_hosts wants it padded.
        std::string line = fmt::format("{} {} {}\n", where, KnownHostsAlgorithm(type), blob);
        FILE* f = std::fopen(file.c_str(), "ae");
        bool written = f && std::fputs(line.c_str(), f) >= 0;
        if (f) written = std::fclose(f) == 0 && written;
        if (!written)
          return syncd::Fail(fmt::format("cannot record the host key of {} in {}: {}", where,
                                         file, std::strerror(errno)),
                             errno, true);
        LogWarn("new host key for {} ({} {}) recorded in {} (StrictHostKeyChecking=accept-new)",
                where, HostKeyTypeName(type), fingerprint, file);
        return {};
      }
      return syncd::Fail(
          fmt::format("unknown host key for {} ({} {}); not in {}; after checking the "
                      "fingerprint, trust it with: ssh-keyscan{} -t {} {} >> {}",
                      where, HostKeyTypeName(type), fingerprint, fmt::join(files, " or "),
                      target_.port == 22 ? "" : " -p " + std::to_string(target_.port),
                      KeyscanType(type), target_.host, files.front()),
          EACCES, true);
  }
}

}  // namespace syncd::transport
