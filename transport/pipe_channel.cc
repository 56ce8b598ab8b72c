#include "transport/pipe_channel.h"

#include <fmt/format.h>

#include <memory>
#include <optional>

#include "syncd/log.h"

namespace syncd::transport {
namespace {
constexpr size_t kLowWater = 256 * 1024;
}

// The libuv handles live on the heap until their close callbacks have run, which may be after
// the channel is gone; `owner` is cleared when the channel lets go of them.
struct PipeChannel::Handles {
  PipeChannel* owner = nullptr;
  uv_process_t process;
  uv_pipe_t in;   // The agent's stdin.
  uv_pipe_t out;  // The agent's stdout.
  uv_pipe_t err;  // Its stderr, when captured.
  int open_handles = 0;
  bool exited = false;
  // Captured stderr: an exit is reported once the process is gone and stderr is read out.
  bool capture = false;
  bool err_done = false;
  std::optional<Error> exit_error;
  std::string err_tail;  // The end of what it said.
  std::string err_line;  // A line not finished yet.

  void Report() {
    if (!owner || !exit_error || (capture && !err_done)) return;
    Error e = *exit_error;
    if (capture) {
      std::string said = err_tail.substr(0, err_tail.find_last_not_of("\r\n") + 1);
      std::string last = said.substr(said.rfind('\n') + 1);  // npos + 1 == 0: all of it.
      // ssh names an identity file it ignored (mode too open) lines before it gives up.
      if (size_t open = said.find(" are too open"); open != std::string::npos) {
        size_t start = said.rfind('\n', open);
        start = start == std::string::npos ? 0 : start + 1;
        e.message += ": " + said.substr(start, said.find('\n', open) - start) + ";";
      }
      if (!last.empty()) e.message += (e.message.ends_with(";") ? " " : ": ") + last;
      for (const char* refused : {"Host key verification failed", "Permission denied",
                                  "REMOTE HOST IDENTIFICATION HAS CHANGED"})
        if (err_tail.find(refused) != std::string::npos) e.fatal = true;
    }
    owner->Closed(e);
  }

