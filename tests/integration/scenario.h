// The replication scenario shared by every carrier: the seed's three folders (spool,
// configuration, PHP sessions) with the seed's rules (exclude '.*', archive, prune_empty_dirs)
// are populated, replicated, then changed in every way a user changes files; after each change
// the peer must equal the source.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace syncd::itest {

inline const std::vector<std::string> kSeedFolders = {
    "/var/spool/ovd/session-manager", "/etc/ovd/session-manager", "/var/lib/php/sessions"};

struct Layout {
  std::vector<std::string> sources;  // As syncd sees them.
  std::vector<std::string> targets;  // Where the peer's copies really are.
  Process* syncd = nullptr;          // For its log when something does not converge.
};

// Fills the sources, and puts on the peer what a stale standby might hold.
void PopulateSeedTrees(const Layout& layout);
// Waits until every target equals its source (dot-files aside, empty directories pruned).
void ExpectConverged(const Layout& layout, const std::string& step);
// Create, overwrite, append, chmod, chown, rename, delete, mkdir, rmdir, symlink and touch,
// each followed by ExpectConverged; then checks what must never happen.
void RunLiveChanges(const Layout& layout);

// Rewrites, creates and deletes session files (sess_w0..sess_w49) in `dir` in place, as PHP
// does, every 20 ms on a thread of its own, until stopped.
class SessionWriter {
 public:
  explicit SessionWriter(std::string dir);
  ~SessionWriter() { Stop(); }
  void Stop();

 private:
  std::string dir_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sets the modification time of `path` (not following a symlink) to `when` plus a fraction.
void SetMtime(const std::string& path, time_t when);

// The seed's config from examples/, with only the folders, the host, the key and the log file
// changed, and `ssh.carrier` set when `carrier` is not empty.
std::string SeedConfig(const std::string& folder_prefix, const std::string& host,
                       const std::string& key, const std::string& logfile,
                       const std::string& carrier = "");

}  // namespace syncd::itest
