#include "transport/ssh_session.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "syncd/filter.h"
#include "syncd/log.h"
#include "transport/known_hosts.h"

namespace syncd::transport {
namespace {

std::map<std::string, std::weak_ptr<SshSession>>& Pool() {
  static auto* pool = new std::map<std::string, std::weak_ptr<SshSession>>();
  return *pool;
}

std::string CurrentUser() {
  if (passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "root";
}

}  // namespace

std::string SshTarget::Key() const {
  std::string key = user + "@" + host + ":" + std::to_string(port) + "|" + remote_command;
  for (const std::string& f : identity_files) key += "|" + f;
  for (const std::string& f : known_hosts_files) key += "|" + f;
  return key;
}

std::string SshTarget::Describe() const {
  std::string s = user.empty() ? host : user + "@" + host;
  return port == 22 ? s : s + ":" + std::to_string(port);
}

std::shared_ptr<SshSession> SshSession::Get(uv_loop_t* loop, const SshTarget& target) {
  auto& pool = Pool();
  std::string key = target.Key();
  if (auto it = pool.find(key); it != pool.end()) {
    if (auto s = it->second.lock(); s && s->state_ != State::kFailed) return s;
  }
  std::shared_ptr<SshSession> s(new SshSession(loop, target));
  pool[key] = s;
  s->Start();
  return s;
}

SshSession::SshSession(uv_loop_t* loop, SshTarget target)
    : loop_(loop), target_(std::move(target)) {
  user_ = target_.user.empty() ? CurrentUser() : target_.user;
  timer_ = MakeTimer(loop_, this);
}

SshSession::~SshSession() {
  auto& pool = Pool();
  if (auto it = pool.find(target_.Key()); it != pool.end() && it->second.expired())
    pool.erase(it);
  timer_.Reset();
  CloseSocket();
  if (addrs_) uv_freeaddrinfo(addrs_);
}

void SshSession::CloseSocket() {
  if (agent_) {
    libssh2_agent_disconnect(agent_);
    libssh2_agent_free(agent_);
    agent_ = nullptr;
  }
  if (session_) {
    // In non-blocking mode disconnect and free return EAGAIN and free nothing; finish them
    // blocking, bounded by a short timeout in case the peer is gone.
    libssh2_session_set_timeout(session_, 2000);
    libssh2_session_set_blocking(session_, 1);
    libssh2_session_disconnect(session_, "syncd closing");
    libssh2_session_free(session_);
    session_ = nullptr;
  }
  poll_.Reset();  // Before the socket it polls is closed.
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void SshSession::Attach(SshChannel* channel) {
  channels_.insert(channel);
  if (state_ == State::kReady) Pump();
}

void SshSession::Detach(SshChannel* channel) { channels_.erase(channel); }

void SshSession::Start() {
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<SshSession*>(t->data);
        if (self && self->state_ != State::kReady && self->state_ != State::kFailed)
          self->Fail(Error{fmt::format("connect to {}: timed out after {} s",
                                       self->target_.Describe(), self->target_.connect_timeout_s),
                           ETIMEDOUT});
      },
      static_cast<uint64_t>(target_.connect_timeout_s) * 1000, 0);
  auto* req = new uv_getaddrinfo_t;
  req->data = new std::weak_ptr<SshSession>(weak_from_this());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(target_.port);
  int rc = uv_getaddrinfo(
      loop_, req,
      [](uv_getaddrinfo_t* r, int status, addrinfo* res) {
        auto* weak = static_cast<std::weak_ptr<SshSession>*>(r->data);
        auto self = weak->lock();
        delete weak;
        delete r;
        if (self)
          self->OnResolved(status, res);
        else if (res)
          uv_freeaddrinfo(res);
      },
      target_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete static_cast<std::weak_ptr<SshSession>*>(req->data);
    delete req;
    Fail(Error{fmt::format("resolve {}: {}", target_.host, uv_strerror(rc)), EHOSTUNREACH});
  }
}

void SshSession::OnResolved(int status, addrinfo* res) {
  if (state_ == State::kFailed) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  if (status != 0)
    return Fail(Error{fmt::format("resolve {}: {}", target_.host, uv_strerror(status)),
                      EHOSTUNREACH});
  addrs_ = res;
  next_addr_ = res;
  state_ = State::kConnecting;
  TryNextAddress();
}

void SshSession::TryNextAddress() {
  CloseSocket();
  while (next_addr_) {
    addrinfo* a = next_addr_;
    next_addr_ = a->ai_next;
    fd_ = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) continue;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // Small frames, low latency.
    ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error_ = std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      continue;
    }
    auto* poll = new uv_poll_t;
    uv_poll_init_socket(loop_, poll, fd_);
    poll->data = this;
    poll_ = UvHandle<uv_poll_t>(poll);
    uv_poll_start(poll, UV_WRITABLE, [](uv_poll_t* p, int status, int events) {
      static_cast<SshSession*>(p->data)->OnSocketEvent(status, events);
    });
    return;
  }
  Fail(Error{fmt::format("connect to {}: {}", target_.Describe(),
                         last_error_.empty() ? "no address" : last_error_),
             ECONNREFUSED});
}

