// PipeChannel runs a local agent (`syncd --server`) as a child process and talks to it over
// its stdin and stdout. It carries local targets (default.rsync to a directory,
// default.direct) and the quick-start demo.
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
  Callbacks callbacks_;
  Handles* handles_ = nullptr;  // Freed by the last close callback.
  size_t buffered_ = 0;
  bool closed_ = true;
};

}  // namespace syncd::transport
