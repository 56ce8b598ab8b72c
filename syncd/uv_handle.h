// UvHandle<T> owns one libuv handle (uv_timer_t, uv_pipe_t, uv_poll_t, ...). libuv frees
// nothing itself and a handle's memory must live until its close callback has run, so the
// owner closes it on destruction (or Reset) and the close callback deletes it: no hand-written
// uv_close lambdas, and no handle outliving its owner unclosed.
#pragma once

#include <uv.h>

#include <utility>

namespace syncd {

template <typename T>
class UvHandle {
 public:
  UvHandle() = default;
  // Takes a handle made with `new` and initialized on a loop.
  explicit UvHandle(T* handle) : handle_(handle) {}
  UvHandle(UvHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { Reset(); }

  T* get() const { return handle_; }
  T* operator->() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(handle_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(handle_); }

  // Closes the handle (its callbacks stop at once) and frees it once libuv is done with it.
  void Reset() {
    if (!handle_) return;
    uv_close(handle(), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
    handle_ = nullptr;
  }

 private:
  T* handle_ = nullptr;
};

// A timer on `loop` whose callbacks see `data` in handle->data.
inline UvHandle<uv_timer_t> MakeTimer(uv_loop_t* loop, void* data) {
  auto* t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = data;
  return UvHandle<uv_timer_t>(t);
}

}  // namespace syncd
