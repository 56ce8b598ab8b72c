#include "syncd/loop_monitor.h"

#include "syncd/log.h"

namespace syncd {

void LoopMonitor::Enable(uv_loop_t* loop) { uv_loop_configure(loop, UV_METRICS_IDLE_TIME); }

LoopMonitor::LoopMonitor(uv_loop_t* loop, std::chrono::milliseconds warn_after)
    : loop_(loop), warn_after_ns_(static_cast<uint64_t>(warn_after.count()) * 1000000) {
  auto* prepare = new uv_prepare_t;
  uv_prepare_init(loop_, prepare);
  prepare->data = this;
  prepare_ = UvHandle<uv_prepare_t>(prepare);
  // Not a reason for the loop to go on running.
  uv_unref(prepare_.handle());
  uv_prepare_start(prepare, &LoopMonitor::OnPrepare);
  last_now_ns_ = uv_hrtime();
  last_idle_ns_ = uv_metrics_idle_time(loop_);
}


void LoopMonitor::OnPrepare(uv_prepare_t* handle) noexcept {
  // Runs just before the loop waits for events: what passed since the previous wait, less the
  // time spent waiting, is one turn's work.
  auto* self = static_cast<LoopMonitor*>(handle->data);
  uint64_t now = uv_hrtime();
  uint64_t idle = uv_metrics_idle_time(self->loop_);
  uint64_t elapsed = now - self->last_now_ns_;
  uint64_t waited = idle - self->last_idle_ns_;
  uint64_t busy = elapsed > waited ? elapsed - waited : 0;
  self->last_now_ns_ = now;
  self->last_idle_ns_ = idle;
  if (busy >= self->warn_after_ns_)
    LogWarn("the event loop ran {:.1f} s without a pause: signals, status requests and the "
            "watchdog waited meanwhile", static_cast<double>(busy) / 1e9);
  else if (busy >= 100000000)
    LogDebug("Loop", "one turn of the event loop took {} ms", busy / 1000000);
}

}  // namespace syncd
