// syncd under a service manager: a test listener on NOTIFY_SOCKET sees STATUS, then READY=1
// once the startup comparison is durable, then STOPPING=1 on SIGTERM, and the exit is 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

using ::testing::HasSubstr;

class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~NotifyListener() { ::close(fd_); }
  // Collects messages until one contains `what` (or 60 s pass); returns whether it came.
  bool WaitFor(const std::string& what) {
    return WaitUntil([&] {
      pollfd p{fd_, POLLIN, 0};
      while (::poll(&p, 1, 0) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) messages.emplace_back(buf, static_cast<size_t>(n));
      }
      for (const std::string& m : messages)
        if (m.find(what) != std::string::npos) return true;
      return false;
    });
  }
  size_t IndexOf(const std::string& what) const {
    for (size_t i = 0; i < messages.size(); ++i)
      if (messages[i].find(what) != std::string::npos) return i;
    return messages.size();
  }
  std::vector<std::string> messages;

 private:
  std::string path_;
  int fd_;
};

TEST(NotifyTest, ReadyStatusAndStoppingInOrder) {
  TempDir tmp("notify");
  MakeDirs(tmp / "src");
  WriteFile(tmp / "src/f", "x");
  WriteFile(tmp / "c.lua", "sync { default.rsync, source = '" + tmp / "src" + "', target = '" +
                               tmp / "dst" + "' }\n");
  NotifyListener listener(tmp / "notify.sock");
  Process syncd({SyncdBinary(), "-nodaemon", tmp / "c.lua"},
                {"NOTIFY_SOCKET=" + tmp / "notify.sock", "HOME=" + tmp.path()}, tmp / "log");
  ASSERT_TRUE(listener.WaitFor("READY=1")) << syncd.log();
  EXPECT_EQ(ReadFile(tmp / "dst/f"), "x") << "READY came before the startup copy was on the peer";
  syncd.Signal(SIGTERM);
  ASSERT_TRUE(listener.WaitFor("STOPPING=1")) << syncd.log();
  EXPECT_EQ(syncd.Wait(), 0);
  size_t status = listener.IndexOf("STATUS=comparing");
  size_t ready = listener.IndexOf("READY=1");
  size_t stopping = listener.IndexOf("STOPPING=1");
  EXPECT_LT(status, ready);
  EXPECT_LT(ready, stopping);
  EXPECT_THAT(listener.messages[ready], HasSubstr("STATUS=in sync"));
}

// readyWhen = "watching" reports READY once the watches are set, before the peer has anything
// (here a listener that accepts the connection and never says a word); stopTimeout bounds the
// stop that cannot reach it, and the exit status says that changes were left behind.
TEST(NotifyTest, ReadyWhenWatchingComesBeforeThePeerAndStopTimeoutBoundsTheStop) {
  TempDir tmp("notify");
  MakeDirs(tmp / "src");
  WriteFile(tmp / "src/f", "x");
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(2203);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(silent, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent, 4), 0);
  WriteFile(tmp / "c.lua",
            "settings { insist = true, readyWhen = 'watching', stopTimeout = 1 }\n"
            "sync { default.rsyncssh, source = '" + tmp / "src" +
                "', host = '127.0.0.1', targetdir = '/nowhere', ssh = { port = 2203 } }\n",
            0600);
  NotifyListener listener(tmp / "notify.sock");
  Process syncd({SyncdBinary(), "-nodaemon", tmp / "c.lua"},
                {"NOTIFY_SOCKET=" + tmp / "notify.sock", "HOME=" + tmp.path()}, tmp / "log");
  ASSERT_TRUE(listener.WaitFor("READY=1")) << syncd.log();
  EXPECT_THAT(listener.messages[listener.IndexOf("READY=1")], HasSubstr("STATUS=watching"));
  syncd.Signal(SIGTERM);
  EXPECT_EQ(syncd.Wait(), 1) << syncd.log();
  EXPECT_THAT(syncd.log(), HasSubstr("within 1 s"));
  ::close(silent);
}

