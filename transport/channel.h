// Channel is a byte stream to an agent: an SSH exec channel, a pipe to a local agent process,
// or (in tests) memory. Calls and callbacks happen on the loop thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "syncd/error.h"

namespace syncd::transport {

class Channel {
 public:
  struct Callbacks {
    std::function<void(std::string_view)> on_data;
    // The stream ended or broke; no callback follows.
    std::function<void(const Error&)> on_closed;
    // Buffered output dropped below the low-water mark.
    std::function<void()> on_drain;
  };
  virtual ~Channel() = default;

  // Starts the stream; `opened` reports success or why it could not start.
  virtual void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) = 0;
  // Queues bytes; they go out in order.
  virtual void Write(std::string bytes) = 0;
  // Bytes queued and not yet handed to the kernel or the SSH library.
  virtual size_t buffered() const = 0;
  // Ends the stream without further callbacks.
  virtual void Close() = 0;
};

}  // namespace syncd::transport
