// The SSH carrier. SshSession is one libssh2 session to a peer, non-blocking, its socket on a
// uv_poll_t in the loop; it checks the host key against known_hosts and authenticates with
// public keys (files, then ssh-agent). SshChannel is one exec channel on such a session running
// the agent; syncs to the same peer share one session.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "syncd/life_token.h"
#include "transport/channel.h"

namespace syncd::transport {

struct SshTarget {
  std::string user;  // Empty: the current user.
  std::string host;
  int port = 22;
  // Keys tried in order. When none was configured, the default ~/.ssh/id_* files are tried
  // and then ssh-agent.
  std::vector<std::string> identity_files;
  bool identity_configured = false;
  std::vector<std::string> known_hosts_files;  // Empty: ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts.
  std::string remote_command = "syncd --server";
  int connect_timeout_s = 30;
  // StrictHostKeyChecking=accept-new: an unknown host key is recorded in the first
  // known_hosts file and trusted; a changed one is still refused.
  bool accept_new_host_keys = false;
  // A keepalive goes out every keepalive_s seconds; a peer heard from for none of
  // keepalive_count_max intervals is dead (OpenSSH's ServerAliveInterval/ServerAliveCountMax).
  // The kernel gives up on unacknowledged data after the same time (TCP_USER_TIMEOUT).
  int keepalive_s = 5;
  int keepalive_count_max = 3;

  std::string Key() const;       // Identifies a session that can be shared.
  std::string Describe() const;  // user@host[:port]
};

class SshSession;

class SshChannel : public Channel {
 public:
  SshChannel(uv_loop_t* loop, SshTarget target);
  ~SshChannel() override;

  void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) override;
  void Write(std::string bytes) override;
  size_t buffered() const override { return out_.size() - out_pos_; }
  void Close() override;

 private:
  friend class SshSession;
  enum class State { kIdle, kWaitingSession, kOpening, kExec, kOpen, kClosed };

  // Advances on session readiness; returns true if anything moved.
  bool Pump();
  void SessionReady();
  void Fail(const Error& error);
  void CheckStderr();

  uv_loop_t* loop_;
  SshTarget target_;
  std::shared_ptr<SshSession> session_;
  State state_ = State::kIdle;
  void* channel_ = nullptr;  // LIBSSH2_CHANNEL*
  Callbacks callbacks_;
  std::function<void(Result<void>)> opened_;
  std::string out_;
  size_t out_pos_ = 0;
  std::string stderr_;
  LifeToken life_;
};

// Reads the key types that known_hosts files hold for a host, in file order, as libssh2
// host-key method names. Exposed for tests.
std::vector<std::string> KnownHostKeyMethods(const std::vector<std::string>& files,
                                             const std::string& host, int port);

}  // namespace syncd::transport
