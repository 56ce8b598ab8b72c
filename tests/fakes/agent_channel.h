// AgentChannel: a Channel whose far end is an Agent in this process. Replies arrive on the
// loop in a later turn, as from a real carrier. `tamper` sees every frame the client sends,
// before the agent does, and may change it: a link that damages data in flight. `edit` sees
// the agent's answers to each write, as bytes, and may change them (the client's fuzzer). An
// agent that ended the session takes no more frames, as a real one that exited.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "transport/agent.h"
#include "transport/channel.h"
#include "transport/codec.h"

namespace syncd::testing {

class AgentChannel : public transport::Channel {
 public:
  using Tamper = std::function<void(transport::MsgType, std::string& payload)>;
  using Edit = std::function<void(std::string& answers)>;
  AgentChannel(uv_loop_t* loop, Tamper tamper, Edit edit = {})
      : loop_(loop), tamper_(std::move(tamper)), edit_(std::move(edit)) {
    uv_timer_init(loop_, timer_);
    timer_->data = this;
  }
  ~AgentChannel() override {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }

  void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) override {
    callbacks_ = std::move(callbacks);
    opened({});
  }
  void Write(std::string bytes) override {
    in_.Feed(bytes);
    agent_.NewInput();
    while (alive_) {
      auto f = in_.Next();
      if (!f || !*f) break;
      transport::MsgType type = (*f)->type;
      std::string payload((*f)->payload);
      if (tamper_) tamper_(type, payload);
      alive_ = agent_.Handle(type, payload);
    }
    std::string answers = agent_.TakeOutput();
    if (edit_) edit_(answers);
    out_ += answers;
    uv_timer_start(timer_, &AgentChannel::Deliver, 0, 0);
  }
  size_t buffered() const override { return 0; }
  void Close() override { callbacks_ = {}; }

 private:
  static void Deliver(uv_timer_t* t) {
    auto* self = static_cast<AgentChannel*>(t->data);
    std::string out = std::move(self->out_);
    self->out_.clear();
    if (!out.empty() && self->callbacks_.on_data) self->callbacks_.on_data(out);
  }

  uv_loop_t* loop_;
  Tamper tamper_;
  Edit edit_;
  bool alive_ = true;
  Callbacks callbacks_;
  transport::Agent agent_;
  transport::FrameReader in_;
  std::string out_;
  uv_timer_t* timer_ = new uv_timer_t;
};

}  // namespace syncd::testing
