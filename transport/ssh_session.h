// SshSession: one non-blocking libssh2 session shared by the SshChannels to one peer. Internal
// to the SSH carrier; see ssh_channel.h.
#pragma once

#include <libssh2.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "syncd/uv_handle.h"
#include "transport/ssh_channel.h"

namespace syncd::transport {

class SshSession : public std::enable_shared_from_this<SshSession> {
 public:
  // The live session for `target`, or a new one that starts connecting.
  static std::shared_ptr<SshSession> Get(uv_loop_t* loop, const SshTarget& target);
  ~SshSession();

  void Attach(SshChannel* channel);
  void Detach(SshChannel* channel);
  bool ready() const { return state_ == State::kReady; }
  LIBSSH2_SESSION* session() const { return session_; }
  // Runs every attached channel until none makes progress, then waits on the socket.
  void Pump();

 private:
  enum class State { kResolving, kConnecting, kHandshake, kAuth, kReady, kFailed };
  SshSession(uv_loop_t* loop, SshTarget target);

  void Start();
  void OnResolved(int status, addrinfo* res);
  void TryNextAddress();
  void OnSocketEvent(int status, int events);
  void Advance();
  bool Handshake();
  bool Authenticate();
  void Fail(Error error);
  void WaitSocket();
  void CloseSocket();
  void ScheduleKeepalive();
  // libssh2's socket reads go through here, so that any byte from the peer counts as a sign
  // of life (a keepalive's answer, or data).
  static LIBSSH2_RECV_FUNC(Receive);

  uv_loop_t* loop_;
  SshTarget target_;
  State state_ = State::kResolving;
  std::set<SshChannel*> channels_;
  addrinfo* addrs_ = nullptr;
  addrinfo* next_addr_ = nullptr;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;  // Connect deadline, then keepalives.
  LIBSSH2_SESSION* session_ = nullptr;
  std::string user_;
  // Authentication progress: the identities to try and where we are.
  std::vector<std::string> identities_;
  size_t identity_index_ = 0;
  bool auth_listed_ = false;
  bool tried_agent_ = false;
  LIBSSH2_AGENT* agent_ = nullptr;
  libssh2_agent_publickey* agent_identity_ = nullptr;
  std::vector<std::string> refused_;
  std::string last_error_;
  bool pumping_ = false;
  uint64_t last_heard_ms_ = 0;  // uv_now() when the peer last sent anything.
  uint64_t last_tick_ms_ = 0;   // uv_now() at the keepalive timer's last run.
};

}  // namespace syncd::transport
