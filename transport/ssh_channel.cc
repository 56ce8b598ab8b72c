#include "transport/ssh_channel.h"

#include <libssh2.h>

#include "syncd/log.h"
#include "transport/ssh_session.h"

namespace syncd::transport {
namespace {

constexpr size_t kLowWater = 256 * 1024;

LIBSSH2_CHANNEL* Ch(void* p) { return static_cast<LIBSSH2_CHANNEL*>(p); }

std::string LastError(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  if (s) libssh2_session_last_error(s, &msg, nullptr, 0);
  return msg && *msg ? msg : "unknown libssh2 error";
}

}  // namespace

SshChannel::SshChannel(uv_loop_t* loop, SshTarget target)
    : loop_(loop), target_(std::move(target)) {}

SshChannel::~SshChannel() {
  life_.Revoke();
  Close();
}

void SshChannel::Open(Callbacks callbacks, std::function<void(Result<void>)> opened) {
  Close();
  callbacks_ = std::move(callbacks);
  opened_ = std::move(opened);
  out_.clear();
  out_pos_ = 0;
  stderr_.clear();
  state_ = State::kWaitingSession;
  session_ = SshSession::Get(loop_, target_);
  session_->Attach(this);
}

void SshChannel::SessionReady() {
  if (state_ == State::kWaitingSession) state_ = State::kOpening;
}

void SshChannel::Write(std::string bytes) {
  if (state_ != State::kOpen) return;
  if (out_pos_ > 0 && out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ >= kLowWater && out_pos_ * 2 >= out_.size()) {
    out_.erase(0, out_pos_);  // Keep the buffer to what is unsent, not all that ever was.
    out_pos_ = 0;
  }
  if (out_.empty()) out_ = std::move(bytes);
  else out_ += bytes;
  if (session_) session_->Pump();
}

bool SshChannel::Pump() {
  if (state_ == State::kWaitingSession && session_ && session_->ready()) SessionReady();
  LIBSSH2_SESSION* s = session_ ? session_->session() : nullptr;
  if (!s) return false;
  LifeToken::Watch alive = life_.watch();
  bool progress = false;
  if (state_ == State::kOpening) {
    // A small window for what the agent sends back; our own sending is bounded by the peer's.
    channel_ = libssh2_channel_open_ex(s, "session", sizeof "session" - 1,
                                       LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                       LIBSSH2_CHANNEL_PACKET_DEFAULT, nullptr, 0);
    if (!channel_) {
      if (libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN) return false;
      char* msg = nullptr;
      libssh2_session_last_error(s, &msg, nullptr, 0);
      Fail(Error{std::string("open SSH channel: ") + (msg ? msg : "?"), ECONNRESET});
      return false;
    }
    state_ = State::kExec;
    progress = true;
  }
  if (state_ == State::kExec) {
    int rc = libssh2_channel_exec(Ch(channel_), target_.remote_command.c_str());
    if (rc == LIBSSH2_ERROR_EAGAIN) return progress;
    if (rc != 0) {
      Fail(Error{"run \"" + target_.remote_command + "\" on " + target_.Describe() + " refused",
                 ECONNRESET});
      return false;
    }
    state_ = State::kOpen;
    if (auto opened = std::move(opened_)) {
      opened({});
      if (!alive.alive() || state_ != State::kOpen) return true;
    }
    progress = true;
  }
  if (state_ != State::kOpen) return progress;
  // Writes: libssh2 takes at most one packet (about 32 KiB) per call; loop until EAGAIN.
  bool was_full = buffered() >= kLowWater;
  while (out_pos_ < out_.size()) {
    ssize_t n = libssh2_channel_write(Ch(channel_), out_.data() + out_pos_, out_.size() - out_pos_);
    if (n == LIBSSH2_ERROR_EAGAIN) break;
    if (n < 0) {
      Fail(Error{fmt::format("connection to {} lost while writing: {}", target_.Describe(),
                             LastError(s)),
                 ECONNRESET});
      return false;
    }
    out_pos_ += static_cast<size_t>(n);
    progress = true;
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  if (was_full && buffered() < kLowWater && callbacks_.on_drain) {
    callbacks_.on_drain();
    if (!alive.alive() || state_ != State::kOpen) return true;
  }
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = libssh2_channel_read(Ch(channel_), buf, sizeof buf);
    if (n == LIBSSH2_ERROR_EAGAIN) break;
    if (n < 0) {
      Fail(Error{fmt::format("connection to {} lost: {}", target_.Describe(), LastError(s)),
                 ECONNRESET});
      return false;
    }
    if (n == 0) {
      if (libssh2_channel_eof(Ch(channel_))) {
        CheckStderr();
        std::string why = stderr_.empty() ? "the agent ended the session" : stderr_;
        bool missing = why.find("not found") != std::string::npos;
        Fail(Error{fmt::format("{}: {}{}", target_.Describe(), why,
                               missing ? " (is syncd installed on the peer, in the PATH of a "
                                         "non-interactive ssh session?)"
                                       : ""),
                   ECONNRESET, missing});
        return false;
      }
      break;
    }
    progress = true;
    if (callbacks_.on_data) callbacks_.on_data(std::string_view(buf, static_cast<size_t>(n)));
    if (!alive.alive() || state_ != State::kOpen) return true;
  }
  CheckStderr();
  return progress;
}

void SshChannel::CheckStderr() {
  if (!channel_) return;
  char buf[4096];
  for (;;) {
    ssize_t n = libssh2_channel_read_stderr(Ch(channel_), buf, sizeof buf);
    if (n <= 0) break;
    std::string_view text(buf, static_cast<size_t>(n));
    stderr_.append(text);
    while (!stderr_.empty() && (stderr_.back() == '\n' || stderr_.back() == '\r')) stderr_.pop_back();
    if (stderr_.size() > 4096) stderr_.erase(0, stderr_.size() - 4096);
    LogWarn("{}: peer says: {}", target_.Describe(), text);
  }
}

void SshChannel::Fail(const Error& error) {
  if (state_ == State::kClosed || state_ == State::kIdle) return;
  auto on_closed = std::move(callbacks_.on_closed);
  auto opened = std::move(opened_);
  Close();
  if (opened)
    opened(std::unexpected(error));
  else if (on_closed)
    on_closed(error);
}

void SshChannel::Close() {
  if (channel_) {
    // Best effort and non-blocking; the session reclaims the channel when it is freed.
    libssh2_channel_close(Ch(channel_));
    libssh2_channel_free(Ch(channel_));
    channel_ = nullptr;
  }
  if (session_) {
    session_->Detach(this);
    session_.reset();
  }
  state_ = State::kClosed;
  callbacks_ = {};
  opened_ = nullptr;
  out_.clear();
  out_pos_ = 0;
}

}  // namespace syncd::transport
