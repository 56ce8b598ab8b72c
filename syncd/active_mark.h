// The split-brain guard. An active syncd marks each source it replicates with a lock file in
// a run directory (/run/syncd, or $SYNCD_RUN_DIR), holding an exclusive flock() on it for as
// long as it runs. An agent on the same host refuses a target that is such a source, lies
// inside one or holds one: if both nodes of a pair believe they are active, the two syncds
// would otherwise overwrite each other's files. A lock file whose holder is gone is stale and
// ignored, so a crash never leaves the guard stuck.
#pragma once

#include <optional>
#include <string>

#include "syncd/error.h"
#include "syncd/unique_fd.h"

namespace syncd {

class ActiveMark {
 public:
  // Marks `source` (an absolute path) as replicated from this host by this process.
  static Result<ActiveMark> Take(const std::string& source);
  ActiveMark(ActiveMark&& other) noexcept = default;
  ActiveMark& operator=(ActiveMark&&) = delete;
  ~ActiveMark();  // Removes the mark.

 private:
  ActiveMark(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

// A description of the active syncd on this host (other than `except_pid`) whose source is
// the directory `path`, lies inside it or contains it (compared by device and inode); nullopt
// if there is none.
std::optional<std::string> ActiveSyncdOver(const std::string& path, int except_pid);

// The directory of the marks.
std::string ActiveMarkDir();

}  // namespace syncd
