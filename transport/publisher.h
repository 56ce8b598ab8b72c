// Publisher puts a group of finished files in place on a thread of its own: one syncfs() of the
// target's file system for their data, then the rename of each temporary file over its name.
// The agent goes on receiving the next group meanwhile. On a tree of small files the syncfs()
// calls were a quarter of the agent's time on a cold start, with the agent doing nothing else.
//
// One group is in progress at a time, and one more may wait for it: Start() waits only when
// one already does (a syncfs() of a slow disk would otherwise hold the agent, and the client
// behind it, once every group). Groups are put in place in the order given. The agent calls
// Finish() before anything that could see or change what a group touches (a deletion, a
// rename, a listing, a COMMIT), so no frame ever runs beside the renames but the ones that
// create new entries (files in transfer, directories).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "syncd/error.h"
#include "syncd/unique_fd.h"

namespace syncd::transport {

class Publisher {
 public:
  // A finished file waiting to be renamed into place.
  struct Item {
    uint64_t seq;
    std::string path;                // Beneath the target, for messages.
    std::shared_ptr<UniqueFd> dir;   // Its directory.
    std::string temp;                // Its temporary name there.
    std::string name;                // The name it gets.
    uint64_t size;
  };
  // What became of a group.
  struct Outcome {
    struct Failure {
      uint64_t seq;
      Error error;
      std::string path;
    };
    std::vector<Failure> failed;      // Not renamed; the temporary file is gone.
    std::vector<UniqueFd> published;  // Opened for reading, for the files that asked for it.
  };

  Publisher() = default;
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Puts `group` in place on the publishing thread, after a syncfs() of `root_fd`'s file
  // system. Files of `reopen_bytes` or more are opened again once renamed (for signing).
  // Waits while another group waits for the thread; returns the outcome of the groups done
  // since the last call.
  Outcome Start(int root_fd, std::vector<Item> group, uint64_t reopen_bytes);
  // Waits for every group handed over, and returns their outcome.
  Outcome Finish();
  // The same, done on the calling thread (with no group in progress). `keep`, if given, runs
  // before each rename (the agent's backups of what is replaced); its error fails the file.
  using Keep = std::function<Result<void>(int dir_fd, const std::string& name, const std::string& path)>;
  static Outcome PublishNow(int root_fd, std::vector<Item>& group, uint64_t reopen_bytes,
                            const Keep& keep = nullptr);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  bool stop_ = false;
  // The groups handed over and not yet begun, and the outcome of those done.
  struct Job {
    int root_fd;
    std::vector<Item> group;
    uint64_t reopen_bytes;
  };
  static constexpr size_t kMaxWaiting = 1;
  std::deque<Job> jobs_;
  bool running_ = false;
  Outcome outcome_;
};

}  // namespace syncd::transport
