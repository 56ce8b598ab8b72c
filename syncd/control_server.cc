#include "syncd/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include "syncd/log.h"

namespace syncd {

// A request longer than this is not one of ours: it is answered as unknown.
constexpr size_t kMaxRequest = 256;

struct ControlServer::Client {
  ControlServer* server = nullptr;
  uint64_t id = 0;
  UvHandle<uv_pipe_t> pipe;
  std::string request;
  bool asked = false;  // The request line has been read.
  char scratch[512];
};

ControlServer::ControlServer(uv_loop_t* loop, std::string path, Handler handler)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  clients_.clear();
  if (server_) {
    server_.Reset();
    ::unlink(path_.c_str());
  }
}

Result<void> ControlServer::Listen() {
  std::string dir = path_.substr(0, path_.rfind('/'));
  ::mkdir(dir.c_str(), 0755);
  ::unlink(path_.c_str());  // Left by a syncd that did not stop cleanly.
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = this;
  server_ = UvHandle<uv_pipe_t>(pipe);
  int r = uv_pipe_bind(pipe, path_.c_str());
  if (r == 0) {
    ::chmod(path_.c_str(), 0600);
    r = uv_listen(server_.stream(), 8, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<ControlServer*>(s->data)->OnConnection();
    });
  }
  if (r != 0) {
    server_.Reset();
    return Fail(std::string("control socket ") + path_ + ": " + uv_strerror(r));
  }
  return {};
}

void ControlServer::OnConnection() {
  uint64_t id = next_id_++;
  Client& c = clients_[id];
  c.server = this;
  c.id = id;
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = &c;
  c.pipe = UvHandle<uv_pipe_t>(pipe);
  if (uv_accept(server_.stream(), c.pipe.stream()) != 0) {
    clients_.erase(id);
    return;
  }
  uv_read_start(
      c.pipe.stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* client = static_cast<Client*>(h->data);
        *buf = uv_buf_init(client->scratch, sizeof client->scratch);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* client = static_cast<Client*>(s->data);
        client->server->OnRead(*client, n, buf);
      });
}

void ControlServer::OnRead(Client& c, ssize_t n, const uv_buf_t* buf) {
  if (n < 0) {  // Gone: before asking, or while waiting for the answer.
    clients_.erase(c.id);
    return;
  }
  if (c.asked) return;  // Anything after the request line is ignored.
  c.request.append(buf->base, static_cast<size_t>(n));
  size_t line = c.request.find('\n');
  if (line == std::string::npos && c.request.size() < kMaxRequest) return;
  c.asked = true;
  // Keep reading: a client that hangs up while waiting is noticed and forgotten.
  std::string request = c.request.substr(0, line);
  handler_(c.id, request);
}

void ControlServer::Answer(uint64_t id, const std::string& text) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  struct Writing {
    uv_write_t req;
    std::string text;
    UvHandle<uv_pipe_t> pipe;  // Closed once the answer is written.
  };
  auto* w = new Writing{{}, text + "\n", std::move(it->second.pipe)};
  clients_.erase(it);
  uv_read_stop(w->pipe.stream());
  uv_buf_t out = uv_buf_init(w->text.data(), static_cast<unsigned>(w->text.size()));
  w->req.data = w;
  if (uv_write(&w->req, w->pipe.stream(), &out, 1,
               [](uv_write_t* req, int) { delete static_cast<Writing*>(req->data); }) != 0)
    delete w;
}

}  // namespace syncd
