// InotifyWatcher against real inotify on a temporary directory.
#include "syncd/watcher.h"
#include "tests/temp_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

namespace syncd {
namespace {

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    uv_loop_init(&loop_);
  }
  void TearDown() override {
    watcher_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);  // Close callbacks.
    uv_loop_close(&loop_);
  }
  void Start() {
    watcher_ = std::make_unique<InotifyWatcher>(&loop_, root_, Filter{}, InotifyMode::kCloseWrite);
    ASSERT_TRUE(watcher_->Start([this](const FsEvent& e) { reported_.insert(e.path); }).has_value());
  }

  testing::TempDir tmp_{"watcher-test"};
  std::string root_;
  uv_loop_t loop_;
  std::unique_ptr<InotifyWatcher> watcher_;
  std::set<std::string> reported_;
};

// A tree made level by level as fast as the watcher sets its watches: each level's own event
// arrives after a walk from above has already listed it. Each directory is listed once; a
// walk per event made a tree of depth d cost d*d/2 listings (and minutes of a stalled loop).
TEST_F(WatcherTest, ADeepTreeMadeWhileWatchedIsListedOnceNotOncePerLevel) {
  Start();
  constexpr int kDepth = 400;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    int dir = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < kDepth; ++i) {
      ::mkdirat(dir, "d", 0755);
      int next = ::openat(dir, "d", O_RDONLY | O_DIRECTORY);
      ::close(dir);
      dir = next;
    }
    ::close(dir);
    done = true;
  });
  while (!done) watcher_->ReadQueued();
  writer.join();
  watcher_->ReadQueued();
  EXPECT_EQ(watcher_->watch_count(), static_cast<size_t>(kDepth + 1));
  EXPECT_EQ(watcher_->dirs_listed(), static_cast<uint64_t>(kDepth + 1));
  // Every level was reported, down to the deepest.
  std::string deepest = "d";
  for (int i = 1; i < kDepth; ++i) deepest += "/d";
  EXPECT_TRUE(reported_.count(deepest)) << reported_.size() << " paths reported";
}

// The directories there at startup are listed once each, and a new tree once, whichever of its
// events comes first.
TEST_F(WatcherTest, EachDirectoryIsListedOnce) {
  std::filesystem::create_directories(root_ + "/a/b");
  Start();
  EXPECT_EQ(watcher_->dirs_listed(), 3u);
  std::filesystem::create_directories(root_ + "/a/b/c/e");
  watcher_->ReadQueued();
  EXPECT_EQ(watcher_->dirs_listed(), 5u);
  EXPECT_TRUE(reported_.count("a/b/c/e"));
}

}  // namespace
}  // namespace syncd
