#include "transport/rate_limited_channel.h"

#include <gtest/gtest.h>
#include <uv.h>

namespace syncd::transport {
namespace {

// Records what reaches it; opens at once.
class RecordingChannel : public Channel {
 public:
  explicit RecordingChannel(std::string* got) : got_(got) {}
  void Open(Callbacks, std::function<void(Result<void>)> opened) override { opened({}); }
  void Write(std::string bytes) override { *got_ += bytes; }
  size_t buffered() const override { return 0; }
  void Close() override {}

 private:
  std::string* got_;
};

TEST(RateLimitedChannelTest, HandsBytesOnNoFasterThanTheRate) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string got;
  {
    constexpr uint64_t kRate = 50000;  // Bytes per second.
    RateLimitedChannel channel(&loop, std::make_unique<RecordingChannel>(&got), kRate);
    int drains = 0;
    Channel::Callbacks callbacks;
    callbacks.on_drain = [&] { ++drains; };
    bool opened = false;
    channel.Open(callbacks, [&](Result<void> r) { opened = r.has_value(); });
    ASSERT_TRUE(opened);
    uv_update_time(&loop);
    uint64_t start = uv_now(&loop);
    channel.Write(std::string(100000, 'x'));
    EXPECT_LT(got.size(), 100000u);  // Held, not passed through.
    EXPECT_EQ(channel.buffered(), 100000u - got.size());
    while (got.size() < 100000) uv_run(&loop, UV_RUN_ONCE);
    uint64_t elapsed_ms = uv_now(&loop) - start;
    // A lower bound only (a slow machine takes longer, never shorter): 100,000 bytes at
    // 50,000 per second, less the tenth of a second's burst, take at least 1.9 s.
    EXPECT_GE(elapsed_ms, 1900u);
    EXPECT_EQ(got, std::string(100000, 'x'));
    EXPECT_EQ(channel.buffered(), 0u);
    EXPECT_GE(drains, 1);  // The client hears when to feed more.
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // The timer's close callback.
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace syncd::transport
