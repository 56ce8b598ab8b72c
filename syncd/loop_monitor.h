// LoopMonitor measures how long the loop runs callbacks without going back to wait for events:
// the time during which signals, control requests, other syncs and the service manager's
// watchdog are not served. A turn longer than `warn_after` is logged at Warn.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>

#include "syncd/uv_handle.h"

namespace syncd {

class LoopMonitor {
 public:
  // The loop must have been configured with UV_METRICS_IDLE_TIME before it first ran (see
  // Enable) and must outlive the monitor.
  LoopMonitor(uv_loop_t* loop, std::chrono::milliseconds warn_after);
  LoopMonitor(const LoopMonitor&) = delete;
  LoopMonitor& operator=(const LoopMonitor&) = delete;

  // Makes `loop` account its idle time; call once, right after uv_loop_init.
  static void Enable(uv_loop_t* loop);

 private:
  static void OnPrepare(uv_prepare_t* handle) noexcept;

  uv_loop_t* loop_;
  UvHandle<uv_prepare_t> prepare_;
  uint64_t warn_after_ns_;
  uint64_t last_now_ns_ = 0, last_idle_ns_ = 0;
};

}  // namespace syncd