void SshSession::OnSocketEvent(int status, int) {
  auto self = shared_from_this();  // Channels may let go of us inside.
  if (state_ == State::kConnecting) {
    // libuv reports a socket error (a refused connection) as UV_EBADF; the socket knows which.
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0 && status < 0) err = -status;
    if (err != 0) {
      last_error_ = std::strerror(err);
      return TryNextAddress();
    }
    session_ = libssh2_session_init_ex(nullptr, nullptr, nullptr, this);
    if (!session_) return Fail(Error{"libssh2_session_init failed", ENOMEM});
    libssh2_session_set_blocking(session_, 0);
    // libssh2 1.10 prefers ECDSA host keys; offer first what known_hosts holds for this host,
    // or verification fails against a server that also has the key type we know.
    std::vector<std::string> known =
        KnownHostKeyMethods(KnownHostsFiles(target_), target_.host, target_.port);
    const char** algs = nullptr;
    int n = libssh2_session_supported_algs(session_, LIBSSH2_METHOD_HOSTKEY, &algs);
    std::string pref;
    for (const std::string& m : known) {
      for (int i = 0; i < n; ++i)
        if (m == algs[i]) pref += (pref.empty() ? "" : ",") + m;
    }
    for (int i = 0; i < n; ++i) {
      std::string m = algs[i];
      if (std::find(known.begin(), known.end(), m) == known.end())
        pref += (pref.empty() ? "" : ",") + m;
    }
    if (algs) libssh2_free(session_, algs);
    if (!pref.empty()) libssh2_session_method_pref(session_, LIBSSH2_METHOD_HOSTKEY, pref.c_str());
    // libssh2 1.10 has no AES-GCM or chacha20: aes128-ctr with hmac-sha2-256 is its fastest.
    const char* ciphers = "aes128-ctr,aes192-ctr,aes256-ctr";
    const char* macs = "hmac-sha2-256,hmac-sha2-512,hmac-sha1";
    libssh2_session_method_pref(session_, LIBSSH2_METHOD_CRYPT_CS, ciphers);
    libssh2_session_method_pref(session_, LIBSSH2_METHOD_CRYPT_SC, ciphers);
    libssh2_session_method_pref(session_, LIBSSH2_METHOD_MAC_CS, macs);
    libssh2_session_method_pref(session_, LIBSSH2_METHOD_MAC_SC, macs);
    state_ = State::kHandshake;
  }
  if (status < 0 && state_ == State::kReady) {
    return Fail(Error{fmt::format("connection to {}: {}", target_.Describe(),
                                  uv_strerror(status)),
                      ECONNRESET});
  }
  Advance();
}

void SshSession::Advance() {
  if (state_ == State::kHandshake && !Handshake()) return;
  if (state_ == State::kAuth && !Authenticate()) return;
  if (state_ == State::kReady) Pump();
}

LIBSSH2_RECV_FUNC(SshSession::Receive) {
  ssize_t n = ::recv(socket, buffer, length, flags);
  if (n < 0) return -errno;  // What libssh2's own reader returns.
  if (n > 0) {
    auto* self = static_cast<SshSession*>(*abstract);
    self->last_heard_ms_ = uv_now(self->loop_);
  }
  return n;
}

