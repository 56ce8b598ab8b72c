// SshSession, continued: the SSH handshake with the host key check against known_hosts, and
// the user's authentication (agent, then the configured or default keys).
#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <string>

#include "syncd/log.h"
#include "transport/known_hosts.h"
#include "transport/ssh_session.h"

namespace syncd::transport {
namespace {

// The key type named in a public key file (or the private key's .pub beside it).
std::string KeyTypeOf(const std::string& private_key) {
  std::ifstream pub(private_key + ".pub");
  std::string type;
  if (pub >> type) return type;
  std::ifstream key(private_key);
  std::string first;
  std::getline(key, first);
  if (first.find("RSA") != std::string::npos) return "ssh-rsa";
  return "";
}

std::string SessionError(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  libssh2_session_last_error(s, &msg, nullptr, 0);
  return msg ? msg : "unknown error";
}

}  // namespace

bool SshSession::Handshake() {
  int rc = libssh2_session_handshake(session_, fd_);
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    WaitSocket();
    return false;
  }
  if (rc != 0) {
    // No algorithm in common (an RSA-only host key offered as rsa-sha2, which libssh2 1.10
    // cannot verify; a cipher or key exchange it lacks): the OpenSSH client may get through.
    bool algorithms = rc == LIBSSH2_ERROR_KEX_FAILURE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED;
    Fail(Error{fmt::format("SSH handshake with {}: {}", target_.Describe(), SessionError(session_)),
               algorithms ? EPROTONOSUPPORT : ECONNRESET});
    return false;
  }
  if (auto v = VerifyHostKey(session_, target_); !v) {
    Fail(v.error());
    return false;
  }
  // A private key that others can read is no secret: OpenSSH ignores it, and so does syncd.
  auto too_open = [](const std::string& key) -> std::optional<std::string> {
    struct stat st;
    if (::stat(key.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return std::nullopt;
    return fmt::format("identity file {} can be read by others (mode {:04o}); refusing it, as "
                       "OpenSSH does: chmod 600 {}",
                       key, st.st_mode & 07777, key);
  };
  identities_ = target_.identity_files;
  if (!target_.identity_configured) {
    identities_.clear();
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      std::string path = HomeDir() + "/.ssh/" + name;
      if (::access(path.c_str(), R_OK) != 0) continue;
      if (auto why = too_open(path)) {
        LogWarn("{}", *why);
        continue;
      }
      identities_.push_back(path);
    }
  } else {
    for (const std::string& key : identities_) {
      if (::access(key.c_str(), R_OK) != 0) {
        Fail(Error{fmt::format("identity file {}: {}", key, std::strerror(errno)), errno, true});
        return false;
      }
      if (auto why = too_open(key)) {
        Fail(Error{*why, EPERM, true});
        return false;
      }
    }
  }
  state_ = State::kAuth;
  return true;
}

bool SshSession::Authenticate() {
  if (!auth_listed_) {
    char* methods = libssh2_userauth_list(session_, user_.c_str(),
                                          static_cast<unsigned>(user_.size()));
    if (!methods) {
      if (libssh2_session_last_errno(session_) == LIBSSH2_ERROR_EAGAIN) {
        WaitSocket();
        return false;
      }
      if (libssh2_userauth_authenticated(session_)) {
        state_ = State::kReady;
        return true;
      }
      Fail(Error{"SSH authentication with " + target_.Describe() + ": " + SessionError(session_),
                 EACCES});
      return false;
    }
    auth_listed_ = true;
    if (std::string(methods).find("publickey") == std::string::npos) {
      Fail(Error{fmt::format("{} accepts no public keys for {} (offers: {})", target_.Describe(),
                             user_, methods),
                 EACCES, true});
      return false;
    }
  }
  while (identity_index_ < identities_.size()) {
    const std::string& key = identities_[identity_index_];
    int rc = libssh2_userauth_publickey_fromfile_ex(
        session_, user_.c_str(), static_cast<unsigned>(user_.size()), nullptr, key.c_str(), "");
    if (rc == LIBSSH2_ERROR_EAGAIN) {
      WaitSocket();
      return false;
    }
    if (rc == 0) {
      LogDebug("Transport", "{}: authenticated as {} with {}", target_.Describe(), user_, key);
      state_ = State::kReady;
      uv_timer_stop(timer_.get());
      ScheduleKeepalive();
      return true;
    }
    LogDebug("Transport", "{}: key {} refused: {}", target_.Describe(), key, SessionError(session_));
    refused_.push_back(key);
    ++identity_index_;
  }
  if (!target_.identity_configured && std::getenv("SSH_AUTH_SOCK")) {
    if (!agent_ && !tried_agent_) {
      tried_agent_ = true;
      agent_ = libssh2_agent_init(session_);
      if (agent_ && (libssh2_agent_connect(agent_) != 0 ||
                     libssh2_agent_list_identities(agent_) != 0)) {
        libssh2_agent_free(agent_);
        agent_ = nullptr;
      }
      if (agent_ && libssh2_agent_get_identity(agent_, &agent_identity_, nullptr) != 0)
        agent_identity_ = nullptr;
    }
    while (agent_ && agent_identity_) {
      int rc = libssh2_agent_userauth(agent_, user_.c_str(), agent_identity_);
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        WaitSocket();
        return false;
      }
      if (rc == 0) {
        state_ = State::kReady;
        uv_timer_stop(timer_.get());
        ScheduleKeepalive();
        return true;
      }
      refused_.push_back(std::string("ssh-agent key ") +
                         (agent_identity_->comment ? agent_identity_->comment : ""));
      libssh2_agent_publickey* prev = agent_identity_;
      if (libssh2_agent_get_identity(agent_, &agent_identity_, prev) != 0) agent_identity_ = nullptr;
    }
  }
  std::string message;
  int code = EACCES;
  if (refused_.empty()) {
    message = fmt::format("no SSH key to log in to {} as {}: set ssh.identityFile or create "
                          "~/.ssh/id_ed25519",
                          target_.Describe(), user_);
  } else {
    message = fmt::format("{} refused the key {} for user {}", target_.Describe(),
                          fmt::join(refused_, ", "), user_);
    for (const std::string& key : refused_) {
      if (KeyTypeOf(key) == "ssh-rsa") {
        message += fmt::format(
            "; {} is an RSA key, which libssh2 1.10 can only sign with SHA-1, and OpenSSH 8.8 or "
            "later refuses that: use an ed25519 key (ssh-keygen -t ed25519 -f {}) and add its "
            ".pub to the peer's authorized_keys, or let the OpenSSH client carry the sync "
            "(ssh = {{ carrier = 'openssh' }})",
            key, key.substr(0, key.rfind('/') + 1) + "sync_ed25519");
        code = EKEYREJECTED;  // The OpenSSH client may get in with the same key.
        break;
      }
    }
  }
  Fail(Error{message, code, true});
  return false;
}

}  // namespace syncd::transport
