#include "transport/rate_limited_channel.h"

#include <algorithm>

namespace syncd::transport {

RateLimitedChannel::RateLimitedChannel(uv_loop_t* loop, std::unique_ptr<Channel> inner,
                                       uint64_t bytes_per_second)
    : loop_(loop), inner_(std::move(inner)), rate_(std::max<uint64_t>(bytes_per_second, 512)) {
  timer_ = MakeTimer(loop_, this);
}

RateLimitedChannel::~RateLimitedChannel() = default;

void RateLimitedChannel::Open(Callbacks callbacks, std::function<void(Result<void>)> opened) {
  callbacks_ = std::move(callbacks);
  Callbacks inner = callbacks_;
  // The client hears "drained" when this channel's own hold is low, not the inner one's.
  inner.on_drain = [this] {
    if (held_.size() - held_from_ < kLowWater && callbacks_.on_drain) callbacks_.on_drain();
  };
  last_ms_ = uv_now(loop_);
  budget_ = 0;
  inner_->Open(std::move(inner), std::move(opened));
}

void RateLimitedChannel::Write(std::string bytes) {
  if (held_from_ == held_.size() || held_from_ > (1u << 20)) {
    held_.erase(0, held_from_);
    held_from_ = 0;
  }
  held_ += bytes;
  Release();
}

void RateLimitedChannel::Release() {
  uint64_t now = uv_now(loop_);
  // A burst of at most a tenth of a second's worth builds up while idle.
  budget_ = std::min(budget_ + static_cast<double>(rate_) * static_cast<double>(now - last_ms_) / 1000.0,
                     static_cast<double>(rate_) / 10.0);
  last_ms_ = now;
  size_t pending = held_.size() - held_from_;
  size_t n = std::min(pending, static_cast<size_t>(std::max(budget_, 0.0)));
  if (n > 0) {
    budget_ -= static_cast<double>(n);
    inner_->Write(held_.substr(held_from_, n));
    held_from_ += n;
  }
  pending = held_.size() - held_from_;
  if (pending == 0) {
    held_.clear();
    held_from_ = 0;
    uv_timer_stop(timer_.get());
    return;
  }
  if (!uv_is_active(timer_.handle())) {
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<RateLimitedChannel*>(t->data);
          size_t before = self->held_.size() - self->held_from_;
          self->Release();
          size_t after = self->held_.size() - self->held_from_;
          if (before >= kLowWater && after < kLowWater && self->callbacks_.on_drain)
            self->callbacks_.on_drain();
        },
        10, 10);
  }
}

void RateLimitedChannel::Close() {
  uv_timer_stop(timer_.get());
  held_.clear();
  held_from_ = 0;
  inner_->Close();
}

}  // namespace syncd::transport