void SshSession::ScheduleKeepalive() {
  last_heard_ms_ = last_tick_ms_ = uv_now(loop_);
  if (target_.keepalive_s <= 0) return;
  auto deadline_ms = static_cast<uint64_t>(target_.keepalive_s) *
                     static_cast<uint64_t>(target_.keepalive_count_max) * 1000;
  // Data the peer does not acknowledge for that long ends the connection too.
  unsigned user_timeout = static_cast<unsigned>(deadline_ms);
  ::setsockopt(fd_, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  libssh2_session_callback_set(session_, LIBSSH2_CALLBACK_RECV,
                               reinterpret_cast<void*>(&SshSession::Receive));
  libssh2_keepalive_config(session_, 1, static_cast<unsigned>(target_.keepalive_s));
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<SshSession*>(t->data);
        if (!self || self->state_ != State::kReady) return;
        uint64_t now = uv_now(self->loop_);
        uint64_t interval = static_cast<uint64_t>(self->target_.keepalive_s) * 1000;
        // This process was held up (a long comparison on the loop thread): what the peer sent
        // meanwhile waits unread in the socket, and timers run before reads. Its silence is
        // counted from when this side could listen again.
        if (now - std::exchange(self->last_tick_ms_, now) > 2 * interval) self->last_heard_ms_ = now;
        uint64_t silent = now - self->last_heard_ms_;
        uint64_t limit = interval * static_cast<uint64_t>(self->target_.keepalive_count_max);
        if (silent >= limit) {
          return self->Fail(Error{fmt::format("{} has not answered for {} s (ServerAliveInterval "
                                              "{} x ServerAliveCountMax {}): connection dropped",
                                              self->target_.Describe(), silent / 1000,
                                              self->target_.keepalive_s,
                                              self->target_.keepalive_count_max),
                                  ETIMEDOUT});
        }
        int next = 0;
        libssh2_keepalive_send(self->session_, &next);
        self->Pump();
      },
      static_cast<uint64_t>(target_.keepalive_s) * 1000,
      static_cast<uint64_t>(target_.keepalive_s) * 1000);
}

void SshSession::Pump() {
  if (state_ != State::kReady || pumping_) return;
  auto self = shared_from_this();
  pumping_ = true;
  for (bool progress = true; progress && state_ == State::kReady;) {
    progress = false;
    std::vector<SshChannel*> channels(channels_.begin(), channels_.end());
    for (SshChannel* c : channels) {
      if (channels_.contains(c) && c->Pump()) progress = true;
    }
  }
  pumping_ = false;
  if (state_ == State::kReady) WaitSocket();
}

void SshSession::WaitSocket() {
  if (!poll_ || !session_) return;
  int dirs = libssh2_session_block_directions(session_);
  int events = UV_READABLE;  // Always: the peer may send at any time once we are up.
  if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) events |= UV_WRITABLE;
  for (SshChannel* c : channels_)
    if (c->buffered() > 0 && c->state_ == SshChannel::State::kOpen) events |= UV_WRITABLE;
  uv_poll_start(poll_.get(), events, [](uv_poll_t* p, int status, int ev) {
    static_cast<SshSession*>(p->data)->OnSocketEvent(status, ev);
  });
}

void SshSession::Fail(Error error) {
  if (state_ == State::kFailed) return;
  auto self = shared_from_this();
  state_ = State::kFailed;
  uv_timer_stop(timer_.get());
  last_error_ = error.message;
  LogDebug("Transport", "{}: session failed: {}", target_.Describe(), error.message);
  auto& pool = Pool();
  if (auto it = pool.find(target_.Key()); it != pool.end()) pool.erase(it);
  // Channels drop their handles first; freeing the session frees them.
  std::set<SshChannel*> channels = std::move(channels_);
  channels_.clear();
  for (SshChannel* c : channels) c->channel_ = nullptr;
  CloseSocket();
  for (SshChannel* c : channels) c->Fail(error);
}

}  // namespace syncd::transport