  void CloseAll() {
    auto close = [this](uv_handle_t* h) {
      if (uv_is_closing(h)) return;
      uv_close(h, [](uv_handle_t* hh) {
        auto* self = static_cast<Handles*>(hh->data);
        if (--self->open_handles == 0) delete self;
      });
    };
    if (!exited) uv_process_kill(&process, SIGTERM);
    close(reinterpret_cast<uv_handle_t*>(&in));
    close(reinterpret_cast<uv_handle_t*>(&out));
    if (capture) close(reinterpret_cast<uv_handle_t*>(&err));
    close(reinterpret_cast<uv_handle_t*>(&process));
  }
};

PipeChannel::PipeChannel(uv_loop_t* loop, std::vector<std::string> argv)
    : loop_(loop), argv_(std::move(argv)) {}

PipeChannel::PipeChannel(uv_loop_t* loop, std::vector<std::string> argv, std::string name)
    : loop_(loop), argv_(std::move(argv)), name_(std::move(name)), capture_stderr_(true) {}

PipeChannel::~PipeChannel() { Close(); }

void PipeChannel::Open(Callbacks callbacks, std::function<void(Result<void>)> opened) {
  Close();
  callbacks_ = std::move(callbacks);
  auto* h = new Handles;
  h->owner = this;
  h->process.data = h->in.data = h->out.data = h->err.data = h;
  h->capture = capture_stderr_;
  uv_pipe_init(loop_, &h->in, 0);
  uv_pipe_init(loop_, &h->out, 0);
  h->open_handles = 2;
  if (h->capture) {
    uv_pipe_init(loop_, &h->err, 0);
    h->open_handles = 3;
  }

  std::vector<char*> args;
  for (std::string& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
  stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&h->in);
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&h->out);
  if (h->capture) {
    stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&h->err);
  } else {
    stdio[2].flags = UV_INHERIT_FD;  // The agent's complaints go to our log stream.
    stdio[2].data.fd = 2;
  }
  uv_process_options_t options{};
  options.file = args[0];
  options.args = args.data();
  options.stdio_count = 3;
  options.stdio = stdio;
  options.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
    auto* self = static_cast<Handles*>(p->data);
    self->exited = true;
    if (!self->owner) return;
    const std::string& name = self->owner->name_;
    self->exit_error = Error{signal ? fmt::format("{} killed by signal {}", name, signal)
                                    : fmt::format("{} exited with status {}", name, status),
                             ECONNRESET};
    self->Report();
  };
  int rc = uv_spawn(loop_, &h->process, &options);
  if (rc != 0) {
    h->exited = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->process), nullptr);
    h->CloseAll();
    return opened(Fail(fmt::format("start {}: {}", argv_[0], uv_strerror(rc)), -rc));
  }
  h->open_handles = h->capture ? 4 : 3;
  handles_ = h;
  closed_ = false;
  if (h->capture) {
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&h->err),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static thread_local char storage[4096];
          *buf = uv_buf_init(storage, sizeof storage);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<Handles*>(s->data);
          if (n < 0) {
            uv_read_stop(s);
            self->err_done = true;
            return self->Report();
          }
          std::string_view text(buf->base, static_cast<size_t>(n));
          self->err_tail.append(text);
          if (self->err_tail.size() > 4096) self->err_tail.erase(0, self->err_tail.size() - 4096);
          self->err_line.append(text);
          for (size_t nl; (nl = self->err_line.find('\n')) != std::string::npos;) {
            std::string line = self->err_line.substr(0, nl);
            self->err_line.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty() && self->owner)
              LogDebug("Transport", "{}: {}", self->owner->name_, line);
          }
        });
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&h->out),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char storage[256 * 1024];
        *buf = uv_buf_init(storage, sizeof storage);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Handles*>(s->data);
        if (!self->owner) return;
        if (n > 0) {
          if (self->owner->callbacks_.on_data)
            self->owner->callbacks_.on_data(std::string_view(buf->base, static_cast<size_t>(n)));
        } else if (n < 0) {
          if (self->capture && n == UV_EOF) {
            // The program is ending: its exit status and last words say why.
            uv_read_stop(s);
            return;
          }
          self->owner->Closed(Error{n == UV_EOF ? self->owner->name_ + " closed its output"
                                                : std::string("read from agent: ") +
                                                      uv_strerror(static_cast<int>(n)),
                                    ECONNRESET});
        }
      });
  opened({});
}

void PipeChannel::Write(std::string bytes) {
  if (closed_ || bytes.empty()) return;
  struct Req {
    uv_write_t req;
    std::string data;
    PipeChannel* owner;
    Handles* handles;
  };
  auto* r = new Req{{}, std::move(bytes), this, handles_};
  r->req.data = r;
  buffered_ += r->data.size();
  uv_buf_t buf = uv_buf_init(r->data.data(), static_cast<unsigned>(r->data.size()));
  int rc = uv_write(&r->req, reinterpret_cast<uv_stream_t*>(&handles_->in), &buf, 1,
                    [](uv_write_t* req, int status) {
                      std::unique_ptr<Req> done(static_cast<Req*>(req->data));
                      PipeChannel* owner = done->handles->owner;
                      if (!owner) return;
                      owner->buffered_ -= done->data.size();
                      if (status < 0) {
                        owner->Closed(Error{std::string("write to agent: ") + uv_strerror(status),
                                            ECONNRESET});
                        return;
                      }
                      if (owner->buffered_ < kLowWater && owner->callbacks_.on_drain)
                        owner->callbacks_.on_drain();
                    });
  if (rc != 0) {
    buffered_ -= r->data.size();
    delete r;
    Closed(Error{std::string("write to agent: ") + uv_strerror(rc), ECONNRESET});
  }
}

void PipeChannel::Closed(const Error& error) {
  if (closed_) return;
  auto on_closed = std::move(callbacks_.on_closed);
  Close();
  if (on_closed) on_closed(error);
}

void PipeChannel::Close() {
  closed_ = true;
  callbacks_ = {};
  buffered_ = 0;
  if (handles_) {
    handles_->owner = nullptr;
    handles_->CloseAll();
    handles_ = nullptr;
  }
}

}  // namespace syncd::transport
