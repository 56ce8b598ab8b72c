// LayerSync, continued: the processes of spawn(), run on the loop (uv_spawn), their output
// logged line by line, their exit handed to collect().
#include "lua/layer_sync.h"

#include <fmt/format.h>

#include "syncd/log.h"

namespace syncd::lua {

int LayerSync::Spawn(const std::string& binary, const std::vector<std::string>& args,
                     const std::string* input) {
  auto child = std::make_unique<Child>();
  child->owner = this;
  child->name = binary.substr(binary.rfind('/') + 1);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  LogDebug("Exec", "{} {}", binary, fmt::join(args, " "));
  auto pipe = [&](UvHandle<uv_pipe_t>& p) {
    auto* h = new uv_pipe_t;
    uv_pipe_init(loop_, h, 0);
    h->data = child.get();
    p = UvHandle<uv_pipe_t>(h);
  };
  uv_stdio_container_t stdio[3];
  if (input) {
    pipe(child->in);
    child->input = *input;
    stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
    stdio[0].data.stream = child->in.stream();
  } else {
    stdio[0].flags = UV_IGNORE;
  }
  pipe(child->out);
  pipe(child->err);
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = child->out.stream();
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = child->err.stream();
  uv_process_options_t options{};
  options.file = binary.c_str();
  options.args = argv.data();
  options.stdio = stdio;
  options.stdio_count = 3;
  options.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
    auto* c = static_cast<Child*>(p->data);
    // A process a signal ended did not succeed (lsyncd 2.2.3 took it for exit code 0).
    int code = signal != 0 ? 128 + signal : static_cast<int>(status);
    c->exited = true;
    c->owner->OnChildExit(c->pid, code);
  };
  auto* process = new uv_process_t;
  process->data = child.get();
  int rc = uv_spawn(loop_, process, &options);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(process), [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    LogError("{}: cannot run {}: {}", config_.name, binary, uv_strerror(rc));
    // As a failed exec in lsyncd's child: exit code 255, collected on the next turn.
    int pid = next_pseudo_pid_--;
    due_exits_.emplace_back(pid, 255);
    return pid;
  }
  child->process = UvHandle<uv_process_t>(process);
  child->pid = process->pid;
  auto on_read = [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Child*>(s->data);
    int which = c->out && s == c->out.stream() ? 0 : 1;
    if (n > 0) {
      std::string& text = c->pending[which];
      text.append(buf->base, static_cast<size_t>(n));
      size_t nl;
      while ((nl = text.find('\n')) != std::string::npos) {
        LogInfo("{}: {}[{}]: {}", c->owner->config_.name, c->name, c->pid, text.substr(0, nl));
        text.erase(0, nl + 1);
      }
    }
    delete[] buf->base;
    if (n < 0) {
      if (!c->pending[which].empty())
        LogInfo("{}: {}[{}]: {}", c->owner->config_.name, c->name, c->pid, c->pending[which]);
      c->pending[which].clear();
      uv_read_stop(s);
      if (--c->open == 0 && c->exited) c->owner->ChildDone(c);
    }
  };
  auto alloc = [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = new char[suggested];
    buf->len = suggested;
  };
  for (UvHandle<uv_pipe_t>* p : {&child->out, &child->err}) {
    ++child->open;
    uv_read_start(p->stream(), alloc, on_read);
  }
  if (input) {
    uv_buf_t buf = uv_buf_init(child->input.data(), static_cast<unsigned>(child->input.size()));
    child->write.data = child.get();
    uv_write(&child->write, child->in.stream(), &buf, 1, [](uv_write_t* w, int) {
      static_cast<Child*>(w->data)->in.Reset();  // The end of its input.
    });
  }
  int pid = child->pid;
  children_[pid] = std::move(child);
  return pid;
}

void LayerSync::ChildDone(Child* child) {
  // Its output is all read and it exited: nothing refers to it any more.
  children_.erase(child->pid);
}

void LayerSync::OnChildExit(int pid, int code) {
  lua_State* L = host_->state();
  if (auto it = children_.find(pid); it != children_.end() && it->second->open == 0)
    children_.erase(it);
  ++finished_;
  if (code != 0) {
    ++failures_;
    last_failure_ = fmt::format("process {} exited with {}", pid, code);
  } else {
    last_success_ = std::chrono::system_clock::now();
  }
  lua_pushinteger(L, pid);
  lua_pushinteger(L, code);
  if (!CallRuntime("collect", 2, 1)) return;
  bool die = lua_type(L, -1) == LUA_TSTRING && std::string_view(lua_tostring(L, -1)) == "die";
  lua_pop(L, 1);
  if (die)
    return Fail(fmt::format("{}: a process exited with {} and collect() said 'die'; the sync stops",
                            config_.name, code));
  if (draining_) {
    // What waited behind this process may go now.
    lua_pushnumber(L, Now());
    if (CallRuntime("invoke", 1)) CheckDrained();
    return;
  }
  Pump();
}

}  // namespace syncd::lua
