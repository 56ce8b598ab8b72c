// SignatureCache keeps the agent's signatures of files it has just put in place. A file that
// changed once tends to change again, and its next delta starts with a request for the
// signature of the standby's copy: computing it then costs ~1 ms per MiB on the critical path
// (0.2 s for 200 MiB). The cache computes it in a background thread once the file is
// published and the agent has been quiet for a moment (kQuiet), at idle CPU priority, and
// gives up and tries later as soon as the agent is busy again: a startup copy of 400 MiB ran
// 10-30% longer when signing competed with it on two cores. It hands a signature out only if
// the file is still exactly what was signed (same inode, size, mtime and ctime); a stale one
// could only cost a failed delta (the end-to-end hash catches it), never a wrong file.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "syncd/unique_fd.h"

namespace syncd::transport {

class SignatureCache {
 public:
  SignatureCache() = default;
  ~SignatureCache();
  SignatureCache(const SignatureCache&) = delete;
  SignatureCache& operator=(const SignatureCache&) = delete;

  // Signs the open file `fd` in the background.
  void Add(UniqueFd fd);
  // The agent is at work now: background signing waits.
  void Busy() {
    last_busy_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                        std::memory_order_relaxed);
  }
  // The signature of the open file `fd`, if one was made of it as it is now. One still being
  // made is not waited for: the background thread may be starved by a busy machine.
  std::optional<std::string> Find(int fd);
  // Waits until every file added so far has been signed (tests).
  void WaitIdle();
  // How many Find() calls were answered from the cache.
  uint64_t hits() const { return hits_.load(); }

 private:
  static constexpr size_t kMaxBytes = 64 << 20;
  static constexpr size_t kMaxQueued = 256;
  static constexpr std::chrono::milliseconds kQuiet{50};
  bool Quiet() const;
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    std::pair<dev_t, ino_t> key() const { return {dev, ino}; }
    bool operator==(const Identity&) const = default;
  };
  struct Entry {
    Identity id;
    std::string signature;
  };
  static std::optional<Identity> IdentityOf(int fd);
  void Run();
  void Store(const Identity& id, std::string signature);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<UniqueFd> queue_;
  bool signing_ = false;  // A file taken from the queue is being signed.
  std::map<std::pair<dev_t, ino_t>, Entry> entries_;
  std::deque<std::pair<dev_t, ino_t>> order_;  // Oldest first, for eviction.
  size_t bytes_ = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> last_busy_ns_{0};
  std::thread thread_;
};

}  // namespace syncd::transport
