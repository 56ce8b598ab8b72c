// PipeChannel runs a local agent (`syncd --server`) as a child process and talks to it over
// its stdin and stdout. It carries local targets (default.rsync to a directory,
// default.direct) and the quick-start demo, and, running the OpenSSH client instead, the
// external SSH carrier.
#pragma once

#include <uv.h>

#include <string>
#include <vector>

#include "transport/channel.h"

namespace syncd::transport {

class PipeChannel : public Channel {
 public:
  // `argv` is the agent command line, e.g. {"/usr/bin/syncd", "--server"}.
  PipeChannel(uv_loop_t* loop, std::vector<std::string> argv);
  // A command that reaches the agent through another program (`ssh HOST syncd --server`):
  // its stderr is read, logged (category Transport) and its last line explains an exit,
  // named `name`; an exit that says the host key or the user key was refused is fatal.
  PipeChannel(uv_loop_t* loop, std::vector<std::string> argv, std::string name);
  ~PipeChannel() override;

  void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) override;
  void Write(std::string bytes) override;
  size_t buffered() const override { return buffered_; }
  void Close() override;

 private:
  struct Handles;
  void Closed(const Error& error);

  uv_loop_t* loop_;
  std::vector<std::string> argv_;
  std::string name_ = "local agent";
  bool capture_stderr_ = false;
  Callbacks callbacks_;
  Handles* handles_ = nullptr;  // Freed by the last close callback.
  size_t buffered_ = 0;
  bool closed_ = true;
};

}  // namespace syncd::transport