// SIGHUP adds a sync and drops an exclude of another: the untouched sync keeps its connection,
// the changed one sends what is no longer excluded without a new listing, the new one
// converges; the service manager sees RELOADING=1, then READY=1. A config that no longer loads
// leaves the running one in place.
TEST(NotifyTest, ReloadAddsASyncAndChangesExcludesWithoutDisturbingTheRest) {
  TempDir tmp("reload");
  for (const char* d : {"/a", "/b", "/c"}) MakeDirs(tmp / "src" + d);
  WriteFile(tmp / "src/a/f", "a");
  WriteFile(tmp / "src/b/f", "b");
  WriteFile(tmp / "src/b/draft.tmp", "excluded at first");
  WriteFile(tmp / "src/c/f", "c");
  auto sync = [&](const std::string& name, const std::string& extra) {
    return "sync { default.rsync, source = '" + tmp / "src/" + name + "', target = '" +
           tmp / "dst/" + name + "'" + extra + " }\n";
  };
  std::string config = tmp / "c.lua";
  WriteFile(config, sync("a", "") + sync("b", ", exclude = { '*.tmp' }"));
  NotifyListener listener(tmp / "notify.sock");
  Process syncd({SyncdBinary(), "-nodaemon", "-log", "Transport", config},
                {"NOTIFY_SOCKET=" + tmp / "notify.sock", "HOME=" + tmp.path(),
                 "SYNCD_CONFIG_TIME_LIMIT=1"},
                tmp / "log");
  ASSERT_TRUE(listener.WaitFor("READY=1")) << syncd.log();
  ASSERT_EQ(ReadFile(tmp / "dst/b/f"), "b");
  ASSERT_FALSE(std::filesystem::exists(tmp / "dst/b/draft.tmp"));
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = 0; (at = text.find(what, at)) != std::string::npos; at += what.size()) ++n;
    return n;
  };
  ASSERT_EQ(count(syncd.log(), "Sync1: connecting"), 1u);

  // The reload also adds a metrics file, which starts being written.
  WriteFile(config, "settings { metricsFile = '" + tmp / "syncd.prom" + "' }\n" + sync("a", "") +
                        sync("b", "") + sync("c", ""));
  syncd.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(tmp / "dst/c/f"); })) << syncd.log();
  EXPECT_TRUE(WaitUntil([&] {
    return MetricValues(ReadFile(tmp / "syncd.prom"), "syncd_in_sync").size() == 3;
  })) << syncd.log();
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(tmp / "dst/b/draft.tmp"); }))
      << syncd.log();
  EXPECT_EQ(ReadFile(tmp / "dst/b/draft.tmp"), "excluded at first");
  EXPECT_THAT(syncd.log(), HasSubstr("reload: 1 syncs unchanged, 1 with new excludes, 0 restarted, 1 added"));
  EXPECT_EQ(count(syncd.log(), "Sync1: connecting"), 1u) << "the untouched sync reconnected";
  EXPECT_EQ(count(syncd.log(), "Sync2: connecting"), 1u) << "the changed sync reconnected";
  ASSERT_TRUE(listener.WaitFor("STATUS=reloaded"));
  size_t reloaded = listener.IndexOf("STATUS=reloaded");
  EXPECT_LT(listener.IndexOf("RELOADING=1"), reloaded);
  EXPECT_THAT(listener.messages[reloaded], HasSubstr("READY=1"));

  WriteFile(config, "sync { default.rsync, source = ");  // Broken.
  syncd.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return syncd.log().find("the running configuration stays") != std::string::npos; }))
      << syncd.log();
  WriteFile(tmp / "src/a/g", "still running");
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(tmp / "dst/a/g"); })) << syncd.log();
  // A file that never finishes loading: the reload gives up, and replication goes on.
  WriteFile(config, "while true do end\n");
  syncd.Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return syncd.log().find("did not finish loading within 1 s") != std::string::npos; }))
      << syncd.log();
  WriteFile(tmp / "src/a/h", "still running after a looping reload");
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(tmp / "dst/a/h"); })) << syncd.log();
  syncd.Signal(SIGTERM);
  EXPECT_EQ(syncd.Wait(), 0);
}

// `syncd flush` before a planned failover: with a delay that would hold a change for the
// better part of an hour, flush sends it at once and returns 0 only when it is on the standby.
// Without a running syncd it fails and says so.
TEST(NotifyTest, FlushReturnsOnceEarlierChangesAreDurable) {
  TempDir tmp("flush");
  MakeDirs(tmp / "src");
  std::string config = tmp / "c.lua";
  WriteFile(config, "sync { default.rsync, source = '" + tmp / "src" + "', target = '" +
                        tmp / "dst" + "', delay = 3000 }\n");
  Process none({SyncdBinary(), "flush", config}, {"HOME=" + tmp.path()}, tmp / "none.log");
  EXPECT_EQ(none.Wait(), 1);
  EXPECT_THAT(none.log(), HasSubstr("no syncd is running"));

  NotifyListener listener(tmp / "notify.sock");
  Process syncd({SyncdBinary(), "-nodaemon", config},
                {"NOTIFY_SOCKET=" + tmp / "notify.sock", "HOME=" + tmp.path()}, tmp / "log");
  ASSERT_TRUE(listener.WaitFor("READY=1")) << syncd.log();
  WriteFile(tmp / "src/sess_1", "written just before the move");
  Process flush({SyncdBinary(), "flush", "-timeout", "50", config}, {"HOME=" + tmp.path()},
                tmp / "flush.log");
  EXPECT_EQ(flush.Wait(), 0) << flush.log() << syncd.log();
  EXPECT_EQ(ReadFile(tmp / "dst/sess_1"), "written just before the move")
      << "flush returned before the change was on the standby";
  EXPECT_THAT(flush.log(), HasSubstr("flushed"));
  syncd.Signal(SIGTERM);
  EXPECT_EQ(syncd.Wait(), 0);
}

}  // namespace
}  // namespace syncd::itest
