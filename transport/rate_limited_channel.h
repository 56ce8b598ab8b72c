// RateLimitedChannel carries rsync's --bwlimit: it holds what the client writes and hands it
// to the channel beneath at no more than a set number of bytes per second (averaged over
// short bursts), as rsync's sender paces its writes. Reads are not limited, as rsync's are
// not.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "syncd/uv_handle.h"
#include "transport/channel.h"

namespace syncd::transport {

class RateLimitedChannel : public Channel {
 public:
  RateLimitedChannel(uv_loop_t* loop, std::unique_ptr<Channel> inner, uint64_t bytes_per_second);
  ~RateLimitedChannel() override;

  void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) override;
  void Write(std::string bytes) override;
  size_t buffered() const override { return held_.size() - held_from_ + inner_->buffered(); }
  void Close() override;

 private:
  // Hands over what the budget allows, and sets the timer for the rest.
  void Release();
  static constexpr size_t kLowWater = 64 << 10;

  uv_loop_t* loop_;
  std::unique_ptr<Channel> inner_;
  uint64_t rate_;
  double budget_ = 0;        // Bytes that may go now.
  uint64_t last_ms_ = 0;     // When the budget was last topped up.
  std::string held_;
  size_t held_from_ = 0;     // held_[0, held_from_) is gone already.
  Callbacks callbacks_;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace syncd::transport
