// ControlServer listens on the control socket of a running syncd (see control.h for the
// client, `syncd flush`): one request line per connection, one answer, then the connection
// closes. What a request means is the owner's business; this class only carries it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "syncd/error.h"
#include "syncd/uv_handle.h"

namespace syncd {

class ControlServer {
 public:
  // A request line (without its newline) from the connection `id`, to be answered by
  // Answer(id, ...) now or later.
  using Handler = std::function<void(uint64_t id, const std::string& request)>;
  // `loop` must outlive the server. Requests arrive on the loop thread.
  ControlServer(uv_loop_t* loop, std::string path, Handler handler);
  // Closes the socket and every connection not answered yet, and removes the socket file.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens (mode 0600), replacing a socket file left by a syncd that did not stop
  // cleanly.
  Result<void> Listen();
  // Writes `text` and a newline to connection `id`, then closes it. Nothing happens if the
  // connection is gone.
  void Answer(uint64_t id, const std::string& text);

 private:
  struct Client;
  void OnConnection();
  void OnRead(Client& client, ssize_t n, const uv_buf_t* buf);

  uv_loop_t* loop_;
  std::string path_;
  Handler handler_;
  UvHandle<uv_pipe_t> server_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Client> clients_;
};

}  // namespace syncd
