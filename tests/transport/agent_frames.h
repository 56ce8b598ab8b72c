// Helpers for tests that feed frames to an Agent directly.
#pragma once

#include <string>
#include <string_view>

#include "transport/agent.h"
#include "transport/codec.h"

namespace syncd::transport {

// Feeds one encoded frame to `agent` as one read of input, as RunAgent does once the frame is
// complete.
inline bool HandleFrame(Agent& agent, const std::string& frame) {
  agent.NewInput();
  return agent.Handle(static_cast<MsgType>(frame[4]), std::string_view(frame).substr(5));
}

// The type of the last reply the agent has queued (and takes them all).
inline MsgType LastReplyType(Agent& agent) {
  FrameReader out;
  out.Feed(agent.TakeOutput());
  MsgType last{};
  while (auto f = out.Next()) {
    if (!*f) break;
    last = (*f)->type;
  }
  return last;
}

}  // namespace syncd::transport
